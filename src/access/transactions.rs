//! The transactions of the scoped data layer: which pool a request's statements run on, and
//! how the tenant they may see is named for row-level security (`set_config('forklift.tenant',
//! …, true)`, for exactly one transaction).

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, Statement,
    TransactionTrait,
};
use uuid::Uuid;

use crate::{
    error::AppResult,
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
}

/// What a transaction of [`begin`] is for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    Read,
    Write,
}

/// Opens the transaction a read runs in (see [`begin`]): the planned read path runs all of a
/// request's statements in one.
pub(crate) async fn begin_read(
    db: &ScopedDb,
    ctx: &RequestContext,
) -> AppResult<DatabaseTransaction> {
    begin(db, ctx, Purpose::Read).await
}

/// Opens the transaction a request's statement runs in.
///
/// - One tenant in scope: the request pool, naming that tenant for row-level security.
/// - A read across tenants (the admins' read-only view): the system pool in a `READ ONLY`
///   transaction; the request role cannot see across tenants at all.
/// - Otherwise (writes to the vocabulary, callers without a tenant): the request pool naming
///   no tenant, so tenant-owned tables show nothing.
pub(super) async fn begin(
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
    if tx.get_database_backend() == DbBackend::Postgres {
        let tenant = tenant.map(|t| t.to_string()).unwrap_or_default();
        tx.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT set_config('forklift.tenant', $1, true)",
            [tenant.into()],
        ))
        .await?;
    }
    Ok(tx)
}
