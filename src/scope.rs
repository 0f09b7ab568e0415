//! Who is calling and in which tenant: the request context, resolved once per request (and once
//! per WebSocket connection) from the token, the `X-Tenant` header and the `Host`.
//!
//! Roles come from the membership table and tenant status is read on every request, so a role
//! change or a suspension takes effect on the next request, whatever tokens are in circulation.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::{
    auth::Claims,
    error::{AppError, AppResult},
    state::AppState,
};

pub use entity::memberships::Role;

/// The authenticated caller.
#[derive(Clone, Debug)]
pub struct Principal {
    pub subject: String,
    /// The user row, when the subject has one.
    pub user_id: Option<Uuid>,
    pub is_admin: bool,
    pub grants: Vec<String>,
}

impl Principal {
    /// True when the token carries `grant` (`template:author`, `vocabulary:author`).
    pub fn has_grant(&self, grant: &str) -> bool {
        self.grants.iter().any(|g| g == grant)
    }
}

/// The tenant a request acts in, as read from the catalog for this request.
#[derive(Clone, Debug)]
pub struct TenantRef {
    pub id: Uuid,
    pub slug: String,
    pub is_template: bool,
    pub status: String,
    pub provisioning_state: entity::tenants::ProvisioningState,
    /// The named tenant database holding the tenant's placed rows ([`crate::placement`]);
    /// `None`: the main database.
    pub database: Option<String>,
}

/// The scope of a request's tenant-owned data access.
#[derive(Clone, Debug)]
pub enum Scope {
    /// One tenant; every read and write carries `tenant_id = id`.
    Tenant(TenantRef),
    /// Platform admins' read-only view of every tenant (`X-Tenant: *`).
    AllTenants,
}

/// Everything resolved about one request.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub principal: Principal,
    scope: Option<Scope>,
    /// The caller's role in the scope's tenant (from the membership table).
    pub role: Option<Role>,
}

/// What a request brings to be resolved.
#[derive(Clone, Debug, Default)]
pub struct RequestInputs {
    pub bearer: Option<String>,
    pub tenant_header: Option<String>,
    pub host: Option<String>,
    /// The request only watches its tenant's fork runs ([`watches_forks_only`]): an Owner or
    /// Super User is let into a tenant still being provisioned for it.
    pub fork_watch: bool,
}

/// The root fields a member may use while their tenant is still being provisioned: the runs
/// that provision it, and who they are.
pub const FORK_WATCH_FIELDS: &[&str] = &[
    "forkRun",
    "forkRuns",
    "forkEvents",
    "forkProgress",
    "me",
    "__typename",
];

/// True when an operation of `kind` reads nothing but [`FORK_WATCH_FIELDS`].
pub fn watches_forks_only(
    kind: Option<async_graphql::parser::types::OperationType>,
    root_fields: &[String],
) -> bool {
    use async_graphql::parser::types::OperationType;
    matches!(
        kind,
        Some(OperationType::Query | OperationType::Subscription)
    ) && !root_fields.is_empty()
        && root_fields
            .iter()
            .all(|f| FORK_WATCH_FIELDS.contains(&f.as_str()))
}

impl RequestContext {
    /// The request's data scope, or an error explaining that no tenant was named.
    pub fn scope(&self) -> AppResult<&Scope> {
        self.scope.as_ref().ok_or_else(|| {
            AppError::input(
                "X-Tenant",
                "no tenant: send the X-Tenant header, use a token with a tenant claim, or call \
                 the tenant's own domain",
            )
        })
    }

    /// The one tenant the request acts in (refuses the all-tenants view).
    pub fn tenant(&self) -> AppResult<&TenantRef> {
        match self.scope()? {
            Scope::Tenant(t) => Ok(t),
            Scope::AllTenants => Err(AppError::forbidden(
                "this operation needs one tenant; `X-Tenant: *` is read-only",
            )),
        }
    }

    /// Refuses callers who are not platform admins.
    pub fn require_admin(&self) -> AppResult<()> {
        if self.principal.is_admin {
            Ok(())
        } else {
            Err(AppError::forbidden("platform admin only"))
        }
    }

