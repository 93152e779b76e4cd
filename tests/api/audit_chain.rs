//! The audit log's per-workspace hash chain: `verifyAuditChain` finds tampering done
//! directly in the database, ranges link to the entry before them, and concurrent
//! writers never fork a chain.

use crate::helpers::{DEMO_PASSWORD, TestApp};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

const VERIFY: &str = "query($f: Int, $t: Int) { verifyAuditChain(from: $f, to: $t) { ok checked firstBrokenSeq problem } }";
const DEMO: &str = "(SELECT id FROM workspaces WHERE slug = 'demo')";
const CREATE_CUSTOMER: &str = "mutation($i: CustomerInput!) { createCustomer(input: $i) { id } }";

async fn verify(app: &TestApp, token: &str, from: Option<i64>, to: Option<i64>) -> Value {
    let r = app.gql(VERIFY, json!({ "f": from, "t": to }), Some(token)).await;
    r.ok()["verifyAuditChain"].clone()
}

fn broken(v: &Value) -> (bool, Option<i64>, Option<&str>) {
    (v["ok"].as_bool().unwrap(), v["firstBrokenSeq"].as_i64(), v["problem"].as_str())
}

/// The demo workspace's sequence numbers, in order.
async fn demo_seqs(app: &TestApp) -> Vec<i64> {
    let rows = app.sql_values(&format!("SELECT seq FROM audit_entries WHERE workspace_id = {DEMO} ORDER BY seq"), vec![]).await;
    rows.iter().map(|r| r.try_get_by_index::<Option<i64>>(0).unwrap().expect("every new entry is chained")).collect()
}

/// A fresh app whose demo chain has a dozen entries or so; returns the owner's token.
async fn app_with_history() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    for name in ["Alpha", "Beta", "Gamma"] {
        app.gql(CREATE_CUSTOMER, json!({ "i": { "name": name } }), Some(&owner)).await.ok();
    }
    for who in ["manager", "staff"] {
        app.login("demo", who).await;
    }
    assert!(demo_seqs(&app).await.len() >= 8);
    (app, owner)
}

