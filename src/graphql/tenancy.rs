//! GraphQL for tenant administration beyond lifecycle and members: `branding`,
//! `updateBranding`, `uploadLogo`, domains, the feature catalog, `checkAccess`, and the
//! `trialExpired` and `database` fields of `Tenant` (its `onboarding` is in [`super::onboarding`]). The rules
//! live in [`crate::tenancy`].

use async_graphql::{
    Value,
    dynamic::{
        Field, FieldFuture, FieldValue, InputObject, InputValue, Object, ResolverContext, TypeRef,
    },
};
use chrono::{DateTime, Utc};

use crate::{
    branding,
    error::{AppError, AppResult},
    graphql::{
        audit::{self, changes},
        classes::{app, request},
        ids,
        parts::Operations,
    },
    rows::Row,
    tenants::{
        self,
        features::{FeatureChange, FeatureInput},
    },
};

fn arg_str<'a>(ctx: &'a ResolverContext<'_>, name: &str) -> AppResult<&'a str> {
    ctx.args
        .get(name)
        .and_then(|v| v.string().ok())
        .ok_or_else(|| AppError::input(name, "is required"))
}

fn row_of(
    state: &crate::state::AppState,
    table: &str,
    model: &impl serde::Serialize,
) -> AppResult<Row> {
    let class = state
        .registry
        .by_table(table)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no {table} class")))?;
    Row::from_model(class, model)
}

fn opt_string(
    obj: &async_graphql::dynamic::ObjectAccessor<'_>,
    name: &str,
) -> AppResult<Option<String>> {
    match obj.get(name) {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(Some(String::new())),
        Some(v) => Ok(Some(
            v.string()
                .map_err(|_| AppError::input(name, "expected a string"))?
                .to_string(),
        )),
    }
}

fn opt_time(
    obj: &async_graphql::dynamic::ObjectAccessor<'_>,
    name: &str,
) -> AppResult<Option<DateTime<Utc>>> {
    match obj.get(name) {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(None),
        Some(v) => {
            let text = v
                .string()
                .map_err(|_| AppError::input(name, "expected an RFC 3339 date-time"))?;
            DateTime::parse_from_rfc3339(text)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|_| AppError::input(name, "expected an RFC 3339 date-time"))
        }
    }
}

fn opt_json(
    obj: &async_graphql::dynamic::ObjectAccessor<'_>,
    name: &str,
) -> AppResult<Option<serde_json::Value>> {
    match obj.get(name) {
        None => Ok(None),
        Some(v) => Ok(Some(
            v.deserialize::<serde_json::Value>()
                .map_err(|_| AppError::input(name, "expected JSON"))?,
        )),
    }
}

/// The `Branding` object: colours, CSS and where the logo is served.
fn branding_object() -> Object {
    // The description is part of `schema.graphql` (kept as published); the rules are in
    // `docs/tenancy.md`, "Branding".
    let mut object =
        Object::new("Branding").description("A tenant's branding: colours, logo and custom CSS.");
    let text = |name: &'static str, pick: fn(&entity::brandings::Model) -> Option<String>| {
        Field::new(name, TypeRef::named(TypeRef::STRING), move |ctx| {
            FieldFuture::new(async move {
                let b = ctx
                    .parent_value
                    .try_downcast_ref::<entity::brandings::Model>()?;
                Ok(pick(b).map(Value::from))
            })
        })
    };
    object = object
        .field(text("primaryColor", |b| b.primary_color.clone()))
        .field(text("secondaryColor", |b| b.secondary_color.clone()))
        .field(text("headerBackgroundColor", |b| {
            b.header_background_color.clone()
        }))
        .field(text("headerTextColor", |b| b.header_text_color.clone()))
        .field(text("linkColor", |b| b.link_color.clone()))
        .field(text("buttonColor", |b| b.button_color.clone()))
        .field(text("customCss", |b| b.custom_css.clone()))
        .field(text("logoContentType", |b| b.logo_content_type.clone()))
        .field(
            Field::new("logoUrl", TypeRef::named(TypeRef::STRING), |ctx| {
                FieldFuture::new(async move {
                    let b = ctx
                        .parent_value
                        .try_downcast_ref::<entity::brandings::Model>()?;
                    let state = app(&ctx)?;
                    if b.logo.is_none() {
                        return Ok(None);
                    }
                    let tenant = tenants::catalog::tenant(&state.db, b.tenant_id).await?;
                    Ok(tenant.map(|t| {
                        Value::from(format!(
                            "/tenants/{}/logo?v={}",
                            t.slug,
                            b.updated_at.timestamp()
                        ))
                    }))
                })
            })
            .description("Where the logo is served (relative to this server), when there is one."),
        );
    object
}

