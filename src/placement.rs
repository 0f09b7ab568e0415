//! Tenant placement (issue #19): which database holds a tenant's rows, and what a named tenant
//! database needs before it can hold them.
//!
//! A tenant's `tenants.database` names a configured tenant database ([`crate::databases`]), or
//! is null for the main database. A placed tenant's **placed rows** ([`is_placed`]: its
//! configuration and derived rows, their lineage, and its runtime rows: organizations, teams and
//! their members, branding, features, onboarding marks) live only in that database. The control
//! plane (the tenant catalog, users, memberships, domains, fork runs and events, audit, template
//! versions and row states) and the vocabulary stay in the main database, which is
//! authoritative for them. Domains are control plane because a verified host routes a request
//! before its tenant is known, and is unique across tenants.
//!
//! A named database has the same schema (the same migrations), so the foreign keys of placed
//! rows need copies there ([`prepare`], [`copy_for_tenant`]); nothing reads the copies but the
//! foreign keys:
//! - **the tenant's catalog row** (`tenant_id → tenants`): written when the tenant is created and
//!   again by every fork into it;
//! - **the vocabulary** (entity schemas, event types, …: rows the copies reference by id):
//!   copied whole from the main database at the same moments, inside the same transaction as
//!   the fork's rows. The vocabulary is small and shared by every tenant, so copying it whole
//!   is simpler than tracking which rows each copy references, and a fork never writes a copy
//!   whose vocabulary is missing. Vocabulary edited later in the main database reaches a named
//!   database at its next fork, upgrade or tenant creation;
//! - **the users who are the tenant's members** (`team_members.user_id → users`): copied at the
//!   same moments, and by `addMember` before the membership is written ([`share_user`]).

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

/// The runtime tables whose rows of a placed tenant live in its own database; the other
/// runtime tables are the control plane.
pub const PLACED_RUNTIME: &[&str] = &[
    "organizations",
    "teams",
    "team_members",
    "brandings",
    "tenant_features",
    "onboarding_completions",
    "row_lineage",
];

/// True when `class`'s rows of a placed tenant live in the tenant's own database: tenant-owned
/// configuration and derived rows, and the runtime rows of [`PLACED_RUNTIME`] (among them
/// `row_lineage`, the lineage of the copies). Everything else is the control plane or the
/// vocabulary, in the main database.
pub fn is_placed(class: &RowClass) -> bool {
    class.tenant_owned
        && (matches!(class.plane, Plane::Configuration | Plane::Derived)
            || PLACED_RUNTIME.contains(&class.table.as_str()))
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

/// The pool of `database` (a placement: a named database, or `None` for the main one, whose
/// pool the caller gives as `main`).
pub async fn pool_or_main(
    pools: &TenantPools,
    main: &DatabaseConnection,
    database: Option<&str>,
) -> AppResult<DatabaseConnection> {
    match database {
        Some(name) => pool(pools, name).await,
        None => Ok(main.clone()),
    }
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

/// The named database `tenant` is placed in (`None`: the main one), read from the catalog.
pub async fn database_of(
    state: &crate::state::AppState,
    tenant: Uuid,
) -> AppResult<Option<String>> {
    use sea_orm::EntityTrait;
    Ok(entity::tenants::Entity::find_by_id(tenant)
        .one(&state.db)
        .await?
        .ok_or(AppError::TenantNotFound)?
        .database)
}

/// Maps any failure to open a transaction on a named database to `SERVICE_UNAVAILABLE`
/// (logged): the pool may be open while the server behind it is gone.
pub fn unavailable(name: &str, err: impl std::fmt::Display) -> AppError {
    tracing::warn!(database = %name, error = %err, "named tenant database unavailable");
    AppError::DatabaseUnavailable
}

/// Makes the named database ready for `tenant`'s rows, in one transaction there: a copy of the
/// tenant's catalog row, of the whole vocabulary and of its members' users, read from `main`
/// (see the module), and the tenant's root organization when it has none there.
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
    // Row-level security may bind the named database's role: the transaction names the tenant.
    crate::access::name_tenant_in(&tx, tenant).await?;
    copy_for_tenant(main, &tx, registry, tenant)
        .await
        .map_err(AppError::Internal)?;
    ensure_root_organization(&tx, tenant)
        .await
        .map_err(AppError::Internal)?;
    tx.commit().await?;
    Ok(())
}

/// Creates `tenant`'s root organization in `tx` (the database its placed rows live in), named
/// after the tenant, unless it has one there. Forks anchor the tenant's rows on it.
pub async fn ensure_root_organization(
    tx: &DatabaseTransaction,
    tenant: Uuid,
) -> anyhow::Result<()> {
    use entity::{organizations, tenants};
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
    let root = organizations::Entity::find()
        .filter(organizations::Column::TenantId.eq(tenant))
        .filter(organizations::Column::ParentId.is_null())
        .one(tx)
        .await?;
    if root.is_some() {
        return Ok(());
    }
    let catalog = tenants::Entity::find_by_id(tenant)
        .one(tx)
        .await?
        .ok_or_else(|| anyhow::anyhow!("tenant {tenant} has no catalog row here"))?;
    let now = chrono::Utc::now();
    organizations::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant),
        parent_id: Set(None),
        name: Set(catalog.name),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(tx)
    .await?;
    Ok(())
}

