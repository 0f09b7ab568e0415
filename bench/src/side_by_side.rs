//! `forklift-bench query --against postgraphile`: Forklift and PostGraphile 4 serving the same
//! PostgreSQL database and rows, each as a role that row-level security binds, each verifying
//! the same kind of JWT, driven by the same load generator in interleaved rounds.
//!
//! The scratch database holds the nested query's rows (50 applications → 500 actions → 1,000
//! placements → 7 surface types). PostGraphile is installed from the npm registry into a cache
//! directory on first use and runs with two cluster workers; its `pgSettings` names the token's
//! tenant for row-level security (`forklift.tenant`), as Forklift's transactions do. Per level
//! and server: requests per second, p50/p99, server CPU per request (all its processes), database
//! CPU per request (the server's PostgreSQL backends, read from `/proc`: PostgreSQL must run on
//! this machine for that column) and peak RSS.

use std::{collections::HashMap, path::PathBuf, time::Duration};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

use super::{
    BenchServer, Memory, Scratch,
    load::{Load, Target},
    percentile,
};
use forklift::{app, config::Config, registry::Registry};

/// The PostGraphile release measured against.
const POSTGRAPHILE: &str = "4.14.1";

/// The nested query, as Forklift spells it.
const FORKLIFT_NESTED: &str = "{ applications(first: 50) { nodes { id code name actions { id key label actionPlacements { id position surfaceType { key } } } } } }";
/// The same objects and fields, as PostGraphile spells them (simple collections).
const POSTGRAPHILE_NESTED: &str = "{ allApplications(first: 50, orderBy: ID_ASC) { nodes { id code name actionsByTenantIdAndApplicationIdList(orderBy: ID_ASC) { id key label actionPlacementsByTenantIdAndActionIdList(orderBy: ID_ASC) { id position surfaceTypeBySurfaceTypeId { key } } } } } }";
/// A small query: 50 applications, two fields.
const FORKLIFT_SMALL: &str = "{ applications(first: 50) { nodes { code name } } }";
const POSTGRAPHILE_SMALL: &str =
    "{ allApplications(first: 50, orderBy: ID_ASC) { nodes { code name } } }";

/// The PostGraphile server: library mode behind Node's cluster module; the token's `tenant`
/// claim (a UUID) becomes `forklift.tenant` for row-level security.
const SERVER_JS: &str = r#"
const cluster = require('cluster');
const http = require('http');
const jwt = require('jsonwebtoken');
const { postgraphile } = require('postgraphile');
const workers = Number(process.env.WORKERS || 2);
if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  const secret = process.env.JWT_SECRET;
  const audience = process.env.JWT_AUDIENCE;
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  http.createServer(postgraphile(process.env.DATABASE_URL, 'public', {
    jwtSecret: secret,
    jwtVerifyOptions: { audience },
    simpleCollections: 'both',
    disableQueryLog: true,
    retryOnInitFail: false,
    pgSettings: async (req) => {
      const header = req.headers.authorization || '';
      const token = header.startsWith('Bearer ') ? header.slice(7) : null;
      if (!token) return {};
      const claims = jwt.verify(token, secret, { audience });
      return uuid.test(claims.tenant || '') ? { 'forklift.tenant': claims.tenant } : {};
    },
  })).listen(Number(process.env.PORT), '127.0.0.1');
}
"#;

/// One measured run.
#[derive(Clone, Debug)]
struct Run {
    query: &'static str,
    concurrency: usize,
    server: &'static str,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    server_cpu_ms: f64,
    db_cpu_ms: Option<f64>,
    rss_peak_mb: f64,
}

/// A server under test: where it listens, its processes, its database role.
struct Side {
    name: &'static str,
    url: String,
    token: String,
    headers: Vec<(&'static str, String)>,
    pids: Vec<String>,
    role: String,
    nested: &'static str,
    small: &'static str,
}

/// Runs the side-by-side measurement: `rounds` interleaved rounds of every concurrency level of
/// the nested query (and the small query at the second level), each `seconds` long.
pub async fn run(
    base: &Config,
    levels: &[usize],
    seconds: u64,
    rounds: usize,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !base.is_sqlite(),
        "--against postgraphile needs PostgreSQL: set DATABASE_URL to a superuser's postgres:// URL"
    );
    let package = install_postgraphile().await?;
    let scratch = Scratch::create(base, "side").await?;
    let mut config = scratch.config();
    config.jwt_issuer = Some("forklift-bench".into());
    config.jwt_audience = Some("forklift-bench".into());
    let state = app::build_state(config.clone(), Registry::default()).await?;
    let tenant = forklift::synthetic::nested_query_tenant(&state).await?;
    let password = forklift::domains::new_token();
    let admin = Database::connect(&scratch.url).await?;
    let urls = roles(&admin, &scratch.url, &password).await?;

