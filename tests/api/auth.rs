use crate::helpers::{DEMO_PASSWORD, TestApp};
use serde_json::json;

#[tokio::test]
async fn every_demo_user_signs_in_and_out() {
    let app = TestApp::spawn().await;
    for (user, role) in [("owner", "OWNER"), ("manager", "MANAGER"), ("staff", "STAFF"), ("sam", "STAFF"), ("guest", "GUEST")] {
        let token = app.login("demo", user).await;
        let me = app.me(&token).await;
        assert_eq!(me.ok()["me"]["user"]["username"], user);
        assert_eq!(me.ok()["me"]["user"]["role"], role);
        assert_eq!(me.ok()["me"]["workspace"]["slug"], "demo");
        let out = app.gql("mutation { logout }", json!({}), Some(&token)).await;
        assert_eq!(out.ok()["logout"], true);
        assert_eq!(app.me(&token).await.code(), Some("UNAUTHENTICATED"));
    }
    let acme = app.login("acme", "owner").await;
    assert_eq!(app.me(&acme).await.ok()["me"]["workspace"]["slug"], "acme");
}

#[tokio::test]
async fn sign_in_accepts_email_and_folded_usernames() {
    let app = TestApp::spawn().await;
    for login in ["manager@demo.palisade.test", "MANAGER@Demo.Palisade.Test", "Manager", "ＭＡＮＡＧＥＲ", "  manager  "] {
        let r = app.try_login("demo", login, DEMO_PASSWORD).await;
        assert!(r.ok()["login"]["token"].as_str().unwrap().starts_with("pal_"), "{login}");
    }
}

#[tokio::test]
async fn every_failed_sign_in_gives_one_identical_answer() {
    let app = TestApp::spawn().await;
    // Accounts that exist but may not sign in.
    app.sql("UPDATE users SET licensed = false WHERE username_key = 'sam'").await;
    let ws = app.sql_values("SELECT id FROM workspaces WHERE slug = 'acme'", vec![]).await;
    let acme_id: uuid::Uuid = ws[0].try_get_by_index(0).unwrap();
    app.sql_values("UPDATE workspaces SET status = 'suspended' WHERE id = ?", vec![acme_id.into()]).await;
    let ended = app.clock_now() - chrono::Duration::days(1);
    app.sql_values("UPDATE users SET licence_ends_at = ? WHERE username_key = 'guest'", vec![ended.into()]).await;

    let cases = [
        ("wrong password", "demo", "owner", "not-the-password-at-all"),
        ("unknown user", "demo", "nobody", DEMO_PASSWORD),
        ("unknown workspace", "nowhere", "owner", DEMO_PASSWORD),
        ("inactive user", "demo", "former", DEMO_PASSWORD),
        ("unlicensed user", "demo", "sam", DEMO_PASSWORD),
        ("licence ended", "demo", "guest", DEMO_PASSWORD),
        ("suspended workspace, wrong password", "acme", "owner", "not-the-password-at-all"),
        ("over-long password", "demo", "owner", &"x".repeat(300)),
    ];
    let mut answers = Vec::new();
    for (why, ws, login, pw) in cases {
        let r = app.try_login(ws, login, pw).await;
        assert_eq!(r.status, 200, "{why}");
        assert_eq!(r.code(), Some("UNAUTHENTICATED"), "{why}: {}", r.body);
        assert!(r.headers.get("set-cookie").is_none(), "{why}");
        answers.push((why, r.body.to_string()));
    }
    // Only whoever proves the password learns that the workspace is suspended.
    let r = app.try_login("acme", "owner", DEMO_PASSWORD).await;
    assert_eq!(r.code(), Some("WORKSPACE_SUSPENDED"), "{}", r.body);
    assert!(r.headers.get("set-cookie").is_none());
    for (why, body) in &answers {
        assert_eq!(body, &answers[0].1, "{why} answers differently from {}", answers[0].0);
    }
    // Each failure is in the log as a denied sign-in, with no session created.
    let denied = app.count("SELECT COUNT(*) FROM audit_entries WHERE action = 'auth.sign_in' AND outcome = 'denied'", vec![]).await;
    assert_eq!(denied, cases.len() as i64);
    let ok = app.count("SELECT COUNT(*) FROM audit_entries WHERE action = 'auth.sign_in' AND outcome = 'success'", vec![]).await;
    assert_eq!(ok, 0);
}

#[tokio::test]
async fn stored_hashes_are_argon2id_with_the_documented_parameters() {
    let app = TestApp::spawn().await;
    let rows = app.sql_values("SELECT password_hash FROM users", vec![]).await;
    assert!(rows.len() >= 6);
    let mut seen = std::collections::HashSet::new();
    for row in rows {
        let hash: String = row.try_get_by_index(0).unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(seen.insert(hash), "two users share a salt");
    }
}

