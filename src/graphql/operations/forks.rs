//! Forks: `forkTenant`, the run records (`forkRun`, `forkRuns`, `forkEvents`) and the
//! `forkProgress` subscription.

use super::*;

fn event_object() -> Object {
    let f = |name: &'static str, ty: TypeRef| {
        Field::new(name, ty, move |ctx| {
            FieldFuture::new(async move {
                let e = ctx.parent_value.try_downcast_ref::<ForkEvent>()?;
                Ok(match name {
                    "runId" => Some(Value::from(ids::encode("ForkRun", e.run_id))),
                    "seq" => Some(Value::from(e.seq)),
                    "kind" => Some(Value::Enum(async_graphql::Name::new(e.kind.as_str()))),
                    "phase" => e
                        .phase
                        .as_deref()
                        .map(|p| Value::Enum(async_graphql::Name::new(p))),
                    "className" => e.class_name.clone().map(Value::from),
                    "count" => e.count.map(Value::from),
                    "detail" => Value::from_json(e.detail.clone()).ok(),
                    _ => Some(Value::from(e.at.to_rfc3339())),
                })
            })
        })
    };
    Object::new("ForkProgressEvent")
        .description("One event of a fork run's progress stream.")
        .field(f("runId", TypeRef::named_nn(TypeRef::ID)))
        .field(f("seq", TypeRef::named_nn(TypeRef::INT)))
        .field(f("kind", TypeRef::named_nn("ForkEventKind")))
        .field(f("phase", TypeRef::named("ForkPhase")))
        .field(f("className", TypeRef::named(TypeRef::STRING)))
        .field(f("count", TypeRef::named(TypeRef::INT)))
        .field(f("detail", TypeRef::named_nn("JSON")))
        .field(f("at", TypeRef::named_nn("DateTime")))
}

