//! Who acts in a request: a staff user or API key inside a workspace, or a master
//! admin. Built by `auth::authenticate`; read by authorization (through
//! `authz::scope::Acting`), the services and the API.

use super::session::{ActiveSession, SessionImpersonation};
use crate::authz::eval::Grants;
use crate::authz::scope::{Acting, Placement};
use crate::domain::WorkspaceStatus;
use std::sync::Arc;
use uuid::Uuid;

/// How a workspace principal proved who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A person's session (possibly a master admin impersonating them: see
    /// `UserPrincipal::impersonation`).
    Session(ActiveSession),
    /// A partner API key: a service principal acting with one role.
    ApiKey(ApiKeyRef),
}

#[derive(Debug, Clone)]
pub struct ApiKeyRef {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub role_id: Uuid,
    /// The user who created the key: records the key creates are assigned to them.
    pub created_by: Uuid,
}

/// A principal inside a workspace: a staff user with a session, or an API key. For a
/// key, `user_id` is the key's id and `username` its name, and it has no place in the
/// organisation (no department, team or group), so only ALL scopes reach records.
#[derive(Debug, Clone)]
pub struct UserPrincipal {
    pub user_id: Uuid,
    pub workspace_id: Uuid,
    pub username: String,
    pub credential: Credential,
    /// What this principal may do in this request (see `authz::eval`).
    pub grants: Arc<Grants>,
    /// Where the user sits, for data scopes.
    pub department_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub primary_group_id: Option<Uuid>,
    pub group_ids: Arc<Vec<Uuid>>,
    /// Active or archived (no other status lets a principal exist).
    pub workspace_status: WorkspaceStatus,
}

impl UserPrincipal {
    pub fn session(&self) -> Option<&ActiveSession> {
        match &self.credential {
            Credential::Session(s) => Some(s),
            Credential::ApiKey(_) => None,
        }
    }

    pub fn api_key(&self) -> Option<&ApiKeyRef> {
        match &self.credential {
            Credential::ApiKey(k) => Some(k),
            Credential::Session(_) => None,
        }
    }

    /// Who is really acting, when a master admin impersonates this user.
    pub fn impersonation(&self) -> Option<&SessionImpersonation> {
        self.session().and_then(|s| s.record.impersonation.as_ref())
    }

    /// The session of a person; API keys are refused (operations on one's own account
    /// and sessions are for people).
    pub fn own_session(&self) -> crate::error::AppResult<&ActiveSession> {
        self.session().ok_or(crate::error::AppError::Forbidden)
    }

    /// Whether this session passed two-factor (never true for a key).
    pub fn two_factor(&self) -> bool {
        self.session().is_some_and(|s| s.record.two_factor)
    }
}

#[derive(Debug, Clone)]
pub struct MasterPrincipal {
    pub admin_id: Uuid,
    pub email: String,
    pub session: ActiveSession,
}

#[derive(Debug, Clone, Default)]
pub enum Principal {
    #[default]
    Anonymous,
    User(UserPrincipal),
    MasterAdmin(MasterPrincipal),
}

impl Principal {
    pub fn session(&self) -> Option<&ActiveSession> {
        match self {
            Self::Anonymous => None,
            Self::User(u) => u.session(),
            Self::MasterAdmin(m) => Some(&m.session),
        }
    }

    pub fn workspace_id(&self) -> Option<Uuid> {
        match self {
            Self::User(u) => Some(u.workspace_id),
            _ => None,
        }
    }
}

impl Acting for UserPrincipal {
    fn workspace_id(&self) -> Uuid {
        self.workspace_id
    }

    fn grants(&self) -> &Grants {
        &self.grants
    }

    fn placement(&self) -> Placement {
        Placement {
            user_id: self.user_id,
            department_id: self.department_id,
            team_id: self.team_id,
            primary_group_id: self.primary_group_id,
            group_ids: self.group_ids.to_vec(),
            new_record_owner: self.api_key().map_or(self.user_id, |k| k.created_by),
        }
    }
}
