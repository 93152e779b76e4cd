//! A signed-in request's principal: one store call and no SQL once its rows are cached,
//! and every change to what it is made of seen by the next request on every instance
//! however warm that instance's cache is.
use crate::helpers::TestApp;
use serde_json::json;

const PING: &str = "{ __typename }";
const ME: &str = "{ me { user { username } } }";
const READ: &str = "{ customers(first: 1) { edges { node { id } } } }";
const WRITE: &str = "mutation { createCustomer(input: { name: \"Cache probe\" }) { id } }";

/// (SQL statements, store calls) this instance has sent so far, from /metrics.
async fn sent(app: &TestApp) -> (u64, u64) {
    let text = app.client.get(format!("{}/metrics", app.url)).send().await.unwrap().text().await.unwrap();
    let read = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics"))
    } as u64;
    (read("palisade_db_queries_total"), read("palisade_store_calls_total"))
}

#[tokio::test]
async fn a_warm_request_costs_one_store_call_and_no_sql() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let role = app.partner_role(&owner).await;
    let (_, key) = app.create_key(&owner, "partner", &role).await;
    let staff = app.login("demo", "staff").await;

    // Cold: the first request of a session reads its rows in one statement.
    let (sql0, _) = sent(&app).await;
    app.gql(PING, json!({}), Some(&staff)).await.ok();
    let (sql1, _) = sent(&app).await;
    assert!(sql1 - sql0 <= 1, "a cold request sent {} statements", sql1 - sql0);

    for token in [&staff, &key] {
        for _ in 0..3 {
            app.gql(PING, json!({}), Some(token)).await.ok();
        }
        let (sql0, calls0) = sent(&app).await;
        for _ in 0..10 {
            app.gql(PING, json!({}), Some(token)).await.ok();
        }
        let (sql1, calls1) = sent(&app).await;
        let who = if token == &key { "an API key" } else { "a session" };
        assert_eq!(sql1 - sql0, 0, "{who}: warm requests sent SQL");
        assert_eq!(calls1 - calls0, 10, "{who}: one store call per request");
    }
    // The rate limit is still spent per request on that one call.
    let limited = TestApp::spawn_with(&[("PALISADE_RATE_API_SESSION", "3/1h")]).await;
    let token = limited.login("demo", "manager").await;
    let codes: Vec<_> = futures_util::future::join_all((0..6).map(|_| limited.gql(PING, json!({}), Some(&token)))).await;
    let refused = codes.iter().filter(|r| r.status == 429).count();
    assert_eq!(refused, 3, "{:?}", codes.iter().map(|r| r.status).collect::<Vec<_>>());
}

/// A change made on instance A, by whom, and what the victim's next request on
/// instance B (whose cache holds the victim) must answer.
struct Case {
    name: &'static str,
    /// The probe runs as the key instead of the staff user.
    as_key: bool,
    probe: &'static str,
    expect: &'static str,
}

const CASES: &[Case] = &[
    Case { name: "licence ended", as_key: false, probe: ME, expect: "UNAUTHENTICATED" },
    Case { name: "seat taken away", as_key: false, probe: ME, expect: "UNAUTHENTICATED" },
    Case { name: "override locks the network", as_key: false, probe: ME, expect: "LOGIN_RESTRICTED" },
    Case { name: "role taken away", as_key: false, probe: WRITE, expect: "FORBIDDEN" },
    Case { name: "key revoked", as_key: true, probe: READ, expect: "UNAUTHENTICATED" },
    Case { name: "workspace suspended", as_key: true, probe: READ, expect: "WORKSPACE_SUSPENDED" },
    Case { name: "workspace archived", as_key: false, probe: WRITE, expect: "WORKSPACE_ARCHIVED" },
];

#[tokio::test]
async fn every_change_to_a_principal_reaches_warm_caches_on_every_instance() {
    for case in CASES {
        let a = TestApp::spawn().await;
        let b = a.another_instance().await;
        let owner = a.login("demo", "owner").await;
        let role = a.partner_role(&owner).await;
        let (key_id, key) = a.create_key(&owner, "partner", &role).await;
        let staff = a.login("demo", "staff").await;
        let victim = if case.as_key { &key } else { &staff };
        for _ in 0..3 {
            let r = b.gql(case.probe, json!({}), Some(victim)).await;
            assert_eq!(r.code(), None, "{}: before the change: {}", case.name, r.body);
        }
        let staff_id = a.user_id("demo", "staff").await;
        let ws = a.workspace_id("demo").await;
        let update_user = "mutation($id: ID!, $i: UpdateUserInput!) { updateUser(id: $id, input: $i) { id } }";
        let r = match case.name {
            "licence ended" => {
                // Ends a second from now: the change is the end date, not the clock.
                let end = (a.clock_now() + chrono::Duration::seconds(1)).to_rfc3339();
                let r = a.gql(update_user, json!({ "id": staff_id, "i": { "licenceEndsAt": end } }), Some(&owner)).await;
                a.clock.advance(chrono::Duration::seconds(2));
                r
            }
            "seat taken away" => a.gql(update_user, json!({ "id": staff_id, "i": { "licensed": false } }), Some(&owner)).await,
            "override locks the network" => {
                a.gql(
                    "mutation($u: ID!, $i: SecurityOverrideInput!) { setSecurityOverride(userId: $u, input: $i) { active } }",
                    json!({ "u": staff_id, "i": { "reason": "travels with a fixed VPN", "ipLockdownEnabled": true, "extraNetworks": ["10.9.0.0/16"] } }),
                    Some(&owner),
                )
                .await
            }
            "role taken away" => {
                let rows = a
                    .sql_values(
                        "SELECT a.id FROM role_assignments a JOIN roles r ON r.id = a.role_id WHERE r.builtin = 'staff' AND a.user_id = ?",
                        vec![uuid::Uuid::parse_str(&staff_id).unwrap().into()],
                    )
                    .await;
                let assignment: uuid::Uuid = rows[0].try_get_by_index(0).unwrap();
                let guest = a.sql_values("SELECT r.id FROM roles r JOIN workspaces w ON w.id = r.workspace_id WHERE w.slug = 'demo' AND r.builtin = 'guest'", vec![]).await;
                let guest: uuid::Uuid = guest[0].try_get_by_index(0).unwrap();
                a.assign_role(&owner, &guest.to_string(), &staff_id).await;
                a.gql("mutation($id: ID!) { unassignRole(id: $id) }", json!({ "id": assignment.to_string() }), Some(&owner)).await
            }
            "key revoked" => a.gql("mutation($id: ID!) { revokeApiKey(id: $id) { status } }", json!({ "id": key_id }), Some(&owner)).await,
            "workspace suspended" | "workspace archived" => {
                let master = a.master_token().await;
                let op = if case.name == "workspace suspended" { "suspendWorkspace" } else { "archiveWorkspace" };
                let q = format!("mutation($id: ID!) {{ {op}(id: $id, reason: \"contract under review\") {{ status }} }}");
                a.gql(&q, json!({ "id": ws }), Some(&master)).await
            }
            other => panic!("no change for {other}"),
        };
        assert_eq!(r.code(), None, "{}: the change: {}", case.name, r.body);
        let r = b.gql(case.probe, json!({}), Some(victim)).await;
        assert_eq!(r.code(), Some(case.expect), "{}: the next request on the other instance: {}", case.name, r.body);
    }
}
