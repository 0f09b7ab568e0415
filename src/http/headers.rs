//! What a request says about its caller, read from its headers: the bearer token, the tenant
//! it names (`X-Tenant`, or its alias `X-Tenant-Id`), the `Host`, and the request id. A header
//! that is not UTF-8 is `BAD_USER_INPUT`, never dropped.

use axum::http::HeaderMap;

use crate::{error::AppError, scope::RequestInputs};

/// The request id the `SetRequestIdLayer` gave this request.
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A header's text: `Ok(None)` when absent, and `BAD_USER_INPUT` naming the header when its
/// bytes are not UTF-8 (a header that cannot be read is refused, never silently ignored).
pub fn header_text(headers: &HeaderMap, name: &str) -> Result<Option<String>, AppError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    match std::str::from_utf8(value.as_bytes()) {
        Ok(text) => Ok(Some(text.to_string())),
        Err(_) => Err(AppError::input(name, "the header is not valid UTF-8")),
    }
}

/// The tenant a request names: `X-Tenant`, or its alias `X-Tenant-Id` (seed 001). Both given
/// with different values is `BAD_USER_INPUT`.
fn tenant_header(headers: &HeaderMap) -> Result<Option<String>, AppError> {
    let main = header_text(headers, "x-tenant")?;
    let alias = header_text(headers, "x-tenant-id")?;
    match (main, alias) {
        (Some(a), Some(b)) if a != b => Err(AppError::input(
            "X-Tenant-Id",
            "X-Tenant and X-Tenant-Id name different tenants",
        )),
        (Some(a), _) => Ok(Some(a)),
        (None, b) => Ok(b),
    }
}

/// The inputs of tenant resolution, read from the request headers.
pub fn inputs_from_headers(headers: &HeaderMap) -> Result<RequestInputs, AppError> {
    Ok(RequestInputs {
        bearer: header_text(headers, "authorization")?.and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .map(|t| t.trim().to_string())
        }),
        tenant_header: tenant_header(headers)?,
        host: header_text(headers, "host")?,
        // Set by the caller once it knows the operation's root fields.
        fork_watch: false,
    })
}
