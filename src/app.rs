//! Building and running the application: the one place that wires configuration, database,
//! state and router together (tests use it too, on port 0).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::net::TcpListener;

use crate::{
    auth::{self, Verifier},
    config::Config,
    db,
    fork::runs,
    http::server,
    registry::Registry,
    state::AppState,
};

/// A built, not yet serving, application.
pub struct Application {
    pub state: Arc<AppState>,
    listener: TcpListener,
}

impl Application {
    /// Connects, migrates, sweeps orphaned fork runs and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_registry(config, Registry::default()).await
    }

    /// As [`Application::build`], with a given registry (extensions and tests).
    pub async fn build_with_registry(config: Config, registry: Registry) -> anyhow::Result<Self> {
        let state = Arc::new(build_state(config, registry).await?);
        match runs::sweep_abandoned(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(count = n, "marked orphaned fork runs abandoned"),
            Err(err) => tracing::error!(error = %err, "could not sweep orphaned fork runs"),
        }
        let listener = TcpListener::bind(state.config.addr).await.map_err(|e| {
            anyhow::anyhow!("FORKLIFT_ADDR: cannot listen on {}: {e}", state.config.addr)
        })?;
        Ok(Self { state, listener })
    }

    /// The bound address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.state.config.addr)
    }

    /// Serves until `shutdown` resolves, then drains: WebSockets are closed with 1001 and
    /// running requests get a deadline to finish.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = server::router(self.state.clone())?;
        let state = self.state.clone();
        let lease_sweeper = spawn_lease_sweeper(state.clone());
        let pool_closer = spawn_idle_pool_closer(state.clone());
        let listener =
            db::is_postgres(&state.db).then(|| crate::fork::listener::spawn(state.clone()));
        let stopping = state.shutdown.subscribe();
        let header_timeout = state.config.header_timeout;
        let serve = crate::http::accept::serve(self.listener, router, header_timeout, async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections; draining");
            let _ = state.stopping_since.set(std::time::Instant::now());
            let _ = state.shutdown.send(true);
        });
        // Running requests get the grace period; then the server stops regardless.
        let grace = self.state.config.shutdown_grace;
        let deadline = async move {
            let mut stopping = stopping;
            let _ = stopping.wait_for(|s| *s).await;
            tokio::time::sleep(grace + std::time::Duration::from_secs(1)).await;
        };
        tokio::select! {
            result = serve => result?,
            _ = deadline => tracing::warn!("requests still running after the grace period; stopping"),
        }
        // Forks finish or roll back (and record which) before the process ends.
        let state = self.state.clone();
        let _ = state.shutdown.send(true);
        for _ in 0..((grace.as_millis() / 50) as usize + 100) {
            if state.hub.running_forks() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        lease_sweeper.abort();
        pool_closer.abort();
        if let Some(listener) = listener {
            listener.abort();
        }
        Ok(())
    }
}

/// Every idle timeout, closes the named tenant databases' pools unused for ten of them
/// (`TenantPools::close_idle`); none when no named database is configured.
fn spawn_idle_pool_closer(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if state.config.tenant_databases.is_empty() {
            return;
        }
        let every = state.config.db_idle_timeout.max(Duration::from_secs(1));
        loop {
            tokio::time::sleep(every).await;
            let closed = state.tenant_pools.close_idle(every * 10).await;
            if closed > 0 {
                tracing::info!(closed, "idle named tenant database pools closed");
            }
        }
    })
}

fn spawn_lease_sweeper(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if !db::is_postgres(&state.db) {
            return;
        }
        let every = state.config.fork_lease.max(Duration::from_secs(1));
        loop {
            tokio::time::sleep(every).await;
            if let Err(err) = runs::sweep_abandoned(&state).await {
                tracing::warn!(error = %err, "fork lease sweep failed");
            }
        }
    })
}

/// Connects, migrates and assembles the shared state.
pub async fn build_state(config: Config, registry: Registry) -> anyhow::Result<AppState> {
    if !cfg!(feature = "failpoints")
        && (config.fork_failpoint.is_some() || config.request_failpoint.is_some())
    {
        tracing::warn!(
            "FORKLIFT_FORK_FAILPOINT / FORKLIFT_REQUEST_FAILPOINT are ignored: this build has no \
             `failpoints` feature"
        );
    }
    let secret = auth::effective_secret(&config)?;
    let verifier = Verifier::new(&config, secret)?;
    verifier.fetch_remote_keys().await?;
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let mut db = db::connect(&config).await?;
    let owner = db::migration_connection(&config, &db).await?;
    db::migrate(&owner).await?;
    if db::migration_url(&config).is_some() {
        let _ = owner.close().await;
    }
    let mut scoped_db = db::connect_scoped(&config, &db).await?;
    db::check_roles(&config, &db, &scoped_db).await?;
    for pool in [&mut db, &mut scoped_db] {
        let observer = metrics.clone();
        pool.set_metric_callback(move |info| observer.statement(info.elapsed, info.failed));
    }
    let replica_id = format!("{}-{}", hostname(), uuid::Uuid::now_v7().simple());
    let scoped_db = crate::access::ScopedDb::new(scoped_db, db.clone());
    Ok(AppState::new(
        db, scoped_db, config, registry, verifier, replica_id, metrics,
    ))
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "forklift".into())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
