//! The one scoped data-access path for row classes.
//!
//! Every read and write of a tenant-owned table is built here from the request's
//! [`RequestContext`]: the tenant condition is added by this module, never passed in, and a class
//! without a rule ([`ClassAccess::Hidden`]) cannot be reached at all. A row of another tenant is
//! indistinguishable from a missing row.

use std::collections::HashMap;

use sea_orm::{
    ConnectionTrait,
    sea_query::{Alias, Condition, Expr, ExprTrait, Query, SelectStatement},
};
use uuid::Uuid;

mod conditions;
mod keyset;
mod transactions;

use conditions::where_condition;
pub use conditions::{CompareOp, Filter, NestedArgs, TextOp, Where};
pub(crate) use conditions::{apply_filter, nested_select};
pub use keyset::{SortKey, Window};
pub(crate) use transactions::Reads;
use transactions::{Purpose, begin};
pub use transactions::{
    ScopedDb, begin_placed_for_write, begin_placed_in, begin_tenant, begin_tenant_for_write,
    begin_tenant_snapshot, name_tenant_in,
};

use crate::{
    error::{AppError, AppResult},
    registry::{ColumnKind, Plane, RowClass, Surface},
    rows::{Cell, Row},
    scope::{RequestContext, Role, Scope},
};

/// What the generic GraphQL surface may do with a class.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ClassAccess {
    /// Template/tenant configuration: members read; Contributors add (create); Editors edit
    /// (update) and delete — seed 002: a Contributor "adds content" with "limited editing", an
    /// Editor "edits content". On the template, writes need `template:author`.
    Configuration,
    /// Shared vocabulary: every authenticated caller reads; `vocabulary:author` writes.
    Vocabulary,
    /// Read-only through the generic surface (derived rows, and runtime rows that have their own
    /// mutations: memberships, domains, features, fork runs and events).
    ReadOnly,
    /// Runtime rows managed by Super Users and above (organizations, teams).
    Managed,
    /// Read-only; platform admins may read without naming a tenant, a tenant's Owners and
    /// Super Users read their own tenant's (fork runs and events).
    AdminRead,
    /// Types only: the tenant catalog, whose root fields are hand-written (admin only).
    Catalog,
    /// The audit log: Owners and Super Users read their tenant's entries, platform admins every
    /// entry (or one tenant's with `X-Tenant`). Written only by the audit extension.
    AuditLog,
    /// Not exposed generically (users, branding).
    Hidden,
}

/// The access rule of `class`.
pub fn access_of(class: &RowClass) -> ClassAccess {
    match class.plane {
        Plane::Configuration => ClassAccess::Configuration,
        Plane::Derived => ClassAccess::ReadOnly,
        // Vocabulary and runtime classes: as their entity declares (`ClassInfo::SURFACE`).
        Plane::Vocabulary | Plane::Runtime => match class.surface {
            Surface::Catalog => ClassAccess::Catalog,
            Surface::Managed => ClassAccess::Managed,
            Surface::ReadOnly => ClassAccess::ReadOnly,
            Surface::AdminRead => ClassAccess::AdminRead,
            Surface::AuditLog => ClassAccess::AuditLog,
            Surface::ByPlane if class.plane == Plane::Vocabulary => ClassAccess::Vocabulary,
            Surface::ByPlane => ClassAccess::Hidden,
        },
    }
}

pub(crate) fn col(name: &str) -> Expr {
    Expr::col(Alias::new(name))
}

pub(crate) fn kind_of(class: &RowClass, column: &str) -> ColumnKind {
    class
        .columns
        .iter()
        .find(|c| c.name == column)
        .map_or(ColumnKind::Text, |c| c.kind)
}