/// `ForkRun.counts` and `ForkRun.skipped`, typed: the run record stores them as JSON
/// (`engine::ClassCount`, `engine::SkippedRow`), and a client should not have to parse them.
fn run_result_objects(ops: &mut Operations) {
    let count = |name: &'static str, ty: TypeRef| {
        Field::new(name, ty, move |ctx| {
            let item = ctx.parent_value.try_downcast_ref::<serde_json::Value>();
            let value = item.map(|item| match name {
                "phase" => item[name]
                    .as_str()
                    .map(|p| Value::Enum(async_graphql::Name::new(p))),
                "className" | "column" | "reason" | "field" => item[name].as_str().map(Value::from),
                // Upgrades' counts; runs recorded before they existed read 0.
                "updated" | "conflicts" | "keptDeleted" => {
                    Some(Value::from(item[name].as_i64().unwrap_or(0)))
                }
                "base" | "template" | "tenant" => Value::from_json(item[name].clone()).ok(),
                "sourceId" | "rowId" => item[name].as_str().map(|id| {
                    match (item["className"].as_str(), uuid::Uuid::parse_str(id)) {
                        (Some(class), Ok(uuid)) => Value::from(ids::encode(class, uuid)),
                        _ => Value::from(id),
                    }
                }),
                _ => item[name].as_i64().map(Value::from),
            });
            match value {
                Ok(value) => FieldFuture::from_value(value),
                Err(err) => FieldFuture::new(async move { Err::<Option<Value>, _>(err) }),
            }
        })
    };
    ops.objects.push(
        Object::new("ForkClassCount")
            .description("What a fork did (or, in a dry run, would do) with one class.")
            .field(count("className", TypeRef::named_nn(TypeRef::STRING)))
            .field(count("phase", TypeRef::named_nn("ForkPhase")))
            .field(count("rows", TypeRef::named_nn(TypeRef::INT)).description("Source rows considered."))
            .field(count("created", TypeRef::named_nn(TypeRef::INT)).description("Rows created in the target (a dry run: that would be)."))
            .field(count("matched", TypeRef::named_nn(TypeRef::INT)).description("Rows the target already had, left as they are."))
            .field(count("skipped", TypeRef::named_nn(TypeRef::INT)).description("Rows not copied: an unresolved reference, or a natural key the target already uses."))
            .field(count("removed", TypeRef::named_nn(TypeRef::INT)).description("Derived rows removed because they no longer follow from the configuration; an upgrade: also copies removed because the template removed their source."))
            .field(count("updated", TypeRef::named_nn(TypeRef::INT)).description("Copies an upgrade changed to follow the template."))
            .field(count("conflicts", TypeRef::named_nn(TypeRef::INT)).description("Rows with a field both the template and the tenant changed (an upgrade keeps the tenant's)."))
            .field(count("keptDeleted", TypeRef::named_nn(TypeRef::INT)).description("Source rows whose copy the tenant deleted, kept deleted (not restored).")),
    );
    ops.objects.push(
        Object::new("ForkConflict")
            .description("A change of the template an upgrade did not apply because the tenant changed the same thing.")
            .field(count("className", TypeRef::named_nn(TypeRef::STRING)))
            .field(count("rowId", TypeRef::named_nn(TypeRef::ID)).description("The tenant's copy (global id)."))
            .field(count("sourceId", TypeRef::named_nn(TypeRef::ID)).description("The template row (global id)."))
            .field(count("field", TypeRef::named(TypeRef::STRING)).description("The column both sides changed; null for a whole row (a removal not applied)."))
            .field(count("base", TypeRef::named("JSON")))
            .field(count("template", TypeRef::named("JSON")))
            .field(count("tenant", TypeRef::named("JSON")))
            .field(count("reason", TypeRef::named_nn(TypeRef::STRING))),
    );
    ops.objects.push(
        Object::new("ForkSkippedRow")
            .description("A source row a fork did not copy, and why.")
            .field(count("className", TypeRef::named_nn(TypeRef::STRING)))
            .field(
                count("sourceId", TypeRef::named_nn(TypeRef::ID))
                    .description("The source row's global id."),
            )
            .field(
                count("column", TypeRef::named(TypeRef::STRING)).description(
                    "The reference that did not resolve; null for a natural-key clash.",
                ),
            )
            .field(count("reason", TypeRef::named_nn(TypeRef::STRING))),
    );
    for (field, ty, column, doc) in [
        (
            "counts",
            "ForkClassCount",
            "counts",
            "What the run did per class, in the order it did it (a dry run: its plan).",
        ),
        (
            "skipped",
            "ForkSkippedRow",
            "skipped",
            "The rows it did not copy.",
        ),
        (
            "conflicts",
            "ForkConflict",
            "conflicts",
            "An upgrade's conflicts: changes of the template it left unapplied.",
        ),
    ] {
        ops.object_fields.push((
            "ForkRun",
            Field::new(field, TypeRef::named_nn_list_nn(ty), move |ctx| {
                let items =
                    ctx.parent_value
                        .try_downcast_ref::<Row>()
                        .map(|row| match row.get(column) {
                            crate::rows::Cell::Json(serde_json::Value::Array(items)) => {
                                items.clone()
                            }
                            _ => Vec::new(),
                        });
                match items {
                    Ok(items) => FieldFuture::Value(Some(FieldValue::list(
                        items.into_iter().map(FieldValue::owned_any),
                    ))),
                    Err(err) => {
                        FieldFuture::new(async move { Err::<Option<FieldValue<'_>>, _>(err) })
                    }
                }
            })
            .description(doc),
        ));
    }
}

pub(super) fn build(ops: &mut Operations) {
    ops.objects.push(event_object());
    run_result_objects(ops);
    ops.object_fields.push((
        "ForkRun",
        Field::new("target", TypeRef::named_nn("Tenant"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let row = ctx.parent_value.try_downcast_ref::<Row>()?;
                let id = row.tenant_id().ok_or_else(|| {
                    AppError::Internal(anyhow::anyhow!("a fork run without a target"))
                })?;
                let tenant = tenants::catalog::tenant(&state.db, id)
                    .await?
                    .ok_or_else(|| AppError::NotFound("Tenant".into()))?;
                ok_tenant(state, &tenant)
            })
        })
        .description(
            "The tenant this run forked or upgraded into (whoever may read the run may read it).",
        ),
    ));
    ops.inputs.push(
        InputObject::new("ForkTenantInput")
            .field(
                InputValue::new("target", TypeRef::named_nn(TypeRef::STRING))
                    .description("Target tenant: slug or id."),
            )
            .field(
                InputValue::new("source", TypeRef::named(TypeRef::STRING))
                    .description("Source tenant: slug or id; the template when omitted."),
            )
            .field(InputValue::new("dryRun", TypeRef::named(TypeRef::BOOLEAN)).default_value(false))
            .field(
                InputValue::new("restoreDeleted", TypeRef::named(TypeRef::BOOLEAN))
                    .default_value(false)
                    .description(
                        "Re-create copies the tenant deleted (otherwise they stay deleted).",
                    ),
            ),
    );
    ops.mutation_fields.push(
        Field::new("forkTenant", TypeRef::named_nn("ForkRun"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                req.require_admin()?;
                let input = ctx.args.try_get("input")?.object()?;
                let target = opt_str(&input, "target")?.ok_or_else(|| AppError::input("target", "is required"))?;
                let target = match ids::decode(&target) {
                    Some((t, id)) if t == "Tenant" => id.to_string(),
                    _ => target,
                };
                let source = opt_str(&input, "source")?.map(|s| match ids::decode(&s) {
                    Some((t, id)) if t == "Tenant" => id.to_string(),
                    _ => s,
                });
                let dry_run = input.get("dryRun").and_then(|v| v.boolean().ok()).unwrap_or(false);
                let mut checked = runs::check(
                    &state.db,
                    runs::ForkRequest { target, source, dry_run, actor: req.principal.subject.clone() },
                )
                .await?;
                checked.restore_deleted = input.get("restoreDeleted").and_then(|v| v.boolean().ok()).unwrap_or(false);
                let class = state
                    .registry
                    .by_table("fork_runs")
                    .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no fork_runs class")))?;
                if dry_run {
                    let outcome = runs::plan(state, &checked).await?;
                    let row = runs::record::planned_row(class, &checked, &outcome, &req.principal.subject)?;
                    return Ok(Some(FieldValue::owned_any(row)));
                }
                checked.start_after = Some(runs::StartSignal::new(audit::entry_written(&ctx)));
                let run = runs::start(Arc::clone(state), checked.clone()).await?;
                audit::note(
                    &ctx,
                    serde_json::json!({
                        "targetType": "Tenant",
                        "tenant": { "id": ids::encode("Tenant", checked.target.id), "slug": checked.target.slug },
                        "source": { "id": ids::encode("Tenant", checked.source.id), "slug": checked.source.slug },
                        "run": ids::encode("ForkRun", run.id),
                    }),
                );
                Ok(Some(FieldValue::owned_any(Row::from_model(class, &run)?)))
            })
        })
        .argument(InputValue::new("input", TypeRef::named_nn("ForkTenantInput")))
        .description("Starts a fork of `source` (default: the template) into `target` and returns the run at once; with `dryRun: true` returns the plan (status PLANNED, counts per class in order, unresolved anchors in `skipped`) and writes nothing. Platform admins."),
    );
    ops.subscription_fields.push(
        SubscriptionField::new("forkProgress", TypeRef::named_nn("ForkProgressEvent"), |ctx| {
            SubscriptionFieldFuture::new(async move {
                let state = app(&ctx)?.clone();
                let req = request(&ctx)?;
                let run_id = ids::expect(arg_str(&ctx, "runId")?, "ForkRun", "runId")?;
                runs::record::may_follow(&state, req, run_id).await?;
                let after = match ctx.args.get("after") {
                    Some(value) if !value.is_null() => value.i64()?,
                    _ => 0,
                };
                if after < 0 {
                    return Err(AppError::input("after", "a sequence is 0 or more").into());
                }
                let stream = crate::fork::progress::stream(state, run_id, after).await?;
                Ok(stream.map(|event| Ok(FieldValue::owned_any(event))))
            })
        })
        .argument(InputValue::new("runId", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new("after", TypeRef::named(TypeRef::INT)).description(
            "Only the events after this sequence: a subscriber that reconnects passes the last `seq` it saw.",
        ))
        .description("The events of a fork run: those so far (after `after`), then live ones, in order; completes when the run ends. Platform admins, and the target tenant's Owners and Super Users for its runs (also while it is being provisioned); another tenant's run is NOT_FOUND, like a missing one."),
    );
}
