//! Tenant administration beyond lifecycle and members (SPEC §6): branding, custom domains, the
//! feature catalog, team access decisions and the onboarding checklist. Every function takes the
//! request context and works in its tenant only; the GraphQL wiring is in `graphql::tenancy`.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder,
};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::{
    admin, branding, domains,
    error::{AppError, AppResult},
    scope::{RequestContext, Role},
    state::AppState,
};

// ---------------------------------------------------------------------------------------------
// Branding

/// A change to a branding: `Some("")` clears a value, `None` leaves it.
#[derive(Clone, Debug, Default)]
pub struct BrandingChange {
    /// `(column, value)` for the colours given.
    pub colors: Vec<(&'static str, String)>,
    pub custom_css: Option<String>,
}

/// The branding of the request's tenant (an empty one when none was saved).
pub async fn branding(
    state: &AppState,
    req: &RequestContext,
) -> AppResult<entity::brandings::Model> {
    let tenant = req.tenant()?.id;
    let tx = state.tenant_tx(tenant).await?;
    let found = find_branding(&tx, tenant).await?;
    tx.commit().await?;
    Ok(found.unwrap_or_else(|| empty_branding(tenant)))
}

fn empty_branding(tenant: Uuid) -> entity::brandings::Model {
    let now = Utc::now();
    entity::brandings::Model {
        id: Uuid::nil(),
        tenant_id: tenant,
        primary_color: None,
        secondary_color: None,
        header_background_color: None,
        header_text_color: None,
        link_color: None,
        button_color: None,
        custom_css: None,
        logo: None,
        logo_content_type: None,
        created_at: now,
        updated_at: now,
    }
}

async fn find_branding(
    db: &impl ConnectionTrait,
    tenant: Uuid,
) -> AppResult<Option<entity::brandings::Model>> {
    use entity::brandings;
    Ok(brandings::Entity::find()
        .filter(brandings::Column::TenantId.eq(tenant))
        .one(db)
        .await?)
}

/// Validates every value of `change` (all problems reported by the first failing field).
pub fn validate_branding(
    colors: &[(&'static str, &'static str, Option<String>)],
    css: Option<String>,
) -> AppResult<BrandingChange> {
    let mut change = BrandingChange::default();
    for (field, column, value) in colors {
        if let Some(value) = value {
            let value = if value.is_empty() {
                String::new()
            } else {
                branding::color(field, value)?
            };
            change.colors.push((column, value));
        }
    }
    if let Some(css) = css {
        change.custom_css = Some(if css.trim().is_empty() {
            String::new()
        } else {
            branding::custom_css(&css)?
        });
    }
    Ok(change)
}

async fn save_branding(
    state: &AppState,
    tenant: Uuid,
    apply: impl FnOnce(&mut entity::brandings::ActiveModel),
) -> AppResult<entity::brandings::Model> {
    use entity::brandings;
    let now = Utc::now();
    let tx = state.tenant_tx(tenant).await?;
    let existing = find_branding(&tx, tenant).await?;
    let is_new = existing.is_none();
    let mut active: brandings::ActiveModel = match existing {
        Some(model) => model.into(),
        None => brandings::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(tenant),
            created_at: Set(now),
            ..Default::default()
        },
    };
    apply(&mut active);
    active.updated_at = Set(now);
    let saved = if is_new {
        active.insert(&tx).await?
    } else {
        active.update(&tx).await?
    };
    tx.commit().await?;
    Ok(saved)
}

/// `updateBranding` (Super Users and above).
pub async fn update_branding(
    state: &AppState,
    req: &RequestContext,
    change: BrandingChange,
) -> AppResult<entity::brandings::Model> {
    let tenant = req.require_role(Role::SuperUser)?.id;
    let none_if_empty = |v: String| if v.is_empty() { None } else { Some(v) };
    save_branding(state, tenant, |active| {
        for (column, value) in change.colors {
            let value = Set(none_if_empty(value));
            match column {
                "primary_color" => active.primary_color = value,
                "secondary_color" => active.secondary_color = value,
                "header_background_color" => active.header_background_color = value,
                "header_text_color" => active.header_text_color = value,
                "link_color" => active.link_color = value,
                _ => active.button_color = value,
            }
        }
        if let Some(css) = change.custom_css {
            active.custom_css = Set(none_if_empty(css));
        }
    })
    .await
}

