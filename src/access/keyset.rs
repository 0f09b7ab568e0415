//! Ordering by several columns and keyset cursors (`docs/api.md`, "Ordering and cursors").
//!
//! A connection is ordered by its `orderBy` columns in turn, then by `id` (the tie-breaker, in
//! the direction of the first column). `NULL` sorts after every value: `ASC NULLS LAST`,
//! `DESC NULLS FIRST`, written out on both databases. A cursor holds the sort key of its row
//! (the values of those columns), so `after`/`before` name a place in the order that rows
//! inserted or deleted between two requests do not move: a page continues after its last row,
//! whatever happened before it.

use std::cmp::Ordering;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::sea_query::{Alias, Condition, ExprTrait, NullOrdering, Order, SelectStatement};

use super::{col, kind_of};
use crate::{
    error::{AppError, AppResult},
    registry::{ColumnKind, RowClass},
    rows::Cell,
};

/// The version written into every cursor; a cursor of another version is refused.
const CURSOR_VERSION: u64 = 1;

/// The order of a list: `(column, descending)` pairs, the last always `id`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SortKey {
    columns: Vec<(String, bool)>,
}

impl Default for SortKey {
    fn default() -> Self {
        SortKey::new(Vec::new())
    }
}

impl SortKey {
    /// The order of `items` (an `orderBy` list, in order): a column given twice counts once
    /// (its first place), columns after `id` change nothing, and `id` closes the key in the
    /// direction of the first item (ascending when there is none).
    pub fn new(items: Vec<(String, bool)>) -> SortKey {
        let id_descending = items.first().is_some_and(|(_, d)| *d);
        let mut columns: Vec<(String, bool)> = Vec::with_capacity(items.len() + 1);
        for (column, descending) in items {
            if columns.iter().any(|(c, _)| *c == column) {
                continue;
            }
            let is_id = column == "id";
            columns.push((column, descending));
            if is_id {
                return SortKey { columns };
            }
        }
        columns.push(("id".into(), id_descending));
        SortKey { columns }
    }

    /// The columns, in order, with their direction.
    pub fn columns(&self) -> &[(String, bool)] {
        &self.columns
    }

    /// Whether this is the default order (by id, ascending).
    pub fn is_default(&self) -> bool {
        self.columns.len() == 1 && !self.columns[0].1
    }

