//! A tenant's lifecycle (platform admins): create with its root organization and first owner,
//! activate, suspend, extend the trial, delete (see `docs/tenancy.md`).

use chrono::{Duration, Utc};
use entity::tenants::{ProvisioningState, TenantKind, TenantStatus};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QuerySelect,
};
use uuid::Uuid;

use super::{
    catalog::MAX_DAYS,
    members::user_for_email,
    names::{is_dns_label, is_email, slugify},
};
use crate::{
    error::{AppError, AppResult},
    scope::{RequestContext, Role},
    state::AppState,
};

/// Input of `createTenant`.
#[derive(Clone, Debug, Default)]
pub struct CreateTenant {
    pub name: String,
    pub slug: Option<String>,
    pub domain: Option<String>,
    pub subdomain: Option<String>,
    pub active: bool,
    pub trial_days: Option<i64>,
    pub contact_name: Option<String>,
    pub contact_email: Option<String>,
    pub owner_email: Option<String>,
    pub plan: Option<String>,
    pub region_hint: Option<String>,
    /// The tenant's root company in the customer's own systems (seed 003).
    pub root_company_id: Option<String>,
    /// The named tenant database to place the tenant in (`None` or `main`: the main database).
    pub database: Option<String>,
}

/// `createTenant`: the tenant, its root organization, optionally its domain and Owner.
pub async fn create_tenant(
    state: &AppState,
    req: &RequestContext,
    input: CreateTenant,
) -> AppResult<entity::tenants::Model> {
    use entity::{domains, memberships, organizations, tenants};
    req.require_admin()?;
    let name = input.name.trim().to_string();
    if name.is_empty() {
        return Err(AppError::input("input.name", "cannot be empty"));
    }
    let slug = match input.slug {
        Some(s) => s.trim().to_string(),
        None => slugify(&name),
    };
    if !is_dns_label(&slug) {
        return Err(AppError::input(
            "input.slug",
            "must be a DNS label: 1–63 lowercase letters, digits or inner dashes",
        ));
    }
    let subdomain = input.subdomain.map(|s| s.trim().to_lowercase());
    if let Some(s) = &subdomain
        && !is_dns_label(s)
    {
        return Err(AppError::input(
            "input.subdomain",
            "must be a valid DNS label",
        ));
    }
    let domain = input
        .domain
        .map(|d| crate::domains::custom_host(&d))
        .transpose()
        .map_err(|message| AppError::input("input.domain", message))?;
    if let Some(e) = &input.contact_email
        && !is_email(e)
    {
        return Err(AppError::input(
            "input.contactEmail",
            "not an e-mail address",
        ));
    }
    let days = input.trial_days.unwrap_or(state.config.trial_days);
    if !input.active && days <= 0 {
        return Err(AppError::input("input.trialDays", "must be positive"));
    }
    if !input.active && days > MAX_DAYS {
        return Err(AppError::input(
            "input.trialDays",
            format!("at most {MAX_DAYS}"),
        ));
    }
    if tenants::Entity::find()
        .filter(tenants::Column::Slug.eq(slug.as_str()))
        .one(&state.db)
        .await?
        .is_some()
    {
        return Err(AppError::Conflict(format!(
            "a tenant with slug `{slug}` already exists"
        )));
    }
    let database = crate::placement::check_name(
        &state.config.tenant_databases,
        "input.database",
        input.database.as_deref(),
    )?;
    // A named database that cannot be reached refuses the tenant before anything is written.
    let named = match &database {
        Some(name) => Some(crate::placement::pool(&state.tenant_pools, name).await?),
        None => None,
    };
    let now = state.clock.now();
    let tx = crate::db::begin_write(&state.db).await?;
    let tenant = tenants::ActiveModel {
        id: Set(Uuid::now_v7()),
        database: Set(database.clone()),
        slug: Set(slug),
        name: Set(name.clone()),
        kind: Set(TenantKind::Tenant),
        status: Set(if input.active {
            TenantStatus::Active
        } else {
            TenantStatus::Trial
        }
        .as_str()
        .into()),
        trial_ends_at: Set((!input.active).then(|| now + Duration::days(days))),
        suspension_reason: Set(None),
        plan: Set(input.plan),
        region_hint: Set(input.region_hint),
        schema_version: Set(1),
        contact_name: Set(input.contact_name),
        contact_email: Set(input.contact_email),
        subdomain: Set(subdomain),
        provisioning_state: Set(ProvisioningState::Pending),
        created_at: Set(now),
        updated_at: Set(now),
        root_company_id: Set(input.root_company_id),
    }
    .insert(&tx)
    .await?;
    // A placed tenant's organizations live in its database: `placement::prepare` below (or
    // its first fork) creates the root there.
    if database.is_none() {
        organizations::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(tenant.id),
            parent_id: Set(None),
            name: Set(name),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&tx)
        .await?;
    }
    if let Some(host) = domain {
        domains::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(tenant.id),
            host: Set(host),
            // The same token format as `addDomain`: the TXT value is
            // `forklift-verification=<token>` either way.
            verification_token: Set(crate::domains::new_token()),
            verified_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&tx)
        .await?;
    }
    if let Some(email) = input.owner_email {
        let user = user_for_email(&tx, &email).await.map_err(|e| match e {
            AppError::BadUserInput { message, .. } => AppError::input("input.ownerEmail", message),
            other => other,
        })?;
        memberships::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(tenant.id),
            user_id: Set(user.id),
            role: Set(Role::Owner),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&tx)
        .await?;
    }
    tx.commit().await?;
    if let (Some(name), Some(named)) = (&database, &named) {
        // The tenant's copy of its catalog row, the vocabulary and its members' users, and its
        // root organization; a fork into it does the same in its own transaction, so a
        // failure here only delays it.
        if let Err(err) =
            crate::placement::prepare(&state.db, named, name, &state.registry, tenant.id).await
        {
            tracing::warn!(tenant.id = %tenant.id, database = %name, error = ?err, "preparing the tenant's database failed; its first fork will");
        }
    }
    Ok(tenant)
}