/// Adds the scope's tenant condition, or refuses.
fn scoped(ctx: &RequestContext, class: &RowClass, select: &mut SelectStatement) -> AppResult<()> {
    match access_of(class) {
        ClassAccess::Hidden => return Err(AppError::NotFound(class.name.into())),
        ClassAccess::Catalog => {
            ctx.require_admin()?;
            return Ok(());
        }
        ClassAccess::Vocabulary => return Ok(()),
        ClassAccess::AdminRead | ClassAccess::AuditLog
            if ctx.principal.is_admin && ctx.scope().is_err() =>
        {
            return Ok(());
        }
        ClassAccess::AuditLog if !matches!(ctx.effective_role(), Some(r) if r >= Role::SuperUser) =>
        {
            return Err(AppError::forbidden(
                "the audit log is for Owners, Super Users and platform admins",
            ));
        }
        // Fork runs and their events: a tenant's Owners and Super Users read their own tenant's
        // (the tenant condition below), platform admins every tenant's.
        ClassAccess::AdminRead if !matches!(ctx.effective_role(), Some(r) if r >= Role::SuperUser) =>
        {
            return Err(AppError::forbidden(
                "fork runs are for Owners, Super Users and platform admins",
            ));
        }
        _ => {}
    }
    if !class.tenant_owned {
        return Err(AppError::NotFound(class.name.into()));
    }
    match ctx.scope()? {
        Scope::Tenant(t) => {
            select.and_where(col("tenant_id").eq(t.id));
        }
        Scope::AllTenants => {}
    }
    Ok(())
}

fn base_select(class: &RowClass) -> SelectStatement {
    let mut select = Query::select();
    select
        .columns(class.columns.iter().map(|c| Alias::new(&c.name)))
        .from(Alias::new(&class.table));
    select
}

/// Every column of the rows of `class` visible to the request that pass `filter` and `where_`.
fn filtered_select(
    db: &impl ConnectionTrait,
    ctx: &RequestContext,
    class: &RowClass,
    filter: &Filter,
    where_: Option<&Where>,
) -> AppResult<SelectStatement> {
    let mut select = base_select(class);
    scoped(ctx, class, &mut select)?;
    apply_filter(class, &mut select, filter);
    if let Some(w) = where_ {
        select.cond_where(where_condition(class, db.get_database_backend(), w));
    }
    Ok(select)
}

/// Counts the rows of `class` visible to the request that pass `filter`, `where_` and `extra`
/// (a keyset bound).
pub(crate) async fn count_in(
    db: &impl ConnectionTrait,
    ctx: &RequestContext,
    class: &RowClass,
    filter: &Filter,
    where_: Option<&Where>,
    extra: Option<Condition>,
) -> AppResult<u64> {
    let mut count = filtered_select(db, ctx, class, filter, where_)?;
    if let Some(extra) = extra {
        count.cond_where(extra);
    }
    count.clear_selects().expr(Expr::cust("COUNT(*)"));
    let total: i64 = match db.query_one(&count).await? {
        Some(r) => r.try_get_by_index(0)?,
        None => 0,
    };
    Ok(std::cmp::max(total, 0) as u64)
}

/// One page of the rows of `class` visible to the request that pass `filter` and `where_`:
/// the rows of `window` in the order of `key`.
#[allow(clippy::too_many_arguments)]
async fn page_in(
    db: &impl ConnectionTrait,
    ctx: &RequestContext,
    class: &RowClass,
    filter: &Filter,
    where_: Option<&Where>,
    key: &SortKey,
    window: &Window,
    default_limit: u64,
) -> AppResult<Vec<Row>> {
    let mut select = filtered_select(db, ctx, class, filter, where_)?;
    window.page(class, key, &mut select, default_limit);
    let rows = Row::query_all(db, &select, class).await?;
    Ok(window.finish(rows))
}

/// The key values of `row` in the order `key`.
pub fn key_values(key: &SortKey, row: &Row) -> Vec<Cell> {
    key.columns()
        .iter()
        .map(|(c, _)| row.get(c).clone())
        .collect()
}

