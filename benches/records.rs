//! The record engine under load (#12), as ratios measured side by side in one run:
//!
//! 1. `customers(first: 50)` as Owner (everything in full, scope ALL) and as Staff
//!    (masked fields, scope ASSIGNED): page 1 in a workspace of SMALL customers
//!    against page 1 in one of BIG (target >= 0.9: a list does not slow down as the
//!    workspace grows), and a page after 10,000 rows against page 1 (target >= 0.9).
//! 2. The same list against the raw SQL ceiling: the SELECT the server runs for it,
//!    sent by the bench itself through the same driver with as many connections as
//!    clients (aim >= 0.25).
//! 3. WRITERS concurrent writers updating the same few customers with
//!    `expectedVersion` (read, change, write, retry on CONFLICT) and adjusting the same
//!    products' stock: updates lost (must be 0), conflicts answered, throughput.
//!
//! Runs the real server on a free port. Backend: DATABASE_URL and REDIS_URL if set
//! (PostgreSQL + Redis, the production setup; the database must be empty or hold only
//! an earlier run of this bench), else a SQLite file and the memory store. Customers
//! are inserted directly (a GraphQL create per row would take the run's time); every
//! one is assigned to the workspace's `staff`, so both roles read the same rows.
//!
//! Run: `cargo bench --bench records` (SECONDS=5 CONCURRENCY=16 SMALL=1000 BIG=100000
//! WRITERS=16 by default).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use palisade::clock::SystemClock;
use palisade::config::Config;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Statement};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

