//! `auditLog(filter, orderBy, first, after)`: the audit log as an admin screen reads it.
//!
//! - Who: platform admins read every entry (the platform's own too), or one tenant's with
//!   `X-Tenant`; a tenant's Owners and Super Users read their tenant's entries; everyone else is
//!   `FORBIDDEN`.
//! - Filter: `actor`, `operation`, `outcome`, `targetType`, `target`, `requestId`, `tenantId`
//!   (admins), `from` (inclusive) and `to` (exclusive).
//! - Order: newest first (`AT_DESC`, the default) or oldest first (`AT_ASC`), by `(at, id)`.
//! - Paging: keyset cursors on `(at, id)`: an `after` cursor names the last entry seen, so
//!   entries written between two pages neither repeat nor shift the next page (offsets would).
//!
//! It reads on the system pool (the writer's) with the tenant condition written out here.

use async_graphql::{
    Value,
    dynamic::{
        Enum, Field, FieldFuture, FieldValue, InputObject, InputValue, Object, ObjectAccessor,
        ResolverContext, TypeRef,
    },
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use entity::audit_entries::{self as audit, AuditOutcome};

use crate::{
    error::{AppError, AppResult},
    graphql::{
        classes::{app, request},
        ids,
        parts::Operations,
    },
    rows::Row,
    scope::{RequestContext, Role, Scope},
};

/// Entries per page by default.
const DEFAULT_PAGE: u64 = 50;
/// Longest page.
pub const MAX_PAGE: u64 = 500;

/// One page of the log.
struct Page {
    rows: Vec<(Row, String)>,
    total: u64,
    has_next: bool,
}

/// A position in the log: the `(at, id)` of an entry.
fn cursor(at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "audit:{}:{id}",
        at.timestamp_nanos_opt().unwrap_or_default()
    ))
}

fn parse_cursor(text: &str) -> AppResult<(DateTime<Utc>, Uuid)> {
    let bad = || AppError::input("after", "not a valid cursor");
    let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let rest = text.strip_prefix("audit:").ok_or_else(bad)?;
    let (nanos, id) = rest.split_once(':').ok_or_else(bad)?;
    let at = DateTime::from_timestamp_nanos(nanos.parse().map_err(|_| bad())?);
    Ok((at, Uuid::parse_str(id).map_err(|_| bad())?))
}

/// Which entries the caller may read: `Some(tenant)` for one tenant's, `None` for every entry.
fn visible(req: &RequestContext) -> AppResult<Option<Uuid>> {
    if req.principal.is_admin {
        return Ok(match req.scope() {
            Ok(Scope::Tenant(t)) => Some(t.id),
            _ => None,
        });
    }
    if !matches!(req.effective_role(), Some(r) if r >= Role::SuperUser) {
        return Err(AppError::forbidden(
            "the audit log is for Owners, Super Users and platform admins",
        ));
    }
    match req.scope()? {
        Scope::Tenant(t) => Ok(Some(t.id)),
        Scope::AllTenants => Err(AppError::forbidden(
            "the audit log of every tenant is for platform admins",
        )),
    }
}

fn text(filter: &ObjectAccessor<'_>, name: &str) -> AppResult<Option<String>> {
    match filter.get(name) {
        Some(v) if !v.is_null() => Ok(Some(
            v.string()
                .map_err(|_| AppError::input(format!("filter.{name}"), "expected a string"))?
                .to_string(),
        )),
        _ => Ok(None),
    }
}

fn time(filter: &ObjectAccessor<'_>, name: &str) -> AppResult<Option<DateTime<Utc>>> {
    text(filter, name)?
        .map(|t| {
            DateTime::parse_from_rfc3339(&t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    AppError::input(format!("filter.{name}"), "expected an RFC 3339 date-time")
                })
        })
        .transpose()
}

/// `detail.targetType = value`, in each backend's JSON syntax.
fn target_type_is(backend: DbBackend, value: String) -> Expr {
    let sql = match backend {
        DbBackend::Postgres => "(\"detail\" ->> 'targetType') = $1",
        _ => "json_extract(\"detail\", '$.targetType') = ?",
    };
    Expr::cust_with_values(sql, [value])
}

