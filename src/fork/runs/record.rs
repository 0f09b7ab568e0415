//! The durable record of a run (`fork_runs`) and the target's provisioning state: what a run
//! writes about itself as it goes, and the sweep that marks runs whose process died abandoned.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DbBackend, EntityTrait, QueryFilter, sea_query::Expr,
};
use uuid::Uuid;

use super::{ForkPlanInput, events};
use crate::{
    fork::{
        engine::ForkOutcome,
        hub::{EventKind, ForkEvent},
    },
    registry::RowClass,
    rows::Row,
    state::AppState,
};

pub use entity::fork_runs::{RunKind, RunStatus};
use entity::tenants::ProvisioningState;

/// Run statuses, by name (`runs::status::FINISHED`).
pub mod status {
    use super::RunStatus;

    pub const PENDING: RunStatus = RunStatus::Pending;
    pub const RUNNING: RunStatus = RunStatus::Running;
    pub const FINISHED: RunStatus = RunStatus::Finished;
    pub const ROLLED_BACK: RunStatus = RunStatus::RolledBack;
    pub const ABANDONED: RunStatus = RunStatus::Abandoned;
    pub const PLANNED: RunStatus = RunStatus::Planned;
}

/// The kinds of run (`ForkRun.kind`), by name.
pub mod kind {
    use super::RunKind;

    /// A fork: copies what is missing.
    pub const FORK: RunKind = RunKind::Fork;
    /// An upgrade: a fork that also applies the template's changes (see
    /// [`crate::fork::upgrade`]).
    pub const UPGRADE: RunKind = RunKind::Upgrade;
    /// A move: carries the tenant's placed rows to another database (see
    /// [`crate::fork::runs::moves`]).
    pub const MOVE: RunKind = RunKind::Move;
}

/// Inserts the record of a new run of `input`, `PENDING`, owned by this replica.
pub(super) async fn insert_pending(
    state: &AppState,
    input: &ForkPlanInput,
) -> Result<entity::fork_runs::Model, sea_orm::DbErr> {
    insert_pending_run(
        state,
        NewRun {
            target: input.target.id,
            source: input.source.id,
            kind: input.kind(),
            actor: input.actor.clone(),
            from_database: None,
            to_database: None,
        },
    )
    .await
}

/// A run to record.
pub(super) struct NewRun {
    pub(super) target: Uuid,
    pub(super) source: Uuid,
    pub(super) kind: RunKind,
    pub(super) actor: String,
    /// A move's origin and destination (`None`: the main database).
    pub(super) from_database: Option<String>,
    pub(super) to_database: Option<String>,
}

/// Inserts the record of `run`, `PENDING`, owned by this replica.
pub(super) async fn insert_pending_run(
    state: &AppState,
    run: NewRun,
) -> Result<entity::fork_runs::Model, sea_orm::DbErr> {
    use entity::fork_runs;
    let now = chrono::Utc::now();
    fork_runs::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(run.target),
        source_tenant_id: Set(run.source),
        status: Set(status::PENDING),
        phase: Set(None),
        dry_run: Set(false),
        counts: Set(serde_json::json!([])),
        skipped: Set(serde_json::json!([])),
        error: Set(None),
        failed_phase: Set(None),
        kind: Set(run.kind),
        template_version: Set(None),
        conflicts: Set(None),
        from_database: Set(run.from_database),
        to_database: Set(run.to_database),
        actor: Set(run.actor),
        owner: Set(Some(state.replica_id.clone())),
        started_at: Set(None),
        finished_at: Set(None),
        heartbeat_at: Set(Some(now)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&state.db)
    .await
}

/// Renews the run's lease.
pub(super) async fn beat(db: &DatabaseConnection, run_id: Uuid) {
    use entity::fork_runs;
    let _ = fork_runs::Entity::update_many()
        .col_expr(
            fork_runs::Column::HeartbeatAt,
            Expr::value(chrono::Utc::now()),
        )
        .filter(fork_runs::Column::Id.eq(run_id))
        .exec(db)
        .await;
}

/// Shows the phase the run is in.
pub(super) async fn show_phase(db: &DatabaseConnection, run_id: Uuid, phase: String) {
    let _ = entity::fork_runs::Entity::update_many()
        .col_expr(entity::fork_runs::Column::Phase, Expr::value(phase))
        .filter(entity::fork_runs::Column::Id.eq(run_id))
        .exec(db)
        .await;
}

