//! `tenant_features`: The feature catalog of a tenant.

use crate::class::{ClassInfo, Fork, Plane, Surface};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The feature catalog of a tenant.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "tenant_features")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    #[sea_orm(column_type = "Text")]
    pub feature_key: String,
    #[sea_orm(column_type = "Text")]
    pub version: String,
    #[sea_orm(column_type = "Text")]
    pub provider: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub customization: Json,
    #[sea_orm(nullable)]
    pub last_migrated_at: Option<DateTimeUtc>,
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
}

impl ActiveModelBehavior for ActiveModel {}

impl ClassInfo for Entity {
    const NAME: &'static str = "TenantFeature";
    const PLANE: Plane = Plane::Runtime;
    const FORK: Fork = Fork::Never;
    const NATURAL_KEY: &'static [&'static str] = &["feature_key"];
    const SURFACE: Surface = Surface::ReadOnly;
}
