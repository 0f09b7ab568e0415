//! `tenants.root_company_id`: the tenant's root company in the customer's own systems (seed 003),
//! set at creation or by `updateTenant`. Written with the schema helpers; nullable, so existing
//! rows need no value.
#![allow(elided_lifetimes_in_paths)] // the async_trait signature of MigrationTrait

use sea_orm_migration::prelude::*;

/// Adds `tenants.root_company_id`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000004_tenant_root_company"
    }
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    RootCompanyId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Tenants::Table)
                    .add_column(ColumnDef::new(Tenants::RootCompanyId).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Tenants::Table)
                    .drop_column(Tenants::RootCompanyId)
                    .to_owned(),
            )
            .await
    }
}
