//! Where forks run: a tokio runtime and a database pool of their own, so that delivering their
//! progress to any number of subscribers (serialising on the server's runtime, writing to
//! sockets on the lower-priority delivery runtime, [`crate::http::ws::delivery`]) cannot delay
//! them, and the fork never waits for a connection behind requests.
//!
//! The runtime is started at the first fork. On PostgreSQL the fork pool is created on that
//! runtime (a pool's connections belong to the runtime whose reactor they were opened on: used
//! from another, every wake-up of theirs goes through that runtime's I/O driver); everything a
//! run does in the database — the fork transaction, the run record, its events, heartbeats —
//! uses it. On SQLite connections run on threads of their own and the fork holds the only
//! writer anyway, so the fork uses the system pool.

use sea_orm::DatabaseConnection;

use crate::{runtimes::LazyRuntime, state::AppState};

/// The name of the fork runtime's threads (as `top -H` and `/proc/<pid>/task/*/comm` show it).
pub const THREAD_NAME: &str = "forklift-fork";

/// Worker threads of the fork runtime.
pub const FORK_THREADS: usize = 2;

/// The forks' runtime and pool (one per [`AppState`], started on first use). Its threads keep
/// the server's priority; delivery to subscribers runs below it ([`crate::http::ws::delivery`]).
pub struct ForkRuntime {
    // The pool goes before the runtime it was created on.
    db: tokio::sync::OnceCell<DatabaseConnection>,
    runtime: LazyRuntime,
}

impl Default for ForkRuntime {
    fn default() -> Self {
        Self {
            db: tokio::sync::OnceCell::new(),
            runtime: LazyRuntime::new(THREAD_NAME, FORK_THREADS, 0),
        }
    }
}

impl ForkRuntime {
    /// The handle of the fork runtime, started at the first call.
    pub fn handle(&self) -> anyhow::Result<tokio::runtime::Handle> {
        self.runtime.handle()
    }

    /// The pool the forks use: on PostgreSQL a pool of the system role created on the fork
    /// runtime (call this from a task of that runtime); on SQLite the system pool.
    pub async fn db(&self, state: &AppState) -> anyhow::Result<DatabaseConnection> {
        if crate::db::is_postgres(&state.db) {
            let db = self
                .db
                .get_or_try_init(|| async {
                    let mut db = crate::db::connect(&state.config).await?;
                    let observer = state.metrics.clone();
                    db.set_metric_callback(move |info| {
                        observer.statement(info.elapsed, info.failed)
                    });
                    anyhow::Ok(db)
                })
                .await?;
            Ok(db.clone())
        } else {
            Ok(state.db.clone())
        }
    }
}
