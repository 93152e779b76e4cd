//! Throughput of `customers(first: 50)` as Staff (masked and withheld fields, assigned
//! scope) against the same query as Owner (everything in full), in one run.
//!
//! Starts the real server (SQLite file, memory store) on a free port, creates 300
//! customers with every sensitive field set and assigns them all to `staff`, so both
//! roles read the same 50 rows. Then a load generator with `CONCURRENCY` tasks runs
//! alternating phases (owner, staff, owner, staff) of `SECONDS` each over loopback and
//! reports requests/s per role and the staff/owner ratio. The generator shares the
//! machine with the server, which affects both roles alike.
//!
//! Run: `cargo bench --bench customers` (SECONDS=5 CONCURRENCY=16 by default).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use palisade::clock::SystemClock;
use palisade::config::Config;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const PASSWORD: &str = "bench-demo-password";
const QUERY: &str = "{ customers(first: 50) { edges { node { id name status email phone taxId notes creditLimit } } } }";

async fn gql(client: &reqwest::Client, url: &str, token: Option<&str>, query: &str, vars: Value) -> Value {
    let mut req = client.post(url).json(&json!({ "query": query, "variables": vars }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap().json().await.unwrap()
}

async fn login(client: &reqwest::Client, url: &str, user: &str) -> String {
    let v = gql(
        client,
        url,
        None,
        "mutation($u: String!, $p: String!) { login(input: { workspace: \"demo\", login: $u, password: $p }) { token } }",
        json!({ "u": user, "p": PASSWORD }),
    )
    .await;
    v["data"]["login"]["token"].as_str().unwrap().to_owned()
}

async fn phase(client: &reqwest::Client, url: &str, token: &str, seconds: u64, concurrency: usize) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, token, done, stop) = (client.clone(), url.to_owned(), token.to_owned(), done.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let res = client.post(&url).bearer_auth(&token).json(&json!({ "query": QUERY })).send().await.unwrap();
                    assert!(res.status().is_success());
                    res.bytes().await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let concurrency: usize = std::env::var("CONCURRENCY").ok().and_then(|v| v.parse().ok()).unwrap_or(16);
    let dir = tempfile::tempdir().unwrap();
    let vars: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display())),
        ("PALISADE_DEMO_PASSWORD", PASSWORD.to_owned()),
        ("PALISADE_SESSION_IDLE_SECS", "7200".to_owned()),
    ]);
    let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let state = palisade::startup::build_state(config, Arc::new(SystemClock), None).await.unwrap();
    let _ = palisade::service::bootstrap::seed_demo(&state).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(palisade::startup::serve(state, listener, std::future::pending()));
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().unwrap();

    let owner = login(&client, &url, "owner").await;
    let staff = login(&client, &url, "staff").await;
    let me = gql(&client, &url, Some(&staff), "{ me { user { id } } }", json!({})).await;
    let staff_id = me["data"]["me"]["user"]["id"].as_str().unwrap().to_owned();
    for i in 0..300 {
        let c = gql(
            &client,
            &url,
            Some(&owner),
            "mutation($i: CustomerInput!) { createCustomer(input: $i) { id } }",
            json!({ "i": { "name": format!("Bench customer {i:03}"), "email": format!("c{i}@bench.example"), "phone": format!("+44 20 7946 {i:04}"),
                "taxId": format!("GB{:09}", 100_000_000 + i), "notes": "Prefers email; renewal due.", "creditLimit": format!("{}.00", 1000 + i * 10) } }),
        )
        .await;
        let id = c["data"]["createCustomer"]["id"].as_str().unwrap().to_owned();
        gql(
            &client,
            &url,
            Some(&owner),
            "mutation($id: ID!, $o: ID!) { reassignCustomer(id: $id, ownerId: $o) { id } }",
            json!({ "id": id, "o": staff_id }),
        )
        .await;
    }
    // Both roles now get 50 rows; staff's carry masked tax ids and credit limits.
    let sample = gql(&client, &url, Some(&staff), QUERY, json!({})).await;
    assert_eq!(sample["data"]["customers"]["edges"].as_array().unwrap().len(), 50);
    assert!(sample["data"]["customers"]["edges"][0]["node"]["taxId"].as_str().unwrap().starts_with("•••"));

    phase(&client, &url, &owner, 1, concurrency).await;
    let (mut o, mut s) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        o.push(phase(&client, &url, &owner, seconds, concurrency).await);
        s.push(phase(&client, &url, &staff, seconds, concurrency).await);
    }
    let (owner_rps, staff_rps) = (o.iter().sum::<f64>() / o.len() as f64, s.iter().sum::<f64>() / s.len() as f64);
    println!("customers(first: 50), {concurrency} concurrent clients, 2 x {seconds}s phases per role, alternating");
    println!("owner (all fields in full, scope ALL):      {owner_rps:8.1} requests/s  (phases: {o:.1?})");
    println!("staff (masked fields, scope ASSIGNED):      {staff_rps:8.1} requests/s  (phases: {s:.1?})");
    println!("staff / owner:                              {:8.2}", staff_rps / owner_rps);
}
