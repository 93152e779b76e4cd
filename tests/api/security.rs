//! Account security through the API: two-factor (TOTP, email codes, recovery codes),
//! step-up, security settings and per-user overrides (IP lockdown, login hours), rate
//! limits, suspicious sign-ins and the password policy. Time moves on the injected
//! clock; client addresses come through a trusted proxy's X-Forwarded-For.

use crate::helpers::{DEMO_PASSWORD, Reply, TestApp, base32_decode};
use chrono::{DateTime, Duration, Utc};
use palisade::clock::Clock;
use serde_json::{Value, json};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn code_at(secret: &[u8], t: DateTime<Utc>) -> String {
    palisade::auth::twofactor::totp_code_at(secret, t.timestamp() as u64)
}

const VERIFY: &str =
    "mutation($i: VerifyTwoFactorInput!) { verifyTwoFactor(input: $i) { token session { id } failedAttemptsSinceLastSignIn } }";

/// Answers a challenge from the test's browser (sending and keeping its device cookie).
async fn verify_for(app: &TestApp, challenge: &str, method: &str, code: &str) -> Reply {
    let mut req = app.client.post(format!("{}/graphql", app.url)).json(&json!({
        "query": VERIFY, "variables": { "i": { "challengeId": challenge, "method": method, "code": code } }
    }));
    if let Some(cookie) = app.device_cookie() {
        req = req.header("cookie", cookie);
    }
    let reply = app.raw(req).await;
    app.keep_device(&reply);
    reply
}

async fn verify(app: &TestApp, challenge: &str, method: &str, code: &str) -> Reply {
    app.gql(VERIFY, json!({ "i": { "challengeId": challenge, "method": method, "code": code } }), None).await
}

fn challenge_of(r: &Reply) -> (String, Vec<String>) {
    let c = &r.ok()["login"]["challenge"];
    assert!(r.ok()["login"]["token"].is_null(), "a challenge, not a session: {}", r.body);
    let methods = c["methods"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_owned()).collect();
    (c["id"].as_str().unwrap().to_owned(), methods)
}

