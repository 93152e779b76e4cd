use crate::helpers::TestApp;
use serde_json::json;

const SALES: &str = "{ salesReport { orders revenue byStatus { status orders total } } }";
const PIPELINE: &str = "{ pipelineAnalytics { byStatus { status customers } byOwner { ownerId customers } } }";

#[tokio::test]
async fn reports_count_only_what_the_reader_reaches() {
    let app = TestApp::spawn().await;
    for (who, orders) in [("owner", 5), ("manager", 3), ("staff", 1)] {
        let t = app.login("demo", who).await;
        let r = app.gql(SALES, json!({}), Some(&t)).await;
        assert_eq!(r.ok()["salesReport"]["orders"], orders, "{who}");
    }
    let guest = app.login("demo", "guest").await;
    assert_eq!(app.gql(SALES, json!({}), Some(&guest)).await.code(), Some("FORBIDDEN"));

    // Revenue counts fulfilled orders only.
    let owner = app.login("demo", "owner").await;
    let id = app.sql_values("SELECT o.id FROM orders o JOIN users u ON o.owner_id = u.id WHERE u.username_key = 'staff'", vec![]).await[0]
        .try_get_by_index::<uuid::Uuid>(0)
        .unwrap()
        .to_string();
    for _ in 0..2 {
        app.gql("mutation($id: ID!) { processOrder(id: $id) { status } }", json!({ "id": id }), Some(&owner)).await.ok();
    }
    let total =
        app.gql("query($id: ID!) { order(id: $id) { total } }", json!({ "id": id }), Some(&owner)).await.ok()["order"]["total"].clone();
    let r = app.gql(SALES, json!({}), Some(&owner)).await;
    assert_eq!(r.ok()["salesReport"]["revenue"], total);
    let future = app
        .gql(
            "query($f: DateTime) { salesReport(from: $f) { orders } }",
            json!({ "f": (app.clock_now() + chrono::Duration::days(1)).to_rfc3339() }),
            Some(&owner),
        )
        .await;
    assert_eq!(future.ok()["salesReport"]["orders"], 0);
}

#[tokio::test]
async fn pipeline_analytics_needs_analytics_and_the_breakdown_needs_advanced() {
    let app = TestApp::spawn().await;
    let manager = app.login("demo", "manager").await;
    let r = app.gql(PIPELINE, json!({}), Some(&manager)).await;
    let p = r.ok()["pipelineAnalytics"].clone();
    let sum: i64 = p["byStatus"].as_array().unwrap().iter().map(|s| s["customers"].as_i64().unwrap()).sum();
    assert_eq!(sum, 6, "the Sales department's customers");
    assert_eq!(p["byOwner"].as_array().unwrap().len(), 3);

    let staff = app.login("demo", "staff").await;
    assert_eq!(app.gql(PIPELINE, json!({}), Some(&staff)).await.code(), Some("FORBIDDEN"));

    let owner = app.login("demo", "owner").await;
    let role = app
        .gql(
            "mutation($i: RoleInput!) { createRole(input: $i) { id } }",
            json!({ "i": { "name": "Analyst", "rank": 30, "permissions": ["CUSTOMERS_READ", "ANALYTICS_READ"], "scopes": [{ "module": "CUSTOMERS", "scope": "ALL" }] } }),
            Some(&owner),
        )
        .await
        .ok()["createRole"]["id"]
        .clone();
    let sam_id = app.sql_values("SELECT id FROM users WHERE username_key = 'sam'", vec![]).await[0]
        .try_get_by_index::<uuid::Uuid>(0)
        .unwrap()
        .to_string();
    app.gql(
        "mutation($i: AssignRoleInput!) { assignRole(input: $i) { id } }",
        json!({ "i": { "roleId": role, "userId": sam_id } }),
        Some(&owner),
    )
    .await
    .ok();
    let sam = app.login("demo", "sam").await;
    let r = app.gql(PIPELINE, json!({}), Some(&sam)).await;
    let sum: i64 =
        r.body["data"]["pipelineAnalytics"]["byStatus"].as_array().unwrap().iter().map(|s| s["customers"].as_i64().unwrap()).sum();
    assert_eq!(sum, 10, "the whole workspace");
    assert!(r.body["data"]["pipelineAnalytics"]["byOwner"].is_null());
    assert_eq!(r.code(), Some("FORBIDDEN"));
}
