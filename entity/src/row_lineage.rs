//! `row_lineage`: Where a tenant's copied row came from, and its base content.

use crate::class::{ClassInfo, Fork, Plane};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The lineage of one copied row of `tenant_id` (its id is the copy's id): the source row and
/// the source's content when it was last forked or upgraded (`base`, field → JSON value, in the
/// target's id space). A lineage row whose copy no longer exists is a tombstone: the tenant
/// deleted the copy.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "row_lineage")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    #[sea_orm(column_type = "Text")]
    pub table_name: String,
    pub source_tenant_id: Uuid,
    pub source_id: Uuid,
    #[sea_orm(column_type = "JsonBinary")]
    pub base: Json,
    #[sea_orm(nullable)]
    pub base_version: Option<i32>,
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
    const NAME: &'static str = "RowLineage";
    const PLANE: Plane = Plane::Runtime;
    const FORK: Fork = Fork::Never;
    const NATURAL_KEY: &'static [&'static str] = &[];
}
