//! The GraphQL surface of every row class, generated from the registry.
//!
//! For a class `Application` stored in `applications`: the object type (implementing `Node`),
//! `applications(first, after, last, before, filter, orderBy): ApplicationConnection!`,
//! `application(id)`, and — when the class is writable — `createApplication(input)`,
//! `updateApplication(id, input)`, `deleteApplication(id)`. References become `xxxId: ID` plus
//! the referenced object; classes pointing at this one become nested lists, loaded in batches.
//! A class added to the registry gets all of this with no code here.

use std::{collections::HashMap, sync::Arc};

use async_graphql::{
    Value,
    dataloader::DataLoader,
    dynamic::{
        Enum, Field, FieldFuture, FieldValue, InputObject, InputValue, Object, ResolverContext,
        TypeRef, ValueAccessor,
    },
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::{
    access::{self, ClassAccess, Filter, Page, access_of},
    error::{AppError, AppResult},
    graphql::{
        enums::{self, EnumDef},
        ids,
        loaders::{ArgsKey, RowsKey, RowsLoader},
    },
    naming::{camel, pascal},
    registry::{ColumnKind, Plane, Registry, RowClass},
    rows::{Cell, Row},
    scope::RequestContext,
    state::AppState,
};

/// Largest page a connection returns.
pub const MAX_PAGE: u64 = 1000;
/// Page size when neither `first` nor `last` is given.
pub const DEFAULT_PAGE: u64 = 100;

/// The generated types and root fields.
pub struct ClassSurface {
    pub objects: Vec<Object>,
    pub inputs: Vec<InputObject>,
    pub enums: Vec<Enum>,
    pub query_fields: Vec<Field>,
    pub mutation_fields: Vec<Field>,
}

/// The request's resolved context.
pub fn request<'a>(ctx: &ResolverContext<'a>) -> AppResult<&'a RequestContext> {
    ctx.data::<RequestContext>()
        .map_err(|_| AppError::Unauthenticated("missing bearer token".into()))
}

/// The application state.
pub fn app<'a>(ctx: &ResolverContext<'a>) -> AppResult<&'a Arc<AppState>> {
    ctx.data::<Arc<AppState>>()
        .map_err(|_| AppError::Internal(anyhow::anyhow!("application state missing")))
}

/// The root connection field of `class` (`applications`).
pub(crate) fn plural_field(class: &RowClass) -> String {
    match class.table.as_str() {
        // The audit log's connection is `auditLog` (`docs/api.md`).
        "audit_entries" => "auditLog".into(),
        table => camel(table),
    }
}

/// The root single-row field of `class` (`application`).
pub(crate) fn singular_field(class: &RowClass) -> String {
    let name = class.name;
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// JSON columns whose content has a fixed shape: the generic surface leaves them out, and
/// `operations.rs` gives the object a typed field of the same name instead
/// (`ForkRun.counts: [ForkClassCount!]!`, `ForkRun.skipped: [ForkSkippedRow!]!`).
pub const TYPED_JSON_COLUMNS: &[(&str, &str)] = &[
    ("fork_runs", "counts"),
    ("fork_runs", "skipped"),
    ("fork_runs", "conflicts"),
];

/// What a column looks like in GraphQL.
#[derive(Clone)]
pub(crate) struct ColumnShape {
    pub(crate) column: String,
    pub(crate) field: String,
    pub(crate) kind: ColumnKind,
    pub(crate) nullable: bool,
    /// The enum a text column holds (`enums::ENUM_COLUMNS`).
    pub(crate) enumeration: Option<&'static EnumDef>,
    /// For references: the GraphQL type the id belongs to (global ids), the referenced table,
    /// and the object field.
    pub(crate) reference: Option<(String, String, String)>,
}

/// The columns of `class` the generic surface shows, as GraphQL fields.
pub(crate) fn shapes(registry: &Registry, class: &RowClass) -> Vec<ColumnShape> {
    class
        .columns
        .iter()
        .filter(|c| c.name != "id" && c.name != "tenant_id" && c.kind != ColumnKind::Bytes)
        .filter(|c| !TYPED_JSON_COLUMNS.contains(&(class.table.as_str(), c.name.as_str())))
        .map(|c| {
            let reference = class
                .references
                .iter()
                .find(|r| r.column == c.name)
                .and_then(|r| registry.by_table(&r.table))
                .filter(|target| access_of(target) != ClassAccess::Hidden)
                .map(|target| {
                    let object_field = camel(c.name.trim_end_matches("_id"));
                    (target.name.to_string(), target.table.clone(), object_field)
                });
            ColumnShape {
                column: c.name.clone(),
                field: camel(&c.name),
                kind: c.kind,
                nullable: c.nullable,
                enumeration: enums::of_column(&class.table, &c.name),
                reference,
            }
        })
        .collect()
}

fn scalar_type(shape: &ColumnShape) -> &'static str {
    if let Some(def) = shape.enumeration {
        return def.name;
    }
    match shape.kind {
        ColumnKind::Uuid => TypeRef::ID,
        ColumnKind::Text => TypeRef::STRING,
        ColumnKind::Int => TypeRef::INT,
        ColumnKind::Bool => TypeRef::BOOLEAN,
        ColumnKind::Json => "JSON",
        ColumnKind::Timestamp => "DateTime",
        ColumnKind::Bytes => TypeRef::STRING,
    }
}