pub(super) async fn tenant_or_404(
    db: &DatabaseConnection,
    id: Uuid,
) -> AppResult<entity::tenants::Model> {
    super::catalog::tenant(db, id)
        .await?
        .ok_or(AppError::NotFound("Tenant".into()))
}

async fn save_tenant(
    db: &DatabaseConnection,
    model: entity::tenants::Model,
    change: impl FnOnce(&mut entity::tenants::ActiveModel),
) -> AppResult<entity::tenants::Model> {
    let mut active: entity::tenants::ActiveModel = model.into();
    change(&mut active);
    active.updated_at = Set(Utc::now());
    Ok(active.update(db).await?)
}

/// `activateTenant`.
pub async fn activate(
    state: &AppState,
    req: &RequestContext,
    id: Uuid,
) -> AppResult<entity::tenants::Model> {
    req.require_admin()?;
    let t = tenant_or_404(&state.db, id).await?;
    if t.kind == TenantKind::Template {
        return Err(AppError::PreconditionFailed(
            "the template has no lifecycle".into(),
        ));
    }
    save_tenant(&state.db, t, |a| {
        a.status = Set(TenantStatus::Active.as_str().into());
        a.suspension_reason = Set(None);
        a.trial_ends_at = Set(None);
    })
    .await
}

/// `suspendTenant`.
pub async fn suspend(
    state: &AppState,
    req: &RequestContext,
    id: Uuid,
    reason: Option<String>,
) -> AppResult<entity::tenants::Model> {
    req.require_admin()?;
    // Optional (seed 002); stored and shown when given.
    let reason = reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    let t = tenant_or_404(&state.db, id).await?;
    if t.kind == TenantKind::Template {
        return Err(AppError::PreconditionFailed(
            "the template cannot be suspended".into(),
        ));
    }
    save_tenant(&state.db, t, |a| {
        a.status = Set(TenantStatus::Suspended.as_str().into());
        a.suspension_reason = Set(reason);
    })
    .await
}

