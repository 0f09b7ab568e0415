//! The HTTP surface: `/graphql` (POST, and GET for queries), the WebSocket endpoint,
//! GraphiQL, health and readiness.

use std::{sync::Arc, time::Duration};

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

use super::{
    execution::{MAX_BODY_BYTES, Server, failpoint, run},
    headers::{inputs_from_headers, request_id},
    limits,
    negotiation::Media,
};
use crate::{
    error::AppError,
    graphql::{self, audit},
    scope,
    state::AppState,
};

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
    let planner = state.config.planned_reads.then(|| {
        Arc::new(graphql::planned::ReadPlanner::new(
            &state.registry,
            schema.registry(),
            state.config.introspection(),
        ))
    });
    let server = Server {
        state,
        schema,
        executions,
        planner,
    };
    Ok(Router::new()
        .route("/", get(super::ui::graphiql))
        .route("/graphiql", get(super::ui::graphiql))
        .route("/monitor", get(super::ui::monitor))
        .route("/assets/{name}", get(super::ui::asset))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphql/ws", get(super::ws::upgrade))
        .route("/tenants/{slug}/logo", get(logo))
        .route("/tenants/{id}/export", get(super::export::export))
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
        // A backstop for the routes without a deadline of their own: `/graphql` answers a
        // request past `FORKLIFT_REQUEST_TIMEOUT_SECS` with an error coded `TIMEOUT` first.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            timeout.max(Duration::from_secs(1)) + BACKSTOP_MARGIN,
        ))
        // Outermost: preflights are answered here, and every answer (a 504 or 413 included)
        // carries the CORS headers a browser needs to let its page read it.
        .layer(cors(&cors_origins))
        .with_state(server))
}

/// How much longer than the request deadline the router's timeout waits: long enough for
/// `/graphql` to answer with its own coded error.
const BACKSTOP_MARGIN: Duration = Duration::from_secs(5);

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
    match crate::tenants::branding::logo_by_slug(&server.state, &slug).await {
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

/// How long `/readyz` waits for one named tenant database (a pool is opened on first use).
const NAMED_DATABASE_CHECK: Duration = Duration::from_secs(3);

/// Readiness as JSON: `{"status": "ready" | "degraded" | "unavailable", "databases": {"main":
/// "up", "eu1": "down", …}}`, every database pinged at once. 200 whenever the main database
/// answers: the control plane (guard, catalog, forks) lives there, and a replica that stopped
/// taking traffic because one named database is down would take every other tenant down with
/// it; a down named database makes the status `degraded`. 503 when the main database is down.
async fn readyz(State(server): State<Server>) -> Response {
    let pools = &server.state.tenant_pools;
    let main = crate::db::ping(&server.state.db);
    let named = futures::future::join_all(pools.databases().iter().map(|d| async {
        (
            d.name.clone(),
            pools.ping(&d.name, NAMED_DATABASE_CHECK).await,
        )
    }));
    let (main_up, named) = tokio::join!(main, named);
    let state = |up: bool| if up { "up" } else { "down" };
    let mut databases = serde_json::Map::new();
    databases.insert(crate::databases::MAIN.into(), state(main_up).into());
    for (name, up) in &named {
        databases.insert(name.clone(), state(*up).into());
    }
    let (status, code) = if !main_up {
        ("unavailable", StatusCode::SERVICE_UNAVAILABLE)
    } else if named.iter().any(|(_, up)| !up) {
        ("degraded", StatusCode::OK)
    } else {
        ("ready", StatusCode::OK)
    };
    let body = serde_json::json!({ "status": status, "databases": databases });
    (code, axum::Json(body)).into_response()
}

/// Executes one HTTP GraphQL request within the request deadline: an execution permit, the
/// guard (a refused mutation is still audited), then [`execution::run`].
async fn execute(
    server: &Server,
    headers: &HeaderMap,
    media: Media,
    request: async_graphql::Request,
    inspection: limits::Inspection,
) -> Response {
    // The request's deadline covers the wait for a permit, the guard and the execution; past
    // it the answer is one error coded `TIMEOUT` (the router's own timeout, a little later, is
    // only a backstop for the other routes).
    let deadline = server.state.config.request_timeout;
    match tokio::time::timeout(
        deadline,
        answer(server, headers, media, request, inspection),
    )
    .await
    {
        Ok(response) => response,
        Err(_) => media.request_error(AppError::Timeout(deadline)),
    }
}

/// [`execute`] without its deadline.
async fn answer(
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
        Ok(inputs) => crate::scope::RequestInputs {
            fork_watch: crate::scope::watches_forks_only(inspection.kind, &inspection.root_fields),
            ..inputs
        },
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
    let mut request = match request_id(headers) {
        Some(id) => request.data(audit::RequestId(id)),
        None => request,
    };
    if let Some(planner) = &server.planner
        && inspection.kind == Some(async_graphql::parser::types::OperationType::Query)
    {
        let started = std::time::Instant::now();
        if let Some(body) = planner.answer(&server.state, &ctx, &mut request).await {
            server
                .state
                .metrics
                .request(inspection.label(), true, started.elapsed());
            server.state.metrics.read_path("planned");
            return media.planned(body);
        }
        server.state.metrics.read_path("executor");
    }
    media.graphql(run(server, ctx, request, inspection.label()).await)
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
