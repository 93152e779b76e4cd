use crate::helpers::TestApp;
use serde_json::{Value, json};

async fn id_of(app: &TestApp, table: &str, name: &str) -> String {
    let sql = format!("SELECT t.id FROM {table} t JOIN workspaces w ON t.workspace_id = w.id WHERE w.slug = 'demo' AND t.name = ?");
    let rows = app.sql_values(&sql, vec![name.into()]).await;
    rows[0].try_get_by_index::<uuid::Uuid>(0).unwrap().to_string()
}

async fn user_id(app: &TestApp, username: &str) -> String {
    let rows = app
        .sql_values(
            "SELECT u.id FROM users u JOIN workspaces w ON u.workspace_id = w.id WHERE w.slug = 'demo' AND u.username_key = ?",
            vec![username.into()],
        )
        .await;
    rows[0].try_get_by_index::<uuid::Uuid>(0).unwrap().to_string()
}

const CREATE_USER: &str = "mutation($i: CreateUserInput!) { createUser(input: $i) { id username email department { name } team { name } primaryGroup { name } } }";
const UPDATE_USER: &str = "mutation($id: ID!, $i: UpdateUserInput!) { updateUser(id: $id, input: $i) { id active } }";

#[tokio::test]
async fn managers_add_staff_who_can_then_sign_in_with_the_role_given() {
    let app = TestApp::spawn().await;
    let manager = app.login("demo", "manager").await;
    let input = json!({ "i": {
        "username": "nina", "email": "nina@demo.palisade.test", "password": "quiet-orchard-lamp-58",
        "departmentId": id_of(&app, "departments", "Sales").await, "teamId": id_of(&app, "teams", "Sales North").await,
        "primaryGroupId": id_of(&app, "groups", "North").await,
    }});
    let r = app.gql(CREATE_USER, input, Some(&manager)).await;
    let created = r.ok()["createUser"].clone();
    assert_eq!(created["team"]["name"], "Sales North");
    let nina_id = created["id"].as_str().unwrap().to_owned();

    // Without a role Nina can sign in but do nothing.
    let nina = app.try_login("demo", "nina", "quiet-orchard-lamp-58").await.ok()["login"]["token"].as_str().unwrap().to_owned();
    assert_eq!(app.gql("{ customers { totalCount } }", json!({}), Some(&nina)).await.code(), Some("FORBIDDEN"));
    let staff_role = app.gql("{ roles { id name } }", json!({}), Some(&manager)).await.ok()["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Staff")
        .unwrap()["id"]
        .clone();
    app.gql(
        "mutation($i: AssignRoleInput!) { assignRole(input: $i) { id } }",
        json!({ "i": { "roleId": staff_role, "userId": nina_id } }),
        Some(&manager),
    )
    .await
    .ok();
    assert_eq!(
        app.gql("{ customers { totalCount } }", json!({}), Some(&nina)).await.ok()["customers"]["totalCount"],
        0,
        "no customers assigned yet"
    );

    // Staff cannot add users; duplicates conflict; bad input names the field.
    let staff = app.login("demo", "staff").await;
    let other = json!({ "i": { "username": "otto", "email": "otto@demo.palisade.test", "password": "quiet-orchard-lamp-58" } });
    assert_eq!(app.gql(CREATE_USER, other, Some(&staff)).await.code(), Some("FORBIDDEN"));
    let dup = json!({ "i": { "username": "NINA", "email": "nina2@demo.palisade.test", "password": "quiet-orchard-lamp-58" } });
    assert_eq!(app.gql(CREATE_USER, dup, Some(&manager)).await.code(), Some("CONFLICT"));
    let bad = json!({ "i": { "username": "bad user", "email": "b@demo.palisade.test", "password": "granite-pelican-dusk-31" } });
    let r = app.gql(CREATE_USER, bad, Some(&manager)).await;
    assert_eq!((r.code(), r.body["errors"][0]["extensions"]["field"].as_str()), (Some("BAD_USER_INPUT"), Some("username")));
}

