//! With the mail server down, an email sign-in code is never answered as sent: the
//! sign-in says so (SERVICE_UNAVAILABLE with the challenge to retry), the failure is
//! audited and visible in /metrics and /readyz, and `resendSignInCode` delivers a new
//! code once the server is back.

use crate::helpers::{DEMO_PASSWORD, TestApp};
use crate::smtp::{SmtpSink, free_port};
use serde_json::json;

async fn readyz_mail(app: &TestApp) -> String {
    let r = app.client.get(format!("{}/readyz", app.url)).send().await.unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    body["mail"].as_str().unwrap().to_owned()
}

async fn failed_sends(app: &TestApp) -> u64 {
    let text = app.client.get(format!("{}/metrics", app.url)).send().await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with("palisade_mail_failed_total")).unwrap_or_else(|| panic!("no mail metric in {text}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_sign_in_code_that_cannot_be_sent_is_an_error_and_can_be_resent() {
    let port = free_port();
    let app = TestApp::spawn_with(&[("SMTP_URL", &format!("smtp://127.0.0.1:{port}"))]).await;
    let owner = app.login("demo", "owner").await;
    let q = "mutation($i: SecuritySettingsInput!) { updateSecuritySettings(input: $i) { twoFactor } }";
    app.gql(q, json!({ "i": { "twoFactor": "ALL" } }), Some(&owner)).await.ok();
    assert_eq!(readyz_mail(&app).await, "ok");

    let r = app.try_login("demo", "staff", DEMO_PASSWORD).await;
    assert_eq!((r.status, r.code()), (503, Some("SERVICE_UNAVAILABLE")), "{}", r.body);
    let ext = &r.body["errors"][0]["extensions"];
    let challenge = ext["challengeId"].as_str().unwrap().to_owned();
    assert_eq!(ext["methods"], json!(["EMAIL"]));
    assert!(r.data()["login"].is_null() && r.headers.get("set-cookie").is_none());
    let rows = app
        .sql_values("SELECT outcome FROM audit_entries WHERE action = 'auth.sign_in_code' AND request_id = ?", vec![r.request_id().into()])
        .await;
    assert_eq!(rows.len(), 1, "the failed delivery is on the record");
    assert_eq!(rows[0].try_get_by_index::<String>(0).unwrap(), "failed");
    assert!(failed_sends(&app).await >= 1);
    assert_eq!(readyz_mail(&app).await, "failing");

    let resend = "mutation($c: String!) { resendSignInCode(challengeId: $c) { id methods expiresAt } }";
    let r = app.gql(resend, json!({ "c": challenge }), None).await;
    assert_eq!(r.code(), Some("SERVICE_UNAVAILABLE"), "still down: {}", r.body);
    assert_eq!(app.gql(resend, json!({ "c": "no-such-challenge" }), None).await.code(), Some("FORBIDDEN"));

    // The mail server comes back: a new code is sent and signs in.
    let sink = SmtpSink::start_on(port).await;
    let r = app.gql(resend, json!({ "c": challenge }), None).await;
    assert_eq!(r.ok()["resendSignInCode"]["id"], challenge.as_str());
    let mail = sink.wait_for(|m| m.to.contains("staff@") && m.subject.contains("sign-in code")).await;
    let code: String = mail.body.split_whitespace().find(|w| w.len() == 8 && w.chars().all(|c| c.is_ascii_digit())).unwrap().into();
    let r = app
        .gql(
            "mutation($i: VerifyTwoFactorInput!) { verifyTwoFactor(input: $i) { token } }",
            json!({ "i": { "challengeId": challenge, "method": "EMAIL", "code": code } }),
            None,
        )
        .await;
    assert!(r.ok()["verifyTwoFactor"]["token"].is_string());
    assert_eq!(readyz_mail(&app).await, "ok");
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_entries WHERE action = 'auth.sign_in_code_resent'", vec![]).await, 1);
}