#[tokio::test]
async fn an_untouched_chain_verifies_and_links_entry_to_entry() {
    let (app, owner) = app_with_history().await;
    let seqs = demo_seqs(&app).await;
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    let v = verify(&app, &owner, None, None).await;
    assert_eq!(v, json!({ "ok": true, "checked": seqs.len(), "firstBrokenSeq": null, "problem": null }));

    // Stored links: the first entry links to the genesis value, each other to the one before.
    let rows =
        app.sql_values(&format!("SELECT seq, prev_hash, hash FROM audit_entries WHERE workspace_id = {DEMO} ORDER BY seq"), vec![]).await;
    let mut prev = palisade::audit::chain::GENESIS.to_owned();
    for r in &rows {
        assert_eq!(r.try_get_by_index::<Option<String>>(1).unwrap().unwrap(), prev);
        prev = r.try_get_by_index::<Option<String>>(2).unwrap().unwrap();
        assert_eq!(prev.len(), 64);
        assert!(prev.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    // Another workspace's chain is separate and starts at 1 too.
    let acme =
        app.count("SELECT MIN(seq) FROM audit_entries a JOIN workspaces w ON a.workspace_id = w.id WHERE w.slug = 'acme'", vec![]).await;
    assert_eq!(acme, 1);
    let acme_owner = app.login("acme", "owner").await;
    let v = verify(&app, &acme_owner, None, None).await;
    assert_eq!(v["ok"], true);
    assert!((v["checked"].as_i64().unwrap() as usize) < seqs.len());
}

#[tokio::test]
async fn an_edited_entry_is_a_hash_mismatch_at_its_seq() {
    let (app, owner) = app_with_history().await;
    app.sql(&format!("UPDATE audit_entries SET action = 'x' WHERE workspace_id = {DEMO} AND seq = 5")).await;
    let v = verify(&app, &owner, None, None).await;
    assert_eq!(broken(&v), (false, Some(5), Some("hash mismatch")));
    assert_eq!(v["checked"], 4);

    // Every field counts, even one that is null.
    let (app, owner) = app_with_history().await;
    app.sql(&format!("UPDATE audit_entries SET reason = 'made up' WHERE workspace_id = {DEMO} AND seq = 3")).await;
    assert_eq!(broken(&verify(&app, &owner, None, None).await), (false, Some(3), Some("hash mismatch")));
}

#[tokio::test]
async fn a_deleted_entry_is_a_gap_at_its_seq() {
    let (app, owner) = app_with_history().await;
    app.sql(&format!("DELETE FROM audit_entries WHERE workspace_id = {DEMO} AND seq = 4")).await;
    let v = verify(&app, &owner, None, None).await;
    assert_eq!(broken(&v), (false, Some(4), Some("missing entry (gap in sequence)")));
    assert_eq!(v["checked"], 3);

    // The first entry too: the chain must start from the genesis value at 1.
    let (app, owner) = app_with_history().await;
    app.sql(&format!("DELETE FROM audit_entries WHERE workspace_id = {DEMO} AND seq = 1")).await;
    assert_eq!(broken(&verify(&app, &owner, None, None).await), (false, Some(1), Some("missing entry (gap in sequence)")));
}

#[tokio::test]
async fn swapped_entries_are_caught_at_the_first_of_them() {
    let (app, owner) = app_with_history().await;
    // Three steps, as the unique (workspace, seq) index refuses a duplicate in between.
    app.sql(&format!("UPDATE audit_entries SET seq = -1 WHERE workspace_id = {DEMO} AND seq = 6")).await;
    app.sql(&format!("UPDATE audit_entries SET seq = 6 WHERE workspace_id = {DEMO} AND seq = 7")).await;
    app.sql(&format!("UPDATE audit_entries SET seq = 7 WHERE workspace_id = {DEMO} AND seq = -1")).await;
    let v = verify(&app, &owner, None, None).await;
    assert_eq!((v["ok"].as_bool(), v["firstBrokenSeq"].as_i64()), (Some(false), Some(6)), "{v}");
    assert_eq!(v["checked"], 5);
}

/// Edits entry `seq` and stores the hash recomputed over the edited fields and its own
/// stored link, as someone who knows the scheme would.
async fn edit_and_rehash(app: &TestApp, seq: i64) {
    use entity::audit_entry::{Column as C, Entity};
    let demo = app.sql_values("SELECT id FROM workspaces WHERE slug = 'demo'", vec![]).await[0].try_get_by_index::<uuid::Uuid>(0).unwrap();
    let mut e = Entity::find().filter(C::WorkspaceId.eq(demo)).filter(C::Seq.eq(seq)).one(&app.db).await.unwrap().unwrap();
    e.action = "x".into();
    let hash = palisade::audit::chain::entry_hash(e.prev_hash.as_deref().unwrap(), &e);
    app.sql_values(
        &format!("UPDATE audit_entries SET action = 'x', hash = ? WHERE workspace_id = {DEMO} AND seq = ?"),
        vec![hash.into(), seq.into()],
    )
    .await;
}

#[tokio::test]
async fn an_edited_and_rehashed_entry_breaks_the_next_link() {
    let (app, owner) = app_with_history().await;
    edit_and_rehash(&app, 5).await;
    let v = verify(&app, &owner, None, None).await;
    assert_eq!(broken(&v), (false, Some(6), Some("broken link")));
    assert_eq!(v["checked"], 5);

    // The rehashed entry itself is consistent with what came before it.
    assert_eq!(broken(&verify(&app, &owner, None, Some(5)).await), (true, None, None));
}

#[tokio::test]
async fn ranges_check_their_part_and_link_to_the_entry_before() {
    let (app, owner) = app_with_history().await;
    let n = demo_seqs(&app).await.len() as i64;
    assert_eq!(verify(&app, &owner, Some(3), Some(5)).await, json!({ "ok": true, "checked": 3, "firstBrokenSeq": null, "problem": null }));
    assert_eq!(verify(&app, &owner, Some(n - 1), None).await["checked"], 2);
    assert_eq!(verify(&app, &owner, None, Some(2)).await["checked"], 2);
    assert_eq!(verify(&app, &owner, Some(n + 5), None).await["checked"], 0);
    assert_eq!(verify(&app, &owner, Some(2), Some(n + 100)).await["checked"], n - 1);

    // Entry 2 edited: a range from 3 on links to 2's stored hash and is intact; one
    // that includes 2 is not.
    app.sql(&format!("UPDATE audit_entries SET module = 'x' WHERE workspace_id = {DEMO} AND seq = 2")).await;
    assert_eq!(broken(&verify(&app, &owner, Some(3), None).await), (true, None, None));
    assert_eq!(broken(&verify(&app, &owner, Some(2), Some(4)).await), (false, Some(2), Some("hash mismatch")));
    assert_eq!(broken(&verify(&app, &owner, None, None).await), (false, Some(2), Some("hash mismatch")));

    // Entry 4 rehashed after an edit: a range from 5 links to 4's (new) stored hash,
    // which is not what 5 was linked to.
    edit_and_rehash(&app, 4).await;
    assert_eq!(broken(&verify(&app, &owner, Some(4), Some(4)).await), (true, None, None));
    assert_eq!(broken(&verify(&app, &owner, Some(5), None).await), (false, Some(5), Some("broken link")));

    // The entry before the range is gone: the range has nothing to link to.
    app.sql(&format!("DELETE FROM audit_entries WHERE workspace_id = {DEMO} AND seq = 6")).await;
    assert_eq!(broken(&verify(&app, &owner, Some(7), None).await), (false, Some(6), Some("missing entry (gap in sequence)")));

    // Bad ranges are refused.
    let r = app.gql(VERIFY, json!({ "f": 5, "t": 4 }), Some(&owner)).await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"));
    let r = app.gql(VERIFY, json!({ "f": 0 }), Some(&owner)).await;
    assert!(r.body["errors"].is_array() && r.data()["verifyAuditChain"].is_null(), "{}", r.body);
}

#[tokio::test]
async fn only_audit_readers_may_verify() {
    let app = TestApp::spawn().await;
    for who in ["staff", "guest"] {
        let t = app.login("demo", who).await;
        let r = app.gql(VERIFY, json!({}), Some(&t)).await;
        assert_eq!(r.code(), Some("FORBIDDEN"), "{who}");
    }
    assert_eq!(app.gql(VERIFY, json!({}), None).await.code(), Some("UNAUTHENTICATED"));
    // The refusals are chained like everything else.
    let owner = app.login("demo", "owner").await;
    assert_eq!(verify(&app, &owner, None, None).await["ok"], true);
    let refused = app
        .count(
            &format!(
                "SELECT COUNT(*) FROM audit_entries WHERE workspace_id = {DEMO} AND target_id = 'verifyAuditChain' AND seq IS NOT NULL"
            ),
            vec![],
        )
        .await;
    assert_eq!(refused, 2);
}

#[tokio::test]
async fn concurrent_writers_never_fork_a_chain() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let staff = app.login("demo", "staff").await;
    let guest = app.login("demo", "guest").await;
    let before = demo_seqs(&app).await.len();
    let kinds = [
        ("action = 'customer.created'", 8),
        ("error_code = 'BAD_USER_INPUT'", 3),
        ("target_id = 'deleteCustomer'", 3),
        ("action = 'access.fields_withheld'", 3),
    ];
    let mut counts = Vec::new();
    for (sql, _) in &kinds {
        counts.push(app.count(&format!("SELECT COUNT(*) FROM audit_entries WHERE workspace_id = {DEMO} AND {sql}"), vec![]).await);
    }

    let mut work: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>> = Vec::new();
    for i in 0..8 {
        // Committed mutations.
        let (owner, app) = (&owner, &app);
        work.push(Box::pin(async move {
            app.gql(CREATE_CUSTOMER, json!({ "i": { "name": format!("Concurrent {i}") } }), Some(owner)).await.ok();
        }));
    }
    for who in ["owner", "manager", "staff", "sam", "guest", "former"] {
        // Sign-ins, one of them refused (inactive user); and sign-ins to no workspace,
        // which go to the platform chain.
        let app = &app;
        work.push(Box::pin(async move {
            app.try_login("demo", who, DEMO_PASSWORD).await;
        }));
        work.push(Box::pin(async move {
            app.try_login("nowhere", who, DEMO_PASSWORD).await;
        }));
    }
    for i in 0..3 {
        let (staff, guest) = (&staff, &guest);
        let app = &app;
        // A mutation that fails inside its transaction, and one refused by the gate.
        work.push(Box::pin(async move {
            let r = app.gql(CREATE_CUSTOMER, json!({ "i": { "name": "" } }), Some(staff)).await;
            assert_eq!(r.code(), Some("BAD_USER_INPUT"));
        }));
        work.push(Box::pin(async move {
            let r = app.gql("mutation { deleteCustomer(id: \"00000000-0000-0000-0000-000000000000\") }", json!({}), Some(guest)).await;
            assert!(r.code().is_some(), "{i}: {}", r.body);
        }));
        // Reads that withhold sensitive fields (audited after the request).
        work.push(Box::pin(async move {
            let q = "{ customers(first: 20) { edges { node { email taxId } } } tickets(first: 20) { edges { node { internalNotes } } } }";
            let r = app.gql(q, json!({}), Some(guest)).await;
            assert_eq!(r.code(), Some("FIELD_FORBIDDEN"), "{}", r.body);
        }));
    }
    futures_util::future::join_all(work).await;

    // Every path that appends took part: committed, failed, refused, withheld.
    for (i, (sql, want)) in kinds.iter().enumerate() {
        let n = app.count(&format!("SELECT COUNT(*) FROM audit_entries WHERE workspace_id = {DEMO} AND {sql}"), vec![]).await;
        assert_eq!(n - counts[i], *want, "{sql}");
    }
    let seqs = demo_seqs(&app).await;
    assert!(seqs.len() >= before + 8 + 5 + 6, "{} entries after {before}", seqs.len());
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "contiguous and unique");
    let v = verify(&app, &owner, None, None).await;
    assert_eq!(v, json!({ "ok": true, "checked": seqs.len(), "firstBrokenSeq": null, "problem": null }));

    // The platform chain (entries without a workspace) is whole too.
    let rows = app.sql_values("SELECT seq FROM audit_entries WHERE workspace_id IS NULL ORDER BY seq", vec![]).await;
    let platform: Vec<i64> = rows.iter().map(|r| r.try_get_by_index::<Option<i64>>(0).unwrap().unwrap()).collect();
    assert!(platform.len() >= 6);
    assert_eq!(platform, (1..=platform.len() as i64).collect::<Vec<_>>());
    let v = palisade::audit::chain::verify(&app.db, None, None, None).await.unwrap();
    assert_eq!(v, palisade::audit::chain::Verification { checked: platform.len() as i64, broken: None, purged_through: None });
}