/// Enrols TOTP for a signed-in user; returns the seed and the recovery codes.
async fn enrol_totp(app: &TestApp, token: &str) -> (Vec<u8>, Vec<String>) {
    let r = app
        .gql(
            "mutation($p: String!) { startTotpEnrollment(password: $p) { otpauthUri secret qrCodeSvg } }",
            json!({ "p": DEMO_PASSWORD }),
            Some(token),
        )
        .await;
    let e = &r.ok()["startTotpEnrollment"];
    let secret = base32_decode(e["secret"].as_str().unwrap());
    assert_eq!(secret.len(), 20, "a 160-bit seed");
    assert!(e["otpauthUri"].as_str().unwrap().starts_with("otpauth://totp/"));
    assert!(e["qrCodeSvg"].as_str().unwrap().starts_with("data:image/svg+xml"));
    let confirm = "mutation($c: String!) { confirmTotpEnrollment(code: $c) { codes } }";
    assert_eq!(app.gql(confirm, json!({ "c": "000000" }), Some(token)).await.code(), Some("BAD_USER_INPUT"));
    let r = app.gql(confirm, json!({ "c": code_at(&secret, app.clock.now()) }), Some(token)).await;
    let codes: Vec<String> =
        r.ok()["confirmTotpEnrollment"]["codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().into()).collect();
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

async fn settings(app: &TestApp, token: &str, input: Value) -> Reply {
    app.gql(
        "mutation($i: SecuritySettingsInput!) { updateSecuritySettings(input: $i) { twoFactor ipAllowlist maxSessions } }",
        json!({ "i": input }),
        Some(token),
    )
    .await
}

async fn user_id(app: &TestApp, username: &str) -> String {
    let rows = app
        .sql_values(
            "SELECT u.id FROM users u JOIN workspaces w ON w.id = u.workspace_id WHERE w.slug = 'demo' AND u.username = ?",
            vec![username.into()],
        )
        .await;
    rows[0].try_get_by_index::<uuid::Uuid>(0).unwrap().to_string()
}

async fn set_override(app: &TestApp, token: &str, user: &str, input: Value) -> Reply {
    let id = user_id(app, user).await;
    app.gql(
        "mutation($u: ID!, $i: SecurityOverrideInput!) { setSecurityOverride(userId: $u, input: $i) { username reason setBy active ageDays expiresAt } }",
        json!({ "u": id, "i": input }),
        Some(token),
    )
    .await
}

async fn gql_from(app: &TestApp, client: &str, query: &str, vars: Value, token: Option<&str>) -> Reply {
    app.gql_from(client, query, vars, token).await
}

async fn login_from(app: &TestApp, client: &str, login: &str) -> Reply {
    let q = "mutation($i: LoginInput!) { login(input: $i) { token challenge { id } } }";
    gql_from(app, client, q, json!({ "i": { "workspace": "demo", "login": login, "password": DEMO_PASSWORD } }), None).await
}

async fn actions(app: &TestApp, action: &str) -> Vec<(String, Option<String>)> {
    app.sql_values("SELECT outcome, reason FROM audit_entries WHERE action = ? ORDER BY occurred_at", vec![action.into()])
        .await
        .iter()
        .map(|r| (r.try_get_by_index::<String>(0).unwrap(), r.try_get_by_index::<Option<String>>(1).unwrap()))
        .collect()
}

#[tokio::test]
async fn totp_enrolment_window_edges_and_replay() {
    let app = TestApp::spawn().await;
    let token = app.login("demo", "staff").await;
    let (secret, _) = enrol_totp(&app, &token).await;
    let enrolled_at = app.clock.now();
    let status = app.gql("{ myTwoFactor { totpEnabled recoveryCodesLeft } }", json!({}), Some(&token)).await;
    assert_eq!(status.ok()["myTwoFactor"], json!({ "totpEnabled": true, "recoveryCodesLeft": 10 }));
    // The seed is never shown again, nor stored in the clear.
    let stored = app
        .sql_values(
            "SELECT totp_secret FROM users WHERE id = ?",
            vec![uuid::Uuid::parse_str(&user_id(&app, "staff").await).unwrap().into()],
        )
        .await;
    let sealed: String = stored[0].try_get_by_index(0).unwrap();
    assert!(!sealed.contains(&palisade::auth::twofactor::base32_secret(&secret)));

    // An enrolled user always gets a challenge, even from a known device.
    let (id, methods) = challenge_of(&app.try_login("demo", "staff", DEMO_PASSWORD).await);
    assert_eq!(methods, ["TOTP", "RECOVERY"]);
    // The code that confirmed enrolment is spent: its step cannot be used again.
    assert_eq!(verify(&app, &id, "TOTP", &code_at(&secret, enrolled_at)).await.code(), Some("BAD_USER_INPUT"));
    // The next step's code (clock skew forward) is refused; so is one two steps old.
    app.clock.advance(Duration::seconds(90));
    let now = app.clock.now();
    assert_eq!(verify(&app, &id, "TOTP", &code_at(&secret, now + Duration::seconds(30))).await.code(), Some("BAD_USER_INPUT"));
    assert_eq!(verify(&app, &id, "TOTP", &code_at(&secret, now - Duration::seconds(60))).await.code(), Some("BAD_USER_INPUT"));
    // The previous step is still accepted.
    let r = verify(&app, &id, "TOTP", &code_at(&secret, now - Duration::seconds(30))).await;
    assert!(r.ok()["verifyTwoFactor"]["token"].is_string());
    // And it is now spent, as is every earlier step: the current one still works.
    let (id, _) = challenge_of(&app.try_login("demo", "staff", DEMO_PASSWORD).await);
    assert_eq!(verify(&app, &id, "TOTP", &code_at(&secret, now - Duration::seconds(30))).await.code(), Some("BAD_USER_INPUT"));
    let r = verify(&app, &id, "TOTP", &code_at(&secret, now)).await;
    let t2 = r.ok()["verifyTwoFactor"]["token"].as_str().unwrap().to_owned();
    app.gql("{ me { kind } }", json!({}), Some(&t2)).await.ok();
    let s = app.gql("{ myTwoFactor { sessionTwoFactor } }", json!({}), Some(&t2)).await;
    assert_eq!(s.ok()["myTwoFactor"]["sessionTwoFactor"], true);
    // The challenge was single use.
    assert_eq!(verify(&app, &id, "TOTP", &code_at(&secret, now)).await.code(), Some("FORBIDDEN"));

    // Too many wrong codes end the challenge (after the account's 2FA bucket refilled).
    app.clock.advance(Duration::minutes(5));
    let (id, _) = challenge_of(&app.try_login("demo", "staff", DEMO_PASSWORD).await);
    for _ in 0..5 {
        assert_eq!(verify(&app, &id, "TOTP", "123456").await.code(), Some("BAD_USER_INPUT"));
    }
    assert_eq!(verify(&app, &id, "TOTP", "123456").await.code(), Some("RATE_LIMITED"), "per challenge");
    app.clock.advance(Duration::seconds(60));
    assert_eq!(verify(&app, &id, "TOTP", &code_at(&secret, app.clock.now())).await.code(), Some("FORBIDDEN"));

    // Removing TOTP needs the password.
    let t2 = app.login_with_code(&secret, "staff").await;
    let off = "mutation($p: String!) { disableTotp(password: $p) }";
    assert_eq!(app.gql(off, json!({ "p": "wrong-password-here" }), Some(&t2)).await.code(), Some("BAD_USER_INPUT"));
    assert_eq!(app.gql(off, json!({ "p": DEMO_PASSWORD }), Some(&t2)).await.ok()["disableTotp"], true);
    let audit =
        app.count("SELECT COUNT(*) FROM audit_entries WHERE action IN ('security.totp_enabled', 'security.totp_disabled')", vec![]).await;
    assert_eq!(audit, 2);
}

#[tokio::test]
async fn recovery_codes_work_once_and_regenerating_replaces_them() {
    let app = TestApp::spawn().await;
    let token = app.login("demo", "staff").await;
    let (_, codes) = enrol_totp(&app, &token).await;
    let (id, _) = challenge_of(&app.try_login("demo", "staff", DEMO_PASSWORD).await);
    // Case and dashes do not matter.
    let r = verify(&app, &id, "RECOVERY", &codes[0].to_uppercase().replace('-', " ")).await;
    let t2 = r.ok()["verifyTwoFactor"]["token"].as_str().unwrap().to_owned();
    let (id, _) = challenge_of(&app.try_login("demo", "staff", DEMO_PASSWORD).await);
    assert_eq!(verify(&app, &id, "RECOVERY", &codes[0]).await.code(), Some("BAD_USER_INPUT"), "single use");
    let r = app
        .gql("mutation($p: String!) { regenerateRecoveryCodes(password: $p) { codes } }", json!({ "p": DEMO_PASSWORD }), Some(&t2))
        .await;
    let fresh = r.ok()["regenerateRecoveryCodes"]["codes"][0].as_str().unwrap().to_owned();
    assert_eq!(verify(&app, &id, "RECOVERY", &codes[1]).await.code(), Some("BAD_USER_INPUT"), "old set invalid");
    assert!(verify(&app, &id, "RECOVERY", &fresh).await.ok()["verifyTwoFactor"]["token"].is_string());
    let hashes = app.count("SELECT COUNT(*) FROM recovery_codes WHERE code_hash = ?", vec![fresh.clone().into()]).await;
    assert_eq!(hashes, 0, "stored hashed");
}

#[tokio::test]
async fn email_codes_arrive_over_smtp_and_work_once() {
    let sink = crate::smtp::SmtpSink::start().await;
    let app = TestApp::spawn_with(&[("SMTP_URL", &sink.url())]).await;
    let owner = app.login("demo", "owner").await;
    assert_eq!(settings(&app, &owner, json!({ "twoFactor": "ALL" })).await.ok()["updateSecuritySettings"]["twoFactor"], "ALL");
    let (id, methods) = challenge_of(&app.try_login("demo", "staff", DEMO_PASSWORD).await);
    assert_eq!(methods, ["EMAIL"]);
    let mail = sink.wait_for(|m| m.to.contains("staff@demo.palisade.test") && m.subject.contains("sign-in code")).await;
    let code: String = mail.body.split_whitespace().find(|w| w.len() == 8 && w.chars().all(|c| c.is_ascii_digit())).unwrap().into();
    assert_eq!(verify(&app, &id, "EMAIL", "00000000").await.code(), Some("BAD_USER_INPUT"));
    assert_eq!(verify(&app, &id, "TOTP", &code).await.code(), Some("BAD_USER_INPUT"), "only offered methods");
    let r = verify(&app, &id, "EMAIL", &code).await;
    assert!(r.ok()["verifyTwoFactor"]["token"].is_string());
    assert_eq!(verify(&app, &id, "EMAIL", &code).await.code(), Some("FORBIDDEN"), "single use");
    // The code is bound to its own sign-in attempt, and expires.
    let (id2, _) = challenge_of(&app.try_login("demo", "staff", DEMO_PASSWORD).await);
    assert_eq!(verify(&app, &id2, "EMAIL", &code).await.code(), Some("BAD_USER_INPUT"));
    app.clock.advance(Duration::minutes(11));
    let newest = sink.messages().await.into_iter().rev().find(|m| m.subject.contains("sign-in code")).unwrap();
    let code2: String = newest.body.split_whitespace().find(|w| w.len() == 8 && w.chars().all(|c| c.is_ascii_digit())).unwrap().into();
    assert_eq!(verify(&app, &id2, "EMAIL", &code2).await.code(), Some("FORBIDDEN"), "expired");
    // Nothing secret in the log.
    let leaked =
        app.count("SELECT COUNT(*) FROM audit_entries WHERE CAST(changes AS TEXT) LIKE ?", vec![format!("%{code2}%").into()]).await;
    assert_eq!(leaked, 0);
}

#[tokio::test]
async fn two_factor_is_enforced_by_role_permission_and_by_override() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    for u in ["manager", "staff", "sam"] {
        app.login("demo", u).await;
    }
    let r = settings(&app, &owner, json!({ "twoFactor": "PERMISSIONS", "twoFactorPermissions": ["TEAM_WRITE"] })).await;
    assert_eq!(r.ok()["updateSecuritySettings"]["twoFactor"], "PERMISSIONS");
    // Managers hold team.write, staff do not.
    assert_eq!(challenge_of(&app.try_login("demo", "manager", DEMO_PASSWORD).await).1, ["EMAIL"]);
    assert!(app.try_login("demo", "staff", DEMO_PASSWORD).await.ok()["login"]["token"].is_string());
    // An override can require it of one person.
    let r = set_override(&app, &owner, "sam", json!({ "reason": "handles payroll exports", "twoFactorRequired": true })).await;
    assert_eq!(r.ok()["setSecurityOverride"]["reason"], "handles payroll exports");
    challenge_of(&app.try_login("demo", "sam", DEMO_PASSWORD).await);
    // Settings changes are audited with before and after.
    let rows = app.sql_values("SELECT changes FROM audit_entries WHERE action = 'security.settings_updated'", vec![]).await;
    let changes: Value = rows[0].try_get_by_index::<Option<Value>>(0).unwrap().unwrap();
    assert_eq!(changes["twoFactor"]["before"]["mode"], "off");
    assert_eq!(changes["twoFactor"]["after"]["mode"], "permissions");
}

#[tokio::test]
async fn only_an_owner_relaxes_two_factor_and_overrides_need_reasons() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let manager = app.login("demo", "manager").await;
    settings(&app, &owner, json!({ "twoFactor": "ALL" })).await.ok();
    // The workspace now requires 2FA; the owner's session predates it and still works.
    let r = set_override(&app, &owner, "staff", json!({ "reason": "x", "twoFactorRequired": false })).await;
    assert_eq!((r.code(), r.body["errors"][0]["extensions"]["field"].as_str()), (Some("BAD_USER_INPUT"), Some("reason")));
    // Managers lack settings.write entirely.
    assert_eq!(
        set_override(&app, &manager, "staff", json!({ "reason": "travelling", "twoFactorRequired": false })).await.code(),
        Some("FORBIDDEN")
    );
    // A security admin who is not an Owner cannot relax it.
    let role = app
        .gql(
            "mutation($i: RoleInput!) { createRole(input: $i) { id } }",
            json!({ "i": { "name": "Security admin", "rank": 60, "permissions": ["SETTINGS_READ", "SETTINGS_WRITE", "TEAM_READ"] } }),
            Some(&owner),
        )
        .await;
    let role = role.ok()["createRole"]["id"].as_str().unwrap().to_owned();
    let manager_id = user_id(&app, "manager").await;
    let r = app
        .gql(
            "mutation($i: AssignRoleInput!) { assignRole(input: $i) { id } }",
            json!({ "i": { "roleId": role, "userId": manager_id } }),
            Some(&owner),
        )
        .await;
    r.ok();
    let r = set_override(&app, &manager, "staff", json!({ "reason": "travelling this week", "twoFactorRequired": false })).await;
    assert_eq!(r.code(), Some("FORBIDDEN"));
    assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("Owner"));
    // But may require more of someone.
    set_override(&app, &manager, "staff", json!({ "reason": "handles refunds", "twoFactorRequired": true })).await.ok();
    let r = set_override(&app, &owner, "staff", json!({ "reason": "shared kiosk account for the warehouse", "twoFactorRequired": false }))
        .await;
    assert_eq!(r.ok()["setSecurityOverride"]["setBy"], "owner");
    assert!(app.try_login("demo", "staff", DEMO_PASSWORD).await.ok()["login"]["token"].is_string());
    // Nobody sets an override on themselves.
    assert_eq!(set_override(&app, &owner, "owner", json!({ "reason": "travelling abroad" })).await.code(), Some("FORBIDDEN"));
    // Listed for review, with its age.
    app.clock.advance(Duration::days(3));
    let owner = {
        // The long pause ended the owner's session; sign in again (with a challenge now).
        let (id, _) = challenge_of(&app.try_login("demo", "owner", DEMO_PASSWORD).await);
        let code = latest_code(&app, "owner@demo.palisade.test");
        verify(&app, &id, "EMAIL", &code).await.ok()["verifyTwoFactor"]["token"].as_str().unwrap().to_owned()
    };
    let r = app.gql("{ securityOverrides { username reason ageDays active setBy } }", json!({}), Some(&owner)).await;
    assert_eq!(
        r.ok()["securityOverrides"],
        json!([{ "username": "staff", "reason": "shared kiosk account for the warehouse", "ageDays": 3, "active": true, "setBy": "owner" }])
    );
    let clear = "mutation($u: ID!, $r: String!) { clearSecurityOverride(userId: $u, reason: $r) }";
    let id = user_id(&app, "staff").await;
    assert_eq!(app.gql(clear, json!({ "u": id, "r": "kiosk retired" }), Some(&owner)).await.ok()["clearSecurityOverride"], true);
    assert_eq!(actions(&app, "security.override_cleared").await, [("success".into(), Some("kiosk retired".into()))]);
}

