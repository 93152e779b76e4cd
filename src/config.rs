//! One typed configuration, read from the environment (and a few CLI flags) and
//! validated before anything starts. A bad value stops the server with a message that
//! names the variable; secrets (URLs with credentials, the demo password) are `Secret`.

pub use crate::error::ConfigError;
use crate::secret::Secret;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: Secret<String>,
    pub redis_url: Option<Secret<String>>,
    pub redis_prefix: String,
    pub bind: SocketAddr,
    pub cookie_secure: bool,
    pub allowed_origins: Vec<String>,
    pub introspection: bool,
    pub graphiql: bool,
    pub session_idle_timeout: Duration,
    pub session_absolute_timeout: Duration,
    pub max_body_bytes: usize,
    /// The largest file a multipart request may upload (an import).
    pub max_upload_bytes: usize,
    pub execution_timeout: Duration,
    /// How long a multipart request (an upload) may take to arrive, and then to run:
    /// it replaces the body and execution timeouts for uploads, whose files are large.
    pub upload_timeout: Duration,
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_aliases: usize,
    pub hash_concurrency: usize,
    pub demo_password: Option<Secret<String>>,
    pub log_format: LogFormat,
    /// Peers whose X-Forwarded-For is believed (load balancers); nobody else's is.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub rate_limits: crate::auth::ratelimit::RateLimits,
    pub mail: crate::mail::MailConfig,
    /// Seals TOTP seeds and keys email-code hashes. None: a key file is used (made on
    /// first start next to the embedded database).
    pub secret_key: Option<Secret<String>>,
    pub secret_key_file: std::path::PathBuf,
    /// Days audit entries are kept when the workspace sets nothing; None: forever.
    pub audit_retention_days: Option<u32>,
    /// How long a soft-deleted workspace can be restored before it may be purged.
    pub workspace_retention_days: u32,
    pub ws: WsConfig,
    pub http: HttpConfig,
    /// How long a request waits for a database connection (and SQLite for a lock held
    /// by another process) before it is answered SERVICE_UNAVAILABLE.
    pub db_acquire_timeout: Duration,
}

/// Limits of the HTTP server itself, so clients that send slowly (or nothing) cannot
/// hold connections: each phase of a connection has its own bound.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// A request head must arrive completely within this, counted from the connection's
    /// start (first request) or from the first byte of the next request.
    pub header_timeout: Duration,
    /// A request body must arrive completely within this after its head.
    pub body_timeout: Duration,
    /// A connection with no request in progress is closed after this long.
    pub keep_alive_timeout: Duration,
    /// After the server answers a WebSocket upgrade (101), the connection must be
    /// handed over as a WebSocket within this.
    pub ws_handshake_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
}

