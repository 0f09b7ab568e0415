//! `GET /tenants/{id}/export` (the tenant's global id, id or slug): a tenant's archive (`offboarding::export`), streamed as
//! `application/x-tar` while it is read.
//!
//! Authorised like the GraphQL guard (`scope::resolve`, the path naming the tenant as
//! `X-Tenant` would): a platform admin, or an Owner of the tenant. Anyone else learns nothing
//! of the tenant: a caller who is not a platform admin gets the same `404 NOT_FOUND` for a
//! tenant that does not exist and for one that is not theirs; a member below Owner gets
//! `403 FORBIDDEN`. Errors are JSON with `extensions.code`, like every other answer. Each
//! allowed export appends an `exportTenant` entry to the tenant's audit log.

use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::{
    execution::Server,
    headers::{inputs_from_headers, request_id},
};
use crate::{
    error::AppError,
    graphql::audit,
    scope::{self, Role, Scope},
};

/// Chunks of the archive buffered between the reader and the socket.
const BUFFERED_CHUNKS: usize = 8;

fn error(err: AppError) -> Response {
    let status = match err.code() {
        "UNAUTHENTICATED" => StatusCode::UNAUTHORIZED,
        "FORBIDDEN" | "TENANT_SUSPENDED" | "TENANT_PROVISIONING" | "CROSS_TENANT_DENIED" => {
            StatusCode::FORBIDDEN
        }
        "NOT_FOUND" | "TENANT_NOT_FOUND" | "DOMAIN_NOT_CONFIGURED" => StatusCode::NOT_FOUND,
        "INTERNAL" => StatusCode::INTERNAL_SERVER_ERROR,
        "SERVICE_UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let body = serde_json::json!({
        "errors": [{ "message": err.message(), "extensions": { "code": err.code() } }]
    });
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// The handler.
pub async fn export(
    State(server): State<Server>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    let state = server.state.clone();
    // The tenant's global id (as the API gives it), its id, or its slug.
    let key = match crate::graphql::ids::decode(&key) {
        Some((kind, id)) if kind == "Tenant" => id.to_string(),
        _ => key,
    };
    let mut inputs = match inputs_from_headers(&headers) {
        Ok(inputs) => inputs,
        Err(err) => return error(err),
    };
    // The path names the tenant; a header naming another one disagrees with it.
    if inputs.tenant_header.as_deref().is_some_and(|h| h != key) {
        return error(AppError::CrossTenantDenied);
    }
    inputs.tenant_header = Some(key.clone());
    let Some(token) = inputs.bearer.as_deref() else {
        return error(AppError::Unauthenticated("missing bearer token".into()));
    };
    let claims = match state.verifier.verify(token) {
        Ok(claims) => claims,
        Err(err) => return error(err),
    };
    let is_admin = claims.platform_role.as_deref() == Some("admin");
    let req = match scope::resolve_claims(&state, claims, inputs).await {
        Ok(req) => req,
        // Someone else's tenant answers as a missing one does.
        Err(AppError::CrossTenantDenied | AppError::TenantNotFound) if !is_admin => {
            return error(AppError::NotFound("Tenant".into()));
        }
        Err(err) => return error(err),
    };
    let tenant_ref = match req.scope() {
        Ok(Scope::Tenant(t)) => t.clone(),
        _ => return error(AppError::NotFound("Tenant".into())),
    };
    if !req.principal.is_admin && req.role != Some(Role::Owner) {
        return error(AppError::forbidden(
            "exporting a tenant needs its Owner or a platform admin",
        ));
    }
    let tenant = match crate::tenants::catalog::tenant(&state.db, tenant_ref.id).await {
        Ok(Some(t)) => t,
        Ok(None) => return error(AppError::NotFound("Tenant".into())),
        Err(err) => return error(err),
    };
    audit::write_request(
        &state,
        audit::Entry {
            actor: &req.principal.subject,
            tenant: Some(tenant.id),
            operation: "exportTenant",
            target: Some(crate::graphql::ids::encode("Tenant", tenant.id)),
            outcome: entity::audit_entries::AuditOutcome::Allowed,
            code: None,
        },
        request_id(&headers).as_deref(),
    )
    .await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(BUFFERED_CHUNKS);
    let filename = format!(
        "{}-{}.tar",
        tenant.slug,
        state.clock.now().format("%Y%m%dT%H%M%SZ")
    );
    tokio::spawn(async move {
        let mut sink = tx.clone();
        let started = std::time::Instant::now();
        match crate::offboarding::export::export(&state, &tenant, &mut sink, |_| {}).await {
            Ok(summary) => tracing::info!(
                tenant = %tenant.id,
                bytes = summary.bytes,
                files = summary.files,
                ms = started.elapsed().as_millis() as u64,
                "tenant exported"
            ),
            Err(err) => {
                tracing::error!(tenant = %tenant.id, error = %err, "tenant export failed");
                // Cut the response short: without tar's end marker and `manifest.json` the
                // reader knows the archive is incomplete.
                let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
