//! Roles and role assignments.

use crate::auth::BuiltinRole;
use crate::authz::builtin;
use crate::error::AppResult;
use crate::repo;
use crate::repo::roles::NewAssignment;
use sea_orm::ConnectionTrait;
use std::collections::HashMap;
use uuid::Uuid;

/// Creates Owner, Manager, Staff and Guest in a new workspace; returns their ids.
pub async fn create_builtin_roles(
    db: &impl ConnectionTrait,
    workspace_id: Uuid,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<HashMap<BuiltinRole, Uuid>> {
    let mut ids = HashMap::new();
    for spec in builtin::specs() {
        let id = Uuid::now_v7();
        repo::roles::insert(db, workspace_id, &spec.def(id), spec.description, Some(spec.builtin.as_str()), now).await?;
        ids.insert(spec.builtin, id);
    }
    Ok(ids)
}

/// A plain, unconditional assignment of a role to a user (workspace creation, seed).
pub async fn assign_plain(
    db: &impl ConnectionTrait,
    workspace_id: Uuid,
    role_id: Uuid,
    user_id: Uuid,
    by: Option<Uuid>,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<()> {
    let a = NewAssignment {
        role_id,
        user_id: Some(user_id),
        group_id: None,
        valid_from: None,
        valid_until: None,
        networks: Vec::new(),
        require_two_factor: false,
        created_by: by,
    };
    repo::roles::assign(db, workspace_id, a, now).await?;
    Ok(())
}
