//! Prometheus metrics, kept in memory and rendered as text at `/metrics`: GraphQL requests by
//! operation (the root field) and outcome with latency histograms, fork runs by outcome, fork
//! phase durations, rows copied, open WebSockets and subscriptions, SQL statements and the
//! database pool.
//!
//! Labels are bounded: operations are schema field names, never client-chosen text.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{
        Mutex,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

/// Bucket bounds in seconds, shared by every histogram.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A latency histogram.
#[derive(Clone, Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    total: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.sum += seconds;
        self.total += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.total
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.total);
    }
}

/// Every metric of one process.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, &'static str), Histogram>>,
    fork_runs: Mutex<BTreeMap<String, u64>>,
    phases: Mutex<BTreeMap<String, Histogram>>,
    rows_copied: AtomicU64,
    /// Open WebSocket connections.
    pub websockets: AtomicI64,
    /// Active subscriptions.
    pub subscriptions: AtomicI64,
    statements: AtomicU64,
    failed_statements: AtomicU64,
    statement_seconds: Mutex<Histogram>,
}

impl Metrics {
    /// Records one GraphQL request.
    pub fn request(&self, operation: &str, ok: bool, elapsed: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        if let Ok(mut map) = self.requests.lock() {
            map.entry((operation.to_string(), outcome))
                .or_default()
                .observe(elapsed.as_secs_f64());
        }
    }

    /// Records the end of a fork run with its status.
    pub fn fork_run(&self, status: &str, rows_copied: u64) {
        if let Ok(mut map) = self.fork_runs.lock() {
            *map.entry(status.to_string()).or_default() += 1;
        }
        self.rows_copied.fetch_add(rows_copied, Ordering::Relaxed);
    }

    /// Records how long a fork phase took.
    pub fn fork_phase(&self, phase: &str, elapsed: Duration) {
        if let Ok(mut map) = self.phases.lock() {
            map.entry(phase.to_string())
                .or_default()
                .observe(elapsed.as_secs_f64());
        }
    }

    /// Records one SQL statement (called by the database driver for every statement).
    pub fn statement(&self, elapsed: Duration, failed: bool) {
        self.statements.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failed_statements.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut h) = self.statement_seconds.lock() {
            h.observe(elapsed.as_secs_f64());
        }
    }

    /// SQL statements run so far.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition; `pool` is `(size, idle)` when known.
    pub fn render(&self, pool: Option<(u32, usize)>) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP forklift_graphql_request_duration_seconds GraphQL requests by root field and outcome.\n");
        out.push_str("# TYPE forklift_graphql_request_duration_seconds histogram\n");
        if let Ok(map) = self.requests.lock() {
            for ((operation, outcome), h) in map.iter() {
                let labels = format!("operation=\"{}\",outcome=\"{outcome}\"", escape(operation));
                h.render(
                    &mut out,
                    "forklift_graphql_request_duration_seconds",
                    &labels,
                );
            }
        }
        out.push_str("# HELP forklift_fork_runs_total Fork runs by final status.\n");
        out.push_str("# TYPE forklift_fork_runs_total counter\n");
        if let Ok(map) = self.fork_runs.lock() {
            for (status, n) in map.iter() {
                let _ = writeln!(
                    out,
                    "forklift_fork_runs_total{{status=\"{}\"}} {n}",
                    escape(status)
                );
            }
        }
        out.push_str("# HELP forklift_fork_phase_duration_seconds Fork phase durations.\n");
        out.push_str("# TYPE forklift_fork_phase_duration_seconds histogram\n");
        if let Ok(map) = self.phases.lock() {
            for (phase, h) in map.iter() {
                h.render(
                    &mut out,
                    "forklift_fork_phase_duration_seconds",
                    &format!("phase=\"{}\"", escape(phase)),
                );
            }
        }
        let gauges = [
            (
                "forklift_fork_rows_copied_total",
                "counter",
                "Rows created by forks.",
                self.rows_copied.load(Ordering::Relaxed) as i64,
            ),
            (
                "forklift_websockets_open",
                "gauge",
                "Open WebSocket connections.",
                self.websockets.load(Ordering::Relaxed),
            ),
            (
                "forklift_subscriptions_active",
                "gauge",
                "Active GraphQL subscriptions.",
                self.subscriptions.load(Ordering::Relaxed),
            ),
            (
                "forklift_db_statements_total",
                "counter",
                "SQL statements run.",
                self.statements() as i64,
            ),
            (
                "forklift_db_statement_errors_total",
                "counter",
                "SQL statements that failed.",
                self.failed_statements.load(Ordering::Relaxed) as i64,
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out.push_str("# HELP forklift_db_statement_duration_seconds SQL statement durations.\n");
        out.push_str("# TYPE forklift_db_statement_duration_seconds histogram\n");
        if let Ok(h) = self.statement_seconds.lock() {
            h.render(&mut out, "forklift_db_statement_duration_seconds", "");
        }
        if let Some((size, idle)) = pool {
            let _ = writeln!(
                out,
                "# HELP forklift_db_pool_connections Database pool connections by state.\n\
                 # TYPE forklift_db_pool_connections gauge\n\
                 forklift_db_pool_connections{{state=\"idle\"}} {idle}\n\
                 forklift_db_pool_connections{{state=\"in_use\"}} {}",
                (size as usize).saturating_sub(idle)
            );
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.request("applications", true, Duration::from_millis(3));
        m.request("applications", false, Duration::from_millis(30));
        m.fork_run("FINISHED", 120);
        m.fork_phase("APPLICATION_SPINE", Duration::from_millis(40));
        m.statement(Duration::from_micros(200), false);
        let text = m.render(Some((5, 3)));
        assert!(text.contains(
            "forklift_graphql_request_duration_seconds_bucket{operation=\"applications\",outcome=\"ok\",le=\"0.005\"} 1"
        ));
        assert!(text.contains("forklift_graphql_request_duration_seconds_count{operation=\"applications\",outcome=\"error\"} 1"));
        assert!(text.contains("forklift_fork_runs_total{status=\"FINISHED\"} 1"));
        assert!(text.contains("forklift_fork_rows_copied_total 120"));
        assert!(text.contains("forklift_db_pool_connections{state=\"in_use\"} 2"));
        assert!(text.contains("forklift_db_statements_total 1"));
    }
}
