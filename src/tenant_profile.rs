//! `updateTenant`: a tenant's profile — name, contact, plan, region hint, root company and
//! subdomain (seed 003: "tenant updates … after validating that at least one field is
//! present"). Status stays with the lifecycle mutations (`activateTenant`, `suspendTenant`, …).

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::{
    error::{AppError, AppResult},
    scope::RequestContext,
    state::AppState,
    tenants::names::{is_dns_label, is_email},
};

/// A change to a nullable field: `None` leaves it, `Some(None)` clears it.
pub type Change = Option<Option<String>>;

/// What `updateTenant` may change. A field left out is unchanged; a nullable field given as
/// `null` is cleared.
#[derive(Debug, Default)]
pub struct TenantChanges {
    pub name: Option<String>,
    pub contact_name: Change,
    pub contact_email: Change,
    pub plan: Change,
    pub region_hint: Change,
    pub root_company_id: Change,
    pub subdomain: Change,
}

impl TenantChanges {
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.contact_name.is_none()
            && self.contact_email.is_none()
            && self.plan.is_none()
            && self.region_hint.is_none()
            && self.root_company_id.is_none()
            && self.subdomain.is_none()
    }
}

/// A trimmed value; an empty text counts as clearing the field.
fn cleaned(change: Change) -> Change {
    change.map(|value| {
        value
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    })
}

/// The tenant's profile fields as JSON, for the audit entry's before and after.
pub fn profile(t: &entity::tenants::Model) -> serde_json::Value {
    serde_json::json!({
        "name": t.name,
        "contactName": t.contact_name,
        "contactEmail": t.contact_email,
        "plan": t.plan,
        "regionHint": t.region_hint,
        "rootCompanyId": t.root_company_id,
        "subdomain": t.subdomain,
    })
}

/// Applies `changes` to tenant `id` (platform admins); returns the tenant before and after.
pub async fn update_tenant(
    state: &AppState,
    req: &RequestContext,
    id: Uuid,
    changes: TenantChanges,
) -> AppResult<(entity::tenants::Model, entity::tenants::Model)> {
    use entity::tenants;
    req.require_admin()?;
    if changes.is_empty() {
        return Err(AppError::input(
            "input",
            "name at least one field to change (status changes with activateTenant, suspendTenant or extendTrial)",
        ));
    }
    let before = tenants::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or(AppError::NotFound("Tenant".into()))?;
    let name = match changes.name {
        Some(name) if name.trim().is_empty() => {
            return Err(AppError::input("input.name", "cannot be empty"));
        }
        other => other.map(|n| n.trim().to_string()),
    };
    let contact_email = cleaned(changes.contact_email).map(|e| e.map(|e| e.to_lowercase()));
    if let Some(Some(email)) = &contact_email
        && !is_email(email)
    {
        return Err(AppError::input(
            "input.contactEmail",
            "not an e-mail address",
        ));
    }
    let subdomain = cleaned(changes.subdomain).map(|s| s.map(|s| s.to_lowercase()));
    if let Some(Some(label)) = &subdomain {
        if !is_dns_label(label) {
            return Err(AppError::input(
                "input.subdomain",
                "must be a DNS label: 1–63 lowercase letters, digits or inner dashes",
            ));
        }
        let taken = tenants::Entity::find()
            .filter(tenants::Column::Subdomain.eq(label.as_str()))
            .filter(tenants::Column::Id.ne(id))
            .one(&state.db)
            .await?
            .is_some();
        if taken {
            return Err(AppError::Conflict(format!(
                "the subdomain `{label}` belongs to another tenant"
            )));
        }
    }
    let mut active: tenants::ActiveModel = before.clone().into();
    if let Some(name) = name {
        active.name = Set(name);
    }
    if let Some(v) = cleaned(changes.contact_name) {
        active.contact_name = Set(v);
    }
    if let Some(v) = contact_email {
        active.contact_email = Set(v);
    }
    if let Some(v) = cleaned(changes.plan) {
        active.plan = Set(v);
    }
    if let Some(v) = cleaned(changes.region_hint) {
        active.region_hint = Set(v);
    }
    if let Some(v) = cleaned(changes.root_company_id) {
        active.root_company_id = Set(v);
    }
    if let Some(v) = subdomain {
        active.subdomain = Set(v);
    }
    active.updated_at = Set(state.clock.now());
    let after = active.update(&state.db).await?;
    Ok((before, after))
}
