//! The audit log's writer: every root mutation field, allowed or refused, appends one entry
//! (actor, tenant, operation, target, outcome, time). It is a schema extension, so a mutation
//! added later is audited without a line of its own. Mutations the guard refuses before any
//! resolver runs are recorded by [`record_refused_request`].

use std::sync::{Arc, Mutex};

use async_graphql::{
    Name, ServerResult, Value, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextResolve, ResolveInfo,
    },
};
use chrono::Utc;
use sea_orm::{ActiveModelTrait, ActiveValue::Set};
use uuid::Uuid;

use crate::{
    error::AppError,
    graphql::ids,
    scope::{RequestContext, Scope},
    state::AppState,
};

/// Arguments that name the row a mutation acts on, in order of preference.
const TARGET_ARGUMENTS: &[&str] = &["id", "tenantId", "runId", "teamId"];

/// The extension factory registered on the schema.
pub struct Audit;

impl ExtensionFactory for Audit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AuditExtension::default())
    }
}

#[derive(Default)]
struct AuditExtension {
    /// The request's variables, to read arguments given as `$variables`.
    variables: Mutex<Variables>,
}

/// One entry to write.
pub struct Entry<'a> {
    pub actor: &'a str,
    pub tenant: Option<Uuid>,
    pub operation: &'a str,
    pub target: Option<String>,
    pub outcome: &'static str,
    pub code: Option<&'a str>,
}

/// Appends `entry` to the audit log; a failure is logged, never returned to the caller.
pub async fn write(state: &AppState, entry: Entry<'_>) {
    let detail = match entry.code {
        Some(code) => serde_json::json!({ "code": code }),
        None => serde_json::json!({}),
    };
    let row = entity::audit_entries::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(entry.tenant),
        actor: Set(entry.actor.to_string()),
        operation: Set(entry.operation.to_string()),
        target: Set(entry.target),
        outcome: Set(entry.outcome.to_string()),
        detail: Set(detail),
        request_id: Set(None),
        at: Set(Utc::now()),
    };
    if let Err(err) = row.insert(&state.db).await {
        tracing::error!(error = %err, operation = entry.operation, "could not write an audit entry");
    }
}

/// The outcome recorded for an error code: the caller's mistakes and refusals are `REFUSED`,
/// our own failures `FAILED`.
fn outcome_of(code: Option<&str>) -> &'static str {
    match code {
        None => "ALLOWED",
        Some("INTERNAL") => "FAILED",
        Some(_) => "REFUSED",
    }
}

/// Records a mutation the guard refused before any resolver ran (bad token, another tenant,
/// a suspended tenant).
pub async fn record_refused_request(
    state: &AppState,
    actor: Option<&str>,
    operation: &str,
    err: &AppError,
) {
    write(
        state,
        Entry {
            actor: actor.unwrap_or("anonymous"),
            tenant: None,
            operation,
            target: None,
            outcome: outcome_of(Some(err.code())),
            code: Some(err.code()),
        },
    )
    .await;
}

impl AuditExtension {
    fn argument(&self, info: &ResolveInfo<'_>, name: &str) -> Option<Value> {
        let (_, value) = info
            .field
            .arguments
            .iter()
            .find(|(n, _)| n.node.as_str() == name)?;
        let variables = self.variables.lock().ok()?;
        value
            .node
            .clone()
            .into_const_with(|var: Name| variables.get(&var).cloned().ok_or(()))
            .ok()
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for AuditExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: async_graphql::Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<async_graphql::Request> {
        if let Ok(mut variables) = self.variables.lock() {
            *variables = request.variables.clone();
        }
        next.run(ctx, request).await
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if info.parent_type != "Mutation" {
            return next.run(ctx, info).await;
        }
        let operation = info.name.to_string();
        let target = TARGET_ARGUMENTS
            .iter()
            .find_map(|name| match self.argument(&info, name) {
                Some(Value::String(s)) => Some(s),
                _ => None,
            });
        let result = next.run(ctx, info).await;
        let (Some(state), Some(req)) = (
            ctx.data_opt::<Arc<AppState>>(),
            ctx.data_opt::<RequestContext>(),
        ) else {
            return result;
        };
        let code = result.as_ref().err().and_then(|e| {
            e.extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    _ => None,
                })
                .or_else(|| Some("INTERNAL".to_string()))
        });
        // The tenant the entry belongs to: the request's, or the tenant the mutation targets.
        let tenant = match req.scope() {
            Ok(Scope::Tenant(t)) => Some(t.id),
            _ => target
                .as_deref()
                .and_then(ids::decode)
                .filter(|(ty, _)| ty == "Tenant")
                .map(|(_, id)| id)
                .or_else(|| target.as_deref().and_then(|t| Uuid::parse_str(t).ok())),
        };
        write(
            state,
            Entry {
                actor: &req.principal.subject,
                tenant,
                operation: &operation,
                target,
                outcome: outcome_of(code.as_deref()),
                code: code.as_deref(),
            },
        )
        .await;
        result
    }
}
