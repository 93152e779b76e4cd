//! Sign-in (with two-factor challenges), step-up, sign-out, password change and
//! session management.
//!
//! Guarantees:
//! - every failed password check (unknown workspace, unknown account, wrong password,
//!   inactive or unlicensed account, suspended workspace) gives the same error after
//!   the same Argon2 work, and the rate limits are checked before any Argon2 work;
//! - a session is created only after every check passed (password, account state,
//!   network and hours rules, second factor when one is required) and is removed
//!   again if the audit write does not commit;
//! - a second factor is required when the workspace or the user's override enforces
//!   it, when the user enrolled TOTP, and when the sign-in looks suspicious (a device or
//!   network not seen for that user before, or a burst of failures); the challenge is
//!   single use, expires, and allows a bounded number of attempts;
//! - a TOTP step, an email code and a recovery code each work once;
//! - a password change ends the user's other sessions unless asked to keep them.

use crate::audit::Tx;
use crate::audit::{Actor, ActorKind, AuditEvent, change};
use crate::auth::RequestMeta;
use crate::auth::ratelimit::Bucket;
use crate::auth::security_settings::{EffectivePolicy, SessionLimitAction};
use crate::auth::session::{ActiveSession, Subject};
use crate::auth::{Principal, UserPrincipal, effective_policy, may_sign_in, twofactor};
use crate::authz::eval::EvalContext;
use crate::domain::{NewPassword, PASSWORD_MAX_CHARS, WorkspaceStatus, fold_key};
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::service::notify::mail_after_commit;
use crate::service::sign_in::{
    CHALLENGE_ATTEMPTS, CHALLENGE_TTL, Challenge, ChallengeIssued, FAILURES_TTL, LoginResult, SignedIn, TwoFactorMethod, VerifyRequest,
    account_bucket, anonymous_as, challenge_key, limit, limit_before, random_id, register_undo, security_event,
};
use crate::state::AppState;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::time::Duration;
use uuid::Uuid;

/// Failed sign-ins since the last success that make the next success ask for 2FA.
pub const FAILURE_BURST: i64 = 5;
fn failures_key(user_id: Uuid) -> String {
    format!("login_failures:{user_id}")
}

