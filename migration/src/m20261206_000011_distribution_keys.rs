//! Distribution-ready keys (issue #19, item 6): on PostgreSQL, every table that would be
//! distributed by `tenant_id` (Citus) has a primary key that includes it.
//!
//! Citus distributes a table by one column and enforces a primary key or unique index only when
//! it includes that column. Every tenant-owned table already had the composite unique
//! `(tenant_id, id)` (the target of the same-tenant foreign keys) and every foreign key between
//! tenant tables is composite; what remained were primary keys of `(id)` alone. This migration
//! makes them `(tenant_id, id)` and keeps a plain index on `id` for lookups by id alone.
//!
//! Two tables with a `tenant_id` are not distributed, and keep their keys:
//! - `domains`: a verified host is unique across tenants (`ux_domains_verified_host`), and the
//!   guard reads it before it knows the tenant: a reference (control-plane) table;
//! - `audit_entries`: platform entries have no tenant (`tenant_id` is nullable): a local
//!   control-plane table.
//!
//! SQLite is one file on one node: its keys stay as they are (nothing distributes it).
#![allow(elided_lifetimes_in_paths)] // the async_trait signature of MigrationTrait

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

/// Adds the tenant to the primary keys of the distributable tables.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000011_distribution_keys"
    }
}

/// The tables distributed by `tenant_id` on a Citus cluster: every table with a required
/// `tenant_id` but `domains`.
pub const DISTRIBUTED: [&str; 29] = [
    "access_grants",
    "action_placements",
    "actions",
    "application_entities",
    "applications",
    "brandings",
    "child_collections",
    "custom_records",
    "dashboards",
    "fork_events",
    "fork_runs",
    "geo_layers",
    "list_layouts",
    "memberships",
    "navigation_items",
    "notification_rules",
    "notification_subscriptions",
    "notification_templates",
    "onboarding_completions",
    "organizations",
    "portal_pages",
    "report_templates",
    "row_lineage",
    "team_members",
    "teams",
    "template_row_states",
    "template_versions",
    "tenant_features",
    "views",
];

/// Tables with a `tenant_id` that are not distributed, and why (see the module header).
pub const NOT_DISTRIBUTED: [(&str, &str); 2] = [
    (
        "domains",
        "a verified host is unique across tenants: a reference table",
    ),
    (
        "audit_entries",
        "platform entries have no tenant: a local control-plane table",
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for table in DISTRIBUTED {
            db.execute_unprepared(&format!(
                "ALTER TABLE \"{table}\" DROP CONSTRAINT \"{table}_pkey\", \
                 ADD CONSTRAINT \"{table}_pkey\" PRIMARY KEY (\"tenant_id\", \"id\"); \
                 CREATE INDEX \"ix_{table}_id\" ON \"{table}\" (\"id\")"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for table in DISTRIBUTED {
            db.execute_unprepared(&format!(
                "DROP INDEX \"ix_{table}_id\"; \
                 ALTER TABLE \"{table}\" DROP CONSTRAINT \"{table}_pkey\", \
                 ADD CONSTRAINT \"{table}_pkey\" PRIMARY KEY (\"id\")"
            ))
            .await?;
        }
        Ok(())
    }
}
