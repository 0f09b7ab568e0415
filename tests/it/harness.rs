//! The test harness: a real server on port 0 over a fresh database (a SQLite file or a new
//! PostgreSQL database), real HTTP and WebSocket clients, and helpers to read responses.
//!
//! PostgreSQL comes from `FORKLIFT_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! every test gets its own database, dropped afterwards. When PostgreSQL is unreachable the
//! PostgreSQL variant of a test is skipped with a message, unless `FORKLIFT_TEST_REQUIRE_PG=1`
//! (CI), where it fails.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use forklift::{
    app::Application,
    auth::TokenRequest,
    config::{Config, Secret},
    registry::Registry,
    state::AppState,
};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

/// The HS256 secret every test server uses.
pub const TEST_SECRET: &str = "forklift-test-secret-0123456789abcdef0123456789";

/// Which database a test runs on.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh database for one test; removed when dropped.
pub struct TestDb {
    /// The server's URL: on PostgreSQL as the unprivileged application role, so row-level
    /// security binds every test.
    pub url: String,
    /// The owner's URL (migrations, DDL in tests): on PostgreSQL the administrator.
    pub owner_url: String,
    /// The system pool's URL: on PostgreSQL the role with `BYPASSRLS` ([`SYSTEM_ROLE`]); on
    /// SQLite the server's URL.
    pub system_url: String,
    dir: Option<PathBuf>,
    pg_name: Option<String>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .get(..8)
            .unwrap_or("x")
    )
}

fn pg_admin_url() -> String {
    std::env::var("FORKLIFT_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

fn pg_required() -> bool {
    std::env::var("FORKLIFT_TEST_REQUIRE_PG").is_ok_and(|v| v == "1" || v == "true")
}

fn pg_url_for(db: &str) -> String {
    let admin = pg_admin_url();
    let (base, _) = admin
        .rsplit_once('/')
        .expect("FORKLIFT_TEST_PG must end with /DATABASE");
    format!("{base}/{db}")
}

/// The role the test servers use on PostgreSQL: no superuser, no `BYPASSRLS`, owns nothing.
pub const APP_ROLE: &str = "forklift_it_app";

/// The role of the test servers' system pool on PostgreSQL: `BYPASSRLS`, owns nothing, and the
/// application role is no member of it (as deploy/postgres-init.sql sets up production).
pub const SYSTEM_ROLE: &str = "forklift_it_system";

/// `url` with its user replaced by `user` (and no password).
fn with_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}@{host}")
}

impl TestDb {
    /// A fresh database, or `None` when PostgreSQL is unreachable and not required.
    pub async fn create(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(unique_name("forklift-it"));
                std::fs::create_dir_all(&dir).expect("temp dir");
                let file = dir.join("forklift.db");
                let url = format!("sqlite://{}?mode=rwc", file.display());
                Some(TestDb {
                    owner_url: url.clone(),
                    system_url: url.clone(),
                    url,
                    dir: Some(dir),
                    pg_name: None,
                })
            }
            Backend::Postgres => {
                let admin = match Database::connect(pg_admin_url()).await {
                    Ok(db) => db,
                    Err(err) => {
                        if pg_required() {
                            panic!(
                                "PostgreSQL is required (FORKLIFT_TEST_REQUIRE_PG=1) but unreachable: {err}"
                            );
                        }
                        eprintln!("skipped: PostgreSQL unreachable ({err})");
                        return None;
                    }
                };
                let name = unique_name("forklift_it");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                for (role, attributes) in [(APP_ROLE, "NOBYPASSRLS"), (SYSTEM_ROLE, "BYPASSRLS")] {
                    admin
                        .execute_unprepared(&format!(
                            "DO $$ BEGIN CREATE ROLE {role} LOGIN NOSUPERUSER {attributes} NOCREATEDB NOCREATEROLE; \
                                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
                        ))
                        .await
                        .expect("create the application and system roles");
                }
                let _ = admin.close().await;
                let owner_url = pg_url_for(&name);
                // Tables the owner creates (the migrations) are usable by both server roles.
                let owner = Database::connect(&owner_url)
                    .await
                    .expect("connect as owner");
                for role in [APP_ROLE, SYSTEM_ROLE] {
                    owner
                        .execute_unprepared(&format!(
                            "GRANT CONNECT ON DATABASE {name} TO {role}; \
                                GRANT USAGE ON SCHEMA public TO {role}; \
                                ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}; \
                                ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role}"
                        ))
                        .await
                        .expect("grant the server roles");
                }
                let _ = owner.close().await;
                Some(TestDb {
                    url: with_user(&owner_url, APP_ROLE),
                    system_url: with_user(&owner_url, SYSTEM_ROLE),
                    owner_url,
                    dir: None,
                    pg_name: Some(name),
                })
            }
        }
    }
}