fn latest_code(app: &TestApp, to: &str) -> String {
    let mail = app.mails().into_iter().rev().find(|m| m.to.contains(to) && m.subject.contains("sign-in code")).expect("a code mail");
    mail.body.split_whitespace().find(|w| w.len() == 8 && w.chars().all(|c| c.is_ascii_digit())).unwrap().into()
}

#[tokio::test]
async fn ip_lockdown_holds_for_v4_v6_mapped_addresses_and_every_request() {
    let app = TestApp::spawn_with(&[("PALISADE_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let owner = gql_from(
        &app,
        "203.0.113.5",
        "mutation($i: LoginInput!) { login(input: $i) { token } }",
        json!({ "i": { "workspace": "demo", "login": "owner", "password": DEMO_PASSWORD } }),
        None,
    )
    .await;
    let owner = owner.ok()["login"]["token"].as_str().unwrap().to_owned();
    let staff = login_from(&app, "203.0.113.7", "staff").await.ok()["login"]["token"].as_str().unwrap().to_owned();
    let q = "mutation($i: SecuritySettingsInput!) { updateSecuritySettings(input: $i) { ipAllowlist } }";
    // A rule that would lock out the admin making it is refused.
    let r = gql_from(&app, "198.51.100.1", q, json!({ "i": { "ipAllowlist": ["203.0.113.0/24"] } }), Some(&owner)).await;
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "ipAllowlist");
    let r = gql_from(&app, "203.0.113.5", q, json!({ "i": { "ipAllowlist": ["203.0.113.0/24", "2001:db8::/32"] } }), Some(&owner)).await;
    assert_eq!(r.ok()["updateSecuritySettings"]["ipAllowlist"], json!(["203.0.113.0/24", "2001:db8::/32"]));

    let me = "{ me { user { username } } }";
    for (client, allowed) in [
        ("203.0.113.9", true),
        ("::ffff:203.0.113.9", true),
        ("2001:db8::7", true),
        ("198.51.100.1", false),
        ("2001:db9::1", false),
        ("::ffff:198.51.100.1", false),
    ] {
        let r = gql_from(&app, client, me, json!({}), Some(&staff)).await;
        if allowed {
            assert_eq!(r.ok()["me"]["user"]["username"], "staff", "{client}");
        } else {
            assert_eq!((r.status, r.code()), (403, Some("LOGIN_RESTRICTED")), "{client}");
        }
    }
    // Sign-in answers the same code, without saying which rule.
    let r = login_from(&app, "198.51.100.1", "staff").await;
    assert_eq!(r.code(), Some("LOGIN_RESTRICTED"));
    assert!(!r.body.to_string().contains("network"));
    assert_eq!(actions(&app, "auth.sign_in_restricted").await.len(), 1);
    assert!(login_from(&app, "2001:db8::99", "staff").await.ok()["login"]["challenge"].is_object(), "new network: step-up");
}

#[tokio::test]
async fn forwarded_addresses_are_ignored_unless_the_peer_is_a_trusted_proxy() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    // Without a trusted proxy the real peer (127.0.0.1) counts, whatever the header says.
    let q = "mutation($i: SecuritySettingsInput!) { updateSecuritySettings(input: $i) { ipAllowlist } }";
    let r = gql_from(&app, "203.0.113.5", q, json!({ "i": { "ipAllowlist": ["203.0.113.0/24"] } }), Some(&owner)).await;
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "ipAllowlist", "the spoofed header did not help: {}", r.body);
    settings(&app, &owner, json!({ "ipAllowlist": ["127.0.0.0/8"] })).await.ok();
    let staff = app.login("demo", "staff").await;
    let r = gql_from(&app, "10.9.9.9", "{ me { kind } }", json!({}), Some(&staff)).await;
    assert_eq!(r.ok()["me"]["kind"], "USER");
}

