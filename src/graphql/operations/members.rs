//! Members: `me`, `addMember`, `changeMemberRole`, `removeMember`, `seedStaffAdmin`.

use super::*;

pub(super) fn build(ops: &mut Operations) {
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
                        let me = ctx
                            .parent_value
                            .try_downcast_ref::<tenants::members::Me>()?;
                        Ok(Some(Value::from(me.subject.clone())))
                    })
                },
            ))
            .field(Field::new(
                "isPlatformAdmin",
                TypeRef::named_nn(TypeRef::BOOLEAN),
                |ctx| {
                    FieldFuture::new(async move {
                        let me = ctx
                            .parent_value
                            .try_downcast_ref::<tenants::members::Me>()?;
                        Ok(Some(Value::from(me.is_admin)))
                    })
                },
            ))
            .field(Field::new(
                "grants",
                TypeRef::named_nn_list_nn(TypeRef::STRING),
                |ctx| {
                    FieldFuture::new(async move {
                        let me = ctx
                            .parent_value
                            .try_downcast_ref::<tenants::members::Me>()?;
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
                        let me = ctx
                            .parent_value
                            .try_downcast_ref::<tenants::members::Me>()?;
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
                let m = ctx
                    .parent_value
                    .try_downcast_ref::<tenants::members::MyMembership>()?;
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
                Ok(Some(FieldValue::owned_any(
                    tenants::members::me(state, req).await?,
                )))
            })
        }));
    ops.mutation_fields.push(
        Field::new("addMember", TypeRef::named_nn("Membership"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                let email = arg_str(&ctx, "email")?.to_string();
                let role = role_arg(&ctx, "role")?;
                let row = tenants::members::add_member(state, req, email, role).await?;
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
                let req = &*membership_context(state, req, id).await?;
                let (before, row) = tenants::members::change_role(state, req, id, role).await?;
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
        .argument(InputValue::new("role", TypeRef::named_nn("Role")))
        .description("Changes a member's role. The membership's id is enough: without a tenant in the request, the guard runs for the membership's own tenant."),
    );
    ops.mutation_fields.push(
        Field::new("removeMember", TypeRef::named_nn(TypeRef::ID), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                let global = arg_str(&ctx, "id")?.to_string();
                let id = ids::expect(&global, "Membership", "id")?;
                let req = &*membership_context(state, req, id).await?;
                let removed = tenants::members::remove_member(state, req, id).await?;
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
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .description("Removes a member; returns the membership's id. The id is enough: without a tenant in the request, the guard runs for the membership's own tenant."),
    );
    ops.mutation_fields.push(
        Field::new("seedStaffAdmin", TypeRef::named_nn("Membership"), |ctx| {
            FieldFuture::new(async move {
                let state = app(&ctx)?;
                let req = request(&ctx)?;
                let tenant = tenant_id_arg(&ctx, "tenantId")?;
                let email = arg_str(&ctx, "email")?.to_string();
                let row = tenants::members::seed_staff_admin(state, req, tenant, email).await?;
                Ok(Some(FieldValue::owned_any(row)))
            })
        })
        .argument(InputValue::new("tenantId", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new("email", TypeRef::named_nn(TypeRef::STRING)))
        .description("Gives a tenant its first staff administrator (an Owner): the explicit, audited step a fork never takes."),
    );
}

/// The context a membership mutation acts in: the request's when it names a tenant; otherwise
/// the guard's answer for the membership's own tenant (`scope::narrow_to`), and `NOT_FOUND`
/// alike for an id that does not exist and one in a tenant the caller may not enter.
async fn membership_context<'r>(
    state: &crate::state::AppState,
    req: &'r crate::scope::RequestContext,
    id: uuid::Uuid,
) -> AppResult<std::borrow::Cow<'r, crate::scope::RequestContext>> {
    use sea_orm::EntityTrait;
    if req.scope().is_ok() {
        return Ok(std::borrow::Cow::Borrowed(req));
    }
    let not_found = || AppError::NotFound("Membership".into());
    let membership = entity::memberships::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or_else(not_found)?;
    let narrowed = crate::scope::narrow_to(state, req, membership.tenant_id, not_found()).await?;
    Ok(std::borrow::Cow::Owned(narrowed))
}
