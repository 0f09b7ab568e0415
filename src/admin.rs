//! Tenant administration (SPEC §2, §6): the catalog and lifecycle, members and roles, and the
//! audit log that records every administrative mutation, allowed or refused.

use chrono::{Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    error::{AppError, AppResult},
    fork::{engine::ForkOutcome, runs},
    registry::{ColumnKind, RowClass},
    rows::{Cell, Row},
    scope::{RequestContext, Role},
    state::AppState,
};

/// Converts a sea-orm model into a generic [`Row`] of `class` (for the generated types).
pub fn model_row<M: Serialize>(class: &RowClass, model: &M) -> AppResult<Row> {
    let json = serde_json::to_value(model).map_err(|e| AppError::Internal(e.into()))?;
    let mut row = Row::default();
    for column in &class.columns {
        let value = json.get(&column.name).cloned().unwrap_or_default();
        let cell = match (column.kind, value) {
            (_, serde_json::Value::Null) => Cell::Null,
            (ColumnKind::Uuid, serde_json::Value::String(s)) => {
                Uuid::parse_str(&s).map_or(Cell::Null, Cell::Uuid)
            }
            (ColumnKind::Timestamp, serde_json::Value::String(s)) => {
                chrono::DateTime::parse_from_rfc3339(&s)
                    .map_or(Cell::Null, |t| Cell::Timestamp(t.with_timezone(&Utc)))
            }
            (ColumnKind::Text, serde_json::Value::String(s)) => Cell::Text(s),
            (ColumnKind::Int, v) => v.as_i64().map_or(Cell::Null, Cell::Int),
            (ColumnKind::Bool, v) => v.as_bool().map_or(Cell::Null, Cell::Bool),
            (ColumnKind::Json, v) => Cell::Json(v),
            (_, _) => Cell::Null,
        };
        row.set(column.name.clone(), cell);
    }
    Ok(row)
}

/// The in-memory `ForkRun` a dry run returns (never stored).
pub fn planned_run_row(
    class: &RowClass,
    input: &runs::ForkPlanInput,
    outcome: &ForkOutcome,
    actor: &str,
) -> AppResult<Row> {
    let now = Utc::now();
    let run = entity::fork_runs::Model {
        id: Uuid::now_v7(),
        tenant_id: input.target.id,
        source_tenant_id: input.source.id,
        status: runs::status::PLANNED.into(),
        phase: None,
        dry_run: true,
        counts: serde_json::to_value(&outcome.counts).unwrap_or_default(),
        skipped: serde_json::to_value(&outcome.skipped).unwrap_or_default(),
        error: None,
        failed_phase: None,
        kind: input.kind().into(),
        template_version: None,
        conflicts: Some(serde_json::to_value(&outcome.conflicts).unwrap_or_default()),
        actor: actor.into(),
        owner: None,
        started_at: Some(now),
        finished_at: Some(now),
        heartbeat_at: None,
        created_at: now,
        updated_at: now,
    };
    model_row(class, &run)
}

/// Filters of the `tenants` query.
#[derive(Clone, Debug, Default)]
pub struct TenantQuery {
    pub status: Option<String>,
    pub kind: Option<String>,
    pub search: Option<String>,
    pub expiring_within_days: Option<i64>,
}

/// The catalog, filtered, oldest first.
pub async fn list_tenants(
    db: &DatabaseConnection,
    filter: &TenantQuery,
    now: chrono::DateTime<Utc>,
) -> AppResult<Vec<entity::tenants::Model>> {
    use entity::tenants;
    let mut query = tenants::Entity::find().order_by_asc(tenants::Column::CreatedAt);
    if let Some(status) = &filter.status {
        query = query.filter(tenants::Column::Status.eq(status.as_str()));
    }
    if let Some(kind) = &filter.kind {
        query = query.filter(tenants::Column::Kind.eq(kind.as_str()));
    }
    if let Some(days) = filter.expiring_within_days {
        query = query.filter(tenants::Column::Status.eq("TRIAL")).filter(
            tenants::Column::TrialEndsAt.lte(expiry_cutoff(
                now,
                days,
                "filter.expiringWithinDays",
            )?),
        );
    }
    let mut all = query.all(db).await?;
    if let Some(search) = filter.search.as_deref().map(str::to_lowercase) {
        all.retain(|t| {
            t.slug.contains(&search)
                || t.name.to_lowercase().contains(&search)
                || t.contact_email
                    .as_deref()
                    .is_some_and(|e| e.to_lowercase().contains(&search))
        });
    }
    Ok(all)
}

