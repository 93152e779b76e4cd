use crate::helpers::TestApp;
use serde_json::json;

const SESSIONS: &str = "{ mySessions { id current userAgent ip createdAt lastSeenAt } }";

#[tokio::test]
async fn a_revoked_session_is_refused_at_once() {
    let app = TestApp::spawn().await;
    let a = app.login("demo", "manager").await;
    let b = app.login("demo", "manager").await;
    let list = app.gql(SESSIONS, json!({}), Some(&a)).await;
    let sessions = list.ok()["mySessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert_eq!(sessions[0]["userAgent"], "palisade-tests/1");
    assert_eq!(sessions[0]["ip"], "127.0.0.1");
    let b_id = sessions.iter().find(|s| s["current"] == false).unwrap()["id"].clone();

    let r = app.gql("mutation($id: ID!) { revokeSession(id: $id) }", json!({ "id": b_id }), Some(&a)).await;
    assert_eq!(r.ok()["revokeSession"], true);
    assert_eq!(app.me(&b).await.code(), Some("UNAUTHENTICATED"));
    assert_eq!(app.me(&a).await.ok()["me"]["user"]["username"], "manager");

    // Someone else's session id is answered like a missing one.
    let other = app.login("demo", "staff").await;
    let theirs = app.gql(SESSIONS, json!({}), Some(&other)).await.ok()["mySessions"][0]["id"].clone();
    let r = app.gql("mutation($id: ID!) { revokeSession(id: $id) }", json!({ "id": theirs }), Some(&a)).await;
    assert_eq!(r.code(), Some("NOT_FOUND"));
    assert!(app.me(&other).await.ok()["me"].is_object());
    let r = app.gql("mutation { revokeSession(id: \"not-a-uuid\") }", json!({}), Some(&a)).await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"));
}

#[tokio::test]
async fn revoke_other_sessions_keeps_only_the_current_one() {
    let app = TestApp::spawn().await;
    let keep = app.login("demo", "owner").await;
    let others = [app.login("demo", "owner").await, app.login("demo", "owner").await];
    let r = app.gql("mutation { revokeOtherSessions }", json!({}), Some(&keep)).await;
    assert_eq!(r.ok()["revokeOtherSessions"], 2);
    for t in &others {
        assert_eq!(app.me(t).await.code(), Some("UNAUTHENTICATED"));
    }
    assert_eq!(app.gql(SESSIONS, json!({}), Some(&keep)).await.ok()["mySessions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn sessions_expire_when_idle_and_at_their_absolute_limit() {
    let app = TestApp::spawn_with(&[("PALISADE_SESSION_IDLE_SECS", "600"), ("PALISADE_SESSION_ABSOLUTE_SECS", "3600")]).await;
    let idle = app.login("demo", "staff").await;
    app.clock.advance(chrono::Duration::seconds(599));
    assert!(app.me(&idle).await.ok()["me"].is_object(), "still inside the idle window");
    app.clock.advance(chrono::Duration::seconds(599));
    assert!(app.me(&idle).await.ok()["me"].is_object(), "use renews the idle window");
    app.clock.advance(chrono::Duration::seconds(601));
    assert_eq!(app.me(&idle).await.code(), Some("UNAUTHENTICATED"), "idle too long");

    let busy = app.login("demo", "staff").await;
    for _ in 0..6 {
        app.clock.advance(chrono::Duration::seconds(500));
        assert!(app.me(&busy).await.ok()["me"].is_object());
    }
    app.clock.advance(chrono::Duration::seconds(601));
    assert_eq!(app.me(&busy).await.code(), Some("UNAUTHENTICATED"), "past the absolute limit despite activity");
}

#[tokio::test]
async fn the_session_cookie_is_hardened_and_works_as_a_credential() {
    let app = TestApp::spawn().await;
    let r = app.try_login("demo", "guest", crate::helpers::DEMO_PASSWORD).await;
    let cookie = r.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-palisade_session=pal_"), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(!cookie.contains("Domain"), "__Host- cookies must not name a domain");
    let pair = cookie.split(';').next().unwrap().to_owned();
    let me = app
        .raw(
            app.client
                .post(format!("{}/graphql", app.url))
                .header("cookie", &pair)
                .json(&json!({ "query": "{ me { user { username } } }" })),
        )
        .await;
    assert_eq!(me.ok()["me"]["user"]["username"], "guest");

    let out = app
        .raw(app.client.post(format!("{}/graphql", app.url)).header("cookie", &pair).json(&json!({ "query": "mutation { logout }" })))
        .await;
    assert!(out.headers["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    // A dead cookie is answered as anonymous and cleared.
    let again =
        app.raw(app.client.post(format!("{}/graphql", app.url)).header("cookie", &pair).json(&json!({ "query": "{ me { kind } }" }))).await;
    assert_eq!(again.code(), Some("UNAUTHENTICATED"));
    assert!(again.headers["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
}

#[tokio::test]
async fn plain_http_mode_drops_secure_and_the_host_prefix() {
    let app = TestApp::spawn_with(&[("PALISADE_COOKIE_SECURE", "false")]).await;
    let r = app.try_login("demo", "guest", crate::helpers::DEMO_PASSWORD).await;
    let cookie = r.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("palisade_session=pal_") && !cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn forged_and_malformed_tokens_are_anonymous() {
    let app = TestApp::spawn().await;
    let real = app.login("demo", "owner").await;
    let mut forged = real.clone();
    forged.pop();
    forged.push(if real.ends_with('A') { 'B' } else { 'A' });
    for t in [forged.as_str(), "pal_", "garbage", &"x".repeat(5000), "pal_😀"] {
        assert_eq!(app.me(t).await.code(), Some("UNAUTHENTICATED"), "{t}");
    }
    // The store never holds the token itself, only its hash.
    assert!(app.backend.store().get(&format!("session:{real}")).await.unwrap().is_none());
}

#[tokio::test]
async fn a_session_of_one_workspace_sees_nothing_of_another() {
    let app = TestApp::spawn().await;
    let acme = app.login("acme", "owner").await;
    let acme_entries = app.gql("{ auditLog(first: 100) { edges { node { id } } } }", json!({}), Some(&acme)).await;
    let acme_ids: Vec<String> =
        acme_entries.ok()["auditLog"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["id"].as_str().unwrap().to_owned()).collect();
    assert!(!acme_ids.is_empty());

    let demo = app.login("demo", "owner").await;
    let demo_entries = app.gql("{ auditLog(first: 100) { edges { node { id } } } }", json!({}), Some(&demo)).await;
    let demo_ids: Vec<String> =
        demo_entries.ok()["auditLog"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["id"].as_str().unwrap().to_owned()).collect();
    assert!(!demo_ids.is_empty());
    assert!(demo_ids.iter().all(|id| !acme_ids.contains(id)), "demo sees an acme entry");
    // Asking by an acme record id from demo finds nothing (while acme finds it).
    let acme_ws = app.gql("{ me { workspace { id } } }", json!({}), Some(&acme)).await.ok()["me"]["workspace"]["id"].clone();
    let by_target = "query($t: String) { auditLog(filter: { targetId: $t }) { edges { node { id action } } } }";
    let r = app.gql(by_target, json!({ "t": acme_ws }), Some(&acme)).await;
    assert_eq!(r.ok()["auditLog"]["edges"][0]["node"]["action"], "workspace.created");
    let r = app.gql(by_target, json!({ "t": acme_ws }), Some(&demo)).await;
    assert_eq!(r.ok()["auditLog"]["edges"].as_array().unwrap().len(), 0);
    // And demo's credentials do not open acme.
    assert_eq!(app.try_login("acme", "manager", crate::helpers::DEMO_PASSWORD).await.code(), Some("UNAUTHENTICATED"));
}

/// With the session store down nobody gets in and nobody is waved through as
/// anonymous-but-fine: requests that carry a session get 503, sign-in fails, and
/// readiness says which dependency is missing.
#[tokio::test]
async fn an_unreachable_store_fails_closed() {
    // Nothing listens on port 1 of the loopback interface.
    let down = palisade::store::RedisStore::connect("redis://127.0.0.1:1", "palisade_test:down:").unwrap();
    let app = TestApp::spawn_with_store(std::sync::Arc::new(down)).await;
    let ready = app.client.get(format!("{}/readyz", app.url)).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!((body["database"].as_str(), body["store"].as_str()), (Some("ok"), Some("unavailable")));

    let r = app.me("pal_some-token-that-cannot-be-checked").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.code(), Some("SERVICE_UNAVAILABLE"));

    let r = app.try_login("demo", "owner", crate::helpers::DEMO_PASSWORD).await;
    assert_eq!(r.code(), Some("SERVICE_UNAVAILABLE"));
    assert!(r.headers.get("set-cookie").is_none());
    let rows = app.sql_values("SELECT outcome FROM audit_entries WHERE request_id = ?", vec![r.request_id().into()]).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].try_get_by_index::<String>(0).unwrap(), "failed");
}

/// A Redis server of this test's own, on a free port, that the test can stop and start.
struct OwnRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    fn start_on(port: u16) -> std::process::Child {
        std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed for this test (apt-get install redis-server)")
    }

    async fn new() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let me = Self { port, child: Some(Self::start_on(port)) };
        me.wait_up().await;
        me
    }

    async fn wait_up(&self) {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    async fn restart(&mut self) {
        self.child = Some(Self::start_on(self.port));
        self.wait_up().await;
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The store goes away under a running server: every session check and sign-in fails
/// closed (503), and when it comes back the same process serves again, no restart.
#[tokio::test]
async fn a_store_outage_fails_closed_and_the_server_recovers_by_itself() {
    let mut redis = OwnRedis::new().await;
    let store = palisade::store::RedisStore::connect(&format!("redis://127.0.0.1:{}", redis.port), "palisade_test:outage:").unwrap();
    let app = TestApp::spawn_with_store(std::sync::Arc::new(store)).await;
    let token = app.login("demo", "staff").await;
    assert_eq!(app.me(&token).await.ok()["me"]["user"]["username"], "staff");

    redis.stop();
    let r = app.me(&token).await;
    assert_eq!((r.status, r.code()), (503, Some("SERVICE_UNAVAILABLE")));
    let r = app.try_login("demo", "staff", crate::helpers::DEMO_PASSWORD).await;
    assert_eq!((r.status, r.code()), (503, Some("SERVICE_UNAVAILABLE")));
    assert!(r.body["data"]["login"].is_null());

    redis.restart().await;
    // The restarted Redis kept nothing, so the old session is gone (not waved through),
    // and a new sign-in works on the same server process.
    let mut back = None;
    for _ in 0..100 {
        let r = app.me(&token).await;
        if r.status != 503 {
            back = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(back.expect("the server reconnects to the store").code(), Some("UNAUTHENTICATED"));
    let token = app.login("demo", "staff").await;
    assert_eq!(app.me(&token).await.ok()["me"]["user"]["username"], "staff");
}
