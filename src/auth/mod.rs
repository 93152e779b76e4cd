//! Authentication: who is making this request.
//!
//! Guarantees: the `Principal` of a request is computed once, before any resolver
//! runs, from a session that was re-read from the store for this request; a session
//! whose user became inactive or unlicensed, or whose workspace stopped being usable,
//! is revoked on sight and the request is anonymous. A store failure is an error
//! (the request is refused), never a silent anonymous or authenticated pass.

pub mod apikey;
pub mod cookie;
pub mod grants;
pub mod password;
pub mod password_policy;
pub mod ratelimit;
pub mod request;
pub mod security_settings;
pub mod session;
pub mod twofactor;

pub mod principal;

pub use principal::{ApiKeyRef, Credential, MasterPrincipal, Principal, UserPrincipal};
pub use request::RequestMeta;

use crate::authz::eval::EvalContext;
use crate::domain::WorkspaceStatus;
use crate::error::AppResult;
use crate::repo;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use security_settings::{EffectivePolicy, SecurityOverride, SecuritySettings};
use session::{ActiveSession, Subject};
use std::net::IpAddr;
use std::sync::Arc;
use uuid::Uuid;

pub use crate::authz::builtin::BuiltinRole;

/// Whether a user may hold a session right now: active, licensed (and the licence not
/// ended), in a workspace that is active or archived (archived is read-only, not
/// locked out).
pub fn may_sign_in(user: &entity::user::Model, workspace: &entity::workspace::Model, now: DateTime<Utc>) -> bool {
    user.active
        && user.licensed
        && user.licence_ends_at.is_none_or(|end| now < end)
        && WorkspaceStatus::parse(&workspace.status).allows_sign_in()
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
    Ok(security_settings::effective(&settings, ov.as_ref(), now))
}

/// The workspace's own rules, for a sign-in whose name matches no user.
pub fn workspace_policy(workspace: &entity::workspace::Model, now: DateTime<Utc>) -> AppResult<EffectivePolicy> {
    let settings: SecuritySettings = serde_json::from_str(&workspace.security_settings)
        .map_err(|e| crate::error::AppError::internal(format!("workspace security settings unreadable: {e}")))?;
    Ok(security_settings::effective(&settings, None, now))
}

/// Whether a session has outlived the workspace's own (shorter) timeouts.
fn outlived(policy: &EffectivePolicy, session: &ActiveSession, now: DateTime<Utc>) -> bool {
    let mins = |m: u32| chrono::Duration::minutes(i64::from(m));
    policy.session_idle_minutes.is_some_and(|m| now >= session.idle_since + mins(m))
        || policy.session_absolute_minutes.is_some_and(|m| now >= session.record.created_at + mins(m))
}

/// The principal behind a presented session token or API key. `Ok(None)` means the
/// token is not (or no longer) valid.
pub async fn authenticate(state: &AppState, token: &str, ip: Option<IpAddr>) -> AppResult<Option<Principal>> {
    match authenticate_detailed(state, token, ip).await? {
        Ok(p) => Ok(p),
        Err(_) => Err(crate::error::AppError::LoginRestricted),
    }
}

/// A live session refused by the network or hours rules: who, and which rule.
#[derive(Debug, Clone)]
pub struct RestrictedSession {
    pub workspace_id: Uuid,
    pub user_id: Uuid,
    pub username: String,
    pub session_id: Uuid,
    pub session_hash: String,
    pub rule: &'static str,
}

