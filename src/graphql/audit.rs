//! The audit log's writer. It is a schema extension, so a mutation added later is audited
//! without a line of its own:
//!
//! - every root mutation field that is allowed (or fails on our side) appends one entry
//!   (actor, tenant, operation, target, outcome, request id, time);
//! - the refused root fields of one request append **one** entry between them, carrying how many
//!   were refused (`detail.refusedFields`), so a document repeating a refused field thousands
//!   of times costs its sender, not the log;
//! - a request the guard refuses before any resolver runs appends one entry too
//!   ([`record_refused_request`]), with the number of root fields it named.
//!
//! Stored text is bounded: operation names to [`MAX_OPERATION_CHARS`], targets to
//! [`MAX_TARGET_CHARS`]. An entry names a tenant only when the caller was allowed into that
//! tenant (its scope) or is a platform admin: a refused stranger's attempt on tenant A is in the
//! platform log, not in A's.

pub mod changes;
mod log;

pub use log::build;

use entity::audit_entries::AuditOutcome;
use std::sync::{Arc, Mutex};

use async_graphql::{
    Name, ServerResult, Value, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest,
        NextResolve, ResolveInfo,
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

/// Longest operation name stored; longer ones are cut (they can only come from refused text).
pub const MAX_OPERATION_CHARS: usize = 64;
/// Longest target stored (an id argument as the client sent it).
pub const MAX_TARGET_CHARS: usize = 256;

/// The request id of the HTTP request or WebSocket operation, as request data.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// What the mutation being resolved says about its change, for its audit entry
/// (`detail.change`, e.g. `{"before": …, "after": …}`), and who waits for that entry to be
/// written ([`entry_written`]). One slot per request: mutations run one after another, and the
/// entry of each takes the slot when it is written.
#[derive(Default)]
pub struct AuditNotes(Mutex<Slot>);

#[derive(Default)]
struct Slot {
    note: Option<Note>,
    /// Dropped once the entry is written; each receiver then resolves.
    waiting: Vec<tokio::sync::oneshot::Sender<()>>,
}

/// A mutation's note: its change, and whether its entry goes to the platform log.
struct Note {
    change: serde_json::Value,
    platform: bool,
}

impl AuditNotes {
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(&self) -> Option<Note> {
        self.slot().note.take()
    }

    /// Lets everyone who waits for the current entry go ([`entry_written`]).
    fn release(&self) {
        self.slot().waiting.clear();
    }
}

/// Records `change` for the audit entry of the mutation `ctx` resolves.
pub fn note(ctx: &async_graphql::dynamic::ResolverContext<'_>, change: serde_json::Value) {
    if let Some(notes) = ctx.data_opt::<AuditNotes>() {
        notes.slot().note = Some(Note {
            change,
            platform: false,
        });
    }
}

/// Resolves once the audit entry of the mutation `ctx` resolves has been written, or once the
/// request ended without writing it; at once when nothing audits the request. A mutation that
/// starts background work which writes (a fork run) makes that work wait for this, so on SQLite
/// the request's own entry never queues behind the work's long write transaction (which would
/// hold the answer back until the work ends).
pub fn entry_written(
    ctx: &async_graphql::dynamic::ResolverContext<'_>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let (written, wait) = tokio::sync::oneshot::channel::<()>();
    if let Some(notes) = ctx.data_opt::<AuditNotes>() {
        notes.slot().waiting.push(written);
    }
    async move {
        // Never sent: the sender is dropped when the entry is written or the request ends.
        let _ = wait.await;
    }
}

/// As [`note`], and the entry goes to the platform log (no tenant) whatever the mutation
/// targets, allowed or failed: a tenant's purge (`deleteTenant(purge: true)`) is recorded
/// outside the tenant it deletes. Noted before the work starts, so a failed attempt is there too.
pub fn note_platform(ctx: &async_graphql::dynamic::ResolverContext<'_>, change: serde_json::Value) {
    if let Some(notes) = ctx.data_opt::<AuditNotes>() {
        notes.slot().note = Some(Note {
            change,
            platform: true,
        });
    }
}

/// `text` cut to at most `max` characters, a NUL (which no text column stores; it can only
/// come from refused input) shown as U+FFFD.
fn bounded(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if c == '\0' { '\u{FFFD}' } else { c })
        .collect()
}

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
    /// The first refused root field of this request and how many were refused in all; written
    /// as one entry when execution ends.
    refused: Mutex<Option<(Refusal, usize)>>,
}

