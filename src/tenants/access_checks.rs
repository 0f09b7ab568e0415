//! `checkAccess`: may a team of the caller's tenant use a service.

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

use crate::{
    error::{AppError, AppResult},
    scope::RequestContext,
    state::AppState,
};

/// The answer of `checkAccess`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessDecision {
    pub allowed: bool,
    /// Why not: `NOT_A_MEMBER` or `SERVICE_NOT_ALLOWED`. (A team of another tenant is
    /// `NOT_FOUND`, as a missing one.)
    pub reason: Option<&'static str>,
    pub message: String,
}

/// `checkAccess(teamId, service)`: may the caller use `service` through `team`?
pub async fn check_access(
    state: &AppState,
    req: &RequestContext,
    team: Uuid,
    service: &str,
) -> AppResult<AccessDecision> {
    use entity::{team_members, teams};
    let tenant = req.tenant()?.id;
    // In the request's tenant transaction: another tenant's team is a missing one.
    let tx = state.placed_tx(tenant).await?;
    let Some(team) = teams::Entity::find_by_id(team)
        .filter(teams::Column::TenantId.eq(tenant))
        .one(&tx)
        .await?
    else {
        return Err(AppError::NotFound("Team".into()));
    };
    let member = match req.principal.user_id {
        Some(user) => {
            team_members::Entity::find()
                .filter(team_members::Column::TenantId.eq(tenant))
                .filter(team_members::Column::TeamId.eq(team.id))
                .filter(team_members::Column::UserId.eq(user))
                .count(&tx)
                .await?
                > 0
        }
        None => false,
    };
    tx.commit().await?;
    if !member {
        return Ok(AccessDecision {
            allowed: false,
            reason: Some("NOT_A_MEMBER"),
            message: format!("you are not a member of the team `{}`", team.name),
        });
    }
    let allowed = team.services.as_array().is_some_and(|s| {
        s.iter()
            .any(|v| v.as_str() == Some(service) || v.as_str() == Some("*"))
    });
    Ok(if allowed {
        AccessDecision {
            allowed: true,
            reason: None,
            message: format!("the team `{}` may use `{service}`", team.name),
        }
    } else {
        AccessDecision {
            allowed: false,
            reason: Some("SERVICE_NOT_ALLOWED"),
            message: format!("the team `{}` may not use `{service}`", team.name),
        }
    })
}