#[tokio::test]
async fn login_hours_cross_midnight_and_daylight_saving_in_the_users_own_timezone() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let staff = app.login("demo", "staff").await;
    // The workspace works office hours in Oslo (now: Wednesday 10:00 there).
    let hours = json!({ "days": ["MON", "TUE", "WED", "THU", "FRI"], "start": "08:00", "end": "17:00", "timezone": "Europe/Oslo" });
    settings(&app, &owner, json!({ "loginHours": hours })).await.ok();
    // The night-shift worker in New York: Saturday 22:00 to Sunday 06:00 local. US
    // daylight saving starts on Sunday 2026-03-08 at 02:00, inside that window.
    let night = json!({ "days": ["SAT"], "start": "22:00", "end": "06:00", "timezone": "America/New_York" });
    let r = set_override(&app, &owner, "staff", json!({ "reason": "night shift in the New York office", "loginHours": night })).await;
    r.ok();
    assert_eq!(app.me(&staff).await.code(), Some("LOGIN_RESTRICTED"), "Wednesday 04:00 in New York");
    app.clock.set(at("2026-03-04T12:00:00Z"));
    assert_eq!(app.try_login("demo", "staff", DEMO_PASSWORD).await.code(), Some("LOGIN_RESTRICTED"), "Wednesday 07:00 in New York");
    // The rest of the workspace still follows Oslo: sam at Sunday 03:00 Oslo is refused.
    app.clock.set(at("2026-03-08T02:00:00Z"));
    assert_eq!(app.try_login("demo", "sam", DEMO_PASSWORD).await.code(), Some("LOGIN_RESTRICTED"));
    // The clock only moves forward from here (rate-limit buckets, like real clocks, do
    // not expect time to run backwards).
    for (when, allowed) in [
        ("2026-03-08T02:59:00Z", false), // Sat 21:59 EST
        ("2026-03-08T03:00:00Z", true),  // Sat 22:00 EST
        ("2026-03-08T05:30:00Z", true),  // Sun 00:30 EST, past midnight
        ("2026-03-08T09:59:00Z", true),  // Sun 05:59 EDT (after the clocks went forward)
        ("2026-03-08T10:00:00Z", false), // Sun 06:00 EDT; without DST this would still be 05:00
        ("2026-03-13T03:30:00Z", false), // Thu 23:30 EDT: Thursday is not a start day
        ("2026-03-14T03:30:00Z", false), // Fri 23:30 EDT
        ("2026-03-15T03:30:00Z", true),  // Sat 23:30 EDT
    ] {
        app.clock.set(at(when));
        let r = app.try_login("demo", "staff", DEMO_PASSWORD).await;
        if allowed {
            assert!(r.ok()["login"]["token"].is_string(), "{when}: {}", r.body);
        } else {
            assert_eq!(r.code(), Some("LOGIN_RESTRICTED"), "{when}");
        }
    }
}

