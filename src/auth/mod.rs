//! Authentication: who is making this request.
//!
//! Guarantees: the `Principal` of a request is computed once, before any resolver
//! runs, from a session that was re-read from the store for this request (and rows
//! that are current under the workspace's principal epoch, see `principals`); a session
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
pub mod principals;

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
    match resolve(state, token, ip, false).await?.outcome {
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

/// What an HTTP request's credential resolved to.
pub struct Authenticated {
    /// The principal; a session the rules refuse says whose it is (the caller puts the
    /// refusal on the record).
    pub outcome: Result<Option<Principal>, RestrictedSession>,
    /// The credential's rate verdict (its `ApiSession` or `ApiKey` bucket), when it was
    /// metered in the same store round trip; None when the caller must meter it.
    pub rate: Option<AppResult<()>>,
}

/// Like `authenticate`, for a request that also spends from its credential's rate
/// bucket: session (or key), principal epoch and rate in one store round trip, and no
/// SQL when the cached principal is still valid (`principals`).
pub async fn authenticate_detailed(state: &AppState, token: &str, ip: Option<IpAddr>) -> AppResult<Authenticated> {
    resolve(state, token, ip, true).await
}

async fn resolve(state: &AppState, token: &str, ip: Option<IpAddr>, metered: bool) -> AppResult<Authenticated> {
    if apikey::is_key(token) {
        return authenticate_key(state, token, ip, metered).await;
    }
    let hash = session::hash_token(token);
    let hint = state.principals.whose(&hash);
    let (session, epoch, rate) = if metered {
        let meter = state.limiter.meter(ratelimit::Bucket::ApiSession, &hash);
        let found = state.sessions.resolve_metered(token, hint.map(|(ws, _)| principals::epoch_key(ws)), &meter).await?;
        (found.session, found.also, found.wait.map(ratelimit::RateLimiter::verdict))
    } else {
        let epoch = match hint {
            Some((ws, _)) => state.store.get(&principals::epoch_key(ws)).await?,
            None => None,
        };
        (state.sessions.resolve(token).await?, epoch, None)
    };
    let Some(session) = session else {
        return Ok(Authenticated { outcome: Ok(None), rate });
    };
    let outcome = match session.record.subject {
        Subject::User { user_id, workspace_id } => {
            let epoch = if hint == Some((workspace_id, user_id)) {
                epoch
            } else {
                state.principals.note_whose(&hash, workspace_id, user_id);
                None
            };
            match user_rows(state, workspace_id, user_id, epoch, hint.is_some()).await? {
                Some((user, ws)) if may_sign_in(&user, &ws, state.clock.now()) => session_principal(state, session, &user, &ws, ip).await?,
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
    };
    Ok(Authenticated { outcome, rate })
}

type UserRows = (Arc<entity::user::Model>, Arc<entity::workspace::Model>);

/// A session user's rows: from the cache under `epoch`, or one query. `seen` says the
/// epoch was asked for: if the store has none, the workspace gets one, and what was
/// read before it is not cached.
async fn user_rows(state: &AppState, workspace_id: Uuid, user_id: Uuid, epoch: Option<String>, seen: bool) -> AppResult<Option<UserRows>> {
    if let Some(e) = &epoch
        && let Some(principals::Rows::User { user, workspace }) = state.principals.get(user_id, workspace_id, e)
    {
        return Ok(Some((user, workspace)));
    }
    let Some((user, ws)) = repo::users::get_with_workspace(&state.db, workspace_id, user_id).await? else {
        return Ok(None);
    };
    let (user, ws) = (Arc::new(user), Arc::new(ws));
    match epoch {
        Some(e) => state.principals.put(user_id, workspace_id, e, principals::Rows::User { user: user.clone(), workspace: ws.clone() }),
        None if seen => principals::start_epoch(state.store.as_ref(), workspace_id).await?,
        None => {}
    }
    Ok(Some((user, ws)))
}

/// A live session's principal, under the workspace's rules for this request.
async fn session_principal(
    state: &AppState,
    session: ActiveSession,
    user: &entity::user::Model,
    ws: &entity::workspace::Model,
    ip: Option<IpAddr>,
) -> AppResult<Result<Option<Principal>, RestrictedSession>> {
    let now = state.clock.now();
    let policy = effective_policy(user, ws, now)?;
    if outlived(&policy, &session, now) {
        state.sessions.revoke(&session.hash, &session.record.subject).await?;
        return Ok(Ok(None));
    }
    // Network and hours rules hold for every request, not only at sign-in. The session
    // stays: it works again from an allowed place and time. An impersonating master
    // admin is not bound by the user's rules (they are not where the user is), but by
    // the session's own limit.
    if session.record.impersonation.is_none()
        && let Err(rule) = policy.check(ip, now)
    {
        return Ok(Err(RestrictedSession {
            workspace_id: ws.id,
            user_id: user.id,
            username: user.username.clone(),
            session_id: session.record.id,
            session_hash: session.hash.clone(),
            rule: rule.as_str(),
        }));
    }
    let ctx = EvalContext { now, ip, two_factor: session.record.two_factor };
    let loaded = state.grants.grants(&state.db, user, ws, &ctx).await?;
    Ok(Ok(Some(Principal::User(UserPrincipal {
        user_id: user.id,
        workspace_id: ws.id,
        username: user.username.clone(),
        credential: Credential::Session(session),
        grants: Arc::new(loaded.grants),
        department_id: user.department_id,
        team_id: user.team_id,
        primary_group_id: user.primary_group_id,
        group_ids: loaded.group_ids,
        workspace_status: WorkspaceStatus::parse(&ws.status),
    }))))
}

/// How often a key's last use is written back (per instance).
const KEY_TOUCH_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// An API key: live (not revoked, not expired), of a workspace that allows sign-in, and
/// used from a network the workspace allows. Login hours are for people and do not
/// apply to keys. Metered, when asked, on a bucket keyed by the whole presented key: a
/// wrong secret cannot spend from the real key's budget.
async fn authenticate_key(state: &AppState, key: &str, ip: Option<IpAddr>, metered: bool) -> AppResult<Authenticated> {
    let Some(prefix) = apikey::prefix_of(key) else { return Ok(Authenticated { outcome: Ok(None), rate: None }) };
    let hint_key = format!("key:{prefix}");
    let hint = state.principals.whose(&hint_key);
    let (epoch, rate) = match (metered, hint) {
        (true, _) => {
            let meter = state.limiter.meter(ratelimit::Bucket::ApiKey, key);
            let keys: Vec<String> = hint.map(|(ws, _)| principals::epoch_key(ws)).into_iter().collect();
            let (mut values, wait) = state.store.get_metered(&keys, &meter.key, meter.quota, meter.now).await?;
            (values.pop().flatten(), Some(ratelimit::RateLimiter::verdict(wait)))
        }
        (false, Some((ws, _))) => (state.store.get(&principals::epoch_key(ws)).await?, None),
        (false, None) => (None, None),
    };
    let cached = match (hint, &epoch) {
        (Some((ws, id)), Some(e)) => state.principals.get(id, ws, e),
        _ => None,
    };
    let (row, ws) = match cached {
        Some(principals::Rows::Key { key, workspace }) => (key, workspace),
        _ => {
            let Some(row) = repo::api_keys::by_prefix(&state.db, prefix).await? else {
                return Ok(Authenticated { outcome: Ok(None), rate });
            };
            let Some(ws) = repo::workspaces::get(&state.db, row.workspace_id).await? else {
                return Ok(Authenticated { outcome: Ok(None), rate });
            };
            let (row, ws) = (Arc::new(row), Arc::new(ws));
            if hint == Some((row.workspace_id, row.id)) {
                match epoch {
                    Some(e) => state.principals.put(row.id, ws.id, e, principals::Rows::Key { key: row.clone(), workspace: ws.clone() }),
                    None => principals::start_epoch(state.store.as_ref(), ws.id).await?,
                }
            } else {
                state.principals.note_whose(&hint_key, row.workspace_id, row.id);
            }
            (row, ws)
        }
    };
    let now = state.clock.now();
    if !apikey::matches(key, &row.secret_hash) || row.revoked_at.is_some() || row.expires_at.is_some_and(|e| now >= e) {
        return Ok(Authenticated { outcome: Ok(None), rate });
    }
    let status = WorkspaceStatus::parse(&ws.status);
    // The key proved its secret, so its holder may learn why it stopped working.
    if status == WorkspaceStatus::Suspended {
        return Err(crate::error::AppError::WorkspaceSuspended);
    }
    if !status.allows_sign_in() {
        return Ok(Authenticated { outcome: Ok(None), rate });
    }
    let settings: SecuritySettings = serde_json::from_str(&ws.security_settings)
        .map_err(|e| crate::error::AppError::internal(format!("workspace security settings unreadable: {e}")))?;
    if !security_settings::effective(&settings, None, now).allows_ip(ip) {
        return Err(crate::error::AppError::LoginRestricted);
    }
    let ctx = EvalContext { now, ip, two_factor: false };
    let grants = state.grants.grants_for_key(&state.db, row.id, row.role_id, &ws, &ctx).await?;
    if state.principals.key_touch_due(row.id, KEY_TOUCH_EVERY) {
        touch_key(state, &row, ip).await;
    }
    let principal = Principal::User(UserPrincipal {
        user_id: row.id,
        workspace_id: row.workspace_id,
        username: row.name.clone(),
        credential: Credential::ApiKey(ApiKeyRef {
            id: row.id,
            name: row.name.clone(),
            prefix: row.prefix.clone(),
            role_id: row.role_id,
            created_by: row.created_by,
        }),
        grants: Arc::new(grants),
        department_id: None,
        team_id: None,
        primary_group_id: None,
        group_ids: Arc::new(Vec::new()),
        workspace_status: status,
    });
    Ok(Authenticated { outcome: Ok(Some(principal)), rate })
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