impl TestDb {
    /// The same database, without owning it (a second replica's view): dropping it removes
    /// nothing.
    pub fn shared(&self) -> TestDb {
        TestDb {
            url: self.url.clone(),
            owner_url: self.owner_url.clone(),
            system_url: self.system_url.clone(),
            dir: None,
            pg_name: None,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(name) = self.pg_name.take() {
            // Dropped from a plain thread with its own runtime: Drop may run inside a runtime.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    if let Ok(admin) = Database::connect(pg_admin_url()).await {
                        let _ = admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .await;
                        let _ = admin.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// A running server.
pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub state: Arc<AppState>,
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    /// Kept for its `Drop`, which removes the database after the server.
    _db: TestDb,
}

/// The configuration every test server starts from: the application role serves, the owner
/// migrates.
pub fn test_config(db: &TestDb) -> Config {
    let mut config = Config::for_database(&db.url);
    if db.owner_url != db.url {
        config.migration_database_url = Some(db.owner_url.clone());
    }
    if db.system_url != db.url {
        config.system_database_url = Some(db.system_url.clone());
    }
    config.jwt_secret = Some(Secret::new(TEST_SECRET));
    // Nothing reads a moved tenant's old copy in the tests that move tenants in process.
    config.move_drain = std::time::Duration::ZERO;
    config
}

impl TestApp {
    /// A server over a fresh database of `backend`; `None` when that backend is unavailable.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, |_| {}, Registry::default()).await
    }

    /// As [`TestApp::spawn`], with the configuration adjusted and a given registry.
    pub async fn spawn_with(
        backend: Backend,
        adjust: impl FnOnce(&mut Config),
        registry: Registry,
    ) -> Option<TestApp> {
        let db = TestDb::create(backend).await?;
        let mut config = test_config(&db);
        adjust(&mut config);
        Some(Self::serve(db, config, registry).await)
    }

    /// Serves `config` over `db` (which must be the database `config` points at).
    pub async fn serve(db: TestDb, config: Config, registry: Registry) -> TestApp {
        let app = Application::build_with_registry(config, registry)
            .await
            .expect("application builds");
        let addr = app.local_addr();
        let state = app.state.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = app
                .run_until(async move {
                    let _ = rx.await;
                })
                .await;
        });
        TestApp {
            addr,
            state,
            http: reqwest::Client::new(),
            shutdown: Some(tx),
            server: Some(server),
            _db: db,
        }
    }

    /// A second server (replica) over the same database, configured by `adjust`.
    pub async fn replica(&self, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = test_config(&self._db);
        adjust(&mut config);
        Self::serve(self._db.shared(), config, Registry::default()).await
    }

    /// The database URL of this server.
    pub fn database_url(&self) -> &str {
        &self._db.url
    }

    /// The system pool's database URL (the `BYPASSRLS` role on PostgreSQL).
    pub fn system_url(&self) -> &str {
        &self._db.system_url
    }

    /// The owner's database URL (migrations, DDL).
    pub fn owner_url(&self) -> &str {
        &self._db.owner_url
    }