#[tokio::test]
async fn an_override_stops_applying_when_it_expires() {
    let app = TestApp::spawn_with(&[("PALISADE_TRUSTED_PROXIES", "127.0.0.1/32"), ("PALISADE_SESSION_IDLE_SECS", "7200")]).await;
    let owner = login_from(&app, "10.1.1.1", "owner").await.ok()["login"]["token"].as_str().unwrap().to_owned();
    let sam = app.login("demo", "sam").await;
    let q = "mutation($i: SecuritySettingsInput!) { updateSecuritySettings(input: $i) { ipAllowlist } }";
    gql_from(&app, "10.1.1.1", q, json!({ "i": { "ipAllowlist": ["10.0.0.0/8"] } }), Some(&owner)).await.ok();
    assert_eq!(app.me(&sam).await.code(), Some("LOGIN_RESTRICTED"));
    let id = user_id(&app, "sam").await;
    let until = (app.clock.now() + Duration::hours(1)).to_rfc3339();
    let set = "mutation($u: ID!, $i: SecurityOverrideInput!) { setSecurityOverride(userId: $u, input: $i) { expiresAt active } }";
    let r = gql_from(
        &app,
        "10.1.1.1",
        set,
        json!({ "u": id, "i": { "reason": "on the road this week", "ipLockdownEnabled": false, "expiresAt": until } }),
        Some(&owner),
    )
    .await;
    assert_eq!(r.ok()["setSecurityOverride"]["active"], true);
    assert_eq!(app.me(&sam).await.ok()["me"]["user"]["username"], "sam");
    app.clock.advance(Duration::minutes(61));
    assert_eq!(app.me(&sam).await.code(), Some("LOGIN_RESTRICTED"));
    let r = gql_from(&app, "10.1.1.1", "{ securityOverrides { username active } }", json!({}), Some(&owner)).await;
    assert_eq!(r.code(), None, "{}", r.body);
}

