//! `teams`: A team of an organization with the services it may use.

use crate::class::{ClassInfo, Fork, Plane, Surface};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A team of an organization with the services it may use.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "teams")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub organization_id: Uuid,
    #[sea_orm(column_type = "Text")]
    pub name: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub services: Json,
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
        belongs_to = "super::organizations::Entity",
        from = "(Column::TenantId, Column::OrganizationId)",
        to = "(super::organizations::Column::TenantId, super::organizations::Column::Id)",
        on_delete = "Cascade"
    )]
    Organization,
}

impl ActiveModelBehavior for ActiveModel {}

impl ClassInfo for Entity {
    const NAME: &'static str = "Team";
    const PLANE: Plane = Plane::Runtime;
    const FORK: Fork = Fork::Never;
    const NATURAL_KEY: &'static [&'static str] = &["organization_id", "name"];
    const SURFACE: Surface = Surface::Managed;
}
