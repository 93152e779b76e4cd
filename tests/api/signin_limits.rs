//! Sign-in limits and answers found from outside: one budget per account whatever was
//! typed, second-factor guesses on second-factor budgets, network and hours decided
//! before the password or code, a per-address limit for anonymous requests, and
//! refused requests of live sessions on the record.

use crate::helpers::{DEMO_PASSWORD, Reply, TestApp};
use serde_json::{Value, json};

async fn gql_from(app: &TestApp, client: &str, query: &str, vars: Value, token: Option<&str>) -> Reply {
    app.gql_from(client, query, vars, token).await
}

async fn login_from(app: &TestApp, client: &str, login: &str, password: &str) -> Reply {
    let q = "mutation($i: LoginInput!) { login(input: $i) { token challenge { id methods } } }";
    gql_from(app, client, q, json!({ "i": { "workspace": "demo", "login": login, "password": password } }), None).await
}

#[tokio::test]
async fn the_account_budget_is_one_whatever_identifier_was_typed() {
    let app = TestApp::spawn_with(&[("PALISADE_RATE_SIGNIN_ACCOUNT", "10/40s")]).await;
    let email = app
        .sql_values("SELECT email FROM users WHERE username_key = 'staff'", vec![])
        .await
        .first()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .unwrap();
    // Ten guesses spread over five spellings of one account.
    let spellings = ["staff", "STAFF", "Ｓｔａｆｆ", email.as_str(), &email.to_uppercase()];
    for i in 0..10 {
        let r = app.try_login("demo", spellings[i % spellings.len()], "wrong-password-xyz").await;
        assert_eq!(r.code(), Some("UNAUTHENTICATED"), "guess {i}: {}", r.body);
    }
    for s in spellings {
        assert_eq!(app.try_login("demo", s, DEMO_PASSWORD).await.code(), Some("RATE_LIMITED"), "{s}");
    }
    // Unknown names share a budget on their normalised form too.
    for i in 0..10 {
        let typed = if i % 2 == 0 { "nobody-here" } else { "ＮＯＢＯＤＹ-HERE" };
        assert_eq!(app.try_login("demo", typed, "wrong-password-xyz").await.code(), Some("UNAUTHENTICATED"));
    }
    assert_eq!(app.try_login("demo", "Nobody-Here", "wrong-password-xyz").await.code(), Some("RATE_LIMITED"));
    // Someone else is not affected.
    assert!(app.try_login("demo", "sam", DEMO_PASSWORD).await.ok()["login"]["token"].is_string());
}

#[tokio::test]
async fn step_up_codes_spend_the_second_factor_budget_not_the_password_budget() {
    let app = TestApp::spawn_with(&[("PALISADE_RATE_TWO_FACTOR_ACCOUNT", "3/60s"), ("PALISADE_RATE_SIGNIN_ACCOUNT", "10/40s")]).await;
    let staff = app.login("demo", "staff").await;
    let q = "mutation($p: String, $c: String) { reauthenticate(password: $p, code: $c) { stepUpValidUntil } }";
    for i in 0..3 {
        let r = app.gql(q, json!({ "c": "000000" }), Some(&staff)).await;
        assert_eq!(r.code(), Some("BAD_USER_INPUT"), "code guess {i}: {}", r.body);
    }
    let r = app.gql(q, json!({ "c": "000000" }), Some(&staff)).await;
    assert_eq!((r.status, r.code()), (429, Some("RATE_LIMITED")), "the fourth code guess is over the second-factor budget");
    // The password budget was not spent by the code guesses.
    let r = app.gql(q, json!({ "p": DEMO_PASSWORD }), Some(&staff)).await;
    assert!(r.ok()["reauthenticate"]["stepUpValidUntil"].is_string());
}

