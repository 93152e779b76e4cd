//! Keyset pages through the real server: every order walks the whole scope once, in
//! order, however the pages are cut; rows inserted or deleted between pages neither
//! repeat nor hide others; cursors belong to one list and one order.

use crate::helpers::TestApp;
use serde_json::{Value, json};

const LIST: &str = "query($first: Int, $after: String, $order: CustomerOrder) {
  customers(first: $first, after: $after, orderBy: $order) {
    edges { cursor node { id name creditLimit } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}";

/// Every page of `order`, `size` at a time.
async fn walk(app: &TestApp, token: &str, order: &Value, size: i64) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = Value::Null;
    loop {
        let r = app.gql(LIST, json!({ "first": size, "after": after, "order": order }), Some(token)).await;
        let page = r.ok()["customers"].clone();
        assert_eq!(page["pageInfo"]["hasPreviousPage"], !after.is_null(), "{page}");
        all.extend(page["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()));
        if page["pageInfo"]["hasNextPage"] == false {
            return all;
        }
        after = page["pageInfo"]["endCursor"].clone();
        assert!(all.len() < 1000, "the walk never ends");
    }
}

async fn add(app: &TestApp, token: &str, name: &str, credit: Option<&str>) -> String {
    let r = app
        .gql(
            "mutation($i: CustomerInput!) { createCustomer(input: $i) { id } }",
            json!({ "i": { "name": name, "creditLimit": credit } }),
            Some(token),
        )
        .await;
    r.ok()["createCustomer"]["id"].as_str().unwrap().to_owned()
}

fn cents(v: &Value) -> i64 {
    v.as_str().map_or(-1, |s| (s.parse::<f64>().unwrap() * 100.0).round() as i64)
}

#[tokio::test]
async fn every_order_walks_the_whole_scope_once_in_order() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    // Ties on the sort key, and absent credit limits, so the id has to break them.
    for (name, credit) in [("Tie", Some("10.00")), ("Tie", Some("10.00")), ("Tie", None), ("Aaron", None), ("Zed", Some("0"))] {
        add(&app, &owner, name, credit).await;
    }
    let total = app.gql("{ customers(first: 1) { totalCount } }", json!({}), Some(&owner)).await.ok()["customers"]["totalCount"]
        .as_u64()
        .unwrap() as usize;
    assert!(total >= 8, "the demo's customers plus ours: {total}");
    for field in ["CREATED_AT", "NAME", "CREDIT_LIMIT"] {
        for direction in ["ASC", "DESC"] {
            let order = json!({ "field": field, "direction": direction });
            let whole = walk(&app, &owner, &order, 100).await;
            assert_eq!(whole.len(), total, "{field} {direction}");
            let mut ids: Vec<&str> = whole.iter().map(|n| n["id"].as_str().unwrap()).collect();
            for size in [1, 2, 3] {
                let paged = walk(&app, &owner, &order, size).await;
                assert_eq!(paged, whole, "{field} {direction} in pages of {size}");
            }
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), total, "no record twice");
            if field == "NAME" {
                // Names sort by the database's collation; only the walks' agreement above is checked.
                continue;
            }
            let key = |n: &Value| match field {
                "CREDIT_LIMIT" => json!(cents(&n["creditLimit"])),
                _ => json!(n["id"]),
            };
            for pair in whole.windows(2) {
                let (a, b) = (key(&pair[0]), key(&pair[1]));
                let ordered = match (a.as_i64(), b.as_i64()) {
                    (Some(x), Some(y)) => (x, pair[0]["id"].as_str()) <= (y, pair[1]["id"].as_str()),
                    _ => (a.as_str(), pair[0]["id"].as_str()) <= (b.as_str(), pair[1]["id"].as_str()),
                };
                assert_eq!(ordered, direction == "ASC", "{field} {direction}: {} then {}", pair[0], pair[1]);
            }
        }
    }
}

#[tokio::test]
async fn inserts_and_deletes_between_pages_neither_repeat_nor_hide_others() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let order = json!({ "field": "CREATED_AT", "direction": "ASC" });
    let before = walk(&app, &owner, &order, 100).await;
    let first = app.gql(LIST, json!({ "first": 2, "order": order }), Some(&owner)).await.ok()["customers"].clone();
    let seen: Vec<Value> = first["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect();
    // Between pages: one record already shown and one not yet shown are deleted, and
    // a new one is created (it is the newest, so it comes last).
    for gone in [&before[0], &before[3]] {
        let r = app.gql("mutation($id: ID!) { deleteCustomer(id: $id) }", json!({ "id": gone["id"] }), Some(&owner)).await;
        assert!(r.body["errors"].is_null(), "{}", r.body);
    }
    let new = add(&app, &owner, "Newcomer", None).await;
    let mut rest = Vec::new();
    let mut after = first["pageInfo"]["endCursor"].clone();
    loop {
        let r = app.gql(LIST, json!({ "first": 2, "after": after, "order": order }), Some(&owner)).await;
        let page = r.ok()["customers"].clone();
        rest.extend(page["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()));
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    let expected: Vec<Value> = before[2..].iter().filter(|n| n["id"] != before[3]["id"]).cloned().collect();
    assert_eq!(seen, before[..2].to_vec());
    assert_eq!(rest[..expected.len()], expected[..], "every record after the cursor, once, the deleted one left out");
    assert_eq!(rest.len(), expected.len() + 1);
    assert_eq!(rest.last().unwrap()["id"], new.as_str());
}

#[tokio::test]
async fn a_cursor_belongs_to_its_list_and_order() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let products = app.gql("{ products(first: 1) { pageInfo { endCursor } } }", json!({}), Some(&owner)).await;
    let product_cursor = products.ok()["products"]["pageInfo"]["endCursor"].clone();
    let by_name = json!({ "field": "NAME", "direction": "ASC" });
    let customers = app.gql(LIST, json!({ "first": 1, "order": by_name }), Some(&owner)).await;
    let name_cursor = customers.ok()["customers"]["pageInfo"]["endCursor"].clone();
    let by_name_desc = json!({ "field": "NAME", "direction": "DESC" });
    for (after, order) in [
        (product_cursor, by_name.clone()),
        (name_cursor, by_name_desc),
        (json!("o:1"), by_name.clone()),
        (json!("not a cursor"), by_name.clone()),
        (json!("eyJsIjoiY3VzdG9tZXJzIn0"), by_name),
    ] {
        let r = app.gql(LIST, json!({ "first": 1, "after": after, "order": order }), Some(&owner)).await;
        assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{after}: {}", r.body);
        assert_eq!(r.body["errors"][0]["extensions"]["field"], "after");
    }
}

#[tokio::test]
async fn every_list_pages_with_cursors() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    for list in ["customers", "products", "orders", "payments", "tickets", "quotes", "jobs", "invoices", "users"] {
        let q = format!(
            "query($a: String) {{ {list}(first: 1, after: $a) {{ totalCount edges {{ node {{ id }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
        );
        let mut after = Value::Null;
        let mut ids = Vec::new();
        loop {
            let r = app.gql(&q, json!({ "a": after }), Some(&owner)).await;
            let page = r.ok()[list].clone();
            ids.extend(page["edges"].as_array().unwrap().iter().map(|e| e["node"]["id"].clone()));
            if page["pageInfo"]["hasNextPage"] == false {
                assert_eq!(ids.len() as u64, page["totalCount"].as_u64().unwrap(), "{list}");
                break;
            }
            after = page["pageInfo"]["endCursor"].clone();
        }
        let mut unique = ids.clone();
        unique.sort_by_key(|v| v.to_string());
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "{list}: no record twice");
    }
}