/// How many rows come before a page (see [`Window::offset_condition`]); `start` is the key of
/// its first row, `total` the number of rows.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn offset_in(
    db: &impl ConnectionTrait,
    ctx: &RequestContext,
    class: &RowClass,
    filter: &Filter,
    where_: Option<&Where>,
    key: &SortKey,
    window: &Window,
    start: Option<&[Cell]>,
    total: Option<u64>,
) -> AppResult<u64> {
    match window.offset_condition(class, key, start) {
        None => Ok(0),
        Some(None) => match total {
            Some(total) => Ok(total),
            None => count_in(db, ctx, class, filter, where_, None).await,
        },
        Some(Some(condition)) => count_in(db, ctx, class, filter, where_, Some(condition)).await,
    }
}

/// Fetches rows of `class` by id; ids of other tenants simply yield nothing.
async fn by_ids_in(
    db: &impl ConnectionTrait,
    ctx: &RequestContext,
    class: &RowClass,
    ids: &[Uuid],
) -> AppResult<Vec<Row>> {
    by_column_in(db, ctx, class, "id", ids, &NestedArgs::default()).await
}

/// Rows of `class` whose `column` is one of `values`: the batched query behind nested fields.
async fn by_column_in(
    db: &impl ConnectionTrait,
    ctx: &RequestContext,
    class: &RowClass,
    column: &str,
    values: &[Uuid],
    args: &NestedArgs,
) -> AppResult<Vec<Row>> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let mut select = base_select(class);
    scoped(ctx, class, &mut select)?;
    select.and_where(col(column).is_in(values.iter().copied()));
    let columns: Vec<&str> = class.columns.iter().map(|c| c.name.as_str()).collect();
    let select = nested_select(class, select, column, &columns, args);
    Ok(Row::query_all(db, &select, class).await?)
}

/// Checks that the caller may write rows of `class` (`need` is the role a tenant write needs),
/// returning the tenant to write into (`None` for vocabulary).
fn write_target(ctx: &RequestContext, class: &RowClass, need: Role) -> AppResult<Option<Uuid>> {
    match access_of(class) {
        ClassAccess::Hidden | ClassAccess::Catalog => Err(AppError::NotFound(class.name.into())),
        ClassAccess::ReadOnly | ClassAccess::AdminRead | ClassAccess::AuditLog => Err(
            AppError::forbidden(format!("{} rows cannot be written directly", class.name)),
        ),
        ClassAccess::Vocabulary => {
            if ctx.principal.is_admin || ctx.principal.has_grant("vocabulary:author") {
                Ok(None)
            } else {
                Err(AppError::forbidden(
                    "authoring the vocabulary needs the vocabulary:author grant",
                ))
            }
        }
        ClassAccess::Managed => Ok(Some(ctx.require_role(Ord::max(need, Role::SuperUser))?.id)),
        ClassAccess::Configuration => Ok(Some(ctx.require_role(need)?.id)),
    }
}

/// Validates an input against the class's columns (types and required fields).
fn check_values(class: &RowClass, values: &HashMap<String, Cell>, creating: bool) -> AppResult<()> {
    for (name, value) in values {
        let column = class
            .columns
            .iter()
            .find(|c| &c.name == name)
            .ok_or_else(|| AppError::input(crate::naming::camel(name), "unknown field"))?;
        if matches!(
            name.as_str(),
            "id" | "tenant_id" | "created_at" | "updated_at"
        ) {
            return Err(AppError::input(
                crate::naming::camel(name),
                "is set by the server",
            ));
        }
        if matches!(value, Cell::Null) && !column.nullable {
            return Err(AppError::input(
                crate::naming::camel(name),
                "cannot be null",
            ));
        }
        if let Cell::Text(text) = value
            && !column.nullable
            && text.trim().is_empty()
        {
            return Err(AppError::input(
                crate::naming::camel(name),
                "cannot be empty",
            ));
        }
    }
    if creating {
        for column in &class.columns {
            if column.nullable
                || matches!(
                    column.name.as_str(),
                    "id" | "tenant_id" | "created_at" | "updated_at"
                )
                || values.contains_key(&column.name)
                || Cell::default_for(column.kind, &column.name).is_some()
            {
                continue;
            }
            return Err(AppError::input(
                crate::naming::camel(&column.name),
                "is required",
            ));
        }
    }
    Ok(())
}

