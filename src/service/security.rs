//! Account security a user or admin manages: TOTP enrolment, recovery codes, the
//! workspace security settings and per-user overrides.
//!
//! Guarantees:
//! - adding, replacing or removing a second factor needs the current password (the
//!   password check is rate limited like a sign-in);
//! - a TOTP seed is stored sealed with the server key and returned only once, at the
//!   start of enrolment; enrolment completes only with a valid code;
//! - recovery codes are shown once and stored hashed; a new set replaces the old;
//! - settings and overrides are validated whole before anything is written, refuse a
//!   change that would lock the admin making it out, and are audited with before and
//!   after; an override always carries a reason, who set it and when;
//! - two-factor cannot be relaxed below the workspace rule by anyone but an Owner;
//!   nobody sets an override on themselves or on someone ranked at or above them.

use crate::audit::AuditEvent;
use crate::audit::Tx;
use crate::auth::RequestMeta;
use crate::auth::ratelimit::Bucket;
use crate::auth::security_settings::{
    self, EffectivePolicy, LoginHours, SecurityOverride, SecuritySettings, SessionLimitAction, TwoFactorRule,
};
use crate::auth::{UserPrincipal, effective_policy, twofactor};
use crate::authz::builtin::OWNER_RANK;
use crate::authz::check;
use crate::authz::eval::EvalContext;
use crate::domain::PASSWORD_MAX_CHARS;
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::secret::Secret;
use crate::service::sign_in::{Enrollment, TwoFactorStatus};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

fn event(p: &UserPrincipal, action: &'static str, target: Uuid, changes: Value, reason: Option<String>) -> AuditEvent {
    AuditEvent::Security {
        workspace_id: Some(p.workspace_id),
        actor: None,
        action,
        target_type: "user",
        target_id: Some(target.to_string()),
        changes,
        reason,
    }
}

/// The caller's current password, checked under the same limit as a sign-in.
async fn confirm_password(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, password: &str) -> AppResult<entity::user::Model> {
    state.limiter.check(Bucket::SignInAccount, &crate::service::sign_in::account_bucket(p.user_id)).await?;
    let user = repo::users::get(tx.db(), p.workspace_id, p.user_id).await?.ok_or(AppError::Unauthenticated)?;
    let ok = password.chars().count() <= PASSWORD_MAX_CHARS && state.hasher.verify(password, user.password_hash.as_deref()).await?;
    if !ok {
        tx.audit_failure(event(p, "security.password_check", p.user_id, json!({ "result": "wrong" }), None));
        return Err(AppError::bad_input("password", "is not correct"));
    }
    Ok(user)
}

pub async fn status(state: &AppState, p: &UserPrincipal) -> AppResult<TwoFactorStatus> {
    let user = repo::users::get(&state.db, p.workspace_id, p.user_id).await?.ok_or(AppError::Unauthenticated)?;
    let left = repo::security::unused_recovery_codes(&state.db, p.workspace_id, p.user_id).await?;
    let until =
        p.session().and_then(|s| s.record.proved_at).map(|t| t + crate::auth::session::STEP_UP_WINDOW).filter(|t| *t > state.clock.now());
    Ok(TwoFactorStatus {
        totp_enabled_at: user.totp_enabled_at.filter(|_| user.totp_secret.is_some()),
        recovery_codes_left: left,
        step_up_valid_until: until,
        session_two_factor: p.two_factor(),
    })
}

pub async fn start_totp(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, password: &str) -> AppResult<Enrollment> {
    let user = confirm_password(state, tx, p, password).await?;
    let ws = repo::workspaces::get(tx.db(), p.workspace_id).await?.ok_or(AppError::Unauthenticated)?;
    let secret = twofactor::new_totp_secret();
    let sealed = state.secret_box.seal(&secret, user.id.as_bytes());
    repo::security::set_totp_pending(tx.db(), p.workspace_id, p.user_id, Some(sealed)).await?;
    let uri = twofactor::otpauth_uri(&secret, &format!("Palisade {}", ws.name), &format!("{}@{}", user.username, ws.slug));
    tx.audit(event(p, "security.totp_enrollment_started", p.user_id, json!({ "totp": { "before": null, "after": "pending" } }), None));
    Ok(Enrollment {
        qr_svg: Secret::new(twofactor::qr_svg_data_uri(&uri)),
        secret: Secret::new(twofactor::base32_secret(&secret)),
        otpauth_uri: Secret::new(uri),
    })
}

