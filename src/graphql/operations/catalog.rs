//! The tenant catalog and lifecycle: `tenants`, `tenant`, `tenantStats`, `createTenant`,
//! `activateTenant`, `suspendTenant`, `extendTrial`, `deleteTenant`.

use super::*;

pub(super) fn build(ops: &mut Operations) {
    ops.inputs.push(
        InputObject::new("CreateTenantInput")
            .field(InputValue::new("name", TypeRef::named_nn(TypeRef::STRING)))
            .field(
                InputValue::new("slug", TypeRef::named(TypeRef::STRING))
                    .description("A DNS label; derived from the name when omitted."),
            )
            .field(
                InputValue::new("domain", TypeRef::named(TypeRef::STRING))
                    .description("A custom domain, usable once verified."),
            )
            .field(InputValue::new(
                "subdomain",
                TypeRef::named(TypeRef::STRING),
            ))
            .field(
                InputValue::new("status", TypeRef::named("TenantStatus"))
                    .description("TRIAL (default) or ACTIVE."),
            )
            .field(InputValue::new("trialDays", TypeRef::named(TypeRef::INT)))
            .field(InputValue::new(
                "contactName",
                TypeRef::named(TypeRef::STRING),
            ))
            .field(InputValue::new(
                "contactEmail",
                TypeRef::named(TypeRef::STRING),
            ))
            .field(
                InputValue::new("ownerEmail", TypeRef::named(TypeRef::STRING))
                    .description("Creates this user (when needed) as the tenant's Owner."),
            )
            .field(InputValue::new("plan", TypeRef::named(TypeRef::STRING)))
            .field(InputValue::new(
                "regionHint",
                TypeRef::named(TypeRef::STRING),
            ))
            .field(
                InputValue::new("rootCompanyId", TypeRef::named(TypeRef::STRING))
                    .description("The tenant's root company in your own systems."),
            )
            .field(
                InputValue::new("database", TypeRef::named(TypeRef::STRING)).description(
                    "The named tenant database (FORKLIFT_TENANT_DATABASES) holding the tenant's \
                     configuration and derived rows; omitted or `main`: the main database.",
                ),
            ),
    );
    ops.inputs.push(
        InputObject::new("UpdateTenantInput")
            .description(
                "The profile fields of a tenant; leave a field out to keep it, give null to clear \
                 a nullable one. Status changes with activateTenant, suspendTenant and extendTrial.",
            )
            .field(InputValue::new("name", TypeRef::named(TypeRef::STRING)))
            .field(InputValue::new("contactName", TypeRef::named(TypeRef::STRING)))
            .field(InputValue::new("contactEmail", TypeRef::named(TypeRef::STRING)))
            .field(InputValue::new("plan", TypeRef::named(TypeRef::STRING)))
            .field(InputValue::new("regionHint", TypeRef::named(TypeRef::STRING)))
            .field(InputValue::new("rootCompanyId", TypeRef::named(TypeRef::STRING)))
            .field(
                InputValue::new("subdomain", TypeRef::named(TypeRef::STRING))
                    .description("A DNS label no other tenant uses."),
            ),
    );
    ops.inputs.push(
        InputObject::new("TenantFilter")
            .field(InputValue::new("status", TypeRef::named("TenantStatus")))
            .field(InputValue::new("kind", TypeRef::named("TenantKind")))
            .field(InputValue::new(
                "expiringWithinDays",
                TypeRef::named(TypeRef::INT),
            )),
    );
    ops.objects.push(
        Object::new("TenantStats")
            .field(stat("total"))
            .field(stat("active"))
            .field(stat("trial"))
            .field(stat("suspended"))
            .field(stat("expiring")),
    );
    ops.query_fields.push(
        classes::pagination_args(
            Field::new("tenants", TypeRef::named_nn("TenantConnection"), |ctx| {
                FieldFuture::new(async move {
                    let state = app(&ctx)?;
                    let req = request(&ctx)?;
                    req.require_admin()?;
                    let mut filter = tenants::catalog::TenantQuery::default();
                    if let Some(f) = ctx.args.get("filter").filter(|v| !v.is_null()) {
                        let f = f.object()?;
                        filter.status = f
                            .get("status")
                            .and_then(|v| v.enum_name().ok().map(str::to_string));
                        filter.kind = f
                            .get("kind")
                            .and_then(|v| v.enum_name().ok().map(str::to_string));
                        filter.expiring_within_days =
                            f.get("expiringWithinDays").and_then(|v| v.i64().ok());
                    }
                    filter.search = ctx
                        .args
                        .get("search")
                        .and_then(|v| v.string().ok())
                        .map(str::to_string);
                    let all = tenants::catalog::list_tenants(&state.db, &filter, state.clock.now())
                        .await?;
                    let class = state
                        .registry
                        .by_table("tenants")
                        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no tenants class")))?;
                    // Oldest first unless `orderBy` says otherwise.
                    let key = classes::order_of(
                        &ctx,
                        &state.registry,
                        class,
                        vec![("created_at".into(), false)],
                    )?;
                    let window = classes::window_arg(&ctx, class, &key)?;
                    let total = all.len() as u64;
                    let rows = all
                        .iter()
                        .map(|m| tenant_row(state, m))
                        .collect::<AppResult<Vec<_>>>()?;
                    let (rows, offset) =
                        classes::page_rows(rows, &key, &window, classes::DEFAULT_PAGE);
                    let spec = Arc::new(classes::CursorSpec {
                        table: class.table.clone(),
                        key,
                    });
                    Ok(Some(FieldValue::owned_any(ConnectionData::new(
                        rows, offset, total, spec,
                    ))))
                })
            })
            .argument(InputValue::new("filter", TypeRef::named("TenantFilter")))
            .argument(
                InputValue::new("orderBy", TypeRef::named_nn_list("TenantOrderBy")).description(
                    "Ordered by each item in turn, then by id; oldest first when absent. Null \
                     after every value.",
                ),
            )
            .argument(InputValue::new("search", TypeRef::named(TypeRef::STRING))),
        )
        .description("The tenant catalog (platform admins)."),
    );
    ops.query_fields.push(
        Field::new("tenant", TypeRef::named("Tenant"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                req.require_admin()?;
                let id = tenant_key_arg(state, &ctx, "id").await?;
                match tenants::catalog::tenant(&state.db, id).await? {
                    Some(t) => ok_tenant(state, &t),
                    None => Ok(None),
                }
            })
        })
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID))),
    );
    ops.query_fields.push(
        Field::new("tenantStats", TypeRef::named_nn("TenantStats"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                req.require_admin()?;
                let days = ctx
                    .args
                    .get("expiringWithinDays")
                    .and_then(|v| v.i64().ok())
                    .unwrap_or(7);
                let stats = tenants::catalog::stats(&state.db, days, state.clock.now()).await?;
                Ok(Some(FieldValue::owned_any(stats)))
            })
        })
        .argument(
            InputValue::new("expiringWithinDays", TypeRef::named(TypeRef::INT)).default_value(7),
        )
        .description("Counts of the catalog (platform admins)."),
    );
    ops.mutation_fields.push(
        Field::new("createTenant", TypeRef::named_nn("Tenant"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                let input = ctx.args.try_get("input")?.object()?;
                let status = input
                    .get("status")
                    .and_then(|v| v.enum_name().ok().map(str::to_string));
                let create = tenants::lifecycle::CreateTenant {
                    name: opt_str(&input, "name")?.unwrap_or_default(),
                    slug: opt_str(&input, "slug")?,
                    domain: opt_str(&input, "domain")?,
                    subdomain: opt_str(&input, "subdomain")?,
                    active: status.as_deref() == Some("ACTIVE"),
                    trial_days: input.get("trialDays").and_then(|v| v.i64().ok()),
                    contact_name: opt_str(&input, "contactName")?,
                    contact_email: opt_str(&input, "contactEmail")?,
                    owner_email: opt_str(&input, "ownerEmail")?,
                    plan: opt_str(&input, "plan")?,
                    region_hint: opt_str(&input, "regionHint")?,
                    root_company_id: opt_str(&input, "rootCompanyId")?,
                    database: opt_str(&input, "database")?,
                };
                if status.as_deref() == Some("SUSPENDED") {
                    return Err(AppError::input("status", "a new tenant is TRIAL or ACTIVE").into());
                }
                let tenant = tenants::lifecycle::create_tenant(state, req, create).await?;
                audit::note(
                    &ctx,
                    serde_json::json!({
                        "targetType": "Tenant",
                        "tenant": { "id": ids::encode("Tenant", tenant.id), "slug": tenant.slug },
                        "before": null,
                        "after": { "status": tenant.status, "profile": crate::tenant_profile::profile(&tenant) },
                    }),
                );
                ok_tenant(state, &tenant)
            })
        })
        .argument(InputValue::new(
            "input",
            TypeRef::named_nn("CreateTenantInput"),
        ))
        .description("Creates a tenant and its root organization (platform admins)."),
    );
    for (name, doc) in [
        ("activateTenant", "Ends a trial or a suspension."),
        (
            "deleteTenant",
            "Deletes a tenant with no members left, and all its rows. With `purge: true`, \
             members and all: the tenant is marked PURGING, its rows go in bounded batches, \
             and a re-run after an interruption finishes the job; the audit entry is in the \
             platform log.",
        ),
    ] {
        let field = Field::new(
            name,
            TypeRef::named_nn(if name == "deleteTenant" {
                TypeRef::ID
            } else {
                "Tenant"
            }),
            move |ctx| {
                FieldFuture::new(async move {
                    let state = app(&ctx)?;
                    let req = request(&ctx)?;
                    let id = tenant_key_arg(state, &ctx, "id").await?;
                    if name == "deleteTenant" {
                        let purge = ctx
                            .args
                            .get("purge")
                            .map(|v| v.boolean())
                            .transpose()?
                            .unwrap_or(false);
                        if purge {
                            purge_tenant(state, req, &ctx, id).await?;
                        } else {
                            tenants::lifecycle::delete_tenant(state, req, id).await?;
                        }
                        Ok(Some(FieldValue::value(Value::from(ids::encode(
                            "Tenant", id,
                        )))))
                    } else {
                        let before = tenants::catalog::tenant(&state.db, id)
                            .await?
                            .map(|t| t.status);
                        let t = tenants::lifecycle::activate(state, req, id).await?;
                        note_status(&ctx, &t, before);
                        ok_tenant(state, &t)
                    }
                })
            },
        )
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .description(doc);
        ops.mutation_fields.push(if name == "deleteTenant" {
            field.argument(
                InputValue::new("purge", TypeRef::named(TypeRef::BOOLEAN)).description(
                    "Delete every row of the tenant, members included, in bounded batches \
                     (resumable). Default false: refused while members remain.",
                ),
            )
        } else {
            field
        });
    }
    ops.mutation_fields.push(
        Field::new("updateTenant", TypeRef::named_nn("Tenant"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                let id = tenant_key_arg(state, &ctx, "id").await?;
                let input = ctx.args.try_get("input")?.object()?;
                let changes = crate::tenant_profile::TenantChanges {
                    name: opt_str(&input, "name")?,
                    contact_name: change(&input, "contactName")?,
                    contact_email: change(&input, "contactEmail")?,
                    plan: change(&input, "plan")?,
                    region_hint: change(&input, "regionHint")?,
                    root_company_id: change(&input, "rootCompanyId")?,
                    subdomain: change(&input, "subdomain")?,
                };
                let (before, after) =
                    crate::tenant_profile::update_tenant(state, req, id, changes).await?;
                audit::note(
                    &ctx,
                    serde_json::json!({
                        "targetType": "Tenant",
                        "before": crate::tenant_profile::profile(&before),
                        "after": crate::tenant_profile::profile(&after),
                    }),
                );
                ok_tenant(state, &after)
            })
        })
        .argument(
            InputValue::new("id", TypeRef::named_nn(TypeRef::ID))
                .description("The tenant's id or slug."),
        )
        .argument(InputValue::new(
            "input",
            TypeRef::named_nn("UpdateTenantInput"),
        ))
        .description(
            "Changes a tenant's profile: name, contact, plan, region hint, root company, subdomain \
             (platform admins). An empty change is BAD_USER_INPUT.",
        ),
    );
    ops.mutation_fields.push(
        Field::new("suspendTenant", TypeRef::named_nn("Tenant"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                let id = tenant_key_arg(state, &ctx, "id").await?;
                let reason = ctx
                    .args
                    .get("reason")
                    .filter(|v| !v.is_null())
                    .map(|v| v.string().map(str::to_string))
                    .transpose()?;
                let before = tenants::catalog::tenant(&state.db, id)
                    .await?
                    .map(|t| t.status);
                let t = tenants::lifecycle::suspend(state, req, id, reason).await?;
                note_status(&ctx, &t, before);
                ok_tenant(state, &t)
            })
        })
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .argument(
            InputValue::new("reason", TypeRef::named(TypeRef::STRING))
                .description("Why, for the record and the tenant's admins (optional)."),
        )
        .description("Blocks every member of the tenant (platform admins)."),
    );
    ops.mutation_fields.push(
        Field::new("extendTrial", TypeRef::named_nn("Tenant"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                let id = tenant_key_arg(state, &ctx, "id").await?;
                let days = ctx.args.try_get("days")?.i64()?;
                let t = tenants::lifecycle::extend_trial(state, req, id, days).await?;
                ok_tenant(state, &t)
            })
        })
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new("days", TypeRef::named_nn(TypeRef::INT)))
        .description("Pushes the trial end by a positive number of days (trial tenants only)."),
    );
}