/// `uploadLogo` (Super Users and above): the type is decided from the bytes.
pub async fn set_logo(
    state: &AppState,
    req: &RequestContext,
    bytes: Option<Vec<u8>>,
) -> AppResult<entity::brandings::Model> {
    let tenant = req.require_role(Role::SuperUser)?.id;
    let typed = match bytes {
        Some(bytes) => {
            let content_type = branding::logo_content_type(&bytes)?;
            Some((bytes, content_type))
        }
        None => None,
    };
    save_branding(state, tenant, |active| match typed {
        Some((bytes, content_type)) => {
            active.logo = Set(Some(bytes));
            active.logo_content_type = Set(Some(content_type.to_string()));
        }
        None => {
            active.logo = Set(None);
            active.logo_content_type = Set(None);
        }
    })
    .await
}

/// The logo of the tenant with `slug`, for the public logo endpoint: the slug is looked up in
/// the catalog, the branding read in that tenant's transaction.
pub async fn logo_by_slug(state: &AppState, slug: &str) -> AppResult<Option<(Vec<u8>, String)>> {
    use entity::tenants;
    // A slug is a DNS label; anything else (a NUL, a slash) names no tenant.
    if !admin::is_dns_label(&slug.to_lowercase()) {
        return Ok(None);
    }
    let Some(tenant) = tenants::Entity::find()
        .filter(tenants::Column::Slug.eq(slug.to_lowercase()))
        .one(&state.db)
        .await?
    else {
        return Ok(None);
    };
    let tx = state.tenant_tx(tenant.id).await?;
    let branding = find_branding(&tx, tenant.id).await?;
    tx.commit().await?;
    Ok(branding.and_then(|b| Some((b.logo?, b.logo_content_type?))))
}

// ---------------------------------------------------------------------------------------------
// Domains

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
pub async fn verify_domain(
    state: &AppState,
    req: &RequestContext,
    id: Uuid,
) -> AppResult<entity::domains::Model> {
    let tenant = req.require_role(Role::Owner)?.id;
    // Read, then look the record up outside any transaction, then write in a new one.
    let tx = state.tenant_tx(tenant).await?;
    let domain = own_domain(&tx, tenant, id).await?;
    tx.commit().await?;
    if domain.verified_at.is_some() {
        return Ok(domain);
    }
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
    Ok(verified)
}

fn host_taken(host: &str) -> AppError {
    AppError::Conflict(format!(
        "{host} is already verified by another tenant; remove it there first"
    ))
}

