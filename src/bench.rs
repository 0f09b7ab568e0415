//! `forklift bench fork`: the fork against its floor (SPEC §8).
//!
//! For each size, a scratch database (a temporary SQLite file, or a new PostgreSQL database on
//! the server of `DATABASE_URL`) gets a synthetic template of that many rows spread over every
//! copied class. Then it times:
//! - **fork**: a real run (`forkTenant` without the HTTP), all five phases, events stored;
//! - **floor**: the same rows copied by hand-written `INSERT … SELECT` statements inside the
//!   database, ids remapped through a mapping table, in one transaction;
//!
//! and prints both, their ratio and the process's peak memory.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use sea_orm::{ConnectionTrait, Database, DbBackend, Statement, TransactionTrait};
use uuid::Uuid;

use crate::{
    app, bootstrap,
    config::{Config, Secret},
    fork::runs,
    registry::Registry,
    state::AppState,
    synthetic,
};

/// One measured size.
#[derive(Clone, Debug)]
pub struct Measurement {
    pub rows: usize,
    pub fork_ms: f64,
    pub floor_ms: f64,
    pub peak_rss_mb: f64,
}

/// The process's peak resident memory (VmHWM), in MiB; 0 where unknown.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A scratch database for one size, removed on [`Scratch::drop_it`].
struct Scratch {
    url: String,
    admin_url: Option<String>,
    name: String,
}

impl Scratch {
    async fn create(base: &Config, size: usize) -> anyhow::Result<Scratch> {
        let name = format!("forklift_bench_{}_{size}", std::process::id());
        if base.is_sqlite() {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            let _ = std::fs::remove_file(&path);
            return Ok(Scratch {
                url: format!("sqlite://{}?mode=rwc", path.display()),
                admin_url: None,
                name,
            });
        }
        let admin_url = base.database_url.clone();
        let admin = Database::connect(&admin_url).await?;
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
            .await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        let _ = admin.close().await;
        let base_url = admin_url.split('?').next().unwrap_or_default();
        let (server, _) = base_url
            .rsplit_once('/')
            .ok_or_else(|| anyhow::anyhow!("DATABASE_URL: expected postgres://USER@HOST/DB"))?;
        Ok(Scratch {
            url: format!("{server}/{name}"),
            admin_url: Some(admin_url),
            name,
        })
    }

    async fn drop_it(self) {
        match self.admin_url {
            Some(admin_url) => {
                if let Ok(admin) = Database::connect(&admin_url).await {
                    let _ = admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                            self.name
                        ))
                        .await;
                }
            }
            None => {
                let path = std::env::temp_dir().join(format!("{}.db", self.name));
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
        }
    }
}

/// The hand-written copy: every copied class with `INSERT … SELECT`, ids remapped through a
/// mapping table, in one transaction. Returns the rows copied.
async fn floor_copy(state: &AppState, source: Uuid, target: Uuid) -> anyhow::Result<u64> {
    let db = &state.db;
    let backend = db.get_database_backend();
    let (uuid_type, new_id, p1, p2) = match backend {
        DbBackend::Postgres => ("uuid", "gen_random_uuid()", "$1", "$2"),
        _ => ("blob", "randomblob(16)", "?1", "?2"),
    };
    let classes = state.registry.copied_classes();
    let tx = db.begin().await?;
    tx.execute_unprepared(&format!(
        "CREATE TEMPORARY TABLE forklift_floor_map (old {uuid_type} PRIMARY KEY, new {uuid_type} NOT NULL)"
    ))
    .await?;
    for class in &classes {
        tx.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO forklift_floor_map (old, new) SELECT id, {new_id} FROM {} WHERE tenant_id = {p1}",
                class.table
            ),
            [source.into()],
        ))
        .await?;
    }
    let mut copied = 0;
    for class in &classes {
        let mut select = Vec::new();
        let mut joins = vec!["JOIN forklift_floor_map m_id ON m_id.old = s.id".to_string()];
        for column in &class.columns {
            let reference = class
                .references
                .iter()
                .find(|r| r.column == column.name && r.same_tenant);
            select.push(match (column.name.as_str(), reference) {
                ("id", _) => "m_id.new".to_string(),
                ("tenant_id", _) => p1.to_string(),
                (name, Some(_)) => {
                    joins.push(format!(
                        "LEFT JOIN forklift_floor_map m_{name} ON m_{name}.old = s.{name}"
                    ));
                    format!("m_{name}.new")
                }
                (name, None) => format!("s.{name}"),
            });
        }
        let columns: Vec<&str> = class.columns.iter().map(|c| c.name.as_str()).collect();
        let sql = format!(
            "INSERT INTO {table} ({cols}) SELECT {select} FROM {table} s {joins} WHERE s.tenant_id = {p2}",
            table = class.table,
            cols = columns.join(", "),
            select = select.join(", "),
            joins = joins.join(" "),
        );
        copied += tx
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [target.into(), source.into()],
            ))
            .await?
            .rows_affected();
    }
    tx.execute_unprepared("DROP TABLE forklift_floor_map")
        .await?;
    tx.commit().await?;
    Ok(copied)
}