    /// A connection as the owner of the tables.
    pub async fn owner_db(&self) -> sea_orm::DatabaseConnection {
        Database::connect(self.owner_url())
            .await
            .expect("connect as owner")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql/ws", self.addr)
    }

    /// A token for `sub`, optionally pinned to a tenant, signed with the test secret.
    pub fn token(&self, sub: &str, tenant: Option<&str>, admin: bool, grants: &[&str]) -> String {
        let request = TokenRequest {
            sub: sub.to_string(),
            tenant: tenant.map(str::to_string),
            admin,
            grants: grants.iter().map(|g| g.to_string()).collect(),
            ttl_secs: 3600,
        };
        self.state
            .verifier
            .mint(&request.claims(&self.state.config))
            .expect("mint token")
    }

    /// A platform administrator's token.
    pub fn admin(&self) -> String {
        self.token("admin@platform.test", None, true, &[])
    }

    /// POSTs a GraphQL request; returns the HTTP status and the JSON body.
    pub async fn post(
        &self,
        token: Option<&str>,
        tenant: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(tenant) = tenant {
            request = request.header("X-Tenant", tenant);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body read");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    /// A GraphQL request whose body is returned whatever the status.
    pub async fn gql(
        &self,
        token: &str,
        tenant: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Value {
        self.post(Some(token), tenant, query, variables).await.1
    }

    /// A GraphQL request that must succeed; returns `data`.
    pub async fn ok(
        &self,
        token: &str,
        tenant: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Value {
        let body = self.gql(token, tenant, query, variables).await;
        assert!(
            body.get("errors").is_none(),
            "expected success for {query}\n got {body:#}"
        );
        body["data"].clone()
    }

    /// Creates an ACTIVE tenant through the API; returns its id.
    pub async fn create_tenant(&self, slug: &str) -> String {
        let data = self
            .ok(
                &self.admin(),
                None,
                "mutation($input: CreateTenantInput!) { createTenant(input: $input) { id slug status } }",
                json!({ "input": { "name": format!("Tenant {slug}"), "slug": slug, "status": "ACTIVE" } }),
            )
            .await;
        data["createTenant"]["id"]
            .as_str()
            .expect("tenant id")
            .to_string()
    }

    /// Adds `email` to the tenant `slug` with `role`, as the platform admin.
    pub async fn add_member(&self, slug: &str, email: &str, role: &str) -> String {
        let data = self
            .ok(
                &self.admin(),
                Some(slug),
                "mutation($email: String!, $role: Role!) { addMember(email: $email, role: $role) { id } }",
                json!({ "email": email, "role": role }),
            )
            .await;
        data["addMember"]["id"]
            .as_str()
            .expect("membership id")
            .to_string()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// The `extensions.code` of the first error, if any.
pub fn code(body: &Value) -> Option<String> {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .map(str::to_string)
}

/// Runs `body` against a fresh server on `backend`; skips when that backend is unavailable
/// (PostgreSQL unreachable without `FORKLIFT_TEST_REQUIRE_PG`).
pub async fn with_app<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    if let Some(app) = TestApp::spawn(backend).await {
        body(app).await;
    }
}

/// Runs a test on SQLite and on PostgreSQL. The test is an ordinary function,
/// `async fn name(app: TestApp)`, declared beside `crate::both!(name);`, which generates the
/// tests `name::sqlite` and `name::postgres`, each with a fresh server in `app` (so
/// `cargo test sqlite` and `cargo test postgres` select one database).
#[macro_export]
macro_rules! both {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::harness::with_app($crate::harness::Backend::Sqlite, super::$name).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::harness::with_app($crate::harness::Backend::Postgres, super::$name).await;
            }
        }
    )+};
}

/// As [`both!`], for a test that builds its own servers: `async fn name(backend: Backend)`
/// beside `crate::both_backends!(name);`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::harness::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::harness::Backend::Postgres).await;
            }
        }
    )+};
}

impl TestApp {
    /// Waits until fork run `id` (a global id) leaves PENDING/RUNNING; returns the run.
    pub async fn wait_run(&self, id: &str) -> Value {
        self.wait_run_within(id, 30).await
    }

