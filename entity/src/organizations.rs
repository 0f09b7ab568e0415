//! `organizations`: A node of a tenant's organization tree; the root is the one without a parent.

use crate::class::{ClassInfo, Fork, Plane, Surface};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A node of a tenant's organization tree; the root is the one without a parent.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "organizations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    #[sea_orm(nullable)]
    pub parent_id: Option<Uuid>,
    #[sea_orm(column_type = "Text")]
    pub name: String,
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
        belongs_to = "Entity",
        from = "(Column::TenantId, Column::ParentId)",
        to = "(Column::TenantId, Column::Id)",
        on_delete = "Cascade"
    )]
    Parent,
}

impl ActiveModelBehavior for ActiveModel {}

impl ClassInfo for Entity {
    const NAME: &'static str = "Organization";
    const PLANE: Plane = Plane::Runtime;
    const FORK: Fork = Fork::Never;
    const NATURAL_KEY: &'static [&'static str] = &["parent_id", "name"];
    const SURFACE: Surface = Surface::Managed;
}
