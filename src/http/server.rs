//! The HTTP surface: `/graphql` (POST, and GET for queries), the WebSocket endpoint,
//! GraphiQL, health and readiness.

use std::{sync::Arc, time::Duration};

use async_graphql::{dataloader::DataLoader, dynamic::Schema};
use axum::{
    Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use tower_http::{
    catch_panic::CatchPanicLayer,
    cors::{AllowOrigin, CorsLayer},
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use crate::{
    error::AppError,
    graphql::{self, audit, loaders::RowsLoader, shape::FieldErrors},
    limits,
    negotiation::Media,
    scope::{self, RequestContext, RequestInputs},
    state::AppState,
};

/// Largest request body accepted on `/graphql` (uploads included).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Everything a handler needs.
#[derive(Clone)]
pub struct Server {
    pub state: Arc<AppState>,
    pub schema: Schema,
    /// Permits for GraphQL operations over HTTP (`FORKLIFT_MAX_CONCURRENT_REQUESTS`).
    pub executions: Arc<tokio::sync::Semaphore>,
}

/// Builds the router over `state`.
pub fn router(state: Arc<AppState>) -> anyhow::Result<Router> {
    let schema = graphql::build_schema(
        &state.registry,
        state.config.introspection(),
        Some(state.clone()),
    )?;
    state.metrics.set_root_fields(graphql::root_fields(&schema));
    let timeout = state.config.request_timeout;
    let cors_origins = state.config.cors_origins();
    let executions = Arc::new(tokio::sync::Semaphore::new(
        state.config.max_concurrent_requests,
    ));
    let server = Server {
        state,
        schema,
        executions,
    };
    Ok(Router::new()
        .route("/", get(crate::ui::graphiql))
        .route("/graphiql", get(crate::ui::graphiql))
        .route("/monitor", get(crate::ui::monitor))
        .route("/assets/{name}", get(crate::ui::asset))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphql/ws", get(crate::ws::upgrade))
        .route("/tenants/{slug}/logo", get(logo))
        // Innermost, so a panic's answer still gets the request id and the trace span.
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                tracing::info_span!(
                    "request",
                    request.id = %id,
                    http.method = %request.method(),
                    http.path = %request.uri().path(),
                    tenant.id = tracing::field::Empty,
                )
            }),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout.max(Duration::from_secs(1)),
        ))
        // Outermost: preflights are answered here, and every answer (a 408 or 413 included)
        // carries the CORS headers a browser needs to let its page read it.
        .layer(cors(&cors_origins))
        .with_state(server))
}

/// How long a browser may cache a preflight's answer (Chromium caps it at 2 h, Firefox at 24 h).
pub const CORS_MAX_AGE: Duration = Duration::from_secs(7200);

/// The CORS policy: pages of the allowed origins (`FORKLIFT_CORS_ORIGINS`) may call every
/// endpoint with GET and POST and the headers the API reads, and read `x-request-id`. Tokens
/// travel in `Authorization`, never in cookies, so no credentials mode is needed. Every
/// `OPTIONS` request is answered here (200), so a preflight never reaches a route; an origin
/// that is not allowed gets no `Access-Control-Allow-Origin`, and the browser stops.
fn cors(origins: &crate::config::CorsOrigins) -> CorsLayer {
    let origins = origins.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origin.to_str().is_ok_and(|o| origins.allows(o))
        }))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("x-tenant"),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([HeaderName::from_static("x-request-id")])
        .max_age(CORS_MAX_AGE)
}

/// The answer to a request whose handling panicked: a coded internal error. The panic itself
/// was logged once, with the request's span, by the hook `cli::install_panic_hook` sets.
fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": "internal error", "extensions": { "code": "INTERNAL" } }]
    });
    let mut response = (StatusCode::INTERNAL_SERVER_ERROR, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

async fn logo(State(server): State<Server>, Path(slug): Path<String>) -> Response {
    match crate::tenancy::logo_by_slug(&server.state, &slug).await {
        Ok(Some((bytes, content_type))) => {
            let mut response = (StatusCode::OK, bytes).into_response();
            let headers = response.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&content_type) {
                headers.insert(header::CONTENT_TYPE, v);
            }
            headers.insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
            );
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            response
        }
        Ok(None) => (StatusCode::NOT_FOUND, "no logo").into_response(),
        Err(err) => {
            tracing::error!(error = %err.message(), "logo lookup failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// The Prometheus metrics of this process.
async fn metrics(State(server): State<Server>) -> Response {
    let db = &server.state.db;
    let pool = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            let p = db.get_postgres_connection_pool();
            Some((p.size(), p.num_idle()))
        }
        _ => {
            let p = db.get_sqlite_connection_pool();
            Some((p.size(), p.num_idle()))
        }
    };
    let mut response = server.state.metrics.render(pool).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

async fn readyz(State(server): State<Server>) -> Response {
    if crate::db::ping(&server.state.db).await {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
    }
}

/// The request id the `SetRequestIdLayer` gave this request.
fn request_id(headers: &HeaderMap) -> Option<String> {
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
    })
}