/// Limits of the WebSocket endpoint (`/graphql/ws`).
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// A connection that has not sent `connection_init` by then is closed (4408).
    pub init_timeout: Duration,
    /// Open sockets per principal on one instance.
    pub max_sockets_per_principal: usize,
    /// Active subscriptions per principal on one instance.
    pub max_subscriptions_per_principal: usize,
    /// How often an open socket's credential and permissions are checked again when no
    /// event arrives (every event is checked anyway).
    pub recheck: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Auto,
    Json,
    Pretty,
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://palisade.db?mode=rwc";

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads every setting through `get`, so tests can configure a server without
    /// touching the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());

        let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        if !(database_url.starts_with("sqlite:") || database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
            return Err(ConfigError { variable: "DATABASE_URL", message: "expected a sqlite:// or postgres:// URL".into() });
        }
        let redis_url = get("REDIS_URL");
        if let Some(url) = &redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://"))
        {
            return Err(ConfigError { variable: "REDIS_URL", message: "expected a redis:// URL".into() });
        }
        let idle = parse_num(&get, "PALISADE_SESSION_IDLE_SECS", 1800, 60, 7 * 86_400)?;
        let absolute = parse_num(&get, "PALISADE_SESSION_ABSOLUTE_SECS", 12 * 3600, 300, 90 * 86_400)?;
        if absolute < idle {
            return Err(ConfigError {
                variable: "PALISADE_SESSION_ABSOLUTE_SECS",
                message: "must not be shorter than PALISADE_SESSION_IDLE_SECS".into(),
            });
        }
        let bind = match get("PALISADE_BIND") {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(v) => v.parse().map_err(|_| ConfigError {
                variable: "PALISADE_BIND",
                message: format!("expected an address like 127.0.0.1:8080, got {v:?}"),
            })?,
        };
        let allowed_origins = match get("PALISADE_ALLOWED_ORIGINS") {
            None => Vec::new(),
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(|o| validate_origin(o).map(str::to_owned))
                .collect::<Result<_, _>>()?,
        };
        let log_format = match get("PALISADE_LOG_FORMAT").as_deref() {
            None | Some("auto") => LogFormat::Auto,
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                return Err(ConfigError {
                    variable: "PALISADE_LOG_FORMAT",
                    message: format!("expected auto, json or pretty, got {other:?}"),
                });
            }
        };
        Ok(Self {
            database_url: Secret::new(database_url),
            redis_url: redis_url.map(Secret::new),
            redis_prefix: get("PALISADE_REDIS_PREFIX").unwrap_or_else(|| "palisade:".into()),
            bind,
            cookie_secure: parse_bool(&get, "PALISADE_COOKIE_SECURE", true)?,
            allowed_origins,
            introspection: parse_bool(&get, "PALISADE_INTROSPECTION", true)?,
            graphiql: parse_bool(&get, "PALISADE_GRAPHIQL", true)?,
            session_idle_timeout: Duration::from_secs(idle),
            session_absolute_timeout: Duration::from_secs(absolute),
            max_body_bytes: parse_num(&get, "PALISADE_MAX_BODY_BYTES", 1 << 20, 1024, 64 << 20)? as usize,
            max_upload_bytes: parse_num(&get, "PALISADE_MAX_UPLOAD_BYTES", 100 << 20, 1024, 4 << 30)? as usize,
            execution_timeout: Duration::from_millis(parse_num(&get, "PALISADE_EXECUTION_TIMEOUT_MS", 10_000, 100, 600_000)?),
            upload_timeout: Duration::from_millis(parse_num(&get, "PALISADE_UPLOAD_TIMEOUT_MS", 300_000, 1_000, 3_600_000)?),
            max_depth: parse_num(&get, "PALISADE_MAX_DEPTH", 12, 2, 64)? as usize,
            max_complexity: parse_num(&get, "PALISADE_MAX_COMPLEXITY", 500, 10, 100_000)? as usize,
            max_aliases: parse_num(&get, "PALISADE_MAX_ALIASES", 30, 0, 1_000)? as usize,
            hash_concurrency: parse_num(&get, "PALISADE_HASH_CONCURRENCY", cores as u64, 1, 256)? as usize,
            demo_password: get("PALISADE_DEMO_PASSWORD").map(Secret::new),
            log_format,
            trusted_proxies: match get("PALISADE_TRUSTED_PROXIES") {
                None => Vec::new(),
                Some(v) => {
                    let parts: Vec<String> = v.split(',').map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect();
                    crate::auth::security_settings::parse_networks("PALISADE_TRUSTED_PROXIES", &parts)
                        .map_err(|e| ConfigError { variable: "PALISADE_TRUSTED_PROXIES", message: e.message() })?
                }
            },
            rate_limits: crate::auth::ratelimit::RateLimits::from_lookup(&get)?,
            mail: crate::mail::from_lookup(&get)?,
            secret_key: match get("PALISADE_SECRET_KEY") {
                Some(k) if k.chars().count() < 32 => {
                    return Err(ConfigError {
                        variable: "PALISADE_SECRET_KEY",
                        message: "must be at least 32 characters of random text".into(),
                    });
                }
                k => k.map(Secret::new),
            },
            secret_key_file: get("PALISADE_SECRET_KEY_FILE").map_or_else(|| "palisade.key".into(), Into::into),
            audit_retention_days: match get("PALISADE_AUDIT_RETENTION_DAYS") {
                None => None,
                Some(_) => Some(parse_num(&get, "PALISADE_AUDIT_RETENTION_DAYS", 365, 30, 36_500)? as u32),
            },
            workspace_retention_days: parse_num(&get, "PALISADE_WORKSPACE_RETENTION_DAYS", 30, 1, 3650)? as u32,
            ws: WsConfig {
                init_timeout: Duration::from_millis(parse_num(&get, "PALISADE_WS_INIT_TIMEOUT_MS", 10_000, 100, 300_000)?),
                max_sockets_per_principal: parse_num(&get, "PALISADE_WS_MAX_SOCKETS", 8, 1, 10_000)? as usize,
                max_subscriptions_per_principal: parse_num(&get, "PALISADE_WS_MAX_SUBSCRIPTIONS", 20, 1, 100_000)? as usize,
                recheck: Duration::from_millis(parse_num(&get, "PALISADE_WS_RECHECK_MS", 500, 50, 1000)?),
            },
            http: HttpConfig {
                header_timeout: Duration::from_millis(parse_num(&get, "PALISADE_HEADER_TIMEOUT_MS", 10_000, 100, 300_000)?),
                body_timeout: Duration::from_millis(parse_num(&get, "PALISADE_BODY_TIMEOUT_MS", 30_000, 100, 600_000)?),
                keep_alive_timeout: Duration::from_millis(parse_num(&get, "PALISADE_KEEP_ALIVE_TIMEOUT_MS", 60_000, 100, 3_600_000)?),
                ws_handshake_timeout: Duration::from_millis(parse_num(&get, "PALISADE_WS_HANDSHAKE_TIMEOUT_MS", 10_000, 100, 300_000)?),
                max_connections: parse_num(&get, "PALISADE_MAX_CONNECTIONS", 512, 1, 1_000_000)? as usize,
            },
            db_acquire_timeout: Duration::from_millis(parse_num(&get, "PALISADE_DB_ACQUIRE_TIMEOUT_MS", 1_000, 100, 60_000)?),
        })
    }
}

