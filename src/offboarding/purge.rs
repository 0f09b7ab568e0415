//! `deleteTenant(id, purge: true)`: every row of a tenant removed in bounded batches, in an
//! order the foreign keys allow, resumable after an interruption.
//!
//! 1. The tenant is marked `PURGING` first (one statement). From then on the guard lets nobody
//!    into it and no fork starts into it; a re-run sees the mark and carries on.
//! 2. Every tenant-owned class, children before parents ([`Registry::tenant_owned_order`]
//!    reversed), loses its rows of the tenant `FORKLIFT_PURGE_BATCH_SIZE` at a time, each batch
//!    its own statement and transaction (`DELETE … WHERE id IN (SELECT id … LIMIT n)`), until
//!    none is left. The audit entries of the tenant go too.
//! 3. The tenant record is deleted last (its cascade catches anything written meanwhile).
//!
//! Interrupted anywhere (a crash, a killed process, a failed batch), the tenant is still there,
//! `PURGING`, with fewer rows; running the purge again finishes it. Nothing outside the
//! tenant is touched: every statement names the tenant. The audit entry of the purge itself
//! goes to the platform log (no tenant), so it outlives the tenant
//! (`graphql::audit::note_platform`).
//!
//! [`Registry::tenant_owned_order`]: crate::registry::Registry::tenant_owned_order

use std::collections::BTreeMap;

use entity::tenants::{TenantKind, TenantStatus};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use uuid::Uuid;

use crate::{
    error::{AppError, AppResult},
    state::AppState,
};

/// What a purge removed.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PurgeReport {
    /// The tenant's id and slug.
    pub tenant: Uuid,
    pub slug: String,
    /// Rows deleted per table by this run (a re-run counts only what was left).
    pub rows: BTreeMap<String, u64>,
    /// Delete statements issued.
    pub batches: u64,
    /// True when an earlier, interrupted purge had started (the tenant was `PURGING`).
    pub resumed: bool,
}

/// Marks `tenant` as being purged; refuses the template and a tenant a fork is writing into.
/// Returns the tenant and whether it already was `PURGING`.
pub async fn mark(state: &AppState, id: Uuid) -> AppResult<(entity::tenants::Model, bool)> {
    let t = crate::tenants::catalog::tenant(&state.db, id)
        .await?
        .ok_or(AppError::NotFound("Tenant".into()))?;
    if t.kind == TenantKind::Template {
        return Err(AppError::PreconditionFailed(
            "the template cannot be deleted".into(),
        ));
    }
    if t.provisioning_state == entity::tenants::ProvisioningState::Running {
        return Err(AppError::PreconditionFailed(
            "a fork is writing into the tenant; delete it when the run has finished".into(),
        ));
    }
    crate::tenants::lifecycle::refuse_if_a_fork_source(state, &t).await?;
    let resumed = t.status == TenantStatus::Purging.as_str();
    if resumed {
        return Ok((t, true));
    }
    // One conditional statement, so a fork that began writing since the check above is never
    // purged under: either this marks first (and the fork, checking under its lock, stops), or
    // the fork's `RUNNING` came first (and this refuses).
    use entity::tenants;
    let marked = tenants::Entity::update_many()
        .col_expr(
            tenants::Column::Status,
            Expr::value(TenantStatus::Purging.as_str()),
        )
        .col_expr(tenants::Column::UpdatedAt, Expr::value(state.clock.now()))
        .filter(ColumnTrait::eq(&tenants::Column::Id, t.id))
        .filter(ColumnTrait::ne(
            &tenants::Column::ProvisioningState,
            entity::tenants::ProvisioningState::Running,
        ))
        .exec(&state.db)
        .await?
        .rows_affected;
    if marked == 0 {
        return Err(AppError::PreconditionFailed(
            "a fork is writing into the tenant; delete it when the run has finished".into(),
        ));
    }
    let marked = tenants::Entity::find_by_id(t.id)
        .one(&state.db)
        .await?
        .ok_or(AppError::NotFound("Tenant".into()))?;
    Ok((marked, false))
}

