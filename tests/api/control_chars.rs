//! Control characters written as GraphQL string escapes (`"\u0000"`) or sent in
//! variables are refused at the GraphQL edge with BAD_USER_INPUT naming the field, on
//! every operation, before anything runs; tab and newline pass only in multi-line
//! text fields.

use crate::helpers::{DEMO_PASSWORD, TestApp};
use serde_json::json;

#[tokio::test]
async fn escaped_control_characters_are_refused_everywhere_with_the_field_named() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    palisade::service::bootstrap::create_master_admin(&app.state, "ops@palisade.test", "cobalt-anchor-meadow-19").await.unwrap();
    let before = app.audit_count().await;
    // Each as a literal with a GraphQL escape, the way the query text carries it.
    let cases: Vec<(&str, &str, Option<&str>)> = vec![
        (r#"mutation { login(input: { workspace: "demo", login: "own\u0000er", password: "x" }) { token } }"#, "login", None),
        (r#"mutation { login(input: { workspace: "de\u0000mo", login: "owner", password: "x" }) { token } }"#, "workspace", None),
        (r#"mutation { masterLogin(input: { email: "ops@palisade.test\u0000", password: "x" }) { token } }"#, "email", None),
        (r#"{ customers(filter: { search: "\u0000" }) { totalCount } }"#, "search", Some(&owner)),
        (r#"{ customers(filter: { email: "a\u0000@b.c" }) { totalCount } }"#, "email", Some(&owner)),
        (r#"{ users(filter: { search: "\u001b[2J" }) { totalCount } }"#, "search", Some(&owner)),
        (r#"{ products(filter: { search: "\u0000" }) { totalCount } }"#, "search", Some(&owner)),
        (r#"{ auditLog(filter: { action: "auth\u0000" }) { edges { node { id } } } }"#, "action", Some(&owner)),
        (r#"mutation { createCustomer(input: { name: "tab\there" }) { id } }"#, "name", Some(&owner)),
        (r#"mutation { createCustomer(input: { name: "ok", notes: "bell\u0007" }) { id } }"#, "notes", Some(&owner)),
    ];
    for (query, field, token) in &cases {
        let r = app.gql(query, json!({}), *token).await;
        assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{query}: {}", r.body);
        assert_eq!(r.body["errors"][0]["extensions"]["field"], *field, "{query}: {}", r.body);
        assert!(r.data().is_null(), "nothing ran: {}", r.body);
    }
    // The same values through variables.
    let r = app
        .gql(
            "mutation($i: LoginInput!) { login(input: $i) { token } }",
            json!({ "i": { "workspace": "demo", "login": "owner\u{7f}", "password": DEMO_PASSWORD } }),
            None,
        )
        .await;
    assert_eq!((r.code(), r.body["errors"][0]["extensions"]["field"].as_str()), (Some("BAD_USER_INPUT"), Some("login")));
    let r =
        app.gql("query($s: String) { customers(filter: { search: $s }) { totalCount } }", json!({ "s": "x\u{85}" }), Some(&owner)).await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "C1 control characters too");
    assert_eq!(app.audit_count().await, before, "refused before any resolver ran, so nothing was written");
    assert_eq!(app.count("SELECT COUNT(*) FROM customers WHERE name = 'ok'", vec![]).await, 0);

    // Multi-line text keeps its newlines and tabs.
    let r = app
        .gql(
            "mutation($n: String) { createCustomer(input: { name: \"Multi line\", notes: $n }) { notes } }",
            json!({ "n": "first line\nsecond\tline" }),
            Some(&owner),
        )
        .await;
    assert_eq!(r.ok()["createCustomer"]["notes"], "first line\nsecond\tline");
    // And ordinary Unicode is untouched.
    let r = app.gql("{ customers(filter: { search: \"Müller ☃\" }) { totalCount } }", json!({}), Some(&owner)).await;
    assert_eq!(r.ok()["customers"]["totalCount"], 0);
}
