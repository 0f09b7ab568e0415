//! Tenants that must exist: the template, and a bootstrap's first tenant, each with its root
//! organization. Idempotent: sheets imports, bootstrap and tests call these freely.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::state::AppState;
use entity::tenants::{ProvisioningState, TenantKind, TenantStatus};

/// The slug of the template tenant.
pub const TEMPLATE_SLUG: &str = "template";

/// Ensures the template tenant exists (with its root organization) and returns it.
pub async fn ensure_template(state: &AppState) -> anyhow::Result<entity::tenants::Model> {
    ensure_tenant(state, TEMPLATE_SLUG, "Template", TenantKind::Template).await
}

/// Ensures a tenant with `slug` exists (with its root organization) and returns it.
pub async fn ensure_tenant(
    state: &AppState,
    slug: &str,
    name: &str,
    kind: TenantKind,
) -> anyhow::Result<entity::tenants::Model> {
    use entity::{organizations, tenants};
    let existing = tenants::Entity::find()
        .filter(tenants::Column::Slug.eq(slug))
        .one(&state.db)
        .await?;
    let tenant = match existing {
        Some(t) => t,
        None => {
            let now = Utc::now();
            tenants::ActiveModel {
                id: Set(Uuid::new_v5(
                    &Uuid::NAMESPACE_URL,
                    format!("forklift:tenant:{slug}").as_bytes(),
                )),
                slug: Set(slug.into()),
                name: Set(name.into()),
                kind: Set(kind),
                status: Set(TenantStatus::Active.as_str().into()),
                trial_ends_at: Set(None),
                suspension_reason: Set(None),
                plan: Set(None),
                region_hint: Set(None),
                schema_version: Set(1),
                contact_name: Set(None),
                contact_email: Set(None),
                root_company_id: Set(None),
                database: Set(None),
                subdomain: Set(if kind == TenantKind::Tenant {
                    Some(slug.into())
                } else {
                    None
                }),
                provisioning_state: Set(if kind == TenantKind::Template {
                    ProvisioningState::Ready
                } else {
                    ProvisioningState::Pending
                }),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&state.db)
            .await?
        }
    };
    let root = organizations::Entity::find()
        .filter(organizations::Column::TenantId.eq(tenant.id))
        .filter(organizations::Column::ParentId.is_null())
        .one(&state.db)
        .await?;
    if root.is_none() {
        let now = Utc::now();
        organizations::ActiveModel {
            id: Set(Uuid::new_v5(&tenant.id, b"root-organization")),
            tenant_id: Set(tenant.id),
            parent_id: Set(None),
            name: Set(name.into()),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&state.db)
        .await?;
    }
    Ok(tenant)
}
