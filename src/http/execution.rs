//! One GraphQL execution, whatever its transport (HTTP, WebSocket, a shared subscription): the
//! per-request data (context, loaders, audit notes, field errors), the execution permit and
//! deadline, metrics, and a code on every error. Also the request failpoint tests use.

use std::sync::Arc;

use async_graphql::{dataloader::DataLoader, dynamic::Schema};

use crate::{
    error::AppError,
    graphql::{self, audit, loaders::RowsLoader, shape::FieldErrors},
    scope::RequestContext,
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
    /// The planned read path, unless `FORKLIFT_PLANNED_READS=off`.
    pub planner: Option<Arc<crate::graphql::planned::ReadPlanner>>,
}

/// The operation name that panics in its handler when the server runs with
/// `FORKLIFT_REQUEST_FAILPOINT=panic`, so tests can show that a panic costs one operation and
/// nothing else, on HTTP and WebSocket alike. Never set the failpoint in production.
pub const PANIC_OPERATION: &str = "ForkliftFailpointPanic";

/// Panics when the failpoint is set and `request`'s `operationName` is [`PANIC_OPERATION`].
/// Compiled only with the `failpoints` feature; without it, this does nothing.
pub(crate) fn failpoint(state: &AppState, request: &async_graphql::Request) {
    #[cfg(feature = "failpoints")]
    if state.config.request_failpoint.as_deref() == Some("panic")
        && request.operation_name.as_deref() == Some(PANIC_OPERATION)
    {
        panic!("request failpoint: panic");
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = (state, request);
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
        Err(_) => async_graphql::Response::from_errors(vec![
            AppError::Timeout(deadline)
                .into_graphql()
                .into_server_error(async_graphql::Pos::default()),
        ]),
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