/// A refused root field, kept until the request ends.
struct Refusal {
    actor: String,
    tenant: Option<Uuid>,
    operation: String,
    target: Option<String>,
    code: String,
}

/// One entry to write.
pub struct Entry<'a> {
    pub actor: &'a str,
    pub tenant: Option<Uuid>,
    pub operation: &'a str,
    pub target: Option<String>,
    pub outcome: AuditOutcome,
    pub code: Option<&'a str>,
}

/// Appends `entry` to the audit log; a failure is logged, never returned to the caller.
pub async fn write(state: &AppState, entry: Entry<'_>) {
    write_with(state, entry, serde_json::Map::new(), None).await;
}

/// Appends `entry` with the request id (HTTP endpoints outside GraphQL, such as the export).
pub async fn write_request(state: &AppState, entry: Entry<'_>, request_id: Option<&str>) {
    write_with(state, entry, serde_json::Map::new(), request_id).await;
}

/// Appends `entry` with `change` as its `detail.change` (what [`note`] gives the extension),
/// for work that outlived its request (a purge the request timeout cut loose).
pub async fn write_change(
    state: &AppState,
    entry: Entry<'_>,
    change: serde_json::Value,
    request_id: Option<&str>,
) {
    let mut detail = serde_json::Map::new();
    detail.insert("change".into(), change);
    write_with(state, entry, detail, request_id).await;
}

/// Appends `entry` with extra `detail` fields and the request id.
async fn write_with(
    state: &AppState,
    entry: Entry<'_>,
    mut detail: serde_json::Map<String, serde_json::Value>,
    request_id: Option<&str>,
) {
    if let Some(code) = entry.code {
        detail.insert("code".into(), code.into());
    }
    // The type of the row acted on, for `auditLog(filter: {targetType})`: as the mutation
    // noted it, else the type of the global id it named.
    let target_type = detail
        .get("change")
        .and_then(|c| c.get("targetType"))
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            entry
                .target
                .as_deref()
                .and_then(ids::decode)
                .map(|(t, _)| t)
        });
    if let Some(t) = target_type {
        detail
            .entry("targetType")
            .or_insert_with(|| bounded(&t, MAX_OPERATION_CHARS).into());
    }
    let row = entity::audit_entries::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(entry.tenant),
        actor: Set(bounded(entry.actor, MAX_TARGET_CHARS)),
        operation: Set(bounded(entry.operation, MAX_OPERATION_CHARS)),
        target: Set(entry.target.map(|t| bounded(&t, MAX_TARGET_CHARS))),
        outcome: Set(entry.outcome),
        detail: Set(serde_json::Value::Object(detail)),
        request_id: Set(request_id.map(|r| bounded(r, MAX_OPERATION_CHARS))),
        at: Set(Utc::now()),
    };
    if let Err(err) = row.insert(&state.db).await {
        tracing::error!(error = %err, operation = entry.operation, "could not write an audit entry");
    }
}

/// The outcome recorded for an error code: the caller's mistakes and refusals are `REFUSED`,
/// our own failures `FAILED`.
fn outcome_of(code: Option<&str>) -> AuditOutcome {
    match code {
        None => AuditOutcome::Allowed,
        Some("INTERNAL") => AuditOutcome::Failed,
        Some(_) => AuditOutcome::Refused,
    }
}

