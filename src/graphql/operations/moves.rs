//! `moveTenant(id, database)`: a run of kind `MOVE` that carries a tenant to another database
//! ([`crate::fork::runs::moves`]), and the platform admins' view of where a move goes
//! (`ForkRun.fromDatabase`, `ForkRun.toDatabase`).

use std::sync::Arc;

use async_graphql::{
    Value,
    dynamic::{Field, FieldFuture, FieldValue, InputValue, TypeRef},
};

use super::{arg_str, tenant_id_arg};
use crate::{
    error::AppError,
    fork::runs::{self, moves},
    graphql::{
        audit,
        classes::{app, request},
        ids,
        parts::Operations,
    },
    rows::Row,
};

pub(super) fn build(ops: &mut Operations) {
    ops.mutation_fields.push(
        Field::new("moveTenant", TypeRef::named_nn("ForkRun"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                req.require_admin()?;
                let key = match tenant_id_arg(&ctx, "id") {
                    Ok(id) => id.to_string(),
                    Err(_) => arg_str(&ctx, "id")?.to_string(),
                };
                let database = match ctx.args.get("database") {
                    Some(v) if !v.is_null() => Some(
                        v.string()
                            .map_err(|_| AppError::input("database", "expected a string"))?
                            .to_string(),
                    ),
                    _ => None,
                };
                let mut input =
                    moves::check(state, &key, database.as_deref(), &req.principal.subject).await?;
                input.start_after = Some(runs::StartSignal::new(audit::entry_written(&ctx)));
                let class = state
                    .registry
                    .by_table("fork_runs")
                    .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no fork_runs class")))?;
                let run = moves::start(Arc::clone(state), input.clone()).await?;
                audit::note(
                    &ctx,
                    serde_json::json!({
                        "targetType": "Tenant",
                        "tenant": { "id": ids::encode("Tenant", input.tenant.id), "slug": input.tenant.slug },
                        "run": ids::encode("ForkRun", run.id),
                        "kind": runs::kind::MOVE.as_str(),
                        "before": { "database": database_name(&input.tenant.database) },
                        "after": { "database": database_name(&input.to) },
                    }),
                );
                Ok(Some(FieldValue::owned_any(Row::from_model(class, &run)?)))
            })
        })
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)).description("The tenant: its id or slug."))
        .argument(InputValue::new("database", TypeRef::named(TypeRef::STRING)).description(
            "A configured tenant database; null or `main` for the main database.",
        ))
        .description(
            "Moves a tenant's configuration, derived rows and lineage to another database and \
             returns the run (kind MOVE, streamed by `forkProgress`) at once. The run copies the \
             rows (the tenant is served from where it was), then for the switch alone holds the \
             tenant in provisioning: it carries over what changed meanwhile, compares every \
             table's row count and checksum on both sides, and only when all match places the \
             tenant in the new database; then it removes the old copy. A move that fails or is \
             interrupted leaves the tenant served from exactly one database; running it again \
             finishes it. Platform admins.",
        ),
    );
    for (name, column, description) in [
        (
            "fromDatabase",
            "from_database",
            "A move's origin: a named tenant database or `main`; null for other runs (platform admins only; others get FORBIDDEN).",
        ),
        (
            "toDatabase",
            "to_database",
            "A move's destination: a named tenant database or `main`; null for other runs (platform admins only; others get FORBIDDEN).",
        ),
    ] {
        ops.object_fields.push((
            "ForkRun",
            Field::new(name, TypeRef::named(TypeRef::STRING), move |ctx| {
                FieldFuture::new(async move {
                    request(&ctx)?.require_admin()?;
                    let row = ctx.parent_value.try_downcast_ref::<Row>()?;
                    if row.get("kind").as_text() != Some(runs::kind::MOVE.as_str()) {
                        return Ok(None);
                    }
                    let name = row.get(column).as_text().map(str::to_string);
                    Ok(Some(Value::from(database_name(&name))))
                })
            })
            .description(description),
        ));
    }
}

/// A placement as the API shows it: the database's name, `main` for the main one.
fn database_name(database: &Option<String>) -> String {
    database
        .clone()
        .unwrap_or_else(|| crate::databases::MAIN.to_string())
}
