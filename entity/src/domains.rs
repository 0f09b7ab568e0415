//! `domains`: A custom domain of a tenant; it routes requests only once verified.

use crate::class::{ClassInfo, Fork, Plane, Surface};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A custom domain of a tenant; it routes requests only once verified.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "domains")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// Unique per tenant; across tenants only among verified domains (migration 5).
    #[sea_orm(column_type = "Text")]
    pub host: String,
    #[sea_orm(column_type = "Text")]
    pub verification_token: String,
    #[sea_orm(nullable)]
    pub verified_at: Option<DateTimeUtc>,
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
    const NAME: &'static str = "Domain";
    const PLANE: Plane = Plane::Runtime;
    const FORK: Fork = Fork::Never;
    const NATURAL_KEY: &'static [&'static str] = &["host"];
    const SURFACE: Surface = Surface::ReadOnly;
}
