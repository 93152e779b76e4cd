//! The database goes away while the server runs: requests answer 503
//! SERVICE_UNAVAILABLE with the request id, within a bound, and work again once it is
//! back, without a restart. Also: instances starting together on an empty database.
//!
//! How the database "goes away" depends on the backend, and each way is a real outage
//! of that backend, not a mock:
//! - PostgreSQL: the database stops accepting connections (`ALLOW_CONNECTIONS false`)
//!   and every open session to it is terminated, as when it is taken down for
//!   maintenance or fails over. Every request that needs it fails, reads included.
//! - SQLite: another connection (another process, in real life: a backup, the sqlite3
//!   shell, a second server) holds the file's write lock (`BEGIN EXCLUSIVE`). In WAL
//!   mode readers still read, so reads keep working; every write waits for the lock for
//!   the acquire timeout and then fails with SQLITE_BUSY. The file cannot usefully be
//!   moved or made unreadable instead: the server's open connections keep working on
//!   the open file.

use crate::helpers::{Backend, DEMO_PASSWORD, Reply, TestApp};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, TransactionTrait};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ACQUIRE_MS: &str = "300";
/// What "answered within the bound" allows: the acquire timeout twice over (a failed
/// mutation is also put on record, which waits once more) plus a sign-in's password
/// hashing, with a wide margin for a slow machine. The old behaviour took 10 s or more.
const BOUND: Duration = Duration::from_secs(4);

/// One outage of the test's database, ended by `end`.
enum Outage {
    Postgres { admin: DatabaseConnection, name: String },
    Sqlite { _db: DatabaseConnection, lock: DatabaseTransaction },
}

fn pg_admin_url() -> Option<String> {
    std::env::var("PALISADE_TEST_DATABASE_URL").ok().filter(|v| !v.is_empty())
}

impl Outage {
    async fn begin(database_url: &str) -> Outage {
        match pg_admin_url() {
            Some(admin_url) => {
                let admin = Database::connect(&admin_url).await.unwrap();
                let name = database_url.rsplit('/').next().unwrap().to_owned();
                admin.execute_unprepared(&format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")).await.unwrap();
                admin
                    .execute_unprepared(&format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                    ))
                    .await
                    .unwrap();
                Outage::Postgres { admin, name }
            }
            None => {
                let db = Database::connect(database_url).await.unwrap();
                let options = sea_orm::TransactionOptions {
                    sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Exclusive),
                    ..Default::default()
                };
                let lock = db.begin_with_options(options).await.unwrap();
                Outage::Sqlite { _db: db, lock }
            }
        }
    }

    async fn end(self) {
        match self {
            Outage::Postgres { admin, name } => {
                admin.execute_unprepared(&format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")).await.unwrap();
            }
            Outage::Sqlite { lock, .. } => lock.rollback().await.unwrap(),
        }
    }
}

const LOGIN: &str = "mutation($i: LoginInput!) { login(input: $i) { token } }";
const CREATE_CUSTOMER: &str = "mutation($i: CustomerInput!) { createCustomer(input: $i) { id name } }";

fn login_vars() -> Value {
    json!({ "i": { "workspace": "demo", "login": "owner", "password": DEMO_PASSWORD } })
}

/// Checks that an answer, which took `took`, refuses the request as unavailable, with
/// the request id.
fn assert_unavailable(what: &str, r: &Reply, took: Duration) {
    assert_eq!(r.status, 503, "{what}: {}", r.body);
    assert_eq!(r.code(), Some("SERVICE_UNAVAILABLE"), "{what}: {}", r.body);
    assert_eq!(r.body["errors"][0]["extensions"]["requestId"].as_str(), Some(r.request_id().as_str()), "{what}: {}", r.body);
    let message = r.body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        ["service temporarily unavailable", "the request took too long and was stopped"].contains(&message),
        "{what}: nothing internal leaks: {}",
        r.body
    );
    assert!(took < BOUND, "{what} took {took:?}");
}

async fn timed<F: std::future::Future<Output = Reply>>(f: F) -> (Reply, Duration) {
    let started = Instant::now();
    let r = f.await;
    (r, started.elapsed())
}

/// A sign-in from the test's usual browser (so it is not a new device, which would be
/// challenged for a second factor).
async fn sign_in(app: &TestApp) -> (Reply, Duration) {
    timed(app.login_query("demo", "owner", DEMO_PASSWORD, "token")).await
}

#[tokio::test]
async fn an_unreachable_database_answers_503_with_the_request_id_and_recovers() {
    let app = TestApp::spawn_with(&[("PALISADE_DB_ACQUIRE_TIMEOUT_MS", ACQUIRE_MS)]).await;
    let owner = app.login("demo", "owner").await;
    let customer = json!({ "i": { "name": "Outage Ltd" } });

    let outage = Outage::begin(&app.backend.database_url).await;
    let (r, took) = sign_in(&app).await;
    assert_unavailable("sign-in", &r, took);
    let (r, took) = timed(app.gql(CREATE_CUSTOMER, customer.clone(), Some(&owner))).await;
    assert_unavailable("a change", &r, took);
    if app.is_postgres() {
        let (r, took) = timed(app.me(&owner)).await;
        assert_unavailable("a read", &r, took);
        let ready = app.raw(app.client.get(format!("{}/readyz", app.url))).await;
        assert_eq!((ready.status, &ready.body["database"]), (503, &json!("unavailable")), "{}", ready.body);
    } else {
        // SQLite in WAL mode: a writer's lock does not stop readers.
        assert_eq!(app.me(&owner).await.ok()["me"]["user"]["username"], "owner");
    }
    outage.end().await;

    // The same requests work again, on the same server.
    let (r, _) = sign_in(&app).await;
    assert!(r.ok()["login"]["token"].is_string(), "{}", r.body);
    let r = app.gql(CREATE_CUSTOMER, customer, Some(&owner)).await;
    assert_eq!(r.ok()["createCustomer"]["name"], "Outage Ltd");
    assert_eq!(app.me(&owner).await.ok()["me"]["user"]["username"], "owner");
}