/// One tenant.
pub async fn tenant(
    db: &DatabaseConnection,
    id: Uuid,
) -> AppResult<Option<entity::tenants::Model>> {
    Ok(entity::tenants::Entity::find_by_id(id).one(db).await?)
}

/// One tenant by slug.
pub async fn tenant_by_slug(
    db: &DatabaseConnection,
    slug: &str,
) -> AppResult<entity::tenants::Model> {
    use sea_orm::{ColumnTrait, QueryFilter};
    entity::tenants::Entity::find()
        .filter(entity::tenants::Column::Slug.eq(slug.to_lowercase()))
        .one(db)
        .await?
        .ok_or(AppError::TenantNotFound)
}

/// Catalog counts (tenants only, not the template).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantStats {
    pub total: u64,
    pub active: u64,
    pub trial: u64,
    pub suspended: u64,
    pub expiring: u64,
}

/// Most days a trial, an extension or an `expiringWithinDays` window may span.
pub const MAX_DAYS: i64 = 3650;

/// `now + days` for an "expiring within" window, with `days` in `0..=MAX_DAYS`.
pub fn expiry_cutoff(
    now: chrono::DateTime<Utc>,
    days: i64,
    field: &str,
) -> AppResult<chrono::DateTime<Utc>> {
    if !(0..=MAX_DAYS).contains(&days) {
        return Err(AppError::input(
            field,
            format!("must be between 0 and {MAX_DAYS} days"),
        ));
    }
    Ok(now + Duration::days(days))
}

/// Counts the catalog; `expiring` are trials ending within `days`.
pub async fn stats(
    db: &DatabaseConnection,
    days: i64,
    now: chrono::DateTime<Utc>,
) -> AppResult<TenantStats> {
    use entity::tenants;
    let cutoff = expiry_cutoff(now, days, "expiringWithinDays")?;
    let base = || tenants::Entity::find().filter(tenants::Column::Kind.eq("TENANT"));
    let status = |s: &'static str| base().filter(tenants::Column::Status.eq(s));
    Ok(TenantStats {
        total: base().count(db).await?,
        active: status("ACTIVE").count(db).await?,
        trial: status("TRIAL").count(db).await?,
        suspended: status("SUSPENDED").count(db).await?,
        expiring: status("TRIAL")
            .filter(tenants::Column::TrialEndsAt.lte(cutoff))
            .count(db)
            .await?,
    })
}

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
}

/// A slug from a name: lowercase ASCII letters and digits joined by single dashes.
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for ch in name.to_lowercase().chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch);
        } else if let Some(folded) = fold_latin(ch) {
            out.push_str(folded);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let mut out: String = out.trim_matches('-').chars().take(63).collect();
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// The ASCII spelling of a common accented Latin letter (`é` → `e`, `ß` → `ss`).
fn fold_latin(ch: char) -> Option<&'static str> {
    Some(match ch {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ą' => "a",
        'ç' | 'ć' | 'č' => "c",
        'ď' | 'đ' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => "e",
        'ì' | 'í' | 'î' | 'ï' | 'ī' => "i",
        'ł' => "l",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
        'ř' => "r",
        'ś' | 'š' | 'ş' => "s",
        'ť' | 'ţ' => "t",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => "u",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        'ß' => "ss",
        'æ' => "ae",
        'œ' => "oe",
        _ => return None,
    })
}

/// True for a DNS label of 1–63 lowercase letters, digits and inner dashes.
pub fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// True for a plausible e-mail address: one `@` between a local part and a dotted domain.
pub fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !value.contains(char::is_whitespace)
}