#[tokio::test]
async fn change_password_checks_both_passwords_and_ends_other_sessions() {
    let app = TestApp::spawn().await;
    let a = app.login("demo", "staff").await;
    let b = app.login("demo", "staff").await;
    let change = |cur: &str, new: &str| json!({ "c": cur, "n": new });
    let q = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";

    let r = app.gql(q, change("wrong-current-password", "a brand new passphrase"), Some(&a)).await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"));
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "currentPassword");

    for (bad, why) in [("short", "too short"), ("aaaaaaaaaaaaaaaa", "one repeated character"), (DEMO_PASSWORD, "unchanged")] {
        let r = app.gql(q, change(DEMO_PASSWORD, bad), Some(&a)).await;
        assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{why}");
        assert_eq!(r.body["errors"][0]["extensions"]["field"], "newPassword", "{why}");
    }
    let too_long = "ab".repeat(129);
    assert_eq!(app.gql(q, change(DEMO_PASSWORD, &too_long), Some(&a)).await.code(), Some("BAD_USER_INPUT"));
    // Unicode is counted by code point: twelve CJK characters are enough.
    let cjk = "春眠不觉晓夜来风雨声花落";
    assert_eq!(app.gql(q, change(DEMO_PASSWORD, cjk), Some(&a)).await.ok()["changePassword"], true);

    assert_eq!(app.me(&a).await.ok()["me"]["user"]["username"], "staff");
    assert_eq!(app.me(&b).await.code(), Some("UNAUTHENTICATED"), "the other session must end");
    assert_eq!(app.try_login("demo", "staff", DEMO_PASSWORD).await.code(), Some("UNAUTHENTICATED"));
    let r = app.try_login("demo", "staff", cjk).await;
    assert!(r.ok()["login"]["token"].is_string());

    // The log records the change but never the passwords.
    let rows = app.sql_values("SELECT changes FROM audit_entries WHERE action = 'auth.password_changed'", vec![]).await;
    assert_eq!(rows.len(), 1);
    let dump = rows[0].try_get_by_index::<Option<serde_json::Value>>(0).unwrap().unwrap().to_string();
    assert!(dump.contains("[redacted]") && !dump.contains(cjk) && !dump.contains(DEMO_PASSWORD), "{dump}");
}

#[tokio::test]
async fn master_admins_sign_in_separately_and_create_workspaces() {
    let app = TestApp::spawn().await;
    palisade::service::bootstrap::create_master_admin(&app.state, "support@palisade.test", "cobalt-anchor-meadow-19").await.unwrap();
    // A workspace user's credentials are not a master admin's, and vice versa.
    let q = "mutation($i: MasterLoginInput!) { masterLogin(input: $i) { token } }";
    let r = app.gql(q, json!({ "i": { "email": "owner@demo.palisade.test", "password": DEMO_PASSWORD } }), None).await;
    assert_eq!(r.code(), Some("UNAUTHENTICATED"));
    assert_eq!(app.try_login("demo", "support@palisade.test", "cobalt-anchor-meadow-19").await.code(), Some("UNAUTHENTICATED"));

    let master = app.master_sign_in("Support@Palisade.test", "cobalt-anchor-meadow-19").await;
    assert_eq!(app.me(&master).await.ok()["me"]["kind"], "MASTER_ADMIN");

    let create = "mutation($i: CreateWorkspaceInput!) { createWorkspace(input: $i) { workspace { slug status } owner { username role } } }";
    let input = json!({ "i": { "slug": "northwind", "name": "Northwind", "owner": { "username": "nora", "email": "nora@northwind.test", "password": "saffron-tundra-violin-46" } } });
    let r = app.gql(create, input.clone(), Some(&master)).await;
    assert_eq!(r.ok()["createWorkspace"]["workspace"]["status"], "ACTIVE");
    assert_eq!(r.ok()["createWorkspace"]["owner"]["role"], "OWNER");
    let nora = app.try_login("northwind", "nora", "saffron-tundra-violin-46").await;
    assert!(nora.ok()["login"]["token"].is_string());

    // The same slug again is a conflict; bad input names its field.
    assert_eq!(app.gql(create, input, Some(&master)).await.code(), Some("CONFLICT"));
    let bad = json!({ "i": { "slug": "Bad Slug", "name": "x", "owner": { "username": "u1", "email": "u@x.test", "password": "granite-pelican-dusk-31" } } });
    let r = app.gql(create, bad, Some(&master)).await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"));
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "slug");

    // Workspace users cannot create workspaces.
    let owner = app.login("demo", "owner").await;
    let other = json!({ "i": { "slug": "other", "name": "Other", "owner": { "username": "o1", "email": "o@x.test", "password": "granite-pelican-dusk-31" } } });
    assert_eq!(app.gql(create, other, Some(&owner)).await.code(), Some("FORBIDDEN"));
    assert_eq!(app.count("SELECT COUNT(*) FROM workspaces WHERE slug = 'other'", vec![]).await, 0);
}

impl TestApp {
    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use palisade::clock::Clock;
        self.clock.now()
    }
}

/// Concurrent mutations must not fail on the embedded SQLite database (which refuses a
/// second writer instead of queueing it) nor on PostgreSQL.
#[tokio::test]
async fn concurrent_sign_ins_all_succeed() {
    let app = TestApp::spawn().await;
    // Each has signed in from this browser before, so none of these is a new device.
    for user in ["owner", "manager", "staff", "sam", "guest"] {
        app.login("demo", user).await;
    }
    let cookie = app.device_cookie().unwrap();
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let (client, url, cookie) = (app.client.clone(), format!("{}/graphql", app.url), cookie.clone());
            let user = ["owner", "manager", "staff", "sam", "guest"][i % 5];
            tokio::spawn(async move {
                let body = json!({ "query": "mutation($u: String!, $p: String!) { login(input: { workspace: \"demo\", login: $u, password: $p }) { token } }", "variables": { "u": user, "p": DEMO_PASSWORD } });
                let r: serde_json::Value = client.post(url).header("cookie", cookie).json(&body).send().await.unwrap().json().await.unwrap();
                r
            })
        })
        .collect();
    for t in tasks {
        let r = t.await.unwrap();
        assert!(r["data"]["login"]["token"].is_string(), "{r}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_entries WHERE action = 'auth.sign_in' AND outcome = 'success'", vec![]).await, 29);
}
