use crate::helpers::TestApp;
use serde_json::{Value, json};

async fn customer_ids_of(app: &TestApp, owner: &str) -> Vec<String> {
    let rows = app
        .sql_values(
            "SELECT c.id FROM customers c JOIN users u ON c.owner_id = u.id JOIN workspaces w ON c.workspace_id = w.id WHERE w.slug = 'demo' AND u.username_key = ? ORDER BY c.id",
            vec![owner.into()],
        )
        .await;
    rows.iter().map(|r| r.try_get_by_index::<uuid::Uuid>(0).unwrap().to_string()).collect()
}

const CREATE: &str =
    "mutation($i: CustomerInput!) { createCustomer(input: $i) { id name email ownerId creditLimit history { action changes } } }";

#[tokio::test]
async fn staff_create_and_edit_their_customers_with_validated_input_and_history() {
    let app = TestApp::spawn().await;
    let staff = app.login("demo", "staff").await;
    let r = app
        .gql(
            CREATE,
            json!({ "i": { "name": "Acme Widgets", "email": "buyer@acme-widgets.example", "notes": "met at fair" } }),
            Some(&staff),
        )
        .await;
    let c = r.ok()["createCustomer"].clone();
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(c["email"], "buyer@acme-widgets.example");

    for (input, field) in [
        (json!({ "name": "" }), "name"),
        (json!({ "name": "X", "email": "not-an-email" }), "email"),
        (json!({ "name": "X", "creditLimit": "lots" }), "creditLimit"),
    ] {
        let r = app.gql(CREATE, json!({ "i": input }), Some(&staff)).await;
        // creditLimit is checked for field access first: staff only see it masked.
        let want = if field == "creditLimit" { "FIELD_FORBIDDEN" } else { "BAD_USER_INPUT" };
        assert_eq!(r.code(), Some(want), "{field}: {}", r.body);
    }
    let owner = app.login("demo", "owner").await;
    let r = app.gql(CREATE, json!({ "i": { "name": "X", "creditLimit": "12.345" } }), Some(&owner)).await;
    assert_eq!((r.code(), r.body["errors"][0]["extensions"]["field"].as_str()), (Some("BAD_USER_INPUT"), Some("creditLimit")));

    let upd =
        "mutation($id: ID!, $i: CustomerInput!) { updateCustomer(id: $id, input: $i) { name status email history { action changes } } }";
    let r = app.gql(upd, json!({ "id": id, "i": { "status": "ACTIVE", "email": "ap@acme-widgets.example" } }), Some(&staff)).await;
    assert_eq!(r.ok()["updateCustomer"]["status"], "ACTIVE");
    // A change's own entry is written when it commits, so read the history afterwards.
    let r = app.gql("query($id: ID!) { customer(id: $id) { history { action changes } } }", json!({ "id": id }), Some(&staff)).await;
    let history = r.ok()["customer"]["history"].as_array().unwrap().clone();
    assert_eq!(history.iter().map(|h| h["action"].as_str().unwrap()).collect::<Vec<_>>(), ["customer.updated", "customer.created"]);
    assert_eq!(history[0]["changes"]["status"], json!({ "before": "lead", "after": "active" }));
    assert_eq!(history[0]["changes"]["email"], json!({ "before": "[redacted]", "after": "[redacted]" }), "sensitive values never logged");
    assert!(!Value::Array(history).to_string().contains("acme-widgets.example"));

    // Staff may not set a field they only see masked; nothing changes.
    let r = app.gql(upd, json!({ "id": id, "i": { "name": "Renamed", "taxId": "GB1" } }), Some(&staff)).await;
    assert_eq!(r.code(), Some("FIELD_FORBIDDEN"));
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "customer.taxId");
    assert_eq!(app.count("SELECT COUNT(*) FROM customers WHERE name = 'Renamed'", vec![]).await, 0);

    // Reassigning moves the record out of staff's assigned scope.
    let sam_id = app.sql_values("SELECT id FROM users WHERE username_key = 'sam'", vec![]).await[0]
        .try_get_by_index::<uuid::Uuid>(0)
        .unwrap()
        .to_string();
    let r = app
        .gql(
            "mutation($id: ID!, $o: ID!) { reassignCustomer(id: $id, ownerId: $o) { ownerId } }",
            json!({ "id": id, "o": sam_id }),
            Some(&staff),
        )
        .await;
    assert_eq!(r.ok()["reassignCustomer"]["ownerId"], sam_id.as_str());
    assert_eq!(app.gql("query($id: ID!) { customer(id: $id) { id } }", json!({ "id": id }), Some(&staff)).await.code(), Some("NOT_FOUND"));
}