async fn measure(base: &Config, rows: usize) -> anyhow::Result<Measurement> {
    let scratch = Scratch::create(base, rows).await?;
    let mut config = Config::for_database(&scratch.url);
    config.jwt_secret = Some(Secret::new(
        crate::domains::new_token() + &crate::domains::new_token(),
    ));
    let state = Arc::new(app::build_state(config, Registry::default()).await?);
    let classes = state.registry.copied_classes().len().max(1);
    let per_class = rows.div_ceil(classes);
    let template = bootstrap::ensure_template(&state).await?;
    let vocabulary = synthetic::vocabulary(&state.db, &state.registry, 20).await?;
    synthetic::configuration(
        &state.db,
        &state.registry,
        template.id,
        per_class,
        &vocabulary,
    )
    .await?;

    let fork_target =
        bootstrap::ensure_tenant(&state, "bench-fork", "Bench fork", "TENANT").await?;
    let started = Instant::now();
    let run = bootstrap::fork_and_wait(
        state.clone(),
        runs::ForkRequest {
            target: fork_target.slug.clone(),
            source: None,
            dry_run: false,
            actor: "bench".into(),
        },
        |_| {},
    )
    .await?;
    let fork_ms = started.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(
        run.status == runs::status::FINISHED,
        "the fork ended {}: {:?}",
        run.status,
        run.error
    );

    let floor_target =
        bootstrap::ensure_tenant(&state, "bench-floor", "Bench floor", "TENANT").await?;
    let started = Instant::now();
    let copied = floor_copy(&state, template.id, floor_target.id).await?;
    let floor_ms = started.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(
        copied as usize >= per_class * classes,
        "the floor copied only {copied} rows"
    );

    let _ = state.db.clone().close().await;
    scratch.drop_it().await;
    Ok(Measurement {
        rows: per_class * classes,
        fork_ms,
        floor_ms,
        peak_rss_mb: peak_rss_mb(),
    })
}

