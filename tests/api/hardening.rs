use crate::helpers::TestApp;
use serde_json::json;

fn graphql_url(app: &TestApp) -> String {
    format!("{}/graphql", app.url)
}

/// Every bad request gets a clear, coded error, the server stays up, nothing is written.
#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let entries = app.audit_count().await;
    let url = graphql_url(&app);
    let login = r#"mutation { login(input: { workspace: "demo", login: "owner", password: "demo-password-for-tests" }) { token } }"#;

    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        ("malformed JSON", app.client.post(&url).header("content-type", "application/json").body("{\"query\": "), 400, "not valid JSON"),
        ("10 MB body", app.client.post(&url).header("content-type", "application/json").body(vec![b' '; 10 << 20]), 413, "too large"),
        (
            "batch array",
            app.client.post(&url).json(&json!([{ "query": "{ __typename }" }, { "query": login }])),
            400,
            "batched requests are not supported",
        ),
        ("text/plain POST", app.client.post(&url).header("content-type", "text/plain").body(json!({ "query": login }).to_string()), 415, "Content-Type"),
        (
            "form POST",
            app.client.post(&url).header("content-type", "application/x-www-form-urlencoded").body(format!("query={login}")),
            415,
            "Content-Type",
        ),
        ("no content type", app.client.post(&url).body(json!({ "query": login }).to_string()), 415, "Content-Type"),
        ("invalid UTF-8", app.client.post(&url).header("content-type", "application/json").body(b"{\"query\": \"{ me \xff\xfe }\"}".to_vec()), 400, "not valid JSON"),
        (
            "NUL in a variable",
            app.client.post(&url).json(&json!({ "query": "mutation($l: String!) { login(input: { workspace: \"demo\", login: $l, password: \"x\" }) { token } }", "variables": { "l": "own\u{0}er" } })),
            400,
            "NUL",
        ),
        ("NUL in the query", app.client.post(&url).json(&json!({ "query": "{ me\u{0} { kind } }" })), 400, "NUL"),
        ("wrong JSON shape", app.client.post(&url).json(&json!({ "query": 42 })), 400, "not a GraphQL request"),
        ("mutation over GET", app.client.get(&url).query(&[("query", login)]), 405, "must use POST"),
    ];
    for (why, req, status, message) in cases {
        let r = app.raw(req).await;
        assert_eq!(r.status, status, "{why}: {}", r.body);
        assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{why}: {}", r.body);
        let msg = r.body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(message), "{why}: {msg}");
    }

    // Documents that parse but are too deep, too wide or too complex.
    let deep = format!("{{ {}__typename{} }}", "me { user { ".repeat(100), " } }".repeat(100));
    let aliases: String = (0..1000).map(|i| format!("a{i}: __typename ")).collect();
    for (why, query) in [("200-level nesting", deep), ("1000 aliases", format!("{{ {aliases} }}"))] {
        let r = app.post(json!({ "query": query }), None).await;
        assert_eq!(r.status, 200, "{why}");
        assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{why}: {}", r.body);
        assert!(r.data().is_null(), "{why}");
    }
    // A wrongly typed variable.
    let r = app.gql("mutation($i: LoginInput!) { login(input: $i) { token } }", json!({ "i": { "workspace": 1 } }), None).await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"));

    let health = app.client.get(format!("{}/healthz", app.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(app.audit_count().await, entries, "a refused request wrote something");
    assert!(app.gql("{ me { kind } }", json!({}), None).await.code() == Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn depth_and_complexity_limits_are_configurable() {
    let app = TestApp::spawn_with(&[("PALISADE_MAX_COMPLEXITY", "10"), ("PALISADE_MAX_DEPTH", "3")]).await;
    let token = app.login("demo", "owner").await;
    let wide = "{ a: mySessions { id ip userAgent createdAt lastSeenAt expiresAt current } b: mySessions { id ip } }";
    let r = app.gql(wide, json!({}), Some(&token)).await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("complex"), "{}", r.body);
    let deep = "{ me { user { department { name } } } }";
    let r = app.gql(deep, json!({}), Some(&token)).await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    let fine = "{ me { user { username } } }";
    assert_eq!(app.gql(fine, json!({}), Some(&token)).await.ok()["me"]["user"]["username"], "owner");
}

#[tokio::test]
async fn get_serves_graphiql_and_read_only_queries() {
    let app = TestApp::spawn().await;
    let page = app.client.get(graphql_url(&app)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("graphiql"));
    let token = app.login("demo", "owner").await;
    let r = app.raw(app.client.get(graphql_url(&app)).query(&[("query", "{ me { user { username } } }")]).bearer_auth(&token)).await;
    assert_eq!(r.ok()["me"]["user"]["username"], "owner");
    let r = app.raw(app.client.get(graphql_url(&app)).query(&[("query", "mutation { logout }")]).bearer_auth(&token)).await;
    assert_eq!(r.status, 405);
    assert_eq!(app.me(&token).await.ok()["me"]["user"]["username"], "owner", "a GET must not log out");
}

#[tokio::test]
async fn production_settings_hide_the_schema() {
    let app = TestApp::spawn_with(&[("PALISADE_INTROSPECTION", "false"), ("PALISADE_GRAPHIQL", "false")]).await;
    let page = app.client.get(graphql_url(&app)).send().await.unwrap();
    assert_eq!(page.status(), 404);
    let r = app.post(json!({ "query": "{ __schema { types { name } } t: __type(name: \"Query\") { name } }" }), None).await;
    assert!(r.data()["__schema"].is_null() && r.data()["t"].is_null(), "{}", r.body);
    let r = app.post(json!({ "query": "{ mee { kind } }" }), None).await;
    let msg = r.body["errors"][0]["message"].as_str().unwrap();
    assert!(!msg.contains("Did you mean"), "suggestions reveal the schema: {msg}");

    let open = TestApp::spawn().await;
    let r = open.post(json!({ "query": "{ __schema { queryType { name } } }" }), None).await;
    assert_eq!(r.ok()["__schema"]["queryType"]["name"], "Query");
}

#[tokio::test]
async fn cors_answers_only_configured_origins() {
    let app = TestApp::spawn_with(&[("PALISADE_ALLOWED_ORIGINS", "https://crm.example.com")]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, graphql_url(&app))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let ok = preflight("https://crm.example.com").await.unwrap();
    assert_eq!(ok.headers()["access-control-allow-origin"], "https://crm.example.com");
    assert_eq!(ok.headers()["access-control-allow-credentials"], "true");
    let evil = preflight("https://evil.example.net").await.unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = TestApp::spawn().await;
    let ready: serde_json::Value = app.client.get(format!("{}/readyz", app.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["database"], "ok");
    assert_eq!(ready["store"], "ok");
    app.login("demo", "owner").await;
    let _ = app.try_login("demo", "owner", "wrong-password-here").await;
    let res = app.client.get(format!("{}/metrics", app.url)).send().await.unwrap();
    assert!(res.headers()["x-request-id"].len() > 10);
    let text = res.text().await.unwrap();
    for needle in [
        "palisade_http_requests_total{route=\"/graphql\",status=\"200\"}",
        "palisade_http_request_duration_seconds_bucket",
        "palisade_sign_ins_total{outcome=\"success\"} 1",
        "palisade_sign_ins_total{outcome=\"failure\"} 1",
        "palisade_graphql_errors_total{code=\"UNAUTHENTICATED\"} 1",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
}

#[tokio::test]
async fn responses_carry_security_headers() {
    let app = TestApp::spawn().await;
    let r = app.post(json!({ "query": "{ __typename }" }), None).await;
    for (h, v) in [("x-content-type-options", "nosniff"), ("cache-control", "no-store"), ("x-frame-options", "DENY")] {
        assert_eq!(r.headers[h], v);
    }
}
