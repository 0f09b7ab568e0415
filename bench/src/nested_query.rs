//! `forklift-bench query`: the nested query of `docs/performance.md` from a separate load process.

use std::time::Instant;

use super::{
    BenchServer, Memory, Scratch, admin_token, backend_name,
    load::{Load, Target},
    percentile,
};
use forklift::{app, config::Config, registry::Registry, synthetic};

/// One concurrency level of the query benchmark.
#[derive(Clone, Debug)]
pub struct QueryMeasurement {
    pub concurrency: usize,
    pub requests: u64,
    pub errors: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The server's resident memory after this level, and its peak so far (MiB).
    pub server: Memory,
    /// The server's CPU time per request at this level, in milliseconds.
    pub server_cpu_ms: f64,
    /// PostgreSQL alone running the same statements with pgbench: (clients, transactions/s).
    pub database: Option<(usize, f64)>,
}

/// Everything `bench query` measured.
#[derive(Clone, Debug)]
pub struct QueryReport {
    pub levels: Vec<QueryMeasurement>,
    /// JWT verification plus tenant and membership resolution, per request (in process).
    pub guard_ms: f64,
    /// From spawning the server to its first ready `/readyz`, on an existing database.
    pub ready_ms: u64,
    /// The server's memory when ready, before any load.
    pub idle: Memory,
}

/// The named database of the dedicated tenant, and the tenant.
const DEDICATED_DATABASE: &str = "eu1";
const DEDICATED_TENANT: &str = "bench-eu1";

/// Alternate rounds (shared, then dedicated) per concurrency level of the dedicated comparison.
const ALTERNATE_ROUNDS: usize = 2;

/// Makes the tenant `slug`, placed in the named database `database` at `url` (migrated here),
/// with the nested query's rows there over the main database's `vocabulary` (copied there, as
/// `createTenant` with `database` would).
pub(crate) async fn placed_tenant(
    state: &forklift::state::AppState,
    database: &str,
    slug: &str,
    url: &str,
    vocabulary: &synthetic::Seeded,
) -> anyhow::Result<()> {
    use migration::MigratorTrait;
    use sea_orm::ConnectionTrait;
    let named = sea_orm::Database::connect(url).await?;
    migration::Migrator::up(&named, None).await?;
    let tenant = forklift::bootstrap::ensure_tenant(state, slug, slug, "TENANT").await?;
    let backend = state.db.get_database_backend();
    let placeholders = match backend {
        sea_orm::DbBackend::Postgres => ("$1", "$2"),
        _ => ("?1", "?2"),
    };
    state
        .db
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            format!(
                "UPDATE tenants SET database = {} WHERE id = {}",
                placeholders.0, placeholders.1
            ),
            [database.into(), tenant.id.into()],
        ))
        .await?;
    forklift::placement::prepare(&state.db, &named, database, &state.registry, tenant.id)
        .await
        .map_err(forklift::error::AppError::into_anyhow)?;
    synthetic::nested_rows(&named, &state.registry, tenant.id, vocabulary).await?;
    let _ = named.close().await;
    Ok(())
}

/// The nested query of `docs/performance.md`: applications → actions → placements (→ surface).
pub(crate) const NESTED: &str = "{ applications(first: 50) { nodes { code actions { key actionPlacements { position surfaceType { key } } } } } }";