/// Copies `user` (a row of the main database's `users`, perhaps not committed there yet) into
/// the named database `tenant` is placed in, if it is placed: `addMember` calls it before it
/// writes the membership, so the tenant's team memberships there can reference the user. A
/// named database that is down is `SERVICE_UNAVAILABLE`, and nothing is written.
pub async fn share_user(
    state: &crate::state::AppState,
    tenant: &crate::scope::TenantRef,
    user: &entity::users::Model,
) -> AppResult<()> {
    // The request's routing names the database: no catalog read (the caller may hold the main
    // database's write lock, and on SQLite another connection of its pool could be long coming).
    let Some(name) = tenant.database.as_deref() else {
        return Ok(());
    };
    let named = pool(&state.tenant_pools, name).await?;
    let tenant = tenant.id;
    let class = state
        .registry
        .by_table("users")
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("registry has no users")))?;
    let row = Row::from_model(class, user)?;
    let tx = crate::db::begin_write(&named)
        .await
        .map_err(|e| unavailable(name, e))?;
    crate::access::name_tenant_in(&tx, tenant).await?;
    upsert_rows(&tx, class, &[row])
        .await
        .map_err(AppError::Internal)?;
    tx.commit().await?;
    Ok(())
}

/// Copies `tenant`'s catalog row, its members' users and the vocabulary from `source` (the main
/// database) into `target` (a transaction of the tenant's database); rows already there are
/// brought up to date. Used by [`prepare`], inside a fork's transaction and by a move.
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
    copy_members(source, target, registry, tenant).await?;
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

/// The tenant that owns the row `id` of the placed table `table`, looked up where placed rows
/// can be: the main database (the system pool), then the named databases. A named database's
/// role may be bound by row-level security, which shows a transaction only the tenant it names,
/// so there the row is looked for tenant by tenant, among those the catalog places there (a
/// database that cannot be reached is skipped). For the few operations that take a placed row's
/// id and no tenant (`updateFeature`, platform admins).
pub async fn owner_of(
    state: &crate::state::AppState,
    table: &str,
    id: Uuid,
) -> AppResult<Option<Uuid>> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let mut select = Query::select();
    select
        .column(Alias::new("tenant_id"))
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new("id")).eq(id));
    if let Some(row) = state.db.query_one(&select).await? {
        return Ok(Some(row.try_get::<Uuid>("", "tenant_id")?));
    }
    let placed = entity::tenants::Entity::find()
        .filter(entity::tenants::Column::Database.is_not_null())
        .all(&state.db)
        .await?;
    for tenant in placed {
        let Some(name) = tenant.database.as_deref() else {
            continue;
        };
        let Ok(named) = pool(&state.tenant_pools, name).await else {
            continue;
        };
        let tx = sea_orm::TransactionTrait::begin(&named)
            .await
            .map_err(|e| unavailable(name, e))?;
        crate::access::name_tenant_in(&tx, tenant.id).await?;
        let mut mine = select.clone();
        mine.and_where(Expr::col(Alias::new("tenant_id")).eq(tenant.id));
        let found = tx.query_one(&mine).await?;
        tx.commit().await?;
        if found.is_some() {
            return Ok(Some(tenant.id));
        }
    }
    Ok(None)
}

/// Copies the users who are `tenant`'s members in `source` into `target`.
async fn copy_members(
    source: &impl ConnectionTrait,
    target: &DatabaseTransaction,
    registry: &Registry,
    tenant: Uuid,
) -> anyhow::Result<()> {
    let users = registry
        .by_table("users")
        .ok_or_else(|| anyhow::anyhow!("registry has no users"))?;
    let mut members = Query::select();
    members
        .column(Alias::new("user_id"))
        .from(Alias::new("memberships"))
        .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant));
    let ids: Vec<Uuid> = source
        .query_all(&members)
        .await?
        .iter()
        .map(|r| r.try_get::<Uuid>("", "user_id"))
        .collect::<Result<_, _>>()?;
    for chunk in ids.chunks(MAX_BATCH_ROWS) {
        let mut select = Query::select();
        select
            .columns(users.columns.iter().map(|c| Alias::new(&c.name)))
            .from(Alias::new(&users.table))
            .and_where(Expr::col(Alias::new("id")).is_in(chunk.iter().copied()));
        let rows = Row::query_all(source, &select, users).await?;
        upsert_rows(target, users, &rows).await?;
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
