//! `forklift bench query`: the nested query of SPEC §8 from a separate load process.

use std::time::{Duration, Instant};

use super::{BenchServer, Memory, Scratch, admin_token, backend_name, percentile};
use crate::{app, bootstrap, config::Config, registry::Registry, synthetic};

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
}

/// The nested query of SPEC §8: applications → actions → placements (→ surface).
const NESTED: &str = "{ applications(first: 50) { nodes { code actions { key actionPlacements { position surfaceType { key } } } } } }";

/// `forklift bench query`: a server process over a scratch database holding 50 applications,
/// 500 actions and 1,000 placements; this process is the load generator. For each concurrency,
/// the nested query runs for `seconds` with a JWT on every request; prints throughput and
/// latency, and counts any non-200 response or `errors` in a body as an error.
pub async fn run(
    base: &Config,
    levels: &[usize],
    seconds: u64,
) -> anyhow::Result<Vec<QueryMeasurement>> {
    let scratch = Scratch::create(base, "query").await?;
    let config = scratch.config();
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
    let token = admin_token(&state, &config)?;
    let _ = state.db.clone().close().await;

    let server = BenchServer::start(&config, &[]).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()?;
    let url = format!("http://{}/graphql", server.addr);

    let backend = backend_name(base);
    println!(
        "nested query (50 applications → 500 actions → 1,000 placements) on {backend}, {seconds} s per level"
    );
    println!(
        "{:>12} {:>10} {:>8} {:>10} {:>10} {:>10} {:>14}",
        "concurrency", "requests", "errors", "req/s", "p50 ms", "p99 ms", "server MiB"
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
            server: server.memory(),
        };
        println!(
            "{:>12} {:>10} {:>8} {:>10.0} {:>10.2} {:>10.2} {:>14.1}",
            m.concurrency, m.requests, m.errors, m.per_second, m.p50_ms, m.p99_ms, m.server.rss_mb
        );
        out.push(m);
    }
    println!(
        "server memory: {:.1} MiB idle, {:.1} MiB peak",
        server.idle.rss_mb,
        server.memory().peak_mb
    );
    server.stop().await;
    scratch.drop_it().await;
    Ok(out)
}
