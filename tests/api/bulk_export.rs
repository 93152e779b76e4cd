//! Bulk changes and exports of every module, through the one generic record path: all
//! or nothing, under the bulkOperations, dataExport and maxRecordsPerRequest
//! restrictions, each record's change audited, each export audited.
use crate::helpers::TestApp;
use serde_json::{Value, json};

/// A module with bulk changes: how to create one of its records, a change that is
/// valid and one that is not, and the field the valid change sets.
struct Bulk {
    module: &'static str,
    create: &'static str,
    input: fn(&str) -> Value,
    update_type: &'static str,
    good: Value,
    bad: Value,
    field: &'static str,
}

fn bulk_cases() -> Vec<Bulk> {
    vec![
        Bulk {
            module: "Products",
            create: "createProduct",
            input: |n| json!({ "name": format!("Bulk {n}"), "sku": format!("BULK-{n}"), "price": "5.00" }),
            update_type: "ProductInput",
            good: json!({ "active": false }),
            bad: json!({ "name": "" }),
            field: "active",
        },
        Bulk {
            module: "Tickets",
            create: "createTicket",
            input: |n| json!({ "subject": format!("Bulk {n}") }),
            update_type: "TicketInput",
            good: json!({ "priority": "HIGH" }),
            bad: json!({ "subject": "" }),
            field: "priority",
        },
        Bulk {
            module: "Quotes",
            create: "createQuote",
            input: |n| json!({ "customerId": "CUSTOMER", "title": format!("Bulk {n}"), "amount": "10.00" }),
            update_type: "QuoteInput",
            good: json!({ "status": "SENT" }),
            bad: json!({ "amount": "lots" }),
            field: "status",
        },
        Bulk {
            module: "Jobs",
            create: "createJob",
            input: |n| json!({ "title": format!("Bulk {n}") }),
            update_type: "JobInput",
            good: json!({ "status": "DONE" }),
            bad: json!({ "title": "" }),
            field: "status",
        },
        Bulk {
            module: "Invoices",
            create: "createInvoice",
            input: |n| json!({ "customerId": "CUSTOMER", "number": format!("BULK-{n}"), "amount": "10.00" }),
            update_type: "InvoiceInput",
            good: json!({ "status": "SENT" }),
            bad: json!({ "number": "BULK-SAME" }),
            field: "status",
        },
    ]
}

