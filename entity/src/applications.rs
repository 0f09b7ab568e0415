//! `applications`: An application of the template or of a tenant.

use crate::class::{ClassInfo, Fork, Plane};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// An application of the template or of a tenant.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "applications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    // With `route_namespace`, a unique key: a route namespace is unique within its tenant. (The
    // natural key, `(tenant_id, code)`, is declared by `ClassInfo`.)
    #[sea_orm(unique_key = "route_namespace")]
    pub tenant_id: Uuid,
    #[sea_orm(column_type = "Text")]
    pub code: String,
    #[sea_orm(column_type = "Text")]
    pub name: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub icon: Option<String>,
    pub nav_order: i32,
    pub is_active: bool,
    #[sea_orm(column_type = "Text", unique_key = "route_namespace")]
    pub route_namespace: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub vertical: Option<String>,
    #[sea_orm(column_type = "JsonBinary")]
    pub features: Json,
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
    const NAME: &'static str = "Application";
    const PLANE: Plane = Plane::Configuration;
    const FORK: Fork = Fork::Spine;
    const NATURAL_KEY: &'static [&'static str] = &["code"];
}
