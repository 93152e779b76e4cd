//! What every sign-in shares, for staff and master admins alike: the challenge a
//! second factor answers (kept in the store under a hashed id), the answers, the rate
//! limits whose refusals go on the record, the per-account password budget, and the
//! undo that removes a session whose sign-in did not commit.

use crate::audit::Tx;
use crate::audit::{Actor, ActorKind, AuditEvent};
use crate::auth::ratelimit::Bucket;
use crate::auth::session::ActiveSession;
use crate::error::{AppError, AppResult};
use crate::secret::Secret;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

/// How long a sign-in challenge (and the email code sent for it) stays valid.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(10 * 60);

/// Wrong codes one challenge tolerates before it is dropped.
pub const CHALLENGE_ATTEMPTS: i64 = 5;

/// How long failed attempts are remembered for the burst rule and the report.
pub(crate) const FAILURES_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "snake_case")]
pub enum TwoFactorMethod {
    Totp,
    Email,
    Recovery,
}

impl TwoFactorMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Email => "email",
            Self::Recovery => "recovery",
        }
    }
}

pub struct SignedIn {
    pub token: Secret<String>,
    /// New recovery codes, shown once: only when this sign-in enrolled a master admin's
    /// authenticator.
    pub recovery_codes: Vec<Secret<String>>,
    pub session: ActiveSession,
    /// Failed sign-ins since the previous successful one (reported to the user).
    pub failed_attempts: i64,
    /// A new device id to store in the device cookie, when the client had none.
    pub new_device_cookie: Option<String>,
}

pub struct ChallengeIssued {
    pub id: String,
    pub methods: Vec<TwoFactorMethod>,
    pub expires_at: DateTime<Utc>,
    /// A master admin's first sign-in: the authenticator to set up, whose first code
    /// answers the challenge.
    pub enrollment: Option<Enrollment>,
}

pub enum LoginResult {
    SignedIn(Box<SignedIn>),
    Challenge(ChallengeIssued),
}

/// A sign-in waiting for its second factor; kept in the store under its id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Challenge {
    pub(crate) user_id: Uuid,
    pub(crate) workspace_id: Uuid,
    pub(crate) methods: Vec<TwoFactorMethod>,
    pub(crate) reasons: Vec<String>,
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) email_code_hash: Option<String>,
    pub(crate) failures: i64,
    /// A master admin's sign-in (`user_id` is the admin, `workspace_id` is nil).
    #[serde(default)]
    pub(crate) master: bool,
    /// A master admin's first sign-in: the new seed, sealed; the code that answers the
    /// challenge also confirms it.
    #[serde(default)]
    pub(crate) enrollment: Option<String>,
}

pub(crate) fn challenge_key(id: &str) -> String {
    format!("challenge:{}", crate::auth::session::hash_token(id))
}

pub(crate) fn random_id() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn register_undo(state: &AppState, tx: &Tx<'_>, session: &ActiveSession) {
    let sessions = state.sessions.clone();
    let (hash, subject) = (session.hash.clone(), session.record.subject);
    tx.on_rollback(move || {
        Box::pin(async move {
            if let Err(e) = sessions.revoke(&hash, &subject).await {
                tracing::error!(error = %e, "could not remove the session of a rolled-back sign-in");
            }
        })
    });
}

pub(crate) fn anonymous_as(login: &str) -> Actor {
    Actor::new(ActorKind::Anonymous, None, Some(login.chars().take(128).collect()))
}

pub(crate) fn security_event(
    workspace_id: Option<Uuid>,
    actor: Option<Actor>,
    action: &'static str,
    user_id: Option<Uuid>,
    changes: serde_json::Value,
    reason: Option<String>,
) -> AuditEvent {
    AuditEvent::Security { workspace_id, actor, action, target_type: "user", target_id: user_id.map(|u| u.to_string()), changes, reason }
}

/// Checks a rate limit; a refusal is audited (as the mutation's failure entry).
pub(crate) async fn limit(state: &AppState, tx: &Tx<'_>, bucket: Bucket, key: &str, ws: Option<Uuid>, actor: Actor) -> AppResult<()> {
    match state.limiter.check(bucket, key).await {
        Err(e @ AppError::RateLimited { .. }) => {
            tx.audit_failure(security_event(ws, Some(actor), "auth.throttled", None, json!({ "bucket": bucket.name() }), None));
            Err(e)
        }
        other => other,
    }
}

/// The per-account password budget (sign-in, step-up, password checks): one per
/// account, whatever identifier reached it.
pub(crate) fn account_bucket(user_id: Uuid) -> String {
    format!("user\0{user_id}")
}

/// Like `limit`, for work outside the transaction: the refusal's audit event is
/// returned instead of recorded.
pub(crate) async fn limit_before(state: &AppState, bucket: Bucket, key: &str, actor: Actor) -> AppResult<Option<(AppError, AuditEvent)>> {
    match state.limiter.check(bucket, key).await {
        Err(error @ AppError::RateLimited { .. }) => {
            let audit = security_event(None, Some(actor), "auth.throttled", None, json!({ "bucket": bucket.name() }), None);
            Ok(Some((error, audit)))
        }
        Err(e) => Err(e),
        Ok(()) => Ok(None),
    }
}

pub struct VerifyRequest<'a> {
    pub challenge_id: &'a str,
    pub method: TwoFactorMethod,
    pub code: &'a str,
    pub device: Option<String>,
}

pub struct TwoFactorStatus {
    pub totp_enabled_at: Option<DateTime<Utc>>,
    pub recovery_codes_left: u64,
    pub step_up_valid_until: Option<DateTime<Utc>>,
    pub session_two_factor: bool,
}

pub struct Enrollment {
    pub otpauth_uri: Secret<String>,
    pub secret: Secret<String>,
    pub qr_svg: Secret<String>,
}
