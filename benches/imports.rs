//! Large files in and out (#12): customer imports by file upload and exports by
//! download. The server's memory must not grow with the file, and its speed per row
//! must not fall as the file grows.
//!
//! Starts the real `palisade serve --demo` as a child process (so that its memory is
//! its own, not the bench's). As the demo Owner, it uploads a SMALL-row CSV file, then
//! downloads the whole workspace's customers as CSV; then the same with a BIG-row file
//! (the download then holds SMALL + BIG rows). Before each step the server's peak
//! resident memory is reset (`5` to /proc/<pid>/clear_refs) and after it read
//! (`VmHWM`), so each step has its own peak. Reported side by side in one run:
//!
//! - rows per second, BIG against SMALL, for the import and the download (target
//!   >= 0.8: the time per row stays flat);
//! - how far each step raised the server's memory, BIG against SMALL: a server that
//!   held the file would grow by the file, about BIG / SMALL times as much.
//!
//! The server runs with its defaults (an upload has `PALISADE_UPLOAD_TIMEOUT_MS`).
//! Backend: DATABASE_URL and REDIS_URL if set (the database must be empty or hold only
//! an earlier run), else a SQLite file and the memory store.
//!
//! Run: `cargo bench --bench imports` (SMALL=10000 BIG=100000 by default). Linux only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "bench-demo-password";
const IMPORT: &str = "mutation($file: Upload) { importCustomers(format: CSV, file: $file) { rows created problemCount } }";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The child's peak resident memory so far, in KiB.
fn peak_kib(child: &Child) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A CSV file of `rows` distinct, valid customers (`tag` keeps runs apart).
fn file(rows: usize, tag: &str) -> Vec<u8> {
    let mut out = String::from("name,status,email,phone,creditLimit,notes\n");
    for i in 0..rows {
        out.push_str(&format!(
            "Import {tag} {i} Ltd,lead,buyer{i}@{tag}.example.com,+44 20 7946 {:04},{}.00,\"Imported by the bench, row {i}\"\n",
            i % 10_000,
            i % 50_000
        ));
    }
    out.into_bytes()
}

