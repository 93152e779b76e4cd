//! Everything a request may use, built once at start-up and shared.

use crate::auth::password::PasswordHasher;
use crate::auth::session::SessionManager;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::Store;
use sea_orm::DatabaseConnection;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub store: Arc<dyn Store>,
    pub clock: SharedClock,
    pub hasher: PasswordHasher,
    pub sessions: SessionManager,
    pub metrics: Arc<Metrics>,
    pub grants: Arc<crate::auth::grants::GrantCache>,
    /// The rows of recently seen principals, valid under their workspace's epoch.
    pub principals: Arc<crate::auth::principals::PrincipalCache>,
    /// SQLite only: one writing transaction at a time in this process. SQLite refuses a
    /// second writer instead of queueing it, and the embedded default is one instance,
    /// so queueing here is both correct and enough. None on PostgreSQL.
    pub write_lock: Option<Arc<tokio::sync::Mutex<()>>>,
    /// Writes the entries requests owe for what they read, many requests per
    /// transaction.
    pub read_audit: crate::audit::group::GroupWriter,
    pub limiter: Arc<crate::auth::ratelimit::RateLimiter>,
    pub mailer: crate::mail::Mailer,
    /// Seals TOTP seeds at rest.
    pub secret_box: Arc<crate::auth::twofactor::SecretBox>,
    /// Keys email-code hashes.
    pub server_key: Arc<crate::secret::Secret<Vec<u8>>>,
    /// Announces committed audit entries to every instance (subscriptions).
    pub audit_bus: Arc<crate::audit::bus::AuditBus>,
}
