//! Row-level security on PostgreSQL: the database's own wall between tenants (SQLite has none
//! and skips this migration).
//!
//! Every tenant-owned table gets RLS enabled and forced (so it binds the table owner too) with
//! two policies on its `tenant_id`:
//! - `tenant_read` (SELECT): rows of the tenant named by `forklift.tenant`, every row when that
//!   is `*` (the platform admins' read-only "all tenants" view);
//! - `tenant_write` (all commands): rows of the tenant named by `forklift.tenant` only, for
//!   reading and for writing.
//!
//! Both also admit every row when `forklift.system` is `on`: the server's system pool sets it
//! at connection start for its own bookkeeping (guard lookups, forks, audit). The request pool
//! never does, and sets `forklift.tenant` per transaction (`set_config(…, true)`), so a pooled
//! connection never carries one request's tenant into the next and, with nothing set,
//! tenant-owned tables return nothing.
#![allow(elided_lifetimes_in_paths)] // the async_trait signature of MigrationTrait

use crate::tables::TABLES;
use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

/// Enables and forces RLS with the tenant policies on every tenant-owned table.
#[derive(DeriveMigrationName)]
pub struct Migration;

const FUNCTIONS: &str = r#"
CREATE OR REPLACE FUNCTION forklift_current_tenant() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN current_setting('forklift.tenant', true) ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
    THEN current_setting('forklift.tenant', true)::uuid
  END
$$;
CREATE OR REPLACE FUNCTION forklift_system() RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT coalesce(current_setting('forklift.system', true), '') = 'on'
$$;
CREATE OR REPLACE FUNCTION forklift_all_tenants() RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT coalesce(current_setting('forklift.tenant', true), '') = '*'
$$;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(FUNCTIONS).await?;
        for spec in TABLES.iter().filter(|t| t.tenant_owned) {
            let t = spec.name;
            db.execute_unprepared(&format!(
                "ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;
                 ALTER TABLE {t} FORCE ROW LEVEL SECURITY;
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

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for spec in TABLES.iter().filter(|t| t.tenant_owned) {
            let t = spec.name;
            db.execute_unprepared(&format!(
                "DROP POLICY IF EXISTS tenant_read ON {t};
                 DROP POLICY IF EXISTS tenant_write ON {t};
                 ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY;
                 ALTER TABLE {t} DISABLE ROW LEVEL SECURITY;"
            ))
            .await?;
        }
        db.execute_unprepared(
            "DROP FUNCTION IF EXISTS forklift_current_tenant();
             DROP FUNCTION IF EXISTS forklift_system();
             DROP FUNCTION IF EXISTS forklift_all_tenants();",
        )
        .await?;
        Ok(())
    }
}
