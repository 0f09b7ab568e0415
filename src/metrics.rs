//! Prometheus metrics through the `prometheus` crate, rendered as text at `/metrics`: GraphQL
//! requests by operation (the root field) and outcome with latency histograms, fork runs by
//! outcome, fork phase durations, rows copied, open WebSockets and subscriptions, how long shared
//! subscription events take to reach sockets, SQL statements and the database pool.
//!
//! Labels are bounded: an operation label is a root field the schema has, or `unknown`
//! ([`Metrics::request`] is given the schema's root fields); fork phases and statuses are the
//! engine's own names. Observations are lock-free atomics, so the statement hook the driver
//! calls for every SQL statement takes no lock.

use std::{
    collections::HashSet,
    sync::{Arc, OnceLock},
    time::Duration,
};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Bucket bounds in seconds, shared by every histogram.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The label of an operation that names no root field of the schema.
pub const UNKNOWN_OPERATION: &str = "unknown";

/// Every metric of one process.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    requests: HistogramVec,
    fork_runs: IntCounterVec,
    phases: HistogramVec,
    rows_copied: IntCounter,
    /// Open WebSocket connections.
    pub websockets: IntGauge,
    /// Active subscriptions.
    pub subscriptions: IntGauge,
    statements: IntCounter,
    failed_statements: IntCounter,
    statement_seconds: Histogram,
    pool: IntGaugeVec,
    read_paths: IntCounterVec,
    delivery_seconds: Histogram,
    /// The root fields of the schema: the only operation labels there are (set once the
    /// schema is built; until then every operation is `unknown`).
    root_fields: Arc<OnceLock<HashSet<String>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn histogram_opts(name: &str, help: &str) -> HistogramOpts {
    HistogramOpts::new(name, help).buckets(BUCKETS.to_vec())
}

impl Metrics {
    /// Fresh metrics, registered in a registry of their own.
    pub fn new() -> Self {
        let registry = Registry::new();
        // The metric definitions are constants: they cannot fail to build or register.
        #[allow(clippy::expect_used)]
        let built = (|| -> prometheus::Result<Metrics> {
            let requests = HistogramVec::new(
                histogram_opts(
                    "forklift_graphql_request_duration_seconds",
                    "GraphQL requests by root field and outcome.",
                ),
                &["operation", "outcome"],
            )?;
            let fork_runs = IntCounterVec::new(
                Opts::new("forklift_fork_runs_total", "Fork runs by final status."),
                &["status"],
            )?;
            let phases = HistogramVec::new(
                histogram_opts(
                    "forklift_fork_phase_duration_seconds",
                    "Fork phase durations.",
                ),
                &["phase"],
            )?;
            let rows_copied =
                IntCounter::new("forklift_fork_rows_copied_total", "Rows created by forks.")?;
            let websockets =
                IntGauge::new("forklift_websockets_open", "Open WebSocket connections.")?;
            let subscriptions = IntGauge::new(
                "forklift_subscriptions_active",
                "Active GraphQL subscriptions.",
            )?;
            let statements =
                IntCounter::new("forklift_db_statements_total", "SQL statements run.")?;
            let failed_statements = IntCounter::new(
                "forklift_db_statement_errors_total",
                "SQL statements that failed.",
            )?;
            let statement_seconds = Histogram::with_opts(histogram_opts(
                "forklift_db_statement_duration_seconds",
                "SQL statement durations.",
            ))?;
            let pool = IntGaugeVec::new(
                Opts::new(
                    "forklift_db_pool_connections",
                    "Database pool connections by state.",
                ),
                &["state"],
            )?;
            let read_paths = IntCounterVec::new(
                Opts::new(
                    "forklift_read_path_total",
                    "Read queries over HTTP by the path that answered them: planned, or executor \
                     (not covered by the planner, or an answer with errors).",
                ),
                &["path"],
            )?;
            let delivery_seconds = Histogram::with_opts(histogram_opts(
                "forklift_subscription_delivery_seconds",
                "Shared subscription events (forkProgress), one per event and subscriber: from the \
                 event's serialisation to the flush of the socket write that carried it.",
            ))?;
            registry.register(Box::new(delivery_seconds.clone()))?;
            registry.register(Box::new(read_paths.clone()))?;
            registry.register(Box::new(requests.clone()))?;
            registry.register(Box::new(fork_runs.clone()))?;
            registry.register(Box::new(phases.clone()))?;
            registry.register(Box::new(rows_copied.clone()))?;
            registry.register(Box::new(websockets.clone()))?;
            registry.register(Box::new(subscriptions.clone()))?;
            registry.register(Box::new(statements.clone()))?;
            registry.register(Box::new(failed_statements.clone()))?;
            registry.register(Box::new(statement_seconds.clone()))?;
            registry.register(Box::new(pool.clone()))?;
            Ok(Metrics {
                registry: registry.clone(),
                requests,
                fork_runs,
                phases,
                rows_copied,
                websockets,
                subscriptions,
                statements,
                failed_statements,
                statement_seconds,
                pool,
                read_paths,
                delivery_seconds,
                root_fields: Arc::default(),
            })
        })();
        built.expect("metric definitions are valid")
    }

