//! Template evolution (issue #18): what a tenant's copies were forked from, and the template's
//! versions.
//!
//! - `row_lineage`: one row per copied row of a tenant, keyed by the copy's id: its source row
//!   and the source's content at fork (or last upgrade) time, the *base* of three-way diffs. A
//!   lineage row whose copy is gone is the tombstone of a tenant's deletion.
//! - `template_versions`: the template's numbered versions, each with a summary of what changed.
//! - `template_row_states`: the fingerprint of every template row as of the latest version, from
//!   which the next version's summary is computed.
//! - `fork_runs.kind` (`FORK` or `UPGRADE`), `fork_runs.template_version` (the template version
//!   the run left the tenant at) and `fork_runs.conflicts` (an upgrade's skipped conflicts).
//!
//! The three tables are tenant-owned, with the unique `(tenant_id, id)` of every such table and,
//! on PostgreSQL, row-level security forced with the one `tenant_only` policy of migration 3.
#![allow(elided_lifetimes_in_paths)] // the async_trait signature of MigrationTrait

use crate::table::{Col, Kind, TableSpec};
use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

/// Creates the lineage and version tables and the new `fork_runs` columns.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000007_template_evolution"
    }
}

const fn col(name: &'static str, kind: Kind, nullable: bool) -> Col {
    Col {
        name,
        kind,
        nullable,
        unique: false,
    }
}

/// The tables this migration creates, parents first.
pub const TABLES: &[TableSpec] = &[
    TableSpec {
        name: "row_lineage",
        columns: &[
            col("tenant_id", Kind::Uuid, false),
            col("table_name", Kind::Text, false),
            col("source_tenant_id", Kind::Uuid, false),
            col("source_id", Kind::Uuid, false),
            col("base", Kind::Json, false),
            col("base_version", Kind::Int, true),
            col("created_at", Kind::Timestamp, false),
            col("updated_at", Kind::Timestamp, false),
        ],
        foreign_keys: &[crate::table::Fk {
            column: "tenant_id",
            table: "tenants",
            same_tenant: false,
        }],
        tenant_owned: true,
        natural_key: &[],
    },
    TableSpec {
        name: "template_versions",
        columns: &[
            col("tenant_id", Kind::Uuid, false),
            col("number", Kind::Int, false),
            col("origin", Kind::Text, false),
            col("actor", Kind::Text, false),
            col("summary", Kind::Json, false),
            col("created_at", Kind::Timestamp, false),
            col("updated_at", Kind::Timestamp, false),
        ],
        foreign_keys: &[crate::table::Fk {
            column: "tenant_id",
            table: "tenants",
            same_tenant: false,
        }],
        tenant_owned: true,
        natural_key: &["number"],
    },
    TableSpec {
        name: "template_row_states",
        columns: &[
            col("tenant_id", Kind::Uuid, false),
            col("table_name", Kind::Text, false),
            col("fingerprint", Kind::Text, false),
            col("version", Kind::Int, false),
            col("created_at", Kind::Timestamp, false),
            col("updated_at", Kind::Timestamp, false),
        ],
        foreign_keys: &[crate::table::Fk {
            column: "tenant_id",
            table: "tenants",
            same_tenant: false,
        }],
        tenant_owned: true,
        natural_key: &[],
    },
];

#[derive(DeriveIden)]
enum ForkRuns {
    Table,
    Kind,
    TemplateVersion,
    Conflicts,
}

fn postgres(manager: &SchemaManager) -> bool {
    manager.get_database_backend() == DbBackend::Postgres
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for spec in TABLES {
            manager.create_table(spec.create()).await?;
            for index in spec.indexes() {
                manager.create_index(index).await?;
            }
        }
        // Lineage is read per (tenant, table).
        manager
            .create_index(
                Index::create()
                    .name("ix_row_lineage_tenant_table")
                    .table("row_lineage")
                    .col("tenant_id")
                    .col("table_name")
                    .to_owned(),
            )
            .await?;
        for column in [
            ColumnDef::new(ForkRuns::Kind)
                .text()
                .not_null()
                .default("FORK")
                .to_owned(),
            ColumnDef::new(ForkRuns::TemplateVersion)
                .integer()
                .null()
                .to_owned(),
            ColumnDef::new(ForkRuns::Conflicts)
                .json_binary()
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ForkRuns::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        if postgres(manager) {
            let db = manager.get_connection();
            for spec in TABLES {
                let t = spec.name;
                db.execute_unprepared(&format!(
                    "ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;
                     ALTER TABLE {t} FORCE ROW LEVEL SECURITY;
                     CREATE POLICY tenant_only ON {t} FOR ALL
                       USING (tenant_id = forklift_current_tenant())
                       WITH CHECK (tenant_id = forklift_current_tenant());"
                ))
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            ForkRuns::Conflicts,
            ForkRuns::TemplateVersion,
            ForkRuns::Kind,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ForkRuns::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for spec in TABLES.iter().rev() {
            manager
                .drop_table(Table::drop().table(spec.name).to_owned())
                .await?;
        }
        Ok(())
    }
}
