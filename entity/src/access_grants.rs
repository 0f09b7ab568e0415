//! `access_grants`: Derived: a citizen access grant (read, submit or vote).

use crate::class::{ClassInfo, Fork, Plane};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Derived: a citizen access grant (read, submit or vote).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "access_grants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    #[sea_orm(column_type = "Text")]
    pub kind: String,
    pub application_id: Uuid,
    #[sea_orm(nullable)]
    pub portal_page_id: Option<Uuid>,
    #[sea_orm(nullable)]
    pub action_id: Option<Uuid>,
    #[sea_orm(column_type = "Text")]
    pub resource: String,
    #[sea_orm(column_type = "Text")]
    pub audience: String,
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
        belongs_to = "super::portal_pages::Entity",
        from = "(Column::TenantId, Column::PortalPageId)",
        to = "(super::portal_pages::Column::TenantId, super::portal_pages::Column::Id)",
        on_delete = "Cascade"
    )]
    PortalPage,
    #[sea_orm(
        belongs_to = "super::actions::Entity",
        from = "(Column::TenantId, Column::ActionId)",
        to = "(super::actions::Column::TenantId, super::actions::Column::Id)",
        on_delete = "Cascade"
    )]
    Action,
}

impl ActiveModelBehavior for ActiveModel {}

impl ClassInfo for Entity {
    const NAME: &'static str = "AccessGrant";
    const PLANE: Plane = Plane::Derived;
    const FORK: Fork = Fork::Derived;
    const NATURAL_KEY: &'static [&'static str] = &["kind", "resource"];
}
