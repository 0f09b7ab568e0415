//! The transactions of the scoped data layer: which pool a request's statements run on, and
//! how the tenant they may see is named for row-level security (`set_config('forklift.tenant',
//! …, true)`, for exactly one transaction).
//!
//! **Routing** (issue #19): a statement about a placed class ([`crate::placement::is_placed`])
//! of a tenant placed in a named database runs on that database's pool ([`ScopedDb::
//! tenant_pools`]), in a transaction naming the tenant the same way; everything else runs on the
//! main database. A transaction never spans two databases, and no statement joins them.

use std::sync::Arc;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, Statement,
    TransactionTrait,
};
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::{
    databases::{PoolSettings, TenantDatabases, TenantPools},
    error::AppResult,
    registry::RowClass,
    scope::{RequestContext, Scope},
};

/// The connections of the scoped layer.
#[derive(Clone)]
pub struct ScopedDb {
    /// The request pool: on PostgreSQL, row-level security shows each transaction exactly the
    /// one tenant it names, and nothing else can widen that.
    pub request: DatabaseConnection,
    /// The system pool, here only in `READ ONLY` transactions for the platform admins'
    /// all-tenants view (`X-Tenant: *`, or admin reads that name no tenant).
    pub system: DatabaseConnection,
    /// The named tenant databases' pools: a placed tenant's placed rows are read and written
    /// there (`AppState::new` sets the server's own).
    pub tenant_pools: Arc<TenantPools>,
}

impl ScopedDb {
    /// The scoped layer over the main database's two pools, with no named database.
    pub fn new(request: DatabaseConnection, system: DatabaseConnection) -> Self {
        let settings = PoolSettings {
            max_connections: 1,
            idle_timeout: std::time::Duration::from_secs(60),
        };
        Self {
            request,
            system,
            tenant_pools: Arc::new(TenantPools::new(TenantDatabases::default(), settings)),
        }
    }
}

/// The named database a statement about `class` runs in for `ctx`: the tenant's own, when the
/// request acts in one placed tenant and the class is placed; `None`: the main database.
pub(crate) fn placed_in<'c>(ctx: &'c RequestContext, class: &RowClass) -> Option<&'c str> {
    match ctx.scope() {
        Ok(Scope::Tenant(t)) if crate::placement::is_placed(class) => t.database.as_deref(),
        _ => None,
    }
}

/// A transaction of the named database `name` naming `tenant` for row-level security. A
/// database that cannot be reached is `SERVICE_UNAVAILABLE` (the cause is logged).
async fn begin_named(
    db: &ScopedDb,
    name: &str,
    tenant: Uuid,
    purpose: Purpose,
) -> AppResult<DatabaseTransaction> {
    let pool = crate::placement::pool(&db.tenant_pools, name).await?;
    let tx = match purpose {
        Purpose::Read => pool.begin().await,
        Purpose::Write => crate::db::begin_write(&pool).await,
    }
    .map_err(|e| crate::placement::unavailable(name, e))?;
    name_tenant(tx, Some(tenant)).await
}

/// The read transactions of one request of the planned read path: the main database's, and
/// for a placed tenant its own database's, each opened when its first statement runs and
/// committed together ([`Reads::commit`]). Every statement about one database shares its one
/// transaction, as before placement.
pub(crate) struct Reads<'a> {
    db: &'a ScopedDb,
    ctx: &'a RequestContext,
    main: OnceCell<DatabaseTransaction>,
    placed: OnceCell<DatabaseTransaction>,
}

impl<'a> Reads<'a> {
    /// No transaction yet.
    pub(crate) fn new(db: &'a ScopedDb, ctx: &'a RequestContext) -> Self {
        Self {
            db,
            ctx,
            main: OnceCell::new(),
            placed: OnceCell::new(),
        }
    }

    /// The transaction statements about `class` run in.
    pub(crate) async fn tx(&self, class: &RowClass) -> AppResult<&DatabaseTransaction> {
        match (placed_in(self.ctx, class), self.ctx.scope()) {
            (Some(name), Ok(Scope::Tenant(t))) => {
                self.placed
                    .get_or_try_init(|| begin_named(self.db, name, t.id, Purpose::Read))
                    .await
            }
            _ => {
                self.main
                    .get_or_try_init(|| begin_main(self.db, self.ctx, Purpose::Read))
                    .await
            }
        }
    }