#[tokio::test]
async fn sign_in_is_throttled_per_account_and_per_address_with_retry_after() {
    let app = TestApp::spawn_with(&[("PALISADE_RATE_SIGNIN_ACCOUNT", "10/40s"), ("PALISADE_RATE_SIGNIN_IP", "30/2s")]).await;
    for i in 0..10 {
        assert_eq!(app.try_login("demo", "staff", "wrong-password-xyz").await.code(), Some("UNAUTHENTICATED"), "attempt {i}");
    }
    let r = app.try_login("demo", "staff", DEMO_PASSWORD).await;
    assert_eq!((r.status, r.code()), (429, Some("RATE_LIMITED")));
    assert_eq!(r.body["errors"][0]["extensions"]["retryAfter"], 40);
    assert_eq!(r.headers["retry-after"], "40");
    // An unknown account is throttled exactly the same way.
    for _ in 0..10 {
        app.try_login("demo", "nobody-here", "wrong-password-xyz").await;
    }
    assert_eq!(app.try_login("demo", "nobody-here", "wrong-password-xyz").await.code(), Some("RATE_LIMITED"));
    // Others are not locked out, and the victim waits, but is not locked out forever.
    assert!(app.try_login("demo", "sam", DEMO_PASSWORD).await.ok()["login"]["token"].is_string());
    app.clock.advance(Duration::seconds(40));
    let r = app.try_login("demo", "staff", DEMO_PASSWORD).await;
    assert!(r.ok()["login"]["challenge"].is_object(), "a burst of failures asks for a second factor: {}", r.body);
    assert_eq!(app.try_login("demo", "staff", DEMO_PASSWORD).await.code(), Some("RATE_LIMITED"), "one per interval");
    assert!(!actions(&app, "auth.throttled").await.is_empty());

    // Per address: the 31st attempt within the burst is refused whatever the account.
    app.clock.advance(Duration::hours(1));
    let mut refused = 0;
    for i in 0..31 {
        if app.try_login("demo", &format!("user{i}"), "wrong-password-xyz").await.code() == Some("RATE_LIMITED") {
            refused += 1;
        }
    }
    assert_eq!(refused, 1);
}

