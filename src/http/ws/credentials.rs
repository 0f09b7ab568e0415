//! A socket's credentials: the request inputs its `connection_init` payload carries, when its
//! token expires, and the checks on a renewal (a `ping` with a new token).

use std::time::Duration;

use serde_json::Value;

use crate::{
    http::execution::Server,
    scope::{self, RequestInputs},
};

/// The request inputs carried by a `connection_init` payload.
pub(super) fn inputs_from_payload(payload: &Value, host: Option<String>) -> RequestInputs {
    let get = |keys: &[&str]| {
        keys.iter().find_map(|k| {
            payload
                .get(*k)
                .or_else(|| payload.get("headers").and_then(|h| h.get(*k)))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
    };
    let bearer = get(&["Authorization", "authorization"])
        .map(|v| {
            v.trim_start_matches("Bearer ")
                .trim_start_matches("bearer ")
                .trim()
                .to_string()
        })
        .or_else(|| get(&["token", "authToken"]));
    RequestInputs {
        bearer,
        tenant_header: get(&[
            "X-Tenant",
            "x-tenant",
            "X-Tenant-Id",
            "x-tenant-id",
            "tenant",
        ]),
        host,
        // The socket is checked as a watcher of its tenant's forks (so an Owner can follow the
        // provisioning of their tenant); each operation is checked again by its root fields.
        fork_watch: true,
    }
}

/// When the socket's token stops being valid (its `exp`, with the verifier's leeway).
pub(super) fn expires_at(server: &Server, inputs: &RequestInputs) -> tokio::time::Instant {
    let exp = inputs
        .bearer
        .as_deref()
        .and_then(|t| server.state.verifier.verify(t).ok())
        .map(|claims| claims.exp)
        .unwrap_or(0);
    let now = chrono::Utc::now().timestamp();
    let left = (exp + crate::auth::LEEWAY_SECS as i64 - now).max(0) as u64;
    tokio::time::Instant::now() + Duration::from_secs(left)
}

/// Checks a renewal: the new token verifies, names the same subject, and the guard still lets
/// it in with the socket's tenant inputs.
pub(super) async fn renew(
    server: &Server,
    current: &RequestInputs,
    renewed: &RequestInputs,
) -> Result<(), crate::error::AppError> {
    let subject = |inputs: &RequestInputs| -> Result<String, crate::error::AppError> {
        let token = inputs.bearer.as_deref().ok_or_else(|| {
            crate::error::AppError::Unauthenticated("missing bearer token".into())
        })?;
        Ok(server.state.verifier.verify(token)?.sub)
    };
    if subject(renewed)? != subject(current)? {
        return Err(crate::error::AppError::Unauthenticated(
            "a renewed token must name the same subject".into(),
        ));
    }
    scope::resolve(&server.state, renewed.clone())
        .await
        .map(|_| ())
}
