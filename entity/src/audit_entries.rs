//! `audit_entries`: One audited mutation, allowed or refused; kept when its tenant is deleted.

use crate::class::{ClassInfo, Fork, Plane, Surface};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One audited mutation, allowed or refused; kept when its tenant is deleted.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "audit_entries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(nullable)]
    pub tenant_id: Option<Uuid>,
    #[sea_orm(column_type = "Text")]
    pub actor: String,
    #[sea_orm(column_type = "Text")]
    pub operation: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub target: Option<String>,
    pub outcome: AuditOutcome,
    #[sea_orm(column_type = "JsonBinary")]
    pub detail: Json,
    #[sea_orm(column_type = "Text", nullable)]
    pub request_id: Option<String>,
    pub at: DateTimeUtc,
}

stored_enum! {
    /// What became of an audited mutation.
    AuditOutcome {
        /// It ran.
        Allowed = "ALLOWED",
        /// The caller's mistake or a refusal (its `extensions.code` is in the entry's detail).
        Refused = "REFUSED",
        /// An internal error.
        Failed = "FAILED",
    }
}

/// The rows this class points at; the row-class registry derives references from these.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl ClassInfo for Entity {
    const NAME: &'static str = "AuditEntry";
    const PLANE: Plane = Plane::Runtime;
    const FORK: Fork = Fork::Never;
    const NATURAL_KEY: &'static [&'static str] = &[];
    const SURFACE: Surface = Surface::AuditLog;
}
