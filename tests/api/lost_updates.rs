//! Many clients changing the same records at once, through the real server. On
//! PostgreSQL the writers really run in parallel; SQLite queues them, so there these
//! tests hold the same promises on a single writer.

use crate::helpers::{Reply, TestApp};
use futures_util::future::join_all;
use serde_json::{Value, json};

/// A server whose per-session budget does not get in the way of a burst.
async fn app() -> TestApp {
    TestApp::spawn_with(&[("PALISADE_RATE_API_SESSION", "100000/1ms")]).await
}

async fn demo_id(app: &TestApp, table: &str) -> String {
    let sql = format!("SELECT t.id FROM {table} t JOIN workspaces w ON t.workspace_id = w.id WHERE w.slug = 'demo' ORDER BY t.id");
    app.sql_values(&sql, vec![]).await[0].try_get_by_index::<uuid::Uuid>(0).unwrap().to_string()
}

async fn burst(app: &TestApp, n: usize, query: &str, vars: impl Fn(usize) -> Value, token: &str) -> Vec<Reply> {
    join_all((0..n).map(|i| app.gql(query, vars(i), Some(token)))).await
}

fn tally(replies: &[Reply]) -> (usize, usize) {
    let ok = replies.iter().filter(|r| r.body["errors"].is_null()).count();
    let conflicts = replies.iter().filter(|r| r.code() == Some("CONFLICT")).count();
    (ok, conflicts)
}

async fn successes(app: &TestApp, action: &str, target: &str) -> i64 {
    app.count(
        "SELECT COUNT(*) FROM audit_entries WHERE action = ? AND target_id = ? AND outcome = 'success'",
        vec![action.into(), target.into()],
    )
    .await
}

#[tokio::test]
async fn a_refund_happens_once_however_many_ask_at_once() {
    let app = app().await;
    let owner = app.login("demo", "owner").await;
    let id = demo_id(&app, "payments").await;
    app.sql_values("UPDATE payments SET status = 'processed' WHERE id = ?", vec![uuid::Uuid::parse_str(&id).unwrap().into()]).await;
    let replies =
        burst(&app, 10, "mutation($id: ID!) { refundPayment(id: $id) { status version } }", |_| json!({ "id": id }), &owner).await;
    let (ok, conflicts) = tally(&replies);
    assert_eq!((ok, conflicts), (1, 9), "{:?}", replies.iter().map(|r| r.body.to_string()).collect::<Vec<_>>());
    assert_eq!(successes(&app, "payment.refunded", &id).await, 1, "one refund on the record");
}

#[tokio::test]
async fn a_transition_from_the_version_read_wins_once() {
    let app = app().await;
    let owner = app.login("demo", "owner").await;
    let id = demo_id(&app, "orders").await;
    app.sql_values("UPDATE orders SET status = 'draft' WHERE id = ?", vec![uuid::Uuid::parse_str(&id).unwrap().into()]).await;
    let seen =
        app.gql("query($id: ID!) { order(id: $id) { version } }", json!({ "id": id }), Some(&owner)).await.ok()["order"]["version"].clone();

    let process = "mutation($id: ID!, $v: Int) { processOrder(id: $id, expectedVersion: $v) { status version } }";
    let replies = burst(&app, 10, process, |_| json!({ "id": id, "v": seen }), &owner).await;
    assert_eq!(tally(&replies), (1, 9), "a double click processes once");
    let stale = replies.iter().find(|r| r.code() == Some("CONFLICT")).unwrap();
    let current = seen.as_i64().unwrap() + 1;
    assert_eq!(stale.body["errors"][0]["extensions"]["currentVersion"], current, "the answer names the current version: {}", stale.body);
    assert_eq!(successes(&app, "order.processed", &id).await, 1);

    // Without expectedVersion each step is decided under the row's lock: processing
    // moves on to fulfilled once, and never twice.
    let replies = burst(&app, 10, "mutation($id: ID!) { processOrder(id: $id) { status } }", |_| json!({ "id": id }), &owner).await;
    assert_eq!(tally(&replies), (1, 9));
    let r = app.gql("query($id: ID!) { order(id: $id) { status version } }", json!({ "id": id }), Some(&owner)).await;
    assert_eq!(r.ok()["order"], json!({ "status": "FULFILLED", "version": current + 1 }));
}

