//! Relay connections of the generated surface: the connection and edge objects, `PageInfo`,
//! keyset cursors (the sort key of a row, opaque: `access::SortKey::cursor`) and the paging
//! arguments read into an [`access::Window`].

use super::*;
use access::{SortKey, Window};

/// How a connection's rows name their cursors: the list's table and order.
#[derive(Clone, Debug)]
pub struct CursorSpec {
    pub table: String,
    pub key: SortKey,
}

impl CursorSpec {
    /// The cursor of `row`.
    pub fn cursor(&self, row: &Row) -> String {
        self.key.cursor(
            &self.table,
            self.key.columns().iter().map(|(c, _)| row.get(c)),
        )
    }
}

/// Connection results handed from a connection field to its sub-fields.
pub struct ConnectionData {
    rows: Vec<Row>,
    offset: u64,
    total: u64,
    spec: Arc<CursorSpec>,
}

impl ConnectionData {
    /// A page of rows, `offset` rows after the first of `total`, whose cursors `spec` makes.
    pub fn new(rows: Vec<Row>, offset: u64, total: u64, spec: Arc<CursorSpec>) -> Self {
        Self {
            rows,
            offset,
            total,
            spec,
        }
    }
}

/// Reads the paging arguments (`first`, `last`, `after`, `before`) of a connection of `class`
/// ordered by `key`; a cursor of another list or order is `BAD_USER_INPUT`.
pub fn window_arg(ctx: &ResolverContext<'_>, class: &RowClass, key: &SortKey) -> AppResult<Window> {
    let arg_u64 = |name: &str| -> AppResult<Option<u64>> {
        match ctx.args.get(name) {
            None => Ok(None),
            Some(v) if v.is_null() => Ok(None),
            Some(v) => page_size(
                name,
                v.i64()
                    .map_err(|_| AppError::input(name, "expected an integer"))?,
            )
            .map(Some),
        }
    };
    let arg_cursor = |name: &str| -> AppResult<Option<Vec<Cell>>> {
        match ctx.args.get(name) {
            None => Ok(None),
            Some(v) if v.is_null() => Ok(None),
            Some(v) => Ok(Some(
                key.parse_cursor(
                    class,
                    v.string()
                        .map_err(|_| AppError::input(name, "not a valid cursor"))?,
                    name,
                )?,
            )),
        }
    };
    Ok(Window {
        first: arg_u64("first")?,
        last: arg_u64("last")?,
        after: arg_cursor("after")?,
        before: arg_cursor("before")?,
    })
}

/// Checks a `first`/`last` argument: not negative, at most [`MAX_PAGE`].
pub(crate) fn page_size(name: &str, n: i64) -> AppResult<u64> {
    if n < 0 {
        return Err(AppError::input(name, "must not be negative"));
    }
    if n as u64 > MAX_PAGE {
        return Err(AppError::input(name, format!("at most {MAX_PAGE}")));
    }
    Ok(n as u64)
}

pub fn pagination_args(field: Field) -> Field {
    field
        .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)))
        .argument(InputValue::new("after", TypeRef::named(TypeRef::STRING)))
        .argument(InputValue::new("last", TypeRef::named(TypeRef::INT)))
        .argument(InputValue::new("before", TypeRef::named(TypeRef::STRING)))
}

/// The shared connection plumbing (`PageInfo`).
pub fn page_info_object() -> Object {
    let data =
        |ctx: &ResolverContext<'_>| -> AppResult<(bool, bool, Option<String>, Option<String>)> {
            let c = ctx
                .parent_value
                .try_downcast_ref::<ConnectionData>()
                .map_err(|_| AppError::Internal(anyhow::anyhow!("bad parent")))?;
            let n = c.rows.len() as u64;
            Ok((
                c.offset + n < c.total,
                c.offset > 0,
                c.rows.first().map(|r| c.spec.cursor(r)),
                c.rows.last().map(|r| c.spec.cursor(r)),
            ))
        };
    Object::new("PageInfo")
        .description("Relay page information.")
        .field(Field::new(
            "hasNextPage",
            TypeRef::named_nn(TypeRef::BOOLEAN),
            move |ctx| FieldFuture::new(async move { Ok(Some(Value::from(data(&ctx)?.0))) }),
        ))
        .field(Field::new(
            "hasPreviousPage",
            TypeRef::named_nn(TypeRef::BOOLEAN),
            move |ctx| FieldFuture::new(async move { Ok(Some(Value::from(data(&ctx)?.1))) }),
        ))
        .field(Field::new(
            "startCursor",
            TypeRef::named(TypeRef::STRING),
            move |ctx| FieldFuture::new(async move { Ok(data(&ctx)?.2.map(Value::from)) }),
        ))
        .field(Field::new(
            "endCursor",
            TypeRef::named(TypeRef::STRING),
            move |ctx| FieldFuture::new(async move { Ok(data(&ctx)?.3.map(Value::from)) }),
        ))
}

