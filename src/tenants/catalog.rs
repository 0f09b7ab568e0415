//! The tenant catalog (platform admins): listing and filtering tenants, looking one up, and the
//! catalog's statistics (see `docs/tenancy.md`).

use chrono::{Duration, Utc};
use entity::tenants::{TenantKind, TenantStatus};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

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
        query = query
            .filter(tenants::Column::Status.eq(TenantStatus::Trial.as_str()))
            .filter(tenants::Column::TrialEndsAt.lte(expiry_cutoff(
                now,
                days,
                "filter.expiringWithinDays",
            )?));
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
    let base = || tenants::Entity::find().filter(tenants::Column::Kind.eq(TenantKind::Tenant));
    let status = |s: TenantStatus| base().filter(tenants::Column::Status.eq(s.as_str()));
    Ok(TenantStats {
        total: base().count(db).await?,
        active: status(TenantStatus::Active).count(db).await?,
        trial: status(TenantStatus::Trial).count(db).await?,
        suspended: status(TenantStatus::Suspended).count(db).await?,
        expiring: status(TenantStatus::Trial)
            .filter(tenants::Column::TrialEndsAt.lte(cutoff))
            .count(db)
            .await?,
    })
}