#[tokio::test]
async fn stock_changes_add_up_and_never_go_below_zero() {
    let app = app().await;
    let owner = app.login("demo", "owner").await;
    let id = demo_id(&app, "products").await;
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    let adjust = "mutation($id: ID!, $d: Int!) { adjustInventory(id: $id, delta: $d) { stock } }";
    let stock = || async {
        app.gql("query($id: ID!) { product(id: $id) { stock } }", json!({ "id": id }), Some(&owner)).await.ok()["product"]["stock"].clone()
    };

    app.sql_values("UPDATE products SET stock = 0 WHERE id = ?", vec![uuid.into()]).await;
    let replies = burst(&app, 30, adjust, |_| json!({ "id": id, "d": 1 }), &owner).await;
    assert_eq!(tally(&replies).0, 30, "every increment succeeds");
    assert_eq!(stock().await, 30, "and none is lost");

    app.sql_values("UPDATE products SET stock = 7 WHERE id = ?", vec![uuid.into()]).await;
    let replies = burst(&app, 30, adjust, |_| json!({ "id": id, "d": -2 }), &owner).await;
    let ok = tally(&replies).0;
    assert_eq!(ok, 3, "7 units allow three withdrawals of 2");
    assert!(replies.iter().filter(|r| !r.body["errors"].is_null()).all(|r| r.code() == Some("BAD_USER_INPUT")));
    assert_eq!(stock().await, 1);
}

#[tokio::test]
async fn concurrent_edits_of_different_fields_both_stay_and_each_before_is_what_was_replaced() {
    let app = app().await;
    let owner = app.login("demo", "owner").await;
    let id = demo_id(&app, "customers").await;
    let update = "mutation($id: ID!, $i: CustomerInput!) { updateCustomer(id: $id, input: $i) { id } }";
    let replies = burst(
        &app,
        40,
        update,
        |i| {
            if i % 2 == 0 {
                json!({ "id": id, "i": { "name": format!("Name {i}") } })
            } else {
                json!({ "id": id, "i": { "creditLimit": format!("{i}.00") } })
            }
        },
        &owner,
    )
    .await;
    assert_eq!(tally(&replies).0, 40, "{:?}", replies.iter().find(|r| !r.body["errors"].is_null()).map(|r| r.body.to_string()));
    let r = app.gql("query($id: ID!) { customer(id: $id) { name creditLimit version } }", json!({ "id": id }), Some(&owner)).await;
    let c = r.ok()["customer"].clone();
    assert!(c["name"].as_str().unwrap().starts_with("Name "), "the last rename stays: {c}");
    assert!(c["creditLimit"].as_str().unwrap().ends_with(".00") && c["creditLimit"] != "0.00", "and so does the last limit: {c}");

    // The history is one chain: each entry's `before` is the previous entry's `after`.
    let rows = app
        .sql_values(
            "SELECT changes FROM audit_entries WHERE action = 'customer.updated' AND target_id = ? AND outcome = 'success' ORDER BY seq",
            vec![id.clone().into()],
        )
        .await;
    assert_eq!(rows.len(), 40);
    let mut last: Option<Value> = None;
    for row in rows {
        let changes: Value = row.try_get_by_index::<Option<Value>>(0).unwrap().unwrap();
        let name = &changes["name"];
        if name.is_null() {
            continue;
        }
        if let Some(prev) = &last {
            assert_eq!(&name["before"], prev, "a rename's before is the name it replaced");
        }
        last = Some(name["after"].clone());
    }
    assert_eq!(last.unwrap(), c["name"]);
}