/// Creates a row of `class` in the request's tenant (or the vocabulary) and returns it.
async fn create_in(
    db: &impl ConnectionTrait,
    ctx: &RequestContext,
    class: &RowClass,
    mut values: HashMap<String, Cell>,
) -> AppResult<Row> {
    let tenant = write_target(ctx, class, Role::Contributor)?;
    check_values(class, &values, true)?;
    let id = Uuid::now_v7();
    let now = chrono::Utc::now();
    values.insert("id".into(), Cell::Uuid(id));
    if let Some(tenant) = tenant {
        values.insert("tenant_id".into(), Cell::Uuid(tenant));
    }
    let mut columns = Vec::new();
    let mut exprs: Vec<Expr> = Vec::new();
    for column in &class.columns {
        let cell = match values.remove(&column.name) {
            Some(v) => v,
            None if matches!(column.name.as_str(), "created_at" | "updated_at") => {
                Cell::Timestamp(now)
            }
            None if column.nullable => Cell::Null,
            None => match Cell::default_for(column.kind, &column.name) {
                Some(v) => v,
                None => continue,
            },
        };
        columns.push(Alias::new(&column.name));
        exprs.push(cell.to_value(column.kind).into());
    }
    let mut insert = Query::insert();
    insert
        .into_table(Alias::new(&class.table))
        .columns(columns)
        .values(exprs)
        .map_err(|e| AppError::Internal(e.into()))?;
    db.execute(&insert).await?;
    by_ids_in(db, ctx, class, &[id])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("created row not readable")))
}

/// Updates the given columns of a row of the request's tenant.
async fn update_in(
    db: &impl ConnectionTrait,
    ctx: &RequestContext,
    class: &RowClass,
    id: Uuid,
    values: HashMap<String, Cell>,
) -> AppResult<Row> {
    let tenant = write_target(ctx, class, Role::Editor)?;
    check_values(class, &values, false)?;
    if values.is_empty() {
        return Err(AppError::input(
            "input",
            "give at least one field to change",
        ));
    }
    let mut update = Query::update();
    update.table(Alias::new(&class.table));
    for (name, value) in &values {
        update.value(Alias::new(name), value.to_value(kind_of(class, name)));
    }
    if class.columns.iter().any(|c| c.name == "updated_at") {
        update.value(Alias::new("updated_at"), chrono::Utc::now());
    }
    update.and_where(col("id").eq(id));
    if let Some(tenant) = tenant {
        update.and_where(col("tenant_id").eq(tenant));
    }
    let result = db.execute(&update).await?;
    if result.rows_affected() == 0 {
        return Err(AppError::NotFound(class.name.into()));
    }
    by_ids_in(db, ctx, class, &[id])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| AppError::NotFound(class.name.into()))
}

/// Deletes a row of the request's tenant (Editors and above); rows below it go with it.
async fn delete_in(
    db: &impl ConnectionTrait,
    ctx: &RequestContext,
    class: &RowClass,
    id: Uuid,
) -> AppResult<()> {
    let tenant = write_target(ctx, class, Role::Editor)?;
    if class.table == "organizations" {
        let rows = by_ids_in(db, ctx, class, &[id]).await?;
        if rows
            .first()
            .is_some_and(|r| matches!(r.get("parent_id"), Cell::Null))
        {
            return Err(AppError::PreconditionFailed(
                "the root organization cannot be deleted".into(),
            ));
        }
    }
    let mut delete = Query::delete();
    delete
        .from_table(Alias::new(&class.table))
        .and_where(col("id").eq(id));
    if let Some(tenant) = tenant {
        delete.and_where(col("tenant_id").eq(tenant));
    }
    let result = db.execute(&delete).await?;
    if result.rows_affected() == 0 {
        return Err(AppError::NotFound(class.name.into()));
    }
    Ok(())
}