/// Marks the run `RUNNING` (it holds the target's lock now).
pub(super) async fn mark_running(db: &DatabaseConnection, run_id: Uuid) {
    use entity::fork_runs;
    let now = chrono::Utc::now();
    let _ = fork_runs::Entity::update_many()
        .col_expr(fork_runs::Column::Status, Expr::value(status::RUNNING))
        .col_expr(fork_runs::Column::StartedAt, Expr::value(now))
        .col_expr(fork_runs::Column::HeartbeatAt, Expr::value(now))
        .filter(fork_runs::Column::Id.eq(run_id))
        .exec(db)
        .await;
}

/// Records the run `FINISHED` with its outcome and the template version it left the target at.
pub(super) async fn mark_finished(
    db: &DatabaseConnection,
    run_id: Uuid,
    outcome: &ForkOutcome,
    version: Option<i32>,
) {
    use entity::fork_runs;
    let finished = chrono::Utc::now();
    let _ = fork_runs::Entity::update_many()
        .col_expr(fork_runs::Column::Status, Expr::value(status::FINISHED))
        .col_expr(
            fork_runs::Column::Phase,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            fork_runs::Column::Counts,
            Expr::value(serde_json::to_value(&outcome.counts).unwrap_or_default()),
        )
        .col_expr(
            fork_runs::Column::Skipped,
            Expr::value(serde_json::to_value(&outcome.skipped).unwrap_or_default()),
        )
        .col_expr(
            fork_runs::Column::Conflicts,
            Expr::value(serde_json::to_value(&outcome.conflicts).unwrap_or_default()),
        )
        .col_expr(fork_runs::Column::TemplateVersion, Expr::value(version))
        .col_expr(fork_runs::Column::FinishedAt, Expr::value(finished))
        .col_expr(fork_runs::Column::UpdatedAt, Expr::value(finished))
        .filter(fork_runs::Column::Id.eq(run_id))
        .exec(db)
        .await;
}

/// Records the run `ROLLED_BACK` in `failed_phase`, with the public reason.
pub(super) async fn mark_rolled_back(
    db: &DatabaseConnection,
    run_id: Uuid,
    failed_phase: Option<String>,
    reason: String,
) {
    use entity::fork_runs;
    let finished = chrono::Utc::now();
    let _ = fork_runs::Entity::update_many()
        .col_expr(fork_runs::Column::Status, Expr::value(status::ROLLED_BACK))
        .col_expr(fork_runs::Column::Phase, Expr::value(failed_phase.clone()))
        .col_expr(fork_runs::Column::FailedPhase, Expr::value(failed_phase))
        .col_expr(fork_runs::Column::Error, Expr::value(reason))
        .col_expr(fork_runs::Column::FinishedAt, Expr::value(finished))
        .col_expr(fork_runs::Column::UpdatedAt, Expr::value(finished))
        .filter(fork_runs::Column::Id.eq(run_id))
        .exec(db)
        .await;
}

/// Sets the provisioning state of `tenant` (logged, not returned, when it fails).
pub(super) async fn set_provisioning(
    db: &DatabaseConnection,
    tenant: Uuid,
    value: ProvisioningState,
) {
    use entity::tenants;
    let result = tenants::Entity::update_many()
        .col_expr(tenants::Column::ProvisioningState, Expr::value(value))
        .filter(tenants::Column::Id.eq(tenant))
        .exec(db)
        .await;
    if let Err(err) = result {
        tracing::error!(tenant.id = %tenant, error = %err, "could not update provisioning state");
    }
}

/// The provisioning state a target goes back to after a failed run.
pub(super) fn previous_state_after_failure(previous: ProvisioningState) -> ProvisioningState {
    if previous == ProvisioningState::Running {
        ProvisioningState::Pending
    } else {
        previous
    }
}

/// The error of an abandoned run.
const ABANDONED_REASON: &str =
    "the process running this fork stopped; its transaction was rolled back";