    /// The effective authority in the scope's tenant: platform admins are above every role;
    /// template authors edit the template as Editors.
    pub fn effective_role(&self) -> Option<Role> {
        if self.principal.is_admin {
            return Some(Role::Owner);
        }
        let author = matches!(&self.scope, Some(Scope::Tenant(t)) if t.is_template)
            && self.principal.has_grant("template:author");
        match (self.role, author) {
            (Some(role), true) => Some(role.max(Role::Editor)),
            (None, true) => Some(Role::Editor),
            (role, false) => role,
        }
    }

    /// Refuses writes unless the caller holds at least `need` in one tenant.
    pub fn require_role(&self, need: Role) -> AppResult<&TenantRef> {
        let tenant = self.tenant()?;
        if tenant.is_template
            && !self.principal.is_admin
            && !self.principal.has_grant("template:author")
        {
            return Err(AppError::forbidden(
                "authoring the template needs the template:author grant",
            ));
        }
        match self.effective_role() {
            Some(role) if role >= need => Ok(tenant),
            _ => Err(AppError::forbidden(format!(
                "this needs the {} role or higher",
                need.as_str()
            ))),
        }
    }
}

/// Resolves a request: verifies the token, finds the tenant from header, claim and host, and
/// applies the guard (membership, suspension, provisioning).
pub async fn resolve(state: &AppState, inputs: RequestInputs) -> AppResult<RequestContext> {
    let token = inputs
        .bearer
        .as_deref()
        .ok_or_else(|| AppError::Unauthenticated("missing bearer token".into()))?;
    let claims = state.verifier.verify(token)?;
    resolve_claims(state, claims, inputs).await
}

async fn find_tenant(state: &AppState, key: &str) -> AppResult<entity::tenants::Model> {
    use entity::tenants;
    if crate::text::has_nul(key) {
        return Err(crate::text::nul_error("X-Tenant"));
    }
    let query = match Uuid::parse_str(key) {
        Ok(id) => tenants::Entity::find_by_id(id),
        Err(_) => tenants::Entity::find().filter(tenants::Column::Slug.eq(key.to_lowercase())),
    };
    query.one(&state.db).await?.ok_or(AppError::TenantNotFound)
}

/// The tenant named by the `Host` header, if host routing applies to it.
async fn tenant_from_host(
    state: &AppState,
    host: &str,
) -> AppResult<Option<entity::tenants::Model>> {
    use entity::{domains, tenants};
    let host = host
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
        .trim_end_matches('.')
        .to_lowercase();
    if host.is_empty()
        || host == "localhost"
        || host.parse::<std::net::IpAddr>().is_ok()
        || host.starts_with('[')
    {
        return Ok(None);
    }
    let base = state.config.base_domain.as_deref();
    if let Some(base) = base {
        if host == base {
            return Ok(None);
        }
        if let Some(label) = host.strip_suffix(&format!(".{base}")) {
            let found = tenants::Entity::find()
                .filter(tenants::Column::Subdomain.eq(label))
                .one(&state.db)
                .await?;
            return found.map(Some).ok_or(AppError::TenantNotFound);
        }
    }
    let domain = domains::Entity::find()
        .filter(domains::Column::Host.eq(host.as_str()))
        .filter(domains::Column::VerifiedAt.is_not_null())
        .one(&state.db)
        .await?;
    match domain {
        Some(d) => Ok(tenants::Entity::find_by_id(d.tenant_id)
            .one(&state.db)
            .await?),
        // Host routing is on only when a base domain is configured; otherwise an unknown host
        // is simply the name this server is reached by.
        None if base.is_some() => Err(AppError::DomainNotConfigured),
        None => Ok(None),
    }
}