/// `extendTrial`.
pub async fn extend_trial(
    state: &AppState,
    req: &RequestContext,
    id: Uuid,
    days: i64,
) -> AppResult<entity::tenants::Model> {
    req.require_admin()?;
    if days <= 0 {
        return Err(AppError::input("days", "must be positive"));
    }
    if days > MAX_DAYS {
        return Err(AppError::input("days", format!("at most {MAX_DAYS}")));
    }
    let t = tenant_or_404(&state.db, id).await?;
    if t.status != TenantStatus::Trial.as_str() {
        return Err(AppError::PreconditionFailed(format!(
            "the tenant is {}, not in a trial",
            t.status
        )));
    }
    let now = state.clock.now();
    let base = t.trial_ends_at.unwrap_or(now).max(now);
    save_tenant(&state.db, t, |a| {
        a.trial_ends_at = Set(Some(base + Duration::days(days)))
    })
    .await
}

/// `deleteTenant` without `purge`: refused while members remain; every row of the tenant goes
/// with it by cascade, in one statement (audit entries stay). `purge: true` is
/// [`crate::offboarding::purge`]: members and all, in bounded batches, resumable.
/// Refuses to delete `tenant` while other tenants' fork runs name it as their source: the
/// database would delete those runs with it (`fork_runs.source_tenant_id` cascades), and a
/// tenant's deletion must never touch another tenant's rows.
pub async fn refuse_if_a_fork_source(
    state: &AppState,
    tenant: &entity::tenants::Model,
) -> AppResult<()> {
    use entity::{fork_runs, tenants};
    let targets: Vec<Uuid> = fork_runs::Entity::find()
        .select_only()
        .column(fork_runs::Column::TenantId)
        .distinct()
        .filter(fork_runs::Column::SourceTenantId.eq(tenant.id))
        .filter(fork_runs::Column::TenantId.ne(tenant.id))
        .into_tuple()
        .all(&state.db)
        .await?;
    if targets.is_empty() {
        return Ok(());
    }
    let mut slugs: Vec<String> = tenants::Entity::find()
        .filter(tenants::Column::Id.is_in(targets))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|t| t.slug)
        .collect();
    slugs.sort();
    let shown = slugs.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    let more = slugs.len().saturating_sub(5);
    Err(AppError::PreconditionFailed(format!(
        "tenant `{}` is the fork source of other tenants ({shown}{}): their run history \
         would be deleted with it",
        tenant.slug,
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )))
}

pub async fn delete_tenant(state: &AppState, req: &RequestContext, id: Uuid) -> AppResult<()> {
    use entity::{memberships, tenants};
    req.require_admin()?;
    let t = tenant_or_404(&state.db, id).await?;
    if t.kind == TenantKind::Template {
        return Err(AppError::PreconditionFailed(
            "the template cannot be deleted".into(),
        ));
    }
    refuse_if_a_fork_source(state, &t).await?;
    let members = memberships::Entity::find()
        .filter(memberships::Column::TenantId.eq(id))
        .count(&state.db)
        .await?;
    if members > 0 {
        return Err(AppError::PreconditionFailed(format!(
            "the tenant still has {members} member(s); remove them first"
        )));
    }
    // A placed tenant's rows are in its database, under its copy of the catalog row (their
    // foreign keys cascade from it): that database must answer before anything is deleted.
    let named = match &t.database {
        Some(name) => Some(crate::placement::pool(&state.tenant_pools, name).await?),
        None => None,
    };
    tenants::Entity::delete_by_id(id).exec(&state.db).await?;
    if let Some(named) = named {
        let tx = crate::db::begin_write(&named).await?;
        crate::access::name_tenant_in(&tx, id).await?;
        tenants::Entity::delete_by_id(id).exec(&tx).await?;
        tx.commit().await?;
    }
    Ok(())
}