#[tokio::test]
async fn a_refused_network_answers_the_same_for_right_and_wrong_passwords_and_codes() {
    let app = TestApp::spawn_with(&[("PALISADE_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let owner = login_from(&app, "203.0.113.5", "owner", DEMO_PASSWORD).await;
    let owner = owner.ok()["login"]["token"].as_str().unwrap().to_owned();
    let q = "mutation($i: SecuritySettingsInput!) { updateSecuritySettings(input: $i) { ipAllowlist } }";
    gql_from(&app, "203.0.113.5", q, json!({ "i": { "ipAllowlist": ["203.0.113.0/24"] } }), Some(&owner)).await.ok();

    let outside = "198.51.100.1";
    let mut seen = Vec::new();
    for (login, password) in [("staff", DEMO_PASSWORD), ("staff", "wrong-password-xyz"), ("nobody-here", DEMO_PASSWORD)] {
        let r = login_from(&app, outside, login, password).await;
        seen.push((r.status, r.code().map(str::to_owned), r.body["errors"][0]["message"].clone()));
    }
    assert!(seen.iter().all(|s| s == &seen[0]), "one answer for all: {seen:?}");
    assert_eq!(seen[0].1.as_deref(), Some("LOGIN_RESTRICTED"));

    // The same for a second factor: a challenge started inside, answered from outside.
    gql_from(
        &app,
        "203.0.113.5",
        "mutation($i: SecuritySettingsInput!) { updateSecuritySettings(input: $i) { twoFactor } }",
        json!({ "i": { "twoFactor": "ALL", "ipAllowlist": ["203.0.113.0/24"] } }),
        Some(&owner),
    )
    .await
    .ok();
    let r = login_from(&app, "203.0.113.7", "staff", DEMO_PASSWORD).await;
    let challenge = r.ok()["login"]["challenge"]["id"].as_str().unwrap().to_owned();
    let mail = app.mails().into_iter().rev().find(|m| m.subject.contains("sign-in code")).unwrap();
    let code: String = mail.body.split_whitespace().find(|w| w.len() == 8 && w.chars().all(|c| c.is_ascii_digit())).unwrap().into();
    let verify = "mutation($i: VerifyTwoFactorInput!) { verifyTwoFactor(input: $i) { token } }";
    let mut seen = Vec::new();
    for c in ["00000000", code.as_str()] {
        let r = gql_from(&app, outside, verify, json!({ "i": { "challengeId": challenge, "method": "EMAIL", "code": c } }), None).await;
        seen.push((r.status, r.code().map(str::to_owned)));
    }
    assert_eq!(seen, [(200, Some("LOGIN_RESTRICTED".into())), (200, Some("LOGIN_RESTRICTED".into()))]);
    // The refusals looked at no code: the right one still works from inside.
    let r =
        gql_from(&app, "203.0.113.7", verify, json!({ "i": { "challengeId": challenge, "method": "EMAIL", "code": code } }), None).await;
    assert!(r.ok()["verifyTwoFactor"]["token"].is_string(), "{}", r.body);
}

#[tokio::test]
async fn anonymous_requests_have_a_per_address_limit() {
    let app = TestApp::spawn_with(&[("PALISADE_RATE_ANONYMOUS_IP", "5/1h")]).await;
    let staff = app.login("demo", "staff").await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        let r = app.gql("{ __typename }", json!({}), None).await;
        codes.push((r.status, r.code().map(str::to_owned)));
    }
    // The sign-in above was the first anonymous request of this address.
    assert_eq!(codes.iter().filter(|c| c.0 == 200).count(), 4, "{codes:?}");
    let last = codes.last().unwrap();
    assert_eq!(last, &(429, Some("RATE_LIMITED".into())));
    let r = app.gql("{ __typename }", json!({}), Some("not-a-session-token")).await;
    assert_eq!(r.status, 429, "an invalid token is anonymous too");
    assert_eq!(app.me(&staff).await.ok()["me"]["user"]["username"], "staff", "signed-in requests spend their own budget");
    // The flood is on the platform's record once per address and minute, not once per
    // refused request.
    let rows = app
        .sql_values("SELECT outcome, ip, target_id FROM audit_entries WHERE action = 'api.throttled' AND workspace_id IS NULL", vec![])
        .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].try_get_by_index::<String>(0).unwrap(), "denied");
    assert_eq!(rows[0].try_get_by_index::<String>(2).unwrap(), "anonymous_ip");
}

#[tokio::test]
async fn a_session_over_its_request_limit_is_audited_once_a_minute() {
    let app = TestApp::spawn_with(&[("PALISADE_RATE_API_SESSION", "3/1h")]).await;
    let staff = app.login("demo", "staff").await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(app.me(&staff).await.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429, 429, 429]);
    let rows = app
        .sql_values(
            "SELECT actor_label FROM audit_entries WHERE action = 'api.throttled' AND target_id = 'api_session' AND workspace_id IS NOT NULL",
            vec![],
        )
        .await;
    assert_eq!(rows.len(), 1, "one entry for the five refusals");
    assert_eq!(rows[0].try_get_by_index::<String>(0).unwrap(), "staff");
}

#[tokio::test]
async fn refused_requests_of_a_live_session_are_audited_once_a_minute() {
    let app = TestApp::spawn_with(&[("PALISADE_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let owner = login_from(&app, "203.0.113.5", "owner", DEMO_PASSWORD).await.ok()["login"]["token"].as_str().unwrap().to_owned();
    let staff = login_from(&app, "203.0.113.6", "staff", DEMO_PASSWORD).await.ok()["login"]["token"].as_str().unwrap().to_owned();
    let sam = login_from(&app, "203.0.113.7", "sam", DEMO_PASSWORD).await.ok()["login"]["token"].as_str().unwrap().to_owned();
    let q = "mutation($i: SecuritySettingsInput!) { updateSecuritySettings(input: $i) { ipAllowlist } }";
    gql_from(&app, "203.0.113.5", q, json!({ "i": { "ipAllowlist": ["203.0.113.0/24"] } }), Some(&owner)).await.ok();
    for _ in 0..5 {
        let r = gql_from(&app, "198.51.100.1", "{ me { kind } }", json!({}), Some(&staff)).await;
        assert_eq!((r.status, r.code()), (403, Some("LOGIN_RESTRICTED")));
    }
    gql_from(&app, "198.51.100.2", "{ me { kind } }", json!({}), Some(&sam)).await;
    let rows = app
        .sql_values(
            "SELECT actor_label, outcome, ip, reason FROM audit_entries WHERE action = 'auth.request_restricted' ORDER BY seq",
            vec![],
        )
        .await;
    let got: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (r.try_get_by_index::<String>(0).unwrap(), r.try_get_by_index::<String>(1).unwrap(), r.try_get_by_index::<String>(2).unwrap())
        })
        .collect();
    assert_eq!(
        got,
        [("staff".into(), "denied".into(), "198.51.100.1".into()), ("sam".into(), "denied".into(), "198.51.100.2".into())],
        "one entry per session per minute"
    );
    // The owner can read them.
    let r = gql_from(
        &app,
        "203.0.113.5",
        "{ auditLog(first: 5, filter: { action: \"auth.request_restricted\" }) { edges { node { action actor { label } } } } }",
        json!({}),
        Some(&owner),
    )
    .await;
    assert_eq!(r.ok()["auditLog"]["edges"].as_array().unwrap().len(), 2, "{}", r.body);
}