async fn a_customer(app: &TestApp, owner: &str) -> String {
    let r = app.gql("{ customers(first: 1) { edges { node { id } } } }", json!({}), Some(owner)).await;
    r.ok()["customers"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned()
}

fn with_customer(mut v: Value, customer: &str) -> Value {
    if v.get("customerId").is_some() {
        v["customerId"] = json!(customer);
    }
    v
}

async fn versions(app: &TestApp, table: &str, ids: &[String]) -> Vec<i64> {
    let mut out = Vec::new();
    for id in ids {
        let q = format!("SELECT version FROM {table} WHERE id = ?");
        let rows = app.sql_values(&q, vec![uuid::Uuid::parse_str(id).unwrap().into()]).await;
        out.push(rows[0].try_get_by_index::<i64>(0).unwrap());
    }
    out
}

#[tokio::test]
async fn bulk_changes_are_all_or_nothing_in_every_module() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let staff = app.login("demo", "staff").await;
    let customer = a_customer(&app, &owner).await;
    for case in bulk_cases() {
        let m = case.module;
        let table = m.to_lowercase();
        let mut ids = Vec::new();
        for n in 0..3 {
            let q = format!("mutation($i: {}!) {{ {}(input: $i) {{ id }} }}", case.update_type, case.create);
            let input = with_customer((case.input)(&format!("{m}-{n}")), &customer);
            let r = app.gql(&q, json!({ "i": input }), Some(&owner)).await;
            ids.push(r.ok()[case.create]["id"].as_str().unwrap().to_owned());
        }
        let update =
            format!("mutation($ids: [ID!]!, $i: {}!) {{ bulkUpdate{m}(ids: $ids, input: $i) {{ id {} }} }}", case.update_type, case.field);
        let delete = format!("mutation($ids: [ID!]!) {{ bulkDelete{m}(ids: $ids) }}");
        let before = versions(&app, &table, &ids).await;

        // Refused without the bulkOperations restriction, or with a record out of
        // reach, or with one bad value: nothing changes.
        let r = app.gql(&update, json!({ "ids": ids, "i": case.good }), Some(&staff)).await;
        assert_eq!(r.code(), Some("FORBIDDEN"), "{m}: staff may not bulk-change: {}", r.body);
        let missing = uuid::Uuid::now_v7().to_string();
        let r = app.gql(&update, json!({ "ids": [ids[0].clone(), missing], "i": case.good }), Some(&owner)).await;
        assert_eq!(r.code(), Some("NOT_FOUND"), "{m}: {}", r.body);
        let r = app.gql(&update, json!({ "ids": [ids[0].clone(), ids[0].clone()], "i": case.good }), Some(&owner)).await;
        assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{m}: the same record twice: {}", r.body);
        let r = app.gql(&update, json!({ "ids": ids, "i": case.bad }), Some(&owner)).await;
        assert!(matches!(r.code(), Some("BAD_USER_INPUT" | "CONFLICT")), "{m}: {}", r.body);
        assert_eq!(versions(&app, &table, &ids).await, before, "{m}: a refused bulk change wrote something");

        // Accepted: every record changed once, with its own entry.
        let entries = |action: String| {
            let app = &app;
            async move { app.count("SELECT COUNT(*) FROM audit_entries WHERE action = ? AND outcome = 'success'", vec![action.into()]).await }
        };
        let record = m.trim_end_matches('s').to_lowercase();
        let updated = entries(format!("{record}.updated")).await;
        let r = app.gql(&update, json!({ "ids": ids, "i": case.good }), Some(&owner)).await;
        let rows = r.ok()[format!("bulkUpdate{m}")].as_array().unwrap().clone();
        assert_eq!(rows.len(), 3, "{m}");
        assert_eq!(versions(&app, &table, &ids).await, before.iter().map(|v| v + 1).collect::<Vec<_>>(), "{m}");
        assert_eq!(entries(format!("{record}.updated")).await, updated + 3, "{m}");

        let r = app.gql(&delete, json!({ "ids": [ids[0].clone(), ids[1].clone(), missing.clone()] }), Some(&owner)).await;
        assert_eq!(r.code(), Some("NOT_FOUND"), "{m}: {}", r.body);
        let live = format!("SELECT COUNT(*) FROM {table} WHERE deleted_at IS NULL AND id IN (?, ?, ?)");
        let idv: Vec<sea_orm::Value> = ids.iter().map(|i| uuid::Uuid::parse_str(i).unwrap().into()).collect();
        assert_eq!(app.count(&live, idv.clone()).await, 3, "{m}: a refused bulk delete deleted something");
        let r = app.gql(&delete, json!({ "ids": [ids[0].clone(), ids[1].clone()] }), Some(&owner)).await;
        assert_eq!(r.ok()[format!("bulkDelete{m}")], 2, "{m}");
        assert_eq!(app.count(&live, idv).await, 1, "{m}");
        assert!(entries(format!("{record}.deleted")).await >= 2, "{m}");
    }
}

/// The modules with exports, and the mutation that names them.
const EXPORTS: &[(&str, &str)] = &[
    ("customers", "exportCustomers"),
    ("products", "exportProducts"),
    ("orders", "exportOrders"),
    ("payments", "exportPayments"),
    ("quotes", "exportQuotes"),
    ("jobs", "exportJobs"),
    ("invoices", "exportInvoices"),
    ("tickets", "exportTickets"),
];

