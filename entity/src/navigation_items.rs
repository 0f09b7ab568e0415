//! `navigation_items`: An entry of the admin navigation tree.

use crate::class::{ClassInfo, Fork, Plane};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// An entry of the admin navigation tree.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "navigation_items")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    #[sea_orm(nullable)]
    pub parent_id: Option<Uuid>,
    #[sea_orm(nullable)]
    pub application_id: Option<Uuid>,
    #[sea_orm(nullable)]
    pub portal_page_id: Option<Uuid>,
    #[sea_orm(column_type = "Text")]
    pub key: String,
    #[sea_orm(column_type = "Text")]
    pub label: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub route: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub icon: Option<String>,
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
        belongs_to = "Entity",
        from = "(Column::TenantId, Column::ParentId)",
        to = "(Column::TenantId, Column::Id)",
        on_delete = "Cascade"
    )]
    Parent,
    #[sea_orm(
        belongs_to = "super::applications::Entity",
        from = "(Column::TenantId, Column::ApplicationId)",
        to = "(super::applications::Column::TenantId, super::applications::Column::Id)",
        on_delete = "Cascade"
    )]
    Application,
    #[sea_orm(
        belongs_to = "super::portal_pages::Entity",
        from = "(Column::TenantId, Column::PortalPageId)",
        to = "(super::portal_pages::Column::TenantId, super::portal_pages::Column::Id)",
        on_delete = "Cascade"
    )]
    PortalPage,
}

impl ActiveModelBehavior for ActiveModel {}

impl ClassInfo for Entity {
    const NAME: &'static str = "NavigationItem";
    const PLANE: Plane = Plane::Configuration;
    const FORK: Fork = Fork::TenantWide;
    const NATURAL_KEY: &'static [&'static str] = &["key"];
}
