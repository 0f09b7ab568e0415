//! Tenant placement (issue #19, items 2–4): which database holds a tenant's rows, and what a
//! named tenant database needs before it can hold them.
//!
//! A tenant's `tenants.database` names a configured tenant database ([`crate::databases`]), or
//! is null for the main database. A placed tenant's **placed rows** ([`is_placed`]: its
//! configuration and derived rows, and their lineage) live only in that database; the control
//! plane (the tenant catalog, users, memberships, organizations, teams, domains, brandings,
//! features, fork runs and events, audit, template versions and row states) and the vocabulary
//! stay in the main database, which is authoritative for them.
//!
//! A named database has the same schema (the same migrations), so the foreign keys of placed
//! rows need two things there ([`prepare`]):
//! - **a copy of the tenant's catalog row** (`tenant_id → tenants`): written when the tenant is
//!   created and again by every fork into it; nothing reads it but the foreign keys;
//! - **the vocabulary** (entity schemas, event types, …: rows the copies reference by id):
//!   copied whole from the main database at the same moments, inside the same transaction as
//!   the fork's rows. The vocabulary is small and shared by every tenant, so copying it whole
//!   is simpler than tracking which rows each copy references, and a fork never writes a copy
//!   whose vocabulary is missing. Vocabulary edited later in the main database reaches a named
//!   database at its next fork, upgrade or tenant creation.

pub mod transfer;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    sea_query::{Alias, Expr, ExprTrait, OnConflict, Order, Query},
};
use uuid::Uuid;

use crate::{
    databases::{MAIN, TenantDatabases, TenantPools},
    error::{AppError, AppResult},
    fork::engine::{MAX_BATCH_ROWS, MAX_BIND_PARAMS},
    registry::{Plane, Registry, RowClass},
    rows::Row,
};

/// True when `class`'s rows of a placed tenant live in the tenant's own database: tenant-owned
/// configuration and derived rows, and `row_lineage` (the lineage of those rows). Everything
/// else is the control plane or the vocabulary, in the main database.
pub fn is_placed(class: &RowClass) -> bool {
    class.tenant_owned
        && (matches!(class.plane, Plane::Configuration | Plane::Derived)
            || class.table == "row_lineage")
}

/// A `database` argument (`field`, as the error names it: `createTenant`'s, `moveTenant`'s):
/// `None` or `main` is the main database; any other name must be configured. The error names
/// the configured databases, never a URL.
pub fn check_name(
    databases: &TenantDatabases,
    field: &str,
    name: Option<&str>,
) -> AppResult<Option<String>> {
    let Some(name) = name.map(str::trim) else {
        return Ok(None);
    };
    if name == MAIN {
        return Ok(None);
    }
    if databases.get(name).is_some() {
        return Ok(Some(name.to_string()));
    }
    let known: Vec<&str> = std::iter::once(MAIN)
        .chain(databases.iter().map(|d| d.name.as_str()))
        .collect();
    Err(AppError::input(
        field,
        format!(
            "no tenant database is named `{name}`; the configured ones are: {}",
            known.join(", ")
        ),
    ))
}

/// The pool of the named database `name`, opened (and migrated) on first use. A database that
/// cannot be reached is `SERVICE_UNAVAILABLE` for the caller; the cause (which may name the
/// host) goes to the log only.
pub async fn pool(pools: &TenantPools, name: &str) -> AppResult<DatabaseConnection> {
    pools.pool(name).await.map_err(|err| {
        tracing::warn!(database = %name, error = %err, "named tenant database unavailable");
        AppError::DatabaseUnavailable
    })
}

/// The pool of `tenant`'s own database when it is placed in a named one (`None`: the main
/// database), read from the catalog.
pub async fn pool_of_tenant(
    state: &crate::state::AppState,
    tenant: Uuid,
) -> AppResult<Option<DatabaseConnection>> {
    use sea_orm::EntityTrait;
    let model = entity::tenants::Entity::find_by_id(tenant)
        .one(&state.db)
        .await?
        .ok_or(AppError::TenantNotFound)?;
    match model.database {
        Some(name) => Ok(Some(pool(&state.tenant_pools, &name).await?)),
        None => Ok(None),
    }
}