/// `deleteTenant(id, purge: true)`: marks the tenant, notes the platform-log entry (before the
/// work, so an interrupted attempt is recorded too), purges, and notes what went.
///
/// The purge runs in its own task: a request that gives up (the request timeout, a client
/// that hangs up) does not cut it. The caller then gets the timeout, the purge goes on to the
/// end, and the task writes the platform-log entry itself (the extension has no result to
/// record); a `tenant(id)` that answers null says it is done.
async fn purge_tenant(
    state: &std::sync::Arc<crate::state::AppState>,
    req: &crate::scope::RequestContext,
    ctx: &async_graphql::dynamic::ResolverContext<'_>,
    id: uuid::Uuid,
) -> AppResult<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    /// Set when the request stops waiting before the purge has finished.
    struct Detach(std::sync::Arc<AtomicBool>);
    impl Drop for Detach {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    req.require_admin()?;
    let (tenant, resumed) = crate::offboarding::purge::mark(state, id).await?;
    let who = serde_json::json!({
        "id": ids::encode("Tenant", id),
        "slug": tenant.slug,
        "name": tenant.name,
    });
    audit::note_platform(
        ctx,
        serde_json::json!({ "targetType": "Tenant", "tenant": who, "purge": { "complete": false, "resumed": resumed } }),
    );
    let detached = std::sync::Arc::new(AtomicBool::new(false));
    let _guard = Detach(detached.clone());
    let task_state = state.clone();
    let actor = req.principal.subject.clone();
    let request_id = ctx.data_opt::<audit::RequestId>().map(|r| r.0.clone());
    let task_who = who.clone();
    let task = tokio::spawn(async move {
        let result = crate::offboarding::purge::purge(&task_state, &tenant).await;
        if detached.load(Ordering::SeqCst) {
            let (outcome, code, purge) = match &result {
                Ok(report) => (
                    entity::audit_entries::AuditOutcome::Allowed,
                    None,
                    serde_json::json!({ "complete": true, "resumed": resumed, "rows": report.rows, "batches": report.batches, "detached": true }),
                ),
                Err(err) => (
                    entity::audit_entries::AuditOutcome::Failed,
                    Some(err.code()),
                    serde_json::json!({ "complete": false, "resumed": resumed, "detached": true }),
                ),
            };
            audit::write_change(
                &task_state,
                audit::Entry {
                    actor: &actor,
                    tenant: None,
                    operation: "deleteTenant",
                    target: Some(ids::encode("Tenant", tenant.id)),
                    outcome,
                    code,
                },
                serde_json::json!({ "targetType": "Tenant", "tenant": task_who, "purge": purge }),
                request_id.as_deref(),
            )
            .await;
        }
        result
    });
    let report = task
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("the purge task failed: {e}")))??;
    audit::note_platform(
        ctx,
        serde_json::json!({
            "targetType": "Tenant",
            "tenant": who,
            "purge": {
                "complete": true,
                "resumed": resumed,
                "rows": report.rows,
                "batches": report.batches,
            },
        }),
    );
    Ok(())
}

fn stat(name: &'static str) -> Field {
    Field::new(name, TypeRef::named_nn(TypeRef::INT), move |ctx| {
        FieldFuture::new(async move {
            let stats = ctx
                .parent_value
                .try_downcast_ref::<tenants::catalog::TenantStats>()?;
            let v = match name {
                "total" => stats.total,
                "active" => stats.active,
                "trial" => stats.trial,
                "suspended" => stats.suspended,
                _ => stats.expiring,
            };
            Ok(Some(Value::from(v)))
        })
    })
}
