//! Builds the application state and serves it. Tests use this directly: port 0, their
//! own database, their own store prefix and a manual clock.

use crate::auth::password::PasswordHasher;
use crate::auth::session::SessionManager;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::store::{MemoryStore, RedisStore, Store};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};
use std::sync::Arc;
use std::time::Duration;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub async fn connect_database(config: &Config) -> Result<DatabaseConnection, BoxError> {
    let url = config.database_url.expose();
    let mut opts = ConnectOptions::new(url.clone());
    // Bounds how long a request waits for the database when it is unreachable (sqlx
    // would wait 30 s); the request is then answered SERVICE_UNAVAILABLE.
    let wait = config.db_acquire_timeout;
    opts.connect_timeout(wait).acquire_timeout(wait).sqlx_logging(false);
    if url.starts_with("sqlite:") {
        // One writer at a time; more connections would only wait on each other's locks.
        opts.max_connections(4).min_connections(1);
        // A lock held by another process (a backup, the sqlite3 shell) is waited for
        // as long as a connection would be, not sqlx's 5 s.
        opts.map_sqlx_sqlite_opts(move |o| o.busy_timeout(wait));
    }
    let db = Database::connect(opts).await.map_err(|e| format!("cannot connect to the database: {e}"))?;
    if db.get_database_backend() == DbBackend::Sqlite {
        // Switching a new file to WAL needs an exclusive lock SQLite does not wait
        // for, so instances starting together take turns here as for migrations.
        let _turn = sqlite_turn(&db).await?;
        db.execute_unprepared("PRAGMA journal_mode=WAL;").await?;
    }
    Ok(db)
}

/// Any fixed number works as long as every instance uses the same one; this one is
/// "palisade" in ASCII, unlikely to collide with another application's lock.
const MIGRATION_LOCK_KEY: i64 = 0x7061_6c69_7361_6465;

/// Applies pending migrations. Instances starting together on one database take
/// turns: the first applies them while the others wait, then find nothing left to do.
/// (sea-orm's migrator checks what is applied, then applies the rest, so two at once
/// would both apply the same migration and the second would fail.)
///
/// On PostgreSQL the turn is a session advisory lock taken on one dedicated connection,
/// which is closed afterwards rather than returned to the pool: closing releases the
/// lock whatever happened, and no open transaction is kept waiting meanwhile (which
/// an idle-transaction timeout could end, or a concurrent index build wait for). On a
/// SQLite file the turn is an exclusive lock on a file beside the database
/// (`<database>.migrate-lock`), released when the file is closed.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), BoxError> {
    let failed = |e: sea_orm::DbErr| format!("migration failed: {e}");
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let mut turn = db.get_postgres_connection_pool().acquire().await.map_err(|e| format!("migration failed: {e}"))?;
            sea_orm::sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(MIGRATION_LOCK_KEY)
                .execute(&mut *turn)
                .await
                .map_err(|e| format!("migration failed: cannot take the migration lock: {e}"))?;
            let applied = Migrator::up(db, None).await.map_err(failed);
            if let Err(e) = turn.close().await {
                // The lock goes with the connection once the server notices it is gone.
                tracing::warn!(error = %e, "could not close the migration lock's connection");
            }
            Ok(applied?)
        }
        DbBackend::Sqlite => {
            let _turn = sqlite_turn(db).await?;
            Ok(Migrator::up(db, None).await.map_err(failed)?)
        }
        _ => Ok(Migrator::up(db, None).await.map_err(failed)?),
    }
}

/// The exclusive lock on `<database>.migrate-lock` beside a SQLite file, held until
/// the file is dropped; None for an in-memory database, which no other process sees.
async fn sqlite_turn(db: &DatabaseConnection) -> Result<Option<std::fs::File>, BoxError> {
    let options = db.get_sqlite_connection_pool().connect_options();
    let name = options.get_filename().as_os_str();
    if name.is_empty() || name == ":memory:" {
        return Ok(None);
    }
    let mut path = name.to_owned();
    path.push(".migrate-lock");
    let path = std::path::PathBuf::from(path);
    let taken = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
        // Blocks until the instance migrating now is done.
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await?;
    Ok(Some(taken.map_err(|e| format!("cannot take the migration lock beside the database: {e}"))?))
}

pub fn build_store(config: &Config, clock: SharedClock) -> Result<Arc<dyn Store>, BoxError> {
    Ok(match &config.redis_url {
        Some(url) => Arc::new(RedisStore::connect(url.expose(), &config.redis_prefix).map_err(|e| format!("invalid REDIS_URL: {e}"))?),
        None => Arc::new(MemoryStore::new(clock)),
    })
}

