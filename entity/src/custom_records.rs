//! `custom_records`: A record of a sheet-declared configuration type.

use crate::class::{ClassInfo, Fork, Plane};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A record of a sheet-declared configuration type.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "custom_records")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub custom_type_id: Uuid,
    #[sea_orm(nullable)]
    pub application_id: Option<Uuid>,
    #[sea_orm(column_type = "Text")]
    pub key: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub data: Json,
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
        belongs_to = "super::custom_types::Entity",
        from = "Column::CustomTypeId",
        to = "super::custom_types::Column::Id",
        on_delete = "Restrict"
    )]
    CustomType,
    #[sea_orm(
        belongs_to = "super::applications::Entity",
        from = "(Column::TenantId, Column::ApplicationId)",
        to = "(super::applications::Column::TenantId, super::applications::Column::Id)",
        on_delete = "Cascade"
    )]
    Application,
}

impl ActiveModelBehavior for ActiveModel {}

impl ClassInfo for Entity {
    const NAME: &'static str = "CustomRecord";
    const PLANE: Plane = Plane::Configuration;
    const FORK: Fork = Fork::TenantWide;
    const NATURAL_KEY: &'static [&'static str] = &["custom_type_id", "key"];
}
