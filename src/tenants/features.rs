//! The feature catalog: a tenant's features, registered and switched on or off.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::{
    error::{AppError, AppResult},
    scope::RequestContext,
    state::AppState,
};

/// One feature record to register.
#[derive(Clone, Debug)]
pub struct FeatureInput {
    pub key: String,
    pub version: String,
    pub provider: String,
    pub customization: Json,
    pub last_migrated_at: Option<chrono::DateTime<Utc>>,
}

/// What `registerFeatures` did: the tenant's whole catalog after the upsert, and each given
/// key's record before it (`None`: new), for the audit entry.
pub struct Registered {
    pub catalog: Vec<entity::tenant_features::Model>,
    pub before: Vec<(String, Option<entity::tenant_features::Model>)>,
}

/// `registerFeatures` (platform admins): upserts by feature key, in one transaction.
pub async fn register_features(
    state: &AppState,
    req: &RequestContext,
    tenant: Uuid,
    features: Vec<FeatureInput>,
) -> AppResult<Registered> {
    use entity::tenant_features as f;
    req.require_admin()?;
    super::catalog::tenant(&state.db, tenant)
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
    let tx = state.placed_tx(tenant).await?;
    let now = Utc::now();
    let mut before = Vec::with_capacity(features.len());
    for feature in features {
        let existing = f::Entity::find()
            .filter(f::Column::TenantId.eq(tenant))
            .filter(f::Column::FeatureKey.eq(feature.key.as_str()))
            .one(&tx)
            .await?;
        before.push((feature.key.clone(), existing.clone()));
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
    Ok(Registered { catalog, before })
}

/// The fields `updateFeature` may change; at least one must be given.
#[derive(Clone, Debug, Default)]
pub struct FeatureChange {
    pub version: Option<String>,
    pub provider: Option<String>,
    pub customization: Option<Json>,
    pub last_migrated_at: Option<chrono::DateTime<Utc>>,
}

/// `updateFeature` (platform admins): changes only the fields given. Answers the record before
/// and after the change.
pub async fn update_feature(
    state: &AppState,
    req: &RequestContext,
    id: Uuid,
    change: FeatureChange,
) -> AppResult<(
    entity::tenant_features::Model,
    entity::tenant_features::Model,
)> {
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
    // The id names no tenant: which tenant holds it is a question for the system pool (of the
    // main database, then of each named one); the change is made in that tenant's transaction.
    let owner = crate::placement::owner_of(state, "tenant_features", id)
        .await?
        .ok_or(AppError::NotFound("TenantFeature".into()))?;
    let tx = state.placed_tx(owner).await?;
    let model = entity::tenant_features::Entity::find_by_id(id)
        .filter(entity::tenant_features::Column::TenantId.eq(owner))
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound("TenantFeature".into()))?;
    let before = model.clone();
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
    Ok((before, saved))
}