/// A GraphQL error response with one error, as `application/json`.
pub fn error_response(status: StatusCode, err: AppError) -> Response {
    Media::Json.malformed(status, err)
}

async fn execute(
    server: &Server,
    headers: &HeaderMap,
    media: Media,
    request: async_graphql::Request,
    inspection: limits::Inspection,
) -> Response {
    // Held until the response body is built: waiting here costs a queued request nothing but
    // time, while executing it would hold its whole response in memory.
    let Ok(_permit) = server.executions.acquire().await else {
        return media.request_error(AppError::Internal(anyhow::anyhow!(
            "the execution limiter is closed"
        )));
    };
    let inputs = match inputs_from_headers(headers) {
        Ok(inputs) => inputs,
        Err(err) => return media.request_error(err),
    };
    let bearer = inputs.bearer.clone();
    let ctx = match scope::resolve(&server.state, inputs).await {
        Ok(ctx) => ctx,
        Err(err) => {
            if inspection.is_mutation() {
                // Refused before any resolver ran: the audit log still shows the attempt, once.
                let actor = bearer
                    .as_deref()
                    .and_then(|t| server.state.verifier.verify(t).ok())
                    .map(|c| c.sub);
                audit::record_refused_request(
                    &server.state,
                    actor.as_deref(),
                    &inspection.root_fields,
                    &err,
                    request_id(headers).as_deref(),
                )
                .await;
            }
            return media.request_error(err);
        }
    };
    if let Ok(crate::scope::Scope::Tenant(t)) = ctx.scope() {
        tracing::Span::current().record("tenant.id", tracing::field::display(t.id));
    }
    failpoint(&server.state, &request);
    let request = match request_id(headers) {
        Some(id) => request.data(audit::RequestId(id)),
        None => request,
    };
    media.graphql(run(server, ctx, request, inspection.label()).await)
}

/// The operation name that panics in its handler when the server runs with
/// `FORKLIFT_REQUEST_FAILPOINT=panic`, so tests can show that a panic costs one operation and
/// nothing else, on HTTP and WebSocket alike. Never set the failpoint in production.
pub const PANIC_OPERATION: &str = "ForkliftFailpointPanic";

/// Panics when the failpoint is set and `request`'s `operationName` is [`PANIC_OPERATION`].
pub(crate) fn failpoint(state: &AppState, request: &async_graphql::Request) {
    if state.config.request_failpoint.as_deref() == Some("panic")
        && request.operation_name.as_deref() == Some(PANIC_OPERATION)
    {
        panic!("request failpoint: panic");
    }
}

/// Runs a query or mutation that did not come over HTTP (a WebSocket operation) under the same
/// limits as an HTTP request: it waits for an execution permit, runs with the request deadline
/// (`FORKLIFT_REQUEST_TIMEOUT_SECS`; past it the answer is one error coded `TIMEOUT`), and every
/// error gets a code and the metrics count it, as in [`run`].
pub async fn execute_limited(
    server: &Server,
    ctx: RequestContext,
    request: async_graphql::Request,
    label: &str,
) -> async_graphql::Response {
    let Ok(_permit) = server.executions.acquire().await else {
        return async_graphql::Response::from_errors(vec![
            AppError::Internal(anyhow::anyhow!("the execution limiter is closed"))
                .into_graphql()
                .into_server_error(async_graphql::Pos::default()),
        ]);
    };
    let deadline = server.state.config.request_timeout;
    match tokio::time::timeout(deadline, run(server, ctx, request, label)).await {
        Ok(response) => response,
        Err(_) => {
            let mut error = async_graphql::ServerError::new(
                format!(
                    "the operation took longer than {} s and was stopped",
                    deadline.as_secs()
                ),
                None,
            );
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", "TIMEOUT");
            async_graphql::Response::from_errors(vec![error])
        }
    }
}

/// Executes a request for a resolved context, with its per-request loader. `label` names the
/// operation in the metrics (see [`limits::Inspection::label`]).
pub async fn run(
    server: &Server,
    ctx: RequestContext,
    request: async_graphql::Request,
    label: &str,
) -> async_graphql::Response {
    let started = std::time::Instant::now();
    let (request, field_errors) = with_request_data(server, ctx, request);
    let mut response = server.schema.execute(request).await;
    field_errors.finish(&mut response);
    server
        .state
        .metrics
        .request(label, response.errors.is_empty(), started.elapsed());
    for error in &mut response.errors {
        with_code(error);
    }
    response
}

/// Attaches what every execution needs, whatever its transport: the caller's context, the
/// per-request loaders (rows scoped to the caller, users), the audit notes and the field-error
/// record that restores the response's shape. Returns the record, to `finish` each response.
pub(crate) fn with_request_data(
    server: &Server,
    ctx: RequestContext,
    request: async_graphql::Request,
) -> (async_graphql::Request, Arc<FieldErrors>) {
    let loader = DataLoader::new(
        RowsLoader {
            db: server.state.scoped_db.clone(),
            ctx: ctx.clone(),
            registry: server.state.registry.clone(),
        },
        tokio::spawn,
    );
    let field_errors = FieldErrors::new(request.operation_name.clone());
    let request = request
        .data(ctx)
        .data(loader)
        .data(graphql::users::loader(server.state.db.clone()))
        .data(audit::AuditNotes::default())
        .data(field_errors.clone());
    (request, field_errors)
}