fn footprint_hash(kind: &str, value: &str) -> String {
    Sha256::digest(format!("palisade footprint v1\0{kind}\0{value}").as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The network a sign-in came from, coarse enough that a home router's new lease does
/// not look like a new place: /24 for IPv4, /64 for IPv6.
fn network_of(ip: Option<std::net::IpAddr>) -> String {
    use std::net::IpAddr;
    match ip.map(|i| i.to_canonical()) {
        Some(IpAddr::V4(v4)) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "unknown".into(),
    }
}

fn user_actor(user: &entity::user::Model) -> Actor {
    Actor::new(ActorKind::User, Some(user.id), Some(user.username.clone()))
}

pub struct LoginRequest<'a> {
    pub workspace: &'a str,
    pub login: &'a str,
    pub password: &'a str,
    pub device: Option<String>,
}

/// The part of a sign-in that runs before its transaction opens (so that concurrent
/// sign-ins hash in parallel, even on SQLite's single writer): the limits, whom the
/// name resolves to, and the password check.
// Built and consumed once per sign-in; boxing the rows would only add allocations.
#[allow(clippy::large_enum_variant)]
pub enum PasswordChecked {
    Checked {
        ws: Option<entity::workspace::Model>,
        user: Option<entity::user::Model>,
        matched: bool,
        account_key: String,
    },
    /// A limit refused the attempt; the event goes on the record as its failure entry.
    Throttled {
        error: AppError,
        audit: AuditEvent,
    },
}

/// The first half of `login`; reads outside any transaction, writes nothing.
pub async fn check_password(state: &AppState, meta: &RequestMeta, req: &LoginRequest<'_>) -> AppResult<PasswordChecked> {
    let db = &state.db;
    let login = req.login;
    let slug = req.workspace.trim();
    let login_key = fold_key(login.trim());
    // Limits first: a throttled attempt costs no Argon2 work.
    let ip = meta.ip_string().unwrap_or_else(|| "unknown".into());
    if let Some((error, audit)) = limit_before(state, Bucket::SignInIp, &ip, anonymous_as(login)).await? {
        return Ok(PasswordChecked::Throttled { error, audit });
    }
    let ws = repo::workspaces::by_slug(db, slug).await?.filter(|w| WorkspaceStatus::parse(&w.status) != WorkspaceStatus::Deleted);
    let user = match &ws {
        Some(ws) => repo::users::find_for_login(db, ws.id, &login_key).await?,
        None => None,
    };
    // One budget per account whatever was typed (username or email, any case or
    // Unicode form); a name that resolves to nobody is limited on its normalised form,
    // exactly like a real one.
    let account_key = match &user {
        Some(u) => account_bucket(u.id),
        None => format!("{}\0{login_key}", fold_key(slug)),
    };
    if let Some((error, audit)) = limit_before(state, Bucket::SignInAccount, &account_key, anonymous_as(login)).await? {
        return Ok(PasswordChecked::Throttled { error, audit });
    }
    // Over-long input is refused without hashing it; that says nothing about accounts.
    let matched = if req.password.chars().count() > PASSWORD_MAX_CHARS {
        false
    } else {
        state.hasher.verify(req.password, user.as_ref().and_then(|u| u.password_hash.as_deref())).await?
    };
    Ok(PasswordChecked::Checked { ws, user, matched, account_key })
}

/// The second half of a sign-in, in its transaction, after `check_password`.
pub async fn login(
    state: &AppState,
    tx: &Tx<'_>,
    meta: &RequestMeta,
    req: LoginRequest<'_>,
    checked: PasswordChecked,
) -> AppResult<LoginResult> {
    let db = tx.db();
    let login = req.login;
    let (ws, user, matched, account_key) = match checked {
        PasswordChecked::Checked { ws, user, matched, account_key } => (ws, user, matched, account_key),
        PasswordChecked::Throttled { error, audit } => {
            tx.audit_failure(audit);
            return Err(error);
        }
    };
    let now = state.clock.now();
    // Network and hours are decided before the password is looked at, so a right and a
    // wrong password get the same answer from a place or time the rules refuse. Names
    // that match nobody get the workspace's own rules.
    if let Some(ws) = &ws {
        let policy = match &user {
            Some(u) => effective_policy(u, ws, now)?,
            None => crate::auth::workspace_policy(ws, now)?,
        };
        if let Err(rule) = policy.check(meta.ip, now) {
            if let Some(u) = &user
                && !matched
            {
                state.store.incr(&failures_key(u.id), 1, FAILURES_TTL).await?;
            }
            tx.audit_failure(security_event(
                Some(ws.id),
                Some(anonymous_as(login)),
                "auth.sign_in_restricted",
                user.as_ref().map(|u| u.id),
                json!({ "rule": rule.as_str(), "passwordCorrect": matched && user.is_some() }),
                None,
            ));
            return Err(AppError::LoginRestricted);
        }
    }
    let (Some(ws), Some(user)) = (ws, user) else {
        return Err(fail(state, tx, login, None, Err(&account_key)).await);
    };
    if !matched {
        return Err(fail(state, tx, login, Some(ws.id), Ok(user.id)).await);
    }
    // Only someone who proved the password of an account that could otherwise sign in
    // learns that the workspace is suspended.
    let usable = entity::workspace::Model { status: WorkspaceStatus::Active.as_str().into(), ..ws.clone() };
    if WorkspaceStatus::parse(&ws.status) == WorkspaceStatus::Suspended && may_sign_in(&user, &usable, state.clock.now()) {
        tx.audit_failure(security_event(
            Some(ws.id),
            Some(user_actor(&user)),
            "auth.sign_in_refused",
            Some(user.id),
            json!({ "workspaceStatus": "suspended" }),
            Some("the workspace is suspended".into()),
        ));
        return Err(AppError::WorkspaceSuspended);
    }
    if !may_sign_in(&user, &ws, state.clock.now()) {
        return Err(fail(state, tx, login, Some(ws.id), Ok(user.id)).await);
    }
    let policy = effective_policy(&user, &ws, now)?;

    // Why a second factor is needed, if it is.
    let mut reasons = Vec::new();
    let grants = state.grants.grants(db, &user, &ws, &EvalContext { now, ip: meta.ip, two_factor: true }).await?;
    if policy.two_factor_required(|p| grants.grants.has(p)) {
        reasons.push("enforced");
    }
    if user.totp_secret.is_some() {
        reasons.push("enrolled");
    }
    let failures: i64 = state.store.get(&failures_key(user.id)).await?.and_then(|v| v.parse().ok()).unwrap_or(0);
    if failures >= FAILURE_BURST {
        reasons.push("failed_attempts");
    }
    let seen = Footprints::of(req.device.as_deref(), meta.ip);
    if repo::security::has_footprints(db, ws.id, user.id).await? && !seen.known(db, ws.id, user.id).await? {
        reasons.push("new_device");
    }
    if reasons.is_empty() {
        let signed = complete(state, tx, meta, &user, &ws, &policy, false, req.device, failures, None).await?;
        return Ok(LoginResult::SignedIn(Box::new(signed)));
    }
    issue_challenge(state, tx, &user, &ws, reasons, failures).await.map(LoginResult::Challenge)
}

/// A failed sign-in: counted toward the failure burst (for known accounts), audited,
/// and answered with the one error every failure gets.
/// Unknown accounts are counted too (under a hash of what was typed), so the work done
/// does not tell them apart.
async fn fail(state: &AppState, tx: &Tx<'_>, login: &str, workspace_id: Option<Uuid>, who: Result<Uuid, &str>) -> AppError {
    state.metrics.sign_in("failure");
    let key = match who {
        Ok(uid) => failures_key(uid),
        Err(typed) => format!("login_failures:unknown:{}", crate::auth::session::hash_token(typed)),
    };
    if let Err(e) = state.store.incr(&key, 1, FAILURES_TTL).await {
        return AppError::from(e);
    }
    tx.audit_failure(AuditEvent::SignInFailed { workspace_id, login: login.to_owned() });
    AppError::InvalidCredentials
}

struct Footprints {
    device: Option<String>,
    network: String,
}

impl Footprints {
    fn of(device: Option<&str>, ip: Option<std::net::IpAddr>) -> Self {
        Self { device: device.map(|d| footprint_hash("device", d)), network: footprint_hash("network", &network_of(ip)) }
    }

    async fn known(&self, db: &impl sea_orm::ConnectionTrait, ws: Uuid, user: Uuid) -> AppResult<bool> {
        let device = match &self.device {
            Some(d) => repo::security::knows_footprint(db, ws, user, "device", d).await?,
            None => false,
        };
        Ok(device && repo::security::knows_footprint(db, ws, user, "network", &self.network).await?)
    }
}

async fn issue_challenge(
    state: &AppState,
    tx: &Tx<'_>,
    user: &entity::user::Model,
    ws: &entity::workspace::Model,
    reasons: Vec<&'static str>,
    failures: i64,
) -> AppResult<ChallengeIssued> {
    let now = state.clock.now();
    let mut methods = Vec::new();
    if user.totp_secret.is_some() {
        methods.push(TwoFactorMethod::Totp);
    } else {
        methods.push(TwoFactorMethod::Email);
    }
    if repo::security::unused_recovery_codes(tx.db(), ws.id, user.id).await? > 0 {
        methods.push(TwoFactorMethod::Recovery);
    }
    let id = random_id();
    let expires_at = now + chrono::Duration::from_std(CHALLENGE_TTL).unwrap_or_default();
    let mut challenge = Challenge {
        user_id: user.id,
        workspace_id: ws.id,
        methods: methods.clone(),
        reasons: reasons.iter().map(|r| (*r).to_owned()).collect(),
        expires_at,
        email_code_hash: None,
        failures,
        master: false,
        enrollment: None,
    };
    let key = challenge_key(&id);
    if methods.contains(&TwoFactorMethod::Email) {
        limit(state, tx, Bucket::EmailCode, &user.id.to_string(), Some(ws.id), user_actor(user)).await?;
        send_sign_in_code(state, tx, user, ws, &id, &mut challenge).await?;
    } else {
        store_challenge(state, &key, &challenge).await?;
    }
    let store = state.store.clone();
    tx.on_rollback(move || {
        Box::pin(async move {
            let _ = store.del(&key).await;
        })
    });
    tx.audit(security_event(
        Some(ws.id),
        Some(user_actor(user)),
        "auth.challenge_issued",
        Some(user.id),
        json!({ "methods": methods.iter().map(|m| m.as_str()).collect::<Vec<_>>(), "reasons": reasons }),
        None,
    ));
    Ok(ChallengeIssued { id, methods, expires_at, enrollment: None })
}

/// How long a sign-in code may take to reach the mail server before the sign-in says
/// it could not be sent (well inside the request's execution timeout).
const SIGN_IN_CODE_DEADLINE: Duration = Duration::from_secs(5);

/// Keeps a challenge for the rest of its life.
async fn store_challenge(state: &AppState, key: &str, challenge: &Challenge) -> AppResult<()> {
    let ttl = (challenge.expires_at - state.clock.now()).to_std().unwrap_or_default().max(Duration::from_secs(1));
    let json = serde_json::to_string(challenge).map_err(AppError::internal)?;
    Ok(state.store.set(key, &json, ttl).await?)
}

/// Makes a new email code for `challenge`, stores the challenge with its hash, and
/// hands the code to the mail server before answering. A code that cannot be handed
/// over is never answered as sent: the failure is audited and the caller gets
/// `SignInCodeUndelivered`, with the challenge kept so `resendSignInCode` can try again
/// (a previous code stops working either way).
async fn send_sign_in_code(
    state: &AppState,
    tx: &Tx<'_>,
    user: &entity::user::Model,
    ws: &entity::workspace::Model,
    id: &str,
    challenge: &mut Challenge,
) -> AppResult<()> {
    let code = twofactor::new_email_code();
    challenge.email_code_hash = Some(twofactor::hash_email_code(state.server_key.expose(), id, code.expose()));
    store_challenge(state, &challenge_key(id), challenge).await?;
    let body = format!(
        "Hello {name},\n\nYour Palisade sign-in code for workspace {ws} is:\n\n    {code}\n\nIt works once, for the sign-in \
         you just started, until {until} UTC.\nIf this was not you, someone knows your password: change it now.\n",
        name = user.display_name,
        ws = ws.name,
        code = code.expose(),
        until = challenge.expires_at.format("%Y-%m-%d %H:%M"),
    );
    let sent = tokio::time::timeout(
        SIGN_IN_CODE_DEADLINE,
        state.mailer.send(&user.display_name, &user.email, "Your Palisade sign-in code", &body),
    )
    .await;
    let problem = match sent {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => e.detail(),
        Err(_) => {
            state.mailer.note_failure();
            format!("the mail server did not accept the message within {}s", SIGN_IN_CODE_DEADLINE.as_secs())
        }
    };
    tracing::error!(error = %problem, "could not send a sign-in code");
    tx.audit_failure(security_event(
        Some(ws.id),
        Some(user_actor(user)),
        "auth.sign_in_code",
        Some(user.id),
        json!({ "delivery": "failed" }),
        Some("the sign-in code could not be handed to the mail server".into()),
    ));
    Err(AppError::SignInCodeUndelivered {
        challenge_id: id.to_owned(),
        methods: challenge.methods.iter().map(|m| m.as_str().to_uppercase()).collect(),
    })
}

/// Sends a new code for a pending email challenge (after `SignInCodeUndelivered`, or a
/// code that never arrived). Limited per challenge and per account like the first.
pub async fn resend_sign_in_code(state: &AppState, tx: &Tx<'_>, challenge_id: &str) -> AppResult<ChallengeIssued> {
    let anon = anonymous_as("two-factor");
    if challenge_id.len() > 128 {
        return Err(AppError::bad_input("challengeId", "is not a valid challenge id"));
    }
    limit(state, tx, Bucket::TwoFactorChallenge, challenge_id, None, anon.clone()).await?;
    let key = challenge_key(challenge_id);
    let expired = || AppError::Denied("the sign-in challenge has expired or is unknown; sign in again".into());
    let Some(json) = state.store.get(&key).await? else {
        tx.audit_failure(security_event(None, Some(anon), "auth.sign_in_code", None, json!({ "challenge": "unknown" }), None));
        return Err(expired());
    };
    let mut challenge: Challenge = serde_json::from_str(&json).map_err(AppError::internal)?;
    if challenge.master || !challenge.methods.contains(&TwoFactorMethod::Email) {
        return Err(AppError::bad_input("challengeId", "this sign-in does not use email codes"));
    }
    if state.clock.now() >= challenge.expires_at {
        return Err(expired());
    }
    let (user, ws) = repo::users::get_with_workspace(tx.db(), challenge.workspace_id, challenge.user_id).await?.ok_or_else(expired)?;
    limit(state, tx, Bucket::EmailCode, &user.id.to_string(), Some(ws.id), user_actor(&user)).await?;
    send_sign_in_code(state, tx, &user, &ws, challenge_id, &mut challenge).await?;
    tx.audit(security_event(
        Some(ws.id),
        Some(user_actor(&user)),
        "auth.sign_in_code_resent",
        Some(user.id),
        json!({ "delivery": "sent" }),
        None,
    ));
    Ok(ChallengeIssued { id: challenge_id.to_owned(), methods: challenge.methods, expires_at: challenge.expires_at, enrollment: None })
}

/// Creates the session of a sign-in that passed every check.
#[allow(clippy::too_many_arguments)]
async fn complete(
    state: &AppState,
    tx: &Tx<'_>,
    meta: &RequestMeta,
    user: &entity::user::Model,
    ws: &entity::workspace::Model,
    policy: &EffectivePolicy,
    two_factor: bool,
    device: Option<String>,
    failures: i64,
    method: Option<TwoFactorMethod>,
) -> AppResult<SignedIn> {
    let db = tx.db();
    let now = state.clock.now();
    let subject = Subject::User { user_id: user.id, workspace_id: ws.id };
    let mut revoked_for_limit = 0usize;
    if let Some(max) = policy.max_sessions {
        let live = state.sessions.list(&subject).await?;
        let max = usize::try_from(max.max(1)).unwrap_or(usize::MAX);
        if live.len() >= max {
            match policy.on_session_limit {
                SessionLimitAction::RefuseNew => {
                    tx.audit_failure(security_event(
                        Some(ws.id),
                        Some(user_actor(user)),
                        "auth.session_limit",
                        Some(user.id),
                        json!({ "sessions": live.len(), "max": max }),
                        Some("maximum concurrent sessions reached".into()),
                    ));
                    return Err(AppError::Conflict(
                        "the maximum number of concurrent sessions is reached; sign out elsewhere first".into(),
                    ));
                }
                SessionLimitAction::RevokeOldest => {
                    // Oldest first: make room for exactly one new session.
                    for s in live.iter().take(live.len() + 1 - max) {
                        state.sessions.revoke(&s.hash, &s.record.subject).await?;
                        revoked_for_limit += 1;
                    }
                }
            }
        }
    }
    let new_device_cookie = if device.is_none() { Some(random_id()) } else { None };
    let device_id = device.or_else(|| new_device_cookie.clone()).unwrap_or_default();
    let first_sign_in = !repo::security::has_footprints(db, ws.id, user.id).await?;
    let prints = Footprints::of(Some(&device_id), meta.ip);
    let new_place = !first_sign_in && !prints.known(db, ws.id, user.id).await?;
    if let Some(d) = &prints.device {
        repo::security::remember_footprint(db, ws.id, user.id, "device", d, now).await?;
    }
    repo::security::remember_footprint(db, ws.id, user.id, "network", &prints.network, now).await?;

    let (token, session) = state.sessions.create(subject, meta.ip_string(), meta.user_agent.clone(), two_factor).await?;
    register_undo(state, tx, &session);
    state.store.del(&failures_key(user.id)).await?;
    repo::users::record_login(db, ws.id, user.id, meta.ip_string(), now).await?;
    tx.audit(AuditEvent::SignedIn {
        workspace_id: ws.id,
        user_id: user.id,
        username: user.username.clone(),
        session_id: session.record.id,
        previous_login: user.last_login_at.map(|t| t.to_rfc3339()),
        at: now.to_rfc3339(),
    });
    if two_factor || new_place || failures > 0 || revoked_for_limit > 0 {
        tx.audit(security_event(
            Some(ws.id),
            Some(user_actor(user)),
            "auth.sign_in_details",
            Some(user.id),
            json!({
                "twoFactor": method.map(|m| m.as_str()),
                "newDeviceOrNetwork": new_place,
                "failedAttemptsBefore": failures,
                "sessionsRevokedForLimit": revoked_for_limit,
            }),
            None,
        ));
    }
    if new_place {
        let body = format!(
            "Hello {name},\n\nThere was a new sign-in to your Palisade account in workspace {ws}\nfrom {ip} at {at} UTC \
             (device: {ua}).\n{failures}\nIf this was not you, change your password and review your sessions now.\n",
            name = user.display_name,
            ws = ws.name,
            ip = meta.ip_string().unwrap_or_else(|| "an unknown address".into()),
            at = now.format("%Y-%m-%d %H:%M"),
            ua = meta.user_agent.as_deref().unwrap_or("unknown"),
            failures = if failures > 0 { format!("{failures} failed attempts came before it.\n") } else { String::new() },
        );
        mail_after_commit(state, tx, user.display_name.clone(), user.email.clone(), "New sign-in to your Palisade account".into(), body);
    }
    state.metrics.sign_in("success");
    Ok(SignedIn { token, session, failed_attempts: failures, new_device_cookie, recovery_codes: Vec::new() })
}

pub async fn verify_two_factor(state: &AppState, tx: &Tx<'_>, meta: &RequestMeta, req: VerifyRequest<'_>) -> AppResult<SignedIn> {
    let anon = anonymous_as("two-factor");
    if req.challenge_id.len() > 128 || req.code.len() > 64 {
        return Err(AppError::bad_input("code", "is not a valid code"));
    }
    limit(state, tx, Bucket::TwoFactorChallenge, req.challenge_id, None, anon.clone()).await?;
    let key = challenge_key(req.challenge_id);
    let expired = || AppError::Denied("the sign-in challenge has expired or is unknown; sign in again".into());
    let Some(json) = state.store.get(&key).await? else {
        tx.audit_failure(security_event(None, Some(anon), "auth.two_factor", None, json!({ "challenge": "unknown" }), None));
        return Err(expired());
    };
    let challenge: Challenge = serde_json::from_str(&json).map_err(AppError::internal)?;
    if challenge.master {
        return crate::service::master_auth::verify(state, tx, meta, &req, &key, challenge).await;
    }
    let now = state.clock.now();
    let ws_id = challenge.workspace_id;
    let (user, ws) = repo::users::get_with_workspace(tx.db(), ws_id, challenge.user_id).await?.ok_or_else(expired)?;
    limit(state, tx, Bucket::TwoFactorAccount, &user.id.to_string(), Some(ws_id), user_actor(&user)).await?;
    let refuse = |why: &str| {
        tx.audit_failure(security_event(
            Some(ws_id),
            Some(user_actor(&user)),
            "auth.two_factor",
            Some(user.id),
            json!({ "method": req.method.as_str(), "result": why }),
            None,
        ));
    };
    if now >= challenge.expires_at {
        state.store.del(&key).await?;
        refuse("expired");
        return Err(expired());
    }
    if !challenge.methods.contains(&req.method) {
        refuse("method_not_allowed");
        return Err(AppError::bad_input("method", "is not offered for this sign-in"));
    }
    // Decided before the code is looked at: a right and a wrong code get the same
    // answer from a place or time the rules refuse.
    let policy = effective_policy(&user, &ws, now)?;
    if policy.check(meta.ip, now).is_err() {
        refuse("restricted");
        return Err(AppError::LoginRestricted);
    }
    let attempts = state.store.incr(&format!("{key}:attempts"), 1, CHALLENGE_TTL).await?;
    if attempts > CHALLENGE_ATTEMPTS {
        state.store.del(&key).await?;
        refuse("too_many_attempts");
        return Err(expired());
    }
    let ok = match req.method {
        TwoFactorMethod::Totp => check_totp(state, tx, &user, req.code).await?,
        TwoFactorMethod::Email => challenge
            .email_code_hash
            .as_deref()
            .is_some_and(|h| twofactor::email_code_matches(h, state.server_key.expose(), req.challenge_id, req.code)),
        TwoFactorMethod::Recovery => {
            let hash = twofactor::hash_recovery_code(&twofactor::normalize_recovery_code(req.code));
            repo::security::use_recovery_code(tx.db(), ws_id, user.id, &hash, now).await?
        }
    };
    if !ok {
        state.store.incr(&failures_key(user.id), 1, FAILURES_TTL).await?;
        refuse("wrong_code");
        return Err(AppError::bad_input("code", "is not correct"));
    }
    // Single use: of two concurrent correct answers only the one that removes the
    // challenge signs in.
    if !state.store.del(&key).await? {
        return Err(expired());
    }
    // The account and the rules may have changed while the code was on its way.
    if !may_sign_in(&user, &ws, now) {
        return Err(expired());
    }
    let failures = challenge.failures.max(state.store.get(&failures_key(user.id)).await?.and_then(|v| v.parse().ok()).unwrap_or(0));
    complete(state, tx, meta, &user, &ws, &policy, true, req.device, failures, Some(req.method)).await
}

/// A TOTP code for the user's enrolled seed; spends its step.
async fn check_totp(state: &AppState, tx: &Tx<'_>, user: &entity::user::Model, code: &str) -> AppResult<bool> {
    let Some(sealed) = &user.totp_secret else { return Ok(false) };
    let secret = state.secret_box.open(sealed, user.id.as_bytes())?;
    let now = u64::try_from(state.clock.now().timestamp()).unwrap_or(0);
    let last = user.totp_last_step.and_then(|s| u64::try_from(s).ok());
    match twofactor::verify_totp(&secret, code, now, last) {
        Some(step) => Ok(repo::security::claim_totp_step(tx.db(), user.workspace_id, user.id, step).await?),
        None => Ok(false),
    }
}

/// Proves the password or a TOTP code again on the current session (step-up).
pub async fn reauthenticate(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    password: Option<&str>,
    code: Option<&str>,
) -> AppResult<ActiveSession> {
    // A password guess spends the account's password budget, a code guess its
    // second-factor budget, wherever the guess arrives.
    let (bucket, key) = match code {
        Some(_) if password.is_none() => (Bucket::TwoFactorAccount, p.user_id.to_string()),
        _ => (Bucket::SignInAccount, account_bucket(p.user_id)),
    };
    limit(state, tx, bucket, &key, Some(p.workspace_id), Actor::of(&Principal::User(p.clone()))).await?;
    let user = repo::users::get(tx.db(), p.workspace_id, p.user_id).await?.ok_or(AppError::Unauthenticated)?;
    let (ok, method) = match (password, code) {
        (Some(pw), None) => {
            let ok = pw.chars().count() <= PASSWORD_MAX_CHARS && state.hasher.verify(pw, user.password_hash.as_deref()).await?;
            (ok, "password")
        }
        (None, Some(c)) => (check_totp(state, tx, &user, c).await?, "totp"),
        _ => return Err(AppError::bad_input("password", "give either password or code")),
    };
    if !ok {
        tx.audit_failure(security_event(
            Some(p.workspace_id),
            None,
            "auth.step_up",
            Some(p.user_id),
            json!({ "method": method, "result": "wrong" }),
            None,
        ));
        let field = if method == "password" { "password" } else { "code" };
        return Err(AppError::bad_input(field, "is not correct"));
    }
    let session = state.sessions.mark_proved(p.own_session()?, method == "totp").await?;
    tx.audit(security_event(Some(p.workspace_id), None, "auth.step_up", Some(p.user_id), json!({ "method": method }), None));
    Ok(session)
}

pub async fn logout(state: &AppState, tx: &Tx<'_>, principal: &Principal) -> AppResult<()> {
    let Some(session) = principal.session() else { return Err(AppError::Unauthenticated) };
    state.sessions.revoke(&session.hash, &session.record.subject).await?;
    if let Principal::User(u) = principal {
        crate::service::support::ended_by_sign_out(state, tx, u).await?;
    }
    tx.audit(match principal {
        Principal::User(u) => AuditEvent::SignedOut { workspace_id: u.workspace_id, user_id: u.user_id, session_id: session.record.id },
        Principal::MasterAdmin(m) => AuditEvent::MasterSignedOut { admin_id: m.admin_id, session_id: session.record.id },
        Principal::Anonymous => return Err(AppError::Unauthenticated),
    });
    Ok(())
}

pub async fn change_password(
    state: &AppState,
    tx: &Tx<'_>,
    principal: &Principal,
    current: &str,
    new: &str,
    keep_other_sessions: bool,
) -> AppResult<()> {
    let Principal::User(p) = principal else { return Err(AppError::Forbidden) };
    let new = NewPassword::parse("newPassword", new)?;
    if new.expose() == current {
        return Err(AppError::bad_input("newPassword", "must differ from the current password"));
    }
    let (user, ws) = repo::users::get_with_workspace(tx.db(), p.workspace_id, p.user_id).await?.ok_or(AppError::Unauthenticated)?;
    let local = user.email.split('@').next().unwrap_or_default();
    crate::auth::password_policy::check_strength("newPassword", new.expose(), &[&user.username, &user.email, local, &ws.name, &ws.slug])?;
    limit(state, tx, Bucket::SignInAccount, &account_bucket(p.user_id), Some(p.workspace_id), Actor::of(principal)).await?;
    if !state.hasher.verify(current, user.password_hash.as_deref()).await? {
        return Err(AppError::bad_input("currentPassword", "is not correct"));
    }
    let hash = state.hasher.hash(&new).await?;
    repo::users::set_password_hash(tx.db(), p.workspace_id, p.user_id, hash, state.clock.now()).await?;
    // Revoking is the safe direction: it is not undone if the audit write fails.
    let revoked = if keep_other_sessions {
        0
    } else {
        state.sessions.revoke_all(&p.own_session()?.record.subject, Some(&p.own_session()?.hash)).await?
    };
    state.sessions.mark_proved(p.own_session()?, false).await?;
    tx.audit(AuditEvent::PasswordChanged { workspace_id: p.workspace_id, user_id: p.user_id, sessions_revoked: revoked });
    Ok(())
}

fn subject_ids(principal: &Principal) -> AppResult<(Option<Uuid>, Uuid, &ActiveSession)> {
    match principal {
        Principal::User(u) => Ok((Some(u.workspace_id), u.user_id, u.own_session()?)),
        Principal::MasterAdmin(m) => Ok((None, m.admin_id, &m.session)),
        Principal::Anonymous => Err(AppError::Unauthenticated),
    }
}

pub async fn my_sessions(state: &AppState, principal: &Principal) -> AppResult<Vec<ActiveSession>> {
    let (_, _, current) = subject_ids(principal)?;
    Ok(state.sessions.list(&current.record.subject).await?)
}

pub async fn revoke_session(state: &AppState, tx: &Tx<'_>, principal: &Principal, session_id: Uuid) -> AppResult<()> {
    let (workspace_id, subject_id, current) = subject_ids(principal)?;
    let target =
        state.sessions.list(&current.record.subject).await?.into_iter().find(|s| s.record.id == session_id).ok_or(AppError::NotFound)?;
    state.sessions.revoke(&target.hash, &target.record.subject).await?;
    tx.audit(AuditEvent::SessionRevoked { workspace_id, subject_id, session_id });
    Ok(())
}

pub async fn revoke_other_sessions(state: &AppState, tx: &Tx<'_>, principal: &Principal) -> AppResult<usize> {
    let (workspace_id, subject_id, current) = subject_ids(principal)?;
    let count = state.sessions.revoke_all(&current.record.subject, Some(&current.hash)).await?;
    tx.audit(AuditEvent::OtherSessionsRevoked { workspace_id, subject_id, count });
    Ok(count)
}

/// Shared with the security service: a change record for audit entries.
pub fn changed(before: impl Into<serde_json::Value>, after: impl Into<serde_json::Value>) -> serde_json::Value {
    change(before, after)
}
