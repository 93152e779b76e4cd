//! Reading the audit log: only the modules a reader may read, values masked by their
//! field access; sensitive reads and explanations on the record; exports; retention
//! that keeps the chain verifiable.
use crate::helpers::TestApp;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const LOG: &str = "query($f: AuditLogFilter) { auditLog(first: 100, filter: $f) { edges { node { seq action module targetId changes impersonatorId } } } }";

async fn modules_seen(app: &TestApp, token: &str) -> BTreeSet<String> {
    let r = app.gql(LOG, json!({}), Some(token)).await;
    r.ok()["auditLog"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["module"].as_str().unwrap().to_owned()).collect()
}

async fn customer_with_history(app: &TestApp, owner: &str) -> String {
    let r = app
        .gql(
            "mutation { createCustomer(input: { name: \"Audited Ltd\", email: \"ops@audited.example\", taxId: \"GB999888777\" }) { id } }",
            json!({}),
            Some(owner),
        )
        .await;
    r.ok()["createCustomer"]["id"].as_str().unwrap().to_owned()
}

/// (reader, extra role) -> the modules of the log they see, as data. The log holds
/// entries of every module listed (checked), so each row can fail.
#[tokio::test]
async fn each_reader_sees_only_the_modules_they_may_read_with_their_own_field_access() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    // Entries of many modules: customers, roles, auth, security, support, apikeys.
    let customer = customer_with_history(&app, &owner).await;
    let partner = app.partner_role(&owner).await;
    app.create_key(&owner, "k", &partner).await;
    app.gql("mutation { updateSupportAccess(staff: true, owners: false) { staff } }", json!({}), Some(&owner)).await.ok();
    app.gql(
        "mutation($i: SecuritySettingsInput!) { updateSecuritySettings(input: $i) { maxSessions } }",
        json!({ "i": { "maxSessions": 20 } }),
        Some(&owner),
    )
    .await
    .ok();
    let all = modules_seen(&app, &owner).await;
    for m in ["customers", "roles", "auth", "security", "support", "apikeys"] {
        assert!(all.contains(m), "the Owner's log lacks {m}: {all:?}");
    }

    // An auditor who may read customers (emails masked, tax ids not at all) and the
    // audit log, and nothing about staff, roles or settings.
    let auditor = app
        .create_role(
            &owner,
            json!({ "name": "Customer auditor", "rank": 20, "permissions": ["AUDIT_READ", "CUSTOMERS_READ"],
                    "scopes": [{ "module": "CUSTOMERS", "scope": "ALL" }],
                    "fields": [{ "field": "CUSTOMER_EMAIL", "access": "MASKED" }] }),
        )
        .await;
    app.assign_role(&owner, &auditor, &app.user_id("demo", "guest").await).await;
    let guest = app.login("demo", "guest").await;
    let seen = modules_seen(&app, &guest).await;
    let allowed: BTreeSet<String> = ["customers", "products", "orders", "quotes", "tickets", "jobs", "invoices", "api", "audit"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(seen.contains("customers"), "{seen:?}");
    assert!(seen.is_subset(&allowed), "the auditor sees modules beyond their reads: {:?}", seen.difference(&allowed).collect::<Vec<_>>());
    // Asking for a module one may not read gives nothing, not an error.
    let r = app.gql(LOG, json!({ "f": { "module": "roles" } }), Some(&guest)).await;
    assert_eq!(r.ok()["auditLog"]["edges"], json!([]));

    // Field access applies to before/after values: the tax id change shows as null
    // (changed, content withheld); the Owner sees it redacted, never in clear.
    let created = |token: String| {
        let app = &app;
        let customer = customer.clone();
        async move {
            let r = app.gql(LOG, json!({ "f": { "targetId": customer, "action": "customer.created" } }), Some(&token)).await;
            r.ok()["auditLog"]["edges"][0]["node"]["changes"].clone()
        }
    };
    let as_owner = created(owner.clone()).await;
    assert_eq!(as_owner["taxId"]["after"], "[redacted]");
    let as_guest = created(guest.clone()).await;
    assert_eq!(as_guest["taxId"], Value::Null, "{as_guest}");
    assert_eq!(as_guest["email"]["after"], "[redacted]");
    assert_eq!(as_guest["name"]["after"], "Audited Ltd");
    // The record's own history follows the same rules.
    let h = app.gql("query($id: ID!) { customer(id: $id) { history { action changes } } }", json!({ "id": customer }), Some(&guest)).await;
    assert_eq!(h.ok()["customer"]["history"][0]["changes"]["taxId"], Value::Null);
    // Without audit.read, no log at all.
    let staff = app.login("demo", "staff").await;
    assert_eq!(app.gql(LOG, json!({}), Some(&staff)).await.code(), Some("FORBIDDEN"));
    // Nothing in any answer ever holds a sensitive value.
    let dump = app.gql(LOG, json!({}), Some(&owner)).await.body.to_string();
    assert!(!dump.contains("GB999888777") && !dump.contains("ops@audited.example"));
}

