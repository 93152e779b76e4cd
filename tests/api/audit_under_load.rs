//! Nothing that must be audited is lost under load: every refused or failed request
//! leaves its entry, including requests the execution timeout cuts short while they
//! wait for SQLite's single writer.

use crate::helpers::TestApp;
use serde_json::json;
use std::collections::HashSet;

#[tokio::test]
async fn every_refused_or_stopped_request_leaves_one_entry_under_concurrency() {
    // A short execution timeout, so that some of the requests below are stopped while
    // they wait their turn.
    let app = TestApp::spawn_with(&[("PALISADE_EXECUTION_TIMEOUT_MS", "300")]).await;
    let staff = app.login("demo", "staff").await;
    let mut tasks = Vec::new();
    for i in 0..120 {
        let (client, url, staff) = (app.client.clone(), format!("{}/graphql", app.url), staff.clone());
        tasks.push(tokio::spawn(async move {
            let body = if i % 2 == 0 {
                json!({ "query": "mutation { createDepartment(name: \"not allowed\") { id } }" })
            } else {
                json!({ "query": "mutation($p: String!) { login(input: { workspace: \"demo\", login: \"sam\", password: $p }) { token } }",
                        "variables": { "p": format!("wrong-password-{i}") } })
            };
            let mut req = client.post(url).json(&body);
            if i % 2 == 0 {
                req = req.bearer_auth(staff);
            }
            let res = req.send().await.unwrap();
            let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
            let status = res.status().as_u16();
            (id, status)
        }));
    }
    let mut ids = HashSet::new();
    let mut statuses = Vec::new();
    for t in tasks {
        let (id, status) = t.await.unwrap();
        ids.insert(id);
        statuses.push(status);
    }
    assert_eq!(ids.len(), 120);
    // Entries of stopped requests are written after their answer left: wait for them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let missing = loop {
        let mut missing = Vec::new();
        for id in &ids {
            if app.count("SELECT COUNT(*) FROM audit_entries WHERE request_id = ?", vec![id.clone().into()]).await != 1 {
                missing.push(id.clone());
            }
        }
        if missing.is_empty() || std::time::Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(missing.is_empty(), "{} of 120 requests have no (or more than one) entry; statuses {statuses:?}", missing.len());
}
