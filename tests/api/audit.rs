use crate::helpers::{DEMO_PASSWORD, Reply, TestApp};
use serde_json::json;

/// The entries written by one request, found by its request id.
async fn entries_of(app: &TestApp, r: &Reply) -> Vec<sea_orm::QueryResult> {
    app.sql_values(
        "SELECT actor_type, actor_id, ip, user_agent, outcome, changes, action FROM audit_entries WHERE request_id = ?",
        vec![r.request_id().into()],
    )
    .await
}

async fn assert_one_entry(app: &TestApp, r: &Reply, action: &str, actor: &str) {
    let rows = entries_of(app, r).await;
    assert_eq!(rows.len(), 1, "{action}: expected exactly one entry");
    let row = &rows[0];
    assert_eq!(row.try_get_by_index::<String>(6).unwrap(), action);
    assert_eq!(row.try_get_by_index::<String>(0).unwrap(), actor, "{action}");
    assert!(row.try_get_by_index::<Option<uuid::Uuid>>(1).unwrap().is_some(), "{action}: actor id");
    assert_eq!(row.try_get_by_index::<Option<String>>(2).unwrap().as_deref(), Some("127.0.0.1"), "{action}: ip");
    assert_eq!(row.try_get_by_index::<Option<String>>(3).unwrap().as_deref(), Some("palisade-tests/1"), "{action}: user agent");
    assert_eq!(row.try_get_by_index::<String>(4).unwrap(), "success", "{action}");
    let changes: serde_json::Value = row.try_get_by_index::<Option<serde_json::Value>>(5).unwrap().expect("changes");
    let obj = changes.as_object().unwrap();
    assert!(!obj.is_empty() && obj.values().all(|c| c.get("before").is_some() && c.get("after").is_some()), "{action}: {changes}");
}

#[tokio::test]
async fn every_successful_mutation_has_exactly_one_entry_with_actor_ip_and_changes() {
    let app = TestApp::spawn().await;
    let r = app.try_login("demo", "staff", DEMO_PASSWORD).await;
    assert_one_entry(&app, &r, "auth.sign_in", "user").await;
    let a = r.ok()["login"]["token"].as_str().unwrap().to_owned();
    let b = app.login("demo", "staff").await;
    let c = app.login("demo", "staff").await;

    let sessions = app.gql("{ mySessions { id current } }", json!({}), Some(&a)).await;
    let b_id = sessions.ok()["mySessions"].as_array().unwrap().iter().find(|s| s["current"] == false).unwrap()["id"].clone();
    let r = app.gql("mutation($id: ID!) { revokeSession(id: $id) }", json!({ "id": b_id }), Some(&a)).await;
    assert_one_entry(&app, &r, "auth.session_revoked", "user").await;
    let r = app.gql("mutation { revokeOtherSessions }", json!({}), Some(&a)).await;
    assert_one_entry(&app, &r, "auth.other_sessions_revoked", "user").await;
    let _ = (b, c);
    let r = app
        .gql(
            "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }",
            json!({ "c": DEMO_PASSWORD, "n": "a new long passphrase" }),
            Some(&a),
        )
        .await;
    assert_one_entry(&app, &r, "auth.password_changed", "user").await;
    let r = app.gql("mutation { logout }", json!({}), Some(&a)).await;
    assert_one_entry(&app, &r, "auth.sign_out", "user").await;

    palisade::service::bootstrap::create_master_admin(&app.state, "ops@palisade.test", "cobalt-anchor-meadow-19").await.unwrap();
    let m = app.master_sign_in("ops@palisade.test", "cobalt-anchor-meadow-19").await;
    let r = app
        .gql(
            "mutation($i: CreateWorkspaceInput!) { createWorkspace(input: $i) { workspace { id } } }",
            json!({ "i": { "slug": "globex", "name": "Globex", "owner": { "username": "hank", "email": "hank@globex.test", "password": "saffron-tundra-violin-46" } } }),
            Some(&m),
        )
        .await;
    // One entry in the new workspace's log, one in the platform's (which outlives it).
    let rows = app
        .sql_values(
            "SELECT workspace_id, action, actor_type FROM audit_entries WHERE request_id = ? ORDER BY workspace_id",
            vec![r.request_id().into()],
        )
        .await;
    assert_eq!(rows.len(), 2);
    let places: Vec<(bool, String)> = rows
        .iter()
        .map(|x| (x.try_get_by_index::<Option<uuid::Uuid>>(0).unwrap().is_some(), x.try_get_by_index::<String>(1).unwrap()))
        .collect();
    assert!(places.contains(&(true, "workspace.created".into())) && places.contains(&(false, "workspace.created".into())), "{places:?}");
    assert!(rows.iter().all(|x| x.try_get_by_index::<String>(2).unwrap() == "master_admin"));
    let r = app.gql("mutation { logout }", json!({}), Some(&m)).await;
    assert_one_entry(&app, &r, "platform.sign_out", "master_admin").await;
}