#[tokio::test]
async fn a_request_stuck_on_the_database_is_stopped_with_503_and_the_request_id() {
    // PostgreSQL: the database is there but does not answer in time (the acquire
    // timeout is long here), so the execution timeout stops the request. SQLite has no
    // such state: a write that meets another writer's lock fails at once (SQLITE_BUSY,
    // since it read first and waiting could deadlock), which must answer the same way.
    let app = TestApp::spawn_with(&[("PALISADE_EXECUTION_TIMEOUT_MS", "500"), ("PALISADE_DB_ACQUIRE_TIMEOUT_MS", "20000")]).await;
    if app.is_postgres() {
        // Sign-in reads the users table, which this lock keeps everyone else out of.
        let db = Database::connect(&app.backend.database_url).await.unwrap();
        let lock = db.begin().await.unwrap();
        lock.execute_unprepared("LOCK TABLE users IN ACCESS EXCLUSIVE MODE").await.unwrap();
        let (r, took) = sign_in(&app).await;
        assert_unavailable("a stuck sign-in", &r, took);
        assert_eq!(r.body["errors"][0]["message"], "the request took too long and was stopped");
        lock.rollback().await.unwrap();
    } else {
        let outage = Outage::begin(&app.backend.database_url).await;
        let (r, took) = sign_in(&app).await;
        assert_unavailable("a stuck sign-in", &r, took);
        outage.end().await;
    }
    let (r, _) = sign_in(&app).await;
    assert!(r.ok()["login"]["token"].is_string(), "{}", r.body);
}

/// The server binary, run as an operator would, with only errors logged.
struct Server {
    child: tokio::process::Child,
    addr: String,
    stderr: tokio::task::JoinHandle<String>,
}

impl Server {
    async fn start(backend: &Backend, env: &[(&str, &str)]) -> Server {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
        let dir = backend.mail_dir.parent().unwrap().to_owned();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_palisade"));
        cmd.args(["serve", "--demo", "--bind", "127.0.0.1:0"])
            .current_dir(&dir)
            .env("DATABASE_URL", &backend.database_url)
            .env("PALISADE_DEMO_PASSWORD", DEMO_PASSWORD)
            .env("PALISADE_SECRET_KEY", "test-only-secret-key-0123456789-abcdefghijklmnop")
            .env("PALISADE_REDIS_PREFIX", &backend.redis_prefix)
            .env("PALISADE_MAIL_DIR", &backend.mail_dir)
            .env_remove("REDIS_URL")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Some(url) = &backend.redis_url {
            cmd.env("REDIS_URL", url);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut err = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text).await;
            text
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(rest) = line.strip_prefix("Palisade is listening on http://") {
                    return rest.trim_end_matches("/graphql").to_owned();
                }
            }
            panic!("the server exited before listening");
        })
        .await
        .expect("the server did not start");
        Server { child, addr, stderr }
    }

    /// Stops the server and returns what it logged.
    async fn stop(mut self) -> String {
        self.child.kill().await.unwrap();
        self.stderr.await.unwrap()
    }
}

#[tokio::test]
async fn error_lines_carry_the_request_id_even_when_only_errors_are_logged() {
    let backend = Backend::new().await;
    let server =
        Server::start(&backend, &[("RUST_LOG", "error"), ("PALISADE_LOG_FORMAT", "json"), ("PALISADE_DB_ACQUIRE_TIMEOUT_MS", ACQUIRE_MS)])
            .await;
    let outage = Outage::begin(&backend.database_url).await;
    let res = reqwest::Client::new()
        .post(format!("http://{}/graphql", server.addr))
        .json(&json!({ "query": LOGIN, "variables": login_vars() }))
        .send()
        .await
        .unwrap();
    outage.end().await;
    assert_eq!(res.status(), 503);
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let log = server.stop().await;
    let errors: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["level"] == "ERROR" && l["message"] == "database unavailable")
        .collect();
    assert!(!errors.is_empty(), "the outage is logged as an error:\n{log}");
    for line in &errors {
        assert_eq!(line["span"]["request_id"], request_id.as_str(), "every error line names the request: {line}");
    }
}

/// The settings every instance in `concurrent_starts_on_an_empty_database_all_succeed`
/// shares.
fn instance_config(backend: &Backend) -> palisade::config::Config {
    let vars = [
        ("DATABASE_URL", backend.database_url.clone()),
        ("PALISADE_SECRET_KEY", "test-only-secret-key-0123456789-abcdefghijklmnop".to_owned()),
        ("PALISADE_MAIL_DIR", backend.mail_dir.display().to_string()),
        ("PALISADE_REDIS_PREFIX", backend.redis_prefix.clone()),
    ];
    palisade::config::Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap()
}

#[tokio::test]
async fn concurrent_starts_on_an_empty_database_all_succeed() {
    // Before the migration lock, the second of two instances starting together on an
    // empty PostgreSQL database exited with "column ... already exists".
    let backend = Arc::new(Backend::new().await);
    let starts = (0..4).map(|_| {
        let backend = Arc::clone(&backend);
        tokio::spawn(async move {
            palisade::startup::build_state(instance_config(&backend), backend.clock.clone(), Some(backend.store()))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    });
    for (i, started) in futures_util::future::join_all(starts).await.into_iter().enumerate() {
        assert_eq!(started.unwrap(), Ok(()), "instance {i}");
    }
}