    /// Runs `select` (a read of `class`) where statements about `class` run. For a tenant
    /// placed in a named database, a read of the vocabulary (no tenant's rows, no row-level
    /// security) is one statement on the main database's request pool rather than a transaction
    /// of its own: the placed rows are read in the other database anyway, so a second
    /// transaction there would cost three round trips and share no snapshot.
    pub(crate) async fn query_all(
        &self,
        class: &RowClass,
        select: &sea_orm::sea_query::SelectStatement,
    ) -> AppResult<Vec<sea_orm::QueryResult>> {
        let placed_tenant =
            matches!(self.ctx.scope(), Ok(Scope::Tenant(t)) if t.database.is_some());
        if placed_tenant && !class.tenant_owned && self.main.get().is_none() {
            return Ok(self.db.request.query_all(select).await?);
        }
        Ok(self.tx(class).await?.query_all(select).await?)
    }

    /// The backend every database of the server runs (named ones are checked to match).
    pub(crate) fn backend(&self) -> DbBackend {
        self.db.request.get_database_backend()
    }

    /// Commits whatever was opened.
    pub(crate) async fn commit(self) -> AppResult<()> {
        for tx in [self.placed.into_inner(), self.main.into_inner()]
            .into_iter()
            .flatten()
        {
            tx.commit().await?;
        }
        Ok(())
    }
}

/// What a transaction of [`begin`] is for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    Read,
    Write,
}

/// Opens the transaction a request's statement about `class` runs in.
///
/// - One placed tenant in scope and a placed class: the tenant's own database
///   ([`placed_in`]), naming that tenant for row-level security.
/// - One tenant in scope: the request pool, naming that tenant for row-level security.
/// - A read across tenants (the admins' read-only view): the system pool in a `READ ONLY`
///   transaction; the request role cannot see across tenants at all.
/// - Otherwise (writes to the vocabulary, callers without a tenant): the request pool naming
///   no tenant, so tenant-owned tables show nothing.
pub(super) async fn begin(
    db: &ScopedDb,
    ctx: &RequestContext,
    purpose: Purpose,
    class: &RowClass,
) -> AppResult<DatabaseTransaction> {
    let tx = match (placed_in(ctx, class), ctx.scope()) {
        (Some(name), Ok(Scope::Tenant(t))) => begin_named(db, name, t.id, purpose).await?,
        _ => begin_main(db, ctx, purpose).await?,
    };
    if let (Purpose::Write, Ok(Scope::Tenant(t))) = (purpose, ctx.scope())
        && crate::placement::is_placed(class)
    {
        still_placed(db, &tx, t.id, &t.database).await?;
    }
    Ok(tx)
}

/// A transaction for `tenant`'s placed rows in the hand-written operations (branding, features,
/// onboarding marks, access checks): in the tenant's own database when it is placed, else on
/// the request pool; it names the tenant for row-level security and holds the move fence
/// ([`still_placed`]). A writer's transaction ([`crate::db::begin_write`]), as
/// [`begin_tenant_for_write`].
pub async fn begin_placed_for_write(db: &ScopedDb, tenant: Uuid) -> AppResult<DatabaseTransaction> {
    use sea_orm::EntityTrait;
    let database = entity::tenants::Entity::find_by_id(tenant)
        .one(&db.system)
        .await?
        .ok_or(crate::error::AppError::TenantNotFound)?
        .database;
    begin_placed_in(db, tenant, &database).await
}

/// [`begin_placed_for_write`] for a caller that read the tenant's placement (`database`) already.
pub async fn begin_placed_in(
    db: &ScopedDb,
    tenant: Uuid,
    database: &Option<String>,
) -> AppResult<DatabaseTransaction> {
    let tx = match database {
        Some(name) => begin_named(db, name, tenant, Purpose::Write).await?,
        None => begin_tenant_for_write(&db.request, Some(tenant)).await?,
    };
    still_placed(db, &tx, tenant, database).await?;
    Ok(tx)
}

/// The move fence, on a transaction that writes a tenant's placed rows: on PostgreSQL it takes
/// the tenant's lock shared (a move's switch holds it exclusively in the database it moves the
/// tenant from; SQLite's write lock does the same), then checks that the catalog still places
/// the tenant where the request was routed. A request routed before a move's switch and writing
/// after it is refused with `TENANT_PROVISIONING` (retrying reaches the new database); one
/// writing before the switch is carried over by it.
async fn still_placed(
    db: &ScopedDb,
    tx: &DatabaseTransaction,
    tenant: Uuid,
    routed_to: &Option<String>,
) -> AppResult<()> {
    if tx.get_database_backend() == DbBackend::Postgres {
        tx.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock_shared($1)",
            [crate::fork::runs::task::advisory_key(tenant).into()],
        ))
        .await?;
    }
    use sea_orm::EntityTrait;
    // The catalog is in the main database: read through `tx` when that is where it writes (on
    // SQLite another connection of a pool whose others wait for the write lock `tx` holds might
    // never come), else through the system pool.
    let find = entity::tenants::Entity::find_by_id(tenant);
    let catalog = match routed_to {
        None => find.one(tx).await?,
        Some(_) => find.one(&db.system).await?,
    };
    match catalog {
        Some(t) if t.database == *routed_to => Ok(()),
        _ => Err(crate::error::AppError::TenantProvisioning),
    }
}

