//! Master admins' sign-in and step-up.
//!
//! Guarantees:
//! - a master admin never signs in with a password alone: the password opens a
//!   challenge, and only a TOTP code (or a recovery code) completes it;
//! - the first sign-in enrols the authenticator: the challenge carries a new seed, the
//!   code that answers it confirms the seed, and recovery codes are shown once; of two
//!   concurrent enrolments only one takes effect;
//! - the same throttles as staff (per address, per account resolved from what was
//!   typed, per challenge, per account for codes), the same failure counter reported at
//!   the next sign-in, and the same single-use rules (a TOTP step, a recovery code and
//!   a challenge each work once);
//! - everything lands in the platform audit log.

use crate::audit::Tx;
use crate::audit::{Actor, ActorKind, AuditEvent};
use crate::auth::RequestMeta;
use crate::auth::ratelimit::Bucket;
use crate::auth::session::Subject;
use crate::auth::{MasterPrincipal, twofactor};
use crate::domain::{PASSWORD_MAX_CHARS, fold_key};
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::secret::Secret;
use crate::service::sign_in::{
    CHALLENGE_ATTEMPTS, CHALLENGE_TTL, Challenge, ChallengeIssued, FAILURES_TTL, SignedIn, TwoFactorMethod, VerifyRequest, anonymous_as,
    challenge_key, limit, limit_before, random_id, register_undo,
};
use crate::service::sign_in::{Enrollment, TwoFactorStatus};
use crate::state::AppState;
use entity::master_admin;
use serde_json::json;
use uuid::Uuid;

fn failures_key(admin_id: Uuid) -> String {
    format!("master_login_failures:{admin_id}")
}

/// The per-account password budget of a master admin (sign-in and step-up alike).
fn account_bucket(admin_id: Uuid) -> String {
    format!("master\0{admin_id}")
}

fn code_bucket(admin_id: Uuid) -> String {
    format!("master:{admin_id}")
}

fn admin_actor(a: &master_admin::Model) -> Actor {
    Actor::new(ActorKind::MasterAdmin, Some(a.id), Some(a.email.clone()))
}

fn event(actor: Option<Actor>, action: &'static str, admin_id: Uuid, changes: serde_json::Value) -> AuditEvent {
    AuditEvent::Security {
        workspace_id: None,
        actor,
        action,
        target_type: "master_admin",
        target_id: Some(admin_id.to_string()),
        changes,
        reason: None,
    }
}

