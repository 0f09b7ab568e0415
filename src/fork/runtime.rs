//! Where forks run: a tokio runtime and a database pool of their own, so that delivering their
//! progress to any number of subscribers (serialising, writing to sockets, on the server's
//! runtime) cannot delay them, and the fork never waits for a connection behind requests.
//!
//! The runtime is started at the first fork. On PostgreSQL the fork pool is created on that
//! runtime (a pool's connections belong to the runtime whose reactor they were opened on: used
//! from another, every wake-up of theirs goes through that runtime's I/O driver); everything a
//! run does in the database — the fork transaction, the run record, its events, heartbeats —
//! uses it. On SQLite connections run on threads of their own and the fork holds the only
//! writer anyway, so the fork uses the system pool.

use std::sync::OnceLock;

use sea_orm::DatabaseConnection;

use crate::state::AppState;

/// Worker threads of the fork runtime.
pub const FORK_THREADS: usize = 2;

/// The forks' runtime and pool (one per [`AppState`], started on first use).
#[derive(Default)]
pub struct ForkRuntime {
    // The pool goes before the runtime it was created on.
    db: tokio::sync::OnceCell<DatabaseConnection>,
    runtime: OnceLock<Runtime>,
}

/// A runtime that is shut down without blocking when dropped (the state may be dropped inside
/// another runtime, where a blocking shutdown panics).
struct Runtime(Option<tokio::runtime::Runtime>);

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl ForkRuntime {
    /// The handle of the fork runtime, started at the first call.
    pub fn handle(&self) -> anyhow::Result<tokio::runtime::Handle> {
        if let Some(runtime) = self.runtime.get() {
            return Ok(runtime.0.as_ref().expect("live runtime").handle().clone());
        }
        // Wrapped at once: when two first forks race, the loser's runtime is dropped here, inside
        // a request's task, where only a non-blocking shutdown may happen.
        let fresh = Runtime(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(FORK_THREADS)
                .thread_name("forklift-fork")
                .thread_stack_size(crate::cli::WORKER_STACK_BYTES)
                .enable_all()
                .build()?,
        ));
        let runtime = self.runtime.get_or_init(|| fresh);
        Ok(runtime.0.as_ref().expect("live runtime").handle().clone())
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