/// Deletes every row of the tenant (already [`mark`]ed), then the tenant.
pub async fn purge(state: &AppState, tenant: &entity::tenants::Model) -> AppResult<PurgeReport> {
    let batch = Ord::max(state.config.purge_batch_size, 1);
    let db = &state.db;
    // A placed tenant's placed rows, and its copy of its catalog row, are in its database.
    let named = match &tenant.database {
        Some(name) => Some(crate::placement::pool(&state.tenant_pools, name).await?),
        None => None,
    };
    let mut report = PurgeReport {
        tenant: tenant.id,
        slug: tenant.slug.clone(),
        ..Default::default()
    };
    // Copies an interrupted move left in other databases (found through its run records, which
    // the purge is about to delete).
    let leftovers = crate::fork::runs::moves::leftovers(state, db, tenant.id, &tenant.database)
        .await
        .map_err(AppError::Internal)?;
    for database in &leftovers {
        let removed = crate::fork::runs::moves::remove_copy(state, db, database, tenant.id)
            .await
            .map_err(AppError::Internal)?;
        report.batches += 1;
        tracing::info!(tenant = %tenant.id, database = ?database, removed, "removed an interrupted move's copy");
    }
    let mut order = state.registry.tenant_owned_order();
    order.reverse();
    for class in order {
        let mut removed = 0u64;
        let db = match &named {
            Some(named) if crate::placement::is_placed(class) => named,
            _ => db,
        };
        loop {
            let n = delete_batch(db, &class.table, tenant.id, batch).await?;
            report.batches += 1;
            removed += n;
            failpoint(state, report.batches)?;
            if n < batch {
                break;
            }
        }
        if removed > 0 {
            report.rows.insert(class.table.clone(), removed);
        }
    }
    if let Some(named) = &named {
        entity::tenants::Entity::delete_by_id(tenant.id)
            .exec(named)
            .await?;
    }
    entity::tenants::Entity::delete_by_id(tenant.id)
        .exec(db)
        .await?;
    tracing::info!(tenant = %tenant.id, slug = %tenant.slug, batches = report.batches, "tenant purged");
    Ok(report)
}

/// Deletes at most `batch` rows of `table` owned by `tenant`; returns how many went.
async fn delete_batch(
    db: &DatabaseConnection,
    table: &str,
    tenant: Uuid,
    batch: u64,
) -> AppResult<u64> {
    let mut ids = Query::select();
    ids.column(Alias::new("id"))
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
        .limit(batch);
    let mut delete = Query::delete();
    delete
        .from_table(Alias::new(table))
        .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
        .and_where(Expr::col(Alias::new("id")).in_subquery(ids));
    // A transaction naming the tenant: row-level security may bind a named database's role.
    let tx = crate::db::begin_write(db).await?;
    crate::access::name_tenant_in(&tx, tenant).await?;
    let n = tx.execute(&delete).await?.rows_affected();
    tx.commit().await?;
    Ok(n)
}

/// The purge failpoint (`FORKLIFT_PURGE_FAILPOINT`): `after_batches:N` fails the purge after
/// its N-th batch, as an interrupted one; `pause_after_batches:N:MS` holds it there (tests kill
/// the process meanwhile). Compiled only with the `failpoints` feature.
#[cfg(feature = "failpoints")]
fn failpoint(state: &AppState, batches: u64) -> AppResult<()> {
    let failpoint = state.config.purge_failpoint.as_deref();
    if let Some((n, ms)) = failpoint
        .and_then(|f| f.strip_prefix("pause_after_batches:"))
        .and_then(|rest| rest.split_once(':'))
        && n.parse::<u64>().ok() == Some(batches)
    {
        let pause = std::time::Duration::from_millis(ms.parse().unwrap_or(1000));
        tokio::task::block_in_place(|| std::thread::sleep(pause));
    }
    let at = failpoint
        .and_then(|f| f.strip_prefix("after_batches:"))
        .and_then(|n| n.parse::<u64>().ok());
    if at == Some(batches) {
        return Err(AppError::Internal(anyhow::anyhow!(
            "purge failpoint after_batches:{batches} triggered"
        )));
    }
    Ok(())
}

#[cfg(not(feature = "failpoints"))]
fn failpoint(_state: &AppState, _batches: u64) -> AppResult<()> {
    Ok(())
}
