//! `template_versions`: The numbered versions of a template.

use crate::class::{ClassInfo, Fork, Plane};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One version of the template `tenant_id`: created by a sheets import or an API edit that
/// changed it, with a summary of the rows added, changed and removed per class.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "template_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub number: i32,
    #[sea_orm(column_type = "Text")]
    pub origin: String,
    #[sea_orm(column_type = "Text")]
    pub actor: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub summary: Json,
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
    const NAME: &'static str = "TemplateVersion";
    const PLANE: Plane = Plane::Runtime;
    const FORK: Fork = Fork::Never;
    const NATURAL_KEY: &'static [&'static str] = &["number"];
}
