//! Outgoing mail: plain-text UTF-8 messages over SMTP, or written as `.eml` files into
//! a folder when no SMTP server is configured (development and tests).
//!
//! Guarantees:
//! - Mail content never includes secrets other than the one-time code or link a
//!   message exists to deliver; callers pass the finished subject and body, and this
//!   module adds nothing but the standard headers (From, To, Subject, Date, Message-ID,
//!   MIME headers).
//! - The SMTP URL, which may carry a password, is a redacting [`Secret`]; neither it nor
//!   the credentials appear in `Debug` output, in configuration errors or in logs.
//!   Credentials are only accepted with an encrypted connection (`smtps://` or
//!   `?tls=required`), so a password is never sent in clear text.
//! - Headers cannot be injected: recipient, sender and subject go through lettre's typed
//!   headers, a subject containing a line break is refused, and control characters in a
//!   display name are replaced by spaces.
//! - A send failure (unreachable server, refused recipient, timeout, unwritable folder)
//!   is an `AppError::internal` the caller sees and logs; it never panics, and an SMTP
//!   send is bounded in time (a per-command timeout plus an overall deadline).

use crate::error::ConfigError;
use crate::error::{AppError, AppResult};
use crate::secret::Secret;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::{Address, AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use prometheus_client::metrics::counter::Counter;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Timeout for connecting to the SMTP server and for each SMTP command.
const SMTP_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on one whole SMTP send (connect, TLS, auth, envelope, data).
const SMTP_SEND_DEADLINE: Duration = Duration::from_secs(30);

pub const DEFAULT_MAIL_DIR: &str = "./mail";
pub const DEFAULT_MAIL_FROM: &str = "Palisade <no-reply@palisade.local>";

#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `SMTP_URL`; `None` means "write .eml files into `dir`".
    pub smtp_url: Option<Secret<String>>,
    /// `PALISADE_MAIL_DIR`: where the file transport writes.
    pub dir: PathBuf,
    /// `PALISADE_MAIL_FROM`: a mailbox such as `Palisade <no-reply@example.com>`.
    pub from: String,
}

impl MailConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        from_lookup(&|k: &str| std::env::var(k).ok())
    }
}

/// Reads `SMTP_URL`, `PALISADE_MAIL_DIR` and `PALISADE_MAIL_FROM` through `get`
/// (empty values count as unset) and validates them.
pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<MailConfig, ConfigError> {
    let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let smtp_url = match get("SMTP_URL") {
        None => None,
        Some(url) => {
            let url = Secret::new(url.trim().to_owned());
            smtp_builder(&url)?;
            Some(url)
        }
    };
    let dir = PathBuf::from(get("PALISADE_MAIL_DIR").unwrap_or_else(|| DEFAULT_MAIL_DIR.into()));
    let from = get("PALISADE_MAIL_FROM").map(|v| v.trim().to_owned()).unwrap_or_else(|| DEFAULT_MAIL_FROM.into());
    parse_from(&from)?;
    Ok(MailConfig { smtp_url, dir, from })
}

fn parse_from(from: &str) -> Result<Mailbox, ConfigError> {
    if from.chars().any(char::is_control) {
        return Err(ConfigError { variable: "PALISADE_MAIL_FROM", message: "must not contain control characters".into() });
    }
    from.parse::<Mailbox>().map_err(|e| ConfigError {
        variable: "PALISADE_MAIL_FROM",
        message: format!("expected a mailbox like \"Palisade <no-reply@example.com>\", got {from:?}: {e}"),
    })
}

/// Validates the URL's shape and lets lettre parse it. Errors never echo the URL,
/// which may contain credentials.
fn smtp_builder(url: &Secret<String>) -> Result<AsyncSmtpTransportBuilder, ConfigError> {
    let err = |message: String| ConfigError { variable: "SMTP_URL", message };
    let raw = url.expose().as_str();
    let (scheme, rest) = raw.split_once("://").ok_or_else(|| err("expected smtp://host:port or smtps://user:pass@host:465".into()))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "smtp" && scheme != "smtps" {
        return Err(err("expected an smtp:// or smtps:// URL".into()));
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let has_credentials = rest[..authority_end].contains('@');
    let tls = rest
        .split_once('?')
        .map(|(_, query)| query.split('#').next().unwrap_or_default())
        .and_then(|query| query.split('&').find_map(|pair| pair.split_once('=').filter(|(k, _)| *k == "tls").map(|(_, v)| v.to_owned())));
    if scheme == "smtp" {
        match tls.as_deref() {
            None | Some("required" | "opportunistic") => {}
            Some(_) => return Err(err("the tls parameter must be \"required\" or \"opportunistic\"".into())),
        }
        if has_credentials && tls.as_deref() != Some("required") {
            return Err(err("credentials are only accepted over an encrypted connection: use smtps:// or add ?tls=required".into()));
        }
    }
    let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(raw)
        .map_err(|e| err(format!("not accepted as an SMTP URL ({})", redact(&e.to_string(), rest, authority_end))))?;
    Ok(builder.timeout(Some(SMTP_COMMAND_TIMEOUT)))
}

/// Removes the URL's user-info from an error text, should the parser ever quote it.
fn redact(text: &str, rest: &str, authority_end: usize) -> String {
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, _)) if !userinfo.is_empty() => {
            let mut out = text.to_owned();
            for part in std::iter::once(userinfo).chain(userinfo.split(':')).filter(|p| !p.is_empty()) {
                out = out.replace(part, "[redacted]");
            }
            out
        }
        _ => text.to_owned(),
    }
}