/// The filter argument as conditions.
fn filtered(
    ctx: &ResolverContext<'_>,
    req: &RequestContext,
    backend: DbBackend,
    mut query: Select<audit::Entity>,
) -> AppResult<Select<audit::Entity>> {
    let Some(filter) = ctx.args.get("filter").filter(|v| !v.is_null()) else {
        return Ok(query);
    };
    let filter = filter
        .object()
        .map_err(|_| AppError::input("filter", "expected an AuditLogFilter"))?;
    if let Some(v) = text(&filter, "actor")? {
        query = query.filter(audit::Column::Actor.eq(v));
    }
    if let Some(v) = text(&filter, "operation")? {
        query = query.filter(audit::Column::Operation.eq(v));
    }
    if let Some(v) = text(&filter, "target")? {
        query = query.filter(audit::Column::Target.eq(v));
    }
    if let Some(v) = text(&filter, "requestId")? {
        query = query.filter(audit::Column::RequestId.eq(v));
    }
    if let Some(v) = filter.get("outcome").filter(|v| !v.is_null()) {
        let name = v
            .enum_name()
            .or_else(|_| v.string())
            .map_err(|_| AppError::input("filter.outcome", "expected an AuditOutcome"))?;
        let outcome = AuditOutcome::NAMES
            .iter()
            .find(|n| **n == name)
            .ok_or_else(|| AppError::input("filter.outcome", "expected an AuditOutcome"))?;
        query = query.filter(Expr::col(audit::Column::Outcome).eq(*outcome));
    }
    if let Some(v) = text(&filter, "targetType")? {
        query = query.filter(target_type_is(backend, v));
    }
    if let Some(v) = text(&filter, "tenantId")? {
        if !req.principal.is_admin {
            return Err(AppError::forbidden(
                "filtering by tenant is for platform admins",
            ));
        }
        let id = ids::expect(&v, "Tenant", "filter.tenantId")
            .or_else(|e| Uuid::parse_str(&v).map_err(|_| e))?;
        query = query.filter(audit::Column::TenantId.eq(id));
    }
    if let Some(from) = time(&filter, "from")? {
        query = query.filter(audit::Column::At.gte(from));
    }
    if let Some(to) = time(&filter, "to")? {
        query = query.filter(audit::Column::At.lt(to));
    }
    Ok(query)
}

fn first(ctx: &ResolverContext<'_>) -> AppResult<u64> {
    match ctx.args.get("first").filter(|v| !v.is_null()) {
        None => Ok(DEFAULT_PAGE),
        Some(v) => match v.i64() {
            Ok(n) if (1..=MAX_PAGE as i64).contains(&n) => Ok(n as u64),
            _ => Err(AppError::input(
                "first",
                format!("between 1 and {MAX_PAGE}"),
            )),
        },
    }
}

async fn page(ctx: &ResolverContext<'_>) -> AppResult<Page> {
    let state = app(ctx)?;
    let req = request(ctx)?;
    let tenant = visible(req)?;
    let first = first(ctx)?;
    let ascending = match ctx.args.get("orderBy").filter(|v| !v.is_null()) {
        None => false,
        Some(v) => {
            v.enum_name()
                .map_err(|_| AppError::input("orderBy", "expected AT_DESC or AT_ASC"))?
                == "AT_ASC"
        }
    };
    let after = match ctx.args.get("after").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => {
            Some(parse_cursor(v.string().map_err(|_| {
                AppError::input("after", "not a valid cursor")
            })?)?)
        }
    };
    let backend = state.db.get_database_backend();
    let mut query = audit::Entity::find();
    if let Some(tenant) = tenant {
        query = query.filter(audit::Column::TenantId.eq(tenant));
    }
    query = filtered(ctx, req, backend, query)?;
    let total = query.clone().count(&state.db).await?;
    if let Some((at, id)) = after {
        let (past_at, past_id) = if ascending {
            (audit::Column::At.gt(at), audit::Column::Id.gt(id))
        } else {
            (audit::Column::At.lt(at), audit::Column::Id.lt(id))
        };
        query = query.filter(
            Condition::any()
                .add(past_at)
                .add(Condition::all().add(audit::Column::At.eq(at)).add(past_id)),
        );
    }
    query = if ascending {
        query
            .order_by_asc(audit::Column::At)
            .order_by_asc(audit::Column::Id)
    } else {
        query
            .order_by_desc(audit::Column::At)
            .order_by_desc(audit::Column::Id)
    };
    let mut entries = query.limit(first + 1).all(&state.db).await?;
    let has_next = entries.len() as u64 > first;
    entries.truncate(first as usize);
    let class = state
        .registry
        .by_table("audit_entries")
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no audit_entries class")))?;
    let rows = entries
        .iter()
        .map(|e| Ok((Row::from_model(class, e)?, cursor(e.at, e.id))))
        .collect::<AppResult<Vec<_>>>()?;
    Ok(Page {
        rows,
        total,
        has_next,
    })
}

fn page_field(name: &str, ty: TypeRef, pick: fn(&Page) -> FieldValue<'_>) -> Field {
    Field::new(name, ty, move |ctx| {
        FieldFuture::new(async move {
            let page = ctx.parent_value.try_downcast_ref::<Page>()?;
            Ok(Some(pick(page)))
        })
    })
}

