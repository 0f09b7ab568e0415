//! The state shared by every request: database pool, configuration, registry, token verifier,
//! the fork progress hub and the shutdown signal.

use std::sync::atomic::{AtomicI64, Ordering};

use sea_orm::DatabaseConnection;
use tokio::sync::watch;

use crate::{auth::Verifier, config::Config, fork::hub::ProgressHub, registry::Registry};

/// Shared, immutable application state (held in an `Arc`).
pub struct AppState {
    pub db: DatabaseConnection,
    pub config: Config,
    pub registry: Registry,
    pub verifier: Verifier,
    pub hub: ProgressHub,
    /// This process's name in fork run records (`owner`), for leases across replicas.
    pub replica_id: String,
    /// Flips to `true` when the server begins shutting down.
    pub shutdown: watch::Sender<bool>,
    /// Open WebSocket connections.
    pub open_websockets: AtomicI64,
}

impl AppState {
    /// Counts a WebSocket opening (`+1`) or closing (`-1`).
    pub fn metrics_ws(&self, delta: i64) {
        self.open_websockets.fetch_add(delta, Ordering::Relaxed);
    }
}