fn branding_input() -> InputObject {
    let mut input = InputObject::new("BrandingInput")
        .description("Fields to change; omitted fields are kept, null or \"\" clears one.");
    for (field, _) in branding::COLOR_FIELDS {
        input = input.field(
            InputValue::new(field, TypeRef::named(TypeRef::STRING))
                .description("A hex colour: #rgb or #rrggbb."),
        );
    }
    input.field(
        InputValue::new("customCss", TypeRef::named(TypeRef::STRING))
            .description("At most 10,000 characters; checked against an allow-list."),
    )
}

fn access_decision_object() -> Object {
    let f = |name: &'static str,
             ty: TypeRef,
             pick: fn(&tenants::access_checks::AccessDecision) -> Value| {
        Field::new(name, ty, move |ctx| {
            FieldFuture::new(async move {
                let d = ctx
                    .parent_value
                    .try_downcast_ref::<tenants::access_checks::AccessDecision>()?;
                let v = pick(d);
                Ok(if v == Value::Null { None } else { Some(v) })
            })
        })
    };
    Object::new("AccessDecision")
        .description("Whether the caller may use a service through a team, and why not.")
        .field(f("allowed", TypeRef::named_nn(TypeRef::BOOLEAN), |d| {
            Value::from(d.allowed)
        }))
        .field(
            f("reason", TypeRef::named(TypeRef::STRING), |d| {
                d.reason.map_or(Value::Null, Value::from)
            })
            .description("NOT_A_MEMBER or SERVICE_NOT_ALLOWED when refused (another tenant's team is NOT_FOUND)."),
        )
        .field(f("message", TypeRef::named_nn(TypeRef::STRING), |d| {
            Value::from(d.message.clone())
        }))
}

/// Fields added to the generic `Tenant` object.
fn tenant_fields(ops: &mut Operations) {
    ops.object_fields.push((
        "Tenant",
        Field::new("trialExpired", TypeRef::named_nn(TypeRef::BOOLEAN), |ctx| {
            FieldFuture::new(async move {
                let row = ctx.parent_value.try_downcast_ref::<Row>()?;
                let now = app(&ctx)?.clock.now();
                let expired = row.get("status").as_text() == Some("TRIAL")
                    && matches!(row.get("trial_ends_at"), crate::rows::Cell::Timestamp(t) if *t < now);
                Ok(Some(Value::from(expired)))
            })
        })
        .description("True for a trial past its end: still usable, flagged until activated or suspended."),
    ));
    ops.object_fields.push((
        "Tenant",
        Field::new("database", TypeRef::named(TypeRef::STRING), |ctx| {
            FieldFuture::new(async move {
                request(&ctx)?.require_admin()?;
                let row = ctx.parent_value.try_downcast_ref::<Row>()?;
                let name = row
                    .get("database")
                    .as_text()
                    .unwrap_or(crate::databases::MAIN)
                    .to_string();
                Ok(Some(Value::from(name)))
            })
        })
        .description(
            "Where the tenant's configuration and derived rows live: a named tenant database, or \
             `main` (platform admins only; others get FORBIDDEN).",
        ),
    ));
}

fn branding_ops(ops: &mut Operations) {
    ops.query_fields.push(
        Field::new("branding", TypeRef::named_nn("Branding"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                Ok(Some(FieldValue::owned_any(
                    tenants::branding::branding(state, req).await?,
                )))
            })
        })
        .description("The branding of the caller's tenant."),
    );
    ops.mutation_fields.push(
        Field::new("updateBranding", TypeRef::named_nn("Branding"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                let input = ctx
                    .args
                    .get("input")
                    .ok_or_else(|| AppError::input("input", "is required"))?
                    .object()?;
                let mut colors = Vec::new();
                for (field, column) in branding::COLOR_FIELDS {
                    colors.push((field, column, opt_string(&input, field)?));
                }
                let change = tenants::branding::validate_branding(
                    &colors,
                    opt_string(&input, "customCss")?,
                )?;
                let (before, after) =
                    tenants::branding::update_branding(state, req, change).await?;
                audit::note(&ctx, changes::branding_change(&before, &after));
                Ok(Some(FieldValue::owned_any(after)))
            })
        })
        .argument(InputValue::new("input", TypeRef::named_nn("BrandingInput")))
        .description("Changes colours and custom CSS (Super Users and above)."),
    );
    ops.mutation_fields.push(
        Field::new("uploadLogo", TypeRef::named_nn("Branding"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                let upload = ctx.args.try_get("file")?.upload()?;
                let value = upload
                    .value(ctx.ctx)
                    .map_err(|_| AppError::input("file", "the upload could not be read"))?;
                let mut bytes = Vec::new();
                // Read at most one byte past the limit: a larger file is refused, not buffered.
                std::io::Read::read_to_end(
                    &mut std::io::Read::take(value.into_read(), branding::MAX_LOGO_BYTES as u64 + 1),
                    &mut bytes,
                )
                .map_err(|_| AppError::input("file", "the upload could not be read"))?;
                let (before, after) = tenants::branding::set_logo(state, req, Some(bytes)).await?;
                audit::note(&ctx, changes::branding_change(&before, &after));
                Ok(Some(FieldValue::owned_any(after)))
            })
        })
        .argument(InputValue::new("file", TypeRef::named_nn(TypeRef::UPLOAD)))
        .description(
            "Sets the logo from a GraphQL multipart upload: PNG, JPEG, GIF, SVG (no scripts) or WebP, \
             at most 2 MB, typed by its content (Super Users and above).",
        ),
    );
    ops.mutation_fields.push(
        Field::new("removeLogo", TypeRef::named_nn("Branding"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                let (before, after) = tenants::branding::set_logo(state, req, None).await?;
                audit::note(&ctx, changes::branding_change(&before, &after));
                Ok(Some(FieldValue::owned_any(after)))
            })
        })
        .description("Removes the logo (Super Users and above)."),
    );
}