fn edge_field(name: &str, ty: TypeRef, pick: fn(&(Row, String)) -> FieldValue<'_>) -> Field {
    Field::new(name, ty, move |ctx| {
        FieldFuture::new(async move {
            let edge = ctx.parent_value.try_downcast_ref::<(Row, String)>()?;
            Ok(Some(pick(edge)))
        })
    })
}

/// Adds `auditLog` and its types to `ops`.
pub fn build(ops: &mut Operations) {
    ops.enums.push(
        Enum::new("AuditLogOrderBy")
            .description("The audit log's order: by time, then id.")
            .item("AT_DESC")
            .item("AT_ASC"),
    );
    let string = || TypeRef::named(TypeRef::STRING);
    ops.inputs.push(
        InputObject::new("AuditLogFilter")
            .description("Conditions on audit entries; all given must hold.")
            .field(InputValue::new("actor", string()).description("The actor's subject."))
            .field(InputValue::new("operation", string()).description("The root field, e.g. `changeMemberRole`."))
            .field(InputValue::new("outcome", TypeRef::named("AuditOutcome")))
            .field(InputValue::new("targetType", string()).description("The type of the row acted on (`Tenant`, `Membership`, `Domain`, `Branding`, `TenantFeature`, …)."))
            .field(InputValue::new("target", string()).description("The id the mutation named."))
            .field(InputValue::new("requestId", string()))
            .field(InputValue::new("tenantId", TypeRef::named(TypeRef::ID)).description("One tenant's entries (platform admins)."))
            .field(InputValue::new("from", TypeRef::named("DateTime")).description("Entries at or after this time."))
            .field(InputValue::new("to", TypeRef::named("DateTime")).description("Entries before this time.")),
    );
    ops.objects.push(
        Object::new("AuditLogConnection")
            .description("A page of the audit log.")
            .field(page_field(
                "nodes",
                TypeRef::named_nn_list_nn("AuditEntry"),
                |p| FieldValue::list(p.rows.iter().map(|(row, _)| FieldValue::borrowed_any(row))),
            ))
            .field(page_field(
                "edges",
                TypeRef::named_nn_list_nn("AuditLogEdge"),
                |p| FieldValue::list(p.rows.iter().map(|e| FieldValue::borrowed_any(e))),
            ))
            .field(
                page_field("totalCount", TypeRef::named_nn(TypeRef::INT), |p| {
                    FieldValue::value(p.total)
                })
                .description("Entries that pass the filter, on every page."),
            )
            .field(page_field(
                "pageInfo",
                TypeRef::named_nn("AuditLogPageInfo"),
                |p| FieldValue::borrowed_any(p),
            )),
    );
    ops.objects.push(
        Object::new("AuditLogEdge")
            .field(edge_field(
                "cursor",
                TypeRef::named_nn(TypeRef::STRING),
                |e| FieldValue::value(e.1.clone()),
            ))
            .field(edge_field("node", TypeRef::named_nn("AuditEntry"), |e| {
                FieldValue::borrowed_any(&e.0)
            })),
    );
    ops.objects.push(
        Object::new("AuditLogPageInfo")
            .description(
                "Where the next page starts: a keyset cursor, stable while entries are written.",
            )
            .field(page_field(
                "hasNextPage",
                TypeRef::named_nn(TypeRef::BOOLEAN),
                |p| FieldValue::value(p.has_next),
            ))
            .field(page_field("endCursor", string(), |p| {
                FieldValue::value(
                    p.rows
                        .last()
                        .map_or(Value::Null, |(_, c)| Value::from(c.clone())),
                )
            })),
    );
    ops.query_fields.push(
        Field::new("auditLog", TypeRef::named_nn("AuditLogConnection"), |ctx| {
            FieldFuture::new(async move { Ok(Some(FieldValue::owned_any(page(&ctx).await?))) })
        })
        .argument(InputValue::new("filter", TypeRef::named("AuditLogFilter")))
        .argument(
            InputValue::new("orderBy", TypeRef::named("AuditLogOrderBy"))
                .description("AT_DESC (newest first) by default."),
        )
        .argument(
            InputValue::new("first", TypeRef::named(TypeRef::INT))
                .description("At most 500; 50 by default."),
        )
        .argument(
            InputValue::new("after", string())
                .description("`pageInfo.endCursor` (or an edge's cursor) of the previous page."),
        )
        .description(
            "The audit log, newest first, with keyset paging: platform admins read every entry \
             (one tenant's with X-Tenant or `filter.tenantId`), a tenant's Owners and Super \
             Users their tenant's.",
        ),
    );
}
