//! Smaller breaks found from outside: the role a user holds, a mutation's answer after
//! its own change, a page without `first` under a small record limit, explanations of a
//! denied permission, and roles that grant and deny the same thing.

use crate::helpers::TestApp;
use serde_json::json;

const PASSWORD: &str = "a long and unusual passphrase 42";

async fn role_id(app: &TestApp, token: &str, name: &str) -> String {
    let r = app.gql("{ roles { id name } }", json!({}), Some(token)).await;
    r.ok()["roles"].as_array().unwrap().iter().find(|x| x["name"] == name).unwrap()["id"].as_str().unwrap().to_owned()
}

async fn create_user(app: &TestApp, owner: &str, username: &str) -> String {
    let r = app
        .gql(
            "mutation($i: CreateUserInput!) { createUser(input: $i) { id role } }",
            json!({ "i": { "username": username, "email": format!("{username}@example.com"), "password": PASSWORD } }),
            Some(owner),
        )
        .await;
    assert_eq!(r.ok()["createUser"]["role"], "GUEST", "no role yet");
    r.ok()["createUser"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn user_role_reports_the_highest_built_in_role_held_and_updates_answer_what_they_wrote() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let id = create_user(&app, &owner, "newhire").await;
    let manager_role = role_id(&app, &owner, "Manager").await;
    app.assign_role(&owner, &manager_role, &id).await;
    let r = app.gql("query($id: ID!) { user(id: $id) { role } }", json!({ "id": id }), Some(&owner)).await;
    assert_eq!(r.ok()["user"]["role"], "MANAGER");
    let r = app.gql("{ users(first: 50) { edges { node { username role } } } }", json!({}), Some(&owner)).await;
    let nodes = r.ok()["users"]["edges"].as_array().unwrap().clone();
    let role_of = |u: &str| nodes.iter().find(|n| n["node"]["username"] == u).unwrap()["node"]["role"].clone();
    assert_eq!(role_of("newhire"), "MANAGER");
    assert_eq!(role_of("owner"), "OWNER");
    assert_eq!(role_of("staff"), "STAFF");

    // Through a group: a second user joins a group that carries Staff.
    let other = create_user(&app, &owner, "grouped").await;
    let g = app.gql("mutation { createGroup(name: \"Carriers\") { id } }", json!({}), Some(&owner)).await;
    let g = g.ok()["createGroup"]["id"].as_str().unwrap().to_owned();
    let staff_role = role_id(&app, &owner, "Staff").await;
    app.gql(
        "mutation($i: AssignRoleInput!) { assignRole(input: $i) { id } }",
        json!({ "i": { "roleId": staff_role, "groupId": g } }),
        Some(&owner),
    )
    .await
    .ok();
    // The answer of the update shows the groups and role it just wrote.
    let r = app
        .gql(
            "mutation($id: ID!, $g: [ID!]) { updateUser(id: $id, input: { groupIds: $g }) { groups { name } role } }",
            json!({ "id": other, "g": [g] }),
            Some(&owner),
        )
        .await;
    assert_eq!(r.ok()["updateUser"]["groups"], json!([{ "name": "Carriers" }]));
    assert_eq!(r.ok()["updateUser"]["role"], "STAFF");
    let r = app
        .gql(
            "mutation($id: ID!) { updateUser(id: $id, input: { groupIds: [] }) { groups { name } role } }",
            json!({ "id": other }),
            Some(&owner),
        )
        .await;
    assert_eq!(r.ok()["updateUser"]["groups"], json!([]));
    assert_eq!(r.ok()["updateUser"]["role"], "GUEST");
}

#[tokio::test]
async fn a_small_record_limit_clamps_the_default_page_and_refuses_larger_asks() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let tiny = app
        .create_role(
            &owner,
            json!({ "name": "Tiny", "rank": 10, "permissions": ["CUSTOMERS_READ"], "scopes": [{ "module": "CUSTOMERS", "scope": "ALL" }],
                    "restrictions": { "dataExport": false, "bulkOperations": false, "apiAccess": false, "maxRecordsPerRequest": 2 } }),
        )
        .await;
    let id = create_user(&app, &owner, "tiny").await;
    app.assign_role(&owner, &tiny, &id).await;
    let token = app.try_login("demo", "tiny", PASSWORD).await.ok()["login"]["token"].as_str().unwrap().to_owned();
    let r = app.gql("{ customers { edges { node { id } } pageInfo { hasNextPage } } }", json!({}), Some(&token)).await;
    assert_eq!(r.ok()["customers"]["edges"].as_array().unwrap().len(), 2, "{}", r.body);
    assert_eq!(r.ok()["customers"]["pageInfo"]["hasNextPage"], true);
    let r = app.gql("{ customers(first: 3) { edges { node { id } } } }", json!({}), Some(&token)).await;
    assert_eq!(r.code(), Some("FORBIDDEN"), "an explicit ask above the limit is refused");
}

#[tokio::test]
async fn explanations_name_the_deny_and_the_grant_it_overrides_and_roles_warn_about_both() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let q = "mutation($i: RoleInput!) { createRole(input: $i) { id warnings } }";
    let r = app
        .gql(
            q,
            json!({ "i": { "name": "Confused", "rank": 10, "permissions": ["CUSTOMERS_READ", "ORDERS_READ"], "denies": ["CUSTOMERS_READ"],
                           "fields": [{ "field": "CUSTOMER_PHONE", "access": "MASKED" }], "deniedFields": ["CUSTOMER_PHONE"] } }),
            Some(&owner),
        )
        .await;
    let warnings = r.ok()["createRole"]["warnings"].as_array().unwrap().clone();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].as_str().unwrap().contains("customers.read"));
    let r = app
        .gql(
            "mutation($i: RoleInput!) { createRole(input: $i) { warnings } }",
            json!({ "i": { "name": "Clear", "rank": 10, "permissions": ["ORDERS_READ"] } }),
            Some(&owner),
        )
        .await;
    assert_eq!(r.ok()["createRole"]["warnings"], json!([]));

    // Staff holds Staff (which grants customers.read) and a role that denies it.
    let deny = app.create_role(&owner, json!({ "name": "No customers", "rank": 5, "denies": ["CUSTOMERS_READ"] })).await;
    let staff = app.user_id("demo", "staff").await;
    app.assign_role(&owner, &deny, &staff).await;
    let r = app
        .gql(
            "query($u: ID!) { explainAccess(userId: $u, permission: CUSTOMERS_READ) { allowed reasons { kind role detail } } }",
            json!({ "u": staff }),
            Some(&owner),
        )
        .await;
    let e = &r.ok()["explainAccess"];
    assert_eq!(e["allowed"], false);
    let reasons = e["reasons"].as_array().unwrap();
    assert!(reasons.iter().any(|x| x["kind"] == "DENY" && x["role"] == "No customers"), "{e}");
    assert!(reasons.iter().any(|x| x["kind"] == "OVERRIDDEN_GRANT" && x["role"] == "Staff"), "the grant it overrides: {e}");
}