#[tokio::test]
async fn every_module_exports_what_its_reader_may_see_and_no_more() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let staff = app.login("demo", "staff").await;
    let customer = a_customer(&app, &owner).await;
    // At least one record of each kind.
    let seed = [
        ("createTicket", "TicketInput", json!({ "subject": "Export me", "internalNotes": "private note 7781" })),
        ("createQuote", "QuoteInput", json!({ "customerId": customer, "title": "Export me", "amount": "1.00" })),
        ("createJob", "JobInput", json!({ "title": "Export me" })),
        (
            "createInvoice",
            "InvoiceInput",
            json!({ "customerId": customer, "number": "EXP-1", "amount": "1.00", "bankDetails": "DE89370400440532013000" }),
        ),
    ];
    for (op, ty, input) in seed {
        app.gql(&format!("mutation($i: {ty}!) {{ {op}(input: $i) {{ id }} }}"), json!({ "i": input }), Some(&owner)).await.ok();
    }
    app.gql("mutation { recordPayment(input: { amount: \"3.00\", method: CARD, cardLast4: \"4242\" }) { id } }", json!({}), Some(&owner))
        .await
        .ok();

    for (table, op) in EXPORTS {
        let q = format!("mutation($f: ExportFormat!) {{ {op}(format: $f) {{ rows content }} }}");
        let r = app.gql(&q, json!({ "f": "CSV" }), Some(&owner)).await;
        let e = r.ok()[*op].clone();
        let live = app.count(&format!("SELECT COUNT(*) FROM {table} t JOIN workspaces w ON w.id = t.workspace_id WHERE w.slug = 'demo' AND t.deleted_at IS NULL"), vec![]).await;
        assert!(live > 0, "{op}: nothing to export");
        assert_eq!(e["rows"], live, "{op}: the owner exports every live record");
        let csv = e["content"].as_str().unwrap();
        assert!(csv.starts_with("id,") && csv.lines().next().unwrap().ends_with(",createdAt"), "{op}: {csv}");
        assert_eq!(csv.lines().count() as i64, live + 1, "{op}");
        let json = app.gql(&q, json!({ "f": "JSON" }), Some(&owner)).await;
        let rows: Vec<Value> = serde_json::from_str(json.ok()[*op]["content"].as_str().unwrap()).unwrap();
        assert_eq!(rows.len() as i64, live, "{op}");

        let r = app.gql(&q, json!({ "f": "CSV" }), Some(&staff)).await;
        assert_eq!(r.code(), Some("FORBIDDEN"), "{op}: staff may not export: {}", r.body);
        assert!(!r.body.to_string().contains("Export me"), "{op}");
        let record = format!("{table}.exported");
        assert_eq!(
            app.count("SELECT COUNT(*) FROM audit_entries WHERE action = ?", vec![record.into()]).await,
            2,
            "{op}: each export audited"
        );
    }

    // Sensitive fields leave as the reader may see them: a reader of invoices who may not
    // see bank details exports none.
    let role = app
        .create_role(
            &owner,
            json!({ "name": "Invoice exporter", "rank": 30, "permissions": ["INVOICES_READ", "TICKETS_READ"],
                "scopes": [{ "module": "INVOICES", "scope": "ALL" }, { "module": "TICKETS", "scope": "ALL" }],
                "restrictions": { "dataExport": true, "bulkOperations": false, "apiAccess": false, "maxRecordsPerRequest": 100 } }),
        )
        .await;
    let guest_id = app.user_id("demo", "guest").await;
    app.assign_role(&owner, &role, &guest_id).await;
    let guest = app.login("demo", "guest").await;
    for op in ["exportInvoices", "exportTickets"] {
        let r = app.gql(&format!("mutation {{ {op}(format: JSON) {{ rows content }} }}"), json!({}), Some(&guest)).await;
        let body = r.ok()[op]["content"].as_str().unwrap().to_owned();
        assert!(
            !body.contains("DE89370400440532013000") && !body.contains("0532013000") && !body.contains("private note 7781"),
            "{op}: {body}"
        );
        let rows: Vec<Value> = serde_json::from_str(&body).unwrap();
        assert!(!rows.is_empty(), "{op}");
    }
}

/// Every module that takes an owner on creation places the record with that user, only
/// within the author's scope, and only on creation.
#[tokio::test]
async fn records_are_created_for_another_user_only_within_the_authors_scope() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let staff = app.login("demo", "staff").await;
    let (staff_id, manager_id) = (app.user_id("demo", "staff").await, app.user_id("demo", "manager").await);
    let customer = a_customer(&app, &owner).await;
    let staff_customer = a_customer(&app, &staff).await;
    let cases = [
        ("createTicket", "updateTicket", "ticket", "TicketInput", json!({ "subject": "Assigned" })),
        ("createQuote", "updateQuote", "quote", "QuoteInput", json!({ "customerId": customer, "title": "Assigned", "amount": "1.00" })),
        ("createJob", "updateJob", "job", "JobInput", json!({ "title": "Assigned" })),
        (
            "createInvoice",
            "updateInvoice",
            "invoice",
            "InvoiceInput",
            json!({ "customerId": customer, "number": "OWN-1", "amount": "1.00" }),
        ),
    ];
    for (create, update, one, ty, input) in cases {
        let q = format!("mutation($i: {ty}!) {{ {create}(input: $i) {{ id ownerId }} }}");
        let mut for_staff = input.clone();
        for_staff["ownerId"] = json!(staff_id);
        let r = app.gql(&q, json!({ "i": for_staff }), Some(&owner)).await;
        assert_eq!(r.ok()[create]["ownerId"], staff_id.as_str(), "{create}");
        let id = r.ok()[create]["id"].as_str().unwrap().to_owned();
        let read = app.gql(&format!("query($id: ID!) {{ {one}(id: $id) {{ id }} }}"), json!({ "id": id }), Some(&staff)).await;
        assert_eq!(read.ok()[one]["id"], id.as_str(), "{create}: the new owner reads it");

        let mut sneaky = input.clone();
        sneaky["ownerId"] = json!(manager_id);
        if let Some(n) = sneaky.get_mut("number") {
            *n = json!("OWN-2");
        }
        if sneaky.get("customerId").is_some() {
            sneaky["customerId"] = json!(staff_customer);
        }
        let r = app.gql(&q, json!({ "i": sneaky }), Some(&staff)).await;
        assert_eq!(r.code(), Some("FORBIDDEN"), "{create}: staff place records only for themselves: {}", r.body);

        let u = format!("mutation($id: ID!, $i: {ty}!) {{ {update}(id: $id, input: $i) {{ id }} }}");
        let r = app.gql(&u, json!({ "id": id, "i": { "ownerId": manager_id } }), Some(&owner)).await;
        assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{update}: {}", r.body);
    }
}