#[tokio::test]
async fn sensitive_reads_and_explanations_are_on_the_record_once_per_request() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let reads = || app.entries("access.sensitive_read");
    let n = |v: &Value| v["valuesShown"]["after"]["customer.taxId"].as_i64();

    // Reading tax ids in full: one entry for the request, however many rows.
    let r = app.gql("{ customers(first: 10) { edges { node { id taxId } } } }", json!({}), Some(&owner)).await;
    let shown = r.ok()["customers"]["edges"].as_array().unwrap().iter().filter(|e| e["node"]["taxId"].is_string()).count();
    assert!(shown > 1, "the demo has customers with tax ids");
    let rows = reads().await;
    assert_eq!(rows.len(), 1);
    let changes: Value = rows[0].try_get_by_index::<Option<Value>>(5).unwrap().unwrap();
    assert_eq!(n(&changes), Some(shown as i64), "{changes}");
    // Not selecting it, or seeing it only masked, is not a sensitive read.
    app.gql("{ customers(first: 10) { edges { node { id name } } } }", json!({}), Some(&owner)).await.ok();
    let staff = app.login("demo", "staff").await;
    app.gql("{ customers(first: 10) { edges { node { id taxId } } } }", json!({}), Some(&staff)).await.ok();
    assert_eq!(reads().await.len(), 1);
    // IBANs too.
    app.gql("{ payments(first: 5) { edges { node { id iban } } } }", json!({}), Some(&owner)).await.ok();
    let rows = reads().await;
    assert_eq!(rows.len(), 2);
    let changes: Value = rows[1].try_get_by_index::<Option<Value>>(5).unwrap().unwrap();
    assert!(changes["valuesShown"]["after"]["payment.iban"].as_i64().unwrap() > 0, "{changes}");

    // Asking why someone may do something is on the record, with the answer.
    let staff_id = app.user_id("demo", "staff").await;
    let r = app
        .gql(
            "query($u: ID!) { explainAccess(userId: $u, permission: CUSTOMERS_DELETE) { allowed } }",
            json!({ "u": staff_id }),
            Some(&owner),
        )
        .await;
    assert_eq!(r.ok()["explainAccess"]["allowed"], false);
    let rows = app.entries("access.explained").await;
    assert_eq!(rows.len(), 1);
    let changes: Value = rows[0].try_get_by_index::<Option<Value>>(5).unwrap().unwrap();
    assert_eq!(changes["question"]["after"]["permission"], "customers.delete");
    assert_eq!(changes["allowed"]["after"], false);
    assert_eq!(rows[0].try_get_by_index::<String>(4).unwrap(), "roles");

    // No record, no read: if the entry cannot be written, the values are not sent.
    app.refuse_audit_writes().await;
    let r = app.gql("{ customers(first: 10) { edges { node { id taxId } } } }", json!({}), Some(&owner)).await;
    assert_eq!((r.status, r.code()), (500, Some("INTERNAL")));
    assert!(r.body.get("data").is_none(), "{}", r.body);
    assert!(!r.body.to_string().contains("GB"), "{}", r.body);
}

