//! GraphQL over HTTP: which media type a response uses and which status it gets.
//!
//! `application/graphql-response+json` (the spec's own type, preferred when accepted): a
//! response without `data` — the request failed before execution (unparsable, invalid, refused
//! by the guard) — gets a 4xx status. `application/json` (what older clients send): every
//! well-formed request gets 200, errors or not. Malformed HTTP requests (bad JSON body, a batch,
//! a wrong content type) get 400/415 with either.

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use std::collections::BTreeMap;

use crate::error::AppError;

/// The response media type.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Media {
    /// `application/graphql-response+json`.
    GraphQlResponse,
    /// `application/json`.
    Json,
}

impl Media {
    /// Picks the media type from `Accept`; `None` when neither is accepted (answer with
    /// [`Media::not_acceptable`]).
    pub fn negotiate(headers: &HeaderMap) -> Option<Media> {
        let accept = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        if accept.trim().is_empty() {
            return Some(Media::Json);
        }
        let types: Vec<String> = accept
            .split(',')
            .filter_map(|part| {
                let mut pieces = part.split(';');
                let ty = pieces.next()?.trim().to_ascii_lowercase();
                // `q=0` means "not acceptable".
                let refused = pieces.any(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .is_some_and(|q| q == 0.0)
                });
                (!refused).then_some(ty)
            })
            .collect();
        if types
            .iter()
            .any(|t| t == "application/graphql-response+json")
        {
            return Some(Media::GraphQlResponse);
        }
        if types
            .iter()
            .any(|t| t == "application/json" || t == "application/*" || t == "*/*")
        {
            return Some(Media::Json);
        }
        None
    }

    /// The 406 for a request that accepts neither media type.
    pub fn not_acceptable() -> Response {
        let body = serde_json::json!({ "errors": [{
            "message": "Accept: send application/graphql-response+json or application/json",
            "extensions": { "code": "BAD_USER_INPUT", "field": "Accept" }
        }]});
        (StatusCode::NOT_ACCEPTABLE, axum::Json(body)).into_response()
    }

    fn content_type(self) -> HeaderValue {
        match self {
            Media::GraphQlResponse => {
                HeaderValue::from_static("application/graphql-response+json; charset=utf-8")
            }
            Media::Json => HeaderValue::from_static("application/json; charset=utf-8"),
        }
    }

    fn respond(self, status: StatusCode, body: Vec<u8>) -> Response {
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, self.content_type());
        response
    }

    /// A complete response body written by the planned read path (`{"data":…}`, no errors).
    pub fn planned(self, body: Vec<u8>) -> Response {
        self.respond(StatusCode::OK, body)
    }

    /// A malformed HTTP request: the given status whatever the media type.
    pub fn malformed(self, status: StatusCode, err: AppError) -> Response {
        self.respond(status, error_body(err))
    }

    /// A GraphQL request that failed before execution (no `data`).
    pub fn request_error(self, err: AppError) -> Response {
        let status = match self {
            Media::Json => StatusCode::OK,
            Media::GraphQlResponse => match err.code() {
                "UNAUTHENTICATED" => StatusCode::UNAUTHORIZED,
                "FORBIDDEN"
                | "CROSS_TENANT_DENIED"
                | "TENANT_SUSPENDED"
                | "TENANT_PROVISIONING" => StatusCode::FORBIDDEN,
                "TENANT_NOT_FOUND" | "DOMAIN_NOT_CONFIGURED" => StatusCode::NOT_FOUND,
                "INTERNAL" => StatusCode::INTERNAL_SERVER_ERROR,
                "SERVICE_UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
                // Not 408: browsers resend a request answered 408, a mutation included.
                "TIMEOUT" => StatusCode::GATEWAY_TIMEOUT,
                _ => StatusCode::BAD_REQUEST,
            },
        };
        self.respond(status, error_body(err))
    }

    /// An executed (or validated) GraphQL response, serialized straight from the executor's
    /// value so the keys keep the order the query asked for them.
    pub fn graphql(self, response: async_graphql::Response) -> Response {
        // Errors without a path come from parsing, validation or the limits: nothing was
        // executed, and the spec says `data` is then absent. Once execution started, `data` is
        // present, `null` included.
        let not_executed = response.data == async_graphql::Value::Null
            && !response.errors.is_empty()
            && response.errors.iter().all(|e| e.path.is_empty());
        let status = match (not_executed, self) {
            (true, Media::GraphQlResponse) => StatusCode::BAD_REQUEST,
            _ => StatusCode::OK,
        };
        let body = Body {
            errors: &response.errors,
            data: (!not_executed).then_some(&response.data),
            extensions: &response.extensions,
        };
        self.respond(status, encode(&body))
    }
}

/// A response body in the spec's order: `errors` first when there are any (the spec's advice,
/// so they are seen), then `data`, then `extensions`.
#[derive(serde::Serialize)]
struct Body<'a> {
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [async_graphql::ServerError],
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a async_graphql::Value>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extensions: &'a BTreeMap<String, async_graphql::Value>,
}

fn encode(body: &Body<'_>) -> Vec<u8> {
    serde_json::to_vec(body).unwrap_or_else(|_| {
        br#"{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}"#.to_vec()
    })
}

/// `{"errors": [...]}` for one error, without locations.
pub fn error_body(err: AppError) -> Vec<u8> {
    let mut gql = err
        .into_graphql()
        .into_server_error(async_graphql::Pos::default());
    gql.locations.clear();
    encode(&Body {
        errors: std::slice::from_ref(&gql),
        data: None,
        extensions: &BTreeMap::new(),
    })
}

/// A GraphQL error response with one error, as `application/json`.
pub fn error_response(status: StatusCode, err: AppError) -> Response {
    Media::Json.malformed(status, err)
}
