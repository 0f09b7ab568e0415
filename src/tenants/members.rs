//! Members and roles: who the caller is (`me`), adding, re-roling and removing members under the
//! last-owner rule, and the staff administrator a platform admin seeds (see `docs/tenancy.md`).

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter,
};
use uuid::Uuid;

use super::{lifecycle::tenant_or_404, names::is_email};
use crate::{
    error::{AppError, AppResult},
    rows::Row,
    scope::{RequestContext, Role},
    state::AppState,
};

/// Finds or creates the user whose subject is `email`.
pub async fn user_for_email(
    db: &impl sea_orm::ConnectionTrait,
    email: &str,
) -> AppResult<entity::users::Model> {
    use entity::users;
    let email = email.trim().to_lowercase();
    if !is_email(&email) {
        return Err(AppError::input("email", "not an e-mail address"));
    }
    if let Some(user) = users::Entity::find()
        .filter(users::Column::Subject.eq(email.as_str()))
        .one(db)
        .await?
    {
        return Ok(user);
    }
    let now = Utc::now();
    Ok(users::ActiveModel {
        id: Set(Uuid::now_v7()),
        subject: Set(email.clone()),
        email: Set(Some(email)),
        display_name: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        last_seen_at: Set(None),
    }
    .insert(db)
    .await?)
}

/// One of the caller's memberships.
#[derive(Clone, Debug)]
pub struct MyMembership {
    pub tenant_id: Uuid,
    pub slug: String,
    pub name: String,
    pub status: String,
    pub role: Role,
}

/// The caller.
#[derive(Clone, Debug)]
pub struct Me {
    pub subject: String,
    pub is_admin: bool,
    pub grants: Vec<String>,
    pub memberships: Vec<MyMembership>,
}

/// `me`.
pub async fn me(state: &AppState, req: &RequestContext) -> AppResult<Me> {
    use entity::{memberships, tenants};
    let mut out = Vec::new();
    if let Some(user) = req.principal.user_id {
        let rows = memberships::Entity::find()
            .filter(memberships::Column::UserId.eq(user))
            .all(&state.db)
            .await?;
        let tenants_by_id: std::collections::HashMap<Uuid, tenants::Model> =
            tenants::Entity::find()
                .filter(tenants::Column::Id.is_in(rows.iter().map(|m| m.tenant_id)))
                .all(&state.db)
                .await?
                .into_iter()
                .map(|t| (t.id, t))
                .collect();
        for m in rows {
            if let Some(t) = tenants_by_id.get(&m.tenant_id).cloned() {
                out.push(MyMembership {
                    tenant_id: t.id,
                    slug: t.slug,
                    name: t.name,
                    status: t.status,
                    role: m.role,
                });
            }
        }
    }
    out.sort_by(|a, b| a.slug.cmp(&b.slug));
    Ok(Me {
        subject: req.principal.subject.clone(),
        is_admin: req.principal.is_admin,
        grants: req.principal.grants.clone(),
        memberships: out,
    })
}

fn membership_row(state: &AppState, m: &entity::memberships::Model) -> AppResult<Row> {
    let class = state
        .registry
        .by_table("memberships")
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no memberships class")))?;
    Row::from_model(class, m)
}

/// Refuses assigning `role` unless the caller outranks it (platform admins may assign any).
fn may_assign(req: &RequestContext, role: Role) -> AppResult<()> {
    if req.principal.is_admin {
        return Ok(());
    }
    let own = req.effective_role().unwrap_or(Role::Viewer);
    if own < Role::SuperUser {
        return Err(AppError::forbidden(
            "managing members needs the SUPER_USER role or higher",
        ));
    }
    if role >= own {
        return Err(AppError::forbidden(format!(
            "a {} cannot assign the {} role",
            own.as_str(),
            role.as_str()
        )));
    }
    Ok(())
}

async fn owners(db: &impl ConnectionTrait, tenant: Uuid) -> AppResult<u64> {
    use entity::memberships;
    Ok(memberships::Entity::find()
        .filter(memberships::Column::TenantId.eq(tenant))
        .filter(memberships::Column::Role.eq(Role::Owner))
        .count(db)
        .await?)
}

async fn members(db: &impl ConnectionTrait, tenant: Uuid) -> AppResult<u64> {
    use entity::memberships;
    Ok(memberships::Entity::find()
        .filter(memberships::Column::TenantId.eq(tenant))
        .count(db)
        .await?)
}

