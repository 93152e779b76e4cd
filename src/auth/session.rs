//! Server-side sessions.
//!
//! Guarantees: a token is 256 bits from the OS CSPRNG, shown to the client once and
//! stored only as its SHA-256; every request re-reads the session from the store, so a
//! revocation takes effect on the next request on every instance; idle and absolute
//! expiry are checked against the injected clock (the store's own TTL only collects
//! garbage). Assumes the store is shared by all instances (Redis) or that there is one
//! instance (memory).

use crate::clock::SharedClock;
use crate::secret::Secret;
use crate::store::{Store, StoreResult};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Whose session it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    User { user_id: Uuid, workspace_id: Uuid },
    MasterAdmin { admin_id: Uuid },
}

impl Subject {
    fn index_key(&self) -> String {
        match self {
            Self::User { user_id, .. } => format!("sessions:user:{user_id}"),
            Self::MasterAdmin { admin_id } => format!("sessions:master:{admin_id}"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: Uuid,
    pub subject: Subject,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Whether this session passed two-factor (conditional role assignments need it).
    #[serde(default)]
    pub two_factor: bool,
    /// When this session last proved its password or second factor (sign-in or
    /// `reauthenticate`); sensitive operations need it to be recent. None in records
    /// written before step-up existed, which count as never proved.
    #[serde(default)]
    pub proved_at: Option<DateTime<Utc>>,
    /// Set for impersonation sessions: a master admin acting as this user.
    #[serde(default)]
    pub impersonation: Option<SessionImpersonation>,
}

/// Who is really behind an impersonation session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionImpersonation {
    /// The `impersonations` row.
    pub id: Uuid,
    pub admin_id: Uuid,
    pub admin_email: String,
}

/// A live session as the request sees it: the record and the hash that keys it.
#[derive(Debug, Clone)]
pub struct ActiveSession {
    pub hash: String,
    pub record: SessionRecord,
    /// Last activity before this request (the record's own value may just have been
    /// refreshed); workspace idle timeouts are measured from it.
    pub idle_since: DateTime<Utc>,
}

#[derive(Clone)]
pub struct SessionManager {
    store: Arc<dyn Store>,
    clock: SharedClock,
    idle: Duration,
    absolute: Duration,
}

/// A rate bucket to meter in the same round trip as a session read
/// (`auth::ratelimit::RateLimiter::meter`).
#[derive(Debug, Clone)]
pub struct Meter {
    pub key: String,
    pub quota: crate::store::Quota,
    pub now: DateTime<Utc>,
}

/// What `resolve_metered` read.
#[derive(Debug)]
pub struct Lookup {
    pub session: Option<ActiveSession>,
    /// The value of the extra key, if it was asked for and exists.
    pub also: Option<String>,
    /// The rate verdict (`Store::gcra`), if the bucket was metered.
    pub wait: Option<Option<Duration>>,
}

/// Last-seen is written back at most this often, so a busy client does not turn every
/// read into a store write.
const TOUCH_EVERY: chrono::Duration = chrono::Duration::seconds(30);

pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut bytes);
    format!("pal_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

pub(crate) fn session_key(hash: &str) -> String {
    format!("session:{hash}")
}

fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl SessionManager {
    pub fn new(store: Arc<dyn Store>, clock: SharedClock, idle: Duration, absolute: Duration) -> Self {
        Self { store, clock, idle, absolute }
    }

    pub fn idle_timeout(&self) -> Duration {
        self.idle
    }

    pub async fn create(
        &self,
        subject: Subject,
        ip: Option<String>,
        user_agent: Option<String>,
        two_factor: bool,
    ) -> StoreResult<(Secret<String>, ActiveSession)> {
        self.insert(new_token(), self.new_record(subject, ip, user_agent, two_factor)).await
    }

    /// A session for a master admin acting as a workspace user, ending at `until` (or
    /// sooner, by the usual idle timeout). It never counts as a recent proof, so the
    /// step-up operations stay closed to it.
    pub async fn create_impersonation(
        &self,
        subject: Subject,
        ip: Option<String>,
        user_agent: Option<String>,
        until: DateTime<Utc>,
        who: SessionImpersonation,
    ) -> StoreResult<(Secret<String>, ActiveSession)> {
        let mut record = self.new_record(subject, ip, user_agent, false);
        record.expires_at = record.expires_at.min(until);
        record.proved_at = None;
        record.impersonation = Some(who);
        self.insert(new_token(), record).await
    }

    /// A fresh record: created now, proved now, ending after the absolute timeout.
    fn new_record(&self, subject: Subject, ip: Option<String>, user_agent: Option<String>, two_factor: bool) -> SessionRecord {
        let now = self.clock.now();
        SessionRecord {
            id: Uuid::now_v7(),
            subject,
            created_at: now,
            last_seen_at: now,
            expires_at: now + chrono_dur(self.absolute),
            ip,
            user_agent,
            two_factor,
            proved_at: Some(now),
            impersonation: None,
        }
    }

    async fn insert(&self, token: String, record: SessionRecord) -> StoreResult<(Secret<String>, ActiveSession)> {
        let hash = hash_token(&token);
        let idle_since = record.created_at;
        self.save(&hash, &record).await?;
        self.store.sadd(&record.subject.index_key(), &hash, self.absolute).await?;
        Ok((Secret::new(token), ActiveSession { hash, idle_since, record }))
    }

    /// Whether the session stored under `hash` is still live.
    pub async fn alive(&self, hash: &str) -> StoreResult<bool> {
        let now = self.clock.now();
        Ok(self.load(hash).await?.is_some_and(|r| self.is_live(&r, now)))
    }

    /// Ends the session stored under `hash`, whoever's it is; false if it was gone.
    pub async fn revoke_hash(&self, hash: &str) -> StoreResult<bool> {
        match self.load(hash).await? {
            Some(record) => {
                self.revoke(hash, &record.subject).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn save(&self, hash: &str, record: &SessionRecord) -> StoreResult<()> {
        let json = serde_json::to_string(record).map_err(|e| crate::store::StoreError(e.to_string()))?;
        // Garbage collection only: validity is decided by `check`, on the clock.
        self.store.set(&session_key(hash), &json, self.absolute).await
    }

    fn is_live(&self, r: &SessionRecord, now: DateTime<Utc>) -> bool {
        now < r.expires_at && now < r.last_seen_at + chrono_dur(self.idle)
    }

    async fn load(&self, hash: &str) -> StoreResult<Option<SessionRecord>> {
        match self.store.get(&session_key(hash)).await? {
            Some(json) => self.parse(hash, &json).await,
            None => Ok(None),
        }
    }

    /// An unreadable record is treated as no session (and removed), never as valid.
    async fn parse(&self, hash: &str, json: &str) -> StoreResult<Option<SessionRecord>> {
        match serde_json::from_str::<SessionRecord>(json) {
            Ok(r) => Ok(Some(r)),
            Err(_) => {
                self.store.del(&session_key(hash)).await?;
                Ok(None)
            }
        }
    }

    /// The live session for a presented token, refreshing its last-seen time.
    pub async fn resolve(&self, token: &str) -> StoreResult<Option<ActiveSession>> {
        if token.len() > 128 {
            return Ok(None);
        }
        let hash = hash_token(token);
        let record = self.load(&hash).await?;
        self.live(hash, record).await
    }

    /// Like `resolve`, and in the same round trip reads `also` and meters `meter`: the one
    /// store call of a signed-in request.
    pub async fn resolve_metered(&self, token: &str, also: Option<String>, meter: &Meter) -> StoreResult<Lookup> {
        if token.len() > 128 {
            return Ok(Lookup { session: None, also: None, wait: None });
        }
        let hash = hash_token(token);
        let mut keys = vec![session_key(&hash)];
        keys.extend(also);
        let (mut values, wait) = self.store.get_metered(&keys, &meter.key, meter.quota, meter.now).await?;
        let also = values.get_mut(1).and_then(Option::take);
        let record = match values.into_iter().next().flatten() {
            Some(json) => self.parse(&hash, &json).await?,
            None => None,
        };
        Ok(Lookup { session: self.live(hash, record).await?, also, wait: Some(wait) })
    }

    /// The session behind `record` if it is still live. Last-seen is written back in the
    /// background and only onto a record that is still there, so the request does not
    /// wait for it and a session revoked meanwhile stays revoked.
    async fn live(&self, hash: String, record: Option<SessionRecord>) -> StoreResult<Option<ActiveSession>> {
        let Some(mut record) = record else {
            return Ok(None);
        };
        let now = self.clock.now();
        if !self.is_live(&record, now) {
            self.revoke(&hash, &record.subject).await?;
            return Ok(None);
        }
        let idle_since = record.last_seen_at;
        if now - record.last_seen_at >= TOUCH_EVERY {
            record.last_seen_at = now;
            if let Ok(json) = serde_json::to_string(&record) {
                let (store, key, ttl) = (self.store.clone(), session_key(&hash), self.absolute);
                tokio::spawn(async move {
                    if let Err(e) = store.set_xx(&key, &json, ttl).await {
                        tracing::warn!(error = %e, "could not record a session's last activity");
                    }
                });
            }
        }
        Ok(Some(ActiveSession { hash, record, idle_since }))
    }

    /// Every live session of a subject, oldest first; dead index entries are pruned.
    pub async fn list(&self, subject: &Subject) -> StoreResult<Vec<ActiveSession>> {
        let now = self.clock.now();
        let mut out = Vec::new();
        for hash in self.store.smembers(&subject.index_key()).await? {
            match self.load(&hash).await? {
                Some(record) if self.is_live(&record, now) && record.subject == *subject => {
                    out.push(ActiveSession { hash, idle_since: record.last_seen_at, record })
                }
                _ => self.revoke(&hash, subject).await?,
            }
        }
        // Ids are UUIDv7: they order sessions created within the same instant too.
        out.sort_by_key(|s| (s.record.created_at, s.record.id));
        Ok(out)
    }

    /// Records a fresh proof (password or second factor) on a live session.
    pub async fn mark_proved(&self, session: &ActiveSession, two_factor: bool) -> StoreResult<ActiveSession> {
        let Some(mut record) = self.load(&session.hash).await? else {
            return Err(crate::store::StoreError("session ended".into()));
        };
        record.proved_at = Some(self.clock.now());
        record.two_factor |= two_factor;
        self.save(&session.hash, &record).await?;
        Ok(ActiveSession { hash: session.hash.clone(), idle_since: session.idle_since, record })
    }

    pub async fn revoke(&self, hash: &str, subject: &Subject) -> StoreResult<()> {
        self.store.del(&session_key(hash)).await?;
        self.store.srem(&subject.index_key(), hash).await
    }

    /// Revokes every session of the subject except `keep`; returns how many ended.
    pub async fn revoke_all(&self, subject: &Subject, keep: Option<&str>) -> StoreResult<usize> {
        let mut n = 0;
        for s in self.list(subject).await? {
            if Some(s.hash.as_str()) != keep {
                self.revoke(&s.hash, subject).await?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// How recent a session's last proof (password or second factor) must be for
/// sensitive operations (`graphql::root_access::needs_step_up`).
pub const STEP_UP_WINDOW: chrono::Duration = chrono::Duration::minutes(10);

/// Whether the principal's session proved itself within `STEP_UP_WINDOW`.
pub fn stepped_up(p: &super::Principal, now: DateTime<Utc>) -> bool {
    p.session().and_then(|s| s.record.proved_at).is_some_and(|at| now < at + STEP_UP_WINDOW)
}
