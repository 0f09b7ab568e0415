//! `fork_runs.from_database` and `fork_runs.to_database`: where a `MOVE` run (`moveTenant`,
//! issue #19 item 5) carries a tenant from and to: the names of configured tenant databases, or
//! null for the main database. A later move reads them to find what an interrupted one left
//! behind. Only names are stored, never a URL.
#![allow(elided_lifetimes_in_paths)] // the async_trait signature of MigrationTrait

use sea_orm_migration::prelude::*;

/// Adds `fork_runs.from_database` and `fork_runs.to_database`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000012_move_runs"
    }
}

#[derive(DeriveIden)]
enum ForkRuns {
    Table,
    FromDatabase,
    ToDatabase,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per statement.
        for column in [ForkRuns::FromDatabase, ForkRuns::ToDatabase] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ForkRuns::Table)
                        .add_column(ColumnDef::new(column).text().null())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [ForkRuns::FromDatabase, ForkRuns::ToDatabase] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ForkRuns::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
