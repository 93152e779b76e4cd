//! Authentication: who is making this request.
//!
//! Guarantees: the `Principal` of a request is computed once, before any resolver
//! runs, from a session that was re-read from the store for this request; a session
//! whose user became inactive or unlicensed, or whose workspace stopped being usable,
//! is revoked on sight and the request is anonymous. A store failure is an error
//! (the request is refused), never a silent anonymous or authenticated pass.

pub mod password;
pub mod password_policy;
pub mod policy;
pub mod ratelimit;
pub mod session;
pub mod twofactor;

use crate::authz::eval::{EvalContext, Grants};
use crate::error::AppResult;
use crate::repo;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use policy::{EffectivePolicy, SecurityOverride, SecuritySettings};
use session::{ActiveSession, Subject};
use std::net::IpAddr;
use std::sync::Arc;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, async_graphql::Enum)]
pub enum BuiltinRole {
    Guest,
    Staff,
    Manager,
    Owner,
}

impl BuiltinRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Manager => "manager",
            Self::Staff => "staff",
            Self::Guest => "guest",
        }
    }

    /// Unknown values read as the least privileged role.
    pub fn parse(s: &str) -> Self {
        match s {
            "owner" => Self::Owner,
            "manager" => Self::Manager,
            "staff" => Self::Staff,
            _ => Self::Guest,
        }
    }
}

#[derive(Debug, Clone)]
pub struct UserPrincipal {
    pub user_id: Uuid,
    pub workspace_id: Uuid,
    pub username: String,
    pub session: ActiveSession,
    /// What this user may do in this request (see `authz::eval`).
    pub grants: Arc<Grants>,
    /// Where the user sits, for data scopes.
    pub department_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub primary_group_id: Option<Uuid>,
    pub group_ids: Arc<Vec<Uuid>>,
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
            Self::User(u) => Some(&u.session),
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

/// Whether a user may hold a session right now: active, licensed (and the licence not
/// ended), in a workspace that is active or archived (archived is read-only, not
/// locked out).
pub fn may_sign_in(user: &entity::user::Model, workspace: &entity::workspace::Model, now: DateTime<Utc>) -> bool {
    user.active
        && user.licensed
        && user.licence_ends_at.is_none_or(|end| now < end)
        && matches!(workspace.status.as_str(), "active" | "archived")
}

/// The security rules that apply to this user now: the workspace settings with the
/// user's override (if it has not expired) on top.
pub fn effective_policy(
    user: &entity::user::Model,
    workspace: &entity::workspace::Model,
    now: DateTime<Utc>,
) -> AppResult<EffectivePolicy> {
    let settings: SecuritySettings = serde_json::from_str(&workspace.security_settings)
        .map_err(|e| crate::error::AppError::internal(format!("workspace security settings unreadable: {e}")))?;
    let ov: Option<SecurityOverride> = match &user.security_override {
        Some(json) => {
            Some(serde_json::from_str(json).map_err(|e| crate::error::AppError::internal(format!("security override unreadable: {e}")))?)
        }
        None => None,
    };
    Ok(policy::effective(&settings, ov.as_ref(), now))
}

/// Whether a session has outlived the workspace's own (shorter) timeouts.
fn outlived(policy: &EffectivePolicy, session: &ActiveSession, now: DateTime<Utc>) -> bool {
    let mins = |m: u32| chrono::Duration::minutes(i64::from(m));
    policy.session_idle_minutes.is_some_and(|m| now >= session.idle_since + mins(m))
        || policy.session_absolute_minutes.is_some_and(|m| now >= session.record.created_at + mins(m))
}

/// The principal behind a presented session token. `Ok(None)` means the token is not
/// (or no longer) valid.
pub async fn authenticate(state: &AppState, token: &str, ip: Option<IpAddr>) -> AppResult<Option<Principal>> {
    let Some(session) = state.sessions.resolve(token).await? else {
        return Ok(None);
    };
    match session.record.subject {
        Subject::User { user_id, workspace_id } => {
            let found = repo::users::get_with_workspace(&state.db, workspace_id, user_id).await?;
            match found {
                Some((user, ws)) if may_sign_in(&user, &ws, state.clock.now()) => {
                    let now = state.clock.now();
                    let policy = effective_policy(&user, &ws, now)?;
                    if outlived(&policy, &session, now) {
                        state.sessions.revoke(&session.hash, &session.record.subject).await?;
                        return Ok(None);
                    }
                    // Network and hours rules hold for every request, not only at sign-in.
                    // The session stays: it works again from an allowed place and time.
                    if policy.check(ip, now).is_err() {
                        return Err(crate::error::AppError::LoginRestricted);
                    }
                    let ctx = EvalContext { now: state.clock.now(), ip, two_factor: session.record.two_factor };
                    let loaded = state.grants.grants(&state.db, &user, &ws, &ctx).await?;
                    Ok(Some(Principal::User(UserPrincipal {
                        user_id,
                        workspace_id,
                        username: user.username,
                        session,
                        grants: Arc::new(loaded.grants),
                        department_id: user.department_id,
                        team_id: user.team_id,
                        primary_group_id: user.primary_group_id,
                        group_ids: loaded.group_ids,
                    })))
                }
                _ => {
                    state.sessions.revoke(&session.hash, &session.record.subject).await?;
                    Ok(None)
                }
            }
        }
        Subject::MasterAdmin { admin_id } => match repo::master_admins::get(&state.db, admin_id).await? {
            Some(admin) if admin.active => Ok(Some(Principal::MasterAdmin(MasterPrincipal { admin_id, email: admin.email, session }))),
            _ => {
                state.sessions.revoke(&session.hash, &session.record.subject).await?;
                Ok(None)
            }
        },
    }
}