/// `forklift-bench query`: a server process over a scratch database holding 50 applications,
/// 500 actions and 1,000 placements; this process is the load generator. For each concurrency,
/// the nested query runs for `seconds` with a JWT on every request; prints throughput and
/// latency, and counts any non-200 response or `errors` in a body as an error.
pub async fn run(base: &Config, levels: &[usize], seconds: u64) -> anyhow::Result<QueryReport> {
    let scratch = Scratch::create(base, "query").await?;
    let config = scratch.config();
    let state = app::build_state(config.clone(), Registry::default()).await?;
    let (tenant, vocabulary) = synthetic::nested_query_tenant_and_vocabulary(&state).await?;
    // The same rows for a tenant placed in a named database of its own (issue #19).
    let named = Scratch::create(base, "query_eu1").await?;
    placed_tenant(
        &state,
        DEDICATED_DATABASE,
        DEDICATED_TENANT,
        &named.url,
        &vocabulary,
    )
    .await?;
    let token = admin_token(&state, &config)?;
    let script = if base.is_sqlite() {
        None
    } else {
        let path = std::env::temp_dir().join(format!("forklift_bench_{}.sql", std::process::id()));
        std::fs::write(&path, pgbench_script(&state, tenant).await?)?;
        Some(path)
    };

    let databases = format!("{DEDICATED_DATABASE}={}", named.url);
    // The named database's pool as large as the main request pool (16): the same footing, and
    // room left for pgbench's clients under PostgreSQL's connection limit.
    let server = BenchServer::start(
        &config,
        &[
            ("FORKLIFT_TENANT_DATABASES", &databases),
            ("FORKLIFT_TENANT_DATABASES_MAX_CONNECTIONS", "16"),
        ],
    )
    .await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()?;
    let url = format!("http://{}/graphql", server.addr);

    let backend = backend_name(base);
    println!(
        "nested query (50 applications → 500 actions → 1,000 placements) on {backend}, {seconds} s per level"
    );
    println!(
        "{:>12} {:>10} {:>8} {:>10} {:>10} {:>10} {:>12} {:>14} {:>14} {:>8}",
        "concurrency",
        "requests",
        "errors",
        "req/s",
        "p50 ms",
        "p99 ms",
        "CPU ms/req",
        "server MiB",
        "pgbench tps",
        "ratio"
    );
    let mut out = Vec::new();
    for &concurrency in levels {
        let target = Target {
            url: url.clone(),
            token: token.clone(),
            headers: vec![("X-Tenant", "bench".to_string())],
            body: serde_json::json!({ "query": NESTED }),
        };
        let load = Load::start(client.clone(), target, concurrency, seconds);
        load.window_started().await;
        let cpu_before = server.cpu_seconds();
        load.window_ended().await;
        let cpu_after = server.cpu_seconds();
        let (mut latencies, errors) = load.finish().await?;
        latencies.sort_by(|a, b| a.total_cmp(b));
        let m = QueryMeasurement {
            concurrency,
            requests: latencies.len() as u64,
            errors,
            per_second: latencies.len() as f64 / seconds.max(1) as f64,
            p50_ms: percentile(&latencies, 0.50),
            p99_ms: percentile(&latencies, 0.99),
            server: server.memory(),
            server_cpu_ms: (cpu_after - cpu_before) * 1000.0 / latencies.len().max(1) as f64,
            database: match &script {
                Some(path) => pgbench(&scratch.url, path, concurrency, seconds).await,
                None => None,
            },
        };
        let (database, ratio) = match m.database {
            Some((clients, tps)) if clients == concurrency => {
                (format!("{tps:.0}"), format!("{:.3}", m.per_second / tps))
            }
            Some((clients, tps)) => (format!("{tps:.0} ({clients} cl.)"), "—".into()),
            None => ("—".into(), "—".into()),
        };
        println!(
            "{:>12} {:>10} {:>8} {:>10.0} {:>10.2} {:>10.2} {:>12.2} {:>14.1} {:>14} {:>8}",
            m.concurrency,
            m.requests,
            m.errors,
            m.per_second,
            m.p50_ms,
            m.p99_ms,
            m.server_cpu_ms,
            m.server.rss_mb,
            database,
            ratio
        );
        out.push(m);
    }
    // The dedicated tenant after every shared level and its pgbench: its database's pool opens
    // on first use, and would otherwise hold connections pgbench needs. Measured against the
    // shared tenant again, alternately (shared, dedicated, shared, dedicated at each level), so
    // that drift of a shared machine falls on both alike.
    let rate = |slug: &str, concurrency: usize| {
        let target = Target {
            url: url.clone(),
            token: token.clone(),
            headers: vec![("X-Tenant", slug.to_string())],
            body: serde_json::json!({ "query": NESTED }),
        };
        let load = Load::start(client.clone(), target, concurrency, seconds);
        async move {
            load.window_started().await;
            load.window_ended().await;
            let (latencies, errors) = load.finish().await?;
            anyhow::Ok((latencies.len() as f64 / seconds.max(1) as f64, errors))
        }
    };
    for &concurrency in levels {
        let (mut shared, mut placed, mut errors) = (0.0, 0.0, 0);
        for _ in 0..ALTERNATE_ROUNDS {
            let (per_second, e) = rate("bench", concurrency).await?;
            shared += per_second;
            errors += e;
            let (per_second, e) = rate(DEDICATED_TENANT, concurrency).await?;
            placed += per_second;
            errors += e;
        }
        let rounds = ALTERNATE_ROUNDS as f64;
        println!(
            "dedicated tenant (its own database `{DEDICATED_DATABASE}`), concurrency {concurrency}: \
             {:.0} req/s against the shared tenant's {:.0} in alternate rounds ({errors} errors): {:.2}×",
            placed / rounds,
            shared / rounds,
            placed / shared.max(f64::MIN_POSITIVE)
        );
    }
    println!(
        "server memory: {:.1} MiB idle, {:.1} MiB peak; ready {} ms after start on this existing database",
        server.idle.rss_mb,
        server.memory().peak_mb,
        server.ready_ms
    );
    // The guard's share: verifying the JWT and resolving tenant and membership, in this process
    // against the same database, next to a whole request at concurrency 1.
    let rounds = 500;
    let started = Instant::now();
    for _ in 0..rounds {
        forklift::scope::resolve(
            &state,
            forklift::scope::RequestInputs {
                bearer: Some(token.clone()),
                tenant_header: Some("bench".into()),
                host: None,
                fork_watch: false,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("the guard refused the bench token: {e:?}"))?;
    }
    let guard_ms = started.elapsed().as_secs_f64() * 1000.0 / f64::from(rounds);
    let _ = state.db.clone().close().await;
    if let Some(path) = script {
        let _ = std::fs::remove_file(path);
    }
    let (ready_ms, idle) = (server.ready_ms, server.idle);
    server.stop().await;
    scratch.drop_it().await;
    named.drop_it().await;
    let report = QueryReport {
        levels: out,
        guard_ms,
        ready_ms,
        idle,
    };
    if let Some(share) = report.guard_share() {
        println!("guard (JWT, tenant, membership): {share}");
    }
    Ok(report)
}

impl QueryReport {
    /// The guard's cost per request and its share of a request at the first concurrency level.
    pub fn guard_share(&self) -> Option<String> {
        let first = self.levels.first()?;
        Some(format!(
            "{:.3} ms per request, {:.1}% of a request at concurrency {}",
            self.guard_ms,
            self.guard_ms / first.p50_ms.max(0.001) * 100.0,
            first.concurrency
        ))
    }
}

/// The statements the planned read path sends for [`NESTED`], written out for pgbench with this
/// database's ids: one transaction that names the tenant, then one `SELECT` per level.
async fn pgbench_script(
    state: &forklift::state::AppState,
    tenant: uuid::Uuid,
) -> anyhow::Result<String> {
    use sea_orm::{ConnectionTrait, Statement};
    let ids = |sql: String| async move {
        let rows = state
            .db
            .query_all_raw(Statement::from_string(state.db.get_database_backend(), sql))
            .await?;
        let list = rows
            .iter()
            .map(|r| {
                r.try_get_by_index::<uuid::Uuid>(0)
                    .map(|id| format!("'{id}'"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        anyhow::Ok(list.join(", "))
    };
    let apps = ids(format!(
        "SELECT id FROM applications WHERE tenant_id = '{tenant}' ORDER BY id LIMIT 50"
    ))
    .await?;
    let actions = ids(format!(
        "SELECT id FROM actions WHERE tenant_id = '{tenant}' AND application_id IN ({apps})"
    ))
    .await?;
    let surfaces = ids(format!(
        "SELECT DISTINCT surface_type_id FROM action_placements WHERE tenant_id = '{tenant}' AND action_id IN ({actions})"
    ))
    .await?;
    // The planned read path: one transaction naming the tenant, one statement per level with
    // only the columns the query needs, no count (the query selects no `totalCount`).
    let mut script = format!("BEGIN;\nSELECT set_config('forklift.tenant', '{tenant}', true);\n");
    script += &format!(
        "SELECT \"id\", \"code\" FROM applications WHERE tenant_id = '{tenant}' ORDER BY id ASC, id ASC LIMIT 50 OFFSET 0;\n"
    );
    script += &format!(
        "SELECT \"id\", \"application_id\", \"key\" FROM actions WHERE tenant_id = '{tenant}' AND application_id IN ({apps}) ORDER BY id ASC;\n"
    );
    script += &format!(
        "SELECT \"id\", \"action_id\", \"position\", \"surface_type_id\" FROM action_placements WHERE tenant_id = '{tenant}' AND action_id IN ({actions}) ORDER BY id ASC;\n"
    );
    script += &format!(
        "SELECT \"id\", \"key\" FROM surface_types WHERE id IN ({surfaces}) ORDER BY id ASC;\nCOMMIT;\n"
    );
    Ok(script)
}

/// Runs pgbench with `script` at `concurrency` clients (at most 64, under PostgreSQL's default
/// connection limit) for `seconds`; `(clients, tps)`, or `None` when pgbench is missing or fails.
async fn pgbench(
    url: &str,
    script: &std::path::Path,
    concurrency: usize,
    seconds: u64,
) -> Option<(usize, f64)> {
    let clients = concurrency.clamp(1, 64);
    let output = tokio::process::Command::new("pgbench")
        .args([
            "-n",
            "-c",
            &clients.to_string(),
            "-j",
            &clients.min(2).to_string(),
        ])
        .args(["-T", &seconds.max(1).to_string(), "-f"])
        .arg(script)
        .arg(url)
        .output()
        .await
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "pgbench failed: {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        );
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let tps = text
        .lines()
        .find(|l| l.starts_with("tps = "))?
        .trim_start_matches("tps = ")
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((clients, tps))
}
