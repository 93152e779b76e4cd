//! Exports as downloads: the same checks and the same file as an export in the answer,
//! fetched once, by whoever asked for it, read as they may read at that moment.
use crate::helpers::TestApp;
use serde_json::{Value, json};

struct Fetched {
    status: u16,
    content_type: String,
    disposition: String,
    body: String,
}

async fn fetch(app: &TestApp, url: &str, token: Option<&str>) -> Fetched {
    let mut req = app.client.get(format!("{}{url}", app.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (content_type, disposition) = (header("content-type"), header("content-disposition"));
    Fetched { status: res.status().as_u16(), content_type, disposition, body: res.text().await.unwrap() }
}

/// The export `op` in the answer and as a download ticket, as `token`.
async fn both(app: &TestApp, token: &str, op: &str, format: &str) -> (Value, Value) {
    let q = format!(
        "mutation($f: ExportFormat!, $d: Boolean!) {{ {op}(format: $f, download: $d) {{ rows content download {{ url expiresAt }} }} }}"
    );
    let inline = app.gql(&q, json!({ "f": format, "d": false }), Some(token)).await.ok()[op].clone();
    let ticket = app.gql(&q, json!({ "f": format, "d": true }), Some(token)).await.ok()[op].clone();
    (inline, ticket)
}

#[tokio::test]
async fn a_download_is_the_export_fetched_once_by_whoever_asked_for_it() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let manager = app.login("demo", "manager").await;
    app.gql(
        "mutation { createProduct(input: { sku: \"DL-1\", name: \"Download me\", price: \"9.99\", costPrice: \"4.00\" }) { id } }",
        json!({}),
        Some(&owner),
    )
    .await
    .ok();

    // Every module: the downloaded file is, byte for byte, the file in the answer. The
    // Manager sees some customer fields masked: the download masks them alike.
    for (who, token, op, format) in [
        ("owner", &owner, "exportCustomers", "CSV"),
        ("owner", &owner, "exportCustomers", "JSON"),
        ("manager", &manager, "exportCustomers", "CSV"),
        ("owner", &owner, "exportProducts", "JSON"),
        ("owner", &owner, "exportOrders", "CSV"),
        ("owner", &owner, "exportPayments", "CSV"),
        ("owner", &owner, "exportTickets", "CSV"),
    ] {
        let (inline, ticket) = both(&app, token, op, format).await;
        assert_eq!(ticket["content"], Value::Null, "{op}");
        assert_eq!(ticket["rows"], inline["rows"], "{who} {op}: the ticket counts what matched");
        let url = ticket["download"]["url"].as_str().unwrap();
        assert!(url.starts_with("/exports/exp_"), "{url}");
        let got = fetch(&app, url, Some(token)).await;
        assert_eq!(got.status, 200, "{who} {op}: {}", got.body);
        assert_eq!(got.body, inline["content"].as_str().unwrap(), "{who} {op} {format}: the same file");
        let expected_type = if format == "CSV" { "text/csv; charset=utf-8" } else { "application/json" };
        assert_eq!(got.content_type, expected_type);
        assert!(got.disposition.starts_with("attachment; filename=\""), "{}", got.disposition);
        // Once.
        let again = fetch(&app, url, Some(token)).await;
        assert_eq!(again.status, 404, "{op}: a ticket works once");
        assert!(again.body.contains("NOT_FOUND"), "{}", again.body);
    }

    // Only the session that asked: anyone else is told the ticket does not exist, and
    // it stays the asker's.
    let (_, ticket) = both(&app, &owner, "exportCustomers", "CSV").await;
    let url = ticket["download"]["url"].as_str().unwrap().to_owned();
    assert_eq!(fetch(&app, &url, None).await.status, 401);
    let other = fetch(&app, &url, Some(&manager)).await;
    assert_eq!(other.status, 404, "{}", other.body);
    let owner_again = app.login("demo", "owner").await;
    assert_eq!(fetch(&app, &url, Some(&owner_again)).await.status, 404, "another session of the same user is not the asker");
    assert_eq!(fetch(&app, "/exports/exp_forged", Some(&owner)).await.status, 404);
    assert_eq!(fetch(&app, &url, Some(&owner)).await.status, 200);

    // Ten fetches of one ticket at once: one file.
    let (_, ticket) = both(&app, &owner, "exportCustomers", "CSV").await;
    let url = ticket["download"]["url"].as_str().unwrap().to_owned();
    let racing = (0..10).map(|_| fetch(&app, &url, Some(&owner)));
    let mut statuses: Vec<u16> = futures_util::future::join_all(racing).await.iter().map(|f| f.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 404, 404, 404, 404, 404, 404, 404, 404, 404]);

    // Both ends are on the record, under the same export id.
    let asked = app
        .sql_values("SELECT target_id FROM audit_entries WHERE action = 'customers.exported' AND CAST(changes AS TEXT) LIKE '%download%' ORDER BY seq DESC", vec![])
        .await;
    let asked: Vec<String> = asked.iter().map(|r| r.try_get_by_index::<String>(0).unwrap()).collect();
    let fetched =
        app.sql_values("SELECT target_id FROM audit_entries WHERE action = 'export.downloaded' AND module = 'customers'", vec![]).await;
    let fetched: Vec<String> = fetched.iter().map(|r| r.try_get_by_index::<String>(0).unwrap()).collect();
    assert_eq!(asked.len(), 5, "each ticket's export is audited when it is asked for");
    assert_eq!(fetched.len(), 5, "and each download when it starts");
    assert!(fetched.iter().all(|id| asked.contains(id)), "{asked:?} {fetched:?}");
}