/// A field computed from the parent row without waiting on anything: answered as a plain value,
/// with no future to allocate and poll (the nested query has thousands of these).
fn from_row<'a>(
    ctx: &ResolverContext<'a>,
    value: impl FnOnce(&Row) -> Option<Value>,
) -> FieldFuture<'a> {
    match ctx.parent_value.try_downcast_ref::<Row>() {
        Ok(row) => FieldFuture::from_value(value(row)),
        Err(err) => FieldFuture::new(async move { Err::<Option<Value>, _>(err) }),
    }
}

/// The GraphQL value of a cell.
pub fn cell_value(cell: &Cell, reference: Option<&str>) -> Value {
    match (cell, reference) {
        (Cell::Null, _) => Value::Null,
        (Cell::Uuid(id), Some(type_name)) => Value::String(ids::encode(type_name, *id)),
        (Cell::Json(json), _) => Value::from_json(json.clone()).unwrap_or(Value::Null),
        (Cell::Int(v), _) => Value::from(*v),
        (Cell::Bool(v), _) => Value::Boolean(*v),
        (other, _) => match other.to_json() {
            serde_json::Value::String(s) => Value::String(s),
            json => Value::from_json(json).unwrap_or(Value::Null),
        },
    }
}

/// Reads an input value for a column.
fn input_cell(shape: &ColumnShape, value: ValueAccessor<'_>) -> AppResult<Cell> {
    if value.is_null() {
        return Ok(Cell::Null);
    }
    let bad = |m: &str| AppError::input(shape.field.clone(), m.to_string());
    Ok(match shape.kind {
        ColumnKind::Uuid => {
            let text = value.string().map_err(|_| bad("expected an ID"))?;
            match &shape.reference {
                Some((type_name, _, _)) => Cell::Uuid(ids::expect(text, type_name, &shape.field)?),
                None => Cell::Uuid(uuid::Uuid::parse_str(text).map_err(|_| bad("not a UUID"))?),
            }
        }
        ColumnKind::Text if shape.enumeration.is_some() => Cell::Text(
            value
                .enum_name()
                .map_err(|_| bad("expected an enum value"))?
                .to_string(),
        ),
        ColumnKind::Text => Cell::Text(
            value
                .string()
                .map_err(|_| bad("expected a string"))?
                .to_string(),
        ),
        ColumnKind::Int => {
            let n = value.i64().map_err(|_| bad("expected an integer"))?;
            i32::try_from(n).map_err(|_| bad("out of range"))?;
            Cell::Int(n)
        }
        ColumnKind::Bool => Cell::Bool(value.boolean().map_err(|_| bad("expected a boolean"))?),
        ColumnKind::Json => Cell::Json(
            value
                .as_value()
                .clone()
                .into_json()
                .map_err(|_| bad("expected JSON"))?,
        ),
        ColumnKind::Timestamp => {
            let text = value
                .string()
                .map_err(|_| bad("expected an RFC 3339 date-time"))?;
            Cell::Timestamp(
                chrono::DateTime::parse_from_rfc3339(text)
                    .map_err(|_| bad("expected an RFC 3339 date-time"))?
                    .with_timezone(&chrono::Utc),
            )
        }
        ColumnKind::Bytes => return Err(bad("binary fields are not writable here")),
    })
}

fn input_values(
    shapes: &[ColumnShape],
    input: async_graphql::dynamic::ObjectAccessor<'_>,
) -> AppResult<HashMap<String, Cell>> {
    let mut values = HashMap::new();
    for shape in shapes {
        if let Some(value) = input.get(&shape.field) {
            values.insert(shape.column.clone(), input_cell(shape, value)?);
        }
    }
    Ok(values)
}

fn writable_input_shapes(shapes: &[ColumnShape]) -> Vec<ColumnShape> {
    shapes
        .iter()
        .filter(|s| !matches!(s.column.as_str(), "created_at" | "updated_at"))
        .cloned()
        .collect()
}

/// Connection results handed from a connection field to its sub-fields.
pub struct ConnectionData {
    rows: Vec<Row>,
    offset: u64,
    total: u64,
}