#[tokio::test]
async fn the_seat_limit_holds() {
    let app = TestApp::spawn().await;
    app.sql("UPDATE workspaces SET seat_limit = 5 WHERE slug = 'demo'").await;
    let owner = app.login("demo", "owner").await;
    let r = app
        .gql(
            CREATE_USER,
            json!({ "i": { "username": "extra", "email": "extra@demo.palisade.test", "password": "quiet-orchard-lamp-58" } }),
            Some(&owner),
        )
        .await;
    assert_eq!(r.code(), Some("CONFLICT"), "{}", r.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE username_key = 'extra'", vec![]).await, 0);
}

#[tokio::test]
async fn deactivating_a_user_ends_their_sessions_at_once() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let sam = app.login("demo", "sam").await;
    let r = app.gql(UPDATE_USER, json!({ "id": user_id(&app, "sam").await, "i": { "active": false } }), Some(&owner)).await;
    assert_eq!(r.ok()["updateUser"]["active"], false);
    assert_eq!(app.me(&sam).await.code(), Some("UNAUTHENTICATED"));
    assert_eq!(app.try_login("demo", "sam", crate::helpers::DEMO_PASSWORD).await.code(), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn nobody_changes_users_at_or_above_their_rank() {
    let app = TestApp::spawn().await;
    let manager = app.login("demo", "manager").await;
    for (who, why) in [("owner", "ranked above"), ("manager", "themselves")] {
        let r = app.gql(UPDATE_USER, json!({ "id": user_id(&app, who).await, "i": { "active": false } }), Some(&manager)).await;
        assert_eq!(r.code(), Some("FORBIDDEN"), "{why}: {}", r.body);
    }
    let r = app.gql(UPDATE_USER, json!({ "id": user_id(&app, "staff").await, "i": { "displayName": "Sasha S." } }), Some(&manager)).await;
    r.ok();
}

#[tokio::test]
async fn moving_a_user_between_teams_and_groups_changes_what_they_reach_at_once() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let sam_id = user_id(&app, "sam").await;
    // A role reading customers of one's team, and an auditor role for a group.
    let team_reader = app
        .gql("mutation($i: RoleInput!) { createRole(input: $i) { id } }", json!({ "i": { "name": "Team reader", "rank": 40, "permissions": ["CUSTOMERS_READ"], "scopes": [{ "module": "CUSTOMERS", "scope": "TEAM" }] } }), Some(&owner))
        .await
        .ok()["createRole"]["id"]
        .clone();
    app.gql(
        "mutation($i: AssignRoleInput!) { assignRole(input: $i) { id } }",
        json!({ "i": { "roleId": team_reader, "userId": sam_id } }),
        Some(&owner),
    )
    .await
    .ok();
    let sam = app.login("demo", "sam").await;
    let count = |r: crate::helpers::Reply| r.ok()["customers"]["totalCount"].as_u64().unwrap();
    assert_eq!(count(app.gql("{ customers { totalCount } }", json!({}), Some(&sam)).await), 2, "only his own in Sales South");
    let north = id_of(&app, "teams", "Sales North").await;
    app.gql(UPDATE_USER, json!({ "id": sam_id, "i": { "teamId": north } }), Some(&owner)).await.ok();
    assert_eq!(count(app.gql("{ customers { totalCount } }", json!({}), Some(&sam)).await), 6, "his own plus manager's and staff's");

    let auditor = app
        .gql(
            "mutation($i: RoleInput!) { createRole(input: $i) { id } }",
            json!({ "i": { "name": "Auditor", "rank": 20, "permissions": ["AUDIT_READ"] } }),
            Some(&owner),
        )
        .await
        .ok()["createRole"]["id"]
        .clone();
    // A group the manager is not in, carrying a role the manager does not hold.
    let key_accounts =
        app.gql("mutation { createGroup(name: \"Auditors\") { id } }", json!({}), Some(&owner)).await.ok()["createGroup"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    app.gql(
        "mutation($i: AssignRoleInput!) { assignRole(input: $i) { id } }",
        json!({ "i": { "roleId": auditor, "groupId": key_accounts } }),
        Some(&owner),
    )
    .await
    .ok();
    let staff = app.login("demo", "staff").await;
    let audit = "{ auditLog(first: 1) { edges { node { id } } } }";
    assert_eq!(app.gql(audit, json!({}), Some(&staff)).await.code(), Some("FORBIDDEN"));
    app.gql(UPDATE_USER, json!({ "id": user_id(&app, "staff").await, "i": { "groupIds": [key_accounts] } }), Some(&owner)).await.ok();
    assert!(app.gql(audit, json!({}), Some(&staff)).await.code().is_none(), "joining the group grants its roles at once");
}

#[tokio::test]
async fn user_contact_details_follow_field_access() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    app.try_login("demo", "guest", crate::helpers::DEMO_PASSWORD).await;
    let q = "{ users(first: 20) { totalCount edges { node { username email lastLoginIp } } } }";
    let full = app.gql(q, json!({}), Some(&owner)).await;
    let staff = app.login("demo", "staff").await;
    let r = app.gql(q, json!({}), Some(&staff)).await;
    let nodes: Vec<Value> = r.body["data"]["users"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect();
    for n in &nodes {
        let email = n["email"].as_str().unwrap();
        if n["username"] == "staff" {
            assert_eq!(email, "staff@demo.palisade.test", "own record in full");
        } else {
            assert!(email.starts_with("•••@"), "masked: {email}");
            assert!(n["lastLoginIp"].is_null());
        }
    }
    assert!(r.body["errors"].as_array().unwrap().iter().all(|e| e["extensions"]["code"] == "FIELD_FORBIDDEN"));
    assert!(!r.body.to_string().contains("guest@demo.palisade.test"));
    assert!(full.body.to_string().contains("guest@demo.palisade.test"));
    assert_eq!(full.ok()["users"]["totalCount"], 6);
}

#[tokio::test]
async fn a_page_of_users_shows_their_organisation() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let r = app
        .gql(
            "{ users(first: 20) { edges { node { username department { name } team { name } primaryGroup { name } groups { name } } } } }",
            json!({}),
            Some(&owner),
        )
        .await;
    let users = r.ok()["users"]["edges"].as_array().unwrap().clone();
    let manager = users.iter().map(|e| &e["node"]).find(|n| n["username"] == "manager").unwrap();
    assert_eq!(manager["department"]["name"], "Sales");
    assert_eq!(manager["team"]["name"], "Sales North");
    assert_eq!(manager["primaryGroup"]["name"], "North");
    assert_eq!(manager["groups"], json!([{ "name": "Key accounts" }]));
    let owner_node = users.iter().map(|e| &e["node"]).find(|n| n["username"] == "owner").unwrap();
    assert!(owner_node["department"].is_null() && owner_node["groups"] == json!([]));
}

/// Putting someone into a group gives them the group's roles: nobody may do that with
/// a group whose roles hold more than they hold themselves.
#[tokio::test]
async fn joining_a_group_cannot_hand_out_roles_the_actor_lacks() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let auditor = app
        .gql(
            "mutation($i: RoleInput!) { createRole(input: $i) { id } }",
            json!({ "i": { "name": "Auditor", "rank": 20, "permissions": ["AUDIT_READ"] } }),
            Some(&owner),
        )
        .await
        .ok()["createRole"]["id"]
        .clone();
    // A group the manager is not in, carrying a role the manager does not hold.
    let key_accounts =
        app.gql("mutation { createGroup(name: \"Auditors\") { id } }", json!({}), Some(&owner)).await.ok()["createGroup"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    app.gql(
        "mutation($i: AssignRoleInput!) { assignRole(input: $i) { id } }",
        json!({ "i": { "roleId": auditor, "groupId": key_accounts } }),
        Some(&owner),
    )
    .await
    .ok();
    let manager = app.login("demo", "manager").await;
    let staff_id = user_id(&app, "staff").await;
    let r = app.gql(UPDATE_USER, json!({ "id": staff_id, "i": { "groupIds": [key_accounts] } }), Some(&manager)).await;
    assert_eq!(r.code(), Some("FORBIDDEN"), "{}", r.body);
    let r = app.gql(UPDATE_USER, json!({ "id": staff_id, "i": { "primaryGroupId": key_accounts } }), Some(&manager)).await;
    assert_eq!(r.code(), Some("FORBIDDEN"), "{}", r.body);
    let input = json!({ "i": { "username": "mole", "email": "mole@demo.palisade.test", "password": "quiet-orchard-lamp-58", "groupIds": [key_accounts] } });
    assert_eq!(app.gql(CREATE_USER, input, Some(&manager)).await.code(), Some("FORBIDDEN"));
    // A group without such roles is fine; the owner may use the other one.
    let south = id_of(&app, "groups", "South").await;
    app.gql(UPDATE_USER, json!({ "id": staff_id, "i": { "groupIds": [south] } }), Some(&manager)).await.ok();
    app.gql(UPDATE_USER, json!({ "id": staff_id, "i": { "groupIds": [south, key_accounts] } }), Some(&owner)).await.ok();
}