#[tokio::test]
async fn filters_orders_and_page_sizes_respect_field_access_and_restrictions() {
    let app = TestApp::spawn().await;
    let guest = app.login("demo", "guest").await;
    let staff = app.login("demo", "staff").await;
    let r = app.gql("{ customers(filter: { email: \"x@y.example\" }) { totalCount } }", json!({}), Some(&guest)).await;
    assert_eq!(r.code(), Some("FIELD_FORBIDDEN"), "filtering by a field one cannot read");
    let r = app.gql("{ customers(orderBy: { field: CREDIT_LIMIT }) { totalCount } }", json!({}), Some(&staff)).await;
    assert_eq!(r.code(), Some("FIELD_FORBIDDEN"), "ordering by a masked field");
    let r = app.gql("{ customers(first: 60) { totalCount } }", json!({}), Some(&guest)).await;
    assert_eq!(r.code(), Some("FORBIDDEN"), "guest may read at most 50 per request");
    let r = app
        .gql(
            "{ customers(first: 1, filter: { search: \"wide\" }) { totalCount edges { node { name } } pageInfo { hasNextPage } } }",
            json!({}),
            Some(&staff),
        )
        .await;
    assert_eq!(r.ok()["customers"]["totalCount"], 1);
    // LIKE wildcards in a search are literal.
    let r = app.gql("{ customers(filter: { search: \"%\" }) { totalCount } }", json!({}), Some(&staff)).await;
    assert_eq!(r.ok()["customers"]["totalCount"], 0);
    let owner = app.login("demo", "owner").await;
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let r = app.gql("query($a: String) { customers(first: 3, after: $a, orderBy: { field: NAME }) { edges { cursor node { name } } pageInfo { hasNextPage endCursor } } }", json!({ "a": after }), Some(&owner)).await;
        let c = r.ok()["customers"].clone();
        seen.extend(c["edges"].as_array().unwrap().iter().map(|e| e["node"]["name"].as_str().unwrap().to_owned()));
        if c["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = c["pageInfo"]["endCursor"].clone();
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen.len(), 10);
    assert_eq!(seen, sorted);
}

const EXPORT: &str = "mutation($f: ExportFormat!) { exportCustomers(format: $f) { rows content } }";