/// Like `authenticate`, but a session the rules refuse says whose it is (the caller
/// puts the refusal on the record).
pub async fn authenticate_detailed(
    state: &AppState,
    token: &str,
    ip: Option<IpAddr>,
) -> AppResult<Result<Option<Principal>, RestrictedSession>> {
    if apikey::is_key(token) {
        return authenticate_key(state, token, ip).await.map(Ok);
    }
    let Some(session) = state.sessions.resolve(token).await? else {
        return Ok(Ok(None));
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
                        return Ok(Ok(None));
                    }
                    // Network and hours rules hold for every request, not only at sign-in.
                    // The session stays: it works again from an allowed place and time.
                    // An impersonating master admin is not bound by the user's rules
                    // (they are not where the user is), but by the session's own limit.
                    if session.record.impersonation.is_none()
                        && let Err(rule) = policy.check(ip, now)
                    {
                        return Ok(Err(RestrictedSession {
                            workspace_id,
                            user_id,
                            username: user.username,
                            session_id: session.record.id,
                            session_hash: session.hash.clone(),
                            rule: rule.as_str(),
                        }));
                    }
                    let ctx = EvalContext { now: state.clock.now(), ip, two_factor: session.record.two_factor };
                    let loaded = state.grants.grants(&state.db, &user, &ws, &ctx).await?;
                    Ok(Ok(Some(Principal::User(UserPrincipal {
                        user_id,
                        workspace_id,
                        username: user.username,
                        credential: Credential::Session(session),
                        grants: Arc::new(loaded.grants),
                        department_id: user.department_id,
                        team_id: user.team_id,
                        primary_group_id: user.primary_group_id,
                        group_ids: loaded.group_ids,
                        workspace_status: WorkspaceStatus::parse(&ws.status),
                    }))))
                }
                _ => {
                    state.sessions.revoke(&session.hash, &session.record.subject).await?;
                    Ok(Ok(None))
                }
            }
        }
        Subject::MasterAdmin { admin_id } => match repo::master_admins::get(&state.db, admin_id).await? {
            Some(admin) if admin.active => Ok(Ok(Some(Principal::MasterAdmin(MasterPrincipal { admin_id, email: admin.email, session })))),
            _ => {
                state.sessions.revoke(&session.hash, &session.record.subject).await?;
                Ok(Ok(None))
            }
        },
    }
}

/// How often a key's last use is written back (per instance).
const KEY_TOUCH_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// An API key: live (not revoked, not expired), of a workspace that allows sign-in, and
/// used from a network the workspace allows. Login hours are for people and do not
/// apply to keys.
async fn authenticate_key(state: &AppState, key: &str, ip: Option<IpAddr>) -> AppResult<Option<Principal>> {
    let Some(prefix) = apikey::prefix_of(key) else { return Ok(None) };
    let Some(row) = repo::api_keys::by_prefix(&state.db, prefix).await? else { return Ok(None) };
    let now = state.clock.now();
    if !apikey::matches(key, &row.secret_hash) || row.revoked_at.is_some() || row.expires_at.is_some_and(|e| now >= e) {
        return Ok(None);
    }
    let Some(ws) = repo::workspaces::get(&state.db, row.workspace_id).await? else { return Ok(None) };
    let status = WorkspaceStatus::parse(&ws.status);
    // The key proved its secret, so its holder may learn why it stopped working.
    if status == WorkspaceStatus::Suspended {
        return Err(crate::error::AppError::WorkspaceSuspended);
    }
    if !status.allows_sign_in() {
        return Ok(None);
    }
    let settings: SecuritySettings = serde_json::from_str(&ws.security_settings)
        .map_err(|e| crate::error::AppError::internal(format!("workspace security settings unreadable: {e}")))?;
    if !security_settings::effective(&settings, None, now).allows_ip(ip) {
        return Err(crate::error::AppError::LoginRestricted);
    }
    let ctx = EvalContext { now, ip, two_factor: false };
    let grants = state.grants.grants_for_key(&state.db, row.id, row.role_id, &ws, &ctx).await?;
    touch_key(state, &row, ip).await;
    Ok(Some(Principal::User(UserPrincipal {
        user_id: row.id,
        workspace_id: row.workspace_id,
        username: row.name.clone(),
        credential: Credential::ApiKey(ApiKeyRef {
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            role_id: row.role_id,
            created_by: row.created_by,
        }),
        grants: Arc::new(grants),
        department_id: None,
        team_id: None,
        primary_group_id: None,
        group_ids: Arc::new(Vec::new()),
        workspace_status: status,
    })))
}

/// Records the key's last use at most once a minute, without waiting for SQLite's
/// single writer (a busy writer only delays the record to a later use).
async fn touch_key(state: &AppState, row: &entity::api_key::Model, ip: Option<IpAddr>) {
    let first = state.store.set_nx(&format!("apikey_touch:{}", row.id), "1", KEY_TOUCH_EVERY).await.unwrap_or(false);
    if !first {
        return;
    }
    let _guard = match &state.write_lock {
        Some(lock) => match lock.clone().try_lock_owned() {
            Ok(g) => Some(g),
            Err(_) => return,
        },
        None => None,
    };
    let now = state.clock.now();
    if let Err(e) = repo::api_keys::touch(&state.db, row.workspace_id, row.id, ip.map(|i| i.to_string()), now).await {
        tracing::warn!(error = %e, "could not record an API key's last use");
    }
}