/// The guard, given verified claims.
pub async fn resolve_claims(
    state: &AppState,
    claims: Claims,
    inputs: RequestInputs,
) -> AppResult<RequestContext> {
    let is_admin = claims.platform_role.as_deref() == Some("admin");
    let user = crate::identity::user_of(state, &claims).await?;
    let principal = Principal {
        subject: claims.sub.clone(),
        user_id: user.map(|u| u.id),
        is_admin,
        grants: claims.grants.clone(),
    };

    let header = inputs
        .tenant_header
        .as_deref()
        .map(str::trim)
        .filter(|h| !h.is_empty());
    if header == Some("*") {
        if !is_admin {
            return Err(AppError::forbidden(
                "`X-Tenant: *` (all tenants) is for platform admins only",
            ));
        }
        if claims.tenant.is_some() {
            return Err(AppError::CrossTenantDenied);
        }
        return Ok(RequestContext {
            principal,
            scope: Some(Scope::AllTenants),
            role: None,
        });
    }

    let mut candidates = Vec::new();
    if let Some(h) = header {
        candidates.push(find_tenant(state, h).await?);
    }
    if let Some(c) = claims.tenant.as_deref() {
        candidates.push(find_tenant(state, c).await?);
    }
    if let Some(host) = inputs.host.as_deref()
        && let Some(t) = tenant_from_host(state, host).await?
    {
        candidates.push(t);
    }
    let Some(tenant) = candidates.first().cloned() else {
        return Ok(RequestContext {
            principal,
            scope: None,
            role: None,
        });
    };
    if candidates.iter().any(|c| c.id != tenant.id) {
        return Err(AppError::CrossTenantDenied);
    }
    // A tenant being purged is as good as gone, for everyone (its purge runs without a scope).
    if tenant.status == entity::tenants::TenantStatus::Purging.as_str() {
        return Err(AppError::TenantNotFound);
    }

    admit(state, principal, tenant, inputs.fork_watch).await
}

/// The guard for `principal` in `tenant`: the role from the membership table, then refusal of
/// non-members (`CROSS_TENANT_DENIED`), suspended and still-provisioning tenants (unless the
/// operation only watches forks, `fork_watch`).
async fn admit(
    state: &AppState,
    principal: Principal,
    tenant: entity::tenants::Model,
    fork_watch: bool,
) -> AppResult<RequestContext> {
    use entity::memberships;
    let is_admin = principal.is_admin;
    let role = match principal.user_id {
        Some(user_id) => memberships::Entity::find()
            .filter(memberships::Column::TenantId.eq(tenant.id))
            .filter(memberships::Column::UserId.eq(user_id))
            .one(&state.db)
            .await?
            .map(|m| m.role),
        None => None,
    };
    let is_template = tenant.kind == entity::tenants::TenantKind::Template;
    if !is_admin {
        let author = is_template && principal.has_grant("template:author");
        if role.is_none() && !author {
            return Err(AppError::CrossTenantDenied);
        }
        if tenant.status == entity::tenants::TenantStatus::Suspended.as_str() {
            return Err(AppError::TenantSuspended);
        }
        // A tenant still being provisioned: its Owners and Super Users may watch the runs
        // that provision it (`FORK_WATCH_FIELDS`), nothing else.
        let watching = fork_watch && role.is_some_and(|r| r >= Role::SuperUser);
        if !is_template
            && tenant.provisioning_state != entity::tenants::ProvisioningState::Ready
            && !watching
        {
            return Err(AppError::TenantProvisioning);
        }
    }
    Ok(RequestContext {
        principal,
        scope: Some(Scope::Tenant(TenantRef {
            id: tenant.id,
            slug: tenant.slug,
            is_template,
            status: tenant.status,
            provisioning_state: tenant.provisioning_state,
            database: tenant.database,
        })),
        role,
    })
}

/// The context of a request that named no tenant, narrowed to `tenant` because the id it acts
/// on says which one (`changeMemberRole(id:)`): the guard runs for that tenant as if the
/// request had named it. A caller the guard would not let into that tenant learns nothing
/// about it: the answer is `not_found`, the error a missing id gets.
pub async fn narrow_to(
    state: &AppState,
    ctx: &RequestContext,
    tenant: Uuid,
    not_found: AppError,
) -> AppResult<RequestContext> {
    use entity::tenants;
    let Some(model) = tenants::Entity::find_by_id(tenant).one(&state.db).await? else {
        return Err(not_found);
    };
    // A membership change is not a fork watch: a tenant still provisioning is refused.
    match admit(state, ctx.principal.clone(), model, false).await {
        Err(AppError::CrossTenantDenied) => Err(not_found),
        other => other,
    }
}
