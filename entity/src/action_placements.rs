//! `action_placements`: Where an action appears: on a surface of `application_id`, which may be another application than the action's own.

use crate::class::{ClassInfo, Fork, Plane};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Where an action appears: on a surface of `application_id`, which may be another application than the action's own.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "action_placements")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub action_id: Uuid,
    pub application_id: Uuid,
    pub surface_type_id: Uuid,
    pub position: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
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
        belongs_to = "super::actions::Entity",
        from = "(Column::TenantId, Column::ActionId)",
        to = "(super::actions::Column::TenantId, super::actions::Column::Id)",
        on_delete = "Cascade"
    )]
    Action,
    #[sea_orm(
        belongs_to = "super::applications::Entity",
        from = "(Column::TenantId, Column::ApplicationId)",
        to = "(super::applications::Column::TenantId, super::applications::Column::Id)",
        on_delete = "Cascade"
    )]
    Application,
    #[sea_orm(
        belongs_to = "super::surface_types::Entity",
        from = "Column::SurfaceTypeId",
        to = "super::surface_types::Column::Id",
        on_delete = "Restrict"
    )]
    SurfaceType,
}

impl ActiveModelBehavior for ActiveModel {}

impl ClassInfo for Entity {
    const NAME: &'static str = "ActionPlacement";
    const PLANE: Plane = Plane::Configuration;
    const FORK: Fork = Fork::TenantWide;
    const NATURAL_KEY: &'static [&'static str] =
        &["action_id", "application_id", "surface_type_id"];
}
