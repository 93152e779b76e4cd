use crate::helpers::TestApp;
use serde_json::json;

async fn first_id(app: &TestApp, table: &str, owner: &str) -> String {
    let sql = format!(
        "SELECT c.id FROM {table} c JOIN users u ON c.owner_id = u.id JOIN workspaces w ON c.workspace_id = w.id WHERE w.slug = 'demo' AND u.username_key = ? ORDER BY c.id"
    );
    app.sql_values(&sql, vec![owner.into()]).await[0].try_get_by_index::<uuid::Uuid>(0).unwrap().to_string()
}

const ORDER: &str = "query($id: ID!) { order(id: $id) { status total internalNotes customer { name email } lines { quantity unitPrice lineTotal product { name costPrice } } } }";

#[tokio::test]
async fn nested_records_follow_the_readers_own_scope() {
    let app = TestApp::spawn().await;
    let staff = app.login("demo", "staff").await;
    let order = first_id(&app, "orders", "staff").await;
    let r = app.gql(ORDER, json!({ "id": order }), Some(&staff)).await;
    let o = r.body["data"]["order"].clone();
    assert!(o["customer"]["name"].is_string(), "staff's own customer is visible: {}", r.body);
    assert_eq!(o["lines"][0]["quantity"], 2);
    assert!(o["lines"][0]["product"]["costPrice"].is_null(), "staff see no cost prices, even nested");
    assert!(r.body["errors"].as_array().unwrap().iter().any(|e| e["extensions"]["field"] == "product.costPrice"));
    assert_eq!(o["internalNotes"], "Deliver to the side entrance.", "staff read internal notes");

    // The customer moves to someone else: the order stays staff's, its customer does not.
    let owner = app.login("demo", "owner").await;
    let customer = app.gql("query($id: ID!) { order(id: $id) { customerId } }", json!({ "id": order }), Some(&owner)).await.ok()["order"]["customerId"].clone();
    let guest_id = app.sql_values("SELECT id FROM users WHERE username_key = 'guest'", vec![]).await[0]
        .try_get_by_index::<uuid::Uuid>(0)
        .unwrap()
        .to_string();
    app.gql(
        "mutation($id: ID!, $o: ID!) { reassignCustomer(id: $id, ownerId: $o) { id } }",
        json!({ "id": customer, "o": guest_id }),
        Some(&owner),
    )
    .await
    .ok();
    let r = app.gql(ORDER, json!({ "id": order }), Some(&staff)).await;
    assert!(r.body["data"]["order"]["customer"].is_null(), "out-of-scope nested customer: {}", r.body);
    assert!(!r.body.to_string().contains("accounts@"), "nothing of that customer leaks");

    // Guests see orders of their own, without notes.
    let guest = app.login("demo", "guest").await;
    let r = app.gql(ORDER, json!({ "id": first_id(&app, "orders", "guest").await }), Some(&guest)).await;
    assert!(r.body["data"]["order"]["internalNotes"].is_null());
    assert!(!r.body.to_string().contains("side entrance"));
}

#[tokio::test]
async fn orders_are_priced_from_products_and_move_through_their_states() {
    let app = TestApp::spawn().await;
    let manager = app.login("demo", "manager").await;
    let customer = first_id(&app, "customers", "staff").await;
    let product = first_id(&app, "products", "sam").await;
    let create = "mutation($i: OrderInput!) { createOrder(input: $i) { id status total lines { unitPrice lineTotal } } }";
    let r = app
        .gql(create, json!({ "i": { "customerId": customer, "lines": [{ "productId": product, "quantity": 3 }] } }), Some(&manager))
        .await;
    let o = r.ok()["createOrder"].clone();
    let unit = o["lines"][0]["unitPrice"].as_str().unwrap().to_owned();
    assert_eq!(o["status"], "DRAFT");
    let unit_cents: i64 = unit.replace('.', "").parse().unwrap();
    assert_eq!(o["total"].as_str().unwrap().replace('.', "").parse::<i64>().unwrap(), unit_cents * 3);
    let id = o["id"].as_str().unwrap().to_owned();

    for (input, field) in [
        (json!({ "lines": [{ "productId": product, "quantity": 1 }] }), "customerId"),
        (json!({ "customerId": customer, "lines": [] }), "lines"),
        (json!({ "customerId": customer, "lines": [{ "productId": product, "quantity": 0 }] }), "lines.quantity"),
        (
            json!({ "customerId": first_id(&app, "customers", "guest").await, "lines": [{ "productId": product, "quantity": 1 }] }),
            "customerId",
        ),
    ] {
        let r = app.gql(create, json!({ "i": input }), Some(&manager)).await;
        assert_eq!((r.code(), r.body["errors"][0]["extensions"]["field"].as_str()), (Some("BAD_USER_INPUT"), Some(field)), "{}", r.body);
    }

    let step = |m: &'static str| format!("mutation($id: ID!) {{ {m}(id: $id) {{ status }} }}");
    assert_eq!(
        app.gql(&step("refundOrder"), json!({ "id": id }), Some(&manager)).await.code(),
        Some("CONFLICT"),
        "a draft cannot be refunded"
    );
    assert_eq!(app.gql(&step("processOrder"), json!({ "id": id }), Some(&manager)).await.ok()["processOrder"]["status"], "PROCESSING");
    let r = app
        .gql(
            "mutation($id: ID!, $p: ID!) { updateOrder(id: $id, input: { lines: [{ productId: $p, quantity: 1 }] }) { id } }",
            json!({ "id": id, "p": product }),
            Some(&manager),
        )
        .await;
    assert_eq!(r.code(), Some("CONFLICT"), "lines are fixed once processing");
    assert_eq!(app.gql(&step("cancelOrder"), json!({ "id": id }), Some(&manager)).await.ok()["cancelOrder"]["status"], "CANCELLED");
    let staff = app.login("demo", "staff").await;
    assert_eq!(
        app.gql(&step("processOrder"), json!({ "id": first_id(&app, "orders", "staff").await }), Some(&staff)).await.code(),
        Some("FORBIDDEN")
    );
    let h = app.gql("query($id: ID!) { order(id: $id) { history { action } } }", json!({ "id": id }), Some(&manager)).await;
    let actions: Vec<&str> = h.ok()["order"]["history"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["order.cancelled", "order.processed", "order.created"]);
}

