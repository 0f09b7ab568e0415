//! The state shared by every request: database pool, configuration, registry, token verifier,
//! the fork progress hub and the shutdown signal.

use std::sync::{Arc, RwLock};

use sea_orm::DatabaseConnection;
use tokio::sync::watch;

use crate::{
    access::ScopedDb,
    auth::Verifier,
    config::Config,
    domains::{SharedResolver, SystemResolver},
    fork::hub::ProgressHub,
    metrics::Metrics,
    registry::Registry,
};

/// Shared, immutable application state (held in an `Arc`).
pub struct AppState {
    /// The system pool: the server's own bookkeeping that crosses tenants (guard, forks, run
    /// records, audit, the catalog, sweeps). On PostgreSQL it connects as a role with
    /// `BYPASSRLS` (`FORKLIFT_SYSTEM_DATABASE_URL`), distinct from the request role.
    pub db: DatabaseConnection,
    /// The scoped data layer's connections ([`crate::access`]): the request pool, where
    /// row-level security shows each transaction only the one tenant it names, and the system
    /// pool for the admins' read-only all-tenants view.
    pub scoped_db: ScopedDb,
    pub config: Config,
    pub registry: Registry,
    pub verifier: Verifier,
    pub hub: ProgressHub,
    /// The runtime and pool forks run on, apart from request and delivery work.
    pub forks: crate::fork::runtime::ForkRuntime,
    /// The runtime WebSocket delivery runs on, below the priority of everything else.
    pub delivery: crate::http::ws::delivery::Delivery,
    /// This process's name in fork run records (`owner`), for leases across replicas.
    pub replica_id: String,
    /// Flips to `true` when the server begins shutting down.
    pub shutdown: watch::Sender<bool>,
    /// The time of trial arithmetic (tests move it forward).
    pub clock: Clock,
    /// When shutting down began (grace periods count from here).
    pub stopping_since: std::sync::OnceLock<std::time::Instant>,
    /// Prometheus metrics of this process.
    pub metrics: Arc<Metrics>,
    /// The named tenant databases' pools, each opened on first use ([`crate::databases`]).
    pub tenant_pools: Arc<crate::databases::TenantPools>,
    /// DNS TXT lookups for domain verification (replaceable: tests, air-gapped installs).
    resolver: RwLock<SharedResolver>,
}

impl AppState {
    /// Assembles the state; the system DNS resolver verifies domains until replaced.
    pub fn new(
        db: DatabaseConnection,
        scoped_db: ScopedDb,
        config: Config,
        registry: Registry,
        verifier: Verifier,
        replica_id: String,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (shutdown, _) = watch::channel(false);
        let tenant_pools = Arc::new(crate::databases::TenantPools::new(
            config.tenant_databases.clone(),
            crate::databases::PoolSettings::for_config(&config),
        ));
        let delivery = crate::http::ws::delivery::Delivery::new(config.delivery_nice);
        let scoped_db = ScopedDb {
            tenant_pools: tenant_pools.clone(),
            ..scoped_db
        };
        Self {
            tenant_pools,
            db,
            scoped_db,
            config,
            registry,
            verifier,
            hub: ProgressHub::default(),
            forks: Default::default(),
            delivery,
            replica_id,
            shutdown,
            metrics,
            stopping_since: std::sync::OnceLock::new(),
            clock: Clock::default(),
            resolver: RwLock::new(Arc::new(SystemResolver::default())),
        }
    }

    /// A transaction of the request pool naming `tenant` for row-level security: where the
    /// hand-written operations read and write one tenant's rows, as the generic surface does
    /// (a writer's transaction: [`crate::access::begin_tenant_for_write`]).
    pub async fn tenant_tx(
        &self,
        tenant: uuid::Uuid,
    ) -> crate::error::AppResult<sea_orm::DatabaseTransaction> {
        crate::access::begin_tenant_for_write(&self.scoped_db.request, Some(tenant)).await
    }

    /// A transaction for `tenant`'s placed runtime rows (branding, features, onboarding marks,
    /// teams): in its own database when it is placed, else as [`AppState::tenant_tx`]
    /// ([`crate::access::begin_placed_for_write`]).
    pub async fn placed_tx(
        &self,
        tenant: uuid::Uuid,
    ) -> crate::error::AppResult<sea_orm::DatabaseTransaction> {
        crate::access::begin_placed_for_write(&self.scoped_db, tenant).await
    }

    /// The resolver that verifies domains.
    pub fn resolver(&self) -> SharedResolver {
        match self.resolver.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the resolver that verifies domains.
    pub fn set_resolver(&self, resolver: SharedResolver) {
        match self.resolver.write() {
            Ok(mut r) => *r = resolver,
            Err(poisoned) => *poisoned.into_inner() = resolver,
        }
    }
}

/// The wall clock, with an offset tests can move forward (trials, expiry flags, statistics).
#[derive(Debug, Default)]
pub struct Clock {
    offset_secs: std::sync::atomic::AtomicI64,
}

impl Clock {
    /// Now, as this server sees it.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
            + chrono::Duration::seconds(self.offset_secs.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Moves this server's time forward by `by` (tests only; never call it in production).
    pub fn advance(&self, by: chrono::Duration) {
        self.offset_secs
            .fetch_add(by.num_seconds(), std::sync::atomic::Ordering::Relaxed);
    }
}
