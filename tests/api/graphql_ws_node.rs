//! The audit stream through a client nobody here wrote: the `graphql-ws` npm package
//! (tests/graphql-ws/client.mjs), run with Node. Fails, never skips, when Node or the
//! package cannot be had.
use crate::helpers::TestApp;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

fn client_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/graphql-ws"))
}

/// Installs the client's packages from its lock file, once per checkout.
async fn ensure_installed() {
    static INSTALL: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    INSTALL
        .get_or_init(|| async {
            if client_dir().join("node_modules/graphql-ws/package.json").exists() {
                return;
            }
            let out = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(client_dir())
                .output()
                .await
                .unwrap_or_else(|e| panic!("npm is needed for the graphql-ws client test (install Node.js): {e}"));
            assert!(out.status.success(), "npm ci failed: {}", String::from_utf8_lossy(&out.stderr));
        })
        .await;
}

struct Client {
    child: Child,
    lines: tokio::io::Lines<BufReader<ChildStdout>>,
}

impl Client {
    async fn start(app: &TestApp, credential: &str, count: usize, after: Option<&str>) -> Client {
        ensure_installed().await;
        let mut cmd = Command::new("node");
        cmd.arg("client.mjs").arg(format!("ws://{}/graphql/ws", app.addr)).arg(credential).arg(count.to_string());
        if let Some(a) = after {
            cmd.arg(a);
        }
        let mut child = cmd
            .current_dir(client_dir())
            .env("CLIENT_TIMEOUT_MS", "15000")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("node is needed for the graphql-ws client test: {e}"));
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Client { child, lines }
    }

    async fn line(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(20), self.lines.next_line()).await.expect("the client went silent").unwrap();
        serde_json::from_str(&line.expect("the client ended early")).unwrap()
    }

    /// Every line until the client exits, and its exit code.
    async fn rest(mut self) -> (Vec<Value>, i32) {
        let mut out = Vec::new();
        while let Ok(Some(line)) =
            tokio::time::timeout(Duration::from_secs(20), self.lines.next_line()).await.expect("the client went silent")
        {
            out.push(serde_json::from_str(&line).unwrap());
        }
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.unwrap().unwrap();
        (out, status.code().unwrap_or(-1))
    }
}

async fn create_customer(app: &TestApp, token: &str, name: &str) {
    app.gql("mutation($n: String!) { createCustomer(input: { name: $n }) { id } }", json!({ "n": name }), Some(token)).await.ok();
}

#[tokio::test]
async fn the_graphql_ws_client_streams_resumes_and_is_refused_like_the_protocol_says() {
    let app = TestApp::spawn().await;
    let owner = app.login("demo", "owner").await;
    let role = app.partner_role(&owner).await;
    let (key_id, key) = app.create_key(&owner, "node partner", &role).await;

    // Three changes, three events, in order. The client learns of the ack before the
    // server has registered its subscription, so it starts from the current head's
    // cursor: a change that races the registration is replayed, not lost.
    let mut live = Client::start(&app, &key, 3, Some(&app.head_cursor("demo").await)).await;
    assert_eq!(live.line().await, json!({ "connected": true }));
    for i in 0..3 {
        create_customer(&app, &owner, &format!("Node {i}")).await;
    }
    let (lines, code) = live.rest().await;
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(lines.last(), Some(&json!({ "done": true })));
    let events = &lines[..3];
    let names: Vec<&str> = events.iter().map(|e| e["entry"]["changes"]["name"]["after"].as_str().unwrap()).collect();
    assert_eq!(names, ["Node 0", "Node 1", "Node 2"]);
    let seqs: Vec<i64> = events.iter().map(|e| e["entry"]["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));

    // Resumed from a cursor: exactly what came after it, replayed, then live.
    let cursor = events[0]["cursor"].as_str().unwrap().to_owned();
    let mut resumed = Client::start(&app, &key, 3, Some(&cursor)).await;
    assert_eq!(resumed.line().await, json!({ "connected": true }));
    let first = resumed.line().await;
    let second = resumed.line().await;
    assert_eq!((first["entry"]["seq"].as_i64(), second["entry"]["seq"].as_i64()), (Some(seqs[1]), Some(seqs[2])));
    create_customer(&app, &owner, "Node live after replay").await;
    let (lines, code) = resumed.rest().await;
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(lines[0]["entry"]["changes"]["name"]["after"], "Node live after replay");

    // A wrong credential: closed 4403 before anything else.
    let (lines, code) = Client::start(&app, "pk_aaaaaaaaaaaa_thisisnotakeyatallthisisnotakeyatall0", 1, None).await.rest().await;
    assert_eq!(code, 2);
    assert_eq!((lines[0]["error"].as_str(), lines[0]["code"].as_i64()), (Some("closed"), Some(4403)), "{lines:?}");

    // Revoking the key mid-stream closes it 4403 for the client too.
    let mut doomed = Client::start(&app, &key, 5, None).await;
    assert_eq!(doomed.line().await, json!({ "connected": true }));
    app.gql("mutation($id: ID!) { revokeApiKey(id: $id) { status } }", json!({ "id": key_id }), Some(&owner)).await.ok();
    let (lines, code) = doomed.rest().await;
    assert_eq!(code, 2, "{lines:?}");
    assert_eq!(lines.last().unwrap()["code"], 4403, "{lines:?}");
}