/// Finds or creates the user whose subject is `email`.
pub async fn user_for_email(
    db: &impl sea_orm::ConnectionTrait,
    email: &str,
) -> AppResult<entity::users::Model> {
    use entity::users;
    let email = email.trim().to_lowercase();
    if !is_email(&email) {
        return Err(AppError::input("email", "not an e-mail address"));
    }
    if let Some(user) = users::Entity::find()
        .filter(users::Column::Subject.eq(email.as_str()))
        .one(db)
        .await?
    {
        return Ok(user);
    }
    let now = Utc::now();
    Ok(users::ActiveModel {
        id: Set(Uuid::now_v7()),
        subject: Set(email.clone()),
        email: Set(Some(email)),
        display_name: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        last_seen_at: Set(None),
    }
    .insert(db)
    .await?)
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
    let now = state.clock.now();
    let tx = state.db.begin().await?;
    let tenant = tenants::ActiveModel {
        id: Set(Uuid::now_v7()),
        slug: Set(slug),
        name: Set(name.clone()),
        kind: Set("TENANT".into()),
        status: Set(if input.active { "ACTIVE" } else { "TRIAL" }.into()),
        trial_ends_at: Set((!input.active).then(|| now + Duration::days(days))),
        suspension_reason: Set(None),
        plan: Set(input.plan),
        region_hint: Set(input.region_hint),
        schema_version: Set(1),
        contact_name: Set(input.contact_name),
        contact_email: Set(input.contact_email),
        subdomain: Set(subdomain),
        provisioning_state: Set("PENDING".into()),
        created_at: Set(now),
        updated_at: Set(now),
        root_company_id: Set(input.root_company_id),
    }
    .insert(&tx)
    .await?;
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
            role: Set(Role::Owner.as_str().into()),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&tx)
        .await?;
    }
    tx.commit().await?;
    Ok(tenant)
}