#[tokio::test]
async fn a_download_reads_as_its_asker_may_read_when_it_is_fetched() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let manager = app.login("demo", "manager").await;

    // Signed out between asking and fetching: nothing.
    let (_, ticket) = both(&app, &manager, "exportCustomers", "CSV").await;
    let url = ticket["download"]["url"].as_str().unwrap().to_owned();
    app.gql("mutation { logout }", json!({}), Some(&manager)).await.ok();
    let got = fetch(&app, &url, Some(&manager)).await;
    assert_eq!(got.status, 401, "{}", got.body);

    // The export permission revoked in between: refused, and nothing of the file sent.
    let manager = app.login("demo", "manager").await;
    let (_, ticket) = both(&app, &manager, "exportCustomers", "CSV").await;
    let url = ticket["download"]["url"].as_str().unwrap().to_owned();
    let manager_id = uuid::Uuid::parse_str(&app.user_id("demo", "manager").await).unwrap();
    let assignments = app.sql_values("SELECT id FROM role_assignments WHERE user_id = ?", vec![manager_id.into()]).await;
    assert_eq!(assignments.len(), 1);
    let assignment = assignments[0].try_get_by_index::<uuid::Uuid>(0).unwrap().to_string();
    let r = app.gql("mutation($id: ID!) { unassignRole(id: $id) }", json!({ "id": assignment }), Some(&owner)).await;
    assert!(r.body.get("errors").is_none(), "{}", r.body);
    let got = fetch(&app, &url, Some(&manager)).await;
    assert_eq!(got.status, 403, "{}", got.body);
    assert!(!got.body.contains("@"), "no customer data: {}", got.body);

    // Without dataExport at asking time there is no ticket at all.
    let staff = app.login("demo", "staff").await;
    let r = app.gql("mutation { exportCustomers(format: CSV, download: true) { download { url } } }", json!({}), Some(&staff)).await;
    assert_eq!(r.code(), Some("FORBIDDEN"), "{}", r.body);
}

#[tokio::test]
async fn the_audit_log_downloads_like_it_exports() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    for i in 0..3 {
        app.gql(
            &format!("mutation {{ createCustomer(input: {{ name: \"Logged {i}\", taxId: \"GB00000000{i}\" }}) {{ id }} }}"),
            json!({}),
            Some(&owner),
        )
        .await
        .ok();
    }
    // The customers' entries: the file is the inline export's, newest first. (The
    // exports' own entries are in the audit module, outside the filter.)
    let q = "mutation($d: Boolean!) { exportAuditLog(format: CSV, filter: { module: \"customers\" }, download: $d) { rows content download { url } } }";
    let inline = app.gql(q, json!({ "d": false }), Some(&owner)).await.ok()["exportAuditLog"].clone();
    let ticket = app.gql(q, json!({ "d": true }), Some(&owner)).await.ok()["exportAuditLog"].clone();
    assert_eq!((ticket["rows"].clone(), ticket["content"].clone()), (inline["rows"].clone(), Value::Null));
    let url = ticket["download"]["url"].as_str().unwrap();
    let got = fetch(&app, url, Some(&owner)).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.body, inline["content"].as_str().unwrap());
    assert!(got.body.contains("customer.created") && got.body.lines().count() >= 4, "{}", got.body);
    assert_eq!(fetch(&app, url, Some(&owner)).await.status, 404);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_entries WHERE action = 'export.downloaded' AND module = 'audit'", vec![]).await, 1);

    // Without audit.export there is no ticket.
    let manager = app.login("demo", "manager").await;
    assert_eq!(app.gql(q, json!({ "d": true }), Some(&manager)).await.code(), Some("FORBIDDEN"));
}
