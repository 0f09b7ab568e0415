//! The GraphQL surface of every row class, generated from the registry.
//!
//! For a class `Application` stored in `applications`: the object type (implementing `Node`),
//! `applications(first, after, last, before, filter, where, orderBy): ApplicationConnection!`,
//! `application(id)`, and — when the class is writable — `createApplication(input)`,
//! `updateApplication(id, input)`, `deleteApplication(id)`. References become `xxxId: ID` plus
//! the referenced object; classes pointing at this one become nested lists, loaded in batches.
//! A class added to the registry gets all of this with no code here.
//!
//! Arguments are read in [`arguments`], connections and paging live in [`paging`]. This file
//! stays over 600 lines for one reason: `build_class` builds a class's whole surface in one
//! place, so each field's type and its resolver read side by side.

use std::{collections::HashMap, sync::Arc};

use async_graphql::{
    Value,
    dataloader::DataLoader,
    dynamic::{
        Enum, Field, FieldFuture, FieldValue, InputObject, InputValue, Object, ResolverContext,
        TypeRef, ValueAccessor,
    },
};

use crate::{
    access::{self, ClassAccess, Filter, access_of},
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

mod arguments;
mod paging;

use arguments::{
    filter_arg, input_values, nested_args, operator_inputs, order_arg, where_input, where_of,
    where_shapes, writable_input_shapes,
};
use paging::connection_objects;
pub(crate) use paging::page_size;
pub use paging::{
    ConnectionData, CursorSpec, order_of, page_info_object, page_rows, pagination_args, window_arg,
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
    // Admins only, hand-written (`graphql/operations/catalog.rs`, `Tenant.database`).
    ("tenants", "database"),
    // Admins only, hand-written (`graphql/operations/moves.rs`, `ForkRun.fromDatabase`).
    ("fork_runs", "from_database"),
    ("fork_runs", "to_database"),
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
    /// For any reference column, the type whose global id the value is (`User` for a user,
    /// whose object fields are hand-written in `graphql/users.rs`).
    pub(crate) id_type: Option<String>,
}

/// The columns of `class` the generic surface shows, as GraphQL fields.
pub(crate) fn shapes(registry: &Registry, class: &RowClass) -> Vec<ColumnShape> {
    class
        .columns
        .iter()
        .filter(|c| c.name != "id" && c.name != "tenant_id" && c.kind != ColumnKind::Bytes)
        .filter(|c| !TYPED_JSON_COLUMNS.contains(&(class.table.as_str(), c.name.as_str())))
        .map(|c| {
            let target = class
                .references
                .iter()
                .find(|r| r.column == c.name)
                .and_then(|r| registry.by_table(&r.table));
            let id_type = target.map(|t| t.name.to_string());
            let reference = target
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
                id_type,
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
                    row.tenant_id()
                        .map(|t| Value::from(ids::encode("Tenant", t)))
                })
            })
            .description("The owning tenant's id (a global id, like `Tenant.id`)."),
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
                Some(cell_value(cell, s.id_type.as_deref()))
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
                TypeRef::named_nn_list(format!("{}OrderBy", child.name)),
            ))
            .description(format!(
                "The {} rows that belong to this one (at most `first`, filtered, in `orderBy` \
                 order: by each item in turn, then by id; null after every value), fetched for \
                 every parent in one statement.",
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

    // The catalog's root fields and the audit log's (`graphql/audit/log.rs`) are hand-written.
    if matches!(access, ClassAccess::Catalog | ClassAccess::AuditLog) {
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
                let key = order_arg(&ctx, &order_columns)?;
                let window = window_arg(&ctx, &class, &key)?;
                let (rows, offset, total) = access::list_window(
                    &state.scoped_db,
                    req,
                    &class,
                    &filter,
                    where_.as_ref(),
                    &key,
                    &window,
                    DEFAULT_PAGE,
                )
                .await?;
                let spec = Arc::new(CursorSpec {
                    table: class.table.clone(),
                    key,
                });
                Ok(Some(FieldValue::owned_any(ConnectionData::new(
                    rows, offset, total, spec,
                ))))
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
    .argument(
        InputValue::new("orderBy", TypeRef::named_nn_list(order_name)).description(
            "Ordered by each item in turn, then by id (in the first item's direction); null \
             after every value (ASC NULLS LAST, DESC NULLS FIRST).",
        ),
    );
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
