//! How many audit events per second one instance delivers to 100 subscribers.
//!
//! Starts the real server (SQLite file and memory store by default; DATABASE_URL and
//! REDIS_URL select PostgreSQL and Redis) on a free port, creates a partner API key
//! (customers.read + audit.read), then runs, in one process and one run:
//!
//! 1. baseline: `WRITERS` clients create customers over HTTP for `SECONDS` with no
//!    subscriber: every mutation commits one `customer.created` entry, so this is the
//!    rate at which the instance produces events;
//! 2. stream: the same load while `SUBSCRIBERS` WebSocket clients (graphql-transport-ws,
//!    the partner key) stream `auditEvents`: reports the events produced per second,
//!    the deliveries per second summed over all subscribers, the ratio of production
//!    to the baseline, and the delay from commit (the entry's `occurredAt`) to receipt;
//! 3. replay: every subscriber reconnects with `after: "0"` and reads the whole log
//!    from the database (the catch-up path), all at once.
//!
//! Every subscriber must receive every event exactly once, in order; the bench fails
//! otherwise. The load generator and the subscribers share the machine (2 cores here)
//! with the server, which weighs on every phase alike.
//!
//! Run: `cargo bench --bench audit_stream` (SECONDS=5 WRITERS=4 SUBSCRIBERS=100).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::{SinkExt, StreamExt};
use palisade::clock::SystemClock;
use palisade::config::Config;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const PASSWORD: &str = "bench-demo-password";
const CREATE: &str = "mutation($n: String!) { createCustomer(input: { name: $n }) { id } }";
const SUBSCRIBE: &str =
    "subscription($a: String) { auditEvents(after: $a, filter: { module: \"customers\" }) { cursor entry { seq occurredAt } } }";

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn gql(client: &reqwest::Client, url: &str, token: Option<&str>, query: &str, vars: Value) -> Value {
    let mut req = client.post(url).json(&json!({ "query": query, "variables": vars }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let v: Value = req.send().await.unwrap().json().await.unwrap();
    assert!(v.get("errors").is_none(), "{v}");
    v
}

/// Creates customers from `writers` tasks until `stop`; returns how many.
async fn write_load(client: &reqwest::Client, url: &str, token: &str, writers: usize, seconds: u64) -> (u64, f64) {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (client, url, token, done, stop) = (client.clone(), url.to_owned(), token.to_owned(), done.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let body = json!({ "query": CREATE, "variables": { "n": format!("Stream bench {w}-{i}") } });
                    let res = client.post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
                    assert!(res.status().is_success());
                    res.bytes().await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let n = done.load(Ordering::Relaxed);
    (n, n as f64 / start.elapsed().as_secs_f64())
}

struct Received {
    seqs: Vec<i64>,
    /// Commit-to-receipt delays in milliseconds.
    delays: Vec<f64>,
    /// When the last event arrived.
    last_at: Instant,
}

/// One subscriber: connects, subscribes after `after`, and collects events until it
/// has `want` of them (or `deadline` passes).
async fn subscriber(
    addr: std::net::SocketAddr,
    key: String,
    after: String,
    ready: tokio::sync::mpsc::Sender<()>,
    mut want: tokio::sync::watch::Receiver<u64>,
    deadline: Arc<tokio::sync::Notify>,
) -> Received {
    let mut req = format!("ws://{addr}/graphql/ws").into_client_request().unwrap();
    req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(json!({ "type": "connection_init", "payload": { "token": key } }))).await.unwrap();
    ws.send(send(json!({ "id": "1", "type": "subscribe", "payload": { "query": SUBSCRIBE, "variables": { "a": after } } }))).await.unwrap();
    let mut got = Received { seqs: Vec::new(), delays: Vec::new(), last_at: Instant::now() };
    let mut acked = false;
    loop {
        if got.seqs.len() as u64 >= *want.borrow() {
            break;
        }
        let msg = tokio::select! {
            m = ws.next() => m,
            _ = want.changed() => continue,
            _ = deadline.notified() => break,
        };
        let Some(Ok(Message::Text(t))) = msg else { break };
        let v: Value = serde_json::from_str(t.as_str()).unwrap();
        match v["type"].as_str() {
            Some("connection_ack") if !acked => {
                acked = true;
                ready.send(()).await.unwrap();
            }
            Some("next") => {
                let e = &v["payload"]["data"]["auditEvents"]["entry"];
                assert!(v["payload"].get("errors").is_none(), "{v}");
                got.seqs.push(e["seq"].as_i64().unwrap());
                let at: chrono::DateTime<chrono::Utc> = e["occurredAt"].as_str().unwrap().parse().unwrap();
                got.delays.push((chrono::Utc::now() - at).num_microseconds().unwrap_or(0) as f64 / 1000.0);
                got.last_at = Instant::now();
            }
            other => panic!("unexpected message {other:?}: {v}"),
        }
    }
    got
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Runs `n` subscribers from `after`, the write load meanwhile (if any), and checks
/// each got exactly the customer entries after `after`, in order.
#[allow(clippy::too_many_arguments)]
async fn stream_phase(
    addr: std::net::SocketAddr,
    client: &reqwest::Client,
    url: &str,
    owner: &str,
    key: &str,
    after: i64,
    n: usize,
    writers: usize,
    seconds: u64,
    db: &sea_orm::DatabaseConnection,
) -> (u64, f64, Vec<Received>, f64) {
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(n);
    let (want, want_rx) = tokio::sync::watch::channel(u64::MAX);
    let deadline = Arc::new(tokio::sync::Notify::new());
    let subs: Vec<_> = (0..n)
        .map(|_| tokio::spawn(subscriber(addr, key.to_owned(), after.to_string(), ready_tx.clone(), want_rx.clone(), deadline.clone())))
        .collect();
    for _ in 0..n {
        ready_rx.recv().await.unwrap();
    }
    let start = Instant::now();
    let (produced, rate) = if writers > 0 { write_load(client, url, owner, writers, seconds).await } else { (0, 0.0) };
    // Everything committed after `after` is what each subscriber must get.
    let expected = customer_seqs_after(db, after).await;
    want.send_replace(expected.len() as u64);
    // Subscribers that already have everything stop by themselves; a slow one gets
    // time to catch up, then the rest is counted as missing.
    let grace = tokio::time::sleep(Duration::from_secs(60));
    tokio::pin!(grace);
    let mut results = Vec::with_capacity(n);
    let mut pending = futures_util::stream::FuturesUnordered::from_iter(subs);
    loop {
        tokio::select! {
            r = pending.next() => match r {
                Some(r) => results.push(r.unwrap()),
                None => break,
            },
            _ = &mut grace => deadline.notify_waiters(),
        }
    }
    // Delivery ends when the last subscriber got its last event.
    let elapsed = results.iter().map(|r| r.last_at).max().map_or(0.0, |t| t.duration_since(start).as_secs_f64());
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.seqs, expected, "subscriber {i} did not get every entry exactly once, in order");
    }
    let _ = produced;
    (expected.len() as u64, rate, results, elapsed)
}

async fn customer_seqs_after(db: &sea_orm::DatabaseConnection, after: i64) -> Vec<i64> {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = db.get_database_backend();
    let sql = if backend == sea_orm::DbBackend::Postgres {
        "SELECT seq FROM audit_entries e JOIN workspaces w ON e.workspace_id = w.id WHERE w.slug = 'demo' AND e.module = 'customers' AND e.seq > $1 ORDER BY e.seq"
    } else {
        "SELECT seq FROM audit_entries e JOIN workspaces w ON e.workspace_id = w.id WHERE w.slug = 'demo' AND e.module = 'customers' AND e.seq > ? ORDER BY e.seq"
    };
    let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, [after.into()])).await.unwrap();
    rows.iter().map(|r| r.try_get_by_index::<i64>(0).unwrap()).collect()
}

