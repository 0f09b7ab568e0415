//! Named tenant databases as configuration (issue #19 item 1): `forklift migrate` migrates the
//! main database and every named one and reports each, an unreachable one fails the command
//! after the others; `/readyz` reports each and stays 200 while only a named one is down; a bad
//! entry stops the start naming it, never showing its password. Both backends: a named SQLite
//! database is another file.

use std::process::{Command, Output};

use forklift::databases::{Source, TenantDatabases};
use migration::MigratorTrait;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, TestDb};

/// `forklift ARGS` with only the given variables set (none a developer's shell might carry).
fn forklift(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_forklift"));
    command.args(args).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().expect("run forklift")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// The main database's variables for `db`.
fn main_vars(db: &TestDb) -> Vec<(&'static str, String)> {
    let mut vars = vec![("DATABASE_URL", db.url.clone())];
    if db.owner_url != db.url {
        vars.push(("FORKLIFT_MIGRATION_DATABASE_URL", db.owner_url.clone()));
    }
    if db.system_url != db.url {
        vars.push(("FORKLIFT_SYSTEM_DATABASE_URL", db.system_url.clone()));
    }
    vars
}

fn migrate(action: &str, vars: &[(&'static str, String)]) -> Output {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (*n, v.as_str())).collect();
    forklift(&["migrate", action], &vars)
}

/// How many tenants and applied migrations `url` holds, read with direct SQL: an error when the
/// tables are missing.
async fn tables_in(url: &str) -> Result<(i64, i64), sea_orm::DbErr> {
    let db = Database::connect(url).await?;
    let backend = db.get_database_backend();
    let count = |sql: &str| {
        let db = &db;
        let sql = sql.to_string();
        async move {
            let row = db
                .query_one_raw(Statement::from_string(backend, sql))
                .await?
                .expect("a row");
            row.try_get::<i64>("", "n")
        }
    };
    let tenants = count("SELECT COUNT(*) AS n FROM tenants").await;
    let migrations = count("SELECT COUNT(*) AS n FROM seaql_migrations").await;
    let _ = db.close().await;
    Ok((tenants?, migrations?))
}

/// A URL on which nothing answers: PostgreSQL on a port nothing listens on (with a password that
/// must never be shown), or a SQLite file in a directory that does not exist.
fn unreachable_url(backend: Backend) -> String {
    match backend {
        Backend::Postgres => "postgres://forklift:hunter2secret@127.0.0.1:1/nowhere".into(),
        Backend::Sqlite => "sqlite:///nonexistent-forklift-dir/deeper/eu.db?mode=rwc".into(),
    }
}

/// A new directory under the system's temporary one.
fn scratch_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("forklift-placement-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn migrations_count() -> i64 {
    migration::Migrator::migrations().len() as i64
}

crate::both_backends!(migrate_reaches_every_named_database);
async fn migrate_reaches_every_named_database(backend: Backend) {
    let Some(main) = TestDb::create(backend).await else {
        return;
    };
    let eu1 = TestDb::create(backend).await.expect("second database");
    let eu2 = TestDb::create(backend).await.expect("third database");
    let mut vars = main_vars(&main);
    vars.push((
        "FORKLIFT_TENANT_DATABASES",
        format!("eu1={},eu2={}", eu1.owner_url, eu2.owner_url),
    ));
    let n = migrations_count();

    let output = migrate("up", &vars);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            format!("main: applied {n}"),
            format!("eu1: applied {n}"),
            format!("eu2: applied {n}")
        ],
        "{stdout}"
    );
    for db in [&main, &eu1, &eu2] {
        assert_eq!(tables_in(&db.owner_url).await.expect("migrated"), (0, n));
    }

    let again = migrate("up", &vars);
    assert!(again.status.success());
    assert_eq!(
        text(&again.stdout),
        "main: up to date\neu1: up to date\neu2: up to date\n"
    );
    let status = migrate("status", &vars);
    let status_text = text(&status.stdout);
    assert!(status.status.success());
    for name in ["main", "eu1", "eu2"] {
        assert!(
            status_text.contains(&format!("{name}: {n} applied, 0 pending\n")),
            "{status_text}"
        );
    }

    // Reverting reverts everywhere: no table is left in a named database either.
    let down = migrate("down", &vars);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(text(&down.stdout).contains(&format!("eu2: reverted {n}")));
    assert!(tables_in(&eu2.owner_url).await.is_err(), "eu2 reverted");
}

crate::both_backends!(an_unreachable_named_database_fails_migrate_after_the_others);
async fn an_unreachable_named_database_fails_migrate_after_the_others(backend: Backend) {
    let Some(main) = TestDb::create(backend).await else {
        return;
    };
    let eu2 = TestDb::create(backend).await.expect("second database");
    // From a file this time: a comment, a blank line, the unreachable one first.
    let dir = scratch_dir();
    let file = dir.join("tenant-databases.conf");
    std::fs::write(
        &file,
        format!(
            "# named tenant databases\n\neu1={}\neu2={}\n",
            unreachable_url(backend),
            eu2.owner_url
        ),
    )
    .expect("write the file");
    let mut vars = main_vars(&main);
    vars.push(("FORKLIFT_TENANT_DATABASES_FILE", file.display().to_string()));
    let n = migrations_count();

    let output = migrate("up", &vars);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(!output.status.success(), "{stdout}{stderr}");
    assert_eq!(
        stdout,
        format!("main: applied {n}\neu2: applied {n}\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("eu1: failed: cannot reach database eu1"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2secret"), "{stderr}");
    for db in [&main, &eu2] {
        assert_eq!(tables_in(&db.owner_url).await.expect("migrated"), (0, n));
    }
}

crate::both_backends!(readyz_reports_each_named_database);
async fn readyz_reports_each_named_database(backend: Backend) {
    let Some(eu1) = TestDb::create(backend).await else {
        return;
    };
    let unreachable = unreachable_url(backend);
    let app = TestApp::spawn_with(
        backend,
        |config| {
            let list = format!("eu1={},down-1={unreachable}", eu1.owner_url);
            config.tenant_databases =
                TenantDatabases::parse(&list, Source::Variable, &config.database_url)
                    .expect("valid entries");
        },
        Default::default(),
    )
    .await
    .expect("server");
    assert_eq!(
        app.state.tenant_pools.open_pools().await,
        0,
        "no named database is connected at startup"
    );
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "status": "degraded", "databases": { "main": "up", "eu1": "up", "down-1": "down" } })
    );
    assert_eq!(app.state.tenant_pools.open_pools().await, 1, "eu1's pool");
    // The tenants of the main database are served as ever.
    let data = app
        .ok(&app.admin(), None, "{ me { subject } }", Value::Null)
        .await;
    assert!(data["me"]["subject"].is_string(), "{data}");

    let plain = TestApp::spawn(backend).await.expect("server");
    assert_eq!(
        readyz(&plain).await,
        (
            200,
            json!({ "status": "ready", "databases": { "main": "up" } })
        )
    );
}

