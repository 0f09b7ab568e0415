//! Reading the arguments of the generated surface: column values of inputs, a connection's
//! `filter`, `where` (and the operator input types it uses) and `orderBy`, a nested list's
//! `first`/`filter`/`orderBy`.

use super::*;

/// Reads an input value for a column.
pub(super) fn input_cell(shape: &ColumnShape, value: ValueAccessor<'_>) -> AppResult<Cell> {
    if value.is_null() {
        return Ok(Cell::Null);
    }
    let bad = |m: &str| AppError::input(shape.field.clone(), m.to_string());
    Ok(match shape.kind {
        ColumnKind::Uuid => {
            let text = value.string().map_err(|_| bad("expected an ID"))?;
            match &shape.id_type {
                Some(type_name) => {
                    Cell::Uuid(ids::expect_reference(text, type_name, &shape.field)?)
                }
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

pub(super) fn input_values(
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

pub(super) fn writable_input_shapes(shapes: &[ColumnShape]) -> Vec<ColumnShape> {
    shapes
        .iter()
        .filter(|s| !matches!(s.column.as_str(), "created_at" | "updated_at"))
        .cloned()
        .collect()
}

/// The fields a connection's `where` offers: every shown column but JSON.
pub(super) fn where_shapes(shapes: &[ColumnShape]) -> Vec<ColumnShape> {
    shapes
        .iter()
        .filter(|s| s.kind != ColumnKind::Json)
        .cloned()
        .collect()
}

/// The operator input type of a column: `StringOperators`, `RoleOperators`, …
pub(super) fn operators_type(shape: &ColumnShape) -> String {
    format!("{}Operators", scalar_type(shape))
}

/// The operator input types: one per scalar a `where` field can have, one per enum.
pub(super) fn operator_inputs() -> Vec<InputObject> {
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
pub(super) fn where_input(name: &str, shapes: &[ColumnShape]) -> InputObject {
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
pub(super) fn where_of(
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
pub(super) fn filter_arg(
    ctx: &ResolverContext<'_>,
    shapes: &[ColumnShape],
) -> async_graphql::Result<Filter> {
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

/// The `orderBy` argument (a list of items, or one item): the order it gives, then by id.
pub(super) fn order_arg(
    ctx: &ResolverContext<'_>,
    items: &[(String, String, bool)],
) -> async_graphql::Result<access::SortKey> {
    let mut order = Vec::new();
    if let Some(v) = ctx.args.get("orderBy").filter(|v| !v.is_null()) {
        let names: Vec<String> = match v.list() {
            Ok(list) => list
                .iter()
                .map(|item| item.enum_name().map(str::to_string))
                .collect::<async_graphql::Result<_>>()?,
            Err(_) => vec![v.enum_name()?.to_string()],
        };
        for name in names {
            let (_, column, descending) = items
                .iter()
                .find(|(n, _, _)| *n == name)
                .ok_or_else(|| AppError::input("orderBy", "not an order of this list"))?;
            order.push((column.clone(), *descending));
        }
    }
    Ok(access::SortKey::new(order))
}

/// A nested list's arguments: `first`, `filter`, `orderBy`.
pub(super) fn nested_args(
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