/// Completes enrolment with a code from the new seed; returns a fresh set of recovery
/// codes (shown once).
pub async fn confirm_totp(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, code: &str) -> AppResult<Vec<Secret<String>>> {
    state.limiter.check(Bucket::TwoFactorAccount, &p.user_id.to_string()).await?;
    let user = repo::users::get(tx.db(), p.workspace_id, p.user_id).await?.ok_or(AppError::Unauthenticated)?;
    let Some(sealed) = &user.totp_pending_secret else {
        return Err(AppError::Conflict("no TOTP enrolment is in progress; call startTotpEnrollment first".into()));
    };
    let secret = state.secret_box.open(sealed, user.id.as_bytes())?;
    let now = u64::try_from(state.clock.now().timestamp()).unwrap_or(0);
    let Some(step) = twofactor::verify_totp(&secret, code, now, None) else {
        tx.audit_failure(event(p, "security.totp_enrollment", p.user_id, json!({ "result": "wrong_code" }), None));
        return Err(AppError::bad_input("code", "is not correct for the new authenticator"));
    };
    let was = user.totp_secret.is_some();
    repo::security::enable_totp(tx.db(), p.workspace_id, p.user_id, sealed.clone(), step, state.clock.now()).await?;
    let codes = new_recovery_codes(state, tx, p).await?;
    state.sessions.mark_proved(p.own_session()?, true).await?;
    tx.audit(event(
        p,
        if was { "security.totp_replaced" } else { "security.totp_enabled" },
        p.user_id,
        json!({ "totp": { "before": if was { "enabled" } else { "disabled" }, "after": "enabled" }, "recoveryCodes": { "before": null, "after": "regenerated" } }),
        None,
    ));
    let user_name = user.display_name.clone();
    crate::service::notify::mail_after_commit(
        state,
        tx,
        user_name.clone(),
        user.email.clone(),
        "Two-factor sign-in turned on".into(),
        format!(
            "Hello {user_name},\n\nAn authenticator app now protects your Palisade account.\nIf this was not you, contact your administrator now.\n"
        ),
    );
    Ok(codes)
}

async fn new_recovery_codes(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal) -> AppResult<Vec<Secret<String>>> {
    let codes = twofactor::new_recovery_codes();
    let hashes = codes.iter().map(|c| twofactor::hash_recovery_code(&twofactor::normalize_recovery_code(c.expose()))).collect();
    repo::security::replace_recovery_codes(tx.db(), p.workspace_id, p.user_id, hashes, state.clock.now()).await?;
    Ok(codes)
}

pub async fn disable_totp(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, password: &str) -> AppResult<()> {
    let user = confirm_password(state, tx, p, password).await?;
    if user.totp_secret.is_none() && user.totp_pending_secret.is_none() {
        return Err(AppError::Conflict("TOTP is not enabled".into()));
    }
    repo::security::disable_totp(tx.db(), p.workspace_id, p.user_id, state.clock.now()).await?;
    repo::security::replace_recovery_codes(tx.db(), p.workspace_id, p.user_id, Vec::new(), state.clock.now()).await?;
    tx.audit(event(
        p,
        "security.totp_disabled",
        p.user_id,
        json!({ "totp": { "before": "enabled", "after": "disabled" }, "recoveryCodes": { "before": "set", "after": null } }),
        None,
    ));
    let name = user.display_name.clone();
    crate::service::notify::mail_after_commit(
        state,
        tx,
        name.clone(),
        user.email.clone(),
        "Two-factor sign-in turned off".into(),
        format!(
            "Hello {name},\n\nThe authenticator app was removed from your Palisade account.\nIf this was not you, change your password and contact your administrator now.\n"
        ),
    );
    Ok(())
}

pub async fn regenerate_recovery_codes(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, password: &str) -> AppResult<Vec<Secret<String>>> {
    confirm_password(state, tx, p, password).await?;
    let codes = new_recovery_codes(state, tx, p).await?;
    tx.audit(event(
        p,
        "security.recovery_codes_regenerated",
        p.user_id,
        json!({ "recoveryCodes": { "before": "set", "after": "regenerated" } }),
        None,
    ));
    Ok(codes)
}

// ---- workspace settings ----------------------------------------------------------

pub async fn settings(state: &AppState, workspace_id: Uuid) -> AppResult<SecuritySettings> {
    let ws = repo::workspaces::get(&state.db, workspace_id).await?.ok_or(AppError::NotFound)?;
    serde_json::from_str(&ws.security_settings).map_err(AppError::internal)
}

fn check_minutes(field: &str, v: Option<u32>, min: u32, max: u32) -> AppResult<()> {
    match v {
        Some(m) if !(min..=max).contains(&m) => Err(AppError::bad_input(field, format!("must be from {min} to {max} minutes"))),
        _ => Ok(()),
    }
}

