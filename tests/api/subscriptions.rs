//! The `auditEvents` subscription over a real WebSocket: filtering and masking,
//! resuming without gaps or repeats, closing when authorization ends, the protocol's
//! close codes, and fan-out across instances.
use crate::helpers::TestApp;
use crate::ws_client::{Event, Ws};
use palisade::clock::Clock;
use serde_json::{Value, json};
use std::time::Duration;

const CREATE_CUSTOMER: &str =
    "mutation($n: String!, $e: String, $t: String) { createCustomer(input: { name: $n, email: $e, taxId: $t }) { id } }";

async fn create_customer(app: &TestApp, token: &str, name: &str) -> String {
    let r = app.gql(CREATE_CUSTOMER, json!({ "n": name, "e": "ada@lovelace.example", "t": "GB123456789" }), Some(token)).await;
    r.ok()["createCustomer"]["id"].as_str().unwrap().to_owned()
}

fn seqs(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["entry"]["seq"].as_i64().unwrap()).collect()
}

/// The chain positions of the workspace's entries a partner (customers.read,
/// audit.read) may see after `after`.
async fn visible_seqs_after(app: &TestApp, after: i64) -> Vec<i64> {
    let ws = app.workspace_id("demo").await;
    let rows = app
        .sql_values(
            "SELECT seq FROM audit_entries WHERE workspace_id = ? AND module IN ('customers', 'api', 'audit') AND seq > ? ORDER BY seq",
            vec![uuid::Uuid::parse_str(&ws).unwrap().into(), after.into()],
        )
        .await;
    rows.iter().map(|r| r.try_get_by_index::<i64>(0).unwrap()).collect()
}

#[tokio::test]
async fn a_partner_sees_live_only_what_its_key_may_read_masked_by_its_field_access() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let role = app.partner_role(&owner).await;
    let (_, key) = app.create_key(&owner, "partner", &role).await;
    let mut ws = Ws::connect(&app, &key).await;
    ws.subscribe_audit("1", json!(null), Some(&app.head_cursor("demo").await)).await;
    // Wait until the subscription is live: a first event proves it.
    let first = create_customer(&app, &owner, "First").await;
    let e = ws.next_event("1").await;
    assert_eq!(e["entry"]["action"], "customer.created");
    assert_eq!(e["entry"]["changes"]["name"]["after"], "First");
    // The partner may not read tax ids at all and sees emails masked (and the stored
    // value is redacted anyway); the Owner's log shows the field changed.
    assert_eq!(e["entry"]["changes"]["taxId"], Value::Null, "{e}");
    assert_eq!(e["entry"]["changes"]["email"]["after"], "[redacted]");
    assert_eq!(e["entry"]["actor"]["kind"], "user");
    let _ = first;

    // Entries of modules the key may not read are passed over: roles, staff, settings.
    app.create_role(&owner, json!({ "name": "Hidden from partners", "rank": 5, "permissions": ["CUSTOMERS_READ"] })).await;
    app.gql("mutation { updateSupportAccess(staff: true, owners: false) { staff } }", json!({}), Some(&owner)).await.ok();
    let _ = app.login("demo", "staff").await;
    create_customer(&app, &owner, "Second").await;
    let e2 = ws.next_event("1").await;
    assert_eq!(e2["entry"]["changes"]["name"]["after"], "Second", "hidden entries in between were not delivered: {e2}");
    let (c1, c2) = (e["cursor"].as_str().unwrap().parse::<i64>().unwrap(), e2["cursor"].as_str().unwrap().parse::<i64>().unwrap());
    assert!(c2 > c1 + 1, "the cursor moved past the hidden entries");
    assert_eq!(e2["entry"]["seq"].as_i64(), Some(c2));

    // The Owner's own stream shows everything, the tax id change included.
    let mut owner_ws = Ws::connect(&app, &owner).await;
    owner_ws.subscribe_audit("o", json!({ "module": "customers" }), e["cursor"].as_str()).await;
    let replayed = owner_ws.next_event("o").await;
    assert_eq!(replayed["entry"]["changes"]["name"]["after"], "Second");
    assert_eq!(replayed["entry"]["changes"]["taxId"]["after"], "[redacted]");
    assert!(owner_ws.drain("o", Duration::from_millis(300)).await.is_empty(), "the filter keeps other modules out");
}

