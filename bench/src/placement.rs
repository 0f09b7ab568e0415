//! `forklift-bench placement`: many named tenant databases behind one server (issue #19). A
//! tenant placed in each of `databases` named databases, the nested query on all of them at once
//! for `seconds`, and PostgreSQL's own count of the connections open to the named databases,
//! sampled every 20 ms: its maximum must stay within `FORKLIFT_TENANT_DATABASES_MAX_CONNECTIONS`
//! however many databases there are.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

use super::{
    BenchServer, Scratch, admin_token,
    load::{Load, Target},
    nested_query::{NESTED, placed_tenant},
    percentile,
};
use forklift::{app, config::Config, registry::Registry, synthetic};

/// What `bench placement` measures with.
#[derive(Clone, Debug)]
pub struct PlacementOptions {
    /// Named databases, one placed tenant in each.
    pub databases: usize,
    /// `FORKLIFT_TENANT_DATABASES_MAX_CONNECTIONS` for the server.
    pub bound: usize,
    /// Concurrent clients, spread over the tenants.
    pub concurrency: usize,
    pub seconds: u64,
}

/// Runs the benchmark (PostgreSQL only: the connections are counted in `pg_stat_activity`).
pub async fn run(base: &Config, options: &PlacementOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        !base.is_sqlite(),
        "`bench placement` counts connections in PostgreSQL: give a PostgreSQL DATABASE_URL"
    );
    let scratch = Scratch::create(base, "placement").await?;
    let config = scratch.config();
    let state = app::build_state(config.clone(), Registry::default()).await?;
    let (_, vocabulary) = synthetic::nested_query_tenant_and_vocabulary(&state).await?;
    let mut named = Vec::with_capacity(options.databases);
    for i in 0..options.databases {
        let database = Scratch::create(base, &format!("placement_db{i}")).await?;
        placed_tenant(
            &state,
            &format!("db{i}"),
            &format!("tenant-{i}"),
            &database.url,
            &vocabulary,
        )
        .await?;
        named.push(database);
    }
    let list = named
        .iter()
        .enumerate()
        .map(|(i, d)| format!("db{i}={}", d.url))
        .collect::<Vec<_>>()
        .join(",");
    let bound = options.bound.to_string();
    let server = BenchServer::start(
        &config,
        &[
            ("FORKLIFT_TENANT_DATABASES", &list),
            ("FORKLIFT_TENANT_DATABASES_MAX_CONNECTIONS", &bound),
        ],
    )
    .await?;
    let token = admin_token(&state, &config)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()?;
    let url = format!("http://{}/graphql", server.addr);

    // PostgreSQL's count of the connections to the named databases, sampled until stopped.
    let admin = Database::connect(&base.database_url).await?;
    let names: Vec<String> = named.iter().map(|d| d.name.clone()).collect();
    let peak = Arc::new(AtomicI64::new(0));
    let sampler = {
        let (peak, names) = (peak.clone(), names.clone());
        tokio::spawn(async move {
            loop {
                let row = admin
                    .query_one_raw(Statement::from_sql_and_values(
                        DbBackend::Postgres,
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = ANY($1)",
                        [names.clone().into()],
                    ))
                    .await;
                if let Ok(Some(row)) = row
                    && let Ok(n) = row.try_get_by_index::<i64>(0)
                {
                    peak.fetch_max(n, Ordering::Relaxed);
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
    };

    let per_tenant = (options.concurrency / options.databases.max(1)).max(1);
    let loads: Vec<Load> = (0..options.databases)
        .map(|i| {
            let target = Target {
                url: url.clone(),
                token: token.clone(),
                headers: vec![("X-Tenant", format!("tenant-{i}"))],
                body: serde_json::json!({ "query": NESTED }),
            };
            Load::start(client.clone(), target, per_tenant, options.seconds)
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for load in loads {
        let (mut l, e) = load.finish().await?;
        latencies.append(&mut l);
        errors += e;
    }
    sampler.abort();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let peak = peak.load(Ordering::Relaxed);
    println!(
        "{} named databases, one tenant in each; the nested query on all of them, {} clients ({} per tenant), {} s",
        options.databases,
        per_tenant * options.databases,
        per_tenant,
        options.seconds
    );
    println!(
        "{:>10} {:>8} {:>10} {:>10} {:>10} {:>22} {:>8}",
        "requests", "errors", "req/s", "p50 ms", "p99 ms", "peak named connections", "bound"
    );
    println!(
        "{:>10} {:>8} {:>10.0} {:>10.2} {:>10.2} {:>22} {:>8}",
        latencies.len(),
        errors,
        latencies.len() as f64 / options.seconds.max(1) as f64,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        peak,
        options.bound
    );
    println!(
        "connections to the named databases {} the bound",
        if peak <= options.bound as i64 {
            "stayed within"
        } else {
            "EXCEEDED"
        }
    );
    server.stop().await;
    let _ = state.db.clone().close().await;
    scratch.drop_it().await;
    for database in named {
        database.drop_it().await;
    }
    anyhow::ensure!(
        peak <= options.bound as i64,
        "{peak} connections to the named databases, over the bound of {}",
        options.bound
    );
    Ok(())
}
