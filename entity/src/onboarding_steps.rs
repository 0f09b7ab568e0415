//! `onboarding_steps`: The onboarding checklist the template declares (vocabulary sheets).

use crate::class::{ClassInfo, Fork, Plane};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One step of the onboarding checklist every tenant works through: declared by the template's
/// sheets (`vocabulary.onboarding_steps`), shared like the rest of the vocabulary. A step with a
/// `server_check` completes itself; one without is marked done by a tenant's Super User.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "onboarding_steps")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(column_type = "Text", unique)]
    pub key: String,
    #[sea_orm(column_type = "Text")]
    pub title: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub hint: Option<String>,
    /// Where the step appears in the checklist (ascending, then by key).
    pub position: i32,
    /// `forked`, `staff_admin_seeded`, `domain_verified` or `branding_set`; none for a manual
    /// step.
    #[sea_orm(column_type = "Text", nullable)]
    pub server_check: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

/// The rows this class points at; the row-class registry derives references from these.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl ClassInfo for Entity {
    const NAME: &'static str = "OnboardingStepDefinition";
    const PLANE: Plane = Plane::Vocabulary;
    const FORK: Fork = Fork::Never;
    const NATURAL_KEY: &'static [&'static str] = &["key"];
}
