//! A tenant's custom domains: claim, verify by DNS TXT ([`crate::domains`]), remove.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter,
};
use uuid::Uuid;

use crate::{
    domains,
    error::{AppError, AppResult},
    scope::{RequestContext, Role},
    state::AppState,
};

/// `addDomain` (Owners and above): stores the host unverified with a fresh token.
///
/// An unverified claim reserves nothing: other tenants may add the same host, and none of them
/// learns of the others. A host routes only once verified, and only one tenant can hold it
/// verified (a partial unique index on verified hosts); the first to verify wins.
pub async fn add_domain(
    state: &AppState,
    req: &RequestContext,
    host: &str,
) -> AppResult<entity::domains::Model> {
    use entity::domains as d;
    let tenant = req.require_role(Role::Owner)?.id;
    let host = domains::custom_host(host).map_err(|message| AppError::input("host", message))?;
    if let Some(base) = state.config.base_domain.as_deref()
        && (host == base || host.ends_with(&format!(".{base}")))
    {
        return Err(AppError::input(
            "host",
            format!("hosts under {base} route by subdomain; set the tenant's subdomain instead"),
        ));
    }
    let now = Utc::now();
    let tx = state.tenant_tx(tenant).await?;
    let domain = d::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant),
        host: Set(host),
        verification_token: Set(domains::new_token()),
        verified_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&tx)
    .await?;
    tx.commit().await?;
    Ok(domain)
}

async fn own_domain(
    db: &impl ConnectionTrait,
    tenant: Uuid,
    id: Uuid,
) -> AppResult<entity::domains::Model> {
    use entity::domains as d;
    d::Entity::find_by_id(id)
        .filter(d::Column::TenantId.eq(tenant))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("Domain".into()))
}

/// `verifyDomain` (Owners and above): looks for the TXT record and marks the domain verified.
/// Answers the domain before and after.
pub async fn verify_domain(
    state: &AppState,
    req: &RequestContext,
    id: Uuid,
) -> AppResult<(entity::domains::Model, entity::domains::Model)> {
    let tenant = req.require_role(Role::Owner)?.id;
    // Read, then look the record up outside any transaction, then write in a new one.
    let tx = state.tenant_tx(tenant).await?;
    let domain = own_domain(&tx, tenant, id).await?;
    tx.commit().await?;
    if domain.verified_at.is_some() {
        return Ok((domain.clone(), domain));
    }
    let before = domain.clone();
    let name = domains::challenge_name(&domain.host);
    let expected = domains::challenge_value(&domain.verification_token);
    let records = state.resolver().txt(&name).await.map_err(|err| {
        tracing::warn!(error = %err, name, "TXT lookup failed");
        AppError::PreconditionFailed(format!(
            "the TXT record at {name} could not be looked up; try again later"
        ))
    })?;
    if !records.iter().any(|r| r.trim() == expected) {
        return Err(AppError::PreconditionFailed(format!(
            "no TXT record `{expected}` at {name} yet (DNS changes can take a while)"
        )));
    }
    // Only someone who controls the host's DNS gets this far, so saying that another tenant
    // holds it reveals nothing they could not see by resolving it.
    let taken = entity::domains::Entity::find()
        .filter(entity::domains::Column::Host.eq(domain.host.as_str()))
        .filter(entity::domains::Column::VerifiedAt.is_not_null())
        .filter(entity::domains::Column::TenantId.ne(tenant))
        .count(&state.db)
        .await?
        > 0;
    if taken {
        return Err(host_taken(&domain.host));
    }
    let host = domain.host.clone();
    let mut active: entity::domains::ActiveModel = domain.into();
    active.verified_at = Set(Some(Utc::now()));
    active.updated_at = Set(Utc::now());
    // Two tenants verifying at once: the partial unique index lets one through. The check
    // above reads every tenant's verified hosts (the system pool, as host routing does).
    let taken = |err: sea_orm::DbErr| match AppError::from(err) {
        AppError::Conflict(_) => host_taken(&host),
        other => other,
    };
    let tx = state.tenant_tx(tenant).await?;
    let verified = active.update(&tx).await.map_err(taken)?;
    tx.commit().await.map_err(taken)?;
    Ok((before, verified))
}

fn host_taken(host: &str) -> AppError {
    AppError::Conflict(format!(
        "{host} is already verified by another tenant; remove it there first"
    ))
}

/// `removeDomain` (Owners and above); answers the removed domain.
pub async fn remove_domain(
    state: &AppState,
    req: &RequestContext,
    id: Uuid,
) -> AppResult<entity::domains::Model> {
    let tenant = req.require_role(Role::Owner)?.id;
    let tx = state.tenant_tx(tenant).await?;
    let domain = own_domain(&tx, tenant, id).await?;
    entity::domains::Entity::delete_by_id(domain.id)
        .exec(&tx)
        .await?;
    tx.commit().await?;
    Ok(domain)
}