/// [`begin`] on the main database.
async fn begin_main(
    db: &ScopedDb,
    ctx: &RequestContext,
    purpose: Purpose,
) -> AppResult<DatabaseTransaction> {
    let tenant = match ctx.scope() {
        Ok(Scope::Tenant(t)) => Some(t.id),
        Ok(Scope::AllTenants) if purpose == Purpose::Read => return begin_all_tenants(db).await,
        Err(_) if purpose == Purpose::Read && ctx.principal.is_admin => {
            return begin_all_tenants(db).await;
        }
        _ => None,
    };
    match purpose {
        Purpose::Read => begin_tenant(&db.request, tenant).await,
        Purpose::Write => begin_tenant_for_write(&db.request, tenant).await,
    }
}

async fn begin_all_tenants(db: &ScopedDb) -> AppResult<DatabaseTransaction> {
    let tx = db.system.begin().await?;
    if tx.get_database_backend() == DbBackend::Postgres {
        tx.execute_unprepared("SET TRANSACTION READ ONLY").await?;
    }
    Ok(tx)
}

/// Opens a transaction of the request pool that names `tenant` for row-level security (`None`:
/// no tenant, so no tenant-owned row is visible). `set_config('forklift.tenant', …, true)` lasts
/// exactly as long as the transaction, so a pooled connection never carries one request's tenant
/// into the next.
pub async fn begin_tenant(
    request_pool: &DatabaseConnection,
    tenant: Option<Uuid>,
) -> AppResult<DatabaseTransaction> {
    name_tenant(request_pool.begin().await?, tenant).await
}

/// [`begin_tenant`] for a long read that must see one consistent state of the tenant (the
/// export, `offboarding::export`): on PostgreSQL a `REPEATABLE READ, READ ONLY` transaction,
/// so every statement reads the snapshot of the first; on SQLite a read transaction, whose
/// snapshot (WAL) holds from its first read.
pub async fn begin_tenant_snapshot(
    request_pool: &DatabaseConnection,
    tenant: Uuid,
) -> AppResult<DatabaseTransaction> {
    let tx = request_pool.begin().await?;
    if tx.get_database_backend() == DbBackend::Postgres {
        tx.execute_unprepared("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
    }
    name_tenant(tx, Some(tenant)).await
}

/// [`begin_tenant`] for a transaction that writes ([`crate::db::begin_write`]: on SQLite it
/// holds the write lock from its start).
pub async fn begin_tenant_for_write(
    request_pool: &DatabaseConnection,
    tenant: Option<Uuid>,
) -> AppResult<DatabaseTransaction> {
    name_tenant(crate::db::begin_write(request_pool).await?, tenant).await
}

/// Names `tenant` (or none) for row-level security for the rest of `tx` (PostgreSQL).
async fn name_tenant(
    tx: DatabaseTransaction,
    tenant: Option<Uuid>,
) -> AppResult<DatabaseTransaction> {
    set_tenant(&tx, tenant).await?;
    Ok(tx)
}

/// Names `tenant` for row-level security for the rest of `tx`, a transaction opened elsewhere:
/// a fork's, purge's or diff's in a named tenant database, whose role row-level security may
/// bind (forced on every tenant table, owners included).
pub async fn name_tenant_in(tx: &DatabaseTransaction, tenant: Uuid) -> Result<(), sea_orm::DbErr> {
    set_tenant(tx, Some(tenant)).await
}

async fn set_tenant(tx: &DatabaseTransaction, tenant: Option<Uuid>) -> Result<(), sea_orm::DbErr> {
    if tx.get_database_backend() == DbBackend::Postgres {
        let tenant = tenant.map(|t| t.to_string()).unwrap_or_default();
        tx.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT set_config('forklift.tenant', $1, true)",
            [tenant.into()],
        ))
        .await?;
    }
    Ok(())
}