/// Sends mail. Cheap to clone; clones share the SMTP connection pool and the health
/// counters.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
    health: Arc<Health>,
}

/// What operators see of delivery: counters for /metrics, the current streak of
/// failures for /readyz.
#[derive(Default)]
struct Health {
    sent: Counter,
    failed: Counter,
    failing_streak: AtomicU64,
}

/// A snapshot of delivery health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailHealth {
    pub sent: u64,
    pub failed: u64,
    /// Failed sends since the last one that succeeded.
    pub failing_streak: u64,
}

#[derive(Clone)]
enum Transport {
    Smtp(Arc<LazySmtp>),
    Files { dir: PathBuf, transport: AsyncFileTransport<Tokio1Executor> },
}

/// lettre's pooled transport spawns its cleanup task when built, which needs a Tokio
/// runtime; building on first send lets `Mailer::new` run anywhere.
struct LazySmtp {
    builder: AsyncSmtpTransportBuilder,
    transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer").field("kind", &self.kind()).finish_non_exhaustive()
    }
}

impl Mailer {
    pub fn new(cfg: &MailConfig) -> Result<Self, ConfigError> {
        let from = parse_from(&cfg.from)?;
        let transport = match &cfg.smtp_url {
            Some(url) => Transport::Smtp(Arc::new(LazySmtp { builder: smtp_builder(url)?, transport: OnceLock::new() })),
            None => Transport::Files { dir: cfg.dir.clone(), transport: AsyncFileTransport::new(&cfg.dir) },
        };
        Ok(Self { from, transport, health: Arc::default() })
    }

    /// The sent and failed counters, for registering with the metrics registry.
    pub fn counters(&self) -> (Counter, Counter) {
        (self.health.sent.clone(), self.health.failed.clone())
    }

    pub fn health(&self) -> MailHealth {
        MailHealth {
            sent: self.health.sent.get(),
            failed: self.health.failed.get(),
            failing_streak: self.health.failing_streak.load(Ordering::Relaxed),
        }
    }

    /// Counts a send that the caller gave up on (its own deadline passed first).
    pub fn note_failure(&self) {
        self.health.failed.inc();
        self.health.failing_streak.fetch_add(1, Ordering::Relaxed);
    }

