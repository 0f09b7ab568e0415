//! The hand-written operations of SPEC §3: tenant catalog and lifecycle, members, forks and
//! their progress stream.

use std::sync::Arc;

use async_graphql::{
    Value,
    dynamic::{
        Enum, Field, FieldFuture, FieldValue, InputObject, InputValue, Object, ResolverContext,
        SubscriptionField, SubscriptionFieldFuture, TypeRef,
    },
};
use futures::StreamExt;

use crate::{
    admin,
    error::{AppError, AppResult},
    fork::{hub::ForkEvent, runs},
    graphql::{
        audit,
        classes::{self, ConnectionData, app, request},
        ids,
    },
    rows::Row,
    scope::Role,
};

/// The hand-written part of the schema.
pub struct Operations {
    pub objects: Vec<Object>,
    pub inputs: Vec<InputObject>,
    pub enums: Vec<Enum>,
    pub query_fields: Vec<Field>,
    pub mutation_fields: Vec<Field>,
    pub subscription_fields: Vec<SubscriptionField>,
    /// Fields added to objects of the generic surface, by type name (`Tenant.trialExpired`).
    pub object_fields: Vec<(&'static str, Field)>,
}

fn arg_str<'a>(ctx: &'a ResolverContext<'_>, name: &str) -> AppResult<&'a str> {
    ctx.args
        .get(name)
        .and_then(|v| v.string().ok())
        .ok_or_else(|| AppError::input(name, "is required"))
}

fn tenant_id_arg(ctx: &ResolverContext<'_>, name: &str) -> AppResult<uuid::Uuid> {
    let text = arg_str(ctx, name)?;
    ids::expect(text, "Tenant", name).or_else(|_| {
        uuid::Uuid::parse_str(text).map_err(|_| AppError::input(name, "not a tenant id"))
    })
}

/// The audit view of a person: global id and e-mail.
async fn person(state: &crate::state::AppState, user: Option<uuid::Uuid>) -> serde_json::Value {
    let Some(id) = user else {
        return serde_json::Value::Null;
    };
    use sea_orm::EntityTrait;
    let email = entity::users::Entity::find_by_id(id)
        .one(&state.db)
        .await
        .ok()
        .flatten()
        .and_then(|u| u.email);
    serde_json::json!({ "id": ids::encode("User", id), "email": email })
}

/// Notes a tenant's status change for its audit entry.
fn note_status(ctx: &ResolverContext<'_>, tenant: &entity::tenants::Model, before: Option<String>) {
    audit::note(
        ctx,
        serde_json::json!({
            "targetType": "Tenant",
            "tenant": { "id": ids::encode("Tenant", tenant.id), "slug": tenant.slug },
            "before": { "status": before },
            "after": { "status": tenant.status, "suspensionReason": tenant.suspension_reason },
        }),
    );
}

/// A tenant named by its global id, raw id or slug.
async fn tenant_key_arg(
    state: &crate::state::AppState,
    ctx: &ResolverContext<'_>,
    name: &str,
) -> AppResult<uuid::Uuid> {
    if let Ok(id) = tenant_id_arg(ctx, name) {
        return Ok(id);
    }
    let key = arg_str(ctx, name)?;
    Ok(admin::tenant_by_slug(&state.db, key).await?.id)
}

/// A nullable input field: absent → `None`, `null` → `Some(None)`, text → `Some(Some(text))`.
fn change(
    input: &async_graphql::dynamic::ObjectAccessor<'_>,
    name: &str,
) -> AppResult<Option<Option<String>>> {
    match input.get(name) {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(Some(None)),
        Some(v) => Ok(Some(Some(
            v.string()
                .map_err(|_| AppError::input(name, "expected a string"))?
                .to_string(),
        ))),
    }
}

fn opt_str(
    input: &async_graphql::dynamic::ObjectAccessor<'_>,
    name: &str,
) -> AppResult<Option<String>> {
    match input.get(name) {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(None),
        Some(v) => Ok(Some(
            v.string()
                .map_err(|_| AppError::input(name, "expected a string"))?
                .to_string(),
        )),
    }
}

fn tenant_row(state: &crate::state::AppState, model: &entity::tenants::Model) -> AppResult<Row> {
    let class = state
        .registry
        .by_table("tenants")
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no tenants class")))?;
    admin::model_row(class, model)
}

fn ok_tenant(
    state: &crate::state::AppState,
    model: &entity::tenants::Model,
) -> async_graphql::Result<Option<FieldValue<'static>>> {
    Ok(Some(FieldValue::owned_any(tenant_row(state, model)?)))
}

fn role_arg(ctx: &ResolverContext<'_>, name: &str) -> AppResult<Role> {
    let value = ctx
        .args
        .get(name)
        .ok_or_else(|| AppError::input(name, "is required"))?;
    let text = value
        .enum_name()
        .map_err(|_| AppError::input(name, "expected a Role"))?;
    Role::parse(text).ok_or_else(|| AppError::input(name, "unknown role"))
}

