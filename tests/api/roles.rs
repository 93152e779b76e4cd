use crate::helpers::TestApp;
use serde_json::{Value, json};

const AUDIT_READ: &str = "{ auditLog(first: 1) { edges { node { id } } } }";

async fn user_id(app: &TestApp, username: &str) -> String {
    let rows = app
        .sql_values(
            "SELECT u.id FROM users u JOIN workspaces w ON u.workspace_id = w.id WHERE w.slug = 'demo' AND u.username_key = ?",
            vec![username.into()],
        )
        .await;
    rows[0].try_get_by_index::<uuid::Uuid>(0).unwrap().to_string()
}

async fn role_id(app: &TestApp, token: &str, name: &str) -> String {
    let r = app.gql("{ roles { id name } }", json!({}), Some(token)).await;
    r.ok()["roles"].as_array().unwrap().iter().find(|x| x["name"] == name).unwrap()["id"].as_str().unwrap().to_owned()
}

const CREATE: &str = "mutation($i: RoleInput!) { createRole(input: $i) { id name rank permissions } }";
const ASSIGN: &str = "mutation($i: AssignRoleInput!) { assignRole(input: $i) { id } }";

async fn create_role(app: &TestApp, token: &str, input: Value) -> String {
    let r = app.gql(CREATE, json!({ "i": input }), Some(token)).await;
    r.ok()["createRole"]["id"].as_str().unwrap().to_owned()
}