#[tokio::test]
async fn a_mutation_whose_audit_write_fails_leaves_no_change_behind() {
    let app = TestApp::spawn().await;
    let token = app.login("demo", "staff").await;
    let hash_of_staff = || async {
        let rows = app.sql_values("SELECT password_hash FROM users WHERE username_key = 'staff'", vec![]).await;
        rows[0].try_get_by_index::<String>(0).unwrap()
    };
    let before = hash_of_staff().await;
    let entries_before = app.audit_count().await;

    // Make every audit insert fail, as a full disk or a broken constraint would.
    app.refuse_audit_writes().await;

    let r = app
        .gql(
            "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }",
            json!({ "c": DEMO_PASSWORD, "n": "never-to-be-stored-1" }),
            Some(&token),
        )
        .await;
    assert_eq!(r.code(), Some("INTERNAL"));
    assert_eq!(r.body["errors"][0]["message"], "internal error");
    assert_eq!(r.body["errors"][0]["extensions"]["requestId"], r.request_id().as_str());
    assert!(!r.body.to_string().contains("audit refused"), "internal detail leaked: {}", r.body);
    assert_eq!(hash_of_staff().await, before, "the password changed without its audit entry");

    // A sign-in whose entry cannot be written yields no usable session either.
    let r = app.try_login("demo", "manager", DEMO_PASSWORD).await;
    assert_eq!(r.code(), Some("INTERNAL"));

    app.sql(if app.is_postgres() { "DROP TRIGGER refuse_audit ON audit_entries" } else { "DROP TRIGGER refuse_audit" }).await;
    assert_eq!(app.audit_count().await, entries_before);
    let sessions = app.gql("{ mySessions { id } }", json!({}), Some(&token)).await;
    assert_eq!(sessions.ok()["mySessions"].as_array().unwrap().len(), 1, "the failed sign-in left a session behind");
}

#[tokio::test]
async fn refused_mutations_commit_only_their_refusal_entry() {
    let app = TestApp::spawn().await;
    let create = "mutation { createWorkspace(input: { slug: \"sneaky\", name: \"S\", owner: { username: \"s1\", email: \"s@x.test\", password: \"granite-pelican-dusk-31\" } }) { workspace { id } } }";
    let r = app.gql(create, json!({}), None).await;
    assert_eq!(r.code(), Some("UNAUTHENTICATED"));
    let rows =
        app.sql_values("SELECT outcome, error_code, target_id FROM audit_entries WHERE request_id = ?", vec![r.request_id().into()]).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].try_get_by_index::<String>(0).unwrap(), "denied");
    assert_eq!(rows[0].try_get_by_index::<Option<String>>(1).unwrap().as_deref(), Some("UNAUTHENTICATED"));
    assert_eq!(rows[0].try_get_by_index::<Option<String>>(2).unwrap().as_deref(), Some("createWorkspace"));

    let staff = app.login("demo", "staff").await;
    let r = app.gql(create, json!({}), Some(&staff)).await;
    assert_eq!(r.code(), Some("FORBIDDEN"));
    let rows = app.sql_values("SELECT outcome, actor_type FROM audit_entries WHERE request_id = ?", vec![r.request_id().into()]).await;
    assert_eq!(rows[0].try_get_by_index::<String>(0).unwrap(), "denied");
    assert_eq!(rows[0].try_get_by_index::<String>(1).unwrap(), "user");
    assert_eq!(app.count("SELECT COUNT(*) FROM workspaces WHERE slug = 'sneaky'", vec![]).await, 0);
}

#[tokio::test]
async fn the_audit_log_is_for_owners_and_pages_newest_first() {
    let app = TestApp::spawn().await;
    for user in ["manager", "staff", "guest"] {
        let t = app.login("demo", user).await;
        let r = app.gql("{ auditLog { edges { node { id } } } }", json!({}), Some(&t)).await;
        assert_eq!(r.code(), Some("FORBIDDEN"), "{user}");
        assert!(r.data().is_null() || r.data()["auditLog"].is_null());
    }
    assert_eq!(app.gql("{ auditLog { edges { node { id } } } }", json!({}), None).await.code(), Some("UNAUTHENTICATED"));

    let owner = app.login("demo", "owner").await;
    let page = "query($a: String) { auditLog(first: 2, after: $a) { pageInfo { hasNextPage endCursor } edges { node { id action occurredAt actor { kind label } } } } }";
    let mut seen = Vec::new();
    let mut after = serde_json::Value::Null;
    loop {
        let r = app.gql(page, json!({ "a": after }), Some(&owner)).await;
        let log = &r.ok()["auditLog"];
        for e in log["edges"].as_array().unwrap() {
            seen.push(e["node"]["id"].as_str().unwrap().to_owned());
        }
        if log["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = log["pageInfo"]["endCursor"].clone();
    }
    let total =
        app.count("SELECT COUNT(*) FROM audit_entries a JOIN workspaces w ON a.workspace_id = w.id WHERE w.slug = 'demo'", vec![]).await;
    assert_eq!(seen.len() as i64, total);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "newest first");
    let first = app.gql(page, json!({ "a": null }), Some(&owner)).await;
    assert_eq!(first.ok()["auditLog"]["edges"][0]["node"]["action"], "auth.sign_in");

    let r = app.gql("{ auditLog(first: 1000) { edges { node { id } } } }", json!({}), Some(&owner)).await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"));
    // The three refused reads above are on the record, with who and what was needed;
    // the anonymous attempt is not (it names no workspace).
    let r =
        app.gql("{ auditLog(filter: { outcome: DENIED }) { edges { node { actor { label } targetId } } } }", json!({}), Some(&owner)).await;
    let denied = r.ok()["auditLog"]["edges"].as_array().unwrap().clone();
    let mut who: Vec<&str> = denied.iter().map(|e| e["node"]["actor"]["label"].as_str().unwrap()).collect();
    who.sort();
    assert_eq!(who, ["guest", "manager", "staff"]);
    assert!(denied.iter().all(|e| e["node"]["targetId"] == "auditLog"));
    let reasons = app.count("SELECT COUNT(*) FROM audit_entries WHERE outcome = 'denied' AND reason = 'requires audit.read'", vec![]).await;
    assert_eq!(reasons, 3);
}
