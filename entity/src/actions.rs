//! `actions`: An execution-plane action with its parameters and side effects.

use crate::class::{ClassInfo, Fork, Plane};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// An execution-plane action with its parameters and side effects.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "actions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub application_id: Uuid,
    #[sea_orm(column_type = "Text")]
    pub key: String,
    #[sea_orm(column_type = "Text")]
    pub label: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    #[sea_orm(nullable)]
    pub entity_schema_id: Option<Uuid>,
    #[sea_orm(column_type = "JsonBinary")]
    pub parameters: Json,
    #[sea_orm(column_type = "JsonBinary")]
    pub side_effects: Json,
    pub public_submit: bool,
    pub public_vote: bool,
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
        belongs_to = "super::applications::Entity",
        from = "(Column::TenantId, Column::ApplicationId)",
        to = "(super::applications::Column::TenantId, super::applications::Column::Id)",
        on_delete = "Cascade"
    )]
    Application,
    #[sea_orm(
        belongs_to = "super::entity_schemas::Entity",
        from = "Column::EntitySchemaId",
        to = "super::entity_schemas::Column::Id",
        on_delete = "Restrict"
    )]
    EntitySchema,
}

impl ActiveModelBehavior for ActiveModel {}

impl ClassInfo for Entity {
    const NAME: &'static str = "Action";
    const PLANE: Plane = Plane::Configuration;
    const FORK: Fork = Fork::Spine;
    const NATURAL_KEY: &'static [&'static str] = &["application_id", "key"];
}
