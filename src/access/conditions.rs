//! The conditions the scoped layer adds to a read, apart from the tenant's: a connection's
//! equality `filter` and its `where` tree (operators, `and`/`or`/`not`), and a nested list's
//! arguments (`first`, `filter`, `orderBy` per parent, still one statement).

use sea_orm::{
    DbBackend,
    sea_query::{Alias, Condition, Expr, ExprTrait, Query, SelectStatement},
};

use super::{SortKey, col, kind_of};
use crate::{registry::RowClass, rows::Cell};

/// An equality filter on some columns.
pub type Filter = Vec<(String, Cell)>;

/// A connection's `where` argument: conditions on columns, combined with `and`, `or`, `not`.
#[derive(Clone, Debug, PartialEq)]
pub enum Where {
    /// Every condition holds (an empty list holds).
    All(Vec<Where>),
    /// At least one condition holds (an empty list does not).
    Any(Vec<Where>),
    Not(Box<Where>),
    /// `column <op> value`; a null column never compares true.
    Compare {
        column: String,
        op: CompareOp,
        value: Cell,
    },
    /// `column IN (values)`, or `NOT IN`.
    In {
        column: String,
        values: Vec<Cell>,
        negated: bool,
    },
    /// `column IS NULL`, or `IS NOT NULL`.
    Null {
        column: String,
        is_null: bool,
    },
    /// A text match; `value` is matched literally (no wildcards).
    Text {
        column: String,
        op: TextOp,
        value: String,
    },
}

/// A comparison of [`Where::Compare`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
}

/// A text match of [`Where::Text`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TextOp {
    /// Case-sensitive prefix.
    StartsWith,
    /// Case-sensitive substring.
    Contains,
    /// Substring, ignoring case (ASCII letters on SQLite).
    ContainsInsensitive,
}

/// `text` as a `LIKE` pattern that matches it literally (`\` escapes).
fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The SQL condition of `w` on `class`'s table.
pub(super) fn where_condition(class: &RowClass, backend: DbBackend, w: &Where) -> Condition {
    match w {
        Where::All(items) => items.iter().fold(Condition::all(), |c, i| {
            c.add(where_condition(class, backend, i))
        }),
        Where::Any(items) => items.iter().fold(Condition::any(), |c, i| {
            c.add(where_condition(class, backend, i))
        }),
        Where::Not(inner) => Condition::all()
            .add(where_condition(class, backend, inner))
            .not(),
        Where::Compare { column, op, value } => {
            let v = value.to_value(kind_of(class, column));
            let c = col(column);
            Condition::all().add(match op {
                CompareOp::Eq => c.eq(v),
                CompareOp::Ne => c.ne(v),
                CompareOp::Lt => c.lt(v),
                CompareOp::Lte => c.lte(v),
                CompareOp::Gt => c.gt(v),
                CompareOp::Gte => c.gte(v),
            })
        }
        Where::In {
            column,
            values,
            negated,
        } => {
            let kind = kind_of(class, column);
            let values: Vec<sea_orm::Value> = values.iter().map(|v| v.to_value(kind)).collect();
            Condition::all().add(if *negated {
                col(column).is_not_in(values)
            } else {
                col(column).is_in(values)
            })
        }
        Where::Null { column, is_null } => Condition::all().add(if *is_null {
            col(column).is_null()
        } else {
            col(column).is_not_null()
        }),
        Where::Text { column, op, value } => {
            let quoted = format!("\"{}\"", column.replace('"', ""));
            let pattern = like_literal(value);
            let expr = match (op, backend) {
                (TextOp::StartsWith, DbBackend::Postgres) => Expr::cust_with_values(
                    format!("{quoted} LIKE $1 ESCAPE '\\'"),
                    [format!("{pattern}%")],
                ),
                (TextOp::Contains, DbBackend::Postgres) => Expr::cust_with_values(
                    format!("{quoted} LIKE $1 ESCAPE '\\'"),
                    [format!("%{pattern}%")],
                ),
                (TextOp::ContainsInsensitive, DbBackend::Postgres) => Expr::cust_with_values(
                    format!("{quoted} ILIKE $1 ESCAPE '\\'"),
                    [format!("%{pattern}%")],
                ),
                (TextOp::StartsWith, _) => Expr::cust_with_values(
                    format!("substr({quoted}, 1, length(?)) = ?"),
                    [value.clone(), value.clone()],
                ),
                (TextOp::Contains, _) => {
                    Expr::cust_with_values(format!("instr({quoted}, ?) > 0"), [value.clone()])
                }
                (TextOp::ContainsInsensitive, _) => Expr::cust_with_values(
                    format!("{quoted} LIKE ? ESCAPE '\\'"),
                    [format!("%{pattern}%")],
                ),
            };
            Condition::all().add(expr)
        }
    }
}

/// Adds `filter`'s conditions to `select`.
pub(crate) fn apply_filter(class: &RowClass, select: &mut SelectStatement, filter: &Filter) {
    for (column, value) in filter {
        match value {
            Cell::Null => select.and_where(col(column).is_null()),
            v => select.and_where(col(column).eq(v.to_value(kind_of(class, column)))),
        };
    }
}

/// The arguments of a nested list (`Application.actions(first:, filter:, orderBy:)`): an
/// equality filter, an order, and at most `first` rows per parent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NestedArgs {
    pub filter: Filter,
    /// The order (`orderBy` items, then id).
    pub order_by: SortKey,
    pub first: Option<u64>,
}

/// Finishes the statement of a nested list: `select` (already scoped and restricted to the
/// parents through `link`) gets `args`' filter and order; with `first`, a window numbers each
/// parent's rows in that order and only the first `first` are kept, still one statement for
/// every parent. `columns` are the columns `select` reads, in order.
pub(crate) fn nested_select(
    class: &RowClass,
    mut select: SelectStatement,
    link: &str,
    columns: &[&str],
    args: &NestedArgs,
) -> SelectStatement {
    apply_filter(class, &mut select, &args.filter);
    let Some(first) = args.first else {
        args.order_by.order(class, &mut select, false);
        return select;
    };
    select.expr_as(
        Expr::cust(format!(
            "ROW_NUMBER() OVER (PARTITION BY \"{link}\" ORDER BY {})",
            args.order_by.order_sql(class)
        )),
        Alias::new("forklift_rank"),
    );
    let mut outer = Query::select();
    outer
        .columns(columns.iter().map(|c| Alias::new(*c)))
        .from_subquery(select, Alias::new("ranked"))
        .and_where(col("forklift_rank").lte(first));
    args.order_by.order(class, &mut outer, false);
    outer
}