/// Builds the hand-written operations.
pub fn build() -> Operations {
    let mut ops = Operations {
        objects: Vec::new(),
        inputs: Vec::new(),
        enums: super::enums::build(),
        query_fields: Vec::new(),
        mutation_fields: Vec::new(),
        subscription_fields: Vec::new(),
        object_fields: Vec::new(),
    };
    tenants(&mut ops);
    members(&mut ops);
    forks(&mut ops);
    super::tenancy::build(&mut ops);
    super::sheets::build(&mut ops);
    super::users::build(&mut ops);
    super::upgrades::build(&mut ops);
    ops
}

fn tenants(ops: &mut Operations) {
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
                    let mut filter = admin::TenantQuery::default();
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
                    let all = admin::list_tenants(&state.db, &filter, state.clock.now()).await?;
                    let total = all.len() as u64;
                    let (offset, limit) = classes::window(&ctx, total)?;
                    let rows = all
                        .iter()
                        .skip(offset as usize)
                        .take(limit as usize)
                        .map(|m| tenant_row(state, m))
                        .collect::<AppResult<Vec<_>>>()?;
                    Ok(Some(FieldValue::owned_any(ConnectionData::new(
                        rows, offset, total,
                    ))))
                })
            })
            .argument(InputValue::new("filter", TypeRef::named("TenantFilter")))
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
                match admin::tenant(&state.db, id).await? {
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
                let stats = admin::stats(&state.db, days, state.clock.now()).await?;
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
                let create = admin::CreateTenant {
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
                };
                if status.as_deref() == Some("SUSPENDED") {
                    return Err(AppError::input("status", "a new tenant is TRIAL or ACTIVE").into());
                }
                let tenant = admin::create_tenant(state, req, create).await?;
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
            "Deletes a tenant with no members left, and all its rows.",
        ),
    ] {
        ops.mutation_fields.push(
            Field::new(
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
                            admin::delete_tenant(state, req, id).await?;
                            Ok(Some(FieldValue::value(Value::from(ids::encode(
                                "Tenant", id,
                            )))))
                        } else {
                            let before = admin::tenant(&state.db, id).await?.map(|t| t.status);
                            let t = admin::activate(state, req, id).await?;
                            note_status(&ctx, &t, before);
                            ok_tenant(state, &t)
                        }
                    })
                },
            )
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
            .description(doc),
        );
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
                let before = admin::tenant(&state.db, id).await?.map(|t| t.status);
                let t = admin::suspend(state, req, id, reason).await?;
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
                let t = admin::extend_trial(state, req, id, days).await?;
                ok_tenant(state, &t)
            })
        })
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new("days", TypeRef::named_nn(TypeRef::INT)))
        .description("Pushes the trial end by a positive number of days (trial tenants only)."),
    );
}

