//! `memberships`: A user's role in a tenant.

use crate::class::{ClassInfo, Fork, Plane, Surface};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A user's role in a tenant.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "memberships")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub role: Role,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

crate::stored_enum! {
    /// Tenant roles, lowest first: the declaration order is the hierarchy (`Role::Owner` is
    /// the highest), so roles compare with `<` and `>=`.
    #[derive(PartialOrd, Ord)]
    Role {
        Viewer = "VIEWER",
        Contributor = "CONTRIBUTOR",
        Editor = "EDITOR",
        SuperUser = "SUPER_USER",
        Owner = "OWNER",
    }
}

impl Role {
    /// The roles, highest first (as the `Role` enum of the GraphQL schema lists them).
    pub const HIGHEST_FIRST: [Role; 5] = [
        Role::Owner,
        Role::SuperUser,
        Role::Editor,
        Role::Contributor,
        Role::Viewer,
    ];
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
        belongs_to = "super::users::Entity",
        from = "Column::UserId",
        to = "super::users::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl ActiveModelBehavior for ActiveModel {}

impl ClassInfo for Entity {
    const NAME: &'static str = "Membership";
    const PLANE: Plane = Plane::Runtime;
    const FORK: Fork = Fork::Never;
    const NATURAL_KEY: &'static [&'static str] = &["user_id"];
    const SURFACE: Surface = Surface::ReadOnly;
}