fn validate_hours(field: &str, h: Option<&LoginHours>) -> AppResult<()> {
    match h {
        Some(h) => h.validate(field),
        None => Ok(()),
    }
}

fn validate_settings(s: &SecuritySettings) -> AppResult<()> {
    check_minutes("sessionIdleMinutes", s.session_idle_minutes, 5, 7 * 24 * 60)?;
    check_minutes("sessionAbsoluteMinutes", s.session_absolute_minutes, 5, 90 * 24 * 60)?;
    if let (Some(i), Some(a)) = (s.session_idle_minutes, s.session_absolute_minutes)
        && a < i
    {
        return Err(AppError::bad_input("sessionAbsoluteMinutes", "must not be shorter than sessionIdleMinutes"));
    }
    if let Some(m) = s.max_sessions
        && !(1..=100).contains(&m)
    {
        return Err(AppError::bad_input("maxSessions", "must be from 1 to 100"));
    }
    if let TwoFactorRule::Permissions { permissions } = &s.two_factor
        && permissions.is_empty()
    {
        return Err(AppError::bad_input("twoFactor.permissions", "name at least one permission (or use ALL or OFF)"));
    }
    validate_hours("loginHours", s.login_hours.as_ref())
}

/// Refuses a rule that would refuse the very request that sets it.
fn keeps_actor_in(policy: &EffectivePolicy, meta: &RequestMeta, now: DateTime<Utc>) -> AppResult<()> {
    match policy.check(meta.ip, now) {
        Ok(()) => Ok(()),
        Err(security_settings::Restriction::Network) => {
            Err(AppError::bad_input("ipAllowlist", "would lock you out: your current address is not in it (add it, or use an override)"))
        }
        Err(security_settings::Restriction::Hours) => {
            Err(AppError::bad_input("loginHours", "would lock you out: now is outside these hours"))
        }
    }
}

pub async fn update_settings(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    meta: &RequestMeta,
    new: SecuritySettings,
) -> AppResult<SecuritySettings> {
    validate_settings(&new)?;
    let now = state.clock.now();
    let (actor, mut ws) = repo::users::get_with_workspace(tx.db(), p.workspace_id, p.user_id).await?.ok_or(AppError::Unauthenticated)?;
    let before: SecuritySettings = serde_json::from_str(&ws.security_settings).map_err(AppError::internal)?;
    ws.security_settings = serde_json::to_string(&new).map_err(AppError::internal)?;
    keeps_actor_in(&effective_policy(&actor, &ws, now)?, meta, now)?;
    repo::security::set_workspace_settings(tx.db(), p.workspace_id, ws.security_settings.clone(), now).await?;
    crate::service::principals_changed(state, tx, p.workspace_id).await;
    let (b, a) = (serde_json::to_value(&before).map_err(AppError::internal)?, serde_json::to_value(&new).map_err(AppError::internal)?);
    tx.audit(AuditEvent::Security {
        workspace_id: Some(p.workspace_id),
        actor: None,
        action: "security.settings_updated",
        target_type: "workspace",
        target_id: Some(p.workspace_id.to_string()),
        changes: crate::audit::diff(&b, &a),
        reason: None,
    });
    Ok(new)
}

// ---- per-user overrides ------------------------------------------------------------

pub struct OverrideInput {
    pub reason: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub two_factor_required: Option<bool>,
    pub ip_lockdown_enabled: Option<bool>,
    pub extra_networks: Vec<String>,
    pub login_hours_enabled: Option<bool>,
    pub login_hours: Option<LoginHours>,
    pub session_idle_minutes: Option<u32>,
    pub session_absolute_minutes: Option<u32>,
    pub max_sessions: Option<u32>,
}

fn reason(field: &str, raw: &str) -> AppResult<String> {
    crate::domain::parse_reason(field, raw, 5)
}

/// The override's rules alone (without who/when), as the audit log shows them.
fn rules_json(o: &SecurityOverride) -> Value {
    let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        for k in ["setBy", "setByLabel", "setAt", "reason"] {
            m.remove(k);
        }
    }
    v
}

async fn target_user(tx: &Tx<'_>, p: &UserPrincipal, user_id: Uuid) -> AppResult<entity::user::Model> {
    let target = repo::users::get(tx.db(), p.workspace_id, user_id).await?.ok_or(AppError::NotFound)?;
    if target.id == p.user_id {
        return Err(AppError::Denied("you cannot set or clear a security override on yourself".into()));
    }
    let rank = crate::service::roles::user_rank(tx.db(), p.workspace_id, &target).await?;
    check::rank_below_actor(&p.grants, rank, &format!("user {}", target.username))?;
    Ok(target)
}

