//! The workspace lifecycle (master admins): each state's effect on sign-in, queries,
//! mutations and API keys, the transitions, the retention of soft-deleted workspaces,
//! and both logs.
use crate::helpers::{DEMO_PASSWORD, TestApp};
use serde_json::{Value, json};

const READ: &str = "{ customers(first: 3) { edges { node { id } } } }";
const WRITE: &str = "mutation { createCustomer(input: { name: \"During lifecycle\" }) { id } }";
const WHY: &str = "contract ended on 2026-02-28";

async fn act(app: &TestApp, master: &str, op: &str, ws: &str, reason: &str) -> crate::helpers::Reply {
    let q = format!("mutation($id: ID!, $r: String!) {{ {op}(id: $id, reason: $r) {{ status statusReason deletedAt purgeableAfter }} }}");
    app.gql(&q, json!({ "id": ws, "r": reason }), Some(master)).await
}

async fn purge(app: &TestApp, master: &str, ws: &str) -> crate::helpers::Reply {
    let q = "mutation($id: ID!) { purgeWorkspace(id: $id, reason: \"retention over, customer asked\") { rowsDeleted } }";
    app.gql(q, json!({ "id": ws }), Some(master)).await
}

#[tokio::test]
async fn each_lifecycle_state_governs_sign_in_queries_mutations_and_keys() {
    let app = TestApp::spawn().await;
    let master = app.master_token().await;
    let ws = app.workspace_id("demo").await;
    let owner = app.login("demo", "owner").await;
    let role = app.partner_role(&owner).await;
    let (_, key) = app.create_key(&owner, "partner", &role).await;
    let customers = || app.count("SELECT COUNT(*) FROM customers", vec![]);
    let before = customers().await;

    // Only master admins, only with a reason.
    assert_eq!(act(&app, &owner, "suspendWorkspace", &ws, WHY).await.code(), Some("FORBIDDEN"));
    assert_eq!(act(&app, &master, "suspendWorkspace", &ws, "").await.code(), Some("BAD_USER_INPUT"));
    assert_eq!(act(&app, &master, "restoreWorkspace", &ws, WHY).await.code(), Some("CONFLICT"), "already active");

    // Archived: read-only; sign-in, reads, streams and signing out still work.
    let mut stream = crate::ws_client::Ws::connect(&app, &owner).await;
    stream.subscribe_audit("o", json!(null), Some(&app.head_cursor("demo").await)).await;
    let r = act(&app, &master, "archiveWorkspace", &ws, WHY).await;
    assert_eq!(r.ok()["archiveWorkspace"]["status"], "ARCHIVED");
    assert_eq!(r.ok()["archiveWorkspace"]["statusReason"], WHY);
    app.gql(READ, json!({}), Some(&owner)).await.ok();
    app.gql(READ, json!({}), Some(&key)).await.ok();
    let r = app.gql(WRITE, json!({}), Some(&owner)).await;
    assert_eq!(r.code(), Some("WORKSPACE_ARCHIVED"), "{}", r.body);
    let r = app.gql("mutation { updateSupportAccess(staff: false, owners: false) { staff } }", json!({}), Some(&owner)).await;
    assert_eq!(r.code(), Some("WORKSPACE_ARCHIVED"));
    let staff = app.login("demo", "staff").await;
    app.gql("mutation { logout }", json!({}), Some(&staff)).await.ok();
    assert_eq!(customers().await, before, "nothing was written while archived");
    let streamed: Vec<Value> = stream.take("o", 5).await.iter().map(|e| e["entry"]["action"].clone()).collect();
    assert!(streamed.contains(&json!("workspace.archived")) && streamed.contains(&json!("auth.sign_in")), "{streamed:?}");
    let refused = app.count("SELECT COUNT(*) FROM audit_entries WHERE error_code = 'WORKSPACE_ARCHIVED'", vec![]).await;
    assert_eq!(refused, 2, "refused changes are on the record");

    // Restored: changes work again.
    act(&app, &master, "restoreWorkspace", &ws, WHY).await.ok();
    app.gql(WRITE, json!({}), Some(&owner)).await.ok();
    let before = customers().await;

    // Suspended: every session and key stops, sign-in says why to whoever proves the
    // password, and nothing is lost.
    let r = act(&app, &master, "suspendWorkspace", &ws, WHY).await;
    assert_eq!(r.ok()["suspendWorkspace"]["status"], "SUSPENDED");
    assert_eq!(app.gql(READ, json!({}), Some(&owner)).await.code(), Some("UNAUTHENTICATED"));
    let r = app.gql(READ, json!({}), Some(&key)).await;
    assert_eq!((r.status, r.code()), (403, Some("WORKSPACE_SUSPENDED")));
    let r = app.try_login("demo", "manager", DEMO_PASSWORD).await;
    assert_eq!(r.code(), Some("WORKSPACE_SUSPENDED"), "{}", r.body);
    let r = app.try_login("demo", "manager", "not the password at all").await;
    assert_eq!(r.code(), Some("UNAUTHENTICATED"), "a wrong password learns nothing");
    let r = app.try_login("demo", "former", DEMO_PASSWORD).await;
    assert_eq!(r.code(), Some("UNAUTHENTICATED"), "an inactive user learns nothing either");
    let sessions = app.gql("{ mySessions { id } }", json!({}), Some(&owner)).await;
    assert_eq!(sessions.code(), Some("UNAUTHENTICATED"));
    assert_eq!(customers().await, before, "data untouched");
    assert_eq!(
        act(&app, &master, "archiveWorkspace", &ws, WHY).await.ok()["archiveWorkspace"]["status"],
        "ARCHIVED",
        "suspended -> archived"
    );
    act(&app, &master, "restoreWorkspace", &ws, WHY).await.ok();
    let owner = app.login("demo", "owner").await;
    app.gql(READ, json!({}), Some(&key)).await.ok();
    assert_eq!(stream.closed(std::time::Duration::from_secs(1)).await, Some(4403), "the suspension ended the stream");
    let mut stream = crate::ws_client::Ws::connect(&app, &owner).await;
    stream.subscribe_audit("o", json!(null), Some(&app.head_cursor("demo").await)).await;

    // Soft-deleted: hidden and unusable, restorable for the retention period, then
    // purgeable (and no longer restorable).
    let r = act(&app, &master, "softDeleteWorkspace", &ws, WHY).await;
    assert_eq!(r.ok()["softDeleteWorkspace"]["status"], "DELETED");
    assert_eq!(stream.closed(std::time::Duration::from_secs(1)).await, Some(4403), "deletion ends streams");
    assert!(r.ok()["softDeleteWorkspace"]["purgeableAfter"].is_string());
    assert_eq!(app.gql(READ, json!({}), Some(&owner)).await.code(), Some("UNAUTHENTICATED"));
    assert_eq!(app.try_login("demo", "owner", DEMO_PASSWORD).await.code(), Some("UNAUTHENTICATED"), "like a workspace that does not exist");
    assert_eq!(app.gql(READ, json!({}), Some(&key)).await.code(), Some("UNAUTHENTICATED"));
    let list = |master: String, deleted: bool| {
        let app = &app;
        async move {
            let r = app
                .gql("query($d: Boolean!) { workspaces(includeDeleted: $d) { slug status } }", json!({ "d": deleted }), Some(&master))
                .await;
            r.ok()["workspaces"].as_array().unwrap().iter().map(|w| w["slug"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
        }
    };
    assert!(!list(master.clone(), false).await.contains(&"demo".to_owned()));
    assert!(list(master.clone(), true).await.contains(&"demo".to_owned()));
    assert_eq!(act(&app, &master, "suspendWorkspace", &ws, WHY).await.code(), Some("CONFLICT"), "a deleted workspace is restored first");
    let r = purge(&app, &master, &ws).await;
    assert_eq!(r.code(), Some("CONFLICT"), "not purgeable within the retention period");
    act(&app, &master, "restoreWorkspace", &ws, WHY).await.ok();
    app.login("demo", "owner").await;
    act(&app, &master, "softDeleteWorkspace", &ws, WHY).await.ok();
    app.clock.advance(chrono::Duration::days(30));
    let master = app.master_token().await;
    assert_eq!(act(&app, &master, "restoreWorkspace", &ws, WHY).await.code(), Some("CONFLICT"), "past the retention period");

    // Every action is in the workspace's own log and in the platform log, with its reason.
    let actions = ["workspace.archived", "workspace.restored", "workspace.suspended", "workspace.deleted"];
    for action in actions {
        let rows = app.entries(action).await;
        let in_workspace = rows.iter().filter(|r| r.try_get_by_index::<Option<uuid::Uuid>>(3).unwrap().is_some()).count();
        let in_platform = rows.iter().filter(|r| r.try_get_by_index::<Option<uuid::Uuid>>(3).unwrap().is_none()).count();
        assert!(in_workspace > 0 && in_workspace == in_platform, "{action}: {in_workspace} / {in_platform}");
        assert!(rows.iter().all(|r| r.try_get_by_index::<Option<String>>(6).unwrap().as_deref() == Some(WHY)), "{action}: the reason");
    }

    let r = purge(&app, &master, &ws).await;
    assert!(r.ok()["purgeWorkspace"]["rowsDeleted"].as_i64().unwrap() > 100, "{}", r.body);
    let id = uuid::Uuid::parse_str(&ws).unwrap();
    for table in ["users", "customers", "roles", "api_keys", "audit_entries"] {
        let n = app.count(&format!("SELECT COUNT(*) FROM {table} WHERE workspace_id = ?"), vec![id.into()]).await;
        assert_eq!(n, 0, "{table} still holds rows of the purged workspace");
    }
    assert!(!list(master.clone(), true).await.contains(&"demo".to_owned()));
    assert!(list(master.clone(), true).await.contains(&"acme".to_owned()), "other workspaces are untouched");
    // The platform log remembers, and its chain is intact.
    let platform = app.gql("{ platformAuditLog(first: 50) { edges { node { action reason } } } }", json!({}), Some(&master)).await;
    let seen: Vec<Value> =
        platform.ok()["platformAuditLog"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["action"].clone()).collect();
    for action in actions.iter().chain(&["workspace.purged"]) {
        assert!(seen.contains(&json!(action)), "{action} missing from {seen:?}");
    }
    let v = app.gql("{ verifyPlatformAuditChain { ok checked } }", json!({}), Some(&master)).await;
    assert_eq!(v.ok()["verifyPlatformAuditChain"]["ok"], true);
    // Support tools are invisible to everyone else's introspection.
    let acme = app.login("acme", "owner").await;
    let names = app.gql("{ __schema { mutationType { fields { name } } } }", json!({}), Some(&acme)).await;
    let text = names.body.to_string();
    assert!(!text.contains("suspendWorkspace") && !text.contains("startImpersonation") && text.contains("createCustomer"), "{text}");
    let names = app.gql("{ __schema { mutationType { fields { name } } } }", json!({}), Some(&master)).await;
    assert!(names.body.to_string().contains("suspendWorkspace"));
}