impl ConnectionData {
    /// A page of rows starting at `offset` out of `total`.
    pub fn new(rows: Vec<Row>, offset: u64, total: u64) -> Self {
        Self {
            rows,
            offset,
            total,
        }
    }
}

/// The opaque cursor of the row at `offset`.
pub(crate) fn cursor(offset: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("cursor:{offset}"))
}

/// The offset a cursor names; `field` names the argument in errors.
pub(crate) fn parse_cursor(text: &str, field: &str) -> AppResult<u64> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("cursor:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| AppError::input(field, "not a valid cursor"))
}

/// Relay pagination arguments → (offset, limit) given the total.
pub fn window(ctx: &ResolverContext<'_>, total: u64) -> AppResult<(u64, u64)> {
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
    let arg_cursor = |name: &str| -> AppResult<Option<u64>> {
        match ctx.args.get(name) {
            None => Ok(None),
            Some(v) if v.is_null() => Ok(None),
            Some(v) => Ok(Some(parse_cursor(
                v.string()
                    .map_err(|_| AppError::input(name, "not a valid cursor"))?,
                name,
            )?)),
        }
    };
    let paging = Paging {
        first: arg_u64("first")?,
        last: arg_u64("last")?,
        after: arg_cursor("after")?,
        before: arg_cursor("before")?,
    };
    Ok(paging.window(total))
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

/// A connection's paging arguments, checked: sizes and the offsets their cursors name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Paging {
    pub first: Option<u64>,
    pub last: Option<u64>,
    pub after: Option<u64>,
    pub before: Option<u64>,
}

impl Paging {
    /// The page as `(offset, limit)` among `total` rows.
    pub fn window(&self, total: u64) -> (u64, u64) {
        let mut start = self.after.map_or(0, |a| a + 1);
        let mut end = self.before.unwrap_or(total).min(total);
        if let Some(first) = self.first {
            end = end.min(start + first);
        }
        if let Some(last) = self.last {
            start = start.max(end.saturating_sub(last));
        }
        if self.first.is_none() && self.last.is_none() {
            end = end.min(start + DEFAULT_PAGE);
        }
        (start, end.saturating_sub(start))
    }

    /// Whether the window depends on the total (only `last` counts from the end; without it
    /// the page is the same however many rows follow).
    pub fn needs_total(&self) -> bool {
        self.last.is_some()
    }

