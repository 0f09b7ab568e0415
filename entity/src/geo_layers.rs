//! `geo_layers`: Derived: a map layer for a geometry field of an application with the `map` feature.

use crate::class::{ClassInfo, Fork, Plane};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Derived: a map layer for a geometry field of an application with the `map` feature.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "geo_layers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub application_id: Uuid,
    pub entity_schema_id: Uuid,
    #[sea_orm(column_type = "Text")]
    pub field: String,
    #[sea_orm(column_type = "Text")]
    pub key: String,
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
    const NAME: &'static str = "GeoLayer";
    const PLANE: Plane = Plane::Derived;
    const FORK: Fork = Fork::Derived;
    const NATURAL_KEY: &'static [&'static str] = &["application_id", "entity_schema_id", "field"];
}