/// Maps any failure to open a transaction on a named database to `SERVICE_UNAVAILABLE`
/// (logged): the pool may be open while the server behind it is gone.
pub fn unavailable(name: &str, err: impl std::fmt::Display) -> AppError {
    tracing::warn!(database = %name, error = %err, "named tenant database unavailable");
    AppError::DatabaseUnavailable
}

/// Makes the named database ready for `tenant`'s rows, in one transaction there: a copy of the
/// tenant's catalog row and of the whole vocabulary, read from `main` (see the module).
pub async fn prepare(
    main: &DatabaseConnection,
    named: &DatabaseConnection,
    name: &str,
    registry: &Registry,
    tenant: Uuid,
) -> AppResult<()> {
    let tx = crate::db::begin_write(named)
        .await
        .map_err(|e| unavailable(name, e))?;
    copy_for_tenant(main, &tx, registry, tenant)
        .await
        .map_err(AppError::Internal)?;
    tx.commit().await?;
    Ok(())
}

/// Copies `tenant`'s catalog row and the vocabulary from `source` (the main database) into
/// `target` (a transaction of the tenant's database); rows already there are brought up to
/// date. Used by [`prepare`] and inside a fork's transaction.
pub async fn copy_for_tenant(
    source: &impl ConnectionTrait,
    target: &DatabaseTransaction,
    registry: &Registry,
    tenant: Uuid,
) -> anyhow::Result<()> {
    let catalog = registry
        .by_table("tenants")
        .ok_or_else(|| anyhow::anyhow!("registry has no tenants"))?;
    let rows = read_rows(source, catalog, Some(tenant), None).await?;
    anyhow::ensure!(!rows.is_empty(), "tenant {tenant} is not in the catalog");
    upsert_rows(target, catalog, &rows).await?;
    for class in registry.vocabulary_order() {
        let mut after = None;
        loop {
            let rows = read_rows(source, class, None, after).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id());
            upsert_rows(target, class, &rows).await?;
            if rows.len() < MAX_BATCH_ROWS {
                break;
            }
        }
    }
    Ok(())
}

/// Rows of `class` in id order: the one with id `only`, or a page after `after`.
async fn read_rows(
    db: &impl ConnectionTrait,
    class: &RowClass,
    only: Option<Uuid>,
    after: Option<Uuid>,
) -> anyhow::Result<Vec<Row>> {
    let mut select = Query::select();
    select
        .columns(class.columns.iter().map(|c| Alias::new(&c.name)))
        .from(Alias::new(&class.table))
        .order_by(Alias::new("id"), Order::Asc)
        .limit(MAX_BATCH_ROWS as u64);
    if let Some(id) = only {
        select.and_where(Expr::col(Alias::new("id")).eq(id));
    }
    if let Some(after) = after {
        select.and_where(Expr::col(Alias::new("id")).gt(after));
    }
    Ok(Row::query_all(db, &select, class).await?)
}

/// Inserts `rows`, or updates the rows with the same id to match them.
async fn upsert_rows(
    db: &impl ConnectionTrait,
    class: &RowClass,
    rows: &[Row],
) -> anyhow::Result<()> {
    write_rows(db, class, rows, true).await
}

/// Inserts `rows` in statements under the bind-parameter limit; with `upsert`, a row whose id
/// is taken updates that row to match instead.
pub(crate) async fn write_rows(
    db: &impl ConnectionTrait,
    class: &RowClass,
    rows: &[Row],
    upsert: bool,
) -> anyhow::Result<()> {
    let per_statement = (MAX_BIND_PARAMS / class.columns.len().max(1)).clamp(1, MAX_BATCH_ROWS);
    let updated: Vec<Alias> = class
        .columns
        .iter()
        .filter(|c| c.name != "id")
        .map(|c| Alias::new(&c.name))
        .collect();
    for chunk in rows.chunks(per_statement) {
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new(&class.table))
            .columns(class.columns.iter().map(|c| Alias::new(&c.name)));
        if upsert {
            insert.on_conflict(
                OnConflict::column(Alias::new("id"))
                    .update_columns(updated.clone())
                    .to_owned(),
            );
        }
        for row in chunk {
            let values: Vec<Expr> = class
                .columns
                .iter()
                .map(|c| row.get(&c.name).to_value(c.kind).into())
                .collect();
            insert.values(values)?;
        }
        db.execute(&insert).await?;
    }
    Ok(())
}
