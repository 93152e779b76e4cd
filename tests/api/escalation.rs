//! Role edits as data: edit operation x holder rank x path -> allowed or refused.
//!
//! The actor is the demo Manager (rank 75). A change to a role must be refused when
//! anyone who holds it (directly, through a group, or through a child role that
//! inherits it) ranks at or above the actor; otherwise it goes through.

use crate::helpers::TestApp;
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Holder {
    Owner,
    PeerManager,
    Staff,
    Nobody,
}

#[derive(Clone, Copy, Debug)]
enum Path {
    Direct,
    Group,
    Inherited,
}

const PASSWORD: &str = "a long and unusual passphrase 42";
const UPDATE: &str = "mutation($id: ID!, $i: RoleInput!) { updateRole(id: $id, input: $i) { id } }";

fn base(name: &str) -> Value {
    json!({ "name": name, "rank": 20, "permissions": ["CUSTOMERS_READ"], "scopes": [{ "module": "CUSTOMERS", "scope": "ASSIGNED" }] })
}

/// Each edit the Manager could make within their own grants.
fn edits(name: &str, guest_role: &str) -> Vec<(&'static str, Value)> {
    let with = |extra: Value| {
        let mut v = base(name);
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    vec![
        ("add denies", with(json!({ "denies": ["ROLES_WRITE", "TEAM_WRITE", "SETTINGS_WRITE", "AUDIT_READ"] }))),
        ("change permissions", with(json!({ "permissions": ["CUSTOMERS_READ", "ORDERS_READ"] }))),
        ("change a scope", with(json!({ "scopes": [{ "module": "CUSTOMERS", "scope": "TEAM" }] }))),
        (
            "change field levels",
            with(json!({ "fields": [{ "field": "CUSTOMER_PHONE", "access": "MASKED" }], "deniedFields": ["CUSTOMER_EMAIL"] })),
        ),
        (
            "change restrictions",
            with(
                json!({ "restrictions": { "dataExport": false, "bulkOperations": false, "apiAccess": false, "maxRecordsPerRequest": 5 } }),
            ),
        ),
        ("change the parent", with(json!({ "parentId": guest_role }))),
    ]
}

async fn role_id(app: &TestApp, token: &str, name: &str) -> String {
    let r = app.gql("{ roles { id name } }", json!({}), Some(token)).await;
    r.ok()["roles"].as_array().unwrap().iter().find(|x| x["name"] == name).unwrap()["id"].as_str().unwrap().to_owned()
}

async fn create_user(app: &TestApp, owner: &str, username: &str, groups: &[&str]) -> String {
    let r = app
        .gql(
            "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
            json!({ "i": { "username": username, "email": format!("{username}@example.com"), "password": PASSWORD, "groupIds": groups } }),
            Some(owner),
        )
        .await;
    r.ok()["createUser"]["id"].as_str().unwrap().to_owned()
}

async fn assign(app: &TestApp, token: &str, input: Value) {
    app.gql("mutation($i: AssignRoleInput!) { assignRole(input: $i) { id } }", json!({ "i": input }), Some(token)).await.ok();
}

async fn role_row(app: &TestApp, id: &str) -> String {
    let rows = app.sql_values("SELECT * FROM roles WHERE id = ?", vec![uuid::Uuid::parse_str(id).unwrap().into()]).await;
    format!("{:?}", rows[0])
}

#[tokio::test]
async fn role_edits_are_refused_when_a_holder_ranks_at_or_above_the_actor() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let guest_role = role_id(&app, &owner, "Guest").await;
    let holders = [Holder::Owner, Holder::PeerManager, Holder::Staff, Holder::Nobody];
    let paths = [Path::Direct, Path::Group, Path::Inherited];

    // One group and one user per holder rank. Everything is assigned before the users
    // are promoted, since afterwards not even the Owner may act on a second Owner.
    let mut users = std::collections::HashMap::new();
    let mut groups = std::collections::HashMap::new();
    for h in holders {
        let g = app.gql("mutation($n: String!) { createGroup(name: $n) { id } }", json!({ "n": format!("G {h:?}") }), Some(&owner)).await;
        let g = g.ok()["createGroup"]["id"].as_str().unwrap().to_owned();
        if h != Holder::Nobody {
            let u = create_user(&app, &owner, &format!("holder{h:?}").to_lowercase(), &[&g]).await;
            users.insert(format!("{h:?}"), u);
        }
        groups.insert(format!("{h:?}"), g);
    }
    let mut cases = Vec::new();
    for h in holders {
        for p in paths {
            let name = format!("Target {h:?} {p:?}");
            let target = app.create_role(&owner, base(&name)).await;
            let user = users.get(&format!("{h:?}")).cloned();
            match p {
                Path::Direct => {
                    if let Some(u) = &user {
                        assign(&app, &owner, json!({ "roleId": target, "userId": u })).await;
                    }
                }
                Path::Group => assign(&app, &owner, json!({ "roleId": target, "groupId": groups[&format!("{h:?}")] })).await,
                Path::Inherited => {
                    let mut child = base(&format!("Child {h:?}"));
                    child["parentId"] = json!(target);
                    let child = app.create_role(&owner, child).await;
                    if let Some(u) = &user {
                        assign(&app, &owner, json!({ "roleId": child, "userId": u })).await;
                    }
                }
            }
            cases.push((h, p, name, target));
        }
    }
    for (h, builtin) in [(Holder::Owner, "Owner"), (Holder::PeerManager, "Manager"), (Holder::Staff, "Staff")] {
        let role = role_id(&app, &owner, builtin).await;
        assign(&app, &owner, json!({ "roleId": role, "userId": users[&format!("{h:?}")] })).await;
    }

    let manager = app.login("demo", "manager").await;
    let mut mismatches = Vec::new();
    for (h, p, name, target) in &cases {
        let must_refuse = matches!(h, Holder::Owner | Holder::PeerManager);
        for (op, input) in edits(name, &guest_role) {
            let before = role_row(&app, target).await;
            let r = app.gql(UPDATE, json!({ "id": target, "i": input }), Some(&manager)).await;
            let refused = r.code() == Some("FORBIDDEN");
            if refused != must_refuse || (!refused && r.code().is_some()) {
                mismatches.push(format!("{op} / holder {h:?} / {p:?}: {}", r.body));
            }
            if refused {
                assert_eq!(role_row(&app, target).await, before, "{op} / {h:?} / {p:?}: a refused edit changed the role");
                let msg = r.body["errors"][0]["message"].as_str().unwrap().to_owned();
                let audited = app
                    .count(
                        "SELECT COUNT(*) FROM audit_entries WHERE action = 'api.mutation' AND outcome = 'denied' AND target_id = 'updateRole' AND reason = ?",
                        vec![msg.clone().into()],
                    )
                    .await;
                assert!(audited >= 1, "{op} / {h:?} / {p:?}: the refusal is audited with its reason ({msg})");
            }
        }
    }
    assert!(mismatches.is_empty(), "{} cells wrong:\n{}", mismatches.len(), mismatches.join("\n"));

    // The second Owner keeps every power, including reading the audit log.
    let r = app.try_login("demo", "holderowner", PASSWORD).await;
    let owner2 = r.ok()["login"]["token"].as_str().unwrap().to_owned();
    let r = app.gql("{ auditLog(first: 1) { edges { node { id } } } }", json!({}), Some(&owner2)).await;
    assert!(r.ok()["auditLog"].is_object());
}