/// `removeDomain` (Owners and above).
pub async fn remove_domain(state: &AppState, req: &RequestContext, id: Uuid) -> AppResult<()> {
    let tenant = req.require_role(Role::Owner)?.id;
    let tx = state.tenant_tx(tenant).await?;
    let domain = own_domain(&tx, tenant, id).await?;
    entity::domains::Entity::delete_by_id(domain.id)
        .exec(&tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Feature catalog

/// One feature record to register.
#[derive(Clone, Debug)]
pub struct FeatureInput {
    pub key: String,
    pub version: String,
    pub provider: String,
    pub customization: Json,
    pub last_migrated_at: Option<chrono::DateTime<Utc>>,
}

/// `registerFeatures` (platform admins): upserts by feature key, in one transaction.
pub async fn register_features(
    state: &AppState,
    req: &RequestContext,
    tenant: Uuid,
    features: Vec<FeatureInput>,
) -> AppResult<Vec<entity::tenant_features::Model>> {
    use entity::tenant_features as f;
    req.require_admin()?;
    admin::tenant(&state.db, tenant)
        .await?
        .ok_or(AppError::NotFound("Tenant".into()))?;
    for (i, feature) in features.iter().enumerate() {
        if feature.key.trim().is_empty() {
            return Err(AppError::input(
                format!("features.{i}.key"),
                "must not be empty",
            ));
        }
        if features[..i].iter().any(|other| other.key == feature.key) {
            return Err(AppError::input(
                format!("features.{i}.key"),
                format!("`{}` is given twice", feature.key),
            ));
        }
    }
    // The admin names the tenant; its features are written in that tenant's transaction.
    let tx = state.tenant_tx(tenant).await?;
    let now = Utc::now();
    for feature in features {
        let existing = f::Entity::find()
            .filter(f::Column::TenantId.eq(tenant))
            .filter(f::Column::FeatureKey.eq(feature.key.as_str()))
            .one(&tx)
            .await?;
        match existing {
            Some(model) => {
                let mut active: f::ActiveModel = model.into();
                active.version = Set(feature.version);
                active.provider = Set(feature.provider);
                active.customization = Set(feature.customization);
                active.last_migrated_at = Set(feature.last_migrated_at);
                active.updated_at = Set(now);
                active.update(&tx).await?
            }
            None => {
                f::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    tenant_id: Set(tenant),
                    feature_key: Set(feature.key),
                    version: Set(feature.version),
                    provider: Set(feature.provider),
                    customization: Set(feature.customization),
                    last_migrated_at: Set(feature.last_migrated_at),
                    created_at: Set(now),
                    updated_at: Set(now),
                }
                .insert(&tx)
                .await?
            }
        };
    }
    // The answer is the tenant's whole catalog after the upsert, not only the features sent
    // (seed 002: the registration returns what the tenant now has).
    let catalog = f::Entity::find()
        .filter(f::Column::TenantId.eq(tenant))
        .order_by_asc(f::Column::FeatureKey)
        .all(&tx)
        .await?;
    tx.commit().await?;
    Ok(catalog)
}

/// The fields `updateFeature` may change; at least one must be given.
#[derive(Clone, Debug, Default)]
pub struct FeatureChange {
    pub version: Option<String>,
    pub provider: Option<String>,
    pub customization: Option<Json>,
    pub last_migrated_at: Option<chrono::DateTime<Utc>>,
}

/// `updateFeature` (platform admins): changes only the fields given.
pub async fn update_feature(
    state: &AppState,
    req: &RequestContext,
    id: Uuid,
    change: FeatureChange,
) -> AppResult<entity::tenant_features::Model> {
    req.require_admin()?;
    if change.version.is_none()
        && change.provider.is_none()
        && change.customization.is_none()
        && change.last_migrated_at.is_none()
    {
        return Err(AppError::input(
            "input",
            "give at least one field to change",
        ));
    }
    // The id names no tenant: which tenant holds it is a catalog question for the system pool;
    // the change is made in that tenant's transaction.
    let owner = entity::tenant_features::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or(AppError::NotFound("TenantFeature".into()))?
        .tenant_id;
    let tx = state.tenant_tx(owner).await?;
    let model = entity::tenant_features::Entity::find_by_id(id)
        .filter(entity::tenant_features::Column::TenantId.eq(owner))
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("TenantFeature".into()))?;
    let mut active: entity::tenant_features::ActiveModel = model.into();
    if let Some(v) = change.version {
        active.version = Set(v);
    }
    if let Some(v) = change.provider {
        active.provider = Set(v);
    }
    if let Some(v) = change.customization {
        active.customization = Set(v);
    }
    if let Some(v) = change.last_migrated_at {
        active.last_migrated_at = Set(Some(v));
    }
    active.updated_at = Set(Utc::now());
    let saved = active.update(&tx).await?;
    tx.commit().await?;
    Ok(saved)
}

// ---------------------------------------------------------------------------------------------
// Access decisions

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
    let tx = state.tenant_tx(tenant).await?;
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

// ---------------------------------------------------------------------------------------------
// Onboarding

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
        .filter(fork_runs::Column::Status.eq("FINISHED"))
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
