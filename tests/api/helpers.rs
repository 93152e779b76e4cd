use palisade::clock::{Clock, ManualClock};
use palisade::config::Config;
use palisade::state::AppState;
use palisade::store::{MemoryStore, RedisStore, Store};
use reqwest::header::HeaderMap;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

pub const DEMO_PASSWORD: &str = "demo-password-for-tests";

/// The databases and store one test uses; shared by every server instance it starts.
pub struct Backend {
    pub database_url: String,
    pub redis_url: Option<String>,
    pub redis_prefix: String,
    pg: Option<(String, String)>,
    pub clock: Arc<ManualClock>,
    memory_store: Arc<dyn Store>,
    /// The device cookie the server handed this test's "browser", sent back on later
    /// sign-ins like a browser would (so repeated test sign-ins are not "new devices").
    pub device: std::sync::Mutex<Option<String>>,
    /// The TOTP seed each master admin enrolled at their first sign-in, by email.
    pub master_seeds: std::sync::Mutex<HashMap<String, Vec<u8>>>,
    pub mail_dir: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn random_name() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

fn start_time() -> chrono::DateTime<chrono::Utc> {
    // A fixed, ordinary Wednesday morning in UTC.
    chrono::DateTime::parse_from_rfc3339("2026-03-04T09:00:00Z").unwrap().to_utc()
}

impl Backend {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(start_time()));
        let (database_url, pg) = match std::env::var("PALISADE_TEST_DATABASE_URL").ok().filter(|v| !v.is_empty()) {
            Some(admin_url) => {
                let name = format!("palisade_t_{}", random_name());
                let admin = Database::connect(&admin_url)
                    .await
                    .unwrap_or_else(|e| panic!("PALISADE_TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}"));
                admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
                admin.close().await.ok();
                let (base, _) = admin_url.rsplit_once('/').expect("database URL ends in /dbname");
                (format!("{base}/{name}"), Some((admin_url.clone(), name)))
            }
            None => (format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display()), None),
        };
        let redis_url = std::env::var("PALISADE_TEST_REDIS_URL").ok().filter(|v| !v.is_empty());
        let redis_prefix = format!("palisade_test:{}:", random_name());
        if let Some(url) = &redis_url {
            let store = RedisStore::connect(url, &redis_prefix).unwrap();
            store.ping().await.unwrap_or_else(|e| panic!("PALISADE_TEST_REDIS_URL is set but Redis is unreachable: {e}"));
        }
        let memory_store: Arc<dyn Store> = Arc::new(MemoryStore::new(clock.clone()));
        let mail_dir = dir.path().join("mail");
        Self {
            database_url,
            redis_url,
            redis_prefix,
            pg,
            clock,
            memory_store,
            device: Default::default(),
            master_seeds: Default::default(),
            mail_dir,
            _dir: dir,
        }
    }

    /// The store a server instance uses: a new Redis connection with this test's prefix,
    /// or (memory mode) the one in-process store all of this test's instances share.
    pub fn store(&self) -> Arc<dyn Store> {
        match &self.redis_url {
            Some(url) => Arc::new(RedisStore::connect(url, &self.redis_prefix).unwrap()),
            None => self.memory_store.clone(),
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let pg = self.pg.take();
        let redis = self.redis_url.take().map(|u| (u, self.redis_prefix.clone()));
        if pg.is_none() && redis.is_none() {
            return;
        }
        // Drop runs outside any runtime we may block on; clean up on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                if let Some((admin_url, name)) = pg
                    && let Ok(admin) = Database::connect(&admin_url).await
                {
                    let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                }
                if let Some((url, prefix)) = redis
                    && let Ok(client) = redis::Client::open(url.as_str())
                    && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                {
                    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.unwrap_or_default();
                    if !keys.is_empty() {
                        let _: Result<i64, _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
                    }
                }
            });
        })
        .join();
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub url: String,
    pub client: reqwest::Client,
    /// A connection of the test's own, for grey-box assertions on the database.
    pub db: DatabaseConnection,
    pub clock: Arc<ManualClock>,
    pub state: AppState,
    pub backend: Arc<Backend>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// The `extensions.code` of the first error, if any.
    pub fn code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"].as_str()
    }

    pub fn ok(&self) -> &Value {
        assert!(self.body.get("errors").is_none(), "unexpected errors: {}", self.body);
        &self.body["data"]
    }

    pub fn request_id(&self) -> String {
        self.headers["x-request-id"].to_str().unwrap().to_owned()
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_with(env: &[(&str, &str)]) -> Self {
        Self::start(Arc::new(Backend::new().await), env, true, None).await
    }

    /// A server whose session store is `store` instead of the test backend's.
    pub async fn spawn_with_store(store: Arc<dyn Store>) -> Self {
        Self::start(Arc::new(Backend::new().await), &[], true, Some(store)).await
    }

    /// Another server instance on the same database and store.
    pub async fn another_instance(&self) -> Self {
        Self::start(self.backend.clone(), &[], false, None).await
    }

    async fn start(backend: Arc<Backend>, env: &[(&str, &str)], seed: bool, store: Option<Arc<dyn Store>>) -> Self {
        let mut vars: HashMap<String, String> = HashMap::from([
            ("DATABASE_URL".into(), backend.database_url.clone()),
            ("PALISADE_DEMO_PASSWORD".into(), DEMO_PASSWORD.into()),
            ("PALISADE_REDIS_PREFIX".into(), backend.redis_prefix.clone()),
            ("PALISADE_SECRET_KEY".into(), "test-only-secret-key-0123456789-abcdefghijklmnop".into()),
            ("PALISADE_MAIL_DIR".into(), backend.mail_dir.display().to_string()),
            // Every test signs in from 127.0.0.1 and never waits; the limits themselves
            // are tested with their defaults in auth_security.rs.
            ("PALISADE_RATE_SIGNIN_IP".into(), "100000/1ms".into()),
            ("PALISADE_RATE_API_SESSION".into(), "100000/1ms".into()),
            ("PALISADE_RATE_ANONYMOUS_IP".into(), "100000/1ms".into()),
        ]);
        for (k, v) in env {
            vars.insert((*k).into(), (*v).into());
        }
        let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
        let state =
            palisade::startup::build_state(config, backend.clock.clone(), Some(store.unwrap_or_else(|| backend.store()))).await.unwrap();
        if seed {
            match palisade::service::bootstrap::seed_demo(&state).await {
                Ok(_) => {}
                Err(e) => panic!("seed failed: {}", e.detail()),
            }
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serving = state.clone();
        tokio::spawn(async move {
            let _ = palisade::startup::serve(serving, listener, async {
                let _ = rx.await;
            })
            .await;
        });
        let db = Database::connect(&backend.database_url).await.unwrap();
        Self {
            addr,
            url: format!("http://{addr}"),
            client: reqwest::Client::builder().user_agent("palisade-tests/1").build().unwrap(),
            db,
            clock: backend.clock.clone(),
            state,
            backend,
            _shutdown: tx,
        }
    }

    pub async fn post(&self, body: Value, token: Option<&str>) -> Reply {
        let mut req = self.client.post(format!("{}/graphql", self.url)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Self::reply(req.send().await.unwrap()).await
    }

    /// A GraphQL request as if forwarded by a trusted proxy for `client` (the server
    /// must trust 127.0.0.1: PALISADE_TRUSTED_PROXIES).
    pub async fn gql_from(&self, client: &str, query: &str, variables: Value, token: Option<&str>) -> Reply {
        let mut req = self
            .client
            .post(format!("{}/graphql", self.url))
            .header("x-forwarded-for", client)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.raw(req).await
    }

    pub async fn gql(&self, query: &str, variables: Value, token: Option<&str>) -> Reply {
        self.post(json!({ "query": query, "variables": variables }), token).await
    }

    pub async fn raw(&self, req: reqwest::RequestBuilder) -> Reply {
        Self::reply(req.send().await.unwrap()).await
    }

    async fn reply(res: reqwest::Response) -> Reply {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, headers, body }
    }

    pub async fn try_login(&self, workspace: &str, login: &str, password: &str) -> Reply {
        self.login_query(
            workspace,
            login,
            password,
            "token session { id current } challenge { id methods expiresAt } failedAttemptsSinceLastSignIn",
        )
        .await
    }

    /// A sign-in that sends back the device cookie this test's browser would hold.
    pub async fn login_query(&self, workspace: &str, login: &str, password: &str, selection: &str) -> Reply {
        let body = json!({
            "query": format!("mutation($i: LoginInput!) {{ login(input: $i) {{ {selection} }} }}"),
            "variables": { "i": { "workspace": workspace, "login": login, "password": password } },
        });
        let mut req = self.client.post(format!("{}/graphql", self.url)).json(&body);
        if let Some(cookie) = self.device_cookie() {
            req = req.header("cookie", cookie);
        }
        let reply = self.raw(req).await;
        self.keep_device(&reply);
        reply
    }

    /// The Cookie header of this test's browser, if the server gave it a device id.
    pub fn device_cookie(&self) -> Option<String> {
        self.backend.device.lock().unwrap().as_ref().map(|d| format!("__Host-palisade_device={d}"))
    }

    pub fn keep_device(&self, reply: &Reply) {
        for v in reply.headers.get_all("set-cookie") {
            if let Some(rest) = v.to_str().unwrap().strip_prefix("__Host-palisade_device=") {
                *self.backend.device.lock().unwrap() = Some(rest.split(';').next().unwrap().to_owned());
            }
        }
    }

    /// Signs in a TOTP-enrolled user: the challenge answered with the current code
    /// (after moving the clock to a fresh step, since each step works once).
    pub async fn login_with_code(&self, secret: &[u8], login: &str) -> String {
        self.clock.advance(chrono::Duration::seconds(30));
        let r = self.try_login("demo", login, DEMO_PASSWORD).await;
        let id = r.ok()["login"]["challenge"]["id"].as_str().unwrap().to_owned();
        let code = palisade::auth::twofactor::totp_code_at(secret, self.clock.now().timestamp() as u64);
        let r = self
            .gql(
                "mutation($i: VerifyTwoFactorInput!) { verifyTwoFactor(input: $i) { token } }",
                json!({ "i": { "challengeId": id, "method": "TOTP", "code": code } }),
                None,
            )
            .await;
        r.ok()["verifyTwoFactor"]["token"].as_str().unwrap().to_owned()
    }

    /// Forgets the device cookie, as a new browser would not have it.
    pub fn forget_device(&self) {
        *self.backend.device.lock().unwrap() = None;
    }

    /// The mails the server wrote to its mail folder (the embedded default transport).
    pub fn mails(&self) -> Vec<crate::smtp::Mail> {
        crate::smtp::eml_files(&self.backend.mail_dir)
    }

    pub async fn login(&self, workspace: &str, login: &str) -> String {
        let r = self.try_login(workspace, login, DEMO_PASSWORD).await;
        match r.ok()["login"]["token"].as_str() {
            Some(t) => t.to_owned(),
            None => panic!("{login} got a two-factor challenge instead of a session: {}", r.body),
        }
    }

    pub async fn me(&self, token: &str) -> Reply {
        self.gql("{ me { kind user { id username role } workspace { slug } } }", json!({}), Some(token)).await
    }

    pub async fn sql(&self, sql: &str) {
        self.db.execute_unprepared(sql).await.unwrap();
    }

    pub async fn sql_values(&self, sql: &str, values: Vec<sea_orm::Value>) -> Vec<sea_orm::QueryResult> {
        let backend = self.db.get_database_backend();
        let sql = if backend == sea_orm::DbBackend::Postgres {
            // Write tests with `?` placeholders; PostgreSQL wants $1, $2, ...
            let mut n = 0;
            sql.chars()
                .map(|c| {
                    if c == '?' {
                        n += 1;
                        format!("${n}")
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        } else {
            sql.to_owned()
        };
        self.db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await.unwrap()
    }

    pub async fn count(&self, sql: &str, values: Vec<sea_orm::Value>) -> i64 {
        let rows = self.sql_values(sql, values).await;
        rows[0].try_get_by_index::<i64>(0).unwrap()
    }

    pub async fn audit_count(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM audit_entries", vec![]).await
    }

    pub fn is_postgres(&self) -> bool {
        self.db.get_database_backend() == sea_orm::DbBackend::Postgres
    }
}

pub const MASTER_EMAIL: &str = "support@palisade.test";
pub const MASTER_PASSWORD: &str = "cobalt-anchor-meadow-19";

impl TestApp {
    /// A signed-in master admin (created on first use).
    pub async fn master_token(&self) -> String {
        let exists = self.count("SELECT COUNT(*) FROM master_admins", vec![]).await > 0;
        if !exists {
            palisade::service::bootstrap::create_master_admin(&self.state, MASTER_EMAIL, MASTER_PASSWORD).await.unwrap();
        }
        self.master_sign_in(MASTER_EMAIL, MASTER_PASSWORD).await
    }

    /// A master admin's whole sign-in: the password, then a TOTP code. The first time,
    /// the challenge carries the authenticator to enrol, and its seed is kept for the
    /// next sign-ins (which move the clock to a fresh step: each step works once).
    pub async fn master_sign_in(&self, email: &str, password: &str) -> String {
        let r = self.master_challenge(email, password).await;
        let challenge = r.ok()["masterLogin"]["challenge"]["id"].as_str().unwrap().to_owned();
        assert!(r.ok()["masterLogin"]["token"].is_null(), "a password alone opens no session: {}", r.body);
        let key = email.to_lowercase();
        let seed = match r.ok()["masterLogin"]["totpEnrollment"]["secret"].as_str() {
            Some(secret) => {
                let seed = base32_decode(secret);
                self.backend.master_seeds.lock().unwrap().insert(key, seed.clone());
                seed
            }
            None => {
                self.clock.advance(chrono::Duration::seconds(30));
                self.backend.master_seeds.lock().unwrap()[&key].clone()
            }
        };
        let code = palisade::auth::twofactor::totp_code_at(&seed, self.clock.now().timestamp() as u64);
        let r = self
            .gql(
                "mutation($i: VerifyTwoFactorInput!) { verifyTwoFactor(input: $i) { token } }",
                json!({ "i": { "challengeId": challenge, "method": "TOTP", "code": code } }),
                None,
            )
            .await;
        r.ok()["verifyTwoFactor"]["token"].as_str().unwrap().to_owned()
    }

    pub async fn master_challenge(&self, email: &str, password: &str) -> Reply {
        self.gql(
            "mutation($i: MasterLoginInput!) { masterLogin(input: $i) { token challenge { id methods } totpEnrollment { secret otpauthUri } failedAttemptsSinceLastSignIn } }",
            json!({ "i": { "email": email, "password": password } }),
            None,
        )
        .await
    }

    pub async fn user_id(&self, workspace: &str, username: &str) -> String {
        let rows = self
            .sql_values(
                "SELECT u.id FROM users u JOIN workspaces w ON u.workspace_id = w.id WHERE w.slug = ? AND u.username_key = ?",
                vec![workspace.into(), username.into()],
            )
            .await;
        rows[0].try_get_by_index::<uuid::Uuid>(0).unwrap().to_string()
    }

    pub async fn workspace_id(&self, slug: &str) -> String {
        let rows = self.sql_values("SELECT id FROM workspaces WHERE slug = ?", vec![slug.into()]).await;
        rows[0].try_get_by_index::<uuid::Uuid>(0).unwrap().to_string()
    }

    /// Creates a role (as `token`, who needs roles.write and a fresh sign-in).
    pub async fn create_role(&self, token: &str, input: Value) -> String {
        let r = self.gql("mutation($i: RoleInput!) { createRole(input: $i) { id } }", json!({ "i": input }), Some(token)).await;
        r.ok()["createRole"]["id"].as_str().unwrap().to_owned()
    }

    pub async fn assign_role(&self, token: &str, role_id: &str, user_id: &str) {
        let r = self
            .gql(
                "mutation($i: AssignRoleInput!) { assignRole(input: $i) { id } }",
                json!({ "i": { "roleId": role_id, "userId": user_id } }),
                Some(token),
            )
            .await;
        r.ok();
    }

    /// A partner API key with `role_id`: (key id, the secret).
    pub async fn create_key(&self, token: &str, name: &str, role_id: &str) -> (String, String) {
        let r = self
            .gql(
                "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { apiKey { id } secret } }",
                json!({ "i": { "name": name, "roleId": role_id } }),
                Some(token),
            )
            .await;
        let p = &r.ok()["createApiKey"];
        (p["apiKey"]["id"].as_str().unwrap().to_owned(), p["secret"].as_str().unwrap().to_owned())
    }

    /// The role a partner key typically gets: reads customers and the audit log of the
    /// whole workspace, emails masked, with API access.
    pub async fn partner_role(&self, owner: &str) -> String {
        self.create_role(
            owner,
            json!({
                "name": "Partner",
                "rank": 30,
                "permissions": ["CUSTOMERS_READ", "AUDIT_READ"],
                "scopes": [{ "module": "CUSTOMERS", "scope": "ALL" }],
                "fields": [{ "field": "CUSTOMER_EMAIL", "access": "MASKED" }],
                "restrictions": { "dataExport": false, "bulkOperations": false, "apiAccess": true, "maxRecordsPerRequest": 100 },
            }),
        )
        .await
    }

    /// The entries of the workspace's log with this action, oldest first.
    pub async fn entries(&self, action: &str) -> Vec<sea_orm::QueryResult> {
        self.sql_values(
            "SELECT actor_type, actor_id, impersonator_id, workspace_id, module, changes, reason, outcome FROM audit_entries WHERE action = ? ORDER BY id",
            vec![action.into()],
        )
        .await
    }
}

impl TestApp {
    /// The cursor of the newest entry of a workspace's log: subscribing `after` it
    /// streams everything from now on, even what commits while the subscription is
    /// still being set up.
    pub async fn head_cursor(&self, slug: &str) -> String {
        let ws = uuid::Uuid::parse_str(&self.workspace_id(slug).await).unwrap();
        self.count("SELECT COALESCE(MAX(seq), 0) FROM audit_entries WHERE workspace_id = ?", vec![ws.into()]).await.to_string()
    }
}

impl TestApp {
    /// Makes every audit insert fail from now on, as a full disk or a broken
    /// constraint would.
    pub async fn refuse_audit_writes(&self) {
        if self.is_postgres() {
            self.sql("CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$ LANGUAGE plpgsql")
                .await;
            self.sql("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION refuse_audit()").await;
        } else {
            self.sql("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'audit refused'); END").await;
        }
    }
}

/// RFC 4648 base32 (no padding), as authenticator apps read a TOTP seed.
pub fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut acc, mut out) = (0u32, 0u64, Vec::new());
    for c in s.trim_end_matches('=').bytes() {
        let v = ALPHABET.iter().position(|a| *a == c.to_ascii_uppercase()).unwrap() as u64;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
