//! `notification_subscriptions`: A subscription to a notification rule; one bound to a team (a runtime row) is not forked, since the target has no such team.

use crate::class::{ClassInfo, Fork, Plane};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A subscription to a notification rule; one bound to a team (a runtime row) is not forked, since the target has no such team.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "notification_subscriptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub rule_id: Uuid,
    #[sea_orm(column_type = "Text")]
    pub channel: String,
    #[sea_orm(column_type = "Text")]
    pub audience: String,
    #[sea_orm(nullable)]
    pub team_id: Option<Uuid>,
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
        belongs_to = "super::notification_rules::Entity",
        from = "(Column::TenantId, Column::RuleId)",
        to = "(super::notification_rules::Column::TenantId, super::notification_rules::Column::Id)",
        on_delete = "Cascade"
    )]
    Rule,
    #[sea_orm(
        belongs_to = "super::teams::Entity",
        from = "(Column::TenantId, Column::TeamId)",
        to = "(super::teams::Column::TenantId, super::teams::Column::Id)",
        on_delete = "Cascade"
    )]
    Team,
}

impl ActiveModelBehavior for ActiveModel {}

impl ClassInfo for Entity {
    const NAME: &'static str = "NotificationSubscription";
    const PLANE: Plane = Plane::Configuration;
    const FORK: Fork = Fork::TenantWide;
    const NATURAL_KEY: &'static [&'static str] = &["rule_id", "channel", "audience"];
}
