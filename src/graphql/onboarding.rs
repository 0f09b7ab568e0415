//! GraphQL for the onboarding checklist (seed 001): `Tenant.onboarding` (platform admins, through
//! the catalog), `onboarding` (the caller's tenant, any member), and `completeOnboardingStep` /
//! `reopenOnboardingStep` (Super Users and above). The rules live in
//! [`crate::tenants::onboarding`].

use async_graphql::{
    Name, Value,
    dynamic::{Enum, Field, FieldFuture, FieldValue, InputValue, Object, TypeRef},
};

use crate::{
    error::AppError,
    graphql::{
        audit,
        classes::{app, request},
        parts::Operations,
    },
    rows::Row,
    tenants::onboarding::{self, Onboarding, Step},
};

fn enum_value(name: &str) -> Value {
    Value::Enum(Name::new(name))
}

fn step_object() -> Object {
    let f = |name: &'static str, ty: TypeRef, pick: fn(&Step) -> Value| {
        Field::new(name, ty, move |ctx| {
            FieldFuture::new(async move {
                let step = ctx.parent_value.try_downcast_ref::<Step>()?;
                let v = pick(step);
                Ok(if v == Value::Null { None } else { Some(v) })
            })
        })
    };
    Object::new("OnboardingStep")
        .description("One step of a tenant's onboarding checklist, as the template declares it.")
        .field(f("key", TypeRef::named_nn(TypeRef::STRING), |s| {
            Value::from(s.key.clone())
        }))
        .field(f("title", TypeRef::named_nn(TypeRef::STRING), |s| {
            Value::from(s.title.clone())
        }))
        .field(f("hint", TypeRef::named(TypeRef::STRING), |s| {
            s.hint.clone().map_or(Value::Null, Value::from)
        }))
        .field(f("order", TypeRef::named_nn(TypeRef::INT), |s| {
            Value::from(s.order)
        }))
        .field(
            f("kind", TypeRef::named_nn("OnboardingStepKind"), |s| {
                enum_value(s.kind.as_str())
            })
            .description("AUTOMATIC steps complete themselves; MANUAL ones are marked by a Super User."),
        )
        .field(
            f("check", TypeRef::named(TypeRef::STRING), |s| {
                s.check.map_or(Value::Null, |c| Value::from(c.as_str()))
            })
            .description("What the server checks for an AUTOMATIC step: forked, staff_admin_seeded, domain_verified or branding_set."),
        )
        .field(f("done", TypeRef::named_nn(TypeRef::BOOLEAN), |s| {
            Value::from(s.done)
        }))
        .field(
            f("doneAt", TypeRef::named("DateTime"), |s| {
                s.done_at.map_or(Value::Null, |t| Value::from(t.to_rfc3339()))
            })
            .description("When a MANUAL step was marked done."),
        )
        .field(
            f("doneBy", TypeRef::named(TypeRef::STRING), |s| {
                s.done_by.clone().map_or(Value::Null, Value::from)
            })
            .description("Who marked a MANUAL step done (the token's subject)."),
        )
}

fn onboarding_object() -> Object {
    Object::new("TenantOnboarding")
        .description("The onboarding checklist of a tenant: its steps, where it stands, and how far along it is.")
        .field(Field::new(
            "steps",
            TypeRef::named_nn_list_nn("OnboardingStep"),
            |ctx| {
                FieldFuture::new(async move {
                    let o = ctx.parent_value.try_downcast_ref::<Onboarding>()?;
                    Ok(Some(FieldValue::list(
                        o.steps.iter().cloned().map(FieldValue::owned_any),
                    )))
                })
            },
        ).description("In the template's order."))
        .field(Field::new(
            "state",
            TypeRef::named_nn("OnboardingState"),
            |ctx| {
                FieldFuture::new(async move {
                    let o = ctx.parent_value.try_downcast_ref::<Onboarding>()?;
                    Ok(Some(FieldValue::value(enum_value(o.state.as_str()))))
                })
            },
        ))
        .field(Field::new(
            "percentage",
            TypeRef::named_nn(TypeRef::INT),
            |ctx| {
                FieldFuture::new(async move {
                    let o = ctx.parent_value.try_downcast_ref::<Onboarding>()?;
                    Ok(Some(FieldValue::value(o.percentage)))
                })
            },
        ).description("Steps done as a whole percentage (0–100), rounded down: 100 only when COMPLETE."))
}

/// The audit picture of a step.
fn audited(step: &Step) -> serde_json::Value {
    serde_json::json!({
        "key": step.key,
        "done": step.done,
        "doneAt": step.done_at.map(|t| t.to_rfc3339()),
        "doneBy": step.done_by,
    })
}

fn set_step_field(name: &'static str, done: bool, description: &'static str) -> Field {
    Field::new(name, TypeRef::named_nn("TenantOnboarding"), move |ctx| {
        FieldFuture::new(async move {
            let state = app(&ctx)?;
            let req = request(&ctx)?;
            let key = ctx
                .args
                .get("key")
                .and_then(|v| v.string().ok())
                .ok_or_else(|| AppError::input("key", "is required"))?
                .to_string();
            let change = onboarding::set_step(state, req, &key, done).await?;
            audit::note(
                &ctx,
                serde_json::json!({
                    "targetType": "OnboardingStep",
                    "target": key,
                    "before": audited(&change.before),
                    "after": audited(&change.after),
                }),
            );
            Ok(Some(FieldValue::owned_any(change.onboarding)))
        })
    })
    .argument(InputValue::new("key", TypeRef::named_nn(TypeRef::STRING)))
    .description(description)
}

/// Adds the onboarding types, `Tenant.onboarding`, the `onboarding` query and the step
/// mutations to `ops`.
pub fn build(ops: &mut Operations) {
    ops.objects.push(step_object());
    ops.objects.push(onboarding_object());
    ops.enums.push(
        Enum::new("OnboardingStepKind")
            .description("Who completes an onboarding step.")
            .item("MANUAL")
            .item("AUTOMATIC"),
    );
    ops.enums.push(
        Enum::new("OnboardingState")
            .description("Where a tenant is in its onboarding checklist.")
            .item("NOT_STARTED")
            .item("IN_PROGRESS")
            .item("COMPLETE"),
    );
    ops.object_fields.push((
        "Tenant",
        Field::new("onboarding", TypeRef::named_nn("TenantOnboarding"), |ctx| {
            FieldFuture::new(async move {
                let row = ctx.parent_value.try_downcast_ref::<Row>()?;
                let state = app(&ctx)?;
                let checklist = onboarding::onboarding(state, row.id()).await?;
                Ok(Some(FieldValue::owned_any(checklist)))
            })
        })
        .description("The tenant's onboarding checklist."),
    ));
    ops.query_fields.push(
        Field::new("onboarding", TypeRef::named_nn("TenantOnboarding"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                Ok(Some(FieldValue::owned_any(
                    onboarding::own_onboarding(state, req).await?,
                )))
            })
        })
        .description("The onboarding checklist of the caller's tenant (every member reads it)."),
    );
    ops.mutation_fields.push(set_step_field(
        "completeOnboardingStep",
        true,
        "Marks a MANUAL onboarding step of the caller's tenant done (Super Users and above). An \
         unknown key, or an AUTOMATIC step (the server checks those), is BAD_USER_INPUT; marking \
         a done step again changes nothing.",
    ));
    ops.mutation_fields.push(set_step_field(
        "reopenOnboardingStep",
        false,
        "Marks a MANUAL onboarding step of the caller's tenant not done again (Super Users and \
         above); the same refusals as completeOnboardingStep.",
    ));
}
