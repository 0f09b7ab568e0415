//! `fork_runs`: The durable record of one fork run into `tenant_id`.

use crate::class::{ClassInfo, Fork, Plane};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The durable record of one fork run into `tenant_id`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "fork_runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub source_tenant_id: Uuid,
    pub status: RunStatus,
    #[sea_orm(column_type = "Text", nullable)]
    pub phase: Option<String>,
    pub dry_run: bool,
    #[sea_orm(column_type = "JsonBinary")]
    pub counts: Json,
    #[sea_orm(column_type = "JsonBinary")]
    pub skipped: Json,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub failed_phase: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub actor: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub owner: Option<String>,
    #[sea_orm(nullable)]
    pub started_at: Option<DateTimeUtc>,
    #[sea_orm(nullable)]
    pub finished_at: Option<DateTimeUtc>,
    #[sea_orm(nullable)]
    pub heartbeat_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// `FORK` or `UPGRADE`.
    pub kind: RunKind,
    /// The template version the run left the tenant at (runs from the template only).
    #[sea_orm(nullable)]
    pub template_version: Option<i32>,
    /// An upgrade's conflicts: fields changed on both sides, left as the tenant has them.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub conflicts: Option<Json>,
}

/// A run's status, stored as its name (`PENDING`, …): `PENDING` and `RUNNING` while it is live,
/// then `FINISHED`, `ROLLED_BACK` (it failed in its own process; nothing kept) or `ABANDONED`
/// (its process died). `PLANNED` is a dry run's plan, never stored.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    #[sea_orm(string_value = "PENDING")]
    Pending,
    #[sea_orm(string_value = "RUNNING")]
    Running,
    #[sea_orm(string_value = "FINISHED")]
    Finished,
    #[sea_orm(string_value = "ROLLED_BACK")]
    RolledBack,
    #[sea_orm(string_value = "ABANDONED")]
    Abandoned,
    #[sea_orm(string_value = "PLANNED")]
    Planned,
}

impl RunStatus {
    /// Every status, in the order the `ForkRunStatus` enum lists them.
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Pending,
        RunStatus::Running,
        RunStatus::Finished,
        RunStatus::RolledBack,
        RunStatus::Abandoned,
        RunStatus::Planned,
    ];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "PENDING",
            RunStatus::Running => "RUNNING",
            RunStatus::Finished => "FINISHED",
            RunStatus::RolledBack => "ROLLED_BACK",
            RunStatus::Abandoned => "ABANDONED",
            RunStatus::Planned => "PLANNED",
        }
    }

    /// True while the run may still change (`PENDING`, `RUNNING`).
    pub const fn is_live(self) -> bool {
        matches!(self, RunStatus::Pending | RunStatus::Running)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a run does, stored as its name: a `FORK` copies what the target is missing; an
/// `UPGRADE` also applies the template's changes the tenant did not make.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunKind {
    #[sea_orm(string_value = "FORK")]
    Fork,
    #[sea_orm(string_value = "UPGRADE")]
    Upgrade,
}

impl RunKind {
    /// Every kind, in the order the `ForkRunKind` enum lists them.
    pub const ALL: [RunKind; 2] = [RunKind::Fork, RunKind::Upgrade];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            RunKind::Fork => "FORK",
            RunKind::Upgrade => "UPGRADE",
        }
    }
}

impl std::fmt::Display for RunKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rows this class points at; the row-class registry derives references from these.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::tenants::Entity",
        from = "Column::TenantId",
        to = "super::tenants::Column::Id",
        on_delete = "Cascade"
    )]
    Tenant,
    #[sea_orm(
        belongs_to = "super::tenants::Entity",
        from = "Column::SourceTenantId",
        to = "super::tenants::Column::Id",
        on_delete = "Cascade"
    )]
    SourceTenant,
}

impl ActiveModelBehavior for ActiveModel {}

impl ClassInfo for Entity {
    const NAME: &'static str = "ForkRun";
    const PLANE: Plane = Plane::Runtime;
    const FORK: Fork = Fork::Never;
    const NATURAL_KEY: &'static [&'static str] = &[];
}