    let forklift = BenchServer::start(
        &config,
        &[
            ("DATABASE_URL", urls.app.as_str()),
            ("FORKLIFT_SYSTEM_DATABASE_URL", urls.system.as_str()),
            // Migrations (already applied) check in as the database's owner.
            ("FORKLIFT_MIGRATION_DATABASE_URL", scratch.url.as_str()),
            ("FORKLIFT_ENV", "production"),
            ("FORKLIFT_JWT_ISSUER", "forklift-bench"),
            ("FORKLIFT_JWT_AUDIENCE", "forklift-bench"),
        ],
    )
    .await?;
    let secret = config
        .jwt_secret
        .as_ref()
        .map(|s| s.expose().to_string())
        .unwrap_or_default();
    let pg_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut postgraphile = tokio::process::Command::new("node")
        .arg(package.join("server.js"))
        .current_dir(&package)
        .env("DATABASE_URL", &urls.postgraphile)
        .env("PORT", pg_port.to_string())
        .env("JWT_SECRET", &secret)
        .env("JWT_AUDIENCE", "forklift-bench")
        .env("WORKERS", "2")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let pg_pid = postgraphile
        .id()
        .ok_or_else(|| anyhow::anyhow!("PostGraphile exited at once"))?
        .to_string();

    let forklift_token = super::admin_token(&state, &config)?;
    let pgl_token = state.verifier.mint(
        &forklift::auth::TokenRequest {
            sub: "bench@postgraphile.local".into(),
            tenant: Some(tenant.to_string()),
            ttl_secs: 3600,
            ..Default::default()
        }
        .claims(&config),
    )?;
    let mut sides = [
        Side {
            name: "forklift",
            url: format!("http://{}/graphql", forklift.addr),
            token: forklift_token,
            headers: vec![("X-Tenant", "bench".to_string())],
            pids: vec![forklift_pid(&forklift)],
            role: "forklift_bench_app".into(),
            nested: FORKLIFT_NESTED,
            small: FORKLIFT_SMALL,
        },
        Side {
            name: "postgraphile",
            url: format!("http://127.0.0.1:{pg_port}/graphql"),
            token: pgl_token,
            headers: Vec::new(),
            pids: Vec::new(),
            role: "forklift_bench_pgl".into(),
            nested: POSTGRAPHILE_NESTED,
            small: POSTGRAPHILE_SMALL,
        },
    ];
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()?;
    wait_ready(&client, &sides[1]).await?;
    sides[1].pids = process_tree(&pg_pid);
    check_same_objects(&client, &sides).await?;

