//! The initial schema: every row class (`docs/planes.md`) (see [`crate::tables::TABLES`]).
#![allow(elided_lifetimes_in_paths)] // the async_trait signature of MigrationTrait

use crate::tables::TABLES;
use sea_orm_migration::prelude::*;

/// Creates every table with its foreign keys and unique indexes.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for spec in TABLES {
            manager.create_table(spec.create()).await?;
            for index in spec.indexes() {
                manager.create_index(index).await?;
            }
        }
        // Exactly one root per tenant: at most one organization without a parent. A partial
        // index reads the same on SQLite and PostgreSQL.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX ux_organizations_one_root ON organizations (tenant_id) \
                 WHERE parent_id IS NULL",
            )
            .await?;
        // Fork runs are listed newest first and looked up by status (abandoned-run sweep).
        manager
            .create_index(
                Index::create()
                    .name("ix_fork_runs_status")
                    .table("fork_runs")
                    .col("status")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for spec in TABLES.iter().rev() {
            manager
                .drop_table(Table::drop().table(spec.name).to_owned())
                .await?;
        }
        Ok(())
    }
}