#[tokio::test]
async fn the_log_exports_as_csv_or_json_filtered_like_the_reader_sees_it() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    customer_with_history(&app, &owner).await;
    let q = "mutation($f: ExportFormat!, $x: AuditLogFilter) { exportAuditLog(format: $f, filter: $x) { format rows content } }";
    let r = app.gql(q, json!({ "f": "JSON", "x": { "module": "customers" } }), Some(&owner)).await;
    let p = &r.ok()["exportAuditLog"];
    let rows: Vec<Value> = serde_json::from_str(p["content"].as_str().unwrap()).unwrap();
    assert_eq!(rows.len() as i64, p["rows"].as_i64().unwrap());
    assert!(rows.iter().all(|e| e["module"] == "customers"));
    assert!(rows.iter().any(|e| e["changes"]["taxId"]["after"] == "[redacted]"), "changes stay structured");
    assert!(rows[0]["seq"].is_i64() && rows[0]["occurredAt"].is_string());
    let r = app.gql(q, json!({ "f": "CSV" }), Some(&owner)).await;
    let csv = r.ok()["exportAuditLog"]["content"].as_str().unwrap().to_owned();
    assert!(
        csv.starts_with("seq,id,occurredAt,actorKind,actorId,actorLabel,impersonatorId,ip,userAgent,requestId,action,module,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count() as i64, r.ok()["exportAuditLog"]["rows"].as_i64().unwrap() + 1);
    // The export itself is audited, with its filter.
    let rows = app.entries("audit.exported").await;
    assert_eq!(rows.len(), 2);
    let changes: Value = rows[0].try_get_by_index::<Option<Value>>(5).unwrap().unwrap();
    assert_eq!(changes["filter"]["after"]["module"], "customers");
    // Others: no audit.export, or no fresh step-up.
    let manager = app.login("demo", "manager").await;
    assert_eq!(app.gql(q, json!({ "f": "CSV" }), Some(&manager)).await.code(), Some("FORBIDDEN"));
    app.clock.advance(chrono::Duration::minutes(11));
    let owner = {
        let r = app.gql(q, json!({ "f": "CSV" }), Some(&owner)).await;
        assert_eq!(r.code(), Some("STEP_UP_REQUIRED"));
        app.login("demo", "owner").await
    };
    app.gql(q, json!({ "f": "CSV" }), Some(&owner)).await.ok();
}

const VERIFY: &str = "{ verifyAuditChain { ok checked firstBrokenSeq problem purgedThrough } }";

#[tokio::test]
async fn retention_purges_a_prefix_and_the_rest_stays_verifiable() {
    let app = TestApp::spawn().await;
    let ws = uuid::Uuid::parse_str(&app.workspace_id("demo").await).unwrap();
    let owner = app.login("demo", "owner").await;
    let set = "mutation($d: Int) { updateAuditRetention(days: $d) { days workspaceDays } }";
    assert_eq!(app.gql(set, json!({ "d": 7 }), Some(&owner)).await.code(), Some("BAD_USER_INPUT"), "at least 30 days");
    assert_eq!(app.gql(set, json!({ "d": 30 }), Some(&owner)).await.ok()["updateAuditRetention"]["days"], 30);
    let apply = "mutation { applyAuditRetention }";
    assert_eq!(app.gql(apply, json!({}), Some(&owner)).await.ok()["applyAuditRetention"], 0, "nothing is old yet");
    let total = app.count("SELECT COUNT(*) FROM audit_entries WHERE workspace_id = ?", vec![ws.into()]).await;

    // A month and a day later, with some fresh activity.
    app.clock.advance(chrono::Duration::days(31));
    let owner = app.login("demo", "owner").await;
    app.login("demo", "staff").await;
    let fresh = app
        .count("SELECT COUNT(*) FROM audit_entries WHERE workspace_id = ? AND occurred_at >= ?", vec![ws.into(), app_now(&app).into()])
        .await;
    let purged = app.gql(apply, json!({}), Some(&owner)).await.ok()["applyAuditRetention"].as_i64().unwrap();
    assert_eq!(purged, total, "every entry older than 30 days went (the first application's record too)");
    let left = app.count("SELECT COUNT(*) FROM audit_entries WHERE workspace_id = ?", vec![ws.into()]).await;
    assert_eq!(left, fresh + 1, "the fresh entries and the purge record stay");

    // The chain is still whole: checking starts at the anchor.
    let v = app.gql(VERIFY, json!({}), Some(&owner)).await;
    let v = &v.ok()["verifyAuditChain"];
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["purgedThrough"], total);
    assert_eq!(v["checked"], left);
    // New entries continue the sequence.
    let log = app.gql(LOG, json!({ "f": { "action": "audit.purged" } }), Some(&owner)).await;
    let purge = log.ok()["auditLog"]["edges"][0]["node"].clone();
    assert_eq!(purge["seq"].as_i64().unwrap(), total + left, "seq never restarts");
    assert_eq!(purge["changes"]["throughSeq"]["after"], total);

    // Tampering with the anchor, or with what follows it, is caught.
    app.sql("UPDATE audit_anchors SET hash = '0000000000000000000000000000000000000000000000000000000000000001'").await;
    let v = app.gql(VERIFY, json!({}), Some(&owner)).await;
    assert_eq!(v.ok()["verifyAuditChain"]["problem"], "retention anchor does not match the purge record");
    assert_eq!(v.ok()["verifyAuditChain"]["firstBrokenSeq"], total + 1);
    let first_kept = total + 1;
    let anchor_hash = purge["changes"]["anchorHash"]["after"].as_str().unwrap().to_owned();
    app.sql_values("UPDATE audit_anchors SET hash = ?", vec![anchor_hash.into()]).await;
    assert_eq!(app.gql(VERIFY, json!({}), Some(&owner)).await.ok()["verifyAuditChain"]["ok"], true);
    app.sql_values("DELETE FROM audit_entries WHERE workspace_id = ? AND seq = ?", vec![ws.into(), first_kept.into()]).await;
    let v = app.gql(VERIFY, json!({}), Some(&owner)).await;
    assert_eq!(v.ok()["verifyAuditChain"]["firstBrokenSeq"], first_kept, "{}", v.body);

    // The background sweep does the same as the system actor, for every workspace.
    let acme = uuid::Uuid::parse_str(&app.workspace_id("acme").await).unwrap();
    app.sql_values("UPDATE workspaces SET audit_retention_days = 30 WHERE id = ?", vec![acme.into()]).await;
    let swept = palisade::service::audit::sweep(&app.state).await.unwrap();
    assert!(swept > 0);
    let rows =
        app.sql_values("SELECT actor_type FROM audit_entries WHERE workspace_id = ? AND action = 'audit.purged'", vec![acme.into()]).await;
    assert_eq!(rows[0].try_get_by_index::<String>(0).unwrap(), "system");
    let acme_owner = app.login("acme", "owner").await;
    assert_eq!(app.gql(VERIFY, json!({}), Some(&acme_owner)).await.ok()["verifyAuditChain"]["ok"], true);
}

