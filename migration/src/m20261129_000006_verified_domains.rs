//! Custom domains: a host is unique among *verified* domains only.
//!
//! Migration 1 made `domains.host` unique across all tenants, so an unverified claim by one
//! tenant blocked the host for every other tenant and told them it was taken (squatting and an
//! existence oracle). From here on any number of tenants may claim a host unverified; the
//! partial index lets exactly one of them hold it verified: the first to verify wins. A tenant
//! still claims a host at most once (`ux_domains_natural_key`, `(tenant_id, host)`). Written with
//! the schema helpers: sea-query renders the same partial `CREATE UNIQUE INDEX … WHERE` for
//! SQLite and PostgreSQL.
#![allow(elided_lifetimes_in_paths)] // the async_trait signature of MigrationTrait

use sea_orm_migration::prelude::*;

/// Replaces the global unique index on `domains.host` by one on verified hosts.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Domains {
    Table,
    Host,
    VerifiedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name("ux_domains_host").if_exists().to_owned())
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_domains_verified_host")
                    .table(Domains::Table)
                    .col(Domains::Host)
                    .unique()
                    .and_where(Expr::col(Domains::VerifiedAt).is_not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ux_domains_verified_host")
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        // Fails while two tenants claim one host, as the old rule would have refused.
        manager
            .create_index(
                Index::create()
                    .name("ux_domains_host")
                    .table(Domains::Table)
                    .col(Domains::Host)
                    .unique()
                    .to_owned(),
            )
            .await
    }
}