/// Marks runs whose owner stopped heartbeating as `ABANDONED` and puts their targets back.
/// On SQLite (one process) every unfinished run at start-up is orphaned.
pub async fn sweep_abandoned(state: &AppState) -> anyhow::Result<u64> {
    use entity::fork_runs;
    let postgres = state.db.get_database_backend() == DbBackend::Postgres;
    let mut query = fork_runs::Entity::find()
        .filter(fork_runs::Column::Status.is_in([status::PENDING, status::RUNNING]));
    if postgres {
        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(state.config.fork_lease)?;
        query = query.filter(fork_runs::Column::HeartbeatAt.lt(cutoff));
    }
    let orphans = query.all(&state.db).await?;
    let mut count = 0;
    for run in orphans {
        let now = chrono::Utc::now();
        // The status and the run's last event change together: a follower that sees the run
        // ended also finds its `RUN_FAILED`.
        let tx = crate::db::begin_write(&state.db).await?;
        let updated = fork_runs::Entity::update_many()
            .col_expr(fork_runs::Column::Status, Expr::value(status::ABANDONED))
            .col_expr(fork_runs::Column::Error, Expr::value(ABANDONED_REASON))
            .col_expr(
                fork_runs::Column::FailedPhase,
                Expr::value(run.phase.clone()),
            )
            .col_expr(fork_runs::Column::FinishedAt, Expr::value(now))
            .filter(fork_runs::Column::Id.eq(run.id))
            .filter(fork_runs::Column::Status.is_in([status::PENDING, status::RUNNING]))
            .exec(&tx)
            .await?;
        if updated.rows_affected == 0 {
            tx.rollback().await?;
            continue;
        }
        store_abandoned_event(&tx, run.id, run.phase.clone()).await?;
        tx.commit().await?;
        state.hub.ring(run.id);
        count += 1;
        let ever_finished = fork_runs::Entity::find()
            .filter(fork_runs::Column::TenantId.eq(run.tenant_id))
            .filter(fork_runs::Column::Status.eq(status::FINISHED))
            .one(&state.db)
            .await?
            .is_some();
        set_provisioning(
            &state.db,
            run.tenant_id,
            if ever_finished {
                ProvisioningState::Ready
            } else {
                ProvisioningState::Pending
            },
        )
        .await;
        tracing::warn!(fork.run_id = %run.id, tenant.id = %run.tenant_id, "fork run abandoned");
    }
    Ok(count)
}

/// Ends the event log of an abandoned run with `RUN_FAILED`, so that subscribers following it
/// (on any replica) see a terminal event rather than a stream that just stops. The dead process
/// stores nothing more, so the next sequence number is free.
async fn store_abandoned_event(
    db: &impl ConnectionTrait,
    run_id: Uuid,
    phase: Option<String>,
) -> anyhow::Result<()> {
    let next = events::last_seq(db, run_id).await? + 1;
    let event = ForkEvent {
        run_id,
        seq: next,
        kind: EventKind::RunFailed,
        phase,
        class_name: None,
        count: None,
        detail: serde_json::json!({
            "status": status::ABANDONED.as_str(),
            "reason": ABANDONED_REASON,
        }),
        at: chrono::Utc::now(),
    };
    events::store(db, &[event]).await
}

/// The in-memory `ForkRun` a dry run returns (never stored).
pub fn planned_row(
    class: &RowClass,
    input: &ForkPlanInput,
    outcome: &ForkOutcome,
    actor: &str,
) -> crate::error::AppResult<Row> {
    let now = chrono::Utc::now();
    let run = entity::fork_runs::Model {
        id: Uuid::now_v7(),
        tenant_id: input.target.id,
        source_tenant_id: input.source.id,
        status: status::PLANNED,
        phase: None,
        dry_run: true,
        counts: serde_json::to_value(&outcome.counts).unwrap_or_default(),
        skipped: serde_json::to_value(&outcome.skipped).unwrap_or_default(),
        error: None,
        failed_phase: None,
        kind: input.kind(),
        template_version: None,
        conflicts: Some(serde_json::to_value(&outcome.conflicts).unwrap_or_default()),
        from_database: None,
        to_database: None,
        actor: actor.into(),
        owner: None,
        started_at: Some(now),
        finished_at: Some(now),
        heartbeat_at: None,
        created_at: now,
        updated_at: now,
    };
    Row::from_model(class, &run)
}

/// Whether the caller may follow run `run_id`: platform admins any run; a tenant's Owners and
/// Super Users the runs into their tenant. Another tenant's run is `NOT_FOUND`, exactly like a
/// run that does not exist (no oracle); a lower role is `FORBIDDEN` before any lookup.
pub async fn may_follow(
    state: &AppState,
    req: &crate::scope::RequestContext,
    run_id: Uuid,
) -> crate::error::AppResult<()> {
    use crate::{error::AppError, scope::Role};
    if req.principal.is_admin {
        return Ok(());
    }
    let tenant = req.tenant()?.id;
    if !matches!(req.effective_role(), Some(r) if r >= Role::SuperUser) {
        return Err(AppError::forbidden(
            "fork runs are for Owners, Super Users and platform admins",
        ));
    }
    let own = entity::fork_runs::Entity::find_by_id(run_id)
        .filter(entity::fork_runs::Column::TenantId.eq(tenant))
        .one(&state.db)
        .await?;
    match own {
        Some(_) => Ok(()),
        None => Err(AppError::NotFound("ForkRun".into())),
    }
}
