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
    #[sea_orm(column_type = "Text")]
    pub status: String,
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
    #[sea_orm(column_type = "Text")]
    pub kind: String,
    /// The template version the run left the tenant at (runs from the template only).
    #[sea_orm(nullable)]
    pub template_version: Option<i32>,
    /// An upgrade's conflicts: fields changed on both sides, left as the tenant has them.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub conflicts: Option<Json>,
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
