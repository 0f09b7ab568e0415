//! Where delivery to sockets runs: each socket's writer and each subscriber's follow loop of a
//! shared stream (`shared::Follow::run`) — the work that grows with the audience — run on a runtime
//! of their own whose threads are `FORKLIFT_DELIVERY_NICE` ([`DELIVERY_NICE`] by default) levels
//! below the server's priority.
//!
//! When the CPU is saturated (two thousand dashboards on a small machine), the fork, requests
//! and the database keep their share and delivery takes what is left: the fork does not pay for
//! its audience, and dashboards see events later instead. Nothing here touches the database
//! (a connection opened from a lowered thread could run at its priority: SQLite's connections
//! are threads), so reading a socket, the guard and executing operations stay on the server's
//! runtime.
//!
//! Nice levels weigh threads of one scheduling group against each other. A database in another
//! group (another container, systemd service or autogroup) shares the CPU with the server's
//! whole group by the groups' weights, whatever the delivery's nice level (README,
//! `FORKLIFT_DELIVERY_NICE`).

use std::future::Future;

use tokio::task::JoinHandle;

use crate::runtimes::LazyRuntime;

/// Worker threads of the delivery runtime.
pub const DELIVERY_THREADS: usize = 2;

/// How many nice levels below the server's priority delivery runs by default
/// (`FORKLIFT_DELIVERY_NICE` sets it). Ten levels give a thread of normal priority about nine
/// times the CPU share of a delivery thread while both want it; when nothing else does,
/// delivery runs at full speed.
pub const DELIVERY_NICE: i32 = 10;

/// The name of the delivery runtime's threads.
pub const THREAD_NAME: &str = "forklift-deliver";

/// The delivery runtime of one server (started at the first socket).
pub struct Delivery(LazyRuntime);

impl Delivery {
    /// A delivery runtime `nice` levels below the server's priority (0: the same).
    pub fn new(nice: i32) -> Self {
        Self(LazyRuntime::new(THREAD_NAME, DELIVERY_THREADS, nice))
    }

    /// Spawns `task` on the delivery runtime (on the current runtime if that cannot start).
    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.0.handle() {
            Ok(handle) => handle.spawn(task),
            Err(err) => {
                tracing::warn!(error = %err, "the delivery runtime did not start; delivering on the server's");
                tokio::spawn(task)
            }
        }
    }
}
