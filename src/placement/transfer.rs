//! A tenant's placed rows carried from one database to another (`moveTenant`, issue #19 item 5):
//! the rows of every placed class ([`placed_classes`]) read in id order, compared by count and
//! checksum per table ([`digests`]), brought in line in a target transaction ([`sync`]), and
//! removed from the database the tenant left ([`remove`]).
//!
//! Both databases run the same backend and the same schema, so a row read from one writes
//! unchanged into the other, and the same rows give the same checksum on either side.

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ConnectionTrait, DatabaseTransaction,
    sea_query::{Alias, Expr, ExprTrait, Order, Query},
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    fork::engine::{MAX_BATCH_ROWS, MAX_BIND_PARAMS, tree_levels},
    registry::{Registry, RowClass},
    rows::Row,
};

/// The classes whose rows move with a tenant, parents before children.
pub fn placed_classes(registry: &Registry) -> Vec<&RowClass> {
    registry
        .tenant_owned_order()
        .into_iter()
        .filter(|class| super::is_placed(class))
        .collect()
}

/// Every row of `class` that `tenant` owns in `db`, in id order (read page by page).
pub async fn tenant_rows(
    db: &impl ConnectionTrait,
    class: &RowClass,
    tenant: Uuid,
) -> anyhow::Result<Vec<Row>> {
    let mut out: Vec<Row> = Vec::new();
    loop {
        let mut select = Query::select();
        select
            .columns(class.columns.iter().map(|c| Alias::new(&c.name)))
            .from(Alias::new(&class.table))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .order_by(Alias::new("id"), Order::Asc)
            .limit(MAX_BATCH_ROWS as u64);
        if let Some(last) = out.last() {
            select.and_where(Expr::col(Alias::new("id")).gt(last.id()));
        }
        let page = Row::query_all(db, &select, class).await?;
        let done = page.len() < MAX_BATCH_ROWS;
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

/// The count and checksum of one table's rows of a tenant: what a move compares on both sides
/// before it switches the tenant over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TableDigest {
    /// The table.
    pub table: String,
    /// How many rows the tenant has there.
    pub rows: u64,
    /// SHA-256 over every column of every row, in id order (hex).
    pub checksum: String,
}

/// The digest of `rows` (one class's, in id order).
pub fn digest(class: &RowClass, rows: &[Row]) -> TableDigest {
    let mut hash = Sha256::new();
    for row in rows {
        for column in &class.columns {
            hash.update(column.name.as_bytes());
            hash.update([0]);
            hash.update(format!("{:?}", row.get(&column.name)).as_bytes());
            hash.update([0]);
        }
        hash.update([1]);
    }
    TableDigest {
        table: class.table.clone(),
        rows: rows.len() as u64,
        checksum: hex::encode(hash.finalize()),
    }
}

/// The digests of `classes`' rows of `tenant` in `db`, in the order of `classes`.
pub async fn digests(
    db: &impl ConnectionTrait,
    classes: &[&RowClass],
    tenant: Uuid,
) -> anyhow::Result<Vec<TableDigest>> {
    let mut out = Vec::with_capacity(classes.len());
    for class in classes {
        out.push(digest(class, &tenant_rows(db, class, tenant).await?));
    }
    Ok(out)
}

/// What [`sync`] changed in one table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Synced {
    /// The table.
    pub table: String,
    /// The source's rows.
    pub rows: u64,
    /// Rows the target lacked.
    pub inserted: u64,
    /// Rows the target had with other values.
    pub updated: u64,
    /// Rows the source no longer has.
    pub deleted: u64,
}

/// Makes `tenant`'s rows of `classes` (parents first) in `target` exactly those in `source`:
/// inserts what is missing (tree parents first), updates what differs, then deletes what the
/// source does not have (children first). Returns what changed, per class.
pub async fn sync(
    source: &impl ConnectionTrait,
    target: &DatabaseTransaction,
    classes: &[&RowClass],
    tenant: Uuid,
) -> anyhow::Result<Vec<Synced>> {
    let mut out = Vec::with_capacity(classes.len());
    let mut extras: Vec<(&RowClass, Vec<Row>)> = Vec::new();
    for class in classes {
        let wanted = tenant_rows(source, class, tenant).await?;
        let mut present: HashMap<Uuid, Row> = tenant_rows(target, class, tenant)
            .await?
            .into_iter()
            .map(|row| (row.id(), row))
            .collect();
        let mut synced = Synced {
            table: class.table.clone(),
            rows: wanted.len() as u64,
            ..Default::default()
        };
        let in_target: HashSet<Uuid> = present.keys().copied().collect();
        let mut missing = Vec::new();
        let mut changed = Vec::new();
        for row in wanted {
            match present.remove(&row.id()) {
                None => missing.push(row),
                Some(old) if !same(class, &old, &row) => changed.push(row),
                Some(_) => {}
            }
        }
        synced.inserted = missing.len() as u64;
        for level in tree_levels(class, missing, |id| in_target.contains(&id)) {
            insert_rows(target, class, &level).await?;
        }
        synced.updated = changed.len() as u64;
        for row in &changed {
            update_row(target, class, row).await?;
        }
        synced.deleted = present.len() as u64;
        extras.push((class, present.into_values().collect()));
        out.push(synced);
    }
    // Children before parents: classes in reverse, and within a tree its deepest rows first.
    for (class, rows) in extras.into_iter().rev() {
        let mut levels = tree_levels(class, rows, |_| false);
        levels.reverse();
        for level in levels {
            let ids: Vec<Uuid> = level.iter().map(Row::id).collect();
            delete_ids(target, class, tenant, &ids).await?;
        }
    }
    Ok(out)
}

