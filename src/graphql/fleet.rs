//! GraphQL for fleet upgrades: `upgradeAllTenants` upgrades every tenant forked from the
//! template, a few at a time ([`crate::fork::fleet`]).

use std::sync::Arc;

use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputObject, InputValue, Object, TypeRef,
};
use serde_json::json;

use crate::{
    error::{AppError, AppResult},
    fork::{
        fleet::{self, FleetOptions, Started},
        runs,
    },
    graphql::{
        audit,
        classes::{app, request},
        ids,
        operations::tenant_row,
        parts::Operations,
    },
    rows::Row,
};

/// How many tenants may upgrade at once through the API.
const MAX_CONCURRENCY: i64 = 64;

/// One tenant of a fleet upgrade, as the `FleetUpgradeEntry` object resolves it.
struct Entry {
    tenant: Row,
    /// The started run, or a dry run's plan.
    run: Option<Row>,
    /// Why the tenant's upgrade did not start: (code, message).
    refused: Option<(&'static str, String)>,
}

fn entry_object() -> Object {
    let field = |name: &'static str, ty: TypeRef| {
        Field::new(name, ty, move |ctx| {
            FieldFuture::new(async move {
                let entry = ctx.parent_value.try_downcast_ref::<Entry>()?;
                Ok(match name {
                    "tenant" => Some(FieldValue::owned_any(entry.tenant.clone())),
                    "run" => entry.run.clone().map(FieldValue::owned_any),
                    "code" => entry.refused.as_ref().map(|(c, _)| FieldValue::value(*c)),
                    _ => entry
                        .refused
                        .as_ref()
                        .map(|(_, m)| FieldValue::value(m.clone())),
                })
            })
        })
    };
    Object::new("FleetUpgradeEntry")
        .description(
            "One tenant of a fleet upgrade: its run (follow it with `forkProgress`; its counts \
             and conflicts are the tenant's report), or why its upgrade did not start.",
        )
        .field(field("tenant", TypeRef::named_nn("Tenant")))
        .field(field("run", TypeRef::named("ForkRun")).description(
            "The tenant's upgrade run (status PENDING until its turn comes), or with `dryRun` \
             its plan (status PLANNED); null when it did not start.",
        ))
        .field(field("code", TypeRef::named(TypeRef::STRING)).description(
            "Why the upgrade did not start, as an error code (`PRECONDITION_FAILED`, …).",
        ))
        .field(
            field("error", TypeRef::named(TypeRef::STRING))
                .description("Why the upgrade did not start, in words."),
        )
}

fn input_object() -> InputObject {
    let flag = |name: &str, description: &str| {
        InputValue::new(name, TypeRef::named(TypeRef::BOOLEAN))
            .default_value(false)
            .description(description)
    };
    InputObject::new("UpgradeAllTenantsInput")
        .description("A fleet upgrade: every tenant forked from the template, or the named ones.")
        .field(
            InputValue::new("tenants", TypeRef::named_nn_list(TypeRef::STRING))
                .description("Only these tenants (slugs or ids); every tenant when omitted."),
        )
        .field(flag(
            "dryRun",
            "Plan every upgrade (runs with status PLANNED); write nothing.",
        ))
        .field(
            InputValue::new("concurrency", TypeRef::named(TypeRef::INT))
                .default_value(4)
                .description("How many tenants upgrade at once (1–64)."),
        )
        .field(flag(
            "restoreDeleted",
            "Re-create copies the tenants deleted.",
        ))
        .field(flag(
            "removeDeleted",
            "Remove copies whose template row is gone, where the tenant left them untouched.",
        ))
}

/// The options of an `UpgradeAllTenantsInput`.
fn options(
    input: &async_graphql::dynamic::ObjectAccessor<'_>,
    actor: String,
) -> AppResult<FleetOptions> {
    let flag = |name: &str| {
        input
            .get(name)
            .and_then(|v| v.boolean().ok())
            .unwrap_or(false)
    };
    let concurrency = input
        .get("concurrency")
        .and_then(|v| v.i64().ok())
        .unwrap_or(4);
    if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
        return Err(AppError::input(
            "concurrency",
            format!("must be between 1 and {MAX_CONCURRENCY}"),
        ));
    }
    let mut only = Vec::new();
    if let Some(list) = input.get("tenants").and_then(|v| v.list().ok()) {
        for key in list.iter() {
            let key = key
                .string()
                .map_err(|_| AppError::input("tenants", "expected strings"))?;
            only.push(match ids::decode(key) {
                Some((kind, id)) if kind == "Tenant" => id.to_string(),
                _ => key.to_string(),
            });
        }
    }
    Ok(FleetOptions {
        dry_run: flag("dryRun"),
        concurrency: concurrency as usize,
        restore_deleted: flag("restoreDeleted"),
        remove_deleted: flag("removeDeleted"),
        actor,
        only,
        start_after: None,
    })
}

/// Adds `upgradeAllTenants` and its types.
pub fn build(ops: &mut Operations) {
    ops.objects.push(entry_object());
    ops.inputs.push(input_object());
    ops.mutation_fields.push(
        Field::new(
            "upgradeAllTenants",
            TypeRef::named_nn_list_nn("FleetUpgradeEntry"),
            |ctx| {
                FieldFuture::new(async move {
                    let state = app(&ctx)?;
                    let req = request(&ctx)?;
                    req.require_admin()?;
                    let input = ctx.args.try_get("input")?.object()?;
                    let mut options = options(&input, req.principal.subject.clone())?;
                    options.start_after = Some(runs::StartSignal::new(audit::entry_written(&ctx)));
                    let class = state
                        .registry
                        .by_table("fork_runs")
                        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no fork_runs class")))?;
                    let entries = fleet::upgrade_all(Arc::clone(state), &options).await?;
                    let mut out = Vec::with_capacity(entries.len());
                    let mut started = Vec::new();
                    for entry in entries {
                        let tenant = tenant_row(state, &entry.tenant)?;
                        let (run, refused) = match entry.started {
                            Started::Run(run) => {
                                started.push(ids::encode("ForkRun", run.id));
                                (Some(Row::from_model(class, &run)?), None)
                            }
                            Started::Planned(input, outcome) => (
                                Some(runs::record::planned_row(
                                    class,
                                    &input,
                                    &outcome,
                                    &req.principal.subject,
                                )?),
                                None,
                            ),
                            Started::Refused(err) => (None, Some((err.code(), err.message()))),
                        };
                        out.push(FieldValue::owned_any(Entry {
                            tenant,
                            run,
                            refused,
                        }));
                    }
                    audit::note(
                        &ctx,
                        json!({
                            "targetType": "Tenant",
                            "dryRun": options.dry_run,
                            "tenants": out.len(),
                            "runs": started,
                        }),
                    );
                    Ok(Some(FieldValue::list(out)))
                })
            },
        )
        .argument(InputValue::new(
            "input",
            TypeRef::named_nn("UpgradeAllTenantsInput"),
        ))
        .description(
            "Upgrades every tenant forked from the template (or the named ones) to the \
             template's latest version, `concurrency` at a time, and returns at once one entry \
             per tenant: its run (an UPGRADE run, PENDING until its turn; follow it with \
             `forkProgress` or `forkRun`), or why it could not start. One tenant's failure does \
             not stop the others. Platform admins.",
        ),
    );
}