#[tokio::test]
async fn tickets_link_only_readable_customers_and_guard_their_notes() {
    let app = TestApp::spawn().await;
    let staff = app.login("demo", "staff").await;
    let create = "mutation($i: TicketInput!) { createTicket(input: $i) { id subject status priority internalNotes } }";
    let mine = first_id(&app, "customers", "staff").await;
    let theirs = first_id(&app, "customers", "guest").await;
    let r = app.gql(create, json!({ "i": { "subject": "Broken widget", "customerId": mine, "priority": "HIGH", "internalNotes": "replace under warranty" } }), Some(&staff)).await;
    let t = r.ok()["createTicket"].clone();
    assert_eq!(
        (t["status"].as_str(), t["priority"].as_str(), t["internalNotes"].as_str()),
        (Some("OPEN"), Some("HIGH"), Some("replace under warranty"))
    );
    let r = app.gql(create, json!({ "i": { "subject": "Peek", "customerId": theirs } }), Some(&staff)).await;
    assert_eq!(
        (r.code(), r.body["errors"][0]["extensions"]["field"].as_str()),
        (Some("BAD_USER_INPUT"), Some("customerId")),
        "out-of-scope customer looks missing"
    );
    let guest = app.login("demo", "guest").await;
    let r = app
        .gql(
            "query($id: ID!) { ticket(id: $id) { subject internalNotes } }",
            json!({ "id": first_id(&app, "tickets", "guest").await }),
            Some(&guest),
        )
        .await;
    assert!(r.body["data"]["ticket"]["internalNotes"].is_null());
    assert!(!r.body.to_string().contains("escalate"));
}

#[tokio::test]
async fn payments_guard_card_iban_and_payer_email() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let manager = app.login("demo", "manager").await;
    let q = "query($id: ID!) { payment(id: $id) { amount cardLast4 iban payerEmail } }";
    let id = first_id(&app, "payments", "staff").await;
    let full = app.gql(q, json!({ "id": id }), Some(&owner)).await.ok()["payment"].clone();
    let seen = app.gql(q, json!({ "id": id }), Some(&manager)).await.ok()["payment"].clone();
    assert_eq!(seen["cardLast4"], full["cardLast4"], "managers read card last 4");
    assert_eq!(seen["payerEmail"], full["payerEmail"]);
    let iban = full["iban"].as_str().unwrap();
    assert_eq!(seen["iban"].as_str().unwrap(), format!("•••{}", &iban[iban.len() - 4..]), "IBAN masked to the last 4");
    let staff = app.login("demo", "staff").await;
    assert_eq!(app.gql(q, json!({ "id": id }), Some(&staff)).await.code(), Some("FORBIDDEN"), "staff have no payments.read");

    let record = "mutation($i: RecordPaymentInput!) { recordPayment(input: $i) { status amount } }";
    let order = first_id(&app, "orders", "manager").await;
    for (input, field) in [
        (json!({ "amount": "0", "method": "CARD" }), "amount"),
        (json!({ "amount": "10", "method": "CARD", "cardLast4": "42" }), "cardLast4"),
        (json!({ "amount": "10", "method": "TRANSFER", "iban": "NOT AN IBAN!" }), "iban"),
        (json!({ "amount": "10", "method": "CARD", "payerEmail": "nope" }), "payerEmail"),
    ] {
        let r = app.gql(record, json!({ "i": input }), Some(&owner)).await;
        assert_eq!((r.code(), r.body["errors"][0]["extensions"]["field"].as_str()), (Some("BAD_USER_INPUT"), Some(field)), "{}", r.body);
    }
    let r = app
        .gql(
            record,
            json!({ "i": { "amount": "25.50", "method": "TRANSFER", "orderId": order, "iban": "GB29 NWBK 6016 1331 9268 19" } }),
            Some(&owner),
        )
        .await;
    assert_eq!(r.ok()["recordPayment"]["status"], "PROCESSED");
    let rows = app.sql_values("SELECT changes FROM audit_entries WHERE action = 'payment.processed' ORDER BY id DESC", vec![]).await;
    let logged = rows[0].try_get_by_index::<Option<serde_json::Value>>(0).unwrap().unwrap().to_string();
    assert!(logged.contains("[redacted]") && !logged.contains("NWBK"), "{logged}");
    assert_eq!(
        app.gql(record, json!({ "i": { "amount": "1", "method": "CASH" } }), Some(&manager)).await.code(),
        Some("FORBIDDEN"),
        "managers do not take payments"
    );
}