#[tokio::test]
async fn a_stale_expected_version_writes_nothing() {
    let app = app().await;
    let owner = app.login("demo", "owner").await;
    let id = demo_id(&app, "tickets").await;
    let read = "query($id: ID!) { ticket(id: $id) { subject version } }";
    let before = app.gql(read, json!({ "id": id }), Some(&owner)).await.ok()["ticket"].clone();
    let v = before["version"].as_i64().unwrap();
    let update =
        "mutation($id: ID!, $v: Int, $i: TicketInput!) { updateTicket(id: $id, expectedVersion: $v, input: $i) { subject version } }";

    let r = app.gql(update, json!({ "id": id, "v": v, "i": { "subject": "First edit" } }), Some(&owner)).await;
    assert_eq!(r.ok()["updateTicket"], json!({ "subject": "First edit", "version": v + 1 }));

    // A second editor saves over what they read before the first edit.
    let r = app.gql(update, json!({ "id": id, "v": v, "i": { "subject": "Second edit" } }), Some(&owner)).await;
    assert_eq!(r.code(), Some("CONFLICT"), "{}", r.body);
    assert_eq!(r.body["errors"][0]["extensions"]["currentVersion"], v + 1);
    assert_eq!(app.gql(read, json!({ "id": id }), Some(&owner)).await.ok()["ticket"], json!({ "subject": "First edit", "version": v + 1 }));
    assert_eq!(successes(&app, "ticket.updated", &id).await, 1, "the refused save is not on the record as a change");

    // Deletes take the version too.
    let delete = "mutation($id: ID!, $v: Int) { deleteTicket(id: $id, expectedVersion: $v) }";
    assert_eq!(app.gql(delete, json!({ "id": id, "v": v }), Some(&owner)).await.code(), Some("CONFLICT"));
    assert_eq!(app.gql(delete, json!({ "id": id, "v": v + 1 }), Some(&owner)).await.ok()["deleteTicket"], true);
}

/// Every module with updates, through the one record path: of many concurrent saves
/// from the same version exactly one lands, the rest answer CONFLICT with the version
/// that won, and the log holds one change.
#[tokio::test]
async fn concurrent_saves_from_one_version_land_once_in_every_module() {
    let app = app().await;
    let owner = app.login("demo", "owner").await;
    let cases = [
        ("quotes", "updateQuote", "QuoteInput", json!({ "title": "Raced" }), "quote.updated"),
        ("jobs", "updateJob", "JobInput", json!({ "title": "Raced" }), "job.updated"),
        ("invoices", "updateInvoice", "InvoiceInput", json!({ "status": "SENT" }), "invoice.updated"),
        ("tickets", "updateTicket", "TicketInput", json!({ "subject": "Raced" }), "ticket.updated"),
        ("products", "updateProduct", "ProductInput", json!({ "name": "Raced" }), "product.updated"),
        ("customers", "updateCustomer", "CustomerInput", json!({ "name": "Raced" }), "customer.updated"),
    ];
    for (table, op, input, change, action) in cases {
        let id = demo_id(&app, table).await;
        let version =
            app.sql_values(&format!("SELECT version FROM {table} WHERE id = ?"), vec![uuid::Uuid::parse_str(&id).unwrap().into()]).await[0]
                .try_get_by_index::<i64>(0)
                .unwrap();
        let q = format!("mutation($id: ID!, $v: Int, $i: {input}!) {{ {op}(id: $id, expectedVersion: $v, input: $i) {{ id }} }}");
        let replies = burst(&app, 12, &q, |_| json!({ "id": id, "v": version, "i": change }), &owner).await;
        assert_eq!(tally(&replies), (1, 11), "{op}: {:?}", replies.iter().map(|r| r.body.to_string()).collect::<Vec<_>>());
        for r in replies.iter().filter(|r| r.code() == Some("CONFLICT")) {
            assert_eq!(r.body["errors"][0]["extensions"]["currentVersion"], version + 1, "{op}: {}", r.body);
        }
        assert_eq!(successes(&app, action, &id).await, 1, "{op}");
    }
}
