//! Sign-in latency, and whether failures take as long as each other.
//!
//! Starts the real server (SQLite file, memory store) on a free port and signs in over
//! HTTP, one request at a time, for each case. Reports the median and p90 of each case and
//! its ratio to the "wrong password" baseline measured in the same run. Equal-time
//! sign-in means every failure ratio is close to 1.00.
//!
//! Run: `cargo bench --bench login` (ROUNDS=N to change the sample size).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use palisade::clock::ManualClock;
use palisade::config::Config;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASSWORD: &str = "bench-demo-password";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let vars: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display())),
        ("PALISADE_DEMO_PASSWORD", PASSWORD.to_owned()),
        ("PALISADE_SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijkl".to_owned()),
        ("PALISADE_MAIL_DIR", dir.path().join("mail").display().to_string()),
        // Every attempt comes from 127.0.0.1; the per-account limit stays as shipped and
        // the manual clock moves an hour between rounds so its buckets refill (a
        // throttled attempt would be a cheap RATE_LIMITED answer, not a sign-in).
        ("PALISADE_RATE_SIGNIN_IP", "1000000/1ms".to_owned()),
        ("PALISADE_RATE_ANONYMOUS_IP", "1000000/1ms".to_owned()),
    ]);
    let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let state = palisade::startup::build_state(config, clock.clone(), None).await.unwrap();
    if let Err(e) = palisade::service::bootstrap::seed_demo(&state).await {
        panic!("seed failed: {}", e.detail());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(palisade::startup::serve(state, listener, std::future::pending()));
    let client = reqwest::Client::new();

    let cases = [
        ("wrong password (baseline)", "demo", "owner", "not-the-password"),
        ("success", "demo", "owner", PASSWORD),
        ("unknown user", "demo", "nobody-here", PASSWORD),
        ("unknown workspace", "nowhere", "owner", PASSWORD),
        ("inactive user", "demo", "former", PASSWORD),
    ];
    let query = "mutation($i: LoginInput!) { login(input: $i) { token challenge { id } } }";
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    // The browser's device cookie, so repeated successes are not "new device" sign-ins.
    let mut device: Option<String> = None;
    // Warm up, then interleave the cases so drift in machine load hits all of them alike.
    for round in 0..rounds + 5 {
        clock.advance(chrono::Duration::hours(1));
        for (i, (_, ws, login, pw)) in cases.iter().enumerate() {
            let body = json!({ "query": query, "variables": { "i": { "workspace": ws, "login": login, "password": pw } } });
            let mut req = client.post(&url).json(&body);
            if let Some(d) = &device {
                req = req.header("cookie", format!("__Host-palisade_device={d}"));
            }
            let t = Instant::now();
            let res = req.send().await.unwrap();
            let cookie = res
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|v| v.strip_prefix("__Host-palisade_device=").and_then(|r| r.split(';').next()).map(str::to_owned));
            let body: serde_json::Value = res.json().await.unwrap();
            let took = t.elapsed();
            device = cookie.or(device);
            if i == 1 {
                assert!(body["data"]["login"]["token"].is_string(), "round {round}: the success case must sign in: {body}");
            } else {
                assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{body}");
            }
            if round >= 5 {
                samples[i].push(took);
            }
        }
    }
    for s in &mut samples {
        s.sort();
    }
    let base = percentile(&samples[0], 0.5).as_secs_f64();
    println!("sign-in over HTTP, {rounds} rounds, cases interleaved (Argon2id m=19456 t=2 p=1)");
    println!("{:<28} {:>10} {:>10} {:>16}", "case", "median ms", "p90 ms", "median / base");
    for ((name, ..), s) in cases.iter().zip(&samples) {
        let med = percentile(s, 0.5).as_secs_f64();
        println!("{:<28} {:>10.1} {:>10.1} {:>16.2}", name, med * 1e3, percentile(s, 0.9).as_secs_f64() * 1e3, med / base);
    }
}