async fn membership_in(
    db: &impl ConnectionTrait,
    tenant: Uuid,
    id: Uuid,
) -> AppResult<entity::memberships::Model> {
    use entity::memberships;
    memberships::Entity::find_by_id(id)
        .filter(memberships::Column::TenantId.eq(tenant))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("Membership".into()))
}

/// `addMember`, in the request's tenant transaction.
pub async fn add_member(
    state: &AppState,
    req: &RequestContext,
    email: String,
    role: Role,
) -> AppResult<Row> {
    use entity::memberships;
    let placed = req.tenant()?;
    let tenant = placed.id;
    may_assign(req, role)?;
    let tx = state.tenant_tx(tenant).await?;
    let user = user_for_email(&tx, &email).await?;
    if memberships::Entity::find()
        .filter(memberships::Column::TenantId.eq(tenant))
        .filter(memberships::Column::UserId.eq(user.id))
        .one(&tx)
        .await?
        .is_some()
    {
        return Err(AppError::Conflict("this user is already a member".into()));
    }
    // A placed tenant's team memberships reference the user in its own database.
    crate::placement::share_user(state, placed, &user).await?;
    let now = Utc::now();
    let m = memberships::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant),
        user_id: Set(user.id),
        role: Set(role),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&tx)
    .await?;
    tx.commit().await?;
    membership_row(state, &m)
}

/// `changeMemberRole`, in the request's tenant transaction; answers the role before and the
/// membership after.
pub async fn change_role(
    state: &AppState,
    req: &RequestContext,
    id: Uuid,
    role: Role,
) -> AppResult<(Role, Row)> {
    let tenant = req.tenant()?.id;
    let tx = state.tenant_tx(tenant).await?;
    let m = membership_in(&tx, tenant, id).await?;
    let current = m.role;
    may_assign(req, role)?;
    may_assign(req, current)?;
    if current == Role::Owner && role != Role::Owner && owners(&tx, tenant).await? <= 1 {
        return Err(AppError::LastOwner);
    }
    let mut active: entity::memberships::ActiveModel = m.into();
    active.role = Set(role);
    active.updated_at = Set(Utc::now());
    let m = active.update(&tx).await?;
    tx.commit().await?;
    Ok((current, membership_row(state, &m)?))
}

/// `removeMember`, in the request's tenant transaction; answers the removed membership.
pub async fn remove_member(
    state: &AppState,
    req: &RequestContext,
    id: Uuid,
) -> AppResult<entity::memberships::Model> {
    let tenant = req.tenant()?.id;
    let tx = state.tenant_tx(tenant).await?;
    let m = membership_in(&tx, tenant, id).await?;
    let current = m.role;
    may_assign(req, current)?;
    // The last Owner stays while anyone else is a member. A platform admin may remove an Owner
    // who is the tenant's only member: that is off-boarding, the step before `deleteTenant`.
    let offboarding = req.principal.is_admin && members(&tx, tenant).await? == 1;
    if current == Role::Owner && owners(&tx, tenant).await? <= 1 && !offboarding {
        return Err(AppError::LastOwner);
    }
    entity::memberships::Entity::delete_by_id(m.id)
        .exec(&tx)
        .await?;
    tx.commit().await?;
    Ok(m)
}

/// `seedStaffAdmin`: the user (created when needed) becomes an Owner of the tenant.
pub async fn seed_staff_admin(
    state: &AppState,
    req: &RequestContext,
    tenant: Uuid,
    email: String,
) -> AppResult<Row> {
    use entity::memberships;
    req.require_admin()?;
    let t = tenant_or_404(&state.db, tenant).await?;
    if t.kind == entity::tenants::TenantKind::Template {
        return Err(AppError::PreconditionFailed(
            "the template has no staff".into(),
        ));
    }
    // The admin names the tenant; the membership is written in that tenant's transaction.
    let tx = state.tenant_tx(tenant).await?;
    let user = user_for_email(&tx, &email).await?;
    let now = Utc::now();
    let existing = memberships::Entity::find()
        .filter(memberships::Column::TenantId.eq(tenant))
        .filter(memberships::Column::UserId.eq(user.id))
        .one(&tx)
        .await?;
    let m = match existing {
        Some(m) => {
            let mut active: memberships::ActiveModel = m.into();
            active.role = Set(Role::Owner);
            active.updated_at = Set(now);
            active.update(&tx).await?
        }
        None => {
            memberships::ActiveModel {
                id: Set(Uuid::now_v7()),
                tenant_id: Set(tenant),
                user_id: Set(user.id),
                role: Set(Role::Owner),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&tx)
            .await?
        }
    };
    tx.commit().await?;
    membership_row(state, &m)
}
