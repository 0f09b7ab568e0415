//! Hand-written operations: the tenant catalog and lifecycle ([`catalog`]), members
//! ([`members`]), forks and their progress stream ([`forks`]), tenant moves ([`moves`]), and the
//! argument helpers they share. Branding, domains, features and access checks are in [`super::tenancy`].

mod catalog;
mod forks;
mod members;
mod moves;

use std::sync::Arc;

use async_graphql::{
    Value,
    dynamic::{
        Field, FieldFuture, FieldValue, InputObject, InputValue, Object, ResolverContext,
        SubscriptionField, SubscriptionFieldFuture, TypeRef,
    },
};
use futures::StreamExt;

use crate::{
    error::{AppError, AppResult},
    fork::{hub::ForkEvent, runs},
    graphql::{
        audit,
        classes::{self, ConnectionData, app, request},
        ids,
        parts::Operations,
    },
    rows::Row,
    scope::Role,
    tenants,
};

fn arg_str<'a>(ctx: &'a ResolverContext<'_>, name: &str) -> AppResult<&'a str> {
    ctx.args
        .get(name)
        .and_then(|v| v.string().ok())
        .ok_or_else(|| AppError::input(name, "is required"))
}

fn tenant_id_arg(ctx: &ResolverContext<'_>, name: &str) -> AppResult<uuid::Uuid> {
    let text = arg_str(ctx, name)?;
    ids::expect(text, "Tenant", name).or_else(|_| {
        uuid::Uuid::parse_str(text).map_err(|_| AppError::input(name, "not a tenant id"))
    })
}

/// The audit view of a person: global id and e-mail.
async fn person(state: &crate::state::AppState, user: Option<uuid::Uuid>) -> serde_json::Value {
    let Some(id) = user else {
        return serde_json::Value::Null;
    };
    use sea_orm::EntityTrait;
    let email = entity::users::Entity::find_by_id(id)
        .one(&state.db)
        .await
        .ok()
        .flatten()
        .and_then(|u| u.email);
    serde_json::json!({ "id": ids::encode("User", id), "email": email })
}

/// Notes a tenant's status change for its audit entry.
fn note_status(ctx: &ResolverContext<'_>, tenant: &entity::tenants::Model, before: Option<String>) {
    audit::note(
        ctx,
        serde_json::json!({
            "targetType": "Tenant",
            "tenant": { "id": ids::encode("Tenant", tenant.id), "slug": tenant.slug },
            "before": { "status": before },
            "after": { "status": tenant.status, "suspensionReason": tenant.suspension_reason },
        }),
    );
}

/// A tenant named by its global id, raw id or slug.
async fn tenant_key_arg(
    state: &crate::state::AppState,
    ctx: &ResolverContext<'_>,
    name: &str,
) -> AppResult<uuid::Uuid> {
    if let Ok(id) = tenant_id_arg(ctx, name) {
        return Ok(id);
    }
    let key = arg_str(ctx, name)?;
    Ok(tenants::catalog::tenant_by_slug(&state.db, key).await?.id)
}

/// A nullable input field: absent → `None`, `null` → `Some(None)`, text → `Some(Some(text))`.
fn change(
    input: &async_graphql::dynamic::ObjectAccessor<'_>,
    name: &str,
) -> AppResult<Option<Option<String>>> {
    match input.get(name) {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(Some(None)),
        Some(v) => Ok(Some(Some(
            v.string()
                .map_err(|_| AppError::input(name, "expected a string"))?
                .to_string(),
        ))),
    }
}

fn opt_str(
    input: &async_graphql::dynamic::ObjectAccessor<'_>,
    name: &str,
) -> AppResult<Option<String>> {
    match input.get(name) {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(None),
        Some(v) => Ok(Some(
            v.string()
                .map_err(|_| AppError::input(name, "expected a string"))?
                .to_string(),
        )),
    }
}

/// A tenant as the `Tenant` object resolves it.
pub(super) fn tenant_row(
    state: &crate::state::AppState,
    model: &entity::tenants::Model,
) -> AppResult<Row> {
    let class = state
        .registry
        .by_table("tenants")
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no tenants class")))?;
    Row::from_model(class, model)
}

fn ok_tenant(
    state: &crate::state::AppState,
    model: &entity::tenants::Model,
) -> async_graphql::Result<Option<FieldValue<'static>>> {
    Ok(Some(FieldValue::owned_any(tenant_row(state, model)?)))
}

fn role_arg(ctx: &ResolverContext<'_>, name: &str) -> AppResult<Role> {
    let value = ctx
        .args
        .get(name)
        .ok_or_else(|| AppError::input(name, "is required"))?;
    let text = value
        .enum_name()
        .map_err(|_| AppError::input(name, "expected a Role"))?;
    Role::parse(text).ok_or_else(|| AppError::input(name, "unknown role"))
}

/// Adds the catalog, member and fork operations to `ops`.
pub fn build(ops: &mut Operations) {
    catalog::build(ops);
    members::build(ops);
    forks::build(ops);
    moves::build(ops);
}
