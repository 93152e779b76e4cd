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

const EXPORT_ANALYTICS: &str = "mutation($f: ExportFormat!) { exportAnalytics(format: $f) { rows content } }";

/// The export's rows as (report, key, count).
fn analytics_rows(content: &str) -> Vec<(String, String, i64)> {
    let rows: Vec<serde_json::Value> = serde_json::from_str(content).unwrap();
    rows.iter()
        .map(|r| (r["report"].as_str().unwrap().to_owned(), r["key"].as_str().unwrap().to_owned(), r["count"].as_i64().unwrap()))
        .collect()
}

#[tokio::test]
async fn the_analytics_export_counts_what_its_reader_reaches_and_names_what_it_left_out() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    // The guest gets analytics.export and customers (no reports, no advanced), ranked
    // above their Guest role so that its restrictions apply; sam (Staff) gets
    // analytics.export without the dataExport restriction.
    let analyst = app
        .create_role(
            &owner,
            json!({ "name": "Pipeline exporter", "rank": 30, "permissions": ["CUSTOMERS_READ", "ANALYTICS_READ", "ANALYTICS_EXPORT"],
                "scopes": [{ "module": "CUSTOMERS", "scope": "ALL" }],
                "restrictions": { "dataExport": true, "bulkOperations": false, "apiAccess": false, "maxRecordsPerRequest": 100 } }),
        )
        .await;
    let guest_id = app.user_id("demo", "guest").await;
    app.assign_role(&owner, &analyst, &guest_id).await;
    let no_export = app
        .create_role(
            &owner,
            json!({ "name": "Analyst without export", "rank": 30, "permissions": ["CUSTOMERS_READ", "ANALYTICS_READ", "ANALYTICS_EXPORT"],
                "scopes": [{ "module": "CUSTOMERS", "scope": "ALL" }] }),
        )
        .await;
    let sam_id = app.user_id("demo", "sam").await;
    app.assign_role(&owner, &no_export, &sam_id).await;

    // who -> the sections exported (each must agree with the report it comes from), or
    // the refusal.
    let cases: [(&str, Result<&[&str], &str>); 5] = [
        ("owner", Ok(&["sales", "pipeline", "pipelineByOwner"])),
        ("manager", Ok(&["sales", "pipeline", "pipelineByOwner"])),
        ("guest", Ok(&["pipeline"])),
        ("staff", Err("FORBIDDEN")),
        ("sam", Err("FORBIDDEN")),
    ];
    for (who, expected) in cases {
        let t = app.login("demo", who).await;
        let r = app.gql(EXPORT_ANALYTICS, json!({ "f": "JSON" }), Some(&t)).await;
        let sections = match expected {
            Err(code) => {
                assert_eq!(r.code(), Some(code), "{who}: {}", r.body);
                continue;
            }
            Ok(sections) => sections,
        };
        let e = r.ok()["exportAnalytics"].clone();
        let rows = analytics_rows(e["content"].as_str().unwrap());
        assert_eq!(e["rows"], rows.len(), "{who}");
        let mut got: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        got.dedup();
        assert_eq!(got, sections, "{who}");
        let sum = |report: &str| rows.iter().filter(|r| r.0 == report).map(|r| r.2).sum::<i64>();
        let pipeline = app.gql(PIPELINE, json!({}), Some(&t)).await;
        let in_report: i64 = pipeline.body["data"]["pipelineAnalytics"]["byStatus"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["customers"].as_i64().unwrap())
            .sum();
        assert_eq!(sum("pipeline"), in_report, "{who}: the pipeline as pipelineAnalytics counts it");
        if sections.contains(&"sales") {
            let sales = app.gql(SALES, json!({}), Some(&t)).await;
            assert_eq!(sum("sales"), sales.ok()["salesReport"]["orders"].as_i64().unwrap(), "{who}: sales as salesReport counts them");
            assert_eq!(sum("pipelineByOwner"), in_report, "{who}");
        }
    }
    // Each export on the record, with what it left out.
    assert_eq!(app.entries("analytics.exported").await.len(), 3);
    let guest = uuid::Uuid::parse_str(&guest_id).unwrap();
    let changes = app
        .sql_values(
            "SELECT CAST(changes AS TEXT) FROM audit_entries WHERE action = 'analytics.exported' AND actor_id = ?",
            vec![guest.into()],
        )
        .await;
    let changes: serde_json::Value = serde_json::from_str(&changes[0].try_get_by_index::<String>(0).unwrap()).unwrap();
    assert_eq!(changes["omitted"]["after"], json!(["sales", "pipelineByOwner"]), "{changes}");
    assert_eq!(changes["sections"]["after"], json!(["pipeline"]));

    // The CSV has its header and a row per aggregate.
    let r = app.gql(EXPORT_ANALYTICS, json!({ "f": "CSV" }), Some(&owner)).await;
    let csv = r.ok()["exportAnalytics"]["content"].as_str().unwrap().to_owned();
    assert!(csv.starts_with("report,key,count,total\nsales,"), "{csv}");
}