#[tokio::test]
async fn limits_are_shared_between_instances() {
    // Both instances run the default per-account limit (10, then one per 40 s).
    let a = TestApp::spawn().await;
    let b = a.another_instance().await;
    for _ in 0..10 {
        a.try_login("demo", "staff", "wrong-password-xyz").await;
    }
    assert_eq!(b.try_login("demo", "staff", DEMO_PASSWORD).await.code(), Some("RATE_LIMITED"));
}

#[tokio::test]
async fn a_new_device_or_a_burst_of_failures_needs_an_email_code_and_is_reported() {
    let app = TestApp::spawn().await;
    app.login("demo", "staff").await;
    assert!(app.mails().is_empty(), "the first sign-in sets the baseline");
    // A browser without the device cookie.
    app.forget_device();
    let (id, methods) = challenge_of(&app.try_login("demo", "staff", DEMO_PASSWORD).await);
    assert_eq!(methods, ["EMAIL"]);
    let code = latest_code(&app, "staff@demo.palisade.test");
    verify_for(&app, &id, "EMAIL", &code).await.ok();
    let notice = app.mails().into_iter().find(|m| m.subject.contains("New sign-in")).expect("a new sign-in notice");
    assert!(notice.to.contains("staff@demo.palisade.test") && notice.body.contains("127.0.0.1"), "{}", notice.body);
    // That device is known now.
    assert!(app.try_login("demo", "staff", DEMO_PASSWORD).await.ok()["login"]["token"].is_string());

    // Five failures, then the right password: a second factor, and the count reported.
    for _ in 0..5 {
        app.try_login("demo", "staff", "wrong-password-xyz").await;
    }
    let (id, _) = challenge_of(&app.try_login("demo", "staff", DEMO_PASSWORD).await);
    let r = verify(&app, &id, "EMAIL", &latest_code(&app, "staff@demo.palisade.test")).await;
    assert_eq!(r.ok()["verifyTwoFactor"]["failedAttemptsSinceLastSignIn"], 5);
    let reasons =
        app.sql_values("SELECT changes FROM audit_entries WHERE action = 'auth.challenge_issued' ORDER BY occurred_at", vec![]).await;
    let all: Vec<String> = reasons.iter().map(|r| r.try_get_by_index::<Option<Value>>(0).unwrap().unwrap().to_string()).collect();
    assert!(all[0].contains("new_device") && all[1].contains("failed_attempts"), "{all:?}");
    // And the next clean sign-in reports nothing.
    let r = app.try_login("demo", "staff", DEMO_PASSWORD).await;
    assert_eq!(r.ok()["login"]["failedAttemptsSinceLastSignIn"], 0);
}