    /// The order as cursors name it: `name:a,id:d`.
    fn signature(&self) -> String {
        self.columns
            .iter()
            .map(|(c, d)| format!("{c}:{}", if *d { 'd' } else { 'a' }))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Orders `select` by the key (reversed: the other way round, nulls too). The place of
    /// `NULL` is written for nullable columns only, so an order on columns that cannot be null
    /// stays plain SQL an index serves on both databases.
    pub(crate) fn order(&self, class: &RowClass, select: &mut SelectStatement, reversed: bool) {
        for (column, descending) in &self.columns {
            let order = if *descending != reversed {
                Order::Desc
            } else {
                Order::Asc
            };
            if nullable(class, column) {
                let nulls = if order == Order::Desc {
                    NullOrdering::First
                } else {
                    NullOrdering::Last
                };
                select.order_by_with_nulls(Alias::new(column), order, nulls);
            } else {
                select.order_by(Alias::new(column), order);
            }
        }
    }

    /// The key as SQL for a window's `ORDER BY`: `"name" ASC NULLS LAST, "id" ASC`.
    pub(crate) fn order_sql(&self, class: &RowClass) -> String {
        self.columns
            .iter()
            .map(|(column, descending)| {
                let quoted = column.replace('"', "");
                let nulls = nullable(class, column);
                match (*descending, nulls) {
                    (true, true) => format!("\"{quoted}\" DESC NULLS FIRST"),
                    (false, true) => format!("\"{quoted}\" ASC NULLS LAST"),
                    (true, false) => format!("\"{quoted}\" DESC"),
                    (false, false) => format!("\"{quoted}\" ASC"),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Rows strictly after (`later`) or strictly before (`!later`) the key `values` in this
    /// order. Built without `NOT`, so a `NULL` comparison never turns into a match.
    pub(crate) fn beyond(&self, class: &RowClass, values: &[Cell], later: bool) -> Condition {
        let mut any = Condition::any();
        for i in 0..self.columns.len() {
            let mut all = Condition::all();
            for ((column, _), value) in self.columns[..i].iter().zip(values) {
                all = all.add(equal(class, column, value));
            }
            let (column, descending) = &self.columns[i];
            // After, in ascending order, is "greater" (NULL greatest of all).
            let greater = later != *descending;
            all = all.add(past(class, column, &values[i], greater));
            any = any.add(all);
        }
        any
    }

    /// Rows at or before the key `values`.
    pub(crate) fn up_to(&self, class: &RowClass, values: &[Cell]) -> Condition {
        let mut all = Condition::all();
        for ((column, _), value) in self.columns.iter().zip(values) {
            all = all.add(equal(class, column, value));
        }
        Condition::any()
            .add(self.beyond(class, values, false))
            .add(all)
    }

    /// Compares two rows' key values in this order (`NULL` after every value).
    pub fn compare(&self, a: &[Cell], b: &[Cell]) -> Ordering {
        for (i, (_, descending)) in self.columns.iter().enumerate() {
            let o = compare_cells(&a[i], &b[i]);
            let o = if *descending { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }

    /// The opaque cursor of the row whose key values are `values` in a list of `table`.
    pub fn cursor<'c>(&self, table: &str, values: impl Iterator<Item = &'c Cell>) -> String {
        let key: Vec<serde_json::Value> = values.map(Cell::to_json).collect();
        let text = serde_json::json!({
            "v": CURSOR_VERSION,
            "t": table,
            "o": self.signature(),
            "k": key,
        });
        URL_SAFE_NO_PAD.encode(text.to_string())
    }

    /// The key values a cursor of this order on `class` names; anything else (garbage, another
    /// version, another list or another order) is `BAD_USER_INPUT` on `field`.
    pub fn parse_cursor(&self, class: &RowClass, text: &str, field: &str) -> AppResult<Vec<Cell>> {
        let invalid = || AppError::input(field, "not a valid cursor");
        let json: serde_json::Value = URL_SAFE_NO_PAD
            .decode(text)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(invalid)?;
        if json["v"].as_u64() != Some(CURSOR_VERSION) || json["t"].as_str() != Some(&class.table) {
            return Err(invalid());
        }
        if json["o"].as_str() != Some(self.signature().as_str()) {
            return Err(AppError::input(
                field,
                "the cursor was made for another orderBy",
            ));
        }
        let key = json["k"].as_array().ok_or_else(invalid)?;
        if key.len() != self.columns.len() {
            return Err(invalid());
        }
        self.columns
            .iter()
            .zip(key)
            .map(|((column, _), value)| {
                cell_of(kind_of(class, column), nullable(class, column), value).ok_or_else(invalid)
            })
            .collect()
    }
}

/// Whether `column` of `class` may hold `NULL`.
fn nullable(class: &RowClass, column: &str) -> bool {
    class
        .columns
        .iter()
        .find(|c| c.name == column)
        .is_none_or(|c| c.nullable)
}

/// `column` equals `value` (`IS NULL` for a null value).
fn equal(class: &RowClass, column: &str, value: &Cell) -> Condition {
    Condition::all().add(match value {
        Cell::Null => col(column).is_null(),
        v => col(column).eq(v.to_value(kind_of(class, column))),
    })
}

/// `column` is past `value`: greater (`NULL` is greater than every value), or smaller.
fn past(class: &RowClass, column: &str, value: &Cell, greater: bool) -> Condition {
    match (value, greater) {
        // Nothing is greater than NULL.
        (Cell::Null, true) => Condition::any(),
        (Cell::Null, false) => Condition::all().add(col(column).is_not_null()),
        (v, true) if nullable(class, column) => Condition::any()
            .add(col(column).gt(v.to_value(kind_of(class, column))))
            .add(col(column).is_null()),
        (v, true) => Condition::all().add(col(column).gt(v.to_value(kind_of(class, column)))),
        (v, false) => Condition::all().add(col(column).lt(v.to_value(kind_of(class, column)))),
    }
}

/// Orders two cells of one column: `NULL` after every value.
fn compare_cells(a: &Cell, b: &Cell) -> Ordering {
    match (a, b) {
        (Cell::Null, Cell::Null) => Ordering::Equal,
        (Cell::Null, _) => Ordering::Greater,
        (_, Cell::Null) => Ordering::Less,
        (Cell::Text(a), Cell::Text(b)) => a.cmp(b),
        (Cell::Int(a), Cell::Int(b)) => a.cmp(b),
        (Cell::Bool(a), Cell::Bool(b)) => a.cmp(b),
        (Cell::Timestamp(a), Cell::Timestamp(b)) => a.cmp(b),
        (Cell::Uuid(a), Cell::Uuid(b)) => a.cmp(b),
        _ => Ordering::Equal,
    }
}

/// A cursor's JSON value as a cell of a column of `kind`.
fn cell_of(kind: ColumnKind, nullable: bool, value: &serde_json::Value) -> Option<Cell> {
    use serde_json::Value as J;
    Some(match (kind, value) {
        (_, J::Null) if nullable => Cell::Null,
        (ColumnKind::Uuid, J::String(s)) => Cell::Uuid(uuid::Uuid::parse_str(s).ok()?),
        (ColumnKind::Text, J::String(s)) => Cell::Text(s.clone()),
        (ColumnKind::Int, J::Number(n)) => {
            Cell::Int(n.as_i64().filter(|v| i32::try_from(*v).is_ok())?)
        }
        (ColumnKind::Bool, J::Bool(b)) => Cell::Bool(*b),
        (ColumnKind::Timestamp, J::String(s)) => Cell::Timestamp(
            chrono::DateTime::parse_from_rfc3339(s)
                .ok()?
                .with_timezone(&chrono::Utc),
        ),
        _ => return None,
    })
}

/// A connection's paging arguments with their cursors read: where the page starts and ends in
/// the order, and how many rows it takes from which end.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Window {
    pub first: Option<u64>,
    pub last: Option<u64>,
    /// The key values of `after`'s row.
    pub after: Option<Vec<Cell>>,
    /// The key values of `before`'s row.
    pub before: Option<Vec<Cell>>,
}

impl Window {
    /// Whether the page is read from its end (`last` without `first`): the statement runs in
    /// the reversed order and the rows are turned back.
    pub fn reversed(&self) -> bool {
        self.last.is_some() && self.first.is_none()
    }

    /// How many rows the statement reads: `first` (`last` when reversed), the default page
    /// when neither is given.
    pub fn limit(&self, default: u64) -> u64 {
        match (self.first, self.last) {
            (Some(first), _) => first,
            (None, Some(last)) => last,
            (None, None) => default,
        }
    }

    /// The cursors' conditions: after `after`, before `before`.
    pub(crate) fn bounds(&self, class: &RowClass, key: &SortKey) -> Condition {
        let mut all = Condition::all();
        if let Some(after) = &self.after {
            all = all.add(key.beyond(class, after, true));
        }
        if let Some(before) = &self.before {
            all = all.add(key.beyond(class, before, false));
        }
        all
    }

    /// Finishes a page's statement: the cursors' bounds, the order (reversed for `last`), the
    /// limit.
    pub(crate) fn page(
        &self,
        class: &RowClass,
        key: &SortKey,
        select: &mut SelectStatement,
        default: u64,
    ) {
        select.cond_where(self.bounds(class, key));
        key.order(class, select, self.reversed());
        select.limit(self.limit(default));
    }

    /// The page's rows in order, from what [`Window::page`]'s statement read: turned back when
    /// reversed, and with `first` and `last` together, the last `last` of the first `first`.
    pub fn finish<T>(&self, mut rows: Vec<T>) -> Vec<T> {
        if self.reversed() {
            rows.reverse();
        } else if let Some(last) = self.last {
            let skip = rows.len().saturating_sub(last as usize);
            rows.drain(..skip);
        }
        rows
    }

    /// The condition counting the rows before the page (its offset, for `hasPreviousPage` and
    /// `hasNextPage`): before its first row (`start`), or when the page is empty, before the
    /// place it would have been. `None` when the page starts at the beginning (offset 0);
    /// `Some(None)` when every row counts (an empty page at the end of all rows).
    pub(crate) fn offset_condition(
        &self,
        class: &RowClass,
        key: &SortKey,
        start: Option<&[Cell]>,
    ) -> Option<Option<Condition>> {
        if let Some(start) = start {
            if self.after.is_none() && self.last.is_none() {
                return None;
            }
            return Some(Some(key.beyond(class, start, false)));
        }
        // An empty page: read from the end, it sits at `before` (or after every row); read
        // from the start, right after `after` (or at the beginning).
        if self.reversed() {
            return Some(self.before.as_ref().map(|b| key.beyond(class, b, false)));
        }
        self.after.as_ref().map(|a| Some(key.up_to(class, a)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_ends_with_id_in_the_first_direction_and_drops_repeats() {
        let key = SortKey::new(vec![
            ("name".into(), true),
            ("code".into(), false),
            ("name".into(), false),
        ]);
        assert_eq!(
            key.columns(),
            &[
                ("name".to_string(), true),
                ("code".to_string(), false),
                ("id".to_string(), true)
            ]
        );
        let by_id = SortKey::new(vec![("id".into(), true), ("name".into(), false)]);
        assert_eq!(by_id.columns(), &[("id".to_string(), true)]);
        assert!(SortKey::new(Vec::new()).is_default());
    }

    #[test]
    fn null_sorts_after_every_value() {
        let asc = SortKey::new(vec![("name".into(), false)]);
        let a = [Cell::Text("b".into()), Cell::Int(1)];
        let b = [Cell::Null, Cell::Int(0)];
        assert_eq!(asc.compare(&a, &b), Ordering::Less);
        let desc = SortKey::new(vec![("name".into(), true)]);
        assert_eq!(desc.compare(&a, &b), Ordering::Greater);
    }

    #[test]
    fn windows_read_from_the_right_end() {
        let w = Window {
            first: Some(5),
            last: Some(2),
            ..Window::default()
        };
        assert!(!w.reversed());
        assert_eq!(w.finish(vec![1, 2, 3, 4, 5]), vec![4, 5]);
        let w = Window {
            last: Some(2),
            ..Window::default()
        };
        assert!(w.reversed());
        assert_eq!(w.limit(100), 2);
        assert_eq!(w.finish(vec![5, 4]), vec![4, 5]);
        assert_eq!(Window::default().limit(100), 100);
    }
}