async fn head(db: &sea_orm::DatabaseConnection) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = db.get_database_backend();
    let sql = "SELECT COALESCE(MAX(e.seq), 0) FROM audit_entries e JOIN workspaces w ON e.workspace_id = w.id WHERE w.slug = 'demo'";
    let rows = db.query_all_raw(Statement::from_string(backend, sql)).await.unwrap();
    rows[0].try_get_by_index::<i64>(0).unwrap()
}

#[tokio::main]
async fn main() {
    let seconds = env_num("SECONDS", 5);
    let writers = env_num("WRITERS", 4) as usize;
    let n = env_num("SUBSCRIBERS", 100) as usize;
    let dir = tempfile::tempdir().unwrap();
    let database_url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display()));
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", database_url.clone()),
        ("PALISADE_DEMO_PASSWORD", PASSWORD.to_owned()),
        ("PALISADE_SESSION_IDLE_SECS", "7200".to_owned()),
        ("PALISADE_SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghij".to_owned()),
        ("PALISADE_MAIL_DIR", dir.path().join("mail").display().to_string()),
        ("PALISADE_WS_MAX_SOCKETS", "1000".to_owned()),
        ("PALISADE_WS_MAX_SUBSCRIPTIONS", "1000".to_owned()),
        ("PALISADE_RATE_API_SESSION", "100000/1ms".to_owned()),
        ("PALISADE_RATE_API_KEY", "100000/1ms".to_owned()),
        ("PALISADE_REDIS_PREFIX", format!("palisade_bench:{}:", uuid::Uuid::now_v7().simple())),
    ]);
    if let Ok(r) = std::env::var("REDIS_URL") {
        vars.insert("REDIS_URL", r);
    }
    let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let state = palisade::startup::build_state(config, Arc::new(SystemClock), None).await.unwrap();
    let store = state.store.kind();
    let _ = palisade::service::bootstrap::seed_demo(&state).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}/graphql");
    tokio::spawn(palisade::startup::serve(state, listener, std::future::pending()));
    let client = reqwest::Client::builder().pool_max_idle_per_host(writers * 2).build().unwrap();
    let db = sea_orm::Database::connect(&database_url).await.unwrap();

    let login = gql(
        &client,
        &url,
        None,
        "mutation($p: String!) { login(input: { workspace: \"demo\", login: \"owner\", password: $p }) { token } }",
        json!({ "p": PASSWORD }),
    )
    .await;
    let owner = login["data"]["login"]["token"].as_str().unwrap().to_owned();
    let role = gql(
        &client,
        &url,
        Some(&owner),
        "mutation($i: RoleInput!) { createRole(input: $i) { id } }",
        json!({ "i": { "name": "Partner", "rank": 30, "permissions": ["CUSTOMERS_READ", "AUDIT_READ"], "scopes": [{ "module": "CUSTOMERS", "scope": "ALL" }],
                       "restrictions": { "dataExport": false, "bulkOperations": false, "apiAccess": true, "maxRecordsPerRequest": 100 } } }),
    )
    .await;
    let role = role["data"]["createRole"]["id"].as_str().unwrap().to_owned();
    let key = gql(
        &client,
        &url,
        Some(&owner),
        "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }",
        json!({ "i": { "name": "bench", "roleId": role } }),
    )
    .await;
    let key = key["data"]["createApiKey"]["secret"].as_str().unwrap().to_owned();

    // Warm-up, then the baseline and the streamed phase, twice, alternating.
    write_load(&client, &url, &owner, writers, 1).await;
    let (mut base, mut streamed, mut deliveries, mut delays) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..2 {
        base.push(write_load(&client, &url, &owner, writers, seconds).await.1);
        let after = head(&db).await;
        let (events, rate, results, elapsed) = stream_phase(addr, &client, &url, &owner, &key, after, n, writers, seconds, &db).await;
        streamed.push(rate);
        deliveries.push((events * n as u64) as f64 / elapsed);
        delays.extend(results.into_iter().flat_map(|r| r.delays));
    }
    delays.sort_by(|a, b| a.total_cmp(b));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;

    // Catch-up: everyone replays the whole log at once.
    let total = customer_seqs_after(&db, 0).await.len() as u64;
    let (replayed, _, _, replay_secs) = stream_phase(addr, &client, &url, &owner, &key, 0, n, 0, 0, &db).await;
    assert_eq!(replayed, total);

    println!(
        "audit stream: {n} subscribers (one API key), {writers} writers creating customers over HTTP, 2 x {seconds}s per phase, alternating"
    );
    println!("backend: {} + {store}", if database_url.starts_with("sqlite") { "sqlite" } else { "postgres" });
    println!("events produced, no subscribers:           {:8.1} /s  (phases: {base:.1?})", mean(&base));
    println!("events produced, {n} subscribers:         {:8.1} /s  (phases: {streamed:.1?})", mean(&streamed));
    println!("production with / without subscribers:     {:8.2}", mean(&streamed) / mean(&base));
    println!("events delivered (summed over subscribers): {:8.1} /s  (phases: {deliveries:.1?})", mean(&deliveries));
    println!(
        "commit-to-receipt delay:                    p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        percentile(&delays, 1.0)
    );
    println!(
        "replay from cursor 0 ({total} entries each):  {:8.1} events/s delivered ({:.2}s)",
        (total * n as u64) as f64 / replay_secs,
        replay_secs
    );
    println!("every subscriber received every event exactly once, in order");
}