/// Records a mutation request the guard refused before any resolver ran (bad token, another
/// tenant, a suspended tenant): one entry however many root fields it named, in the platform
/// log (the caller got into no tenant).
pub async fn record_refused_request(
    state: &AppState,
    actor: Option<&str>,
    fields: &[String],
    err: &AppError,
    request_id: Option<&str>,
) {
    let mut detail = serde_json::Map::new();
    detail.insert("rootFields".into(), fields.len().into());
    write_with(
        state,
        Entry {
            actor: actor.unwrap_or("anonymous"),
            tenant: None,
            operation: fields.first().map_or("unknown", String::as_str),
            target: None,
            outcome: outcome_of(Some(err.code())),
            code: Some(err.code()),
        },
        detail,
        request_id,
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

    /// Writes the entry of the mutation that just resolved to `result` (or counts it among the
    /// request's refused fields).
    async fn record(
        &self,
        ctx: &ExtensionContext<'_>,
        operation: String,
        target: Option<String>,
        result: &ServerResult<Option<Value>>,
    ) {
        let (Some(state), Some(req)) = (
            ctx.data_opt::<Arc<AppState>>(),
            ctx.data_opt::<RequestContext>(),
        ) else {
            return;
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
        // The tenant the entry belongs to: the request's (the guard let the caller in), or for
        // a platform admin the tenant the mutation targets. Nobody else writes into a tenant's log.
        let tenant = match req.scope() {
            Ok(Scope::Tenant(t)) => Some(t.id),
            _ if req.principal.is_admin => target
                .as_deref()
                .and_then(ids::decode)
                .filter(|(ty, _)| ty == "Tenant")
                .map(|(_, id)| id)
                .or_else(|| target.as_deref().and_then(|t| Uuid::parse_str(t).ok())),
            _ => None,
        };
        let request_id = ctx.data_opt::<RequestId>().map(|r| r.0.as_str());
        if outcome_of(code.as_deref()) == AuditOutcome::Refused {
            // A refused mutation's note (if it made one) must not reach the next one's entry.
            let _ = ctx.data_opt::<AuditNotes>().and_then(AuditNotes::take);
            let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
            match refused.as_mut() {
                Some((_, count)) => *count += 1,
                None => {
                    *refused = Some((
                        Refusal {
                            actor: req.principal.subject.clone(),
                            tenant,
                            operation,
                            target,
                            code: code.unwrap_or_default(),
                        },
                        1,
                    ))
                }
            }
            return;
        }
        let mut detail = serde_json::Map::new();
        let mut tenant = tenant;
        let mut target = target;
        if let Some(Note { change, platform }) =
            ctx.data_opt::<AuditNotes>().and_then(AuditNotes::take)
        {
            // A platform admin's change to one tenant (createTenant, forkTenant, …) belongs
            // in that tenant's log, and names it as the target.
            let noted = change
                .pointer("/tenant/id")
                .and_then(serde_json::Value::as_str)
                .and_then(ids::decode)
                .filter(|(ty, _)| ty == "Tenant");
            if let Some((_, id)) = noted
                && req.principal.is_admin
            {
                tenant = tenant.or(Some(id));
                target = target.or_else(|| Some(ids::encode("Tenant", id)));
            }
            if platform {
                tenant = None;
            }
            detail.insert("change".into(), change);
        }
        write_with(
            state,
            Entry {
                actor: &req.principal.subject,
                tenant,
                operation: &operation,
                target,
                outcome: outcome_of(code.as_deref()),
                code: code.as_deref(),
            },
            detail,
            request_id,
        )
        .await;
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
        self.record(ctx, operation, target, &result).await;
        // Whatever became of the entry, whoever waited for it (`entry_written`) may go now.
        if let Some(notes) = ctx.data_opt::<AuditNotes>() {
            notes.release();
        }
        result
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> async_graphql::Response {
        let response = next.run(ctx, operation_name).await;
        let refused = self
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let (Some((refusal, count)), Some(state)) = (refused, ctx.data_opt::<Arc<AppState>>()) {
            let mut detail = serde_json::Map::new();
            detail.insert("refusedFields".into(), count.into());
            write_with(
                state,
                Entry {
                    actor: &refusal.actor,
                    tenant: refusal.tenant,
                    operation: &refusal.operation,
                    target: refusal.target,
                    outcome: AuditOutcome::Refused,
                    code: Some(&refusal.code),
                },
                detail,
                ctx.data_opt::<RequestId>().map(|r| r.0.as_str()),
            )
            .await;
        }
        response
    }
}
