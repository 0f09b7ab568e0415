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

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DbBackend};

/// Creates the lineage and version tables and the new `fork_runs` columns.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000007_template_evolution"
    }
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(Clone, DeriveIden)]
enum RowLineage {
    Table,
    Id,
    TenantId,
    TableName,
    SourceTenantId,
    SourceId,
    Base,
    BaseVersion,
    CreatedAt,
    UpdatedAt,
}

#[derive(Clone, DeriveIden)]
enum TemplateVersions {
    Table,
    Id,
    TenantId,
    Number,
    Origin,
    Actor,
    Summary,
    CreatedAt,
    UpdatedAt,
}

#[derive(Clone, DeriveIden)]
enum TemplateRowStates {
    Table,
    Id,
    TenantId,
    TableName,
    Fingerprint,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ForkRuns {
    Table,
    Kind,
    TemplateVersion,
    Conflicts,
}

/// The names of the tables this migration creates, parents first.
const TABLES: [&str; 3] = ["row_lineage", "template_versions", "template_row_states"];

/// A tenant-owned table as every such table is: `tenant_id` owned by `tenants` (deleted with
/// it), and the unique `(tenant_id, id)` that composite same-tenant references point at.
fn tenant_owned(
    table: impl IntoIden,
    name: &str,
    tenant_id: impl IntoIden + Clone,
    id: impl IntoIden + Clone,
) -> TableCreateStatement {
    Table::create()
        .table(table)
        .col(pk_uuid(id.clone()))
        .col(uuid(tenant_id.clone()))
        .foreign_key(
            ForeignKey::create()
                .name(format!("fk_{name}_tenant_id"))
                .from_tbl(Alias::new(name))
                .from_col(tenant_id.clone())
                .to_tbl(Tenants::Table)
                .to_col(Tenants::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .index(
            Index::create()
                .name(format!("ux_{name}_tenant_id_id"))
                .unique()
                .col(tenant_id)
                .col(id),
        )
        .to_owned()
}

fn postgres(manager: &SchemaManager) -> bool {
    manager.get_database_backend() == DbBackend::Postgres
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                tenant_owned(
                    RowLineage::Table,
                    "row_lineage",
                    RowLineage::TenantId,
                    RowLineage::Id,
                )
                .col(text(RowLineage::TableName))
                .col(uuid(RowLineage::SourceTenantId))
                .col(uuid(RowLineage::SourceId))
                .col(json_binary(RowLineage::Base))
                .col(integer_null(RowLineage::BaseVersion))
                .col(timestamp_with_time_zone(RowLineage::CreatedAt))
                .col(timestamp_with_time_zone(RowLineage::UpdatedAt))
                .to_owned(),
            )
            .await?;
        manager
            .create_table(
                tenant_owned(
                    TemplateVersions::Table,
                    "template_versions",
                    TemplateVersions::TenantId,
                    TemplateVersions::Id,
                )
                .col(integer(TemplateVersions::Number))
                .col(text(TemplateVersions::Origin))
                .col(text(TemplateVersions::Actor))
                .col(json_binary(TemplateVersions::Summary))
                .col(timestamp_with_time_zone(TemplateVersions::CreatedAt))
                .col(timestamp_with_time_zone(TemplateVersions::UpdatedAt))
                .to_owned(),
            )
            .await?;
        // The natural key: one row per version number within the template.
        manager
            .create_index(
                Index::create()
                    .name("ux_template_versions_natural_key")
                    .table(TemplateVersions::Table)
                    .unique()
                    .col(TemplateVersions::TenantId)
                    .col(TemplateVersions::Number)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                tenant_owned(
                    TemplateRowStates::Table,
                    "template_row_states",
                    TemplateRowStates::TenantId,
                    TemplateRowStates::Id,
                )
                .col(text(TemplateRowStates::TableName))
                .col(text(TemplateRowStates::Fingerprint))
                .col(integer(TemplateRowStates::Version))
                .col(timestamp_with_time_zone(TemplateRowStates::CreatedAt))
                .col(timestamp_with_time_zone(TemplateRowStates::UpdatedAt))
                .to_owned(),
            )
            .await?;
        // Lineage is read per (tenant, table).
        manager
            .create_index(
                Index::create()
                    .name("ix_row_lineage_tenant_table")
                    .table(RowLineage::Table)
                    .col(RowLineage::TenantId)
                    .col(RowLineage::TableName)
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
            for t in TABLES {
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
        for table in TABLES.iter().rev() {
            manager
                .drop_table(Table::drop().table(Alias::new(*table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
