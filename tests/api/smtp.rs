//! A real SMTP server for tests: Python's `aiosmtpd` on a free loopback port, storing
//! every message it accepts in a Maildir inside a temporary folder. Also a reader for the
//! `.eml` files lettre's file transport writes; both go through the same small parser,
//! which decodes RFC 2047 encoded words in headers and quoted-printable or base64 bodies.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

const INSTALL_HINT: &str = "aiosmtpd is not installed: python3 -m pip install aiosmtpd";

/// One received message, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The address in the To header (without display name or angle brackets).
    pub to: String,
    /// The decoded Subject header.
    pub subject: String,
    /// The decoded text body, line endings normalised to `\n`, trailing newlines removed.
    pub body: String,
}

pub struct SmtpSink {
    pub port: u16,
    child: Child,
    maildir: PathBuf,
    // Declared last so the server is killed before its folder is removed.
    _dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts `python3 -m aiosmtpd` with the Maildir handler and waits until it accepts
    /// connections. Panics (the test fails, it is not skipped) if it cannot start.
    pub async fn start() -> SmtpSink {
        Self::start_at(None).await
    }

    /// On a port of the caller's choosing (a server the test started without mail,
    /// whose SMTP server now comes up).
    pub async fn start_on(port: u16) -> SmtpSink {
        Self::start_at(Some(port)).await
    }

