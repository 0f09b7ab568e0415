//! `brandings`: A tenant's branding (one per tenant).

use crate::class::{ClassInfo, Fork, Plane};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A tenant's branding (one per tenant).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "brandings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    #[sea_orm(column_type = "Text", nullable)]
    pub primary_color: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub secondary_color: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub header_background_color: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub header_text_color: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub link_color: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub button_color: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub custom_css: Option<String>,
    #[sea_orm(column_type = "Blob", nullable)]
    pub logo: Option<Vec<u8>>,
    #[sea_orm(column_type = "Text", nullable)]
    pub logo_content_type: Option<String>,
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
    const NAME: &'static str = "Branding";
    const PLANE: Plane = Plane::Runtime;
    const FORK: Fork = Fork::Never;
    const NATURAL_KEY: &'static [&'static str] = &["tenant_id"];
}