#[tokio::test]
async fn sensitive_operations_need_a_recent_step_up() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let create = "mutation { createRole(input: { name: \"Auditor\", rank: 20, permissions: [AUDIT_READ] }) { id } }";
    app.clock.advance(Duration::minutes(11));
    let r = app.gql(create, json!({}), Some(&owner)).await;
    assert_eq!(r.code(), Some("STEP_UP_REQUIRED"));
    assert_eq!(actions(&app, "api.mutation").await.last().unwrap().0, "denied");
    let reauth = "mutation($p: String) { reauthenticate(password: $p) { stepUpValidUntil } }";
    assert_eq!(app.gql(reauth, json!({ "p": "not-my-password" }), Some(&owner)).await.code(), Some("BAD_USER_INPUT"));
    let r = app.gql(reauth, json!({ "p": DEMO_PASSWORD }), Some(&owner)).await;
    assert!(r.ok()["reauthenticate"]["stepUpValidUntil"].is_string());
    assert!(app.gql(create, json!({}), Some(&owner)).await.ok()["createRole"]["id"].is_string());
    assert_eq!(actions(&app, "auth.step_up").await, [("failed".into(), None), ("success".into(), None)]);
    // Reading needs no step-up.
    app.clock.advance(Duration::minutes(11));
    assert_eq!(app.gql("{ securitySettings { twoFactor } }", json!({}), Some(&owner)).await.ok()["securitySettings"]["twoFactor"], "OFF");
    assert_eq!(settings(&app, &owner, json!({})).await.code(), Some("STEP_UP_REQUIRED"));
}

#[tokio::test]
async fn concurrent_sessions_are_capped() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    settings(&app, &owner, json!({ "maxSessions": 2 })).await.ok();
    let first = app.login("demo", "staff").await;
    let _second = app.login("demo", "staff").await;
    let _third = app.login("demo", "staff").await;
    assert_eq!(app.me(&first).await.code(), Some("UNAUTHENTICATED"), "the oldest session made room");
    settings(&app, &owner, json!({ "maxSessions": 2, "onSessionLimit": "REFUSE_NEW" })).await.ok();
    assert_eq!(app.try_login("demo", "staff", DEMO_PASSWORD).await.code(), Some("CONFLICT"));
}

#[tokio::test]
async fn workspace_session_timeouts_apply_to_existing_sessions() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let staff = app.login("demo", "staff").await;
    settings(&app, &owner, json!({ "sessionIdleMinutes": 10, "sessionAbsoluteMinutes": 60 })).await.ok();
    app.clock.advance(Duration::minutes(9));
    assert!(app.me(&staff).await.code().is_none());
    app.clock.advance(Duration::minutes(11));
    assert_eq!(app.me(&staff).await.code(), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn weak_passwords_are_refused_and_a_change_can_keep_other_sessions() {
    let app = TestApp::spawn().await;
    let t1 = app.login("demo", "staff").await;
    let t2 = app.login("demo", "staff").await;
    let q =
        "mutation($c: String!, $n: String!, $k: Boolean) { changePassword(currentPassword: $c, newPassword: $n, keepOtherSessions: $k) }";
    for weak in ["password1234", "staff-is-my-name-2026", "Demo Trading Ltd rocks", "aaaaaaaaaaaaaaaa"] {
        let r = app.gql(q, json!({ "c": DEMO_PASSWORD, "n": weak }), Some(&t1)).await;
        assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{weak}");
        assert!(!r.body.to_string().contains(weak), "the password is not echoed");
    }
    let r = app.gql(q, json!({ "c": DEMO_PASSWORD, "n": "violet-harbour-lantern-93", "k": true }), Some(&t1)).await;
    assert_eq!(r.ok()["changePassword"], true);
    assert!(app.me(&t2).await.code().is_none(), "kept");
    let r = app.gql(q, json!({ "c": "violet-harbour-lantern-93", "n": "copper-meadow-whistle-71" }), Some(&t1)).await;
    assert_eq!(r.ok()["changePassword"], true);
    assert_eq!(app.me(&t2).await.code(), Some("UNAUTHENTICATED"), "ended by default");
}