pub(super) fn connection_objects(class: &RowClass) -> (Object, Object) {
    let name = class.name;
    let edge = Object::new(format!("{name}Edge"))
        .field(Field::new(
            "cursor",
            TypeRef::named_nn(TypeRef::STRING),
            |ctx| {
                FieldFuture::new(async move {
                    let (spec, row) = ctx
                        .parent_value
                        .try_downcast_ref::<(Arc<CursorSpec>, Row)>()?;
                    Ok(Some(Value::from(spec.cursor(row))))
                })
            },
        ))
        .field(Field::new("node", TypeRef::named_nn(name), |ctx| {
            FieldFuture::new(async move {
                let (_, row) = ctx
                    .parent_value
                    .try_downcast_ref::<(Arc<CursorSpec>, Row)>()?;
                Ok(Some(FieldValue::owned_any(row.clone())))
            })
        }));
    let connection = Object::new(format!("{name}Connection"))
        .field(Field::new(
            "edges",
            TypeRef::named_nn_list_nn(format!("{name}Edge")),
            |ctx| {
                FieldFuture::new(async move {
                    let c = ctx.parent_value.try_downcast_ref::<ConnectionData>()?;
                    Ok(Some(FieldValue::list(c.rows.iter().map(|row| {
                        FieldValue::owned_any((c.spec.clone(), row.clone()))
                    }))))
                })
            },
        ))
        .field(Field::new(
            "nodes",
            TypeRef::named_nn_list_nn(name),
            |ctx| {
                FieldFuture::new(async move {
                    let c = ctx.parent_value.try_downcast_ref::<ConnectionData>()?;
                    Ok(Some(FieldValue::list(
                        c.rows.iter().map(|row| FieldValue::owned_any(row.clone())),
                    )))
                })
            },
        ))
        .field(Field::new(
            "totalCount",
            TypeRef::named_nn(TypeRef::INT),
            |ctx| {
                FieldFuture::new(async move {
                    let c = ctx.parent_value.try_downcast_ref::<ConnectionData>()?;
                    Ok(Some(Value::from(c.total)))
                })
            },
        ))
        .field(Field::new(
            "pageInfo",
            TypeRef::named_nn("PageInfo"),
            |ctx| {
                FieldFuture::new(async move {
                    let c = ctx.parent_value.try_downcast_ref::<ConnectionData>()?;
                    Ok(Some(FieldValue::borrowed_any(c)))
                })
            },
        ));
    (connection, edge)
}

/// The order an `orderBy` argument gives a list of `class` built by hand (`tenants`): its
/// items in turn, then id; `default` when the argument is absent.
pub fn order_of(
    ctx: &ResolverContext<'_>,
    registry: &Registry,
    class: &RowClass,
    default: Vec<(String, bool)>,
) -> AppResult<SortKey> {
    let given = ctx.args.get("orderBy").is_some_and(|v| !v.is_null());
    if !given {
        return Ok(SortKey::new(default));
    }
    let items = order_items(&shapes(registry, class));
    super::arguments::order_arg(ctx, &items).map_err(|e| AppError::input("orderBy", e.message))
}

/// The page of `window` among `rows` (every row of a list, in any order) ordered by `key`, as
/// the SQL of a generated connection would give it: the rows and how many come before them.
pub fn page_rows(
    mut rows: Vec<Row>,
    key: &SortKey,
    window: &Window,
    default_limit: u64,
) -> (Vec<Row>, u64) {
    let values = |row: &Row| access::key_values(key, row);
    rows.sort_by(|a, b| key.compare(&values(a), &values(b)));
    let position = |bound: &[Cell], inclusive: bool| {
        rows.partition_point(|r| {
            let o = key.compare(&values(r), bound);
            o.is_lt() || (inclusive && o.is_eq())
        })
    };
    let low = window.after.as_deref().map_or(0, |a| position(a, true));
    let high = window
        .before
        .as_deref()
        .map_or(rows.len(), |b| position(b, false))
        .max(low);
    let limit = window.limit(default_limit) as usize;
    let (start, end) = if window.reversed() {
        (high.saturating_sub(limit).max(low), high)
    } else {
        let end = (low + limit).min(high);
        let start = match window.last {
            Some(last) => end.saturating_sub(last as usize).max(low),
            None => low,
        };
        (start, end)
    };
    // An empty page sits where the SQL path counts it (`Window::offset_condition`).
    let offset = if start < end {
        start
    } else if window.reversed() {
        high
    } else {
        low
    };
    let page = rows.drain(start..end).collect();
    (page, offset as u64)
}