/// Gives an error that has no `extensions.code` one: a request-level error (parse, validation)
/// is the caller's (`BAD_USER_INPUT`); an execution error without a code is ours (`INTERNAL`).
pub(crate) fn with_code(error: &mut async_graphql::ServerError) {
    let has_code = error
        .extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some());
    if has_code {
        return;
    }
    let code = if error.path.is_empty() {
        "BAD_USER_INPUT"
    } else {
        "INTERNAL"
    };
    if code == "INTERNAL" {
        tracing::error!(error = %error.message, path = ?error.path, "resolver error without a code");
        error.message = "internal error".into();
    }
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
}

async fn graphql_post(State(server): State<Server>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(media) = Media::negotiate(&headers) else {
        return Media::not_acceptable();
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let request = if content_type.starts_with("multipart/form-data") {
        let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(body) });
        match async_graphql::http::receive_body(
            Some(content_type.as_str()),
            futures::TryStreamExt::into_async_read(stream),
            async_graphql::http::MultipartOptions::default()
                .max_file_size(MAX_BODY_BYTES)
                .max_num_files(4),
        )
        .await
        {
            Ok(r) => r,
            Err(e) => {
                return media.malformed(
                    StatusCode::BAD_REQUEST,
                    AppError::input("body", format!("invalid multipart request: {e}")),
                );
            }
        }
    } else if content_type.starts_with("application/json")
        || content_type.starts_with("application/graphql-response+json")
    {
        if let Err(err) = limits::check_json("body", &body) {
            return media.malformed(StatusCode::BAD_REQUEST, err);
        }
        let value: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => {
                return media.malformed(
                    StatusCode::BAD_REQUEST,
                    AppError::input("body", "the body is not valid JSON"),
                );
            }
        };
        let persisted = value.pointer("/extensions/persistedQuery").is_some();
        if value.is_object() && !persisted && !value.get("query").is_some_and(|q| q.is_string()) {
            return media.malformed(
                StatusCode::BAD_REQUEST,
                AppError::input("query", "the body needs a `query` string"),
            );
        }
        if value.is_array() {
            return media.malformed(
                StatusCode::BAD_REQUEST,
                AppError::input(
                    "body",
                    "batched requests are not supported; send one operation per request",
                ),
            );
        }
        match serde_json::from_value::<async_graphql::Request>(value) {
            Ok(r) => r,
            Err(_) => {
                return media.malformed(
                    StatusCode::BAD_REQUEST,
                    AppError::input(
                        "body",
                        "expected {\"query\": …, \"variables\": …, \"operationName\": …}",
                    ),
                );
            }
        }
    } else {
        return media.malformed(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::input(
                "Content-Type",
                "send application/json (or multipart/form-data for uploads)",
            ),
        );
    };
    let mut request = request;
    let inspection = match limits::inspect(&mut request) {
        Ok(inspection) => inspection,
        Err(err) => return media.request_error(err),
    };
    execute(&server, &headers, media, request, inspection).await
}

/// Query-string form of a GraphQL request.
#[derive(serde::Deserialize)]
pub struct GetParams {
    query: Option<String>,
    variables: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
}

async fn graphql_get(
    State(server): State<Server>,
    headers: HeaderMap,
    Query(params): Query<GetParams>,
) -> Response {
    let Some(media) = Media::negotiate(&headers) else {
        return Media::not_acceptable();
    };
    let Some(query) = params.query else {
        return media.malformed(
            StatusCode::BAD_REQUEST,
            AppError::input("query", "is required"),
        );
    };
    let mut request = async_graphql::Request::new(query);
    if let Some(name) = params.operation_name {
        request = request.operation_name(name);
    }
    if let Some(vars) = params.variables.filter(|v| !v.is_empty()) {
        if let Err(err) = limits::check_json("variables", vars.as_bytes()) {
            return media.malformed(StatusCode::BAD_REQUEST, err);
        }
        match serde_json::from_str::<serde_json::Value>(&vars) {
            Ok(v) => request = request.variables(async_graphql::Variables::from_json(v)),
            Err(_) => {
                return media.malformed(
                    StatusCode::BAD_REQUEST,
                    AppError::input("variables", "not valid JSON"),
                );
            }
        }
    }
    let inspection = match limits::inspect(&mut request) {
        Ok(inspection) => inspection,
        Err(err) => return media.request_error(err),
    };
    if inspection.is_mutation() {
        let mut response = media.malformed(
            StatusCode::METHOD_NOT_ALLOWED,
            AppError::input("query", "mutations are only accepted over POST"),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    execute(&server, &headers, media, request, inspection).await
}
