//! Fork runs: what a caller asks for, its preconditions, and starting a run.
//!
//! - [`record`]: the durable run record and the sweep of abandoned runs;
//! - [`task`]: the run task (the fork transaction, serialization, the shutdown cut) and plans;
//! - [`relay`]: the engine's progress to the hub and the event log, and the test failpoints;
//! - [`events`]: the event log, read as "the events after sequence `n`";
//! - [`moves`]: `moveTenant`, a run that carries a tenant to another database.
//!
//! The run record and its events live outside the fork's transaction so they survive its
//! rollback. On PostgreSQL each event is stored as it happens and forks of one target are
//! serialized by a transaction-scoped advisory lock (a second fork *waits*, then converges
//! onto the first one's rows). On SQLite the single writer is the fork's `BEGIN IMMEDIATE`
//! transaction, so events are kept in memory while it runs and stored right after it ends.

pub mod events;
pub mod moves;
pub mod record;
mod relay;
pub mod task;

use std::sync::Arc;

use futures::{
    FutureExt,
    future::{BoxFuture, Shared},
};

use entity::tenants::TenantKind;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

pub use record::{RunKind, RunStatus, kind, status, sweep_abandoned};
pub use task::{FORK_FAILED_MESSAGE, Failure, plan};

use crate::{
    error::{AppError, AppResult},
    fork::upgrade::UpgradeOptions,
    state::AppState,
};

/// What a caller asks for.
#[derive(Clone, Debug)]
pub struct ForkRequest {
    /// Target tenant: slug or id.
    pub target: String,
    /// Source tenant: slug or id; the template when absent.
    pub source: Option<String>,
    pub dry_run: bool,
    /// Who asked (the JWT subject).
    pub actor: String,
}

/// The checked request.
#[derive(Clone, Debug)]
pub struct ForkPlanInput {
    pub target: entity::tenants::Model,
    pub source: entity::tenants::Model,
    pub dry_run: bool,
    pub actor: String,
    /// Re-create copies the tenant deleted (their tombstones keep them deleted otherwise).
    pub restore_deleted: bool,
    /// Set for an upgrade ([`kind::UPGRADE`]).
    pub upgrade: Option<UpgradeOptions>,
    /// A fleet's turns ([`crate::fork::fleet`]): the run, recorded `PENDING` and heartbeating,
    /// waits for one of these permits before it starts, so a fleet runs a few at a time.
    pub turns: Option<Arc<tokio::sync::Semaphore>>,
    /// The run does nothing until this fires: a mutation that starts runs passes
    /// [`crate::graphql::audit::entry_written`], so its own audit entry (and, for a fleet, every
    /// other run's record) is written before a run takes SQLite's single write lock.
    pub start_after: Option<StartSignal>,
}

/// A one-time signal that many runs may wait for (it is cheap to clone); it fires once its
/// future resolves.
#[derive(Clone)]
pub struct StartSignal(Shared<BoxFuture<'static, ()>>);

impl StartSignal {
    /// Fires when `fired` resolves.
    pub fn new(fired: impl Future<Output = ()> + Send + 'static) -> Self {
        Self(fired.boxed().shared())
    }

    /// Resolves once the signal has fired.
    pub async fn wait(self) {
        self.0.await
    }
}

impl std::fmt::Debug for StartSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StartSignal")
    }
}

impl ForkPlanInput {
    /// [`kind::FORK`] or [`kind::UPGRADE`].
    pub fn kind(&self) -> RunKind {
        if self.upgrade.is_some() {
            kind::UPGRADE
        } else {
            kind::FORK
        }
    }

    /// True when the source is the template (its versions apply).
    pub fn from_template(&self) -> bool {
        self.source.kind == TenantKind::Template
    }
}

/// The tenant named by `key`: its id, or its slug.
pub async fn tenant_by_key(
    db: &DatabaseConnection,
    key: &str,
) -> AppResult<Option<entity::tenants::Model>> {
    use entity::tenants;
    Ok(match Uuid::parse_str(key) {
        Ok(id) => tenants::Entity::find_by_id(id).one(db).await?,
        Err(_) => {
            tenants::Entity::find()
                .filter(tenants::Column::Slug.eq(key.to_lowercase()))
                .one(db)
                .await?
        }
    })
}

/// Checks the preconditions of `docs/fork.md`, failing fast with `PRECONDITION_FAILED`.
pub async fn check(db: &DatabaseConnection, request: ForkRequest) -> AppResult<ForkPlanInput> {
    use entity::{organizations, tenants};
    let target = tenant_by_key(db, &request.target).await?.ok_or_else(|| {
        AppError::PreconditionFailed(format!("target tenant `{}` does not exist", request.target))
    })?;
    let source = match &request.source {
        Some(key) => tenant_by_key(db, key).await?.ok_or_else(|| {
            AppError::PreconditionFailed(format!("source tenant `{key}` does not exist"))
        })?,
        None => tenants::Entity::find()
            .filter(tenants::Column::Kind.eq(TenantKind::Template))
            .one(db)
            .await?
            .ok_or_else(|| {
                AppError::PreconditionFailed(
                    "there is no template tenant (run `forklift bootstrap`)".into(),
                )
            })?,
    };
    if target.kind == TenantKind::Template {
        return Err(AppError::PreconditionFailed(
            "the target is a template; forks go into tenants".into(),
        ));
    }
    if target.status == entity::tenants::TenantStatus::Purging.as_str()
        || source.status == entity::tenants::TenantStatus::Purging.as_str()
    {
        return Err(AppError::PreconditionFailed(format!(
            "tenant `{}` is being deleted",
            if target.status == entity::tenants::TenantStatus::Purging.as_str() {
                &target.slug
            } else {
                &source.slug
            }
        )));
    }
    if source.id == target.id {
        return Err(AppError::PreconditionFailed(
            "the source is the target".into(),
        ));
    }
    // A placed target's organizations are in its own database, where the run makes sure of
    // the root first thing (`placement::ensure_root_organization`).
    let root = match target.database {
        Some(_) => None,
        None => {
            organizations::Entity::find()
                .filter(organizations::Column::TenantId.eq(target.id))
                .filter(organizations::Column::ParentId.is_null())
                .one(db)
                .await?
        }
    };
    if root.is_none() && target.database.is_none() {
        return Err(AppError::PreconditionFailed(format!(
            "target tenant `{}` has no root organization",
            target.slug
        )));
    }
    Ok(ForkPlanInput {
        target,
        source,
        dry_run: request.dry_run,
        actor: request.actor,
        restore_deleted: false,
        upgrade: None,
        turns: None,
        start_after: None,
    })
}

/// Records a new run (status `PENDING`) and starts it in the background; returns the record.
pub async fn start(
    state: Arc<AppState>,
    input: ForkPlanInput,
) -> AppResult<entity::fork_runs::Model> {
    let run = record::insert_pending(&state, &input).await?;
    state.hub.open(run.id);
    task::spawn(state, run.id, input);
    Ok(run)
}