    /// `"smtp"` or `"files"`.
    pub fn kind(&self) -> &'static str {
        match self.transport {
            Transport::Smtp(_) => "smtp",
            Transport::Files { .. } => "files",
        }
    }

    /// Sends one plain-text UTF-8 message. Errors carry the detail for the log; they
    /// are internal errors, so clients only ever see a generic message.
    pub async fn send(&self, to_name: &str, to_email: &str, subject: &str, text_body: &str) -> AppResult<()> {
        let result = self.deliver(to_name, to_email, subject, text_body).await;
        match &result {
            Ok(()) => {
                self.health.sent.inc();
                self.health.failing_streak.store(0, Ordering::Relaxed);
            }
            Err(_) => self.note_failure(),
        }
        result
    }

    async fn deliver(&self, to_name: &str, to_email: &str, subject: &str, text_body: &str) -> AppResult<()> {
        if subject.contains(['\r', '\n']) {
            return Err(AppError::internal("mail subject must not contain a line break"));
        }
        let address: Address = to_email.trim().parse().map_err(|e| AppError::internal(format!("invalid recipient address: {e}")))?;
        let name: String = to_name.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let name = name.trim();
        let to = Mailbox::new((!name.is_empty()).then(|| name.to_owned()), address);
        // Message-ID on the sender's domain rather than lettre's default (this host's
        // name), so mail does not reveal internal host names.
        let message_id = format!("<{}@{}>", uuid::Uuid::now_v7().simple(), self.from.email.domain());
        let message = Message::builder()
            .message_id(Some(message_id))
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(text_body.to_owned())
            .map_err(|e| AppError::internal(format!("could not build mail message: {e}")))?;

        match &self.transport {
            Transport::Smtp(smtp) => {
                let transport = smtp.transport.get_or_init(|| smtp.builder.clone().build());
                match tokio::time::timeout(SMTP_SEND_DEADLINE, transport.send(message)).await {
                    Ok(Ok(_response)) => Ok(()),
                    Ok(Err(e)) => Err(AppError::internal(format!("SMTP send failed: {e}"))),
                    Err(_) => Err(AppError::internal(format!("SMTP send timed out after {}s", SMTP_SEND_DEADLINE.as_secs()))),
                }
            }
            Transport::Files { dir, transport } => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| AppError::internal(format!("could not create mail folder {}: {e}", dir.display())))?;
                transport
                    .send(message)
                    .await
                    .map(|_id| ())
                    .map_err(|e| AppError::internal(format!("could not write mail into {}: {e}", dir.display())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<MailConfig, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        from_lookup(&|k: &str| map.get(k).cloned())
    }

    #[test]
    fn defaults_write_files() {
        let c = cfg(&[]).unwrap();
        assert!(c.smtp_url.is_none());
        assert_eq!(c.dir, PathBuf::from(DEFAULT_MAIL_DIR));
        assert_eq!(c.from, DEFAULT_MAIL_FROM);
        assert_eq!(Mailer::new(&c).unwrap().kind(), "files");
    }

    #[test]
    fn smtp_urls_are_validated_without_echoing_credentials() {
        for ok in ["smtp://127.0.0.1:2525", "smtp://mail.example.com:587?tls=required", "smtps://user:hunter2pw@mail.example.com:465"] {
            let c = cfg(&[("SMTP_URL", ok)]).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(Mailer::new(&c).unwrap().kind(), "smtp");
            assert!(!format!("{c:?}").contains("hunter2pw"));
        }
        for bad in [
            "http://user:hunter2pw@mail.example.com",
            "mail.example.com:25",
            "smtp://user:hunter2pw@mail.example.com:25",
            "smtp://user:hunter2pw@mail.example.com:587?tls=opportunistic",
            "smtp://mail.example.com?tls=sometimes",
            "smtps://user:hunter2pw@:465",
        ] {
            let e = cfg(&[("SMTP_URL", bad)]).unwrap_err();
            assert_eq!(e.variable, "SMTP_URL");
            assert!(!e.to_string().contains("hunter2pw"), "{e}");
        }
    }

    #[test]
    fn from_must_be_a_mailbox() {
        assert_eq!(cfg(&[("PALISADE_MAIL_FROM", "not a mailbox")]).unwrap_err().variable, "PALISADE_MAIL_FROM");
        assert_eq!(cfg(&[("PALISADE_MAIL_FROM", "A <a@b.c>\r\nBcc: x@y.z")]).unwrap_err().variable, "PALISADE_MAIL_FROM");
        assert_eq!(cfg(&[("PALISADE_MAIL_FROM", "Ops <ops@example.com>")]).unwrap().from, "Ops <ops@example.com>");
    }

    #[tokio::test]
    async fn file_transport_writes_a_readable_eml() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("not-yet-created");
        let mailer = Mailer::new(&MailConfig { smtp_url: None, dir: dir.clone(), from: DEFAULT_MAIL_FROM.into() }).unwrap();
        assert_eq!(format!("{mailer:?}"), "Mailer { kind: \"files\", .. }");
        mailer.send("Ada Lovelace", "ada@example.com", "Your sign-in code", "Your code is 123456.\n").await.unwrap();

        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("eml"));
        let eml = std::fs::read_to_string(&files[0]).unwrap();
        assert!(eml.contains("Subject: Your sign-in code\r\n"), "{eml}");
        assert!(
            eml.contains("To: \"Ada Lovelace\" <ada@example.com>\r\n") || eml.contains("To: Ada Lovelace <ada@example.com>\r\n"),
            "{eml}"
        );
        assert!(eml.contains("From: Palisade <no-reply@palisade.local>\r\n"), "{eml}");
        assert!(eml.contains("Content-Type: text/plain; charset=utf-8\r\n"), "{eml}");
        assert!(eml.contains("\r\n\r\nYour code is 123456."), "{eml}");
        assert!(eml.contains("@palisade.local>\r\n") && eml.contains("Message-ID: <"), "{eml}");
    }

    #[tokio::test]
    async fn header_injection_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(&MailConfig { smtp_url: None, dir: tmp.path().into(), from: DEFAULT_MAIL_FROM.into() }).unwrap();
        assert!(mailer.send("A", "a@example.com", "Hi\r\nBcc: evil@example.com", "body").await.is_err());
        assert!(mailer.send("A", "a@example.com\r\nBcc: evil@example.com", "Hi", "body").await.is_err());
        mailer.send("A\r\nBcc: evil@example.com", "a@example.com", "Hi", "body").await.unwrap();
        let eml = std::fs::read_dir(tmp.path()).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect::<String>();
        assert!(!eml.contains("\r\nBcc:"), "{eml}");
    }
}
