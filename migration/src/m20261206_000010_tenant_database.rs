//! `tenants.database`: where a tenant's configuration, derived rows and lineage live (issue #19,
//! item 2): the name of a configured tenant database (`FORKLIFT_TENANT_DATABASES`), or null for
//! the main database. Only the name is stored, never a URL.
#![allow(elided_lifetimes_in_paths)] // the async_trait signature of MigrationTrait

use sea_orm_migration::prelude::*;

/// Adds `tenants.database`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000010_tenant_database"
    }
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Database,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Tenants::Table)
                    .add_column(ColumnDef::new(Tenants::Database).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Tenants::Table)
                    .drop_column(Tenants::Database)
                    .to_owned(),
            )
            .await
    }
}