    /// The page without knowing the total: what [`Paging::window`] gives for any total large
    /// enough (the statement's `LIMIT` then stops at the real end). Only when `!needs_total()`.
    pub fn open_window(&self) -> (u64, u64) {
        self.window(u64::MAX / 4)
    }
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
                (n > 0).then(|| cursor(c.offset)),
                (n > 0).then(|| cursor(c.offset + n - 1)),
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

fn connection_objects(class: &RowClass) -> (Object, Object) {
    let name = class.name;
    let edge = Object::new(format!("{name}Edge"))
        .field(Field::new(
            "cursor",
            TypeRef::named_nn(TypeRef::STRING),
            |ctx| {
                FieldFuture::new(async move {
                    let (offset, _) = ctx.parent_value.try_downcast_ref::<(u64, Row)>()?;
                    Ok(Some(Value::from(cursor(*offset))))
                })
            },
        ))
        .field(Field::new("node", TypeRef::named_nn(name), |ctx| {
            FieldFuture::new(async move {
                let (_, row) = ctx.parent_value.try_downcast_ref::<(u64, Row)>()?;
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
                    Ok(Some(FieldValue::list(c.rows.iter().enumerate().map(
                        |(i, row)| FieldValue::owned_any((c.offset + i as u64, row.clone())),
                    ))))
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

/// Whether a column of this kind can order a connection.
fn sortable(kind: ColumnKind) -> bool {
    matches!(
        kind,
        ColumnKind::Text | ColumnKind::Int | ColumnKind::Bool | ColumnKind::Timestamp
    )
}

/// The nested-list fields of a tenant-owned `class`: for each class referencing it, the field
/// name (`actions`; `children` for a tree; `xsByColumn` when one class refers twice), the
/// referring class and its column.
pub(crate) fn referrer_fields(
    registry: &Registry,
    class: &RowClass,
) -> Vec<(String, RowClass, String)> {
    let referrers: Vec<(RowClass, String)> = registry
        .referrers(&class.table)
        .filter(|(child, _)| access_of(child) != ClassAccess::Hidden)
        .map(|(child, r)| ((*child).clone(), r.column.clone()))
        .collect();
    referrers
        .iter()
        .map(|(child, column)| {
            let field_name = if child.table == class.table {
                "children".to_string()
            } else if referrers
                .iter()
                .filter(|(c, _)| c.table == child.table)
                .count()
                > 1
            {
                format!("{}By{}", camel(&child.table), pascal(column))
            } else {
                camel(&child.table)
            };
            (field_name, child.clone(), column.clone())
        })
        .collect()
}

/// The fields a connection's `filter` offers: every shown column but JSON and timestamps.
pub(crate) fn filter_shapes(shapes: &[ColumnShape]) -> Vec<ColumnShape> {
    shapes
        .iter()
        .filter(|s| !matches!(s.kind, ColumnKind::Json | ColumnKind::Timestamp))
        .cloned()
        .collect()
}

/// The `orderBy` enum's items: (item, column, descending), `ID_ASC` and `ID_DESC` first.
pub(crate) fn order_items(shapes: &[ColumnShape]) -> Vec<(String, String, bool)> {
    let mut items: Vec<(String, String, bool)> = vec![
        ("ID_ASC".into(), "id".into(), false),
        ("ID_DESC".into(), "id".into(), true),
    ];
    for s in shapes.iter().filter(|s| sortable(s.kind)) {
        let upper = s.column.to_uppercase();
        items.push((format!("{upper}_ASC"), s.column.clone(), false));
        items.push((format!("{upper}_DESC"), s.column.clone(), true));
    }
    items
}

/// The fields a connection's `where` offers: every shown column but JSON.
fn where_shapes(shapes: &[ColumnShape]) -> Vec<ColumnShape> {
    shapes
        .iter()
        .filter(|s| s.kind != ColumnKind::Json)
        .cloned()
        .collect()
}

/// The operator input type of a column: `StringOperators`, `RoleOperators`, …
fn operators_type(shape: &ColumnShape) -> String {
    format!("{}Operators", scalar_type(shape))
}

/// The operator input types: one per scalar a `where` field can have, one per enum.
fn operator_inputs() -> Vec<InputObject> {
    let ops = |scalar: &str, ordered: bool, text: bool| {
        let mut input = InputObject::new(format!("{scalar}Operators")).description(format!(
            "Conditions on a {scalar} field; all given must hold. A null operand is ignored."
        ));
        for op in ["eq", "ne"] {
            input = input.field(InputValue::new(op, TypeRef::named(scalar)));
        }
        for op in ["in", "notIn"] {
            input = input.field(InputValue::new(op, TypeRef::named_nn_list(scalar)));
        }
        if ordered {
            for op in ["lt", "lte", "gt", "gte"] {
                input = input.field(InputValue::new(op, TypeRef::named(scalar)));
            }
        }
        if text {
            for op in ["startsWith", "contains", "containsInsensitive"] {
                input = input.field(InputValue::new(op, TypeRef::named(TypeRef::STRING)));
            }
        }
        input.field(InputValue::new("isNull", TypeRef::named(TypeRef::BOOLEAN)))
    };
    let mut inputs = vec![
        ops(TypeRef::ID, false, false),
        ops(TypeRef::STRING, true, true),
        ops(TypeRef::INT, true, false),
        ops(TypeRef::BOOLEAN, false, false),
        ops("DateTime", true, false),
    ];
    for def in enums::ALL {
        inputs.push(ops(def.name, false, false));
    }
    inputs
}

/// The `where` input of a class.
fn where_input(name: &str, shapes: &[ColumnShape]) -> InputObject {
    let where_name = format!("{name}Where");
    let mut input = InputObject::new(&where_name)
        .description(format!(
            "Conditions on {name} fields with operators; every given field must hold."
        ))
        .field(InputValue::new("and", TypeRef::named_nn_list(&where_name)))
        .field(InputValue::new("or", TypeRef::named_nn_list(&where_name)))
        .field(InputValue::new("not", TypeRef::named(&where_name)));
    for s in shapes {
        input = input.field(InputValue::new(
            s.field.clone(),
            TypeRef::named(operators_type(s)),
        ));
    }
    input
}

/// Reads a `where` argument.
fn where_of(
    input: async_graphql::dynamic::ObjectAccessor<'_>,
    shapes: &[ColumnShape],
) -> async_graphql::Result<access::Where> {
    use access::{CompareOp, TextOp, Where};
    let mut all = Vec::new();
    for (name, value) in input.iter() {
        if value.is_null() {
            continue;
        }
        match name.as_str() {
            "and" | "or" => {
                let items = value
                    .list()?
                    .iter()
                    .map(|v| where_of(v.object()?, shapes))
                    .collect::<async_graphql::Result<Vec<_>>>()?;
                all.push(if name.as_str() == "and" {
                    Where::All(items)
                } else {
                    Where::Any(items)
                });
            }
            "not" => all.push(Where::Not(Box::new(where_of(value.object()?, shapes)?))),
            field => {
                let Some(shape) = shapes.iter().find(|s| s.field == field) else {
                    continue;
                };
                let column = shape.column.clone();
                for (op, operand) in value.object()?.iter() {
                    if operand.is_null() {
                        continue;
                    }
                    let compare = |op, operand| -> async_graphql::Result<Where> {
                        Ok(Where::Compare {
                            column: column.clone(),
                            op,
                            value: input_cell(shape, operand)?,
                        })
                    };
                    let text = |op, operand: ValueAccessor<'_>| -> async_graphql::Result<Where> {
                        Ok(Where::Text {
                            column: column.clone(),
                            op,
                            value: operand.string()?.to_string(),
                        })
                    };
                    all.push(match op.as_str() {
                        "eq" => compare(CompareOp::Eq, operand)?,
                        "ne" => compare(CompareOp::Ne, operand)?,
                        "lt" => compare(CompareOp::Lt, operand)?,
                        "lte" => compare(CompareOp::Lte, operand)?,
                        "gt" => compare(CompareOp::Gt, operand)?,
                        "gte" => compare(CompareOp::Gte, operand)?,
                        "in" | "notIn" => Where::In {
                            column: column.clone(),
                            values: operand
                                .list()?
                                .iter()
                                .map(|v| input_cell(shape, v))
                                .collect::<AppResult<Vec<_>>>()?,
                            negated: op.as_str() == "notIn",
                        },
                        "startsWith" => text(TextOp::StartsWith, operand)?,
                        "contains" => text(TextOp::Contains, operand)?,
                        "containsInsensitive" => text(TextOp::ContainsInsensitive, operand)?,
                        "isNull" => Where::Null {
                            column: column.clone(),
                            is_null: operand.boolean()?,
                        },
                        _ => continue,
                    });
                }
            }
        }
    }
    Ok(Where::All(all))
}

/// The `filter` argument: an equality filter on the given fields.
fn filter_arg(ctx: &ResolverContext<'_>, shapes: &[ColumnShape]) -> async_graphql::Result<Filter> {
    let mut filter: Filter = Vec::new();
    if let Some(input) = ctx.args.get("filter").filter(|v| !v.is_null()) {
        let input = input.object()?;
        for s in shapes {
            if let Some(v) = input.get(&s.field) {
                filter.push((s.column.clone(), input_cell(s, v)?));
            }
        }
    }
    Ok(filter)
}

/// The `orderBy` argument: (column, descending), when given.
fn order_arg(
    ctx: &ResolverContext<'_>,
    items: &[(String, String, bool)],
) -> async_graphql::Result<Option<(String, bool)>> {
    Ok(match ctx.args.get("orderBy") {
        Some(v) if !v.is_null() => {
            let item = v.enum_name()?;
            items
                .iter()
                .find(|(n, _, _)| n == item)
                .map(|(_, c, d)| (c.clone(), *d))
        }
        _ => None,
    })
}

/// A nested list's arguments: `first`, `filter`, `orderBy`.
fn nested_args(
    ctx: &ResolverContext<'_>,
    shapes: &[ColumnShape],
    items: &[(String, String, bool)],
) -> async_graphql::Result<access::NestedArgs> {
    let first = match ctx.args.get("first") {
        Some(v) if !v.is_null() => Some(page_size(
            "first",
            v.i64()
                .map_err(|_| AppError::input("first", "expected an integer"))?,
        )?),
        _ => None,
    };
    Ok(access::NestedArgs {
        filter: filter_arg(ctx, shapes)?,
        order_by: order_arg(ctx, items)?,
        first,
    })
}

/// Builds the surface of every class the generic layer exposes.
pub fn build(registry: &Registry) -> ClassSurface {
    let mut surface = ClassSurface {
        objects: vec![page_info_object()],
        inputs: operator_inputs(),
        enums: vec![Enum::new("OrderDirection").item("ASC").item("DESC")],
        query_fields: Vec::new(),
        mutation_fields: Vec::new(),
    };
    for class in registry.classes() {
        let access = access_of(class);
        if access == ClassAccess::Hidden {
            continue;
        }
        build_class(registry, class, access, &mut surface);
    }
    surface
}

fn build_class(
    registry: &Registry,
    class: &RowClass,
    access: ClassAccess,
    surface: &mut ClassSurface,
) {
    let class = Arc::new(class.clone());
    let name = class.name;
    let shapes = Arc::new(shapes(registry, &class));

    // The object type.
    let mut object = Object::new(name).implement("Node");
    object = object.field(Field::new(
        "id",
        TypeRef::named_nn(TypeRef::ID),
        move |ctx| from_row(&ctx, |row| Some(Value::from(ids::encode(name, row.id())))),
    ));
    if class.tenant_owned {
        object = object.field(
            Field::new("tenantId", TypeRef::named(TypeRef::ID), |ctx| {
                from_row(&ctx, |row| {
                    row.tenant_id().map(|t| Value::from(t.to_string()))
                })
            })
            .description("The owning tenant's id."),
        );
    }
    for shape in shapes.iter() {
        let ty = if shape.nullable {
            TypeRef::named(scalar_type(shape))
        } else {
            TypeRef::named_nn(scalar_type(shape))
        };
        let s = shape.clone();
        object = object.field(Field::new(shape.field.clone(), ty, move |ctx| {
            from_row(&ctx, |row| {
                let cell = row.get(&s.column);
                if s.enumeration.is_some() {
                    // A stored value outside the enum fails this field (INTERNAL, with its path).
                    return cell
                        .as_text()
                        .map(|v| Value::Enum(async_graphql::Name::new(v)));
                }
                let reference = s.reference.as_ref().map(|(t, _, _)| t.as_str());
                Some(cell_value(cell, reference))
            })
        }));
        if let Some((target_name, target_table, object_field)) = &shape.reference {
            let column: Arc<str> = shape.column.clone().into();
            let target_table: Arc<str> = target_table.clone().into();
            let ty = if shape.nullable {
                TypeRef::named(target_name.clone())
            } else {
                TypeRef::named_nn(target_name.clone())
            };
            object = object.field(Field::new(object_field.clone(), ty, move |ctx| {
                let column = column.clone();
                let target_table = target_table.clone();
                FieldFuture::new(async move {
                    let row = ctx.parent_value.try_downcast_ref::<Row>()?;
                    let Some(id) = row.get(&column).as_uuid() else {
                        return Ok(None);
                    };
                    let loader = ctx.data::<DataLoader<RowsLoader>>()?;
                    let key = RowsKey::plain(target_table, "id".into(), id);
                    let rows = loader.load_one(key).await.map_err(|e| (*e).clone())?;
                    Ok(rows
                        .and_then(|r| r.first().cloned())
                        .map(FieldValue::owned_any))
                })
            }));
        }
    }
    // Nested lists: classes referencing this one (tenant-owned parents only).
    if class.tenant_owned {
        for (field_name, child, column) in referrer_fields(registry, &class) {
            let child_table: Arc<str> = child.table.clone().into();
            let column: Arc<str> = column.clone().into();
            let child_shapes = self::shapes(registry, &child);
            let child_filter = Arc::new(filter_shapes(&child_shapes));
            let child_order = Arc::new(order_items(&child_shapes));
            let field = Field::new(
                field_name,
                TypeRef::named_nn_list_nn(child.name),
                move |ctx| {
                    let child_table = child_table.clone();
                    let column = column.clone();
                    let (filter_shapes, order_columns) =
                        (child_filter.clone(), child_order.clone());
                    FieldFuture::new(async move {
                        let row = ctx.parent_value.try_downcast_ref::<Row>()?;
                        let args = nested_args(&ctx, &filter_shapes, &order_columns)?;
                        let loader = ctx.data::<DataLoader<RowsLoader>>()?;
                        let key = RowsKey {
                            table: child_table,
                            column,
                            args: (args != access::NestedArgs::default())
                                .then(|| Arc::new(ArgsKey::new(args))),
                            id: row.id(),
                        };
                        let rows = loader
                            .load_one(key)
                            .await
                            .map_err(|e| (*e).clone())?
                            .unwrap_or_default();
                        Ok(Some(FieldValue::list(
                            rows.iter().map(|r| FieldValue::owned_any(r.clone())),
                        )))
                    })
                },
            )
            .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)))
            .argument(InputValue::new(
                "filter",
                TypeRef::named(format!("{}Filter", child.name)),
            ))
            .argument(InputValue::new(
                "orderBy",
                TypeRef::named(format!("{}OrderBy", child.name)),
            ))
            .description(format!(
                "The {} rows that belong to this one (at most `first`, filtered, in `orderBy` \
                 order, then by id), fetched for every parent in one statement.",
                child.name
            ));
            object = object.field(field);
        }
    }
    surface.objects.push(object);
    let (connection, edge) = connection_objects(&class);
    surface.objects.push(connection);
    surface.objects.push(edge);

    // Filter and order.
    let filter_name = format!("{name}Filter");
    let mut filter = InputObject::new(&filter_name).description(format!(
        "Equality filters on {name} fields; all given fields must match."
    ));
    let filter_shapes = filter_shapes(&shapes);
    for s in &filter_shapes {
        filter = filter.field(InputValue::new(
            s.field.clone(),
            TypeRef::named(scalar_type(s)),
        ));
    }
    surface.inputs.push(filter);
    let order_name = format!("{name}OrderBy");
    let order_columns = order_items(&shapes);
    let mut order = Enum::new(&order_name);
    for (item, _, _) in &order_columns {
        order = order.item(item.clone());
    }
    surface.enums.push(order);
    let order_columns = Arc::new(order_columns);

    if access == ClassAccess::Catalog {
        return;
    }
    // Root query fields.
    let list_class = class.clone();
    let filter_shapes = Arc::new(filter_shapes);
    let where_shapes = Arc::new(where_shapes(&shapes));
    surface.inputs.push(where_input(name, &where_shapes));
    let list_field = Field::new(
        plural_field(&class),
        TypeRef::named_nn(format!("{name}Connection")),
        move |ctx| {
            let class = list_class.clone();
            let filter_shapes = filter_shapes.clone();
            let where_shapes = where_shapes.clone();
            let order_columns = order_columns.clone();
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                let filter = filter_arg(&ctx, &filter_shapes)?;
                let where_ = match ctx.args.get("where").filter(|v| !v.is_null()) {
                    Some(v) => Some(where_of(v.object()?, &where_shapes)?),
                    None => None,
                };
                let (order_by, descending) =
                    order_arg(&ctx, &order_columns)?.unwrap_or_else(|| ("id".into(), false));
                // The count turns `last`/`before` into an offset; count and page share one
                // transaction.
                let order = Page {
                    offset: 0,
                    limit: 0,
                    order_by,
                    descending,
                };
                let (rows, offset, total) = access::list_window(
                    &state.scoped_db,
                    req,
                    &class,
                    &filter,
                    where_.as_ref(),
                    &order,
                    |total| window(&ctx, total),
                )
                .await?;
                Ok(Some(FieldValue::owned_any(ConnectionData {
                    rows,
                    offset,
                    total,
                })))
            })
        },
    )
    .argument(InputValue::new("filter", TypeRef::named(filter_name)))
    .argument(
        InputValue::new("where", TypeRef::named(format!("{name}Where"))).description(
            "Conditions with operators, combined with `and`, `or` and `not`; together with \
             `filter`, both must hold.",
        ),
    )
    .argument(InputValue::new("orderBy", TypeRef::named(order_name)));
    surface.query_fields.push(
        pagination_args(list_field).description(format!("{name} rows visible to the caller.")),
    );
    let get_class = class.clone();
    surface.query_fields.push(
        Field::new(singular_field(&class), TypeRef::named(name), move |ctx| {
            let class = get_class.clone();
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                let id = ids::expect(ctx.args.try_get("id")?.string()?, class.name, "id")?;
                let rows = access::by_ids(&state.scoped_db, req, &class, &[id]).await?;
                Ok(rows.into_iter().next().map(FieldValue::owned_any))
            })
        })
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .description(format!(
            "One {name} by id; null when it is not visible to the caller."
        )),
    );

    if matches!(
        access,
        ClassAccess::ReadOnly | ClassAccess::AdminRead | ClassAccess::AuditLog
    ) {
        return;
    }
    // Mutations.
    let input_shapes = Arc::new(writable_input_shapes(&shapes));
    let mut create_input = InputObject::new(format!("Create{name}Input"));
    let mut update_input = InputObject::new(format!("Update{name}Input"));
    for s in input_shapes.iter() {
        let has_default = Cell::default_for(s.kind, &s.column).is_some();
        let ty = if s.nullable || has_default {
            TypeRef::named(scalar_type(s))
        } else {
            TypeRef::named_nn(scalar_type(s))
        };
        create_input = create_input.field(InputValue::new(s.field.clone(), ty));
        update_input = update_input.field(InputValue::new(
            s.field.clone(),
            TypeRef::named(scalar_type(s)),
        ));
    }
    surface.inputs.push(create_input);
    surface.inputs.push(update_input);

    let (c_class, c_shapes) = (class.clone(), input_shapes.clone());
    surface.mutation_fields.push(
        Field::new(
            format!("create{name}"),
            TypeRef::named_nn(name),
            move |ctx| {
                let (class, shapes) = (c_class.clone(), c_shapes.clone());
                FieldFuture::new(async move {
                    let state = app(&ctx)?;
                    let req = request(&ctx)?;
                    let values = input_values(&shapes, ctx.args.try_get("input")?.object()?)?;
                    let row = access::create(&state.scoped_db, req, &class, values).await?;
                    super::upgrades::note_template_edit(state, req, &class).await;
                    Ok(Some(FieldValue::owned_any(row)))
                })
            },
        )
        .argument(InputValue::new(
            "input",
            TypeRef::named_nn(format!("Create{name}Input")),
        ))
        .description(creation_rule(&class)),
    );
    let (u_class, u_shapes) = (class.clone(), input_shapes.clone());
    surface.mutation_fields.push(
        Field::new(
            format!("update{name}"),
            TypeRef::named_nn(name),
            move |ctx| {
                let (class, shapes) = (u_class.clone(), u_shapes.clone());
                FieldFuture::new(async move {
                    let state = app(&ctx)?;
                    let req = request(&ctx)?;
                    let id = ids::expect(ctx.args.try_get("id")?.string()?, class.name, "id")?;
                    let values = input_values(&shapes, ctx.args.try_get("input")?.object()?)?;
                    let row = access::update(&state.scoped_db, req, &class, id, values).await?;
                    super::upgrades::note_template_edit(state, req, &class).await;
                    Ok(Some(FieldValue::owned_any(row)))
                })
            },
        )
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new(
            "input",
            TypeRef::named_nn(format!("Update{name}Input")),
        ))
        .description(format!("Changes the given fields of a {name}.")),
    );
    let d_class = class.clone();
    surface.mutation_fields.push(
        Field::new(
            format!("delete{name}"),
            TypeRef::named_nn(TypeRef::ID),
            move |ctx| {
                let class = d_class.clone();
                FieldFuture::new(async move {
                    let state = app(&ctx)?;
                    let req = request(&ctx)?;
                    let global = ctx.args.try_get("id")?.string()?.to_string();
                    let id = ids::expect(&global, class.name, "id")?;
                    access::delete(&state.scoped_db, req, &class, id).await?;
                    super::upgrades::note_template_edit(state, req, &class).await;
                    Ok(Some(Value::from(global)))
                })
            },
        )
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .description(format!(
            "Deletes {} {name} (and the rows that belong to it); returns its id.",
            article(name)
        )),
    );
}