const PASSWORD: &str = "bench-demo-password";
const FIELDS: &str = "id name status email phone taxId notes creditLimit";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn gql(client: &reqwest::Client, url: &str, token: Option<&str>, query: &str, vars: Value) -> Value {
    let mut req = client.post(url).json(&json!({ "query": query, "variables": vars }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap().json().await.unwrap()
}

async fn login(client: &reqwest::Client, url: &str, workspace: &str, user: &str) -> String {
    let v = gql(
        client,
        url,
        None,
        "mutation($w: String!, $u: String!, $p: String!) { login(input: { workspace: $w, login: $u, password: $p }) { token } }",
        json!({ "w": workspace, "u": user, "p": PASSWORD }),
    )
    .await;
    v["data"]["login"]["token"].as_str().unwrap_or_else(|| panic!("login {workspace}/{user}: {v}")).to_owned()
}

/// How many times per second `concurrency` tasks complete `one` back to back, for
/// `seconds`.
async fn rate<F, Fut>(seconds: f64, concurrency: usize, one: F) -> f64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (one, done, stop) = (one.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    one().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// Requests per second of `body` (which must succeed) through the API.
async fn phase(client: &reqwest::Client, url: &str, token: &str, body: &Value, seconds: f64, concurrency: usize) -> f64 {
    let (client, url, token, body) = (client.clone(), url.to_owned(), token.to_owned(), body.clone());
    rate(seconds, concurrency, move || {
        let (client, url, token, body) = (client.clone(), url.clone(), token.clone(), body.clone());
        async move {
            let res = client.post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
            assert!(res.status().is_success(), "{}", res.status());
            let v: Value = res.json().await.unwrap();
            assert!(v.get("errors").is_none(), "{v}");
        }
    })
    .await
}

/// Statements per second of `sql` sent straight to the database.
async fn raw_phase(db: &sea_orm::DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>, seconds: f64, concurrency: usize) -> f64 {
    let stmt = Statement::from_sql_and_values(db.get_database_backend(), sql, values);
    let db = db.clone();
    rate(seconds, concurrency, move || {
        let (db, stmt) = (db.clone(), stmt.clone());
        async move {
            assert_eq!(db.query_all_raw(stmt).await.unwrap().len(), 51);
        }
    })
    .await
}

/// Gives workspace `slug` `n` customers (all assigned to its `staff`), unless it has them.
async fn fill(db: &sea_orm::DatabaseConnection, slug: &str, n: usize) {
    use entity::{customer, user, workspace};
    let ws = workspace::Entity::find().filter(workspace::Column::Slug.eq(slug)).one(db).await.unwrap().unwrap();
    let have = customer::Entity::find().filter(customer::Column::WorkspaceId.eq(ws.id)).count(db).await.unwrap() as usize;
    if have >= n {
        return;
    }
    let staff = user::Entity::find()
        .filter(user::Column::WorkspaceId.eq(ws.id))
        .filter(user::Column::UsernameKey.eq("staff"))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    let now = chrono::Utc::now();
    let mut batch = Vec::new();
    for i in have..n {
        batch.push(customer::ActiveModel {
            id: Set(Uuid::now_v7()),
            workspace_id: Set(ws.id),
            owner_id: Set(staff.id),
            department_id: Set(staff.department_id),
            team_id: Set(staff.team_id),
            group_id: Set(staff.primary_group_id),
            created_by: Set(staff.id),
            created_at: Set(now),
            updated_at: Set(now),
            deleted_at: Set(None),
            version: Set(1),
            name: Set(format!("Bench customer {i:06}")),
            status: Set(["lead", "active", "inactive"][i % 3].into()),
            email: Set(Some(format!("c{i}@bench.example"))),
            phone: Set(Some(format!("+44 20 7946 {:04}", i % 10_000))),
            tax_id: Set(Some(format!("GB{:09}", 100_000_000 + i))),
            notes: Set(Some("Prefers email; renewal due.".into())),
            credit_limit_cents: Set(Some(100_000 + (i as i64 % 5_000) * 100)),
        });
        if batch.len() == 500 {
            customer::Entity::insert_many(std::mem::take(&mut batch)).exec(db).await.unwrap();
        }
    }
    if !batch.is_empty() {
        customer::Entity::insert_many(batch).exec(db).await.unwrap();
    }
}

/// The cursor after the first `rows` customers, paging 100 at a time.
async fn cursor_after(client: &reqwest::Client, url: &str, token: &str, rows: usize) -> String {
    let mut after = Value::Null;
    for _ in 0..rows / 100 {
        let v = gql(
            client,
            url,
            Some(token),
            "query($a: String) { customers(first: 100, after: $a) { pageInfo { endCursor } } }",
            json!({ "a": after }),
        )
        .await;
        after = v["data"]["customers"]["pageInfo"]["endCursor"].clone();
        assert!(after.is_string(), "{v}");
    }
    after.as_str().unwrap().to_owned()
}

struct Writers {
    updates: u64,
    conflicts: u64,
    lost: i64,
    stock_lost: i64,
    per_second: f64,
}

/// `writers` clients each adding 1 to the credit limit of one of `targets` customers
/// (read with its version, write with `expectedVersion`, retry on CONFLICT) and 1 to the
/// stock of one of as many products, for `seconds`. Lost updates: the increments that
/// succeeded minus what the records show.
async fn writers(client: &reqwest::Client, url: &str, owner: &str, targets: usize, writers: usize, seconds: f64) -> Writers {
    let mut customers = Vec::new();
    let mut products = Vec::new();
    for i in 0..targets {
        let c = gql(
            client,
            url,
            Some(owner),
            "mutation($n: String!) { createCustomer(input: { name: $n, creditLimit: \"0.00\" }) { id } }",
            json!({ "n": format!("Contended {i}") }),
        )
        .await;
        customers.push(c["data"]["createCustomer"]["id"].as_str().unwrap().to_owned());
        let p = gql(
            client,
            url,
            Some(owner),
            "mutation($n: String!, $s: String!) { createProduct(input: { name: $n, sku: $s, price: \"1.00\" }) { id } }",
            json!({ "n": format!("Contended {i}"), "s": format!("CONTENDED-{}-{i}", Uuid::now_v7().simple()) }),
        )
        .await;
        products.push(p["data"]["createProduct"]["id"].as_str().unwrap().to_owned());
    }
    let (ok, conflicts, stocked) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (client, url, owner) = (client.clone(), url.to_owned(), owner.to_owned());
            let (customers, products) = (customers.clone(), products.clone());
            let (ok, conflicts, stocked, stop) = (ok.clone(), conflicts.clone(), stocked.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let id = &customers[i % customers.len()];
                    let read = gql(&client, &url, Some(&owner), "query($id: ID!) { customer(id: $id) { version creditLimit } }", json!({ "id": id })).await;
                    let c = &read["data"]["customer"];
                    let limit: f64 = c["creditLimit"].as_str().unwrap().parse().unwrap();
                    let next = format!("{:.2}", limit + 1.0);
                    let r = gql(
                        &client,
                        &url,
                        Some(&owner),
                        "mutation($id: ID!, $v: Int, $l: String!) { updateCustomer(id: $id, expectedVersion: $v, input: { creditLimit: $l }) { version } }",
                        json!({ "id": id, "v": c["version"], "l": next }),
                    )
                    .await;
                    match r["errors"][0]["extensions"]["code"].as_str() {
                        None => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Some("CONFLICT") => {
                            conflicts.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        Some(other) => panic!("update: {other}: {r}"),
                    }
                    let p = &products[i % products.len()];
                    let r = gql(&client, &url, Some(&owner), "mutation($id: ID!) { adjustInventory(id: $id, delta: 1) { stock } }", json!({ "id": p })).await;
                    assert!(r.get("errors").is_none(), "{r}");
                    stocked.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut shown_limits = 0.0;
    for id in &customers {
        let v = gql(client, url, Some(owner), "query($id: ID!) { customer(id: $id) { creditLimit } }", json!({ "id": id })).await;
        shown_limits += v["data"]["customer"]["creditLimit"].as_str().unwrap().parse::<f64>().unwrap();
    }
    let mut shown_stock = 0;
    for id in &products {
        let v = gql(client, url, Some(owner), "query($id: ID!) { product(id: $id) { stock } }", json!({ "id": id })).await;
        shown_stock += v["data"]["product"]["stock"].as_i64().unwrap();
    }
    let updates = ok.load(Ordering::Relaxed);
    Writers {
        updates,
        conflicts: conflicts.load(Ordering::Relaxed),
        lost: updates as i64 - shown_limits.round() as i64,
        stock_lost: stocked.load(Ordering::Relaxed) as i64 - shown_stock,
        per_second: updates as f64 / elapsed,
    }
}

#[tokio::main]
async fn main() {
    let seconds: f64 = env_or("SECONDS", 5.0);
    let concurrency: usize = env_or("CONCURRENCY", 16);
    let (small, big): (usize, usize) = (env_or("SMALL", 1_000), env_or("BIG", 100_000));
    let writer_count: usize = env_or("WRITERS", 16);
    let dir = tempfile::tempdir().unwrap();
    let database_url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display()));
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", database_url.clone()),
        ("PALISADE_DEMO_PASSWORD", PASSWORD.to_owned()),
        ("PALISADE_SESSION_IDLE_SECS", "7200".to_owned()),
        ("PALISADE_RATE_API_SESSION", "1000000/1ms".to_owned()),
        ("PALISADE_RATE_SIGNIN_IP", "1000000/1ms".to_owned()),
    ]);
    if let Ok(redis) = std::env::var("REDIS_URL") {
        vars.insert("REDIS_URL", redis);
        vars.insert("PALISADE_REDIS_PREFIX", format!("bench-{}:", Uuid::now_v7().simple()));
    }
    let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let state = palisade::startup::build_state(config, Arc::new(SystemClock), None).await.unwrap();
    if let Err(e) = palisade::service::bootstrap::seed_demo(&state).await {
        println!("demo workspaces not seeded ({}); using the ones there", e.detail());
    }
    let db = state.db.clone();
    let backend = if database_url.starts_with("postgres") { "PostgreSQL" } else { "SQLite" };
    let store = state.store.kind();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(palisade::startup::serve(state, listener, std::future::pending()));
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency.max(writer_count)).build().unwrap();
    // acme is seeded with its owner only: it gets a staff member like demo's.
    let acme_owner = login(&client, &url, "acme", "owner").await;
    let created = gql(
        &client,
        &url,
        Some(&acme_owner),
        "mutation($p: String!) { createUser(input: { username: \"staff\", email: \"staff@acme.palisade.test\", password: $p }) { id } }",
        json!({ "p": PASSWORD }),
    )
    .await;
    if let Some(staff_id) = created["data"]["createUser"]["id"].as_str() {
        let roles = gql(&client, &url, Some(&acme_owner), "{ roles { id name } }", json!({})).await;
        let staff_role = roles["data"]["roles"].as_array().unwrap().iter().find(|r| r["name"] == "Staff").unwrap()["id"].clone();
        let r = gql(
            &client,
            &url,
            Some(&acme_owner),
            "mutation($r: ID!, $u: ID!) { assignRole(input: { roleId: $r, userId: $u }) { id } }",
            json!({ "r": staff_role, "u": staff_id }),
        )
        .await;
        assert!(r.get("errors").is_none(), "{r}");
    }
    let seeding = Instant::now();
    fill(&db, "demo", small).await;
    fill(&db, "acme", big).await;
    // As autovacuum would after a bulk load: the planner needs the new table's statistics.
    db.execute_unprepared("ANALYZE").await.unwrap();
    println!("{backend} + {store}: {small} customers in demo, {big} in acme (seeded in {:.0?})", seeding.elapsed());
    let tokens: HashMap<(&str, &str), String> = {
        let mut m = HashMap::from([(("acme", "owner"), acme_owner.clone())]);
        for (ws, user) in [("demo", "owner"), ("demo", "staff"), ("acme", "staff")] {
            m.insert((ws, user), login(&client, &url, ws, user).await);
        }
        m
    };
    let page1 = json!({ "query": format!("{{ customers(first: 50) {{ edges {{ node {{ {FIELDS} }} }} }} }}") });
    let deep_cursor = cursor_after(&client, &url, &tokens[&("acme", "owner")], 10_000.min(big - 100)).await;
    let deep = json!({ "query": format!("query($a: String) {{ customers(first: 50, after: $a) {{ edges {{ node {{ {FIELDS} }} }} }} }}"), "variables": { "a": deep_cursor } });

    // Warm up, then alternate so that drift affects every series alike.
    phase(&client, &url, &tokens[&("demo", "owner")], &page1, 1.0, concurrency).await;
    let series: [(&str, &str, &str, &Value); 5] = [
        ("owner small", "demo", "owner", &page1),
        ("owner big", "acme", "owner", &page1),
        ("staff small", "demo", "staff", &page1),
        ("staff big", "acme", "staff", &page1),
        ("owner big, after 10,000", "acme", "owner", &deep),
    ];
    let mut rps: HashMap<&str, Vec<f64>> = HashMap::new();
    let acme: Uuid = {
        use entity::workspace;
        workspace::Entity::find().filter(workspace::Column::Slug.eq("acme")).one(&db).await.unwrap().unwrap().id
    };
    let raw_sql = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            "SELECT * FROM customers WHERE workspace_id = $1 AND deleted_at IS NULL ORDER BY id ASC LIMIT 51".to_owned()
        }
        _ => "SELECT * FROM customers WHERE workspace_id = ? AND deleted_at IS NULL ORDER BY id ASC LIMIT 51".to_owned(),
    };
    let mut raw = Vec::new();
    for _ in 0..2 {
        for (name, ws, user, body) in series {
            rps.entry(name).or_default().push(phase(&client, &url, &tokens[&(ws, user)], body, seconds, concurrency).await);
        }
        raw.push(raw_phase(&db, &raw_sql, vec![acme.into()], seconds, concurrency).await);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let r = |name: &str| mean(&rps[name]);
    let raw_rps = mean(&raw);
    println!("customers(first: 50), {concurrency} concurrent clients, 2 x {seconds}s phases per series, interleaved");
    for (name, ..) in series {
        println!("  {name:<28} {:8.1} requests/s  (phases: {:.1?})", r(name), rps[name]);
    }
    println!("  {:<28} {raw_rps:8.1} statements/s (phases: {raw:.1?})", "raw SELECT (big), same pool");
    println!("ratios (targets in brackets):");
    println!("  owner: big / small             {:6.2}  (>= 0.9)", r("owner big") / r("owner small"));
    println!("  staff: big / small             {:6.2}  (>= 0.9)", r("staff big") / r("staff small"));
    println!("  owner: after 10,000 / page 1   {:6.2}  (>= 0.9)", r("owner big, after 10,000") / r("owner big"));
    println!("  staff / owner (big)            {:6.2}", r("staff big") / r("owner big"));
    println!("  owner big / raw SELECT         {:6.2}  (aim >= 0.25)", r("owner big") / raw_rps);

    let w = writers(&client, &url, &tokens[&("demo", "owner")], 4, writer_count, seconds * 2.0).await;
    println!("{writer_count} writers on 4 customers and 4 products for {}s ({backend}):", seconds * 2.0);
    println!(
        "  updates {} ({:.1}/s), conflicts answered {}, updates lost {} (must be 0), stock increments lost {} (must be 0)",
        w.updates, w.per_second, w.conflicts, w.lost, w.stock_lost
    );
    assert_eq!((w.lost, w.stock_lost), (0, 0), "lost updates");
}