    /// [`TestApp::wait_run`] for runs that may take up to `seconds` (a large fork on a loaded
    /// machine).
    pub async fn wait_run_within(&self, id: &str, seconds: u64) -> Value {
        let admin = self.admin();
        for _ in 0..seconds * 20 {
            let data = self
                .ok(
                    &admin,
                    None,
                    "query($id: ID!) { forkRun(id: $id) { id status phase failedPhase error \
                        counts { className phase rows created matched skipped removed } skipped \
                        { className sourceId column reason } actor } }",
                    json!({ "id": id }),
                )
                .await;
            let run = data["forkRun"].clone();
            let status = run["status"].as_str().unwrap_or_default();
            if !matches!(status, "PENDING" | "RUNNING") {
                return run;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("fork run {id} did not finish in {seconds} s");
    }

    /// POSTs a GraphQL request that must be refused with `expected` as `extensions.code`;
    /// returns the body (for further checks on it).
    pub async fn refused(
        &self,
        token: &str,
        tenant: Option<&str>,
        query: &str,
        variables: Value,
        expected: &str,
    ) -> Value {
        let body = self.gql(token, tenant, query, variables).await;
        assert_eq!(code(&body).as_deref(), Some(expected), "{query}: {body}");
        body
    }

    /// Polls the run `id` (as the platform admin) until its status is `status`, for at most
    /// 20 s; returns the status it last had (the caller asserts it).
    pub async fn wait_run_status(&self, id: &str, status: &str) -> Value {
        let admin = self.admin();
        let mut last = Value::Null;
        for _ in 0..200 {
            let data = self
                .ok(
                    &admin,
                    None,
                    "query($id: ID!) { forkRun(id: $id) { status } }",
                    json!({ "id": id }),
                )
                .await;
            last = data["forkRun"]["status"].clone();
            if last == status {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        last
    }

    /// Starts a fork of the template into `target` as the platform admin; returns the run id.
    pub async fn start_fork(&self, target: &str) -> String {
        let data = self
            .ok(
                &self.admin(),
                None,
                "mutation($t: String!) { forkTenant(input: { target: $t }) { id status } }",
                json!({ "t": target }),
            )
            .await;
        data["forkTenant"]["id"]
            .as_str()
            .expect("run id")
            .to_string()
    }

    /// Forks the template into `target` and waits; returns the finished run.
    pub async fn fork(&self, target: &str) -> Value {
        let id = self.start_fork(target).await;
        self.wait_run(&id).await
    }

    /// A tenant ready for its members: created, forked from the template, `READY`.
    pub async fn ready_tenant(&self, slug: &str) -> String {
        forklift::bootstrap::ensure_template(&self.state)
            .await
            .expect("template");
        let id = self.create_tenant(slug).await;
        let run = self.fork(slug).await;
        assert_eq!(run["status"], "FINISHED", "fork of {slug}: {run}");
        id
    }
}

/// The UUID behind a global id.
pub fn uuid_of(global: &str) -> uuid::Uuid {
    forklift::graphql::ids::decode(global)
        .unwrap_or_else(|| panic!("not a global id: {global}"))
        .1
}

impl TestApp {
    /// A tenant in its trial (default length), forked and ready for members.
    pub async fn ready_tenant_in_trial(&self, slug: &str) -> String {
        forklift::bootstrap::ensure_template(&self.state)
            .await
            .expect("template");
        let data = self
            .ok(
                &self.admin(),
                None,
                "mutation($input: CreateTenantInput!) { createTenant(input: $input) { id } }",
                json!({ "input": { "name": format!("Tenant {slug}"), "slug": slug } }),
            )
            .await;
        let run = self.fork(slug).await;
        assert_eq!(run["status"], "FINISHED", "fork of {slug}: {run}");
        data["createTenant"]["id"]
            .as_str()
            .expect("tenant id")
            .to_string()
    }
}