async fn failures(state: &AppState, admin_id: Uuid) -> AppResult<i64> {
    Ok(state.store.get(&failures_key(admin_id)).await?.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// What the password step learned before its transaction opened.
pub enum MasterChecked {
    Checked {
        admin: Option<master_admin::Model>,
        matched: bool,
        typed: String,
    },
    /// A limit refused the attempt; the event goes on the record as its failure entry.
    Throttled {
        error: AppError,
        audit: AuditEvent,
    },
}

/// The limits and the password check, outside any transaction (so that concurrent
/// sign-ins hash in parallel, even on SQLite's single writer).
pub async fn check_password(state: &AppState, meta: &RequestMeta, email: &str, password: &str) -> AppResult<MasterChecked> {
    let ip = meta.ip_string().unwrap_or_else(|| "unknown".into());
    let typed = fold_key(email.trim());
    if let Some((error, audit)) = limit_before(state, Bucket::SignInIp, &ip, anonymous_as(email)).await? {
        return Ok(MasterChecked::Throttled { error, audit });
    }
    let admin = repo::master_admins::by_email_key(&state.db, &typed).await?;
    let account = match &admin {
        Some(a) => account_bucket(a.id),
        None => format!("master\0{typed}"),
    };
    if let Some((error, audit)) = limit_before(state, Bucket::SignInAccount, &account, anonymous_as(email)).await? {
        return Ok(MasterChecked::Throttled { error, audit });
    }
    let matched = password.chars().count() <= PASSWORD_MAX_CHARS
        && state.hasher.verify(password, admin.as_ref().map(|a| a.password_hash.as_str())).await?;
    Ok(MasterChecked::Checked { admin, matched, typed })
}

/// The password step, in its transaction: answers a challenge (never a session).
pub async fn login(state: &AppState, tx: &Tx<'_>, email: &str, checked: MasterChecked) -> AppResult<ChallengeIssued> {
    let (admin, matched, typed) = match checked {
        MasterChecked::Checked { admin, matched, typed } => (admin, matched, typed),
        MasterChecked::Throttled { error, audit } => {
            tx.audit_failure(audit);
            return Err(error);
        }
    };
    // Unknown addresses are counted too, so the work done does not tell them apart.
    let failure_key = match &admin {
        Some(a) => failures_key(a.id),
        None => format!("master_login_failures:unknown:{}", crate::auth::session::hash_token(&typed)),
    };
    let Some(admin) = admin.filter(|a| matched && a.active) else {
        state.metrics.sign_in("failure");
        state.store.incr(&failure_key, 1, FAILURES_TTL).await?;
        tx.audit_failure(AuditEvent::MasterSignInFailed { email: email.to_owned() });
        return Err(AppError::InvalidCredentials);
    };
    let now = state.clock.now();
    let expires_at = now + chrono::Duration::from_std(CHALLENGE_TTL).unwrap_or_default();
    let (methods, enrollment, sealed) = match &admin.totp_secret {
        Some(_) => {
            let mut m = vec![TwoFactorMethod::Totp];
            if !repo::master_admins::recovery_hashes(&admin).is_empty() {
                m.push(TwoFactorMethod::Recovery);
            }
            (m, None, None)
        }
        None => {
            let seed = twofactor::new_totp_secret();
            let sealed = state.secret_box.try_seal(&seed, admin.id.as_bytes())?;
            let uri = twofactor::otpauth_uri(&seed, "Palisade platform", &admin.email);
            let e = Enrollment {
                qr_svg: Secret::new(twofactor::qr_svg_data_uri(&uri)),
                secret: Secret::new(twofactor::base32_secret(&seed)),
                otpauth_uri: Secret::new(uri),
            };
            (vec![TwoFactorMethod::Totp], Some(e), Some(sealed))
        }
    };
    let id = random_id();
    let challenge = Challenge {
        user_id: admin.id,
        workspace_id: Uuid::nil(),
        methods: methods.clone(),
        reasons: vec![if sealed.is_some() { "enrollment".into() } else { "mandatory".into() }],
        expires_at,
        email_code_hash: None,
        failures: failures(state, admin.id).await?,
        master: true,
        enrollment: sealed,
    };
    let key = challenge_key(&id);
    state.store.set(&key, &serde_json::to_string(&challenge).map_err(AppError::internal)?, CHALLENGE_TTL).await?;
    let store = state.store.clone();
    tx.on_rollback(move || {
        Box::pin(async move {
            let _ = store.del(&key).await;
        })
    });
    tx.audit(event(
        Some(admin_actor(&admin)),
        "platform.challenge_issued",
        admin.id,
        json!({ "methods": methods.iter().map(|m| format!("{m:?}").to_lowercase()).collect::<Vec<_>>(), "enrollment": enrollment.is_some() }),
    ));
    Ok(ChallengeIssued { id, methods, expires_at, enrollment })
}

/// The second step of a master admin's sign-in (called by `verifyTwoFactor` once the
/// challenge is known to be a master admin's and its own budget was spent).
pub(crate) async fn verify(
    state: &AppState,
    tx: &Tx<'_>,
    meta: &RequestMeta,
    req: &VerifyRequest<'_>,
    key: &str,
    challenge: Challenge,
) -> AppResult<SignedIn> {
    let expired = || AppError::Denied("the sign-in challenge has expired or is unknown; sign in again".into());
    let admin = repo::master_admins::get(tx.db(), challenge.user_id).await?.filter(|a| a.active).ok_or_else(expired)?;
    limit(state, tx, Bucket::TwoFactorAccount, &code_bucket(admin.id), None, admin_actor(&admin)).await?;
    let refuse = |why: &str| {
        tx.audit_failure(event(
            Some(admin_actor(&admin)),
            "platform.two_factor",
            admin.id,
            json!({ "method": format!("{:?}", req.method).to_lowercase(), "result": why }),
        ));
    };
    let now = state.clock.now();
    if now >= challenge.expires_at {
        state.store.del(key).await?;
        refuse("expired");
        return Err(expired());
    }
    if !challenge.methods.contains(&req.method) {
        refuse("method_not_allowed");
        return Err(AppError::bad_input("method", "is not offered for this sign-in"));
    }
    let attempts = state.store.incr(&format!("{key}:attempts"), 1, CHALLENGE_TTL).await?;
    if attempts > CHALLENGE_ATTEMPTS {
        state.store.del(key).await?;
        refuse("too_many_attempts");
        return Err(expired());
    }
    let unix = u64::try_from(now.timestamp()).unwrap_or(0);
    // For an enrolment, the confirmed seed and the step its code used.
    let mut enrol: Option<(String, u64)> = None;
    let ok = match (req.method, &challenge.enrollment) {
        (TwoFactorMethod::Totp, Some(sealed)) => {
            let seed = state.secret_box.open(sealed, admin.id.as_bytes())?;
            match twofactor::verify_totp(&seed, req.code, unix, None) {
                Some(step) => {
                    enrol = Some((sealed.clone(), step));
                    true
                }
                None => false,
            }
        }
        (TwoFactorMethod::Totp, None) => check_totp(state, tx, &admin, req.code).await?,
        (TwoFactorMethod::Recovery, None) => use_recovery_code(tx, &admin, req.code).await?,
        _ => false,
    };
    if !ok {
        state.store.incr(&failures_key(admin.id), 1, FAILURES_TTL).await?;
        refuse("wrong_code");
        return Err(AppError::bad_input("code", "is not correct"));
    }
    // Single use: of two concurrent correct answers only the one that removes the
    // challenge signs in.
    if !state.store.del(key).await? {
        return Err(expired());
    }
    let mut recovery_codes = Vec::new();
    if let Some((sealed, step)) = enrol {
        let codes = twofactor::new_recovery_codes();
        let hashes: Vec<String> =
            codes.iter().map(|c| twofactor::hash_recovery_code(&twofactor::normalize_recovery_code(c.expose()))).collect();
        if !repo::master_admins::enable_totp(tx.db(), admin.id, sealed, step, &hashes, now).await? {
            // Another sign-in enrolled an authenticator first; this seed is not it.
            return Err(expired());
        }
        tx.audit(event(
            Some(admin_actor(&admin)),
            "platform.totp_enrolled",
            admin.id,
            json!({ "totp": { "before": null, "after": "enabled" } }),
        ));
        recovery_codes = codes;
    }
    let failed = challenge.failures.max(failures(state, admin.id).await?);
    let (token, session) =
        state.sessions.create(Subject::MasterAdmin { admin_id: admin.id }, meta.ip_string(), meta.user_agent.clone(), true).await?;
    register_undo(state, tx, &session);
    state.store.del(&failures_key(admin.id)).await?;
    tx.audit(AuditEvent::MasterSignedIn { admin_id: admin.id, email: admin.email.clone(), session_id: session.record.id });
    tx.audit(event(
        Some(admin_actor(&admin)),
        "platform.sign_in_details",
        admin.id,
        json!({ "twoFactor": format!("{:?}", req.method).to_lowercase(), "failedAttemptsBefore": failed }),
    ));
    state.metrics.sign_in("success");
    Ok(SignedIn { token, session, failed_attempts: failed, new_device_cookie: None, recovery_codes })
}

/// A code of the admin's enrolled authenticator; spends its step.
async fn check_totp(state: &AppState, tx: &Tx<'_>, admin: &master_admin::Model, code: &str) -> AppResult<bool> {
    let Some(sealed) = &admin.totp_secret else { return Ok(false) };
    let seed = state.secret_box.open(sealed, admin.id.as_bytes())?;
    let unix = u64::try_from(state.clock.now().timestamp()).unwrap_or(0);
    let last = admin.totp_last_step.and_then(|s| u64::try_from(s).ok());
    match twofactor::verify_totp(&seed, code, unix, last) {
        Some(step) => Ok(repo::master_admins::claim_totp_step(tx.db(), admin.id, step).await?),
        None => Ok(false),
    }
}

async fn use_recovery_code(tx: &Tx<'_>, admin: &master_admin::Model, code: &str) -> AppResult<bool> {
    let hash = twofactor::hash_recovery_code(&twofactor::normalize_recovery_code(code));
    let before = repo::master_admins::recovery_hashes(admin);
    if !before.iter().any(|h| twofactor::ct_eq(h, &hash)) {
        return Ok(false);
    }
    let after: Vec<String> = before.into_iter().filter(|h| !twofactor::ct_eq(h, &hash)).collect();
    Ok(repo::master_admins::swap_recovery_codes(tx.db(), admin.id, &admin.recovery_codes, &after).await?)
}

/// A master admin's second factor and step-up state.
pub async fn status(state: &AppState, m: &MasterPrincipal) -> AppResult<TwoFactorStatus> {
    let admin = repo::master_admins::get(&state.db, m.admin_id).await?.ok_or(AppError::Unauthenticated)?;
    let until = m.session.record.proved_at.map(|t| t + crate::auth::session::STEP_UP_WINDOW).filter(|t| *t > state.clock.now());
    Ok(TwoFactorStatus {
        totp_enabled_at: admin.totp_enabled_at.filter(|_| admin.totp_secret.is_some()),
        recovery_codes_left: u64::try_from(repo::master_admins::recovery_hashes(&admin).len()).unwrap_or(u64::MAX),
        step_up_valid_until: until,
        session_two_factor: m.session.record.two_factor,
    })
}

/// Proves the password or a TOTP code again on a master admin's session (step-up);
/// each guess spends the budget of its kind.
pub async fn reauthenticate(
    state: &AppState,
    tx: &Tx<'_>,
    m: &MasterPrincipal,
    password: Option<&str>,
    code: Option<&str>,
) -> AppResult<crate::auth::session::ActiveSession> {
    let admin = repo::master_admins::get(tx.db(), m.admin_id).await?.filter(|a| a.active).ok_or(AppError::Unauthenticated)?;
    let (ok, method) = match (password, code) {
        (Some(pw), None) => {
            limit(state, tx, Bucket::SignInAccount, &account_bucket(admin.id), None, admin_actor(&admin)).await?;
            (pw.chars().count() <= PASSWORD_MAX_CHARS && state.hasher.verify(pw, Some(&admin.password_hash)).await?, "password")
        }
        (None, Some(c)) => {
            limit(state, tx, Bucket::TwoFactorAccount, &code_bucket(admin.id), None, admin_actor(&admin)).await?;
            (check_totp(state, tx, &admin, c).await?, "totp")
        }
        _ => return Err(AppError::bad_input("password", "give either password or code")),
    };
    if !ok {
        tx.audit_failure(event(Some(admin_actor(&admin)), "platform.step_up", admin.id, json!({ "method": method, "result": "wrong" })));
        return Err(AppError::bad_input(if method == "password" { "password" } else { "code" }, "is not correct"));
    }
    let session = state.sessions.mark_proved(&m.session, method == "totp").await?;
    tx.audit(event(Some(admin_actor(&admin)), "platform.step_up", admin.id, json!({ "method": method })));
    Ok(session)
}