/// Runs the benchmark for each size and prints a table; returns the measurements.
pub async fn fork(base: &Config, sizes: &[usize]) -> anyhow::Result<Vec<Measurement>> {
    let backend = if base.is_sqlite() {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    println!("fork vs floor on {backend} ({})", base.database_label());
    println!(
        "{:>8} {:>12} {:>12} {:>8} {:>14}",
        "rows", "fork ms", "floor ms", "ratio", "peak RSS MiB"
    );
    let mut out = Vec::new();
    for size in sizes {
        let m = measure(base, *size).await?;
        println!(
            "{:>8} {:>12.1} {:>12.1} {:>8.2} {:>14.1}",
            m.rows,
            m.fork_ms,
            m.floor_ms,
            m.fork_ms / m.floor_ms.max(0.001),
            m.peak_rss_mb
        );
        out.push(m);
    }
    Ok(out)
}

/// One concurrency level of the query benchmark.
#[derive(Clone, Debug)]
pub struct QueryMeasurement {
    pub concurrency: usize,
    pub requests: u64,
    pub errors: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The nested query of SPEC §8: applications → actions → placements (→ surface).
const NESTED: &str = "{ applications(first: 50) { nodes { code actions { key actionPlacements { position surfaceType { key } } } } } }";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `forklift bench query`: a server process over a scratch database holding 50 applications,
/// 500 actions and 1,000 placements; this process is the load generator. For each concurrency,
/// the nested query runs for `seconds` with a JWT on every request; prints throughput and
/// latency, and counts any non-200 response or `errors` in a body as an error.
pub async fn query(
    base: &Config,
    levels: &[usize],
    seconds: u64,
) -> anyhow::Result<Vec<QueryMeasurement>> {
    let scratch = Scratch::create(base, 0).await?;
    let secret = crate::domains::new_token() + &crate::domains::new_token();
    let mut config = Config::for_database(&scratch.url);
    config.jwt_secret = Some(Secret::new(secret.clone()));
    let state = app::build_state(config.clone(), Registry::default()).await?;
    bootstrap::ensure_template(&state).await?;
    let tenant = bootstrap::ensure_tenant(&state, "bench", "Bench", "TENANT").await?;
    // Seven surface types: placement i and i + 500 (same action, same application) then land on
    // different surfaces, so the 1,000 placements keep their natural keys distinct.
    let vocabulary = synthetic::vocabulary(&state.db, &state.registry, 7).await?;
    let mut seeded = synthetic::Seeded::new();
    for (table, count) in [
        ("applications", 50),
        ("actions", 500),
        ("action_placements", 1000),
    ] {
        let class = state
            .registry
            .by_table(table)
            .ok_or_else(|| anyhow::anyhow!("no class {table}"))?;
        synthetic::generate_class(
            &state.db,
            class,
            Some(tenant.id),
            count,
            &mut seeded,
            &vocabulary,
        )
        .await?;
    }
    let token = state.verifier.mint(
        &crate::auth::TokenRequest {
            sub: "bench@forklift.local".into(),
            admin: true,
            ttl_secs: 3600,
            ..Default::default()
        }
        .claims(&config),
    )?;
    let _ = state.db.clone().close().await;

    // The server: a separate process of this same binary.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut server = tokio::process::Command::new(std::env::current_exe()?)
        .arg("serve")
        .env("DATABASE_URL", &scratch.url)
        .env("FORKLIFT_ADDR", format!("127.0.0.1:{port}"))
        .env("FORKLIFT_JWT_SECRET", &secret)
        .env("FORKLIFT_ENV", "production")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()?;
    let url = format!("http://127.0.0.1:{port}/graphql");
    let mut up = false;
    for _ in 0..200 {
        if client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::ensure!(up, "the bench server did not start");

    let backend = if base.is_sqlite() {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    println!(
        "nested query (50 applications → 500 actions → 1,000 placements) on {backend}, {seconds} s per level"
    );
    println!(
        "{:>12} {:>10} {:>8} {:>10} {:>10} {:>10}",
        "concurrency", "requests", "errors", "req/s", "p50 ms", "p99 ms"
    );
    let mut out = Vec::new();
    for &concurrency in levels {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::with_capacity(concurrency);
        for _ in 0..concurrency.max(1) {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let result = client
                        .post(&url)
                        .bearer_auth(&token)
                        .header("X-Tenant", "bench")
                        .json(&serde_json::json!({ "query": NESTED }))
                        .send()
                        .await;
                    let ok = match result {
                        Ok(response) if response.status().is_success() => response
                            .json::<serde_json::Value>()
                            .await
                            .is_ok_and(|body| body.get("errors").is_none()),
                        _ => false,
                    };
                    latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                    if !ok {
                        errors += 1;
                    }
                }
                (latencies, errors)
            }));
        }
        let mut latencies = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (l, e) = task.await?;
            latencies.extend(l);
            errors += e;
        }
        latencies.sort_by(|a, b| a.total_cmp(b));
        let m = QueryMeasurement {
            concurrency,
            requests: latencies.len() as u64,
            errors,
            per_second: latencies.len() as f64 / seconds.max(1) as f64,
            p50_ms: percentile(&latencies, 0.50),
            p99_ms: percentile(&latencies, 0.99),
        };
        println!(
            "{:>12} {:>10} {:>8} {:>10.0} {:>10.2} {:>10.2}",
            m.concurrency, m.requests, m.errors, m.per_second, m.p50_ms, m.p99_ms
        );
        out.push(m);
    }
    let _ = server.kill().await;
    scratch.drop_it().await;
    Ok(out)
}