async fn tenant_or_404(db: &DatabaseConnection, id: Uuid) -> AppResult<entity::tenants::Model> {
    tenant(db, id)
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
    if t.kind == "TEMPLATE" {
        return Err(AppError::PreconditionFailed(
            "the template has no lifecycle".into(),
        ));
    }
    save_tenant(&state.db, t, |a| {
        a.status = Set("ACTIVE".into());
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
    if t.kind == "TEMPLATE" {
        return Err(AppError::PreconditionFailed(
            "the template cannot be suspended".into(),
        ));
    }
    save_tenant(&state.db, t, |a| {
        a.status = Set("SUSPENDED".into());
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
    if t.status != "TRIAL" {
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

/// `deleteTenant`: refused while members remain; every row of the tenant goes with it (audit
/// entries stay).
pub async fn delete_tenant(state: &AppState, req: &RequestContext, id: Uuid) -> AppResult<()> {
    use entity::{memberships, tenants};
    req.require_admin()?;
    let t = tenant_or_404(&state.db, id).await?;
    if t.kind == "TEMPLATE" {
        return Err(AppError::PreconditionFailed(
            "the template cannot be deleted".into(),
        ));
    }
    let members = memberships::Entity::find()
        .filter(memberships::Column::TenantId.eq(id))
        .count(&state.db)
        .await?;
    if members > 0 {
        return Err(AppError::PreconditionFailed(format!(
            "the tenant still has {members} member(s); remove them first"
        )));
    }
    tenants::Entity::delete_by_id(id).exec(&state.db).await?;
    Ok(())
}

/// One of the caller's memberships.
#[derive(Clone, Debug)]
pub struct MyMembership {
    pub tenant_id: Uuid,
    pub slug: String,
    pub name: String,
    pub status: String,
    pub role: Role,
}

/// The caller.
#[derive(Clone, Debug)]
pub struct Me {
    pub subject: String,
    pub is_admin: bool,
    pub grants: Vec<String>,
    pub memberships: Vec<MyMembership>,
}

/// `me`.
pub async fn me(state: &AppState, req: &RequestContext) -> AppResult<Me> {
    use entity::{memberships, tenants};
    let mut out = Vec::new();
    if let Some(user) = req.principal.user_id {
        let rows = memberships::Entity::find()
            .filter(memberships::Column::UserId.eq(user))
            .all(&state.db)
            .await?;
        let tenants_by_id: std::collections::HashMap<Uuid, tenants::Model> =
            tenants::Entity::find()
                .filter(tenants::Column::Id.is_in(rows.iter().map(|m| m.tenant_id)))
                .all(&state.db)
                .await?
                .into_iter()
                .map(|t| (t.id, t))
                .collect();
        for m in rows {
            if let (Some(t), Some(role)) = (
                tenants_by_id.get(&m.tenant_id).cloned(),
                Role::parse(&m.role),
            ) {
                out.push(MyMembership {
                    tenant_id: t.id,
                    slug: t.slug,
                    name: t.name,
                    status: t.status,
                    role,
                });
            }
        }
    }
    out.sort_by(|a, b| a.slug.cmp(&b.slug));
    Ok(Me {
        subject: req.principal.subject.clone(),
        is_admin: req.principal.is_admin,
        grants: req.principal.grants.clone(),
        memberships: out,
    })
}

fn membership_row(state: &AppState, m: &entity::memberships::Model) -> AppResult<Row> {
    let class = state
        .registry
        .by_table("memberships")
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no memberships class")))?;
    model_row(class, m)
}

/// Refuses assigning `role` unless the caller outranks it (platform admins may assign any).
fn may_assign(req: &RequestContext, role: Role) -> AppResult<()> {
    if req.principal.is_admin {
        return Ok(());
    }
    let own = req.effective_role().unwrap_or(Role::Viewer);
    if own < Role::SuperUser {
        return Err(AppError::forbidden(
            "managing members needs the SUPER_USER role or higher",
        ));
    }
    if role >= own {
        return Err(AppError::forbidden(format!(
            "a {} cannot assign the {} role",
            own.as_str(),
            role.as_str()
        )));
    }
    Ok(())
}

async fn owners(db: &impl ConnectionTrait, tenant: Uuid) -> AppResult<u64> {
    use entity::memberships;
    Ok(memberships::Entity::find()
        .filter(memberships::Column::TenantId.eq(tenant))
        .filter(memberships::Column::Role.eq(Role::Owner.as_str()))
        .count(db)
        .await?)
}

async fn members(db: &impl ConnectionTrait, tenant: Uuid) -> AppResult<u64> {
    use entity::memberships;
    Ok(memberships::Entity::find()
        .filter(memberships::Column::TenantId.eq(tenant))
        .count(db)
        .await?)
}

async fn membership_in(
    db: &impl ConnectionTrait,
    tenant: Uuid,
    id: Uuid,
) -> AppResult<entity::memberships::Model> {
    use entity::memberships;
    memberships::Entity::find_by_id(id)
        .filter(memberships::Column::TenantId.eq(tenant))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("Membership".into()))
}

/// `addMember`, in the request's tenant transaction.
pub async fn add_member(
    state: &AppState,
    req: &RequestContext,
    email: String,
    role: Role,
) -> AppResult<Row> {
    use entity::memberships;
    let tenant = req.tenant()?.id;
    may_assign(req, role)?;
    let tx = state.tenant_tx(tenant).await?;
    let user = user_for_email(&tx, &email).await?;
    if memberships::Entity::find()
        .filter(memberships::Column::TenantId.eq(tenant))
        .filter(memberships::Column::UserId.eq(user.id))
        .one(&tx)
        .await?
        .is_some()
    {
        return Err(AppError::Conflict("this user is already a member".into()));
    }
    let now = Utc::now();
    let m = memberships::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant),
        user_id: Set(user.id),
        role: Set(role.as_str().into()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&tx)
    .await?;
    tx.commit().await?;
    membership_row(state, &m)
}

/// `changeMemberRole`, in the request's tenant transaction; answers the role before and the
/// membership after.
pub async fn change_role(
    state: &AppState,
    req: &RequestContext,
    id: Uuid,
    role: Role,
) -> AppResult<(Role, Row)> {
    let tenant = req.tenant()?.id;
    let tx = state.tenant_tx(tenant).await?;
    let m = membership_in(&tx, tenant, id).await?;
    let current = Role::parse(&m.role).unwrap_or(Role::Viewer);
    may_assign(req, role)?;
    may_assign(req, current)?;
    if current == Role::Owner && role != Role::Owner && owners(&tx, tenant).await? <= 1 {
        return Err(AppError::LastOwner);
    }
    let mut active: entity::memberships::ActiveModel = m.into();
    active.role = Set(role.as_str().into());
    active.updated_at = Set(Utc::now());
    let m = active.update(&tx).await?;
    tx.commit().await?;
    Ok((current, membership_row(state, &m)?))
}

/// `removeMember`, in the request's tenant transaction; answers the removed membership.
pub async fn remove_member(
    state: &AppState,
    req: &RequestContext,
    id: Uuid,
) -> AppResult<entity::memberships::Model> {
    let tenant = req.tenant()?.id;
    let tx = state.tenant_tx(tenant).await?;
    let m = membership_in(&tx, tenant, id).await?;
    let current = Role::parse(&m.role).unwrap_or(Role::Viewer);
    may_assign(req, current)?;
    // The last Owner stays while anyone else is a member. A platform admin may remove an Owner
    // who is the tenant's only member: that is off-boarding, the step before `deleteTenant`.
    let offboarding = req.principal.is_admin && members(&tx, tenant).await? == 1;
    if current == Role::Owner && owners(&tx, tenant).await? <= 1 && !offboarding {
        return Err(AppError::LastOwner);
    }
    entity::memberships::Entity::delete_by_id(m.id)
        .exec(&tx)
        .await?;
    tx.commit().await?;
    Ok(m)
}

/// `seedStaffAdmin`: the user (created when needed) becomes an Owner of the tenant.
pub async fn seed_staff_admin(
    state: &AppState,
    req: &RequestContext,
    tenant: Uuid,
    email: String,
) -> AppResult<Row> {
    use entity::memberships;
    req.require_admin()?;
    let t = tenant_or_404(&state.db, tenant).await?;
    if t.kind == "TEMPLATE" {
        return Err(AppError::PreconditionFailed(
            "the template has no staff".into(),
        ));
    }
    // The admin names the tenant; the membership is written in that tenant's transaction.
    let tx = state.tenant_tx(tenant).await?;
    let user = user_for_email(&tx, &email).await?;
    let now = Utc::now();
    let existing = memberships::Entity::find()
        .filter(memberships::Column::TenantId.eq(tenant))
        .filter(memberships::Column::UserId.eq(user.id))
        .one(&tx)
        .await?;
    let m = match existing {
        Some(m) => {
            let mut active: memberships::ActiveModel = m.into();
            active.role = Set(Role::Owner.as_str().into());
            active.updated_at = Set(now);
            active.update(&tx).await?
        }
        None => {
            memberships::ActiveModel {
                id: Set(Uuid::now_v7()),
                tenant_id: Set(tenant),
                user_id: Set(user.id),
                role: Set(Role::Owner.as_str().into()),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&tx)
            .await?
        }
    };
    tx.commit().await?;
    membership_row(state, &m)
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn slugs_are_lowercase_ascii_words_joined_by_single_dashes() {
        assert_eq!(slugify("Ville de Saint-Étienne"), "ville-de-saint-etienne");
        assert_eq!(slugify("  Acme -- City!  "), "acme-city");
        assert_eq!(slugify("Straße 42"), "strasse-42");
        assert_eq!(slugify("Łódź"), "lodz");
        assert_eq!(slugify("東京"), "");
        assert_eq!(slugify("---"), "");
    }

    #[test]
    fn slugs_are_at_most_63_characters_and_never_end_in_a_dash() {
        let long = slugify(&"word ".repeat(30));
        assert!(long.len() <= 63, "{long}");
        assert!(!long.ends_with('-'), "{long}");
        assert!(long.starts_with("word-word"), "{long}");
        assert_eq!(slugify(&"a".repeat(100)), "a".repeat(63));
        // Cut on a dash: the dash goes too.
        let cut = slugify(&"ab ".repeat(40));
        assert_eq!(cut.len(), 62, "{cut}");
        assert!(cut.ends_with("-ab"), "{cut}");
    }
}
