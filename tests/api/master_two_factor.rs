//! Master admins sign in with a password and a mandatory TOTP code: enrolment is part
//! of the first sign-in (with recovery codes), the same throttles and failure counters
//! as staff apply, and destructive support actions need a recent step-up.

use crate::helpers::{MASTER_EMAIL, MASTER_PASSWORD, TestApp, base32_decode};
use palisade::clock::Clock;
use serde_json::{Value, json};

const VERIFY: &str =
    "mutation($i: VerifyTwoFactorInput!) { verifyTwoFactor(input: $i) { token recoveryCodes failedAttemptsSinceLastSignIn } }";

async fn verify(app: &TestApp, challenge: &str, method: &str, code: &str) -> crate::helpers::Reply {
    app.gql(VERIFY, json!({ "i": { "challengeId": challenge, "method": method, "code": code } }), None).await
}

fn code(seed: &[u8], app: &TestApp) -> String {
    palisade::auth::twofactor::totp_code_at(seed, app.clock.now().timestamp() as u64)
}

async fn platform_actions(app: &TestApp) -> Vec<(String, String)> {
    app.sql_values("SELECT action, outcome FROM audit_entries WHERE workspace_id IS NULL ORDER BY seq", vec![])
        .await
        .iter()
        .map(|r| (r.try_get_by_index::<String>(0).unwrap(), r.try_get_by_index::<String>(1).unwrap()))
        .collect()
}

