use crate::helpers::TestApp;
use serde_json::json;

#[tokio::test]
async fn pricing_and_inventory_are_separate_permissions() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let create = "mutation($i: ProductInput!) { createProduct(input: $i) { id sku price costPrice stock } }";
    let r = app
        .gql(
            create,
            json!({ "i": { "name": "Gadget", "sku": "gad-1", "price": "19.90", "costPrice": "7.25", "supplier": "Acme Parts" } }),
            Some(&owner),
        )
        .await;
    let p = r.ok()["createProduct"].clone();
    assert_eq!(
        (p["sku"].as_str(), p["price"].as_str(), p["costPrice"].as_str(), p["stock"].as_i64()),
        (Some("GAD-1"), Some("19.90"), Some("7.25"), Some(0))
    );
    let id = p["id"].as_str().unwrap().to_owned();
    let dup = app.gql(create, json!({ "i": { "name": "Other", "sku": "GAD-1" } }), Some(&owner)).await;
    assert_eq!(dup.code(), Some("CONFLICT"));

    // A role that may edit products but not prices or stock.
    let role = app
        .gql(
            "mutation($i: RoleInput!) { createRole(input: $i) { id } }",
            json!({ "i": { "name": "Catalog editor", "rank": 30, "permissions": ["PRODUCTS_READ", "PRODUCTS_WRITE"], "scopes": [{ "module": "PRODUCTS", "scope": "ALL" }] } }),
            Some(&owner),
        )
        .await
        .ok()["createRole"]["id"]
        .clone();
    let staff_id = app.sql_values("SELECT id FROM users WHERE username_key = 'staff'", vec![]).await[0]
        .try_get_by_index::<uuid::Uuid>(0)
        .unwrap()
        .to_string();
    app.gql(
        "mutation($i: AssignRoleInput!) { assignRole(input: $i) { id } }",
        json!({ "i": { "roleId": role, "userId": staff_id } }),
        Some(&owner),
    )
    .await
    .ok();
    let staff = app.login("demo", "staff").await;
    let update = "mutation($id: ID!, $i: ProductInput!) { updateProduct(id: $id, input: $i) { name price } }";
    assert_eq!(
        app.gql(update, json!({ "id": id, "i": { "name": "Gadget Pro" } }), Some(&staff)).await.ok()["updateProduct"]["name"],
        "Gadget Pro"
    );
    let r = app.gql(update, json!({ "id": id, "i": { "price": "1.00" } }), Some(&staff)).await;
    assert_eq!(r.code(), Some("FORBIDDEN"));
    assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("products.pricing"));
    let r = app.gql("mutation($id: ID!) { adjustInventory(id: $id, delta: 5) { stock } }", json!({ "id": id }), Some(&staff)).await;
    assert_eq!(r.code(), Some("FORBIDDEN"));

    // Inventory never goes below zero.
    let adjust = "mutation($id: ID!, $d: Int!) { adjustInventory(id: $id, delta: $d) { stock } }";
    assert_eq!(app.gql(adjust, json!({ "id": id, "d": 5 }), Some(&owner)).await.ok()["adjustInventory"]["stock"], 5);
    let r = app.gql(adjust, json!({ "id": id, "d": -6 }), Some(&owner)).await;
    assert_eq!((r.code(), r.body["errors"][0]["extensions"]["field"].as_str()), (Some("BAD_USER_INPUT"), Some("delta")));
    let history =
        app.gql("query($id: ID!) { product(id: $id) { stock history { action changes } } }", json!({ "id": id }), Some(&owner)).await;
    let h = history.ok()["product"].clone();
    assert_eq!(h["stock"], 5);
    let actions: Vec<&str> = h["history"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["product.inventory_adjusted", "product.updated", "product.created"]);
    assert!(!h.to_string().contains("7.25") && !h.to_string().contains("Acme Parts"), "cost price and supplier never enter the log");
}

#[tokio::test]
async fn lists_take_an_order_input() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let q = "query($o: ListOrder) { products(first: 20, orderBy: $o) { edges { node { id name } } } }";
    let by_default: Vec<String> = app.gql(q, json!({ "o": null }), Some(&owner)).await.ok()["products"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = by_default.clone();
    sorted.sort();
    assert_eq!(by_default, sorted, "products default to name order");
    let ids = |r: crate::helpers::Reply| -> Vec<String> {
        r.ok()["products"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["id"].as_str().unwrap().to_owned()).collect()
    };
    let asc = ids(app.gql(q, json!({ "o": { "field": "CREATED_AT", "direction": "ASC" } }), Some(&owner)).await);
    let desc = ids(app.gql(q, json!({ "o": { "field": "CREATED_AT", "direction": "DESC" } }), Some(&owner)).await);
    assert_eq!(asc.iter().rev().cloned().collect::<Vec<_>>(), desc);
    app.clock.advance(chrono::Duration::seconds(5));
    app.gql("mutation($id: ID!) { updateProduct(id: $id, input: { name: \"Touched\" }) { id } }", json!({ "id": asc[0] }), Some(&owner))
        .await
        .ok();
    let recent = ids(app.gql(q, json!({ "o": { "field": "UPDATED_AT", "direction": "DESC" } }), Some(&owner)).await);
    assert_eq!(recent[0], asc[0], "the product just changed comes first");
}
