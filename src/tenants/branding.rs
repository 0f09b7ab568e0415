//! A tenant's branding: colours, custom CSS and the logo, in the caller's tenant; the public logo
//! by slug. The checks themselves are in [`crate::branding`].

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QuerySelect, sea_query::OnConflict,
};
use uuid::Uuid;

use super::names::is_dns_label;
use crate::{
    branding,
    error::{AppError, AppResult},
    scope::{RequestContext, Role},
    state::AppState,
};

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
    let tx = state.placed_tx(tenant).await?;
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

pub(super) async fn find_branding(
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

/// A branding as a change made it: before (the empty branding when none was saved) and after.
pub type BrandingChanged = (entity::brandings::Model, entity::brandings::Model);

async fn save_branding(
    state: &AppState,
    tenant: Uuid,
    apply: impl FnOnce(&mut entity::brandings::ActiveModel),
) -> AppResult<BrandingChanged> {
    use entity::brandings;
    let now = Utc::now();
    let tx = state.placed_tx(tenant).await?;
    // The tenant's one branding row exists from here on: two first changes at once both find
    // it (the second insert waits for the first and does nothing) instead of one failing on the
    // unique tenant key. The row is then read locked, so `before` is what this change replaced.
    let created = brandings::Entity::insert(brandings::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(brandings::Column::TenantId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(&tx)
    .await?
        == 1;
    let mut select = brandings::Entity::find().filter(brandings::Column::TenantId.eq(tenant));
    if crate::db::is_postgres(&tx) {
        select = select.lock_exclusive();
    }
    let existing = select
        .one(&tx)
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the branding row vanished")))?;
    let before = if created {
        empty_branding(tenant)
    } else {
        existing.clone()
    };
    let mut active: brandings::ActiveModel = existing.into();
    apply(&mut active);
    active.updated_at = Set(now);
    let saved = active.update(&tx).await?;
    tx.commit().await?;
    Ok((before, saved))
}

/// `updateBranding` (Super Users and above).
pub async fn update_branding(
    state: &AppState,
    req: &RequestContext,
    change: BrandingChange,
) -> AppResult<BrandingChanged> {
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
) -> AppResult<BrandingChanged> {
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
    if !is_dns_label(&slug.to_lowercase()) {
        return Ok(None);
    }
    let Some(tenant) = tenants::Entity::find()
        .filter(tenants::Column::Slug.eq(slug.to_lowercase()))
        .one(&state.db)
        .await?
    else {
        return Ok(None);
    };
    let tx = state.placed_tx(tenant.id).await?;
    let branding = find_branding(&tx, tenant.id).await?;
    tx.commit().await?;
    Ok(branding.and_then(|b| Some((b.logo?, b.logo_content_type?))))
}
