//! Does a sign-in flood starve ordinary requests?
//!
//! Starts the real server (SQLite file, memory store) on a free port. A few clients send
//! an ordinary signed-in query (`customers(first: 10)`) back to back; their latencies are
//! recorded while nothing else happens ("idle") and while 64 concurrent attackers send
//! wrong-password sign-ins as fast as the server answers ("flood"). Phases alternate so
//! drift in machine load hits both alike. Reports p50/p99 per phase and the flood/idle
//! ratio of p99, for three set-ups:
//!
//! - `distributed`: rate limits lifted, as if the flood came from many addresses with
//!   many account names, so every attempt costs an Argon2 hash (the worst case);
//! - `distributed, hash concurrency 1`: the same with PALISADE_HASH_CONCURRENCY=1;
//! - `one address`: the default limits, so the flood is throttled before hashing.
//!
//! Run: `cargo bench --bench flood` (PHASE_SECS=N to change the phase length).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use palisade::clock::SystemClock;
use palisade::config::Config;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const PASSWORD: &str = "bench-demo-password";
const READERS: usize = 4;
const ATTACKERS: usize = 64;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Server {
    url: String,
    token: String,
    _dir: tempfile::TempDir,
}

async fn start(extra: &[(&str, &str)]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut vars: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display())),
        ("PALISADE_DEMO_PASSWORD".into(), PASSWORD.to_owned()),
        ("PALISADE_SECRET_KEY".into(), "bench-only-secret-key-0123456789-abcdefghijkl".into()),
        ("PALISADE_MAIL_DIR".into(), dir.path().join("mail").display().to_string()),
        ("PALISADE_RATE_API_SESSION".into(), "1000000/1ms".into()),
    ]);
    for (k, v) in extra {
        vars.insert((*k).into(), (*v).into());
    }
    let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let state = palisade::startup::build_state(config, Arc::new(SystemClock), None).await.unwrap();
    let _ = palisade::service::bootstrap::seed_demo(&state).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(palisade::startup::serve(state, listener, std::future::pending()));
    let body = json!({ "query": "mutation($i: LoginInput!) { login(input: $i) { token } }",
        "variables": { "i": { "workspace": "demo", "login": "owner", "password": PASSWORD } } });
    let r: serde_json::Value = reqwest::Client::new().post(&url).json(&body).send().await.unwrap().json().await.unwrap();
    let token = r["data"]["login"]["token"].as_str().unwrap().to_owned();
    Server { url, token, _dir: dir }
}

/// Latencies of the ordinary query for `secs`, with or without a flood running.
async fn phase(s: &Server, secs: u64, flood: bool) -> (Vec<Duration>, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicU64::new(0));
    let mut attackers = Vec::new();
    if flood {
        for a in 0..ATTACKERS {
            let (url, stop, attempts) = (s.url.clone(), stop.clone(), attempts.clone());
            attackers.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let body = json!({ "query": "mutation($i: LoginInput!) { login(input: $i) { token } }",
                        "variables": { "i": { "workspace": "demo", "login": format!("guess-{a}-{n}"), "password": "not-the-password" } } });
                    if client.post(&url).json(&body).send().await.is_ok() {
                        attempts.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        // Let the flood build up before measuring.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let (url, token) = (s.url.clone(), s.token.clone());
        readers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let body = json!({ "query": "{ customers(first: 10) { edges { node { id name } } } }" });
            let mut out = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let r = client.post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
                assert!(r.status().is_success());
                r.bytes().await.unwrap();
                out.push(t.elapsed());
            }
            out
        }));
    }
    let started = attempts.load(Ordering::Relaxed);
    let mut all = Vec::new();
    for r in readers {
        all.extend(r.await.unwrap());
    }
    let during = attempts.load(Ordering::Relaxed) - started;
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        let _ = a.await;
    }
    (all, during)
}

async fn scenario(name: &str, extra: &[(&str, &str)], secs: u64) {
    let s = start(extra).await;
    phase(&s, 1, false).await; // warm-up
    let (mut idle, mut flood) = (Vec::new(), Vec::new());
    let mut sign_ins = 0;
    for _ in 0..2 {
        idle.extend(phase(&s, secs, false).await.0);
        let (l, n) = phase(&s, secs, true).await;
        flood.extend(l);
        sign_ins += n;
    }
    idle.sort();
    flood.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (i50, i99, f50, f99) = (percentile(&idle, 0.5), percentile(&idle, 0.99), percentile(&flood, 0.5), percentile(&flood, 0.99));
    println!(
        "{name:<36} idle p50 {:>6.2} ms p99 {:>6.2} ms | flood p50 {:>6.2} ms p99 {:>6.2} ms | p99 flood/idle {:>5.2} | sign-in attempts/s {:>6.0}",
        ms(i50),
        ms(i99),
        ms(f50),
        ms(f99),
        f99.as_secs_f64() / i99.as_secs_f64(),
        sign_ins as f64 / (2 * secs) as f64
    );
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("PHASE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    println!("ordinary query: customers(first: 10) from {READERS} clients; flood: {ATTACKERS} concurrent wrong-password sign-ins");
    let lifted = [
        ("PALISADE_RATE_SIGNIN_IP", "1000000/1ms"),
        ("PALISADE_RATE_ANONYMOUS_IP", "1000000/1ms"),
        ("PALISADE_RATE_SIGNIN_ACCOUNT", "10/40s"),
    ];
    scenario("distributed (limits lifted)", &lifted, secs).await;
    let mut one = lifted.to_vec();
    one.push(("PALISADE_HASH_CONCURRENCY", "1"));
    scenario("distributed, hash concurrency 1", &one, secs).await;
    scenario("one address (default limits)", &[], secs).await;
}