fn stat(name: &'static str) -> Field {
    Field::new(name, TypeRef::named_nn(TypeRef::INT), move |ctx| {
        FieldFuture::new(async move {
            let stats = ctx.parent_value.try_downcast_ref::<admin::TenantStats>()?;
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

fn members(ops: &mut Operations) {
    ops.objects.push(
        Object::new("Me")
            .description(
                "The caller: who they are and where they belong (what a tenant switcher needs).",
            )
            .field(Field::new(
                "subject",
                TypeRef::named_nn(TypeRef::STRING),
                |ctx| {
                    FieldFuture::new(async move {
                        let me = ctx.parent_value.try_downcast_ref::<admin::Me>()?;
                        Ok(Some(Value::from(me.subject.clone())))
                    })
                },
            ))
            .field(Field::new(
                "isPlatformAdmin",
                TypeRef::named_nn(TypeRef::BOOLEAN),
                |ctx| {
                    FieldFuture::new(async move {
                        let me = ctx.parent_value.try_downcast_ref::<admin::Me>()?;
                        Ok(Some(Value::from(me.is_admin)))
                    })
                },
            ))
            .field(Field::new(
                "grants",
                TypeRef::named_nn_list_nn(TypeRef::STRING),
                |ctx| {
                    FieldFuture::new(async move {
                        let me = ctx.parent_value.try_downcast_ref::<admin::Me>()?;
                        Ok(Some(Value::List(
                            me.grants.iter().cloned().map(Value::from).collect(),
                        )))
                    })
                },
            ))
            .field(Field::new(
                "memberships",
                TypeRef::named_nn_list_nn("MyMembership"),
                |ctx| {
                    FieldFuture::new(async move {
                        let me = ctx.parent_value.try_downcast_ref::<admin::Me>()?;
                        Ok(Some(FieldValue::list(
                            me.memberships
                                .iter()
                                .map(|m| FieldValue::owned_any(m.clone())),
                        )))
                    })
                },
            )),
    );
    let mm = |name: &'static str, ty: TypeRef| {
        Field::new(name, ty, move |ctx| {
            FieldFuture::new(async move {
                let m = ctx.parent_value.try_downcast_ref::<admin::MyMembership>()?;
                Ok(Some(match name {
                    "tenantId" => FieldValue::value(ids::encode("Tenant", m.tenant_id)),
                    "slug" => FieldValue::value(m.slug.clone()),
                    "name" => FieldValue::value(m.name.clone()),
                    "status" => FieldValue::value(Value::Enum(async_graphql::Name::new(&m.status))),
                    _ => FieldValue::value(Value::Enum(async_graphql::Name::new(m.role.as_str()))),
                }))
            })
        })
    };
    ops.objects.push(
        Object::new("MyMembership")
            .field(mm("tenantId", TypeRef::named_nn(TypeRef::ID)))
            .field(mm("slug", TypeRef::named_nn(TypeRef::STRING)))
            .field(mm("name", TypeRef::named_nn(TypeRef::STRING)))
            .field(mm("status", TypeRef::named_nn("TenantStatus")))
            .field(mm("role", TypeRef::named_nn("Role"))),
    );
    ops.query_fields
        .push(Field::new("me", TypeRef::named_nn("Me"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                Ok(Some(FieldValue::owned_any(admin::me(state, req).await?)))
            })
        }));
    ops.mutation_fields.push(
        Field::new("addMember", TypeRef::named_nn("Membership"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                let email = arg_str(&ctx, "email")?.to_string();
                let role = role_arg(&ctx, "role")?;
                let row = admin::add_member(state, req, email, role).await?;
                audit::note(
                    &ctx,
                    serde_json::json!({
                        "targetType": "Membership",
                        "user": person(state, row.get("user_id").as_uuid()).await,
                        "before": null,
                        "after": { "role": role.as_str() },
                    }),
                );
                Ok(Some(FieldValue::owned_any(row)))
            })
        })
        .argument(InputValue::new("email", TypeRef::named_nn(TypeRef::STRING)))
        .argument(InputValue::new("role", TypeRef::named_nn("Role")))
        .description("Adds a user (by e-mail, created when needed) to the caller's tenant. Nobody assigns a role at or above their own, except platform admins."),
    );
    ops.mutation_fields.push(
        Field::new("changeMemberRole", TypeRef::named_nn("Membership"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                let id = ids::expect(arg_str(&ctx, "id")?, "Membership", "id")?;
                let role = role_arg(&ctx, "role")?;
                let (before, row) = admin::change_role(state, req, id, role).await?;
                let user = row.get("user_id").as_uuid();
                audit::note(
                    &ctx,
                    serde_json::json!({
                        "targetType": "Membership",
                        "user": person(state, user).await,
                        "before": { "role": before.as_str() },
                        "after": { "role": role.as_str() },
                    }),
                );
                Ok(Some(FieldValue::owned_any(row)))
            })
        })
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new("role", TypeRef::named_nn("Role"))),
    );
    ops.mutation_fields.push(
        Field::new("removeMember", TypeRef::named_nn(TypeRef::ID), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                let global = arg_str(&ctx, "id")?.to_string();
                let id = ids::expect(&global, "Membership", "id")?;
                let removed = admin::remove_member(state, req, id).await?;
                audit::note(
                    &ctx,
                    serde_json::json!({
                        "targetType": "Membership",
                        "user": person(state, Some(removed.user_id)).await,
                        "before": { "role": removed.role },
                        "after": null,
                    }),
                );
                Ok(Some(FieldValue::value(global)))
            })
        })
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID))),
    );
    ops.mutation_fields.push(
        Field::new("seedStaffAdmin", TypeRef::named_nn("Membership"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                let tenant = tenant_id_arg(&ctx, "tenantId")?;
                let email = arg_str(&ctx, "email")?.to_string();
                let row = admin::seed_staff_admin(state, req, tenant, email).await?;
                Ok(Some(FieldValue::owned_any(row)))
            })
        })
        .argument(InputValue::new("tenantId", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new("email", TypeRef::named_nn(TypeRef::STRING)))
        .description("Gives a tenant its first staff administrator (an Owner): the explicit, audited step a fork never takes."),
    );
}

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

fn forks(ops: &mut Operations) {
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
                let tenant = admin::tenant(&state.db, id)
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
                    let row = admin::planned_run_row(class, &checked, &outcome, &req.principal.subject)?;
                    return Ok(Some(FieldValue::owned_any(row)));
                }
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
                Ok(Some(FieldValue::owned_any(admin::model_row(class, &run)?)))
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
                req.require_admin()?;
                let run_id = ids::expect(arg_str(&ctx, "runId")?, "ForkRun", "runId")?;
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
        .description("The events of a fork run: those so far (after `after`), then live ones, in order; completes when the run ends. Platform admins."),
    );
}