fn app_now(app: &TestApp) -> chrono::DateTime<chrono::Utc> {
    use palisade::clock::Clock;
    app.clock.now() - chrono::Duration::minutes(1)
}

/// Many readers of sensitive fields at once, in two workspaces: each request's read is
/// on the record exactly once, in its own workspace's chain, and both chains verify
/// (the group writer commits many requests' entries in one transaction).
#[tokio::test]
async fn concurrent_sensitive_reads_are_each_recorded_once_and_the_chains_hold() {
    let app = TestApp::spawn().await;
    let demo = app.login("demo", "owner").await;
    let acme = app.login("acme", "owner").await;
    app.gql("mutation { createCustomer(input: { name: \"Acme Taxed\", taxId: \"GB123123123\" }) { id } }", json!({}), Some(&acme))
        .await
        .ok();
    let page = "{ customers(first: 20) { edges { node { name taxId } } } }";
    let before = app.count("SELECT COUNT(*) FROM audit_entries WHERE action = 'access.sensitive_read'", vec![]).await;
    let reads = (0..40).map(|i| {
        let token = if i % 2 == 0 { demo.clone() } else { acme.clone() };
        let app = &app;
        async move { app.gql(page, json!({}), Some(&token)).await }
    });
    for r in futures_util::future::join_all(reads).await {
        assert!(r.ok()["customers"]["edges"][0]["node"]["taxId"].is_string(), "{}", r.body);
    }
    let after = app.count("SELECT COUNT(*) FROM audit_entries WHERE action = 'access.sensitive_read'", vec![]).await;
    assert_eq!(after - before, 40, "one entry per request");
    let ids: Vec<_> = app.sql_values("SELECT request_id FROM audit_entries WHERE action = 'access.sensitive_read'", vec![]).await;
    let distinct: BTreeSet<String> = ids.iter().map(|r| r.try_get_by_index::<String>(0).unwrap()).collect();
    assert_eq!(distinct.len() as i64, after, "each under its own request id");
    for token in [&demo, &acme] {
        let v = app.gql("{ verifyAuditChain { ok checked } }", json!({}), Some(token)).await;
        assert_eq!(v.ok()["verifyAuditChain"]["ok"], true, "{}", v.body);
    }

    // One tenant's held chain (a long import holds its head until it commits) delays
    // only that tenant: on PostgreSQL, where tenants' writers really run side by side.
    if app.is_postgres() {
        use sea_orm::{ConnectionTrait, TransactionTrait};
        use sha2::Digest;
        let demo_id = app.workspace_id("demo").await;
        let d = sha2::Sha256::digest(demo_id.as_bytes());
        let key = i32::from_be_bytes([d[0], d[1], d[2], d[3]]);
        let held = app.db.begin().await.unwrap();
        held.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({}, {key})", 0x4155_4454)).await.unwrap();
        let waiting = {
            let (url, client, demo) = (app.url.clone(), app.client.clone(), demo.clone());
            tokio::spawn(async move {
                client
                    .post(format!("{url}/graphql"))
                    .bearer_auth(demo)
                    .json(&json!({ "query": page }))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        };
        // Only once demo's entry is waiting for the chain does the other read start.
        let mut polls = 0;
        let waiting_on_demo = format!(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = {} AND objid = {} AND objsubid = 2",
            0x4155_4454, key as u32
        );
        while app.count(&waiting_on_demo, vec![]).await == 0 {
            polls += 1;
            assert!(polls < 300, "demo's read never waited for its chain");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let other = tokio::time::timeout(std::time::Duration::from_secs(30), app.gql(page, json!({}), Some(&acme))).await;
        let other = other.expect("another workspace's read waited for demo's chain");
        assert!(other.ok()["customers"]["edges"][0]["node"]["taxId"].is_string());
        assert!(!waiting.is_finished(), "demo's read is on the record only once its chain is free");
        held.rollback().await.unwrap();
        assert_eq!(waiting.await.unwrap(), 200);
    }
}