#[tokio::test]
async fn exports_follow_scope_field_access_and_restrictions() {
    let app = TestApp::spawn().await;
    let manager = app.login("demo", "manager").await;
    let r = app.gql(EXPORT, json!({ "f": "CSV" }), Some(&manager)).await;
    let e = r.ok()["exportCustomers"].clone();
    assert_eq!(e["rows"], 6, "the Sales department's customers");
    let csv = e["content"].as_str().unwrap();
    assert!(csv.starts_with("id,name,status,ownerId,departmentId,teamId,groupId,email,phone,taxId,notes,creditLimit,createdAt\n"), "{csv}");
    assert_eq!(csv.lines().count(), 7);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_entries WHERE action = 'customers.exported'", vec![]).await, 1);

    for who in ["staff", "guest"] {
        let t = app.login("demo", who).await;
        assert_eq!(app.gql(EXPORT, json!({ "f": "JSON" }), Some(&t)).await.code(), Some("FORBIDDEN"), "{who}");
    }

    // An exporter who sees emails masked and tax ids not at all exports them that way.
    let owner = app.login("demo", "owner").await;
    let role = app
        .gql(
            "mutation($i: RoleInput!) { createRole(input: $i) { id } }",
            json!({ "i": { "name": "Exporter", "rank": 30, "permissions": ["CUSTOMERS_READ", "CUSTOMERS_EXPORT"], "scopes": [{ "module": "CUSTOMERS", "scope": "ALL" }],
                "fields": [{ "field": "CUSTOMER_EMAIL", "access": "MASKED" }], "restrictions": { "dataExport": true, "bulkOperations": false, "apiAccess": false, "maxRecordsPerRequest": 100 } } }),
            Some(&owner),
        )
        .await
        .ok()["createRole"]["id"]
        .clone();
    let guest_id = app.sql_values("SELECT id FROM users WHERE username_key = 'guest'", vec![]).await[0]
        .try_get_by_index::<uuid::Uuid>(0)
        .unwrap()
        .to_string();
    app.gql(
        "mutation($i: AssignRoleInput!) { assignRole(input: $i) { id } }",
        json!({ "i": { "roleId": role, "userId": guest_id } }),
        Some(&owner),
    )
    .await
    .ok();
    let guest = app.login("demo", "guest").await;
    let r = app.gql(EXPORT, json!({ "f": "JSON" }), Some(&guest)).await;
    let rows: Vec<Value> = serde_json::from_str(r.ok()["exportCustomers"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(rows.len(), 10);
    let full = app.gql(EXPORT, json!({ "f": "JSON" }), Some(&owner)).await;
    let full_rows: Vec<Value> = serde_json::from_str(full.ok()["exportCustomers"]["content"].as_str().unwrap()).unwrap();
    let raw = r.body.to_string();
    for (row, real) in rows.iter().zip(&full_rows) {
        assert!(row["email"].as_str().unwrap().starts_with("•••@"));
        assert!(row["taxId"].is_null());
        assert!(!raw.contains(real["email"].as_str().unwrap()) && !raw.contains(real["taxId"].as_str().unwrap()));
    }

    // The same permission without the dataExport restriction is refused.
    let r = app
        .gql(
            "mutation($id: ID!, $i: RoleInput!) { updateRole(id: $id, input: $i) { id } }",
            json!({ "id": role, "i": { "name": "Exporter", "rank": 30, "permissions": ["CUSTOMERS_READ", "CUSTOMERS_EXPORT"], "scopes": [{ "module": "CUSTOMERS", "scope": "ALL" }] } }),
            Some(&owner),
        )
        .await;
    r.ok();
    let r = app.gql(EXPORT, json!({ "f": "CSV" }), Some(&guest)).await;
    assert_eq!(r.code(), Some("FORBIDDEN"));
    assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("data export"));
}

#[tokio::test]
async fn csv_exports_cannot_carry_formulas() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    app.gql(CREATE, json!({ "i": { "name": "=HYPERLINK(\"http://evil.example\",\"x\")" } }), Some(&owner)).await.ok();
    let r = app.gql(EXPORT, json!({ "f": "CSV" }), Some(&owner)).await;
    let csv = r.ok()["exportCustomers"]["content"].as_str().unwrap().to_owned();
    assert!(csv.contains("\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\""), "{csv}");
}

#[tokio::test]
async fn bulk_operations_are_all_or_nothing_and_need_the_restriction() {
    let app = TestApp::spawn().await;
    let manager = app.login("demo", "manager").await;
    let bulk = "mutation($ids: [ID!]!) { bulkUpdateCustomers(ids: $ids, input: { status: INACTIVE }) { status } }";
    let mine: Vec<String> = [customer_ids_of(&app, "manager").await, customer_ids_of(&app, "staff").await].concat();
    let outsider = customer_ids_of(&app, "guest").await;
    let inactive = || app.count("SELECT COUNT(*) FROM customers WHERE status = 'inactive'", vec![]);
    let before = inactive().await;

    let mut with_outsider = mine.clone();
    with_outsider.push(outsider[0].clone());
    let r = app.gql(bulk, json!({ "ids": with_outsider }), Some(&manager)).await;
    assert_eq!(r.code(), Some("NOT_FOUND"));
    assert_eq!(inactive().await, before, "nothing written when one id is out of scope");

    let r = app.gql(bulk, json!({ "ids": mine }), Some(&manager)).await;
    assert_eq!(r.ok()["bulkUpdateCustomers"].as_array().unwrap().len(), 4);
    assert!(inactive().await >= 4);

    let staff = app.login("demo", "staff").await;
    let r = app.gql(bulk, json!({ "ids": customer_ids_of(&app, "staff").await }), Some(&staff)).await;
    assert_eq!(r.code(), Some("FORBIDDEN"), "staff have no bulk operations");
    let r = app
        .gql(
            "mutation($ids: [ID!]!) { bulkDeleteCustomers(ids: $ids) }",
            json!({ "ids": customer_ids_of(&app, "staff").await }),
            Some(&manager),
        )
        .await;
    assert_eq!(r.ok()["bulkDeleteCustomers"], 2);
    let r = app.gql("mutation { bulkDeleteCustomers(ids: []) }", json!({}), Some(&manager)).await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"));
}