    /// Declares the schema's root fields (Query, Mutation and Subscription); any other
    /// operation is counted as [`UNKNOWN_OPERATION`]. Only the first call counts.
    pub fn set_root_fields(&self, fields: HashSet<String>) {
        let _ = self.root_fields.set(fields);
    }

    /// Records one GraphQL request. `operation` is the first root field the client named; it
    /// becomes a label only when the schema has that field.
    pub fn request(&self, operation: &str, ok: bool, elapsed: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        let known = self
            .root_fields
            .get()
            .is_some_and(|fields| fields.contains(operation));
        let operation = if known { operation } else { UNKNOWN_OPERATION };
        self.requests
            .with_label_values(&[operation, outcome])
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a read query answered by `path` (`planned` or `executor`).
    pub fn read_path(&self, path: &'static str) {
        self.read_paths.with_label_values(&[path]).inc();
    }

    /// Records the end of a fork run with its status.
    pub fn fork_run(&self, status: &str, rows_copied: u64) {
        self.fork_runs.with_label_values(&[status]).inc();
        self.rows_copied.inc_by(rows_copied);
    }

    /// Records how long a fork phase took.
    pub fn fork_phase(&self, phase: &str, elapsed: Duration) {
        self.phases
            .with_label_values(&[phase])
            .observe(elapsed.as_secs_f64());
    }

    /// Records one SQL statement (called by the database driver for every statement).
    pub fn statement(&self, elapsed: Duration, failed: bool) {
        self.statements.inc();
        if failed {
            self.failed_statements.inc();
        }
        self.statement_seconds.observe(elapsed.as_secs_f64());
    }

    /// SQL statements run so far.
    pub fn statements(&self) -> u64 {
        self.statements.get()
    }

    /// A live subscription event reached a subscriber's socket `elapsed` after it was
    /// serialised.
    pub fn delivered(&self, elapsed: Duration) {
        self.delivery_seconds.observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition; `pool` is `(size, idle)` when known.
    pub fn render(&self, pool: Option<(u32, usize)>) -> String {
        if let Some((size, idle)) = pool {
            self.pool.with_label_values(&["idle"]).set(idle as i64);
            self.pool
                .with_label_values(&["in_use"])
                .set((size as usize).saturating_sub(idle) as i64);
        }
        let mut out = Vec::with_capacity(8192);
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %err, "could not render the metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.set_root_fields(["applications".to_string()].into_iter().collect());
        m.request("applications", true, Duration::from_millis(3));
        m.request("applications", false, Duration::from_millis(30));
        m.fork_run("FINISHED", 120);
        m.fork_phase("APPLICATION_SPINE", Duration::from_millis(40));
        m.statement(Duration::from_micros(200), false);
        for _ in 0..3 {
            m.delivered(Duration::from_millis(4));
        }
        let text = m.render(Some((5, 3)));
        assert!(text.contains(
            "forklift_graphql_request_duration_seconds_bucket{operation=\"applications\",outcome=\"ok\",le=\"0.005\"} 1"
        ), "{text}");
        assert!(text.contains("forklift_graphql_request_duration_seconds_count{operation=\"applications\",outcome=\"error\"} 1"));
        assert!(text.contains("forklift_fork_runs_total{status=\"FINISHED\"} 1"));
        assert!(text.contains("forklift_fork_rows_copied_total 120"));
        assert!(text.contains("forklift_db_pool_connections{state=\"in_use\"} 2"));
        assert!(text.contains("forklift_db_statements_total 1"));
        assert!(text.contains("forklift_subscription_delivery_seconds_bucket{le=\"0.005\"} 3"));
        assert!(text.contains("forklift_subscription_delivery_seconds_bucket{le=\"0.0025\"} 0"));
    }

    #[test]
    fn operations_the_schema_does_not_have_share_one_label() {
        let m = Metrics::new();
        m.set_root_fields(["applications".to_string()].into_iter().collect());
        for i in 0..1_000 {
            m.request(&format!("made_up_{i}"), false, Duration::from_millis(1));
        }
        let text = m.render(None);
        assert!(
            !text.contains("made_up"),
            "client text never becomes a label"
        );
        assert!(text.contains(
            "forklift_graphql_request_duration_seconds_count{operation=\"unknown\",outcome=\"error\"} 1000"
        ));
    }
}
