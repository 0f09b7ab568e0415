//! `fork_runs`: The durable record of one fork run into `tenant_id`.

use crate::class::{ClassInfo, Fork, Plane, Surface};
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
    /// `FORK`, `UPGRADE` or `MOVE`.
    pub kind: RunKind,
    /// The template version the run left the tenant at (runs from the template only).
    #[sea_orm(nullable)]
    pub template_version: Option<i32>,
    /// An upgrade's conflicts: fields changed on both sides, left as the tenant has them.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub conflicts: Option<Json>,
    /// A move's origin: a configured tenant database's name, or null for the main one.
    #[sea_orm(column_type = "Text", nullable)]
    pub from_database: Option<String>,
    /// A move's destination: a configured tenant database's name, or null for the main one.
    #[sea_orm(column_type = "Text", nullable)]
    pub to_database: Option<String>,
}

stored_enum! {
    /// A run's status: `PENDING` and `RUNNING` while it is live, then `FINISHED`, `ROLLED_BACK`
    /// (it failed in its own process; nothing kept) or `ABANDONED` (its process died).
    /// `PLANNED` is a dry run's plan, never stored.
    RunStatus {
        Pending = "PENDING",
        Running = "RUNNING",
        Finished = "FINISHED",
        RolledBack = "ROLLED_BACK",
        Abandoned = "ABANDONED",
        Planned = "PLANNED",
    }
}

impl RunStatus {
    /// True while the run may still change (`PENDING`, `RUNNING`).
    pub const fn is_live(self) -> bool {
        matches!(self, RunStatus::Pending | RunStatus::Running)
    }
}

stored_enum! {
    /// What a run does: a `FORK` copies what the target is missing; an `UPGRADE` also applies
    /// the template's changes the tenant did not make; a `MOVE` carries the tenant's rows to
    /// another database (`moveTenant`).
    RunKind {
        Fork = "FORK",
        Upgrade = "UPGRADE",
        Move = "MOVE",
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
    const SURFACE: Surface = Surface::AdminRead;
}
