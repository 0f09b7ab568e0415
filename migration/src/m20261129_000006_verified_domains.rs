//! Custom domains: a host is unique among *verified* domains only.
//!
//! Migration 1 made `domains.host` unique across all tenants, so an unverified claim by one
//! tenant blocked the host for every other tenant and told them it was taken (squatting and an
//! existence oracle). From here on any number of tenants may claim a host unverified; the
//! partial index lets exactly one of them hold it verified: the first to verify wins. The same
//! `CREATE UNIQUE INDEX … WHERE` reads the same on SQLite and PostgreSQL. A tenant still claims
//! a host at most once (`ux_domains_natural_key`, `(tenant_id, host)`).
#![allow(elided_lifetimes_in_paths)] // the async_trait signature of MigrationTrait

use sea_orm_migration::prelude::*;

/// Replaces the global unique index on `domains.host` by one on verified hosts.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS ux_domains_host")
            .await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX ux_domains_verified_host ON domains (host) \
             WHERE verified_at IS NOT NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS ux_domains_verified_host")
            .await?;
        // Fails while two tenants claim one host, as the old rule would have refused.
        db.execute_unprepared("CREATE UNIQUE INDEX ux_domains_host ON domains (host)")
            .await?;
        Ok(())
    }
}
