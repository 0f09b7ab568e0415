//! Issue #19, item 6: the schema is ready to be distributed by `tenant_id` (Citus), read from
//! the migrated catalog on both databases.
//!
//! Citus distributes a table by one column; it enforces a primary key or a unique index only
//! when it includes that column, joins and foreign keys between distributed tables only on it,
//! and lets a reference table (replicated to every node) point only at reference tables. So:
//!
//! - every table with a `tenant_id` is classified: distributed (`migration::DISTRIBUTED`) or
//!   not, with a reason (`migration::NOT_DISTRIBUTED`); tables without one (vocabulary,
//!   `tenants`, `users`) are reference tables;
//! - a distributed table's primary key is `(tenant_id, id)` (PostgreSQL; SQLite is one node
//!   and keeps `(id)`), and each of its unique indexes includes `tenant_id`;
//! - a foreign key to a distributed table includes `tenant_id` on both sides;
//! - no table that is not distributed points at a distributed one.

use std::collections::BTreeSet;

use sea_orm::DbBackend;

use crate::{
    harness::TestApp,
    tables::{live, live_tables},
};

crate::both!(the_schema_is_ready_to_distribute_by_tenant);
async fn the_schema_is_ready_to_distribute_by_tenant(app: TestApp) {
    let db = app.owner_db().await;
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    let distributed: BTreeSet<&str> = migration::DISTRIBUTED.into_iter().collect();
    let mut with_tenant = BTreeSet::new();
    let mut problems = Vec::new();
    let tables = live_tables(&db).await;
    for table in &tables {
        let live = live(&db, table).await;
        let owned = live.columns.contains_key("tenant_id");
        if owned {
            with_tenant.insert(table.clone());
        }
        if distributed.contains(table.as_str()) {
            if live
                .columns
                .get("tenant_id")
                .is_none_or(|(_, required)| !required)
            {
                problems.push(format!(
                    "{table}: distributed, but tenant_id is not required"
                ));
            }
            if postgres && live.primary_key != ["tenant_id", "id"] {
                problems.push(format!(
                    "{table}: primary key {:?} (not (tenant_id, id))",
                    live.primary_key
                ));
            }
            for unique in &live.unique {
                if !unique.columns.iter().any(|c| c == "tenant_id") {
                    problems.push(format!(
                        "{table}: unique index {:?} without tenant_id",
                        unique.columns
                    ));
                }
            }
        }
        for fk in &live.foreign_keys {
            if !distributed.contains(fk.table.as_str()) {
                continue; // to a reference table: always allowed
            }
            if !distributed.contains(table.as_str()) {
                problems.push(format!(
                    "{table} is not distributed but points at the distributed {}",
                    fk.table
                ));
            } else if !fk.from.iter().any(|c| c == "tenant_id")
                || !fk.to.iter().any(|c| c == "tenant_id")
            {
                problems.push(format!(
                    "{table}: foreign key {:?} → {}{:?} without tenant_id on both sides",
                    fk.from, fk.table, fk.to
                ));
            }
        }
    }
    let classified: BTreeSet<String> = migration::DISTRIBUTED
        .iter()
        .copied()
        .chain(migration::NOT_DISTRIBUTED.iter().map(|(t, _)| *t))
        .map(str::to_string)
        .collect();
    assert_eq!(
        with_tenant, classified,
        "every table with a tenant_id is either distributed or says why not"
    );
    assert!(
        distributed.len() > 20 && tables.len() > distributed.len(),
        "the catalog was read: {} tables, {} distributed",
        tables.len(),
        distributed.len()
    );
    assert!(
        problems.is_empty(),
        "not ready to distribute by tenant_id:\n{}",
        problems.join("\n")
    );
}