async fn assign(app: &TestApp, token: &str, input: Value) -> String {
    let r = app.gql(ASSIGN, json!({ "i": input }), Some(token)).await;
    r.ok()["assignRole"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn me_shows_the_effective_access_of_each_builtin_role() {
    let app = TestApp::spawn().await;
    let q = "{ me { access { permissions rank roles { name } restrictions { dataExport maxRecordsPerRequest } scopes { module scope } fields { field access } } } }";
    let owner = app.login("demo", "owner").await;
    let a = app.gql(q, json!({}), Some(&owner)).await.ok()["me"]["access"].clone();
    assert_eq!(a["permissions"].as_array().unwrap().len(), 44);
    assert_eq!(a["rank"], 100);
    assert_eq!(a["roles"][0]["name"], "Owner");
    assert!(a["fields"].as_array().unwrap().iter().all(|f| f["access"] == "WRITE"));

    let staff = app.login("demo", "staff").await;
    let a = app.gql(q, json!({}), Some(&staff)).await.ok()["me"]["access"].clone();
    let scope = |m: &str| a["scopes"].as_array().unwrap().iter().find(|s| s["module"] == m).unwrap()["scope"].clone();
    assert_eq!(scope("CUSTOMERS"), "ASSIGNED");
    assert_eq!(scope("PRODUCTS"), "ALL");
    assert_eq!(scope("PAYMENTS"), "NONE");
    assert!(!a["permissions"].as_array().unwrap().contains(&json!("TEAM_WRITE")));
    assert_eq!(a["restrictions"]["dataExport"], false);

    let guest = app.login("demo", "guest").await;
    let a = app.gql(q, json!({}), Some(&guest)).await.ok()["me"]["access"].clone();
    assert!(a["fields"].as_array().unwrap().iter().all(|f| f["access"] == "NONE"), "guest sees no sensitive field");
    assert!(a["permissions"].as_array().unwrap().iter().all(|p| p.as_str().unwrap().ends_with("_READ")));
}

/// Every escalation path is refused with FORBIDDEN and changes nothing.
#[tokio::test]
async fn every_escalation_path_is_refused() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let manager = app.login("demo", "manager").await;
    let staff = app.login("demo", "staff").await;
    let owner_role = role_id(&app, &owner, "Owner").await;
    let manager_role = role_id(&app, &owner, "Manager").await;
    let staff_role = role_id(&app, &owner, "Staff").await;
    let (owner_id, manager_id, staff_id) = (user_id(&app, "owner").await, user_id(&app, "manager").await, user_id(&app, "staff").await);
    let base = |extra: Value| {
        let mut v = json!({ "name": "Escalator", "rank": 20, "permissions": ["CUSTOMERS_READ"], "scopes": [{ "module": "CUSTOMERS", "scope": "ASSIGNED" }] });
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    let roles_before = app.count("SELECT COUNT(*) FROM roles", vec![]).await;
    let assignments_before = app.count("SELECT COUNT(*) FROM role_assignments", vec![]).await;

    let cases: Vec<(&str, &str, &str, Value)> = vec![
        ("a permission the manager lacks", &manager, CREATE, json!({ "i": base(json!({ "permissions": ["BILLING_READ"] })) })),
        (
            "a wider scope than the manager's",
            &manager,
            CREATE,
            json!({ "i": base(json!({ "scopes": [{ "module": "CUSTOMERS", "scope": "ALL" }] })) }),
        ),
        (
            "more field access than the manager's",
            &manager,
            CREATE,
            json!({ "i": base(json!({ "fields": [{ "field": "CUSTOMER_TAX_ID", "access": "WRITE" }] })) }),
        ),
        ("looser restrictions", &staff, CREATE, json!({ "i": base(json!({})) })),
        ("a rank at the manager's own", &manager, CREATE, json!({ "i": base(json!({ "rank": 75 })) })),
        ("a parent ranked above the manager", &manager, CREATE, json!({ "i": base(json!({ "parentId": owner_role })) })),
        ("assigning Owner", &manager, ASSIGN, json!({ "i": { "roleId": owner_role, "userId": staff_id } })),
        ("assigning to a higher-ranked user", &manager, ASSIGN, json!({ "i": { "roleId": staff_role, "userId": owner_id } })),
        ("assigning to oneself", &manager, ASSIGN, json!({ "i": { "roleId": staff_role, "userId": manager_id } })),
        ("owner assigning to themselves", &owner, ASSIGN, json!({ "i": { "roleId": staff_role, "userId": owner_id } })),
        (
            "editing Owner",
            &owner,
            "mutation($i: RoleInput!, $id: ID!) { updateRole(id: $id, input: $i) { id } }",
            json!({ "id": owner_role, "i": base(json!({})) }),
        ),
        (
            "editing the manager's own rank of role",
            &manager,
            "mutation($i: RoleInput!, $id: ID!) { updateRole(id: $id, input: $i) { id } }",
            json!({ "id": manager_role, "i": base(json!({ "rank": 70 })) }),
        ),
        ("staff managing roles at all", &staff, ASSIGN, json!({ "i": { "roleId": staff_role, "userId": staff_id } })),
    ];
    for (why, token, query, vars) in cases {
        let r = app.gql(query, vars, Some(token)).await;
        assert_eq!(r.code(), Some("FORBIDDEN"), "{why}: {}", r.body);
    }
    // The owner's own Owner assignment cannot be removed (it is theirs, and the last).
    let own = app.gql("query($u: ID) { roleAssignments(userId: $u) { id } }", json!({ "u": owner_id }), Some(&owner)).await;
    let own_id = own.ok()["roleAssignments"][0]["id"].clone();
    let r = app.gql("mutation($id: ID!) { unassignRole(id: $id) }", json!({ "id": own_id }), Some(&owner)).await;
    assert_eq!(r.code(), Some("FORBIDDEN"), "{}", r.body);

    assert_eq!(app.count("SELECT COUNT(*) FROM roles", vec![]).await, roles_before);
    assert_eq!(app.count("SELECT COUNT(*) FROM role_assignments", vec![]).await, assignments_before);
    // The still-allowed path works: the manager may give a lower role to staff.
    let helper = create_role(&app, &manager, base(json!({ "name": "Helper", "permissions": ["CUSTOMERS_READ", "ROLES_READ"] }))).await;
    assign(&app, &manager, json!({ "roleId": helper, "userId": staff_id })).await;
}

#[tokio::test]
async fn nobody_removes_their_own_roles_write() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let manager_id = user_id(&app, "manager").await;
    let manager_role = role_id(&app, &owner, "Manager").await;
    // Owner lowers the Manager role's rank so the manager holds a role it may edit.
    let helper = create_role(&app, &owner, json!({ "name": "Deputy", "rank": 60, "permissions": ["ROLES_READ"] })).await;
    assign(&app, &owner, json!({ "roleId": helper, "userId": manager_id })).await;
    let manager = app.login("demo", "manager").await;
    let update = "mutation($id: ID!, $i: RoleInput!) { updateRole(id: $id, input: $i) { denies } }";
    let r = app
        .gql(
            update,
            json!({ "id": helper, "i": { "name": "Deputy", "rank": 60, "permissions": ["ROLES_READ"], "denies": ["ROLES_WRITE"] } }),
            Some(&manager),
        )
        .await;
    assert_eq!(r.code(), Some("FORBIDDEN"), "{}", r.body);
    assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("roles.write"));
    let _ = manager_role;
}