/// Deletes every row `tenant` owns of `classes` in `target`, children first; returns how many.
pub async fn remove(
    target: &DatabaseTransaction,
    classes: &[&RowClass],
    tenant: Uuid,
) -> anyhow::Result<u64> {
    let mut removed = 0;
    for class in classes.iter().rev() {
        let mut delete = Query::delete();
        delete
            .from_table(Alias::new(&class.table))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant));
        removed += target.execute(&delete).await?.rows_affected();
    }
    Ok(removed)
}

/// True when every column of `a` and `b` holds the same value.
fn same(class: &RowClass, a: &Row, b: &Row) -> bool {
    class
        .columns
        .iter()
        .all(|c| a.get(&c.name) == b.get(&c.name))
}

/// Inserts `rows` (chunked under the bind-parameter limit).
async fn insert_rows(
    db: &impl ConnectionTrait,
    class: &RowClass,
    rows: &[Row],
) -> anyhow::Result<()> {
    super::write_rows(db, class, rows, false).await
}

/// Sets every column of the row with `row`'s id to `row`'s values.
async fn update_row(db: &impl ConnectionTrait, class: &RowClass, row: &Row) -> anyhow::Result<()> {
    let mut update = Query::update();
    update.table(Alias::new(&class.table));
    for column in class.columns.iter().filter(|c| c.name != "id") {
        update.value(
            Alias::new(&column.name),
            row.get(&column.name).to_value(column.kind),
        );
    }
    update.and_where(Expr::col(Alias::new("id")).eq(row.id()));
    if let Some(tenant) = row.tenant_id() {
        update.and_where(Expr::col(Alias::new("tenant_id")).eq(tenant));
    }
    db.execute(&update).await?;
    Ok(())
}

/// Deletes `tenant`'s rows of `class` with these ids.
async fn delete_ids(
    db: &impl ConnectionTrait,
    class: &RowClass,
    tenant: Uuid,
    ids: &[Uuid],
) -> anyhow::Result<()> {
    for chunk in ids.chunks(MAX_BIND_PARAMS - 1) {
        let mut delete = Query::delete();
        delete
            .from_table(Alias::new(&class.table))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .and_where(Expr::col(Alias::new("id")).is_in(chunk.iter().copied()));
        db.execute(&delete).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::Cell;

    fn node(id: u128, label: &str) -> Row {
        let mut row = Row::default();
        row.set("id", Cell::Uuid(Uuid::from_u128(id)));
        row.set("label", Cell::Text(label.into()));
        row
    }

    #[test]
    fn a_digest_changes_with_any_value_and_not_otherwise() {
        let registry = Registry::default();
        let class = registry.by_table("navigation_items").expect("navigation");
        let rows = vec![node(1, "Home"), node(2, "About")];
        let same = vec![node(1, "Home"), node(2, "About")];
        let edited = vec![node(1, "Home"), node(2, "About us")];
        assert_eq!(digest(class, &rows), digest(class, &same));
        assert_ne!(
            digest(class, &rows).checksum,
            digest(class, &edited).checksum
        );
        assert_eq!(digest(class, &rows).rows, 2);
        // Moving a value to another column is a change too.
        let mut swapped = node(1, "Home");
        swapped.set("label", Cell::Null);
        swapped.set("key", Cell::Text("Home".into()));
        assert_ne!(
            digest(class, &[swapped]).checksum,
            digest(class, &[node(1, "Home")]).checksum
        );
    }

    #[test]
    fn placed_classes_come_parents_first_and_hold_no_control_plane() {
        let registry = Registry::default();
        let tables: Vec<&str> = placed_classes(&registry)
            .iter()
            .map(|c| c.table.as_str())
            .collect();
        let at = |t: &str| tables.iter().position(|x| *x == t);
        assert!(at("applications") < at("actions"), "{tables:?}");
        for control in [
            "tenants",
            "users",
            "memberships",
            "domains",
            "fork_runs",
            "audit_entries",
        ] {
            assert_eq!(at(control), None, "{control} stays in the main database");
        }
        assert!(at("row_lineage").is_some());
        // The runtime rows move with the tenant, parents first.
        assert!(at("organizations") < at("teams"), "{tables:?}");
        assert!(at("teams") < at("team_members"), "{tables:?}");
        assert!(at("brandings").is_some() && at("onboarding_completions").is_some());
    }
}