    async fn start_at(fixed: Option<u16>) -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("maildir");
        let mut last_error = String::new();
        // A port picked from a closed listener may be taken again before aiosmtpd binds
        // it; a few attempts make that race harmless.
        for attempt in 0..3 {
            let port = fixed.unwrap_or_else(free_port);
            let log_path = dir.path().join(format!("aiosmtpd-{attempt}.log"));
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new("python3")
                .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
                .arg(&maildir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| panic!("could not run python3 ({e}); {INSTALL_HINT}"));

            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    if log.contains("No module named aiosmtpd") || log.contains("No module named 'aiosmtpd'") {
                        panic!("{INSTALL_HINT}");
                    }
                    last_error = format!("aiosmtpd exited with {status}: {log}");
                    break;
                }
                if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                    return SmtpSink { port, child, maildir, _dir: dir };
                }
                if Instant::now() > deadline {
                    child.start_kill().ok();
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    panic!("aiosmtpd did not accept connections on 127.0.0.1:{port} within 10 s ({INSTALL_HINT}); its log: {log}");
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        panic!("aiosmtpd could not start ({INSTALL_HINT}): {last_error}");
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, oldest first.
    pub async fn messages(&self) -> Vec<Mail> {
        // Maildir writes into tmp/ and renames into new/, so a file in new/ is complete.
        // Names carry a per-process counter "Q<n>", which orders them by arrival.
        let mut files: Vec<(u64, PathBuf)> = read_dir_files(&self.maildir.join("new"))
            .into_iter()
            .map(|path| {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                let seq = name
                    .split('.')
                    .filter(|part| part.starts_with('M'))
                    .find_map(|part| part.rsplit_once('Q').and_then(|(_, n)| n.parse::<u64>().ok()))
                    .unwrap_or(u64::MAX);
                (seq, path)
            })
            .collect();
        files.sort();
        files.into_iter().map(|(_, path)| parse_file(&path)).collect()
    }

    /// Waits (up to 10 s) for a message matching `pred` and returns it.
    pub async fn wait_for(&self, pred: impl Fn(&Mail) -> bool) -> Mail {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let messages = self.messages().await;
            if let Some(mail) = messages.iter().find(|m| pred(m)) {
                return mail.clone();
            }
            if Instant::now() > deadline {
                panic!("no matching mail arrived within 10 s; received: {messages:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        // kill_on_drop would do it too; being explicit keeps the order obvious.
        self.child.start_kill().ok();
    }
}

/// The messages lettre's file transport wrote into `dir` (`<id>.eml`), oldest first.
/// A missing folder means no mail.
pub fn eml_files(dir: impl AsRef<Path>) -> Vec<Mail> {
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = read_dir_files(dir.as_ref())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .map(|p| (std::fs::metadata(&p).and_then(|m| m.modified()).unwrap(), p))
        .collect();
    files.sort();
    files.into_iter().map(|(_, path)| parse_file(&path)).collect()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn read_dir_files(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("cannot read {}: {e}", dir.display()),
    }
}

fn parse_file(path: &Path) -> Mail {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse(&raw)
}

/// Parses a single-part message: unfolds headers, decodes encoded words, and decodes
/// the body's quoted-printable or base64 transfer encoding. Text is taken as UTF-8.
pub fn parse(raw: &[u8]) -> Mail {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or_default();

    let to = decode_words(header("to"));
    let to = match (to.rfind('<'), to.rfind('>')) {
        (Some(start), Some(end)) if start < end => to[start + 1..end].to_owned(),
        _ => to.trim().to_owned(),
    };
    let body_bytes = match header("content-transfer-encoding").to_ascii_lowercase().as_str() {
        "quoted-printable" => decode_qp(body, false),
        "base64" => decode_base64(body),
        _ => body.as_bytes().to_vec(),
    };
    let body = String::from_utf8_lossy(&body_bytes).replace("\r\n", "\n").trim_end_matches('\n').to_owned();
    Mail { to, subject: decode_words(header("subject")), body }
}

/// Decodes RFC 2047 encoded words (`=?charset?B|Q?...?=`); whitespace between two
/// adjacent encoded words is dropped, as the RFC requires.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut pending_space = String::new();
    let mut previous_was_word = false;
    while !rest.is_empty() {
        if let Some((decoded, consumed)) = encoded_word(rest) {
            if !previous_was_word {
                out.push_str(&pending_space);
            }
            pending_space.clear();
            out.push_str(&decoded);
            rest = &rest[consumed..];
            previous_was_word = true;
        } else {
            let c = rest.chars().next().unwrap_or_default();
            if c.is_whitespace() {
                pending_space.push(c);
            } else {
                out.push_str(&pending_space);
                pending_space.clear();
                out.push(c);
                previous_was_word = false;
            }
            rest = &rest[c.len_utf8()..];
        }
    }
    out.push_str(&pending_space);
    out
}

/// If `s` starts with an encoded word, its decoded text and length.
fn encoded_word(s: &str) -> Option<(String, usize)> {
    let inner = s.strip_prefix("=?")?;
    let (_charset, inner) = inner.split_once('?')?;
    let (encoding, inner) = inner.split_once('?')?;
    let end = inner.find("?=")?;
    let payload = &inner[..end];
    if payload.contains(char::is_whitespace) {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => decode_base64(payload),
        "Q" | "q" => decode_qp(payload, true),
        _ => return None,
    };
    let consumed = s.len() - inner.len() + end + 2;
    Some((String::from_utf8_lossy(&bytes).into_owned(), consumed))
}

fn decode_base64(s: &str) -> Vec<u8> {
    use base64::Engine;
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact).unwrap_or_else(|e| panic!("bad base64 in mail: {e}"))
}

/// Quoted-printable (RFC 2045), or the header "Q" variant where `_` is a space.
fn decode_qp(s: &str, header: bool) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' if bytes.get(i + 1) == Some(&b'\n') => i += 2,
            b'=' if bytes.get(i + 1) == Some(&b'\r') && bytes.get(i + 2) == Some(&b'\n') => i += 3,
            b'=' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'=');
                        i += 1;
                    }
                }
            }
            b'_' if header => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[test]
fn parser_decodes_encodings() {
    let raw = b"Subject: =?utf-8?b?w4VsZXN1bmQ=?=\r\n =?utf-8?q?_r=C3=B8d?= x\r\nTo: =?utf-8?b?w4Vz?= <a@b.no>\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\nK=C3=B8=\r\nbenhavn\r\n";
    let m = parse(raw);
    assert_eq!(m, Mail { to: "a@b.no".into(), subject: "Ålesund rød x".into(), body: "København".into() });
    let raw = b"Subject: plain\nTo: c@d.e\nContent-Transfer-Encoding: base64\n\nw4Vs\nZXN1bmQ=\n";
    assert_eq!(parse(raw), Mail { to: "c@d.e".into(), subject: "plain".into(), body: "Ålesund".into() });
}
