//! `fork_events`: One event of a fork run's progress stream.

use crate::class::{ClassInfo, Fork, Plane, Surface};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One event of a fork run's progress stream.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "fork_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub run_id: Uuid,
    pub seq: i32,
    #[sea_orm(column_type = "Text")]
    pub kind: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub phase: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub class_name: Option<String>,
    #[sea_orm(nullable)]
    pub count: Option<i32>,
    #[sea_orm(column_type = "JsonBinary")]
    pub detail: Json,
    pub at: DateTimeUtc,
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
        belongs_to = "super::fork_runs::Entity",
        from = "(Column::TenantId, Column::RunId)",
        to = "(super::fork_runs::Column::TenantId, super::fork_runs::Column::Id)",
        on_delete = "Cascade"
    )]
    Run,
}

impl ActiveModelBehavior for ActiveModel {}

impl ClassInfo for Entity {
    const NAME: &'static str = "ForkEvent";
    const PLANE: Plane = Plane::Runtime;
    const FORK: Fork = Fork::Never;
    const NATURAL_KEY: &'static [&'static str] = &["run_id", "seq"];
    const SURFACE: Surface = Surface::AdminRead;
}