fn domain_ops(ops: &mut Operations) {
    ops.mutation_fields.push(
        Field::new("addDomain", TypeRef::named_nn("Domain"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                let domain = tenants::domains::add_domain(state, req, arg_str(&ctx, "host")?).await?;
                audit::note(&ctx, serde_json::json!({
                    "targetType": "Domain",
                    "before": null,
                    "after": changes::domain(&domain),
                }));
                Ok(Some(FieldValue::owned_any(row_of(state, "domains", &domain)?)))
            })
        })
        .argument(InputValue::new("host", TypeRef::named_nn(TypeRef::STRING)))
        .description(
            "Adds a custom domain, unverified (Owners and above). Publish a TXT record \
             `forklift-verification=<verificationToken>` at `_forklift-challenge.<host>`, then call \
             verifyDomain; only verified domains route requests. Any number of tenants may \
             claim a host unverified (none learns of the others); the first to verify it holds it. \
             Loopback names and IP addresses are not custom domains.",
        ),
    );
    ops.mutation_fields.push(
        Field::new("verifyDomain", TypeRef::named_nn("Domain"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                let id = ids::expect(arg_str(&ctx, "id")?, "Domain", "id")?;
                let (before, domain) = tenants::domains::verify_domain(state, req, id).await?;
                audit::note(&ctx, serde_json::json!({
                    "targetType": "Domain",
                    "before": changes::domain(&before),
                    "after": changes::domain(&domain),
                }));
                Ok(Some(FieldValue::owned_any(row_of(
                    state, "domains", &domain,
                )?)))
            })
        })
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .description("Checks the domain's TXT record; PRECONDITION_FAILED while it is missing, CONFLICT when another tenant has verified the host first."),
    );
    ops.mutation_fields.push(
        Field::new("removeDomain", TypeRef::named_nn(TypeRef::ID), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                let global = arg_str(&ctx, "id")?.to_string();
                let removed = tenants::domains::remove_domain(
                    state,
                    req,
                    ids::expect(&global, "Domain", "id")?,
                )
                .await?;
                audit::note(
                    &ctx,
                    serde_json::json!({
                        "targetType": "Domain",
                        "before": changes::domain(&removed),
                        "after": null,
                    }),
                );
                Ok(Some(FieldValue::value(global)))
            })
        })
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .description("Removes a custom domain (Owners and above)."),
    );
}

