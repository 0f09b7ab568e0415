//! GraphQL for template evolution (issue #18): `templateDiff`, `upgradeTenant`,
//! `templateVersions`, `Tenant.templateVersion` and `Tenant.templateBehind`. The work is in
//! [`crate::fork::diff`], [`crate::fork::upgrade`] and [`crate::fork::versions`].

use std::sync::Arc;

use async_graphql::{
    Value,
    dynamic::{Field, FieldFuture, FieldValue, InputObject, InputValue, Object, TypeRef},
};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use crate::{
    error::{AppError, AppResult},
    fork::{diff, runs, upgrade::UpgradeOptions, versions},
    graphql::{
        audit,
        classes::{app, request},
        ids,
        parts::Operations,
    },
    naming,
    registry::RowClass,
    rows::Row,
    scope::{RequestContext, Role},
    state::AppState,
    tenants,
};

/// How a JSON-backed field resolves its value.
#[derive(Copy, Clone)]
enum Shape {
    Scalar,
    Objects,
}

/// A field of an object backed by a `serde_json::Value` parent, read at `name`.
fn field(name: &'static str, ty: TypeRef, shape: Shape) -> Field {
    Field::new(name, ty, move |ctx| {
        FieldFuture::new(async move {
            let parent = ctx.parent_value.try_downcast_ref::<Json>()?;
            let value = parent.get(name).cloned().unwrap_or(Json::Null);
            Ok(match (shape, value) {
                (_, Json::Null) => None,
                (Shape::Scalar, v) => Some(FieldValue::value(Value::from_json(v)?)),
                (Shape::Objects, Json::Array(items)) => Some(FieldValue::list(
                    items.into_iter().map(FieldValue::owned_any),
                )),
                (Shape::Objects, _) => Some(FieldValue::list(Vec::<FieldValue<'_>>::new())),
            })
        })
    })
}

fn nn(ty: &str) -> TypeRef {
    TypeRef::named_nn(ty)
}

fn nn_list(ty: &str) -> TypeRef {
    TypeRef::named_nn_list_nn(ty)
}

fn objects() -> Vec<Object> {
    vec![
        Object::new("TemplateDiff")
            .description("A tenant against its template: what each side changed since the tenant's copies were made or last upgraded, and where both changed the same field.")
            .field(field("tenant", nn(TypeRef::ID), Shape::Scalar))
            .field(field("templateVersion", nn(TypeRef::INT), Shape::Scalar).description("The template's latest version."))
            .field(field("tenantVersion", TypeRef::named(TypeRef::INT), Shape::Scalar).description("The version the tenant was forked from or last upgraded to."))
            .field(field("behind", TypeRef::named(TypeRef::INT), Shape::Scalar).description("Versions since the tenant's."))
            .field(field("classes", nn_list("ClassDiff"), Shape::Objects).description("Classes with any difference, in fork order.")),
        Object::new("ClassDiff")
            .description("The three-way diff of one class.")
            .field(field("className", nn(TypeRef::STRING), Shape::Scalar))
            .field(field("addedInTemplate", nn_list("DiffRow"), Shape::Objects).description("Template rows the tenant has no copy of (and never deleted)."))
            .field(field("changedInTemplate", nn_list("DiffRowChange"), Shape::Objects).description("Fields the template changed: base → template."))
            .field(field("removedFromTemplate", nn_list("DiffRemovedRow"), Shape::Objects).description("Copies whose template row is gone."))
            .field(field("changedByTenant", nn_list("DiffRowChange"), Shape::Objects).description("Fields the tenant changed: base → tenant."))
            .field(field("deletedByTenant", nn_list("DiffRow"), Shape::Objects).description("Copies the tenant deleted (tombstones)."))
            .field(field("conflicts", nn_list("DiffRowConflict"), Shape::Objects).description("Fields both sides changed, to different values.")),
        Object::new("DiffRow")
            .description("A tenant's copy and the template row it comes from.")
            .field(field("rowId", nn(TypeRef::ID), Shape::Scalar))
            .field(field("sourceId", nn(TypeRef::ID), Shape::Scalar)),
        Object::new("DiffRemovedRow")
            .description("A copy whose template row is gone.")
            .field(field("rowId", nn(TypeRef::ID), Shape::Scalar))
            .field(field("sourceId", nn(TypeRef::ID), Shape::Scalar))
            .field(field("changedByTenant", nn(TypeRef::BOOLEAN), Shape::Scalar)),
        Object::new("DiffRowChange")
            .description("A row with fields changed on one side.")
            .field(field("rowId", nn(TypeRef::ID), Shape::Scalar))
            .field(field("sourceId", nn(TypeRef::ID), Shape::Scalar))
            .field(field("fields", nn_list("FieldChange"), Shape::Objects)),
        Object::new("FieldChange")
            .description("One field: `from` (the base) → `to`.")
            .field(field("field", nn(TypeRef::STRING), Shape::Scalar))
            .field(field("from", TypeRef::named("JSON"), Shape::Scalar))
            .field(field("to", TypeRef::named("JSON"), Shape::Scalar)),
        Object::new("DiffRowConflict")
            .description("A row with fields both sides changed.")
            .field(field("rowId", nn(TypeRef::ID), Shape::Scalar))
            .field(field("sourceId", nn(TypeRef::ID), Shape::Scalar))
            .field(field("fields", nn_list("FieldConflict"), Shape::Objects)),
        Object::new("FieldConflict")
            .description("One field both sides changed: the base, the template's value and the tenant's.")
            .field(field("field", nn(TypeRef::STRING), Shape::Scalar))
            .field(field("base", TypeRef::named("JSON"), Shape::Scalar))
            .field(field("template", TypeRef::named("JSON"), Shape::Scalar))
            .field(field("tenant", TypeRef::named("JSON"), Shape::Scalar)),
        Object::new("TemplateVersion")
            .description("One version of the template: a sheets import or an API edit that changed it.")
            .field(field("number", nn(TypeRef::INT), Shape::Scalar))
            .field(field("origin", nn(TypeRef::STRING), Shape::Scalar).description("`sheets`, `api`, or `detected` (found by a fork or an upgrade)."))
            .field(field("actor", nn(TypeRef::STRING), Shape::Scalar))
            .field(field("summary", nn("JSON"), Shape::Scalar).description("Rows added, changed and removed per class."))
            .field(field("createdAt", nn("DateTime"), Shape::Scalar)),
    ]
}

/// The GraphQL face of a diff: global ids, field names as the API spells them.
fn diff_json(diff: &diff::TemplateDiff) -> Json {
    let fields = |changes: &[diff::FieldChange]| -> Json {
        changes
            .iter()
            .map(|c| json!({ "field": naming::camel(&c.field), "from": c.from, "to": c.to }))
            .collect()
    };
    let classes: Vec<Json> = diff
        .classes
        .iter()
        .map(|c| {
            let name = c.class_name.as_str();
            let row = |row: Uuid, source: Uuid| {
                json!({ "rowId": ids::encode(name, row), "sourceId": ids::encode(name, source) })
            };
            let changes = |list: &[diff::RowChange]| -> Json {
                list.iter()
                    .map(|r| {
                        let mut out = row(r.row_id, r.source_id);
                        out["fields"] = fields(&r.fields);
                        out
                    })
                    .collect()
            };
            json!({
                "className": name,
                "addedInTemplate": c.added_in_template.iter().map(|r| row(r.row_id, r.source_id)).collect::<Vec<_>>(),
                "changedInTemplate": changes(&c.changed_in_template),
                "removedFromTemplate": c.removed_from_template.iter().map(|r| {
                    let mut out = row(r.row_id, r.source_id);
                    out["changedByTenant"] = r.changed_by_tenant.into();
                    out
                }).collect::<Vec<_>>(),
                "changedByTenant": changes(&c.changed_by_tenant),
                "deletedByTenant": c.deleted_by_tenant.iter().map(|r| row(r.row_id, r.source_id)).collect::<Vec<_>>(),
                "conflicts": c.conflicts.iter().map(|r| {
                    let mut out = row(r.row_id, r.source_id);
                    out["fields"] = r.fields.iter().map(|f| json!({
                        "field": naming::camel(&f.field), "base": f.base, "template": f.template, "tenant": f.tenant,
                    })).collect();
                    out
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "tenant": ids::encode("Tenant", diff.tenant_id),
        "templateVersion": diff.template_version,
        "tenantVersion": diff.tenant_version,
        "behind": diff.tenant_version.map(|v| diff.template_version - v),
        "classes": classes,
    })
}

/// The template tenant.
async fn the_template(state: &AppState) -> AppResult<entity::tenants::Model> {
    use entity::tenants;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    tenants::Entity::find()
        .filter(tenants::Column::Kind.eq(entity::tenants::TenantKind::Template))
        .one(&state.db)
        .await?
        .ok_or_else(|| {
            AppError::PreconditionFailed(
                "there is no template tenant (run `forklift bootstrap`)".into(),
            )
        })
}

/// The tenant named by `key` (slug, id or global id) for `templateDiff`: Admins may name any
/// tenant; an Owner only the tenant the request acts in (anything else is refused without a
/// lookup, so the answer says nothing about other tenants).
async fn diff_tenant(state: &AppState, req: &RequestContext, key: &str) -> AppResult<Uuid> {
    let key = match ids::decode(key) {
        Some((t, id)) if t == "Tenant" => id.to_string(),
        _ => key.to_string(),
    };
    if !req.principal.is_admin {
        let own = req.require_role(Role::Owner)?;
        let named = Uuid::parse_str(&key)
            .map_or_else(|_| key.eq_ignore_ascii_case(&own.slug), |id| id == own.id);
        if !named {
            return Err(AppError::forbidden(
                "an Owner sees the diff of their own tenant only",
            ));
        }
        return Ok(own.id);
    }
    Ok(match Uuid::parse_str(&key) {
        Ok(id) => id,
        Err(_) => tenants::catalog::tenant_by_slug(&state.db, &key).await?.id,
    })
}

/// Records a template version after an edit of the template through the generic API (one
/// version per mutation that changed it). A failure is logged: the edit itself stands, and the
/// next fork or upgrade records the change as `detected`.
pub async fn note_template_edit(state: &AppState, req: &RequestContext, class: &RowClass) {
    let Ok(tenant) = req.tenant() else { return };
    if !tenant.is_template || !class.fork.is_copied() {
        return;
    }
    let recorded = versions::record_now(
        &state.db,
        &state.registry,
        tenant.id,
        versions::origin::API,
        &req.principal.subject,
    )
    .await;
    if let Err(err) = recorded {
        tracing::error!(error = ?err, "could not record a template version");
    }
}

/// Adds template evolution to the hand-written operations.
pub fn build(ops: &mut Operations) {
    ops.objects.extend(objects());
    ops.inputs.push(
        InputObject::new("UpgradeTenantInput")
            .description("An upgrade of a tenant to its template's latest version.")
            .field(InputValue::new("target", nn(TypeRef::STRING)).description("The tenant: slug or id."))
            .field(InputValue::new("dryRun", TypeRef::named(TypeRef::BOOLEAN)).default_value(false).description("Return the plan (status PLANNED, counts, conflicts) and write nothing."))
            .field(InputValue::new("restoreDeleted", TypeRef::named(TypeRef::BOOLEAN)).default_value(false).description("Re-create copies the tenant deleted."))
            .field(InputValue::new("removeDeleted", TypeRef::named(TypeRef::BOOLEAN)).default_value(false).description("Remove copies whose template row is gone, when the tenant left them untouched.")),
    );
    ops.query_fields.push(
        Field::new("templateDiff", nn("TemplateDiff"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                let key = ctx.args.try_get("tenant")?.string()?.to_string();
                let tenant = diff_tenant(state, req, &key).await?;
                let template = the_template(state).await?;
                let placed = crate::placement::pool_of_tenant(state, tenant).await?;
                let diff = diff::diff(
                    &state.db,
                    placed.as_ref(),
                    &state.registry,
                    template.id,
                    tenant,
                )
                .await
                .map_err(AppError::Internal)?;
                Ok(Some(FieldValue::owned_any(diff_json(&diff))))
            })
        })
        .argument(InputValue::new("tenant", nn(TypeRef::STRING)).description("Slug or id."))
        .description("The three-way diff of a tenant against its template: template changes since the tenant's base, the tenant's own changes, conflicts. Platform admins for any tenant; a tenant's Owners for their own."),
    );
    ops.query_fields.push(
        Field::new("templateVersions", nn_list("TemplateVersion"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                request(&ctx)?.require_admin()?;
                let template = the_template(state).await?;
                let list = versions::list(&state.db, template.id)
                    .await
                    .map_err(AppError::Internal)?;
                Ok(Some(FieldValue::list(list.into_iter().map(|v| {
                    FieldValue::owned_any(json!({
                        "number": v.number,
                        "origin": v.origin,
                        "actor": v.actor,
                        "summary": v.summary,
                        "createdAt": v.created_at.to_rfc3339(),
                    }))
                }))))
            })
        })
        .description("The template's versions, newest first. Platform admins."),
    );
    ops.mutation_fields.push(
        Field::new("upgradeTenant", nn("ForkRun"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                req.require_admin()?;
                let input = ctx.args.try_get("input")?.object()?;
                let flag = |name: &str| input.get(name).and_then(|v| v.boolean().ok()).unwrap_or(false);
                let target = input.try_get("target")?.string()?.to_string();
                let target = match ids::decode(&target) {
                    Some((t, id)) if t == "Tenant" => id.to_string(),
                    _ => target,
                };
                let dry_run = flag("dryRun");
                let mut checked = runs::check(
                    &state.db,
                    runs::ForkRequest { target, source: None, dry_run, actor: req.principal.subject.clone() },
                )
                .await?;
                checked.restore_deleted = flag("restoreDeleted");
                checked.upgrade = Some(UpgradeOptions { remove_deleted: flag("removeDeleted") });
                let class = state
                    .registry
                    .by_table("fork_runs")
                    .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no fork_runs class")))?;
                if dry_run {
                    let outcome = runs::plan(state, &checked).await?;
                    let row: Row = runs::record::planned_row(class, &checked, &outcome, &req.principal.subject)?;
                    return Ok(Some(FieldValue::owned_any(row)));
                }
                checked.start_after = Some(runs::StartSignal::new(audit::entry_written(&ctx)));
                let run = runs::start(Arc::clone(state), checked.clone()).await?;
                audit::note(
                    &ctx,
                    json!({
                        "targetType": "Tenant",
                        "tenant": { "id": ids::encode("Tenant", checked.target.id), "slug": checked.target.slug },
                        "run": ids::encode("ForkRun", run.id),
                        "kind": runs::kind::UPGRADE.as_str(),
                    }),
                );
                Ok(Some(FieldValue::owned_any(Row::from_model(class, &run)?)))
            })
        })
        .argument(InputValue::new("input", nn("UpgradeTenantInput")))
        .description("Starts an upgrade of a tenant to the template's latest version (a run of kind UPGRADE, streamed by `forkProgress`) and returns it at once: applies the template's changes to fields the tenant did not change, creates rows the template added, removes rows the template removed when untouched and `removeDeleted` is set, and never overwrites the tenant's changes (conflicts are reported and skipped). Platform admins."),
    );
    for (name, description) in [
        (
            "templateVersion",
            "The template version this tenant was forked from or last upgraded to (the template: its latest); null before its first fork.",
        ),
        (
            "templateBehind",
            "How many template versions this tenant is behind; null before its first fork.",
        ),
    ] {
        ops.object_fields.push((
            "Tenant",
            Field::new(name, TypeRef::named(TypeRef::INT), move |ctx| {
                FieldFuture::new(async move {
                    let row = ctx.parent_value.try_downcast_ref::<Row>()?;
                    let state = app(&ctx)?;
                    let (mine, latest) = tenant_versions(state, row).await?;
                    Ok(match name {
                        "templateVersion" => mine.map(Value::from),
                        _ => mine.map(|v| Value::from(latest - v)),
                    })
                })
            })
            .description(description),
        ));
    }
}

/// A tenant's template version and the template's latest.
async fn tenant_versions(state: &AppState, tenant: &Row) -> AppResult<(Option<i32>, i32)> {
    let internal = AppError::Internal;
    if tenant.get("kind").as_text() == Some("TEMPLATE") {
        let latest = versions::latest(&state.db, tenant.id())
            .await
            .map_err(internal)?;
        return Ok((Some(latest), latest));
    }
    let mine = versions::of_tenant(&state.db, tenant.id())
        .await
        .map_err(internal)?;
    if mine.is_none() {
        return Ok((None, 0));
    }
    let template = the_template(state).await?;
    let latest = versions::latest(&state.db, template.id)
        .await
        .map_err(AppError::Internal)?;
    Ok((mine, latest))
}