pub async fn set_override(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    user_id: Uuid,
    input: OverrideInput,
) -> AppResult<(entity::user::Model, SecurityOverride)> {
    let why = reason("reason", &input.reason)?;
    let now = state.clock.now();
    if input.expires_at.is_some_and(|t| t <= now) {
        return Err(AppError::bad_input("expiresAt", "must be in the future"));
    }
    check_minutes("sessionIdleMinutes", input.session_idle_minutes, 5, 7 * 24 * 60)?;
    check_minutes("sessionAbsoluteMinutes", input.session_absolute_minutes, 5, 90 * 24 * 60)?;
    if input.max_sessions.is_some_and(|m| !(1..=100).contains(&m)) {
        return Err(AppError::bad_input("maxSessions", "must be from 1 to 100"));
    }
    validate_hours("loginHours", input.login_hours.as_ref())?;
    let extra_networks = security_settings::parse_networks("extraNetworks", &input.extra_networks)?;
    let target = target_user(tx, p, user_id).await?;
    let ws = repo::workspaces::get(tx.db(), p.workspace_id).await?.ok_or(AppError::Unauthenticated)?;

    if input.two_factor_required == Some(false) && p.grants.top_rank < OWNER_RANK {
        // Would the workspace rule (without any override) require it of this person?
        let settings: SecuritySettings = serde_json::from_str(&ws.security_settings).map_err(AppError::internal)?;
        let plain = security_settings::effective(&settings, None, now);
        let grants = state.grants.grants(tx.db(), &target, &ws, &EvalContext { now, ip: None, two_factor: true }).await?;
        if plain.two_factor_required(|perm| grants.grants.has(perm)) {
            return Err(AppError::Denied("only an Owner may relax two-factor below the workspace rule".into()));
        }
    }
    let before: Option<SecurityOverride> = match &target.security_override {
        Some(j) => Some(serde_json::from_str(j).map_err(AppError::internal)?),
        None => None,
    };
    let ov = SecurityOverride {
        reason: why.clone(),
        set_by: Some(p.user_id),
        set_by_label: p.username.clone(),
        set_at: Some(now),
        expires_at: input.expires_at,
        two_factor_required: input.two_factor_required,
        ip_lockdown_enabled: input.ip_lockdown_enabled,
        extra_networks,
        login_hours_enabled: input.login_hours_enabled,
        login_hours: input.login_hours,
        session_idle_minutes: input.session_idle_minutes,
        session_absolute_minutes: input.session_absolute_minutes,
        max_sessions: input.max_sessions,
    };
    let json = serde_json::to_string(&ov).map_err(AppError::internal)?;
    repo::security::set_override(tx.db(), p.workspace_id, target.id, Some(json), now).await?;
    crate::service::principals_changed(state, tx, p.workspace_id).await;
    let b = before.as_ref().map(rules_json).unwrap_or(Value::Null);
    tx.audit(event(p, "security.override_set", target.id, json!({ "override": { "before": b, "after": rules_json(&ov) } }), Some(why)));
    Ok((target, ov))
}

pub async fn clear_override(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, user_id: Uuid, why: &str) -> AppResult<()> {
    let why = reason("reason", why)?;
    let target = target_user(tx, p, user_id).await?;
    let Some(before) = &target.security_override else {
        return Err(AppError::NotFound);
    };
    let before: SecurityOverride = serde_json::from_str(before).map_err(AppError::internal)?;
    repo::security::set_override(tx.db(), p.workspace_id, target.id, None, state.clock.now()).await?;
    crate::service::principals_changed(state, tx, p.workspace_id).await;
    tx.audit(event(
        p,
        "security.override_cleared",
        target.id,
        json!({ "override": { "before": rules_json(&before), "after": null } }),
        Some(why),
    ));
    Ok(())
}

pub struct OverrideRow {
    pub user: entity::user::Model,
    pub rules: SecurityOverride,
}

pub async fn overrides(state: &AppState, workspace_id: Uuid) -> AppResult<Vec<OverrideRow>> {
    let users = repo::security::users_with_overrides(&state.db, workspace_id).await?;
    let mut out = Vec::with_capacity(users.len());
    for user in users {
        let Some(j) = &user.security_override else { continue };
        let rules: SecurityOverride = serde_json::from_str(j).map_err(AppError::internal)?;
        out.push(OverrideRow { user, rules });
    }
    Ok(out)
}

/// Re-exported so the GraphQL layer can name the limit action without reaching into auth.
pub type LimitAction = SessionLimitAction;