/// A `SELECT` of the given columns (indexes into `class.columns`) of `class`, with the scope's
/// tenant condition, or the refusal a read of `class` gets: the planned read path's statements
/// start here, so they are scoped exactly like the generic reads.
pub(crate) fn scoped_select(
    ctx: &RequestContext,
    class: &RowClass,
    columns: &[usize],
) -> AppResult<SelectStatement> {
    let mut select = Query::select();
    select
        .columns(columns.iter().map(|&i| Alias::new(&class.columns[i].name)))
        .from(Alias::new(&class.table));
    scoped(ctx, class, &mut select)?;
    Ok(select)
}

/// One page of a connection, in one transaction: the number of visible rows, the rows of
/// `window` in the order of `key` (`default_limit` of them when the window gives no size), and
/// how many rows come before them. Returns the rows, that offset and the total.
#[allow(clippy::too_many_arguments)]
pub async fn list_window(
    db: &ScopedDb,
    ctx: &RequestContext,
    class: &RowClass,
    filter: &Filter,
    where_: Option<&Where>,
    key: &SortKey,
    window: &Window,
    default_limit: u64,
) -> AppResult<(Vec<Row>, u64, u64)> {
    let tx = begin(db, ctx, Purpose::Read, class).await?;
    let total = count_in(&tx, ctx, class, filter, where_, None).await?;
    let rows = if window.limit(default_limit) == 0 {
        Vec::new()
    } else {
        page_in(&tx, ctx, class, filter, where_, key, window, default_limit).await?
    };
    let start = rows.first().map(|r| key_values(key, r));
    let offset = offset_in(
        &tx,
        ctx,
        class,
        filter,
        where_,
        key,
        window,
        start.as_deref(),
        Some(total),
    )
    .await?;
    tx.commit().await?;
    Ok((rows, offset, total))
}

/// Fetches rows of `class` by id; ids of other tenants simply yield nothing.
pub async fn by_ids(
    db: &ScopedDb,
    ctx: &RequestContext,
    class: &RowClass,
    ids: &[Uuid],
) -> AppResult<Vec<Row>> {
    let tx = begin(db, ctx, Purpose::Read, class).await?;
    let out = by_ids_in(&tx, ctx, class, ids).await?;
    tx.commit().await?;
    Ok(out)
}

/// Rows of `class` whose `column` is one of `values`: the batched query behind nested fields.
pub async fn by_column(
    db: &ScopedDb,
    ctx: &RequestContext,
    class: &RowClass,
    column: &str,
    values: &[Uuid],
    args: &NestedArgs,
) -> AppResult<Vec<Row>> {
    let tx = begin(db, ctx, Purpose::Read, class).await?;
    let out = by_column_in(&tx, ctx, class, column, values, args).await?;
    tx.commit().await?;
    Ok(out)
}

/// Creates a row of `class` in the request's tenant (or the vocabulary) and returns it.
pub async fn create(
    db: &ScopedDb,
    ctx: &RequestContext,
    class: &RowClass,
    values: HashMap<String, Cell>,
) -> AppResult<Row> {
    let tx = begin(db, ctx, Purpose::Write, class).await?;
    let out = create_in(&tx, ctx, class, values).await?;
    tx.commit().await?;
    Ok(out)
}

/// Updates the given columns of a row of the request's tenant.
pub async fn update(
    db: &ScopedDb,
    ctx: &RequestContext,
    class: &RowClass,
    id: Uuid,
    values: HashMap<String, Cell>,
) -> AppResult<Row> {
    let tx = begin(db, ctx, Purpose::Write, class).await?;
    let out = update_in(&tx, ctx, class, id, values).await?;
    tx.commit().await?;
    Ok(out)
}

/// Deletes a row of the request's tenant (Editors and above); rows below it go with it.
pub async fn delete(
    db: &ScopedDb,
    ctx: &RequestContext,
    class: &RowClass,
    id: Uuid,
) -> AppResult<()> {
    let tx = begin(db, ctx, Purpose::Write, class).await?;
    delete_in(&tx, ctx, class, id).await?;
    tx.commit().await?;
    Ok(())
}