#[tokio::test]
async fn a_page_of_records_gets_each_its_own_history() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let ids = customer_ids_of(&app, "staff").await;
    app.gql("mutation($id: ID!) { updateCustomer(id: $id, input: { status: ACTIVE }) { id } }", json!({ "id": ids[0] }), Some(&owner))
        .await
        .ok();
    let r = app.gql("{ customers(first: 50) { edges { node { id history { targetId action } } } } }", json!({}), Some(&owner)).await;
    let edges = r.ok()["customers"]["edges"].as_array().unwrap().clone();
    assert_eq!(edges.len(), 10);
    for e in &edges {
        let id = e["node"]["id"].as_str().unwrap();
        let h = e["node"]["history"].as_array().unwrap();
        assert!(!h.is_empty(), "{id} has no history");
        assert!(h.iter().all(|x| x["targetId"] == id), "{id} got another record's entries");
        let updated = h.iter().any(|x| x["action"] == "customer.updated");
        assert_eq!(updated, id == ids[0]);
    }
}

/// A new customer can be assigned to someone else, but only to a user the author's
/// scope covers; the author stays its creator.
#[tokio::test]
async fn a_customer_is_created_for_another_user_only_within_the_authors_scope() {
    let app = TestApp::spawn().await;
    let create = "mutation($i: CustomerInput!) { createCustomer(input: $i) { id ownerId } }";
    let staff_id = app.user_id("demo", "staff").await;
    let owner = app.login("demo", "owner").await;
    let r = app.gql(create, json!({ "i": { "name": "For staff", "ownerId": staff_id } }), Some(&owner)).await;
    let id = r.ok()["createCustomer"]["id"].as_str().unwrap().to_owned();
    assert_eq!(r.ok()["createCustomer"]["ownerId"], staff_id.as_str());
    let staff = app.login("demo", "staff").await;
    assert_eq!(
        app.gql("query($id: ID!) { customer(id: $id) { name } }", json!({ "id": id }), Some(&staff)).await.ok()["customer"]["name"],
        "For staff"
    );
    let creator = app.sql_values("SELECT created_by FROM customers WHERE id = ?", vec![uuid::Uuid::parse_str(&id).unwrap().into()]).await
        [0]
    .try_get_by_index::<uuid::Uuid>(0)
    .unwrap();
    assert_eq!(creator.to_string(), app.user_id("demo", "owner").await);

    // Staff reach only their own records: they cannot place one for anybody else.
    let manager_id = app.user_id("demo", "manager").await;
    let r = app.gql(create, json!({ "i": { "name": "Sneaky", "ownerId": manager_id } }), Some(&staff)).await;
    assert_eq!(r.code(), Some("FORBIDDEN"), "{}", r.body);
    // A department-wide manager places records inside the department, not outside it.
    let outside = app
        .sql_values(
            "SELECT u.id FROM users u JOIN workspaces w ON w.id = u.workspace_id WHERE w.slug = 'demo' AND u.active AND u.department_id IS NOT NULL \
             AND u.department_id <> (SELECT department_id FROM users WHERE id = ?)",
            vec![uuid::Uuid::parse_str(&manager_id).unwrap().into()],
        )
        .await;
    let manager = app.login("demo", "manager").await;
    let other: uuid::Uuid = outside.first().expect("a demo user of another department").try_get_by_index(0).unwrap();
    let r = app.gql(create, json!({ "i": { "name": "Elsewhere", "ownerId": other.to_string() } }), Some(&manager)).await;
    assert_eq!(r.code(), Some("FORBIDDEN"), "{}", r.body);
    let inside = app
        .sql_values(
            "SELECT u.id FROM users u WHERE u.active AND u.id <> ? AND u.department_id = (SELECT department_id FROM users WHERE id = ?)",
            vec![uuid::Uuid::parse_str(&manager_id).unwrap().into(), uuid::Uuid::parse_str(&manager_id).unwrap().into()],
        )
        .await;
    let colleague: uuid::Uuid = inside[0].try_get_by_index(0).unwrap();
    let r = app.gql(create, json!({ "i": { "name": "Colleague's", "ownerId": colleague.to_string() } }), Some(&manager)).await;
    assert_eq!(r.ok()["createCustomer"]["ownerId"], colleague.to_string());

    // Nobody is assigned a customer after leaving, and the owner is set only on creation.
    let former = app.user_id("demo", "former").await;
    let r = app.gql(create, json!({ "i": { "name": "For a leaver", "ownerId": former } }), Some(&owner)).await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"));
    let r = app
        .gql(
            "mutation($id: ID!, $i: CustomerInput!) { updateCustomer(id: $id, input: $i) { id } }",
            json!({ "id": id, "i": { "ownerId": staff_id } }),
            Some(&owner),
        )
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"));
}
