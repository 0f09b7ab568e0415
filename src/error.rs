//! The one error type users see, and the policy for turning everything else into it.
//!
//! Policy: every error a client receives carries a stable `extensions.code` (`docs/api.md`). Errors
//! that are the caller's doing say what to fix. Anything else becomes `INTERNAL` with a request
//! id: it is logged once, here, with the full cause, and the client gets no database, driver or
//! stack text.

use async_graphql::ErrorExtensions;
use sea_orm::{DbErr, SqlErr};

/// A failure as the client sees it.
/// (Deliberately not `Display`: conversions to GraphQL errors must go through
/// [`AppError::into_graphql`], which keeps `extensions.code`.)
#[derive(Debug)]
pub enum AppError {
    Unauthenticated(String),
    Forbidden(String),
    CrossTenantDenied,
    TenantNotFound,
    DomainNotConfigured,
    TenantSuspended,
    TenantProvisioning,
    BadUserInput {
        field: String,
        message: String,
    },
    NotFound(String),
    Conflict(String),
    PreconditionFailed(String),
    LastOwner,
    /// The tenant's own database (a named tenant database) cannot be reached: that tenant's
    /// requests fail, every other tenant is served. The cause is logged, never shown.
    DatabaseUnavailable,
    /// The request (or WebSocket operation) ran past `FORKLIFT_REQUEST_TIMEOUT_SECS` and was
    /// stopped; its transactions rolled back when it was dropped.
    Timeout(std::time::Duration),
    Internal(anyhow::Error),
}

/// Shorthand for results of request handling.
pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// The stable code in `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated(_) => "UNAUTHENTICATED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::CrossTenantDenied => "CROSS_TENANT_DENIED",
            AppError::TenantNotFound => "TENANT_NOT_FOUND",
            AppError::DomainNotConfigured => "DOMAIN_NOT_CONFIGURED",
            AppError::TenantSuspended => "TENANT_SUSPENDED",
            AppError::TenantProvisioning => "TENANT_PROVISIONING",
            AppError::BadUserInput { .. } => "BAD_USER_INPUT",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::Conflict(_) => "CONFLICT",
            AppError::PreconditionFailed(_) => "PRECONDITION_FAILED",
            AppError::LastOwner => "LAST_OWNER",
            AppError::DatabaseUnavailable => "SERVICE_UNAVAILABLE",
            AppError::Timeout(_) => "TIMEOUT",
            AppError::Internal(_) => "INTERNAL",
        }
    }

    /// The message the client reads.
    pub fn message(&self) -> String {
        match self {
            AppError::Unauthenticated(m)
            | AppError::Forbidden(m)
            | AppError::Conflict(m)
            | AppError::PreconditionFailed(m) => m.clone(),
            AppError::CrossTenantDenied => "Cross-tenant access denied".into(),
            AppError::TenantNotFound => "the tenant does not exist or may have been removed".into(),
            AppError::DomainNotConfigured => "no tenant is configured for this domain".into(),
            AppError::TenantSuspended => "this tenant is suspended".into(),
            AppError::TenantProvisioning => {
                "this tenant is being provisioned; try again when its fork has finished".into()
            }
            AppError::BadUserInput { field, message } => format!("{field}: {message}"),
            AppError::NotFound(what) => format!("{what} not found"),
            AppError::LastOwner => "the last owner of a tenant cannot be removed or demoted".into(),
            AppError::DatabaseUnavailable => {
                "this tenant's database is unavailable; try again later".into()
            }
            AppError::Timeout(deadline) => format!(
                "the operation took longer than {} s and was stopped",
                deadline.as_secs()
            ),
            AppError::Internal(_) => "internal error".into(),
        }
    }

    /// For command-line tools: the error as an `anyhow` error with the client message.
    pub fn into_anyhow(self) -> anyhow::Error {
        match self {
            AppError::Internal(e) => e,
            other => anyhow::anyhow!(other.message()),
        }
    }

    /// A `BAD_USER_INPUT` error about `field`.
    pub fn input(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::BadUserInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A `FORBIDDEN` error.
    pub fn forbidden(message: impl Into<String>) -> Self {
        AppError::Forbidden(message.into())
    }

    /// Converts to a GraphQL error; internal causes are logged once here with a fresh request id.
    pub fn into_graphql(self) -> async_graphql::Error {
        let code = self.code();
        match &self {
            AppError::Internal(cause) => {
                let request_id = uuid::Uuid::now_v7().to_string();
                tracing::error!(request.id = %request_id, error = ?cause, "internal error");
                async_graphql::Error::new("internal error").extend_with(|_, e| {
                    e.set("code", code);
                    e.set("requestId", request_id.clone());
                })
            }
            AppError::BadUserInput { field, .. } => {
                let field = field.clone();
                async_graphql::Error::new(self.message()).extend_with(|_, e| {
                    e.set("code", code);
                    e.set("field", field.clone());
                })
            }
            _ => async_graphql::Error::new(self.message()).extend_with(|_, e| e.set("code", code)),
        }
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        err.into_graphql()
    }
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => {
                AppError::Conflict("a row with the same key already exists".into())
            }
            Some(SqlErr::ForeignKeyConstraintViolation(detail)) => {
                // Constraint names are `fk_<table>_<column>`; name the column when the database
                // tells us which constraint failed (PostgreSQL does, SQLite does not).
                let field = detail
                    .split(['"', '\''])
                    .find_map(|part| part.strip_prefix("fk_"))
                    .and_then(|rest| {
                        crate::registry::Registry::default()
                            .classes()
                            .iter()
                            .find_map(|c| rest.strip_prefix(&format!("{}_", c.table)))
                            .map(crate::naming::camel)
                    })
                    .unwrap_or_else(|| "input".into());
                AppError::input(
                    field,
                    "refers to a row that does not exist, or is still referenced",
                )
            }
            _ => AppError::Internal(err.into()),
        }
    }
}

impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        AppError::Internal(err)
    }
}