    println!(
        "nested query (50 applications → 500 actions → 1,000 placements → surface type), Forklift \
         vs PostGraphile {POSTGRAPHILE} on the same PostgreSQL database, both under row-level \
         security; {rounds} interleaved rounds, {seconds} s per run after a warm-up"
    );
    let mut plan: Vec<(&'static str, usize)> = levels.iter().map(|&c| ("nested", c)).collect();
    plan.push(("small", levels.get(1).copied().unwrap_or(32)));
    let mut runs = Vec::new();
    for round in 1..=rounds {
        for &(query, concurrency) in &plan {
            for side in &sides {
                let run = measure(&client, &admin, side, query, concurrency, seconds).await?;
                println!(
                    "round {round} {:<7} c={:<4} {:<13} {:>8.1} req/s  p50 {:>8.1} ms  p99 {:>8.1} ms  server CPU {:>6.2} ms/req  db CPU {:>6} ms/req  RSS peak {:>6.1} MiB  errors {}",
                    run.query,
                    run.concurrency,
                    run.server,
                    run.per_second,
                    run.p50_ms,
                    run.p99_ms,
                    run.server_cpu_ms,
                    run.db_cpu_ms.map_or("—".into(), |v| format!("{v:.2}")),
                    run.rss_peak_mb,
                    run.errors
                );
                runs.push(run);
            }
        }
    }
    summarize(&runs, &plan);
    forklift.stop().await;
    let _ = postgraphile.kill().await;
    let _ = admin.close().await;
    drop(state);
    scratch.drop_it().await;
    Ok(())
}

fn forklift_pid(server: &BenchServer) -> String {
    server.pid.clone()
}

/// The connection URLs of the three roles.
struct RoleUrls {
    app: String,
    system: String,
    postgraphile: String,
}

/// Creates (or re-keys) the benchmark's roles and grants them the scratch database: Forklift's
/// request role and PostGraphile's role are bound by row-level security, Forklift's system role
/// bypasses it (as `deploy/postgres-init.sql` sets up production).
async fn roles(admin: &DatabaseConnection, url: &str, password: &str) -> anyhow::Result<RoleUrls> {
    for (role, bypass) in [
        ("forklift_bench_app", "NOBYPASSRLS"),
        ("forklift_bench_system", "BYPASSRLS"),
        ("forklift_bench_pgl", "NOBYPASSRLS"),
    ] {
        admin
            .execute_unprepared(&format!(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN \
                 CREATE ROLE {role} LOGIN NOSUPERUSER {bypass}; END IF; END $$; \
                 ALTER ROLE {role} LOGIN NOSUPERUSER {bypass} PASSWORD '{password}'"
            ))
            .await?;
    }
    admin
        .execute_unprepared(
            "GRANT USAGE ON SCHEMA public TO forklift_bench_app, forklift_bench_system, forklift_bench_pgl; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO forklift_bench_app, forklift_bench_system; \
             GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO forklift_bench_app, forklift_bench_system; \
             GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO forklift_bench_app, forklift_bench_system, forklift_bench_pgl; \
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO forklift_bench_pgl",
        )
        .await?;
    let with_user = |user: &str| -> anyhow::Result<String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| anyhow::anyhow!("DATABASE_URL: expected postgres://"))?;
        let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        Ok(format!("{scheme}://{user}:{password}@{host}"))
    };
    Ok(RoleUrls {
        app: with_user("forklift_bench_app")?,
        system: with_user("forklift_bench_system")?,
        postgraphile: with_user("forklift_bench_pgl")?,
    })
}

/// Installs PostGraphile (and the script that serves it) into a cache directory, once.
async fn install_postgraphile() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("forklift-bench-postgraphile-{POSTGRAPHILE}"));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("server.js"), SERVER_JS)?;
    if !dir.join("node_modules/postgraphile").exists() {
        std::fs::write(
            dir.join("package.json"),
            format!(
                r#"{{"private": true, "dependencies": {{"postgraphile": "{POSTGRAPHILE}", "jsonwebtoken": "^9"}}}}"#
            ),
        )?;
        println!(
            "installing PostGraphile {POSTGRAPHILE} from the npm registry into {}",
            dir.display()
        );
        let status = tokio::process::Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .await
            .map_err(|e| anyhow::anyhow!("npm is needed to install PostGraphile: {e}"))?;
        anyhow::ensure!(status.success(), "npm install postgraphile failed");
    }
    Ok(dir)
}

async fn wait_ready(client: &reqwest::Client, side: &Side) -> anyhow::Result<()> {
    for _ in 0..300 {
        let answer = post(client, side, "{ __typename }").await;
        if answer.is_ok_and(|body| body.get("data").is_some()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{} did not become ready within 30 s", side.name)
}

async fn post(
    client: &reqwest::Client,
    side: &Side,
    query: &str,
) -> anyhow::Result<serde_json::Value> {
    let mut request = client
        .post(&side.url)
        .bearer_auth(&side.token)
        .json(&serde_json::json!({ "query": query }));
    for (name, value) in &side.headers {
        request = request.header(*name, value);
    }
    Ok(request.send().await?.json().await?)
}

/// Both servers return the same objects for the nested query: the same numbers of applications,
/// actions and placements, in the same order of application ids.
async fn check_same_objects(client: &reqwest::Client, sides: &[Side]) -> anyhow::Result<()> {
    let mut shapes = Vec::new();
    for side in sides {
        let body = post(client, side, side.nested).await?;
        anyhow::ensure!(
            body.get("errors").is_none(),
            "{} answered the nested query with errors: {body}",
            side.name
        );
        let text = body.to_string();
        let count = |needle: &str| text.matches(needle).count();
        shapes.push((count("\"code\""), count("\"label\""), count("\"position\"")));
    }
    anyhow::ensure!(
        shapes.windows(2).all(|w| w[0] == w[1]) && shapes[0] == (50, 500, 1000),
        "the servers disagree on the nested query's objects: {shapes:?}"
    );
    Ok(())
}

/// The processes of a server: `pid` and its children (PostGraphile's cluster workers).
fn process_tree(pid: &str) -> Vec<String> {
    let mut out = vec![pid.to_string()];
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let stat = std::fs::read_to_string(format!("/proc/{name}/stat")).unwrap_or_default();
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .unwrap_or_default();
            if parent == pid {
                out.push(name);
            }
        }
    }
    out
}