async fn upload(client: &reqwest::Client, url: &str, token: &str, content: Vec<u8>) -> Value {
    let boundary = "palisade-bench-boundary";
    let operations = json!({ "query": IMPORT, "variables": { "file": null } });
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{operations}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{{\"0\": [\"variables.file\"]}}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"0\"; filename=\"customers.csv\"\r\nContent-Type: text/csv\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let res = client
        .post(url)
        .bearer_auth(token)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .header("x-palisade-upload", "1")
        .body(body)
        .send()
        .await
        .unwrap();
    res.json().await.unwrap()
}

/// The whole demo workspace's customers as one CSV download: (rows, bytes).
async fn download(client: &reqwest::Client, base: &str, url: &str, token: &str) -> (usize, usize) {
    let asked: Value = client
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "query": "mutation { exportCustomers(format: CSV, download: true) { rows download { url } } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = asked["data"]["exportCustomers"]["download"]["url"].as_str().unwrap_or_else(|| panic!("export: {asked}"));
    let mut res = client.get(format!("{base}{path}")).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    // Counted as it arrives, not kept: the bench's own memory is not the server's, but
    // there is no need to hold the file.
    let (mut lines, mut bytes) = (0usize, 0usize);
    while let Some(chunk) = res.chunk().await.unwrap() {
        lines += chunk.iter().filter(|b| **b == b'\n').count();
        bytes += chunk.len();
    }
    let rows = lines - 1;
    assert_eq!(rows as u64, asked["data"]["exportCustomers"]["rows"].as_u64().unwrap(), "every matching row arrived");
    (rows, bytes)
}

#[tokio::main]
async fn main() {
    let (small, big): (usize, usize) = (env_or("SMALL", 10_000), env_or("BIG", 100_000));
    let dir = tempfile::tempdir().unwrap();
    let database_url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display()));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_palisade"));
    command
        .args(["serve", "--demo"])
        .current_dir(dir.path())
        .env("DATABASE_URL", &database_url)
        .env("PALISADE_BIND", format!("127.0.0.1:{port}"))
        .env("PALISADE_DEMO_PASSWORD", PASSWORD)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    if let Ok(redis) = std::env::var("REDIS_URL") {
        command.env("REDIS_URL", redis).env("PALISADE_REDIS_PREFIX", format!("bench-imports-{port}:"));
    }
    let mut child = command.spawn().unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(120), "the server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = format!("{base}/graphql");
    let login = client
        .post(&url)
        .json(&json!({ "query": "mutation($p: String!) { login(input: { workspace: \"demo\", login: \"owner\", password: $p }) { token } }", "variables": { "p": PASSWORD } }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let token = login["data"]["login"]["token"].as_str().unwrap_or_else(|| panic!("login: {login}")).to_owned();
    let backend = if database_url.starts_with("postgres") { "PostgreSQL" } else { "SQLite" };
    let run = std::process::id().to_string();

    // Warm up: pools, prepared statements and allocator arenas exist before the peak is read.
    let warm = upload(&client, &url, &token, file(1_000, &format!("w{run}"))).await;
    assert_eq!(warm["data"]["importCustomers"]["created"], 1_000, "{warm}");
    assert!(download(&client, &base, &url, &token).await.0 > 0);
    // Each phase's peak on its own: the kernel resets the high-water mark on request.
    let phase_peak = |child: &Child| peak_kib(child);
    let reset = |child: &Child| std::fs::write(format!("/proc/{}/clear_refs", child.id()), "5").unwrap();
    let mut imports = Vec::new();
    let mut downloads = Vec::new();
    for (label, rows) in [("small", small), ("big", big)] {
        let content = file(rows, &format!("{label}{run}"));
        let bytes = content.len();
        reset(&child);
        let base_kib = peak_kib(&child);
        let start = Instant::now();
        let reply = upload(&client, &url, &token, content).await;
        let elapsed = start.elapsed().as_secs_f64();
        assert_eq!(reply["data"]["importCustomers"]["created"], rows, "{reply}");
        imports.push((label, rows, bytes, elapsed, base_kib, phase_peak(&child)));
        // Then the whole workspace as one download.
        reset(&child);
        let base_kib = peak_kib(&child);
        let start = Instant::now();
        let (got, bytes) = download(&client, &base, &url, &token).await;
        downloads.push((label, got, bytes, start.elapsed().as_secs_f64(), base_kib, phase_peak(&child)));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let mib = |kib: u64| kib as f64 / 1024.0;
    println!("{backend}: one request each, at the server's defaults");
    for (title, steps) in
        [("imports (upload, all or nothing)", &imports), ("exports of the whole workspace after each (download, streamed)", &downloads)]
    {
        println!("  {title}:");
        for (label, rows, bytes, elapsed, base_kib, peak) in steps {
            println!(
                "    {label:<5} {rows:>7} rows ({:6.1} MiB): {elapsed:6.2}s, {:8.0} rows/s, server resident {:6.1} MiB before, peak {:6.1} MiB (+{:.1})",
                *bytes as f64 / 1_048_576.0,
                *rows as f64 / elapsed,
                mib(*base_kib),
                mib(*peak),
                mib(peak.saturating_sub(*base_kib)),
            );
        }
    }
    let rate = |v: &[(&str, usize, usize, f64, u64, u64)], i: usize| v[i].1 as f64 / v[i].3;
    let growth = |v: &[(&str, usize, usize, f64, u64, u64)], i: usize| mib(v[i].5.saturating_sub(v[i].4));
    println!("ratios (targets in brackets):");
    println!("  import rows/s, big / small          {:6.2}  (>= 0.8)", rate(&imports, 1) / rate(&imports, 0));
    println!("  download rows/s, big / small        {:6.2}  (>= 0.8)", rate(&downloads, 1) / rate(&downloads, 0));
    println!(
        "  peak growth, import big vs small    +{:.1} vs +{:.1} MiB  (not with the file: it is {:.0}x larger)",
        growth(&imports, 1),
        growth(&imports, 0),
        big as f64 / small as f64
    );
    println!(
        "  peak growth, download big vs small  +{:.1} vs +{:.1} MiB  (not with the file)",
        growth(&downloads, 1),
        growth(&downloads, 0)
    );
}
