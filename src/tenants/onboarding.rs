//! A tenant's onboarding checklist.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

use super::branding::find_branding;
use crate::{error::AppResult, scope::Role, state::AppState};

/// The onboarding checklist of a tenant: each step done or not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Onboarding {
    pub root_organization: bool,
    pub forked: bool,
    pub staff_administrator: bool,
    pub domain_verified: bool,
    pub branding_set: bool,
}

/// Computes the checklist of `tenant`, in that tenant's transaction.
pub async fn onboarding(state: &AppState, tenant: Uuid) -> AppResult<Onboarding> {
    let tx = state.tenant_tx(tenant).await?;
    let checklist = onboarding_in(&tx, tenant).await?;
    tx.commit().await?;
    Ok(checklist)
}

async fn onboarding_in(db: &impl ConnectionTrait, tenant: Uuid) -> AppResult<Onboarding> {
    use entity::{domains as d, fork_runs, memberships, organizations};
    let root_organization = organizations::Entity::find()
        .filter(organizations::Column::TenantId.eq(tenant))
        .filter(organizations::Column::ParentId.is_null())
        .count(db)
        .await?
        > 0;
    let forked = fork_runs::Entity::find()
        .filter(fork_runs::Column::TenantId.eq(tenant))
        .filter(fork_runs::Column::Status.eq(fork_runs::RunStatus::Finished))
        .count(db)
        .await?
        > 0;
    let staff_administrator = memberships::Entity::find()
        .filter(memberships::Column::TenantId.eq(tenant))
        .filter(memberships::Column::Role.eq(Role::Owner.as_str()))
        .count(db)
        .await?
        > 0;
    let domain_verified = d::Entity::find()
        .filter(d::Column::TenantId.eq(tenant))
        .filter(d::Column::VerifiedAt.is_not_null())
        .count(db)
        .await?
        > 0;
    let branding_set = find_branding(db, tenant)
        .await?
        .is_some_and(|b| b.primary_color.is_some() || b.logo.is_some() || b.custom_css.is_some());
    Ok(Onboarding {
        root_organization,
        forked,
        staff_administrator,
        domain_verified,
        branding_set,
    })
}