/// Orders, products and payments take an owner on creation too: placed with that user
/// only within the author's scope, and never afterwards.
#[tokio::test]
async fn orders_products_and_payments_are_created_for_another_user_only_within_scope() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let (staff_id, manager_id) = (app.user_id("demo", "staff").await, app.user_id("demo", "manager").await);
    let customer = a_customer(&app, &owner).await;
    // A clerk who writes products, orders and payments, each for their own records only.
    let clerk = app
        .create_role(
            &owner,
            json!({ "name": "Clerk", "rank": 30,
                "permissions": ["PRODUCTS_READ", "PRODUCTS_WRITE", "ORDERS_READ", "ORDERS_WRITE", "PAYMENTS_READ", "PAYMENTS_PROCESS", "CUSTOMERS_READ"],
                "scopes": [{ "module": "PRODUCTS", "scope": "ASSIGNED" }, { "module": "ORDERS", "scope": "ASSIGNED" },
                    { "module": "PAYMENTS", "scope": "ASSIGNED" }, { "module": "CUSTOMERS", "scope": "ALL" }] }),
        )
        .await;
    let guest_id = app.user_id("demo", "guest").await;
    app.assign_role(&owner, &clerk, &guest_id).await;
    let guest = app.login("demo", "guest").await;
    // A product the clerk reads (it is theirs), for the orders' lines.
    let r = app
        .gql(
            "mutation($i: ProductInput!) { createProduct(input: $i) { id ownerId } }",
            json!({ "i": { "name": "Line item", "sku": "own-line", "price": "2.00", "ownerId": guest_id } }),
            Some(&owner),
        )
        .await;
    assert_eq!(r.ok()["createProduct"]["ownerId"], guest_id.as_str());
    let product = r.ok()["createProduct"]["id"].clone();
    let lines = json!([{ "productId": product, "quantity": 1 }]);
    let cases = [
        ("createProduct", Some(("updateProduct", "ProductInput")), "ProductInput", json!({ "name": "Owned", "sku": "own-1" })),
        ("createOrder", Some(("updateOrder", "OrderInput")), "OrderInput", json!({ "customerId": customer, "lines": lines })),
        ("recordPayment", None, "RecordPaymentInput", json!({ "amount": "1.00", "method": "CASH" })),
    ];
    for (create, update, ty, input) in cases {
        let q = format!("mutation($i: {ty}!) {{ {create}(input: $i) {{ id ownerId }} }}");
        let mut for_staff = input.clone();
        for_staff["ownerId"] = json!(staff_id);
        let r = app.gql(&q, json!({ "i": for_staff }), Some(&owner)).await;
        assert_eq!(r.ok()[create]["ownerId"], staff_id.as_str(), "{create}");
        let id = r.ok()[create]["id"].as_str().unwrap().to_owned();

        let mut sneaky = input.clone();
        sneaky["ownerId"] = json!(manager_id);
        if let Some(sku) = sneaky.get_mut("sku") {
            *sku = json!("own-2");
        }
        let r = app.gql(&q, json!({ "i": sneaky }), Some(&guest)).await;
        assert_eq!(r.code(), Some("FORBIDDEN"), "{create}: an assigned scope places records only for oneself: {}", r.body);
        let mut own = input.clone();
        own["ownerId"] = json!(guest_id);
        if let Some(sku) = own.get_mut("sku") {
            *sku = json!("own-3");
        }
        let r = app.gql(&q, json!({ "i": own }), Some(&guest)).await;
        assert_eq!(r.ok()[create]["ownerId"], guest_id.as_str(), "{create}: for oneself it is allowed");

        if let Some((update, ty)) = update {
            let u = format!("mutation($id: ID!, $i: {ty}!) {{ {update}(id: $id, input: $i) {{ id }} }}");
            let r = app.gql(&u, json!({ "id": id, "i": { "ownerId": manager_id } }), Some(&owner)).await;
            assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{update}: {}", r.body);
        }
    }
}
