//! Row-level security that the request role cannot switch off (issue #13, item 8).
//!
//! Migration 2 let two session settings widen what a connection sees: `forklift.system = on`
//! admitted every row, and `forklift.tenant = '*'` every tenant for reads. Any role can set a
//! custom setting, so a connection of the application role (SQL injection, leaked credentials)
//! could switch the wall off. This migration replaces both policies of every tenant-owned table
//! with one, `tenant_only`: a row is visible and writable only when its `tenant_id` is the one
//! tenant `forklift.tenant` names. Nothing else widens it.
//!
//! Bookkeeping that must cross tenants (the guard, forks and their runs, audit, the catalog,
//! the platform admins' read-only all-tenants view, sweeps) no longer relies on a setting: it
//! connects as a distinct system role with `BYPASSRLS` (`FORKLIFT_SYSTEM_DATABASE_URL`), which
//! the request role is not a member of and cannot become. No role is named here, so the
//! migration works whatever the roles are called. `down` restores migration 2's policies and
//! functions exactly.
#![allow(elided_lifetimes_in_paths)] // the async_trait signature of MigrationTrait

use crate::tables::TABLES;
use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

/// Replaces the session-switchable policies with `tenant_only`.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// Migration 2's functions, re-created by `down`.
const OLD_FUNCTIONS: &str = r#"
CREATE OR REPLACE FUNCTION forklift_system() RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT coalesce(current_setting('forklift.system', true), '') = 'on'
$$;
CREATE OR REPLACE FUNCTION forklift_all_tenants() RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT coalesce(current_setting('forklift.tenant', true), '') = '*'
$$;
"#;

fn postgres(manager: &SchemaManager) -> bool {
    manager.get_database_backend() == DbBackend::Postgres
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !postgres(manager) {
            return Ok(());
        }
        let db = manager.get_connection();
        for spec in TABLES.iter().filter(|t| t.tenant_owned) {
            let t = spec.name;
            db.execute_unprepared(&format!(
                "DROP POLICY IF EXISTS tenant_read ON {t};
                 DROP POLICY IF EXISTS tenant_write ON {t};
                 CREATE POLICY tenant_only ON {t} FOR ALL
                   USING (tenant_id = forklift_current_tenant())
                   WITH CHECK (tenant_id = forklift_current_tenant());"
            ))
            .await?;
        }
        db.execute_unprepared(
            "DROP FUNCTION IF EXISTS forklift_system();
             DROP FUNCTION IF EXISTS forklift_all_tenants();",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !postgres(manager) {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(OLD_FUNCTIONS).await?;
        for spec in TABLES.iter().filter(|t| t.tenant_owned) {
            let t = spec.name;
            db.execute_unprepared(&format!(
                "DROP POLICY IF EXISTS tenant_only ON {t};
                 CREATE POLICY tenant_read ON {t} FOR SELECT
                   USING (forklift_system() OR forklift_all_tenants() OR tenant_id = forklift_current_tenant());
                 CREATE POLICY tenant_write ON {t} FOR ALL
                   USING (forklift_system() OR tenant_id = forklift_current_tenant())
                   WITH CHECK (forklift_system() OR tenant_id = forklift_current_tenant());"
            ))
            .await?;
        }
        Ok(())
    }
}