#[tokio::test]
async fn a_subscriber_killed_mid_stream_resumes_without_gap_or_duplicate() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let role = app.partner_role(&owner).await;
    let (_, key) = app.create_key(&owner, "partner", &role).await;
    let mut ws = Ws::connect(&app, &key).await;
    ws.subscribe_audit("s", json!(null), Some(&app.head_cursor("demo").await)).await;
    create_customer(&app, &owner, "Warm-up").await;
    let start = ws.next_event("s").await["entry"]["seq"].as_i64().unwrap();

    // A producer keeps writing while the subscriber reads a few, dies without a word,
    // and comes back with its last cursor while the producer is still going.
    const N: usize = 30;
    let producer = {
        let (url, owner) = (app.url.clone(), owner.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0..N {
                let body = json!({ "query": CREATE_CUSTOMER, "variables": { "n": format!("Batch {i}") } });
                let r = client.post(format!("{url}/graphql")).bearer_auth(&owner).json(&body).send().await.unwrap();
                assert!(r.status().is_success());
            }
        })
    };
    let before_kill = ws.take("s", 5).await;
    let cursor = before_kill.last().unwrap()["cursor"].as_str().unwrap().to_owned();
    drop(ws);
    let mut ws = Ws::connect(&app, &key).await;
    ws.subscribe_audit("s", json!(null), Some(&cursor)).await;
    producer.await.unwrap();
    let expected = visible_seqs_after(&app, cursor.parse().unwrap()).await;
    let after_reconnect = ws.take("s", expected.len()).await;
    assert!(ws.drain("s", Duration::from_millis(300)).await.is_empty(), "nothing more, and nothing twice");

    let mut got = seqs(&before_kill);
    got.extend(seqs(&after_reconnect));
    let mut want = vec![];
    want.extend(visible_seqs_after(&app, start).await);
    assert_eq!(got, want, "every visible entry exactly once, in chain order");
    let names: Vec<_> =
        after_reconnect.iter().chain(&before_kill).filter_map(|e| e["entry"]["changes"]["name"]["after"].as_str()).collect();
    assert_eq!(names.len(), N, "all {N} customers arrived");
}

#[tokio::test]
async fn revoked_or_expired_credentials_and_lost_permissions_close_the_stream_within_a_second() {
    let app = TestApp::spawn_with(&[("PALISADE_WS_RECHECK_MS", "250")]).await;
    let owner = app.login("demo", "owner").await;
    let role = app.partner_role(&owner).await;
    let within = Duration::from_secs(1);

    // Cause, as data: how the credential ends -> the socket closes 4403.
    let (key_id, revoked) = app.create_key(&owner, "to revoke", &role).await;
    let mut ws = Ws::connect(&app, &revoked).await;
    ws.subscribe_audit("a", json!(null), Some(&app.head_cursor("demo").await)).await;
    app.gql("mutation($id: ID!) { revokeApiKey(id: $id) { status } }", json!({ "id": key_id }), Some(&owner)).await.ok();
    assert_eq!(ws.closed(within).await, Some(4403), "revoked key");

    let r = app
        .gql(
            "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }",
            json!({ "i": { "name": "short", "roleId": role, "expiresAt": (app.clock.now() + chrono::Duration::minutes(5)).to_rfc3339() } }),
            Some(&owner),
        )
        .await;
    let expiring = r.ok()["createApiKey"]["secret"].as_str().unwrap().to_owned();
    let mut ws = Ws::connect(&app, &expiring).await;
    ws.subscribe_audit("a", json!(null), Some(&app.head_cursor("demo").await)).await;
    app.clock.advance(chrono::Duration::minutes(5));
    assert_eq!(ws.closed(within).await, Some(4403), "expired key");

    let session = app.login("demo", "owner").await;
    let mut ws = Ws::connect(&app, &session).await;
    ws.subscribe_audit("a", json!(null), Some(&app.head_cursor("demo").await)).await;
    app.gql("mutation { logout }", json!({}), Some(&session)).await.ok();
    assert_eq!(ws.closed(within).await, Some(4403), "ended session");

    // A socket without any subscription is closed too.
    let session = app.login("demo", "owner").await;
    let mut idle = Ws::connect(&app, &session).await;
    app.gql("mutation { revokeOtherSessions }", json!({}), Some(&owner)).await.ok();
    assert_eq!(idle.closed(within).await, Some(4403), "revoked session, idle socket");

    // A permission taken away ends the stream (the socket stays: the credential is fine).
    let owner = app.login("demo", "owner").await;
    let auditor = app
        .create_role(&owner, json!({ "name": "Auditor", "rank": 20, "permissions": ["AUDIT_READ", "TEAM_READ"], "scopes": [{ "module": "TEAM", "scope": "ALL" }] }))
        .await;
    let manager_id = app.user_id("demo", "manager").await;
    let r = app
        .gql(
            "mutation($i: AssignRoleInput!) { assignRole(input: $i) { id } }",
            json!({ "i": { "roleId": auditor, "userId": manager_id } }),
            Some(&owner),
        )
        .await;
    let assignment = r.ok()["assignRole"]["id"].as_str().unwrap().to_owned();
    let manager = app.login("demo", "manager").await;
    let mut ws = Ws::connect(&app, &manager).await;
    ws.subscribe_audit("m", json!(null), Some(&app.head_cursor("demo").await)).await;
    app.login("demo", "staff").await;
    assert_eq!(ws.next_event("m").await["entry"]["action"], "auth.sign_in", "the manager's stream is live");
    app.gql("mutation($id: ID!) { unassignRole(id: $id) }", json!({ "id": assignment }), Some(&owner)).await.ok();
    match ws.recv(within).await {
        Event::Msg(m) => {
            assert_eq!(m["type"], "next");
            assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN", "{m}");
        }
        other => panic!("expected the stream's end, got {other:?}"),
    }
    match ws.recv(within).await {
        Event::Msg(m) => assert_eq!(m, json!({ "type": "complete", "id": "m" })),
        other => panic!("expected complete, got {other:?}"),
    }
    ws.send(json!({ "type": "ping" })).await;
    assert!(matches!(ws.recv(within).await, Event::Msg(m) if m["type"] == "pong"), "the socket itself stays open");

    // Suspending the workspace ends every stream of it.
    let (_, key) = app.create_key(&owner, "partner", &role).await;
    let mut by_key = Ws::connect(&app, &key).await;
    by_key.subscribe_audit("k", json!(null), Some(&app.head_cursor("demo").await)).await;
    let mut by_session = Ws::connect(&app, &owner).await;
    by_session.subscribe_audit("o", json!(null), Some(&app.head_cursor("demo").await)).await;
    let master = app.master_token().await;
    let ws_id = app.workspace_id("demo").await;
    app.gql(
        "mutation($id: ID!) { suspendWorkspace(id: $id, reason: \"unpaid invoices since May\") { status } }",
        json!({ "id": ws_id }),
        Some(&master),
    )
    .await
    .ok();
    assert_eq!(by_key.closed(within).await, Some(4403), "suspended workspace (key)");
    assert_eq!(by_session.closed(within).await, Some(4403), "suspended workspace (session)");
}