/// The server key: from PALISADE_SECRET_KEY, else from the key file, which is created
/// (random, readable by this user only) on first start. Losing it makes enrolled TOTP
/// seeds unreadable, so it is never regenerated silently.
fn server_key(config: &Config) -> Result<crate::secret::Secret<Vec<u8>>, BoxError> {
    use base64::Engine;
    if let Some(k) = &config.secret_key {
        return Ok(crate::secret::Secret::new(k.expose().as_bytes().to_vec()));
    }
    let path = &config.secret_key_file;
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| format!("the key file {} is not valid base64", path.display()))?;
            if bytes.len() < 32 {
                return Err(format!("the key file {} holds fewer than 32 bytes", path.display()).into());
            }
            Ok(crate::secret::Secret::new(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = vec![0u8; 32];
            rand::Rng::fill_bytes(&mut rand::rng(), &mut bytes);
            let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(path).map_err(|e| format!("cannot create the key file {}: {e}", path.display()))?;
            std::io::Write::write_all(&mut f, text.as_bytes())?;
            tracing::warn!(file = %path.display(), "created a new server key file; keep it with the database (set PALISADE_SECRET_KEY in production)");
            Ok(crate::secret::Secret::new(bytes))
        }
        Err(e) => Err(format!("cannot read the key file {}: {e}", path.display()).into()),
    }
}

/// Connects, migrates and assembles the state. `store` overrides the configured one
/// (tests pass one store to two instances to model a shared Redis).
pub async fn build_state(config: Config, clock: SharedClock, store: Option<Arc<dyn Store>>) -> Result<AppState, BoxError> {
    let mut metrics = Metrics::new();
    let mut db = connect_database(&config).await?;
    let queries = metrics.db_queries.clone();
    db.set_metric_callback(move |_| {
        queries.inc();
    });
    migrate(&db).await?;
    let store = match store {
        Some(s) => s,
        None => build_store(&config, clock.clone())?,
    };
    let store: Arc<dyn Store> = Arc::new(crate::store::Counted::new(store, metrics.store_calls.clone()));
    let hasher = PasswordHasher::new(config.hash_concurrency).map_err(|e| e.detail())?;
    let sessions = SessionManager::new(store.clone(), clock.clone(), config.session_idle_timeout, config.session_absolute_timeout);
    // SQLite refuses a second writer instead of queueing it; one instance queues here.
    let write_lock = config.database_url.expose().starts_with("sqlite:").then(|| Arc::new(tokio::sync::Mutex::new(())));
    let key = server_key(&config)?;
    let limiter = crate::auth::ratelimit::RateLimiter::new(store.clone(), clock.clone(), config.rate_limits.clone());
    let mailer = crate::mail::Mailer::new(&config.mail).map_err(|e| e.to_string())?;
    let (sent, failed) = mailer.counters();
    metrics.register_mail(sent, failed);
    let state = AppState {
        read_audit: crate::audit::group::GroupWriter::new(db.clone(), write_lock.clone()),
        write_lock,
        limiter: Arc::new(limiter),
        mailer,
        secret_box: Arc::new(crate::auth::twofactor::SecretBox::new(key.expose())),
        audit_bus: Arc::new(crate::audit::bus::AuditBus::new(store.clone())),
        server_key: Arc::new(key),
        config: Arc::new(config),
        db,
        store,
        clock,
        hasher,
        sessions,
        metrics: Arc::new(metrics),
        grants: Default::default(),
        principals: Default::default(),
    };
    let backfilled = crate::service::bootstrap::backfill_builtin_roles(&state).await.map_err(|e| e.detail())?;
    if backfilled > 0 {
        tracing::info!(workspaces = backfilled, "gave workspaces without roles their built-in roles");
    }
    Ok(state)
}

/// Serves on `listener` until `shutdown` resolves, then waits for the requests in
/// progress (see `http::server` for the bounds each connection is held to).
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), BoxError> {
    let sweeper = tokio::spawn(sweep_audit_retention(state.clone()));
    let limits = state.config.http.clone();
    let served = crate::http::server::serve(crate::http::router(state), listener, limits, shutdown).await;
    sweeper.abort();
    served?;
    Ok(())
}

/// How often each instance applies the audit retention of every workspace.
const RETENTION_SWEEP_EVERY: Duration = Duration::from_secs(3600);

async fn sweep_audit_retention(state: AppState) {
    let mut every = tokio::time::interval(RETENTION_SWEEP_EVERY);
    loop {
        every.tick().await;
        match crate::service::audit::sweep(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(entries = n, "purged audit entries past their retention"),
            Err(e) => tracing::error!(error = %e.detail(), "audit retention sweep failed"),
        }
    }
}