fn creation_rule(class: &RowClass) -> String {
    let (place, who) = match (class.plane, access_of(class)) {
        (Plane::Vocabulary, _) => (
            "the shared vocabulary",
            "callers with the vocabulary:author grant",
        ),
        (_, ClassAccess::Managed) => ("the caller's tenant", "Super Users and above"),
        _ => (
            "the caller's tenant",
            "Contributors and above (on the template: template:author)",
        ),
    };
    format!(
        "Creates {} {} in {place}; allowed for {who}.",
        article(class.name),
        class.name
    )
}

/// `a` or `an`, for generated descriptions.
fn article(name: &str) -> &'static str {
    if name.starts_with(['A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    }
}

/// Resolves `node(id)` for any class of the generic surface.
pub async fn load_node(
    state: &AppState,
    req: &RequestContext,
    global: &str,
) -> AppResult<Option<(Row, &'static str)>> {
    let Some((type_name, id)) = ids::decode(global) else {
        return Err(AppError::input("id", "not a valid id"));
    };
    let Some(class) = state.registry.by_name(&type_name) else {
        return Ok(None);
    };
    if access_of(class) == ClassAccess::Hidden {
        return Ok(None);
    }
    let rows = access::by_ids(&state.scoped_db, req, class, &[id]).await?;
    Ok(rows.into_iter().next().map(|r| (r, class.name)))
}

#[cfg(test)]
mod tests {
    use super::{DEFAULT_PAGE, Paging, URL_SAFE_NO_PAD, cursor, parse_cursor};
    use crate::error::AppError;
    use base64::Engine;

    #[test]
    fn cursors_round_trip_their_offset() {
        for offset in [0, 1, 99, 1_000, u64::MAX] {
            assert_eq!(parse_cursor(&cursor(offset), "after").ok(), Some(offset));
        }
        // Opaque, URL-safe, unpadded.
        let text = cursor(42);
        assert!(!text.contains("42") && !text.contains('=') && !text.contains('+'));
    }

    #[test]
    fn a_cursor_that_is_not_one_is_bad_input_on_its_argument() {
        let other = URL_SAFE_NO_PAD.encode("offset:3");
        let negative = URL_SAFE_NO_PAD.encode("cursor:-1");
        for text in ["", "not base64!", &other, &negative] {
            match parse_cursor(text, "before") {
                Err(AppError::BadUserInput { field, .. }) => assert_eq!(field, "before", "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn paging_windows() {
        let page = |first, last, after, before| Paging {
            first,
            last,
            after,
            before,
        };
        // Neither size: the default page from the start (or after the cursor).
        assert_eq!(page(None, None, None, None).window(500), (0, DEFAULT_PAGE));
        assert_eq!(page(None, None, Some(9), None).window(15), (10, 5));
        assert_eq!(page(Some(3), None, Some(1), None).window(10), (2, 3));
        // `last` counts back from the end, or from `before`.
        assert_eq!(page(None, Some(2), None, None).window(10), (8, 2));
        assert_eq!(page(None, Some(2), None, Some(5)).window(10), (3, 2));
        assert_eq!(page(Some(0), None, None, None).window(10), (0, 0));
        // Past the end: an empty page at the cursor.
        assert_eq!(page(Some(5), None, Some(20), None).window(10), (21, 0));
        // Without `last`, the page does not depend on the total.
        let open = page(Some(4), None, Some(2), None);
        assert!(!open.needs_total());
        assert_eq!(open.open_window(), open.window(1_000));
        assert!(page(None, Some(1), None, None).needs_total());
    }
}