#[tokio::test]
async fn the_first_sign_in_enrols_totp_and_no_sign_in_opens_a_session_with_a_password_alone() {
    let app = TestApp::spawn().await;
    palisade::service::bootstrap::create_master_admin(&app.state, MASTER_EMAIL, MASTER_PASSWORD).await.unwrap();

    // First sign-in: a challenge with the authenticator to enrol, never a session.
    let r = app.master_challenge(MASTER_EMAIL, MASTER_PASSWORD).await;
    let m = &r.ok()["masterLogin"];
    assert!(m["token"].is_null() && r.headers.get("set-cookie").is_none(), "{}", r.body);
    assert_eq!(m["challenge"]["methods"], json!(["TOTP"]));
    let seed = base32_decode(m["totpEnrollment"]["secret"].as_str().unwrap());
    assert!(m["totpEnrollment"]["otpauthUri"].as_str().unwrap().starts_with("otpauth://totp/"));
    let challenge = m["challenge"]["id"].as_str().unwrap().to_owned();
    assert_eq!(app.count("SELECT COUNT(*) FROM master_admins WHERE totp_secret IS NOT NULL", vec![]).await, 0, "not before confirmed");

    assert_eq!(verify(&app, &challenge, "TOTP", "000000").await.code(), Some("BAD_USER_INPUT"));
    assert_eq!(verify(&app, &challenge, "RECOVERY", "abcd-efgh").await.code(), Some("BAD_USER_INPUT"), "only TOTP is offered");
    let r = verify(&app, &challenge, "TOTP", &code(&seed, &app)).await;
    let v = &r.ok()["verifyTwoFactor"];
    let token = v["token"].as_str().unwrap().to_owned();
    let recovery: Vec<String> = v["recoveryCodes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(recovery.len(), 10);
    assert_eq!(v["failedAttemptsSinceLastSignIn"], 1, "the wrong enrolment code counted");
    assert_eq!(app.me(&token).await.ok()["me"]["kind"], "MASTER_ADMIN");
    let r = app.gql("{ myTwoFactor { totpEnabled recoveryCodesLeft sessionTwoFactor } }", json!({}), Some(&token)).await;
    assert_eq!(r.ok()["myTwoFactor"], json!({ "totpEnabled": true, "recoveryCodesLeft": 10, "sessionTwoFactor": true }));
    assert_eq!(verify(&app, &challenge, "TOTP", &code(&seed, &app)).await.code(), Some("FORBIDDEN"), "a challenge works once");

    // Later sign-ins: TOTP or a recovery code, each once.
    let r = app.master_challenge(MASTER_EMAIL, MASTER_PASSWORD).await;
    assert!(r.ok()["masterLogin"]["totpEnrollment"].is_null() && r.ok()["masterLogin"]["token"].is_null());
    assert_eq!(r.ok()["masterLogin"]["challenge"]["methods"], json!(["TOTP", "RECOVERY"]));
    let c2 = r.ok()["masterLogin"]["challenge"]["id"].as_str().unwrap().to_owned();
    assert_eq!(verify(&app, &c2, "TOTP", &code(&seed, &app)).await.code(), Some("BAD_USER_INPUT"), "the enrolment step is spent");
    let r = verify(&app, &c2, "RECOVERY", &recovery[0]).await;
    assert!(r.ok()["verifyTwoFactor"]["token"].is_string());
    let c3 = app.master_challenge(MASTER_EMAIL, MASTER_PASSWORD).await.ok()["masterLogin"]["challenge"]["id"].as_str().unwrap().to_owned();
    assert_eq!(verify(&app, &c3, "RECOVERY", &recovery[0]).await.code(), Some("BAD_USER_INPUT"), "a recovery code works once");
    app.clock.advance(chrono::Duration::seconds(30));
    assert!(verify(&app, &c3, "TOTP", &code(&seed, &app)).await.ok()["verifyTwoFactor"]["token"].is_string());

    let actions = platform_actions(&app).await;
    for expected in [
        ("platform.challenge_issued", "success"),
        ("platform.two_factor", "failed"),
        ("platform.totp_enrolled", "success"),
        ("platform.sign_in", "success"),
    ] {
        assert!(actions.contains(&(expected.0.into(), expected.1.into())), "{expected:?} in {actions:?}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_entries WHERE workspace_id IS NULL AND action = 'platform.sign_in'", vec![]).await, 3);
}

#[tokio::test]
async fn master_sign_in_counts_failures_and_throttles_the_resolved_account() {
    let app = TestApp::spawn_with(&[("PALISADE_RATE_SIGNIN_ACCOUNT", "10/40s")]).await;
    app.master_token().await;
    for i in 0..3 {
        let typed = if i % 2 == 0 { MASTER_EMAIL.to_uppercase() } else { MASTER_EMAIL.to_owned() };
        assert_eq!(app.master_challenge(&typed, "wrong-password-xyz").await.code(), Some("UNAUTHENTICATED"));
    }
    app.clock.advance(chrono::Duration::seconds(30));
    let r = app.master_challenge(MASTER_EMAIL, MASTER_PASSWORD).await;
    let c = r.ok()["masterLogin"]["challenge"]["id"].as_str().unwrap().to_owned();
    let seed = app.backend.master_seeds.lock().unwrap()[MASTER_EMAIL].clone();
    let r = verify(&app, &c, "TOTP", &code(&seed, &app)).await;
    assert_eq!(r.ok()["verifyTwoFactor"]["failedAttemptsSinceLastSignIn"], 3, "{}", r.body);

    // One budget for the account however its address is typed: 10 guesses, then none.
    for i in 0..10 {
        let typed = if i % 2 == 0 { MASTER_EMAIL.to_uppercase() } else { format!("  {MASTER_EMAIL} ") };
        app.master_challenge(&typed, "wrong-password-xyz").await;
    }
    let r = app.master_challenge(MASTER_EMAIL, MASTER_PASSWORD).await;
    assert_eq!((r.status, r.code()), (429, Some("RATE_LIMITED")));
}

#[tokio::test]
async fn destructive_support_actions_need_a_recent_step_up() {
    let app = TestApp::spawn().await;
    let master = app.master_token().await;
    let ws = app.workspace_id("demo").await;
    let staff = app.user_id("demo", "staff").await;
    let actions: Vec<(&str, Value)> = vec![
        (
            "mutation($w: ID!, $u: ID!) { startImpersonation(input: { workspaceId: $w, userId: $u, reason: \"ticket 4711: cannot see orders\" }) { token } }",
            json!({ "w": ws, "u": staff }),
        ),
        ("mutation($w: ID!) { suspendWorkspace(id: $w, reason: \"unpaid invoices\") { status } }", json!({ "w": ws })),
        ("mutation($w: ID!) { softDeleteWorkspace(id: $w, reason: \"customer left\") { status } }", json!({ "w": ws })),
        ("mutation($w: ID!) { purgeWorkspace(id: $w, reason: \"customer left\") { id } }", json!({ "w": ws })),
    ];
    // Eleven minutes after signing in, the sign-in no longer counts as a recent proof.
    for _ in 0..11 {
        app.clock.advance(chrono::Duration::minutes(1));
        app.me(&master).await.ok();
    }
    for (q, vars) in &actions {
        let r = app.gql(q, vars.clone(), Some(&master)).await;
        assert_eq!(r.code(), Some("STEP_UP_REQUIRED"), "{q}: {}", r.body);
    }
    let reauth = "mutation($p: String, $c: String) { reauthenticate(password: $p, code: $c) { stepUpValidUntil sessionTwoFactor } }";
    assert_eq!(app.gql(reauth, json!({ "p": "wrong-password-xyz" }), Some(&master)).await.code(), Some("BAD_USER_INPUT"));
    let seed = app.backend.master_seeds.lock().unwrap()[MASTER_EMAIL].clone();
    let r = app.gql(reauth, json!({ "c": code(&seed, &app) }), Some(&master)).await;
    assert!(r.ok()["reauthenticate"]["stepUpValidUntil"].is_string(), "{}", r.body);
    let r = app.gql(actions[0].0, actions[0].1.clone(), Some(&master)).await;
    assert!(r.ok()["startImpersonation"]["token"].is_string(), "{}", r.body);
    let r = app.gql(actions[1].0, actions[1].1.clone(), Some(&master)).await;
    assert_eq!(r.ok()["suspendWorkspace"]["status"], "SUSPENDED");
    let steps = app
        .count(
            "SELECT COUNT(*) FROM audit_entries WHERE workspace_id IS NULL AND action = 'platform.step_up' AND outcome = 'success'",
            vec![],
        )
        .await;
    assert_eq!(steps, 1);
}

/// One recovery code, presented to two open challenges at once: only one signs in
/// (a compare-and-set on the stored codes; on PostgreSQL the attempts run in parallel).
#[tokio::test]
async fn a_recovery_code_used_concurrently_signs_in_once() {
    let app = TestApp::spawn().await;
    palisade::service::bootstrap::create_master_admin(&app.state, MASTER_EMAIL, MASTER_PASSWORD).await.unwrap();
    let r = app.master_challenge(MASTER_EMAIL, MASTER_PASSWORD).await;
    let seed = base32_decode(r.ok()["masterLogin"]["totpEnrollment"]["secret"].as_str().unwrap());
    let c = r.ok()["masterLogin"]["challenge"]["id"].as_str().unwrap().to_owned();
    let r = verify(&app, &c, "TOTP", &code(&seed, &app)).await;
    let recovery = r.ok()["verifyTwoFactor"]["recoveryCodes"][0].as_str().unwrap().to_owned();
    let mut challenges = Vec::new();
    for _ in 0..6 {
        let r = app.master_challenge(MASTER_EMAIL, MASTER_PASSWORD).await;
        challenges.push(r.ok()["masterLogin"]["challenge"]["id"].as_str().unwrap().to_owned());
    }
    let attempts = challenges.iter().map(|c| verify(&app, c, "RECOVERY", &recovery));
    let results = futures_util::future::join_all(attempts).await;
    let signed_in = results.iter().filter(|r| r.body["data"]["verifyTwoFactor"]["token"].is_string()).count();
    assert_eq!(signed_in, 1, "{:?}", results.iter().map(|r| r.body.to_string()).collect::<Vec<_>>());
    let r = app
        .gql(
            "{ myTwoFactor { recoveryCodesLeft } }",
            json!({}),
            Some(results.iter().find_map(|r| r.body["data"]["verifyTwoFactor"]["token"].as_str()).unwrap()),
        )
        .await;
    assert_eq!(r.ok()["myTwoFactor"]["recoveryCodesLeft"], 9);
}
