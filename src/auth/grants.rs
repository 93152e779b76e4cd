//! Loading what the evaluator needs for one request (assignments and role
//! definitions) and evaluating a user's or API key's grants from it.
//!
//! Guarantees: the grants are evaluated afresh for every request (conditions depend on
//! the time, the client's network and the session's two-factor state); only the
//! loaded assignments and roles are cached, and only under the workspace's permission
//! epoch, which every role, assignment or group change bumps in its own transaction.
//! The epoch comes with the workspace row, which is read again after every such
//! change (`auth::principals`), so a change is seen by the next request on every
//! instance.

use crate::authz::eval::{Assignment, EvalContext, Grants, RoleDef, Via, evaluate};
use crate::repo;
use sea_orm::{ConnectionTrait, DbErr};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

#[derive(Clone)]
struct Entry {
    epoch: i64,
    group_ids: Arc<Vec<Uuid>>,
    assignments: Arc<Vec<Assignment>>,
    roles: Arc<HashMap<Uuid, RoleDef>>,
}

/// Loaded assignments and roles per user, valid for one permission epoch.
#[derive(Default)]
pub struct GrantCache {
    entries: Mutex<HashMap<Uuid, Entry>>,
}

const MAX_ENTRIES: usize = 10_000;

pub struct Loaded {
    pub grants: Grants,
    pub group_ids: Arc<Vec<Uuid>>,
}

impl GrantCache {
    pub async fn grants(
        &self,
        db: &impl ConnectionTrait,
        user: &entity::user::Model,
        workspace: &entity::workspace::Model,
        ctx: &EvalContext,
    ) -> Result<Loaded, DbErr> {
        let cached = self.entries.lock().ok().and_then(|m| m.get(&user.id).filter(|e| e.epoch == workspace.permission_epoch).cloned());
        let entry = match cached {
            Some(e) => e,
            None => {
                let group_ids = repo::roles::group_ids_of(db, workspace.id, user).await?;
                let assignments = repo::roles::assignments_of(db, workspace.id, user.id, &group_ids).await?;
                let roles = repo::roles::defs(db, workspace.id).await?;
                let e = Entry {
                    epoch: workspace.permission_epoch,
                    group_ids: Arc::new(group_ids),
                    assignments: Arc::new(assignments),
                    roles: Arc::new(roles),
                };
                self.remember(user.id, e.clone());
                e
            }
        };
        Ok(Loaded { grants: evaluate(&entry.assignments, &entry.roles, ctx), group_ids: entry.group_ids })
    }

    /// An API key's grants: its one role (with the role's ancestors), evaluated like a
    /// direct assignment without conditions. Cached under the key's id like a user's.
    pub async fn grants_for_key(
        &self,
        db: &impl ConnectionTrait,
        key_id: Uuid,
        role_id: Uuid,
        workspace: &entity::workspace::Model,
        ctx: &EvalContext,
    ) -> Result<Grants, DbErr> {
        let cached = self.entries.lock().ok().and_then(|m| m.get(&key_id).filter(|e| e.epoch == workspace.permission_epoch).cloned());
        let entry = match cached {
            Some(e) => e,
            None => {
                let assignment = Assignment {
                    id: key_id,
                    role_id,
                    via: Via::Direct,
                    valid_from: None,
                    valid_until: None,
                    networks: Vec::new(),
                    require_two_factor: false,
                };
                let e = Entry {
                    epoch: workspace.permission_epoch,
                    group_ids: Arc::new(Vec::new()),
                    assignments: Arc::new(vec![assignment]),
                    roles: Arc::new(repo::roles::defs(db, workspace.id).await?),
                };
                self.remember(key_id, e.clone());
                e
            }
        };
        Ok(evaluate(&entry.assignments, &entry.roles, ctx))
    }

    fn remember(&self, id: Uuid, e: Entry) {
        if let Ok(mut m) = self.entries.lock() {
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert(id, e);
        }
    }
}