fn feature_ops(ops: &mut Operations) {
    ops.inputs.push(
        InputObject::new("FeatureInput")
            .field(InputValue::new("key", TypeRef::named_nn(TypeRef::STRING)))
            .field(InputValue::new(
                "version",
                TypeRef::named_nn(TypeRef::STRING),
            ))
            .field(InputValue::new(
                "provider",
                TypeRef::named_nn(TypeRef::STRING),
            ))
            .field(InputValue::new("customization", TypeRef::named("JSON")))
            .field(InputValue::new(
                "lastMigratedAt",
                TypeRef::named("DateTime"),
            )),
    );
    ops.inputs.push(
        InputObject::new("UpdateFeatureInput")
            .description("Fields to change; at least one.")
            .field(InputValue::new("version", TypeRef::named(TypeRef::STRING)))
            .field(InputValue::new("provider", TypeRef::named(TypeRef::STRING)))
            .field(InputValue::new("customization", TypeRef::named("JSON")))
            .field(InputValue::new(
                "lastMigratedAt",
                TypeRef::named("DateTime"),
            )),
    );
    ops.mutation_fields.push(
        Field::new(
            "registerFeatures",
            TypeRef::named_nn_list_nn("TenantFeature"),
            |ctx| {
                FieldFuture::new(async move {
                    let state = app(&ctx)?;
                    let req = request(&ctx)?;
                    let tenant_text = arg_str(&ctx, "tenantId")?;
                    let tenant = ids::expect(tenant_text, "Tenant", "tenantId")?;
                    let mut features = Vec::new();
                    for item in ctx.args.try_get("features")?.list()?.iter() {
                        let obj = item.object()?;
                        let text = |name: &str| -> AppResult<String> {
                            obj.get(name)
                                .and_then(|v| v.string().ok().map(str::to_string))
                                .ok_or_else(|| AppError::input(name, "is required"))
                        };
                        features.push(FeatureInput {
                            key: text("key")?,
                            version: text("version")?,
                            provider: text("provider")?,
                            customization: opt_json(&obj, "customization")?
                                .unwrap_or_else(|| serde_json::json!({})),
                            last_migrated_at: opt_time(&obj, "lastMigratedAt")?,
                        });
                    }
                    let saved = tenants::features::register_features(state, req, tenant, features).await?;
                    let changed: Vec<serde_json::Value> = saved
                        .before
                        .iter()
                        .map(|(key, before)| {
                            let after = saved.catalog.iter().find(|m| &m.feature_key == key);
                            serde_json::json!({
                                "key": key,
                                "before": before.as_ref().map(changes::feature),
                                "after": after.map(changes::feature),
                            })
                        })
                        .collect();
                    audit::note(&ctx, serde_json::json!({
                        "targetType": "TenantFeature",
                        "tenant": changes::tenant_ref(tenant),
                        "features": changed,
                    }));
                    let rows = saved
                        .catalog
                        .iter()
                        .map(|m| row_of(state, "tenant_features", m).map(FieldValue::owned_any))
                        .collect::<AppResult<Vec<_>>>()?;
                    Ok(Some(FieldValue::list(rows)))
                })
            },
        )
        .argument(InputValue::new("tenantId", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new(
            "features",
            TypeRef::named_nn_list_nn("FeatureInput"),
        ))
        .description("Upserts feature records of a tenant by feature key (platform admins); answers the tenant's whole catalog after the upsert."),
    );
    ops.mutation_fields.push(
        Field::new("updateFeature", TypeRef::named_nn("TenantFeature"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                let id = ids::expect(arg_str(&ctx, "id")?, "TenantFeature", "id")?;
                let input = ctx.args.try_get("input")?.object()?;
                let text = |name: &str| -> AppResult<Option<String>> {
                    match input.get(name) {
                        None => Ok(None),
                        Some(v) => v
                            .string()
                            .map(|s| Some(s.to_string()))
                            .map_err(|_| AppError::input(name, "expected a string")),
                    }
                };
                let change = FeatureChange {
                    version: text("version")?,
                    provider: text("provider")?,
                    customization: opt_json(&input, "customization")?,
                    last_migrated_at: opt_time(&input, "lastMigratedAt")?,
                };
                let (before, saved) =
                    tenants::features::update_feature(state, req, id, change).await?;
                let (old, new) =
                    changes::difference(&changes::feature(&before), &changes::feature(&saved));
                audit::note(
                    &ctx,
                    serde_json::json!({
                        "targetType": "TenantFeature",
                        "tenant": changes::tenant_ref(saved.tenant_id),
                        "key": saved.feature_key,
                        "before": old,
                        "after": new,
                    }),
                );
                Ok(Some(FieldValue::owned_any(row_of(
                    state,
                    "tenant_features",
                    &saved,
                )?)))
            })
        })
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new(
            "input",
            TypeRef::named_nn("UpdateFeatureInput"),
        ))
        .description("Changes only the given fields of a feature record (platform admins)."),
    );
}

fn access_ops(ops: &mut Operations) {
    ops.query_fields.push(
        Field::new("checkAccess", TypeRef::named_nn("AccessDecision"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                let team = ids::expect(arg_str(&ctx, "teamId")?, "Team", "teamId")?;
                let service = arg_str(&ctx, "service")?;
                Ok(Some(FieldValue::owned_any(
                    tenants::access_checks::check_access(state, req, team, service).await?,
                )))
            })
        })
        .argument(InputValue::new("teamId", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new(
            "service",
            TypeRef::named_nn(TypeRef::STRING),
        ))
        .description("Explains whether the caller may use a service through a team."),
    );
}

/// Adds the tenancy operations to `ops`.
pub fn build(ops: &mut Operations) {
    ops.objects.push(branding_object());
    ops.objects.push(access_decision_object());
    ops.inputs.push(branding_input());
    tenant_fields(ops);
    branding_ops(ops);
    domain_ops(ops);
    feature_ops(ops);
    access_ops(ops);
}