fn validate_origin(o: &str) -> Result<&str, ConfigError> {
    let rest = o.strip_prefix("https://").or_else(|| o.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains('/') && !host.contains('*') => Ok(o),
        _ => Err(ConfigError {
            variable: "PALISADE_ALLOWED_ORIGINS",
            message: format!("{o:?} is not an origin like https://app.example.com (no paths, no wildcards)"),
        }),
    }
}

fn parse_bool(get: &impl Fn(&str) -> Option<String>, var: &'static str, default: bool) -> Result<bool, ConfigError> {
    match get(var).map(|v| v.to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(v) => Err(ConfigError { variable: var, message: format!("expected true or false, got {v:?}") }),
    }
}

fn parse_num(get: &impl Fn(&str) -> Option<String>, var: &'static str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
    let Some(v) = get(var) else { return Ok(default) };
    match v.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError { variable: var, message: format!("expected a whole number from {min} to {max}, got {v:?}") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_embedded_setup() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.database_url.expose(), DEFAULT_DATABASE_URL);
        assert!(c.redis_url.is_none());
        assert!(c.cookie_secure && c.graphiql && c.introspection);
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = cfg(&[("PALISADE_BIND", "nope")]).unwrap_err();
        assert_eq!(e.variable, "PALISADE_BIND");
        assert_eq!(cfg(&[("PALISADE_COOKIE_SECURE", "maybe")]).unwrap_err().variable, "PALISADE_COOKIE_SECURE");
        assert_eq!(cfg(&[("PALISADE_ALLOWED_ORIGINS", "https://*.x.com")]).unwrap_err().variable, "PALISADE_ALLOWED_ORIGINS");
        assert_eq!(cfg(&[("DATABASE_URL", "mysql://x")]).unwrap_err().variable, "DATABASE_URL");
        assert_eq!(
            cfg(&[("PALISADE_SESSION_IDLE_SECS", "7200"), ("PALISADE_SESSION_ABSOLUTE_SECS", "3600")]).unwrap_err().variable,
            "PALISADE_SESSION_ABSOLUTE_SECS"
        );
        for var in [
            "PALISADE_HEADER_TIMEOUT_MS",
            "PALISADE_BODY_TIMEOUT_MS",
            "PALISADE_KEEP_ALIVE_TIMEOUT_MS",
            "PALISADE_WS_HANDSHAKE_TIMEOUT_MS",
            "PALISADE_MAX_CONNECTIONS",
            "PALISADE_DB_ACQUIRE_TIMEOUT_MS",
        ] {
            assert_eq!(cfg(&[(var, "0")]).unwrap_err().variable, var);
            assert_eq!(cfg(&[(var, "soon")]).unwrap_err().variable, var);
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let c = cfg(&[("DATABASE_URL", "postgres://u:topsecret@h/db"), ("PALISADE_DEMO_PASSWORD", "demo-password-1")]).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("topsecret") && !dbg.contains("demo-password-1"), "{dbg}");
    }
}
