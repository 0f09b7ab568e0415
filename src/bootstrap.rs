//! Bootstrap: brings an empty database to a switched-on stack in one idempotent command
//! (`docs/sheets.md`): migrate, the template tenant, the sheets (vocabulary and applications), the first
//! tenant with its root organization, its fork, and — only when asked — its staff administrator.

use std::{path::PathBuf, sync::Arc};

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::{error::AppError, fork::runs, state::AppState, tenants};

// Kept here too for callers that knew them as bootstrap steps (the benchmark).
pub use crate::tenants::ensure::{TEMPLATE_SLUG, ensure_template};
use entity::tenants::TenantKind;

/// [`tenants::ensure::ensure_tenant`] for callers that name the kind (`"TENANT"`): the benchmark,
/// until it moves to a crate of its own.
pub async fn ensure_tenant(
    state: &AppState,
    slug: &str,
    name: &str,
    kind: &str,
) -> anyhow::Result<entity::tenants::Model> {
    let kind =
        TenantKind::parse(kind).ok_or_else(|| anyhow::anyhow!("`{kind}` is not a tenant kind"))?;
    tenants::ensure::ensure_tenant(state, slug, name, kind).await
}

/// What to bootstrap.
#[derive(Clone, Debug)]
pub struct BootstrapOptions {
    pub tenant_slug: String,
    pub tenant_name: String,
    pub admin_email: Option<String>,
    /// Directory of provisioning sheets (`sheets/`); the built-in example template when there
    /// is no such directory (`template.rs`).
    pub sheets_dir: PathBuf,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        Self {
            tenant_slug: "demo".into(),
            tenant_name: "Demo".into(),
            admin_email: None,
            sheets_dir: PathBuf::from("sheets"),
        }
    }
}

/// One step's outcome, for the progress display.
pub type StepReport = (String, String);

/// Starts a fork and waits for it to end; returns the final run record.
pub async fn fork_and_wait(
    state: Arc<AppState>,
    request: runs::ForkRequest,
    on_event: impl FnMut(&crate::fork::hub::ForkEvent),
) -> anyhow::Result<entity::fork_runs::Model> {
    let checked = runs::check(&state.db, request)
        .await
        .map_err(AppError::into_anyhow)?;
    run_and_wait(state, checked, on_event).await
}

/// Starts the checked run `input` (a fork, or an upgrade) and waits for its end, handing each
/// progress event to `on_event`; returns the run's record.
pub async fn run_and_wait(
    state: Arc<AppState>,
    input: runs::ForkPlanInput,
    mut on_event: impl FnMut(&crate::fork::hub::ForkEvent),
) -> anyhow::Result<entity::fork_runs::Model> {
    use futures::StreamExt;
    let run = runs::start(state.clone(), input)
        .await
        .map_err(AppError::into_anyhow)?;
    let mut events = Box::pin(
        crate::fork::progress::stream(state.clone(), run.id, 0)
            .await
            .map_err(AppError::into_anyhow)?,
    );
    while let Some(event) = events.next().await {
        on_event(&event);
        if event.kind.is_terminal() {
            break;
        }
    }
    // The record is written right after the terminal event; wait for it.
    for _ in 0..100 {
        let now = entity::fork_runs::Entity::find_by_id(run.id)
            .one(&state.db)
            .await?;
        if let Some(r) = now
            && !r.status.is_live()
        {
            return Ok(r);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    anyhow::bail!("fork run {} did not finish", run.id)
}

/// Runs the whole pipeline; each step reports `(step, outcome)` through `report`.
pub async fn run(
    state: Arc<AppState>,
    options: &BootstrapOptions,
    mut report: impl FnMut(StepReport),
) -> anyhow::Result<()> {
    report(("migrate".into(), "schema up to date".into()));
    let template = ensure_template(&state).await?;
    report(("template".into(), format!("tenant `{}`", template.slug)));
    let summary = crate::template::import(&state, &options.sheets_dir).await?;
    report(("sheets".into(), summary));
    let tenant = tenants::ensure::ensure_tenant(
        &state,
        &options.tenant_slug,
        &options.tenant_name,
        TenantKind::Tenant,
    )
    .await?;
    report((
        "tenant".into(),
        format!("tenant `{}` with its root organization", tenant.slug),
    ));
    let run = fork_and_wait(
        state.clone(),
        runs::ForkRequest {
            target: tenant.slug.clone(),
            source: None,
            dry_run: false,
            actor: "bootstrap".into(),
        },
        |_| {},
    )
    .await?;
    if run.status != runs::status::FINISHED {
        anyhow::bail!(
            "the fork of `{}` ended {}: {}",
            tenant.slug,
            run.status,
            run.error.unwrap_or_default()
        );
    }
    let created: u64 = run
        .counts
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get("created").and_then(|v| v.as_u64()))
                .sum()
        })
        .unwrap_or(0);
    report((
        "fork".into(),
        format!("{created} rows created, run {}", run.id),
    ));
    if let Some(email) = &options.admin_email {
        seed_admin(&state, tenant.id, email).await?;
        report(("staff administrator".into(), email.clone()));
    }
    Ok(())
}

async fn seed_admin(state: &AppState, tenant: Uuid, email: &str) -> anyhow::Result<()> {
    use entity::memberships;
    let user = tenants::members::user_for_email(&state.db, email)
        .await
        .map_err(AppError::into_anyhow)?;
    let existing = memberships::Entity::find()
        .filter(memberships::Column::TenantId.eq(tenant))
        .filter(memberships::Column::UserId.eq(user.id))
        .one(&state.db)
        .await?;
    if existing.is_none() {
        // The same explicit, audited step as `seedStaffAdmin`.
        crate::graphql::audit::write(
            state,
            crate::graphql::audit::Entry {
                actor: "bootstrap",
                tenant: Some(tenant),
                operation: "seedStaffAdmin",
                target: Some(tenant.to_string()),
                outcome: entity::audit_entries::AuditOutcome::Allowed,
                code: None,
            },
        )
        .await;
        let now = Utc::now();
        memberships::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(tenant),
            user_id: Set(user.id),
            role: Set(entity::memberships::Role::Owner),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&state.db)
        .await?;
    }
    Ok(())
}

/// True when the database has no template yet (an empty database).
pub async fn is_empty(state: &AppState) -> anyhow::Result<bool> {
    use entity::tenants;
    Ok(tenants::Entity::find()
        .filter(tenants::Column::Kind.eq(TenantKind::Template))
        .one(&state.db)
        .await?
        .is_none())
}