#[tokio::test]
async fn a_role_change_takes_effect_on_the_next_request_on_every_instance() {
    let a = TestApp::spawn().await;
    let b = a.another_instance().await;
    let owner = a.login("demo", "owner").await;
    let staff = a.login("demo", "staff").await;
    let staff_id = user_id(&a, "staff").await;
    assert_eq!(b.gql(AUDIT_READ, json!({}), Some(&staff)).await.code(), Some("FORBIDDEN"));

    let auditor = create_role(&a, &owner, json!({ "name": "Auditor", "rank": 20, "permissions": ["AUDIT_READ"] })).await;
    let assignment = assign(&a, &owner, json!({ "roleId": auditor, "userId": staff_id })).await;
    assert!(b.gql(AUDIT_READ, json!({}), Some(&staff)).await.ok()["auditLog"].is_object(), "granted on the other instance at once");

    // Editing the role away from the permission is seen at once too.
    let r = a
        .gql(
            "mutation($id: ID!, $i: RoleInput!) { updateRole(id: $id, input: $i) { id } }",
            json!({ "id": auditor, "i": { "name": "Auditor", "rank": 20, "permissions": ["REPORTS_READ"] } }),
            Some(&owner),
        )
        .await;
    r.ok();
    assert_eq!(b.gql(AUDIT_READ, json!({}), Some(&staff)).await.code(), Some("FORBIDDEN"));
    assert_eq!(a.gql(AUDIT_READ, json!({}), Some(&staff)).await.code(), Some("FORBIDDEN"));

    let r = b.gql("mutation($id: ID!) { unassignRole(id: $id) }", json!({ "id": assignment }), Some(&owner)).await;
    assert_eq!(r.ok()["unassignRole"], true);
    let me = a.gql("{ me { access { roles { name } } } }", json!({}), Some(&staff)).await;
    assert_eq!(me.ok()["me"]["access"]["roles"], json!([{ "name": "Staff" }]));
}