#[tokio::test]
async fn the_protocol_closes_with_its_codes() {
    let app = TestApp::spawn_with(&[
        ("PALISADE_WS_INIT_TIMEOUT_MS", "300"),
        ("PALISADE_WS_MAX_SOCKETS", "2"),
        ("PALISADE_WS_MAX_SUBSCRIPTIONS", "1"),
        ("PALISADE_ALLOWED_ORIGINS", "https://crm.example.com"),
    ])
    .await;
    let owner = app.login("demo", "owner").await;
    let wait = Duration::from_secs(3);
    let init = |token: &str| json!({ "type": "connection_init", "payload": { "token": token } });
    let sub = json!({ "id": "1", "type": "subscribe", "payload": { "query": crate::ws_client::SUBSCRIBE_AUDIT } });

    // (case, subprotocol, messages sent) -> close code
    let cases: Vec<(&str, Option<&str>, Vec<Value>, u16)> = vec![
        ("no subprotocol", None, vec![], 4406),
        ("no connection_init in time", Some("graphql-transport-ws"), vec![], 4408),
        ("subscribe before the ack", Some("graphql-transport-ws"), vec![sub.clone()], 4401),
        ("a wrong token", Some("graphql-transport-ws"), vec![init("pal_forged")], 4403),
        ("no credential", Some("graphql-transport-ws"), vec![json!({ "type": "connection_init" })], 4403),
        ("a second connection_init", Some("graphql-transport-ws"), vec![init(&owner), init(&owner)], 4429),
        ("a duplicate subscription id", Some("graphql-transport-ws"), vec![init(&owner), sub.clone(), sub.clone()], 4409),
        ("an unknown message", Some("graphql-transport-ws"), vec![init(&owner), json!({ "type": "shout" })], 4400),
    ];
    for (case, protocol, messages, code) in cases {
        let mut ws = Ws::open_with(&app, protocol, None).await.unwrap();
        for m in messages {
            ws.send(m).await;
        }
        let mut got = None;
        while got.is_none() {
            match ws.recv(wait).await {
                Event::Closed(c) => got = Some(c),
                Event::Msg(_) => continue,
                Event::Timeout => panic!("{case}: the socket stayed open"),
            }
        }
        assert_eq!(got, Some(code), "{case}");
    }
    // A client of the older protocol gets no subprotocol, so its handshake fails.
    assert_eq!(Ws::open_with(&app, Some("graphql-ws"), None).await.err(), Some(0));
    let mut ws = Ws::open(&app).await;
    ws.send_text("{not json").await;
    assert_eq!(ws.closed(wait).await, Some(4400), "unreadable JSON");

    // Origins: a browser page from elsewhere cannot open a socket; allowed ones can.
    assert_eq!(Ws::open_with(&app, Some("graphql-transport-ws"), Some("https://evil.example")).await.err(), Some(403));
    let ok = Ws::open_with(&app, Some("graphql-transport-ws"), Some("https://crm.example.com")).await;
    assert!(ok.is_ok());
    let same = Ws::open_with(&app, Some("graphql-transport-ws"), Some(&format!("http://{}", app.addr))).await;
    assert!(same.is_ok(), "the server's own origin");

    // Caps per principal: sockets (2 here), then subscriptions (1 here).
    let mut a = Ws::connect(&app, &owner).await;
    let _b = Ws::connect(&app, &owner).await;
    let mut c = Ws::open(&app).await;
    c.send(init(&owner)).await;
    assert_eq!(c.closed(wait).await, Some(4429), "a third socket");
    a.subscribe_audit("x", json!(null), Some(&app.head_cursor("demo").await)).await;
    a.subscribe_audit("y", json!(null), Some(&app.head_cursor("demo").await)).await;
    match a.recv(wait).await {
        Event::Msg(m) => {
            assert_eq!(m["type"], "error");
            assert_eq!(m["id"], "y");
            assert_eq!(m["payload"][0]["extensions"]["code"], "FORBIDDEN");
        }
        other => panic!("{other:?}"),
    }
    // Completing one frees its place (messages on one socket are handled in order).
    a.send(json!({ "type": "complete", "id": "x" })).await;
    a.subscribe_audit("z", json!(null), Some(&app.head_cursor("demo").await)).await;
    app.login("demo", "staff").await;
    assert_eq!(a.next_event("z").await["entry"]["action"], "auth.sign_in");

    // Only subscriptions run here, and only with their permission. (A key of its own:
    // the owner's two sockets are still taken.)
    let role = app.partner_role(&owner).await;
    let (_, key) = app.create_key(&owner, "partner", &role).await;
    let mut q = Ws::connect(&app, &key).await;
    q.send(json!({ "id": "q", "type": "subscribe", "payload": { "query": "{ me { kind } }" } })).await;
    match q.recv(wait).await {
        Event::Msg(m) => {
            assert_eq!((m["type"].clone(), m["payload"][0]["extensions"]["code"].clone()), (json!("error"), json!("BAD_USER_INPUT")), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let staff = app.login("demo", "staff").await;
    let mut s = Ws::connect(&app, &staff).await;
    let denied_before =
        app.count("SELECT COUNT(*) FROM audit_entries WHERE action = 'api.subscription' AND outcome = 'denied'", vec![]).await;
    s.subscribe_audit("s", json!(null), Some(&app.head_cursor("demo").await)).await;
    match s.recv(wait).await {
        Event::Msg(m) => {
            assert_eq!((m["type"].clone(), m["payload"][0]["extensions"]["code"].clone()), (json!("error"), json!("FORBIDDEN")), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let denied_after =
        app.count("SELECT COUNT(*) FROM audit_entries WHERE action = 'api.subscription' AND outcome = 'denied'", vec![]).await;
    assert_eq!(denied_after, denied_before + 1, "the refused subscription is audited");
    // A bad cursor is an error for that subscription only.
    q.subscribe_audit("c", json!(null), Some("not-a-cursor")).await;
    match q.recv(wait).await {
        Event::Msg(m) => {
            assert_eq!((m["type"].clone(), m["payload"][0]["extensions"]["code"].clone()), (json!("error"), json!("BAD_USER_INPUT")), "{m}")
        }
        other => panic!("{other:?}"),
    }
    // Over HTTP a subscription does not run at all.
    let r = app.gql(crate::ws_client::SUBSCRIBE_AUDIT, json!({}), Some(&owner)).await;
    assert!(r.body["errors"].is_array() && r.data().is_null(), "{}", r.body);
}

#[tokio::test]
async fn a_change_on_one_instance_reaches_a_subscriber_on_another() {
    // Rechecks are slow here (a database poll only every 8 s), so an event that arrives
    // within a few seconds came through the store's pub/sub.
    let a = TestApp::spawn_with(&[("PALISADE_WS_RECHECK_MS", "1000")]).await;
    let b = a.another_instance().await;
    let owner = a.login("demo", "owner").await;
    let role = a.partner_role(&owner).await;
    let (_, key) = a.create_key(&owner, "partner", &role).await;
    let mut ws = Ws::connect(&b, &key).await;
    ws.subscribe_audit("f", json!(null), Some(&a.head_cursor("demo").await)).await;
    for i in 0..3 {
        create_customer(&a, &owner, &format!("Fan-out {i}")).await;
        match ws.recv(Duration::from_secs(3)).await {
            Event::Msg(m) => assert_eq!(m["payload"]["data"]["auditEvents"]["entry"]["changes"]["name"]["after"], format!("Fan-out {i}")),
            other => panic!("event {i} did not reach the other instance: {other:?}"),
        }
    }
}
