//! `forklift-bench all`: the three benchmarks in a row, then one summary table with the machine
//! they ran on (the table the README quotes).

use super::{backend_name, fanout, fork_floor, nested_query};
use forklift::config::Config;

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub rows: Vec<usize>,
    pub concurrency: Vec<usize>,
    pub seconds: u64,
    pub subscribers: usize,
    pub fanout_rows: usize,
}

/// Cores and memory of this machine, as `2 cores, 23.5 GiB`.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    format!("{cores} cores, {memory_gib:.1} GiB")
}

/// Runs every benchmark and prints the summary.
pub async fn run(base: &Config, plan: &Plan) -> anyhow::Result<()> {
    let forks = fork_floor::run(base, &plan.rows).await?;
    println!();
    let report = nested_query::run(base, &plan.concurrency, plan.seconds).await?;
    let queries = &report.levels;
    println!();
    let fan = fanout::run(
        base,
        &fanout::FanoutOptions {
            subscribers: plan.subscribers,
            rows: plan.fanout_rows,
            replicas: 1,
            slow_percent: 0,
        },
    )
    .await?;
    println!();
    println!(
        "summary on {} ({}, {} build)",
        backend_name(base),
        machine(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    let row = |what: String, measure: &str, value: String| {
        println!("  {what:<34} {measure:<24} {value}");
    };
    for f in &forks {
        row(
            format!("fork of {} rows", f.rows),
            "fork / floor",
            format!(
                "{:.1} ms / {:.1} ms = {:.2}×",
                f.fork_ms,
                f.floor_ms,
                f.fork_ms / f.floor_ms.max(0.001)
            ),
        );
    }
    for q in queries {
        let database = match q.database {
            Some((clients, tps)) if clients == q.concurrency => {
                format!("; pgbench {tps:.0} tps, ratio {:.3}", q.per_second / tps)
            }
            Some((clients, tps)) => format!("; pgbench {tps:.0} tps at {clients} clients"),
            None => String::new(),
        };
        row(
            format!("nested query, concurrency {}", q.concurrency),
            "req/s, p50, p99",
            format!(
                "{:.0}, {:.1} ms, {:.1} ms ({} errors){database}",
                q.per_second, q.p50_ms, q.p99_ms, q.errors
            ),
        );
    }
    if let Some(share) = report.guard_share() {
        row(
            "guard: JWT, tenant, membership".into(),
            "per request, share",
            share,
        );
    }
    row(
        format!("fork progress to {} subscribers", fan.subscribers),
        "lag p50, p99",
        format!(
            "{:.1} ms, {:.1} ms ({}/{} complete streams)",
            fan.lag_p50_ms, fan.lag_p99_ms, fan.complete, fan.subscribers
        ),
    );
    let query_peak = queries.iter().map(|q| q.server.peak_mb).fold(0.0, f64::max);
    row(
        format!("fork watched by {}", fan.subscribers),
        "first phase to end",
        format!(
            "{:.1} ms watched, {:.1} ms alone ({:+.1}%)",
            fan.watched_ms,
            fan.unwatched_ms,
            (fan.watched_ms / fan.unwatched_ms.max(0.001) - 1.0) * 100.0
        ),
    );
    row(
        "server start".into(),
        "to ready",
        format!("{} ms on an existing database", report.ready_ms),
    );
    row(
        "server memory".into(),
        "idle, peak",
        format!(
            "{:.1} MiB, {:.1} MiB under queries, {:.1} MiB with {} subscribers",
            report.idle.rss_mb, query_peak, fan.server_peak_mb, fan.subscribers
        ),
    );
    Ok(())
}