#[tokio::test]
async fn temporary_conditional_group_and_deny_grants() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let staff = app.login("demo", "staff").await;
    let staff_id = user_id(&app, "staff").await;
    let auditor = create_role(&app, &owner, json!({ "name": "Auditor", "rank": 20, "permissions": ["AUDIT_READ"] })).await;
    let allowed = |r: crate::helpers::Reply| r.code().is_none();

    // Temporary: from an hour from now for one hour.
    let now = app.clock_now();
    let temp = assign(
        &app,
        &owner,
        json!({ "roleId": auditor, "userId": staff_id, "validFrom": (now + chrono::Duration::hours(1)).to_rfc3339(), "validUntil": (now + chrono::Duration::hours(2)).to_rfc3339() }),
    )
    .await;
    let mut seen = Vec::new();
    for step in 0..3 {
        // Keep the session alive across the jumps.
        seen.push(allowed(app.gql(AUDIT_READ, json!({}), Some(&staff)).await));
        if step < 2 {
            for _ in 0..4 {
                app.clock.advance(chrono::Duration::minutes(15));
                app.me(&staff).await.ok();
                app.me(&owner).await.ok();
            }
        }
    }
    assert_eq!(seen, [false, true, false], "before, during, after the window");
    // Two hours on, role changes need the owner's password again (step-up).
    let reauth = "mutation($p: String) { reauthenticate(password: $p) { stepUpValidUntil } }";
    app.gql(reauth, json!({ "p": crate::helpers::DEMO_PASSWORD }), Some(&owner)).await.ok();
    app.gql("mutation($id: ID!) { unassignRole(id: $id) }", json!({ "id": temp }), Some(&owner)).await.ok();

    // Conditional on the network: tests connect from 127.0.0.1.
    let away = assign(&app, &owner, json!({ "roleId": auditor, "userId": staff_id, "networks": ["10.0.0.0/8", "2001:db8::/32"] })).await;
    assert!(!allowed(app.gql(AUDIT_READ, json!({}), Some(&staff)).await), "not from 127.0.0.1");
    let here = assign(&app, &owner, json!({ "roleId": auditor, "userId": staff_id, "networks": ["127.0.0.0/8"] })).await;
    assert!(allowed(app.gql(AUDIT_READ, json!({}), Some(&staff)).await), "from the loopback network");
    for id in [away, here] {
        app.gql("mutation($id: ID!) { unassignRole(id: $id) }", json!({ "id": id }), Some(&owner)).await.ok();
    }
    let r = app.gql(ASSIGN, json!({ "i": { "roleId": auditor, "userId": staff_id, "networks": ["not-a-cidr"] } }), Some(&owner)).await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"));
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "networks");

    // Conditional on two-factor: sessions have not passed it, so it does not count.
    let strong = assign(&app, &owner, json!({ "roleId": auditor, "userId": staff_id, "requireTwoFactor": true })).await;
    assert!(!allowed(app.gql(AUDIT_READ, json!({}), Some(&staff)).await));
    app.gql("mutation($id: ID!) { unassignRole(id: $id) }", json!({ "id": strong }), Some(&owner)).await.ok();

    // Through a group: staff's primary group is North.
    let north = app
        .sql_values(
            "SELECT id FROM groups g WHERE name = 'North' AND workspace_id = (SELECT workspace_id FROM users WHERE username_key = 'staff')",
            vec![],
        )
        .await;
    let north: uuid::Uuid = north[0].try_get_by_index(0).unwrap();
    let by_group = assign(&app, &owner, json!({ "roleId": auditor, "groupId": north.to_string() })).await;
    assert!(allowed(app.gql(AUDIT_READ, json!({}), Some(&staff)).await), "granted through the group");
    let explained = app
        .gql(
            "query($u: ID!) { explainAccess(userId: $u, permission: AUDIT_READ) { allowed reasons { kind role via } } }",
            json!({ "u": staff_id }),
            Some(&owner),
        )
        .await;
    let e = &explained.ok()["explainAccess"];
    assert_eq!(e["allowed"], true);
    assert!(
        e["reasons"].as_array().unwrap().iter().any(|r| r["kind"] == "GRANT" && r["role"] == "Auditor" && r["via"] == "group North"),
        "{e}"
    );

    // Deny wins over the group grant.
    let no_audit = create_role(&app, &owner, json!({ "name": "No audit", "rank": 5, "denies": ["AUDIT_READ"] })).await;
    assign(&app, &owner, json!({ "roleId": no_audit, "userId": staff_id })).await;
    assert!(!allowed(app.gql(AUDIT_READ, json!({}), Some(&staff)).await), "deny wins");
    let explained = app
        .gql(
            "query($u: ID!) { explainAccess(userId: $u, permission: AUDIT_READ) { allowed reasons { kind role } } }",
            json!({ "u": staff_id }),
            Some(&owner),
        )
        .await;
    let e = &explained.ok()["explainAccess"];
    assert_eq!(e["allowed"], false);
    assert!(e["reasons"].as_array().unwrap().iter().any(|r| r["kind"] == "DENY" && r["role"] == "No audit"), "{e}");
    let _ = by_group;
}

