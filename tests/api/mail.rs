//! Outgoing mail at library level: a real SMTP round trip through aiosmtpd, the file
//! transport, and a bounded failure when the SMTP server is unreachable.

use crate::smtp::{SmtpSink, eml_files};
use palisade::mail::{MailConfig, Mailer, from_lookup};
use std::collections::HashMap;
use std::time::Duration;

fn config(pairs: &[(&str, &str)]) -> MailConfig {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    from_lookup(&|k: &str| map.get(k).cloned()).unwrap()
}

#[tokio::test]
async fn smtp_delivers_utf8_subject_and_body() {
    let sink = SmtpSink::start().await;
    assert!(sink.port > 0);
    let mailer =
        Mailer::new(&config(&[("SMTP_URL", &sink.url()), ("PALISADE_MAIL_FROM", "Palisade Tests <tests@palisade.local>")])).unwrap();
    assert_eq!(mailer.kind(), "smtp");

    let subject = "Velkommen til Ålesund – din kode";
    let body = "Hei Åse!\n\nDin engangskode er 482913.\nHilsen fra Ålesund, Tromsø og Bodø — ✓\n";
    mailer.send("Åse Ødegård", "aase@example.no", subject, body).await.unwrap();

    let mail = sink.wait_for(|m| m.to == "aase@example.no").await;
    assert_eq!(mail.subject, subject);
    assert_eq!(mail.body, body.trim_end());

    // A second message over the same (pooled) transport arrives too, in order.
    mailer.send("Bob", "bob@example.com", "Second", "Plain ASCII body.").await.unwrap();
    let second = sink.wait_for(|m| m.to == "bob@example.com").await;
    assert_eq!((second.subject.as_str(), second.body.as_str()), ("Second", "Plain ASCII body."));
    let all = sink.messages().await;
    assert_eq!(all.iter().map(|m| m.to.as_str()).collect::<Vec<_>>(), ["aase@example.no", "bob@example.com"]);
}

#[tokio::test]
async fn file_transport_writes_eml_files() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("outbox");
    let mailer = Mailer::new(&config(&[("PALISADE_MAIL_DIR", folder.to_str().unwrap())])).unwrap();
    assert_eq!(mailer.kind(), "files");
    assert!(eml_files(&folder).is_empty());

    mailer.send("Åse", "aase@example.no", "Kode for Ålesund", "Koden din er 123456.").await.unwrap();
    let mails = eml_files(&folder);
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].to, "aase@example.no");
    assert_eq!(mails[0].subject, "Kode for Ålesund");
    assert_eq!(mails[0].body, "Koden din er 123456.");
}

#[tokio::test]
async fn unreachable_smtp_server_is_an_error_not_a_hang() {
    let mailer = Mailer::new(&config(&[("SMTP_URL", "smtp://127.0.0.1:1")])).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(30), mailer.send("X", "x@example.com", "Hello", "Body")).await;
    let result = result.expect("send to an unreachable server must fail within its own timeout");
    let err = result.expect_err("send to an unreachable server must fail");
    assert!(format!("{err:?}").contains("SMTP"), "{err:?}");
}