async fn readyz(app: &TestApp) -> (u16, Value) {
    let response = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

#[test]
fn bad_entries_stop_the_start_naming_the_entry() {
    let pg = "postgres://forklift:mainsecret@127.0.0.1:1/forklift";
    let sqlite = "sqlite://main.db?mode=rwc";
    let cases: &[(&str, &str, &str)] = &[
        (
            pg,
            "eu1=postgres://u:topsecret@db/a,EU-2=postgres://u:topsecret@db/b",
            "FORKLIFT_TENANT_DATABASES: entry 2 `EU-2=postgres://u:***@db/b`: the name must be",
        ),
        (
            pg,
            "eu1=postgres://u:topsecret@db/a,eu1=postgres://u:topsecret@db/b",
            "entry 2 `eu1=postgres://u:***@db/b`: the name `eu1` is given twice",
        ),
        (
            pg,
            "main=postgres://u:topsecret@db/a",
            "entry 1 `main=postgres://u:***@db/a`: `main` is the main database",
        ),
        (
            pg,
            "eu1=sqlite://eu1.db",
            "entry 1 `eu1=sqlite://eu1.db`: the main database is PostgreSQL",
        ),
        (
            sqlite,
            "eu1=postgres://u:topsecret@db/a",
            "entry 1 `eu1=postgres://u:***@db/a`: the main database is SQLite",
        ),
        (
            pg,
            "eu1 postgres://u:topsecret@db/a",
            "entry 1 `eu1 postgres://u:***@db/a`: expected NAME=URL",
        ),
    ];
    for (main, list, expected) in cases {
        for command in [&["serve"][..], &["migrate"][..]] {
            let output = forklift(
                command,
                &[
                    ("DATABASE_URL", main),
                    ("FORKLIFT_TENANT_DATABASES", list),
                    ("FORKLIFT_ADDR", "127.0.0.1:0"),
                ],
            );
            let stderr = text(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{command:?} {list}: {stderr}"
            );
            assert!(stderr.contains(expected), "{command:?} {list}: {stderr}");
            assert!(!stderr.contains("topsecret"), "{stderr}");
        }
    }
    // From a file: the line is named.
    let dir = scratch_dir();
    let file = dir.join("dbs.conf");
    std::fs::write(
        &file,
        "# comment\neu1=postgres://db/a\nbad_name=postgres://u:topsecret@db/b\n",
    )
    .expect("write");
    let output = forklift(
        &["migrate"],
        &[
            ("DATABASE_URL", pg),
            (
                "FORKLIFT_TENANT_DATABASES_FILE",
                &file.display().to_string(),
            ),
        ],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "FORKLIFT_TENANT_DATABASES_FILE: {}:3 `bad_name=postgres://u:***@db/b`",
            file.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("topsecret"), "{stderr}");
}