#[tokio::test]
async fn role_changes_are_audited_with_before_and_after() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let id = create_role(
        &app,
        &owner,
        json!({ "name": "Clerk", "rank": 15, "permissions": ["CUSTOMERS_READ"], "scopes": [{ "module": "CUSTOMERS", "scope": "TEAM" }] }),
    )
    .await;
    let r = app
        .gql(
            "mutation($id: ID!, $i: RoleInput!) { updateRole(id: $id, input: $i) { permissions } }",
            json!({ "id": id, "i": { "name": "Clerk", "rank": 15, "permissions": ["CUSTOMERS_READ", "ORDERS_READ"] } }),
            Some(&owner),
        )
        .await;
    assert_eq!(r.ok()["updateRole"]["permissions"], json!(["CUSTOMERS_READ", "ORDERS_READ"]));
    let rows =
        app.sql_values("SELECT changes FROM audit_entries WHERE action = 'role.updated' AND target_id = ?", vec![id.clone().into()]).await;
    let changes = rows[0].try_get_by_index::<Option<Value>>(0).unwrap().unwrap();
    assert_eq!(changes["permissions"]["before"], json!(["customers.read"]));
    assert_eq!(changes["permissions"]["after"], json!(["customers.read", "orders.read"]));
    assert_eq!(changes["scopes"]["before"], json!({ "customers": "team" }));
    assert!(changes.get("name").is_none(), "unchanged keys are left out");
    let dup = app.gql(CREATE, json!({ "i": { "name": "clerk", "rank": 15 } }), Some(&owner)).await;
    assert_eq!(dup.code(), Some("CONFLICT"));
    let r = app.gql("mutation($id: ID!) { deleteRole(id: $id) }", json!({ "id": id }), Some(&owner)).await;
    assert_eq!(r.ok()["deleteRole"], true);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_entries WHERE action IN ('role.created', 'role.updated', 'role.deleted')", vec![]).await,
        3
    );
    let staff_role = role_id(&app, &owner, "Staff").await;
    let r = app.gql("mutation($id: ID!) { deleteRole(id: $id) }", json!({ "id": staff_role }), Some(&owner)).await;
    assert_eq!(r.code(), Some("CONFLICT"), "built-in roles stay");
}

/// Explaining a record does not reveal records outside the caller's own scope.
#[tokio::test]
async fn explanations_do_not_reveal_records_outside_the_callers_scope() {
    let app = TestApp::spawn().await;
    let manager = app.login("demo", "manager").await;
    let staff_id = user_id(&app, "staff").await;
    let record = |owner: &'static str| {
        let app = &app;
        async move {
            let rows = app
                .sql_values(
                    "SELECT c.id FROM customers c JOIN users u ON c.owner_id = u.id WHERE u.username_key = ? ORDER BY c.id",
                    vec![owner.into()],
                )
                .await;
            rows[0].try_get_by_index::<uuid::Uuid>(0).unwrap().to_string()
        }
    };
    let q = "query($u: ID!, $r: ID) { explainAccess(userId: $u, permission: CUSTOMERS_READ, recordId: $r) { allowed recordInScope } }";
    // In the manager's department: explained.
    let r = app.gql(q, json!({ "u": staff_id, "r": record("sam").await }), Some(&manager)).await;
    assert_eq!(r.ok()["explainAccess"]["recordInScope"], false);
    // Outside it (guest's, in Support): answered like a missing record.
    let r = app.gql(q, json!({ "u": staff_id, "r": record("guest").await }), Some(&manager)).await;
    assert_eq!(r.code(), Some("NOT_FOUND"));
    let r = app.gql(q, json!({ "u": staff_id, "r": uuid::Uuid::now_v7().to_string() }), Some(&manager)).await;
    assert_eq!(r.code(), Some("NOT_FOUND"));
}