fn cpu_seconds(pids: &[String]) -> f64 {
    pids.iter().map(|p| super::cpu_seconds_of(p)).sum()
}

/// The PostgreSQL backends of `role` (their pids), from `pg_stat_activity`.
async fn backends(admin: &DatabaseConnection, role: &str) -> Vec<String> {
    let rows = admin
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!("SELECT pid FROM pg_stat_activity WHERE usename = '{role}'"),
        ))
        .await
        .unwrap_or_default();
    rows.iter()
        .filter_map(|r| r.try_get_by_index::<i32>(0).ok())
        .map(|p| p.to_string())
        .collect()
}

async fn db_cpu(admin: &DatabaseConnection, role: &str) -> HashMap<String, f64> {
    backends(admin, role)
        .await
        .into_iter()
        .map(|p| {
            let cpu = super::cpu_seconds_of(&p);
            (p, cpu)
        })
        .collect()
}

async fn measure(
    client: &reqwest::Client,
    admin: &DatabaseConnection,
    side: &Side,
    query: &'static str,
    concurrency: usize,
    seconds: u64,
) -> anyhow::Result<Run> {
    let body = if query == "nested" {
        side.nested
    } else {
        side.small
    };
    let target = Target {
        url: side.url.clone(),
        token: side.token.clone(),
        headers: side.headers.clone(),
        body: serde_json::json!({ "query": body }),
    };
    let load = Load::start(client.clone(), target, concurrency, seconds);
    load.window_started().await;
    let cpu_before = cpu_seconds(&side.pids);
    let db_before = db_cpu(admin, &side.role).await;
    load.window_ended().await;
    let cpu_after = cpu_seconds(&side.pids);
    let db_after = db_cpu(admin, &side.role).await;
    let (mut latencies, errors) = load.finish().await?;
    latencies.sort_by(|a, b| a.total_cmp(b));
    let n = latencies.len().max(1) as f64;
    let db_ticks: f64 = db_after
        .iter()
        .map(|(pid, after)| after - db_before.get(pid).copied().unwrap_or(0.0))
        .sum();
    let readable = !db_after.is_empty() && db_after.values().any(|v| *v > 0.0);
    let rss_peak_mb = side.pids.iter().map(|p| Memory::of(p).peak_mb).sum::<f64>();
    Ok(Run {
        query,
        concurrency,
        server: side.name,
        per_second: latencies.len() as f64 / seconds.max(1) as f64,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        errors,
        server_cpu_ms: (cpu_after - cpu_before) * 1000.0 / n,
        db_cpu_ms: readable.then(|| db_ticks * 1000.0 / n),
        rss_peak_mb,
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    percentile(&values, 0.5)
}

/// Medians over the rounds, per level and server, and Forklift ÷ PostGraphile.
fn summarize(runs: &[Run], plan: &[(&'static str, usize)]) {
    println!();
    println!(
        "{:<7} {:>5} {:<13} {:>9} {:>9} {:>9} {:>12} {:>12} {:>10}   medians over rounds",
        "query", "c", "server", "req/s", "p50 ms", "p99 ms", "srv CPU/req", "db CPU/req", "RSS MiB"
    );
    for &(query, concurrency) in plan {
        let mut rates = HashMap::new();
        for server in ["forklift", "postgraphile"] {
            let these: Vec<&Run> = runs
                .iter()
                .filter(|r| r.query == query && r.concurrency == concurrency && r.server == server)
                .collect();
            let m = |f: &dyn Fn(&Run) -> f64| median(these.iter().map(|r| f(r)).collect());
            let rate = m(&|r| r.per_second);
            rates.insert(server, rate);
            let db = these.iter().filter_map(|r| r.db_cpu_ms).collect::<Vec<_>>();
            println!(
                "{:<7} {:>5} {:<13} {:>9.1} {:>9.1} {:>9.1} {:>12.2} {:>12} {:>10.1}",
                query,
                concurrency,
                server,
                rate,
                m(&|r| r.p50_ms),
                m(&|r| r.p99_ms),
                m(&|r| r.server_cpu_ms),
                if db.is_empty() {
                    "—".to_string()
                } else {
                    format!("{:.2}", median(db))
                },
                m(&|r| r.rss_peak_mb),
            );
        }
        let ratio = rates["forklift"] / rates["postgraphile"].max(0.001);
        println!(
            "{:<7} {:>5} Forklift ÷ PostGraphile: {ratio:.2}× req/s",
            query, concurrency
        );
    }
}
