//! Fork runs: preconditions, the durable run record, the background task, serialization,
//! and the sweep that marks orphaned runs abandoned.
//!
//! The run record and its events live outside the fork's transaction so they survive its
//! rollback. On PostgreSQL each event is stored as it happens and forks of one target are
//! serialized by a transaction-scoped advisory lock (a second fork *waits*, then converges
//! onto the first one's rows). On SQLite the single writer is the fork's `BEGIN IMMEDIATE`
//! transaction, so events are kept in memory while it runs and stored right after it ends.

use std::sync::Arc;

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DbBackend, EntityTrait, QueryFilter, Statement, TransactionOptions, TransactionTrait,
    sea_query::Expr,
};
use uuid::Uuid;

use crate::{
    error::{AppError, AppResult},
    fork::{
        engine::{ClassCount, Engine, ForkOutcome, Progress, RunOptions, SkippedRow},
        hub::{EventKind, ForkEvent},
        upgrade::{Conflict, UpgradeOptions},
        versions,
    },
    state::AppState,
};

/// Run statuses.
pub mod status {
    pub const PENDING: &str = "PENDING";
    pub const RUNNING: &str = "RUNNING";
    pub const FINISHED: &str = "FINISHED";
    pub const ROLLED_BACK: &str = "ROLLED_BACK";
    pub const ABANDONED: &str = "ABANDONED";
    pub const PLANNED: &str = "PLANNED";
}

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

/// The kinds of run (`ForkRun.kind`).
pub mod kind {
    /// A fork: copies what is missing.
    pub const FORK: &str = "FORK";
    /// An upgrade: a fork that also applies the template's changes (see [`crate::fork::upgrade`]).
    pub const UPGRADE: &str = "UPGRADE";
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
}

impl ForkPlanInput {
    /// [`kind::FORK`] or [`kind::UPGRADE`].
    pub fn kind(&self) -> &'static str {
        if self.upgrade.is_some() {
            kind::UPGRADE
        } else {
            kind::FORK
        }
    }

    /// True when the source is the template (its versions apply).
    pub fn from_template(&self) -> bool {
        self.source.kind == "TEMPLATE"
    }
}

async fn tenant_by_key(
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

/// Checks the preconditions of SPEC §4, failing fast with `PRECONDITION_FAILED`.
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
            .filter(tenants::Column::Kind.eq("TEMPLATE"))
            .one(db)
            .await?
            .ok_or_else(|| {
                AppError::PreconditionFailed(
                    "there is no template tenant (run `forklift bootstrap`)".into(),
                )
            })?,
    };
    if target.kind == "TEMPLATE" {
        return Err(AppError::PreconditionFailed(
            "the target is a template; forks go into tenants".into(),
        ));
    }
    if source.id == target.id {
        return Err(AppError::PreconditionFailed(
            "the source is the target".into(),
        ));
    }
    let root = organizations::Entity::find()
        .filter(organizations::Column::TenantId.eq(target.id))
        .filter(organizations::Column::ParentId.is_null())
        .one(db)
        .await?;
    if root.is_none() {
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
    })
}

/// The template version a run leaves the target at: an upgrade brings it to the template's
/// latest; a fork keeps the version the target has, or gives a first fork the latest.
async fn version_after(
    db: &impl ConnectionTrait,
    input: &ForkPlanInput,
) -> anyhow::Result<Option<i32>> {
    if !input.from_template() {
        return Ok(None);
    }
    let latest = versions::latest(db, input.source.id).await?;
    if input.upgrade.is_some() {
        return Ok(Some(latest));
    }
    Ok(Some(
        versions::of_tenant(db, input.target.id)
            .await?
            .unwrap_or(latest),
    ))
}

/// Records a version of the template when it changed since its latest one (edits made by
/// other means than sheets and the API), so the run's lineage names the right version.
async fn catch_up_versions(state: &AppState, input: &ForkPlanInput) -> anyhow::Result<()> {
    if input.from_template() {
        versions::record_now(
            &state.db,
            &state.registry,
            input.source.id,
            versions::origin::DETECTED,
            &input.actor,
        )
        .await?;
    }
    Ok(())
}

/// The engine of `input`'s run over `db`.
fn engine<'a, C: ConnectionTrait>(
    db: &'a C,
    state: &'a AppState,
    input: &ForkPlanInput,
    dry_run: bool,
    version: Option<i32>,
) -> Engine<'a, C> {
    Engine::new(
        db,
        &state.registry,
        input.source.id,
        input.target.id,
        dry_run,
    )
    .with_options(RunOptions {
        restore_deleted: input.restore_deleted,
        version,
        upgrade: input.upgrade.clone(),
    })
}

/// Runs a dry run to completion inside a transaction that is rolled back: nothing is written.
///
/// A fork's plan runs the engine in its dry-run mode. An upgrade's plan runs the upgrade itself
/// under the target's lock (the advisory lock on PostgreSQL, the write lock on SQLite) in a
/// transaction that is then rolled back: its counts and conflicts are exactly a real run's.
pub async fn plan(state: &AppState, input: &ForkPlanInput) -> AppResult<ForkOutcome> {
    let mut sink = Silent;
    if input.upgrade.is_none() {
        let tx = state.db.begin().await?;
        let version = version_after(&tx, input)
            .await
            .map_err(AppError::Internal)?;
        let outcome = engine(&tx, state, input, true, version)
            .run(&mut sink)
            .await
            .map_err(AppError::Internal)?;
        tx.rollback().await?;
        return Ok(outcome);
    }
    catch_up_versions(state, input)
        .await
        .map_err(AppError::Internal)?;
    let lock = state.hub.target_lock(input.target.id);
    let _guard = lock.lock().await;
    let tx = begin_locked(&state.db, input.target.id).await?;
    let version = version_after(&tx, input)
        .await
        .map_err(AppError::Internal)?;
    let outcome = engine(&tx, state, input, false, version)
        .run(&mut sink)
        .await
        .map_err(AppError::Internal);
    tx.rollback().await?;
    outcome
}

/// The fork transaction: on PostgreSQL its first statement takes the target's advisory lock; on
/// SQLite it is `BEGIN IMMEDIATE` (the database's write lock).
async fn begin_locked(
    db: &DatabaseConnection,
    target: Uuid,
) -> Result<sea_orm::DatabaseTransaction, sea_orm::DbErr> {
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    let tx = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: (!postgres)
                .then_some(sea_orm::SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?;
    if postgres {
        tx.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [advisory_key(target).into()],
        ))
        .await?;
    }
    Ok(tx)
}

struct Silent;
impl Progress for Silent {
    fn phase_started(&mut self, _: &str) {}
    fn rows_copied(&mut self, _: &str, _: &ClassCount) {}
    fn row_skipped(&mut self, _: &str, _: &SkippedRow) {}
    fn phase_finished(&mut self, _: &str) {}
    fn checkpoint(&mut self, _: &str) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Records a new run (status `PENDING`) and starts it in the background; returns the record.
pub async fn start(
    state: Arc<AppState>,
    input: ForkPlanInput,
) -> AppResult<entity::fork_runs::Model> {
    use entity::fork_runs;
    let now = chrono::Utc::now();
    let run = fork_runs::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(input.target.id),
        source_tenant_id: Set(input.source.id),
        status: Set(status::PENDING.into()),
        phase: Set(None),
        dry_run: Set(false),
        counts: Set(serde_json::json!([])),
        skipped: Set(serde_json::json!([])),
        error: Set(None),
        failed_phase: Set(None),
        kind: Set(input.kind().into()),
        template_version: Set(None),
        conflicts: Set(None),
        actor: Set(input.actor.clone()),
        owner: Set(Some(state.replica_id.clone())),
        started_at: Set(None),
        finished_at: Set(None),
        heartbeat_at: Set(Some(now)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&state.db)
    .await?;
    state.hub.open(run.id);
    let run_id = run.id;
    let forks = state.forks.handle();
    let task = async move {
        use tracing::Instrument;
        let span = tracing::info_span!(
            "fork",
            fork.run_id = %run_id,
            tenant.id = %input.target.id,
            fork.source = %input.source.id,
        );
        // The fork's own pool, on the fork's own runtime (`fork::runtime`).
        let db = match state.forks.db(&state).await {
            Ok(db) => db,
            Err(err) => {
                tracing::warn!(error = %err, "no fork pool; the fork uses the system pool");
                state.db.clone()
            }
        };
        execute(state, db, run_id, input).instrument(span).await;
    };
    match forks {
        Ok(forks) => drop(forks.spawn(task)),
        Err(err) => {
            tracing::warn!(error = %err, "no fork runtime; the fork runs on the server's");
            drop(tokio::spawn(task));
        }
    }
    Ok(run)
}

/// Streams events to the hub, and stores them (now on PostgreSQL, after the run on SQLite).
struct RunProgress {
    state: Arc<AppState>,
    /// The fork's pool: run record, events, heartbeats.
    db: DatabaseConnection,
    run_id: Uuid,
    pending: Vec<ForkEvent>,
    phase: Option<String>,
    /// When the current phase started (for the phase-duration metric).
    phase_started: Option<std::time::Instant>,
    /// Event writes started during the run, awaited before the next flush so the stored
    /// events never have a gap once the run is recorded as ended.
    inflight: Vec<tokio::task::JoinHandle<()>>,
    failpoint: Option<String>,
}

impl RunProgress {
    fn emit(
        &mut self,
        kind: EventKind,
        class_name: Option<&str>,
        count: Option<i64>,
        detail: serde_json::Value,
    ) {
        let event = self.state.hub.publish(ForkEvent {
            run_id: self.run_id,
            seq: 0,
            kind,
            phase: self.phase.clone(),
            class_name: class_name.map(str::to_string),
            count,
            detail,
            at: chrono::Utc::now(),
        });
        self.pending.push(event);
    }

    /// Stores the events emitted so far (outside any fork transaction).
    async fn flush(&mut self) {
        for write in std::mem::take(&mut self.inflight) {
            let _ = write.await;
        }
        let events = std::mem::take(&mut self.pending);
        if let Err(err) = store_events(&self.db, &events).await {
            tracing::error!(fork.run_id = %self.run_id, error = %err, "could not store fork events");
        }
    }
}

async fn store_events(db: &impl ConnectionTrait, events: &[ForkEvent]) -> anyhow::Result<()> {
    use entity::fork_events;
    if events.is_empty() {
        return Ok(());
    }
    let runs = entity::fork_runs::Entity::find_by_id(events[0].run_id)
        .one(db)
        .await?;
    let Some(run) = runs else { return Ok(()) };
    let models = events.iter().map(|e| fork_events::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(run.tenant_id),
        run_id: Set(e.run_id),
        seq: Set(e.seq as i32),
        kind: Set(e.kind.as_str().into()),
        phase: Set(e.phase.clone()),
        class_name: Set(e.class_name.clone()),
        count: Set(e.count.map(|c| c as i32)),
        detail: Set(e.detail.clone()),
        at: Set(e.at),
    });
    // In statements of at most 1,000 events (10 parameters each): under both databases' limits
    // on bind parameters, however many events a checkpoint gathered.
    let models: Vec<_> = models.collect();
    for chunk in models.chunks(1000) {
        fork_events::Entity::insert_many(chunk.to_vec())
            .exec(db)
            .await?;
    }
    if db.get_database_backend() == DbBackend::Postgres {
        // The doorbell for followers on other replicas; the table stays the log.
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [
                super::listener::CHANNEL.into(),
                events[0].run_id.to_string().into(),
            ],
        ))
        .await?;
    }
    Ok(())
}

impl Progress for RunProgress {
    fn phase_started(&mut self, phase: &str) {
        self.phase = Some(phase.to_string());
        self.phase_started = Some(std::time::Instant::now());
        tracing::debug!(fork.phase = phase, "fork phase started");
        if crate::db::is_postgres(&self.db) {
            // The run record shows the current phase while the run goes on (on SQLite the
            // fork holds the only write lock, so the record is written when it ends).
            let (db, run_id, phase) = (self.db.clone(), self.run_id, phase.to_string());
            self.inflight.push(tokio::spawn(async move {
                let _ = entity::fork_runs::Entity::update_many()
                    .col_expr(entity::fork_runs::Column::Phase, Expr::value(phase))
                    .filter(entity::fork_runs::Column::Id.eq(run_id))
                    .exec(&db)
                    .await;
            }));
        }
        self.emit(EventKind::PhaseStarted, None, None, serde_json::json!({}));
    }
    fn rows_copied(&mut self, _phase: &str, count: &ClassCount) {
        let detail = serde_json::to_value(count).unwrap_or_default();
        self.emit(
            EventKind::RowsCopied,
            Some(&count.class_name),
            Some(count.created as i64),
            detail,
        );
    }
    fn row_skipped(&mut self, _phase: &str, skipped: &SkippedRow) {
        let detail = serde_json::to_value(skipped).unwrap_or_default();
        self.emit(
            EventKind::RowSkipped,
            Some(&skipped.class_name),
            None,
            detail,
        );
    }
    fn row_conflict(&mut self, _phase: &str, conflict: &Conflict) {
        let detail = serde_json::to_value(conflict).unwrap_or_default();
        self.emit(
            EventKind::RowConflict,
            Some(&conflict.class_name),
            None,
            detail,
        );
    }
    fn phase_finished(&mut self, phase: &str) {
        if let Some(started) = self.phase_started.take() {
            self.state.metrics.fork_phase(phase, started.elapsed());
        }
        self.emit(EventKind::PhaseFinished, None, None, serde_json::json!({}));
    }
    fn checkpoint(&mut self, point: &str) -> anyhow::Result<()> {
        let Some(failpoint) = self.failpoint.as_deref() else {
            return Ok(());
        };
        if failpoint == point {
            anyhow::bail!("failpoint {point} triggered");
        }
        // `pause:<point>:<ms>` holds the run there (tests kill a process mid-fork with it). The
        // fork task's thread is blocked on purpose: nothing of the run may move meanwhile.
        if let Some(rest) = failpoint.strip_prefix("pause:")
            && let Some((at, ms)) = rest.rsplit_once(':')
            && at == point
        {
            let ms = ms.parse::<u64>().unwrap_or(1000);
            tokio::task::block_in_place(|| {
                std::thread::sleep(std::time::Duration::from_millis(ms))
            });
        }
        Ok(())
    }
}

fn advisory_key(target: Uuid) -> i64 {
    let bytes = target.as_bytes();
    i64::from_be_bytes([
        bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
    ])
}

async fn set_provisioning(db: &DatabaseConnection, tenant: Uuid, value: &str) {
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

/// The background task of one run.
#[tracing::instrument(skip_all, fields(fork.run_id = %run_id, tenant.id = %input.target.id))]
async fn execute(state: Arc<AppState>, db: DatabaseConnection, run_id: Uuid, input: ForkPlanInput) {
    use entity::fork_runs;
    let _running = state.hub.fork_running();
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    // The heartbeat starts before waiting for the target's lock: a run queued behind another
    // fork of the same target is alive, not abandoned.
    let heartbeat = postgres.then(|| {
        let db = db.clone();
        let every = (state.config.fork_lease / 3).max(std::time::Duration::from_millis(200));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let _ = fork_runs::Entity::update_many()
                    .col_expr(
                        fork_runs::Column::HeartbeatAt,
                        Expr::value(chrono::Utc::now()),
                    )
                    .filter(fork_runs::Column::Id.eq(run_id))
                    .exec(&db)
                    .await;
            }
        })
    });
    let lock = state.hub.target_lock(input.target.id);
    let _guard = lock.lock().await;
    let previous_state = input.target.provisioning_state.clone();
    let mut progress = RunProgress {
        state: state.clone(),
        db: db.clone(),
        run_id,
        pending: Vec::new(),
        phase: None,
        phase_started: None,
        inflight: Vec::new(),
        failpoint: state.config.fork_failpoint.clone(),
    };
    let now = chrono::Utc::now();
    let _ = fork_runs::Entity::update_many()
        .col_expr(fork_runs::Column::Status, Expr::value(status::RUNNING))
        .col_expr(fork_runs::Column::StartedAt, Expr::value(now))
        .col_expr(fork_runs::Column::HeartbeatAt, Expr::value(now))
        .filter(fork_runs::Column::Id.eq(run_id))
        .exec(&db)
        .await;
    set_provisioning(&db, input.target.id, "RUNNING").await;
    progress.emit(
        EventKind::RunStarted,
        None,
        None,
        serde_json::json!({
            "target": input.target.slug,
            "source": input.source.slug,
            "kind": input.kind(),
        }),
    );
    if postgres {
        progress.flush().await;
    }

    // On shutdown the fork gets the grace period to finish; then it is cut, which drops its
    // transaction (a rollback) and records the run as rolled back.
    let cut = {
        let run = run_in_transaction(&state, &input, &mut progress, postgres);
        tokio::pin!(run);
        let mut shutdown = state.shutdown.subscribe();
        let grace = state.config.shutdown_grace;
        tokio::select! {
            biased;
            _ = async {
                let _ = shutdown.wait_for(|stopping| *stopping).await;
                let since = state.stopping_since.get().copied().unwrap_or_else(std::time::Instant::now);
                tokio::time::sleep_until((since + grace).into()).await;
            } => Ok(()),
            result = &mut run => Err(result),
        }
    };
    let result = match cut {
        Err(result) => result,
        Ok(()) => {
            let err = anyhow::Error::new(ShutdownCut);
            progress.emit(
                EventKind::RollingBack,
                None,
                None,
                Failure::of(&err).detail(),
            );
            Err(err)
        }
    };
    if let Some(h) = heartbeat {
        h.abort();
    }
    let finished = chrono::Utc::now();
    match result {
        Ok((outcome, version)) => {
            progress.phase = None;
            progress.emit(
                EventKind::RunFinished,
                None,
                Some(outcome.counts.iter().map(|c| c.created as i64).sum()),
                serde_json::json!({}),
            );
            progress.flush().await;
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
                .exec(&db)
                .await;
            set_provisioning(&db, input.target.id, "READY").await;
            let created = outcome.counts.iter().map(|c| c.created).sum();
            state.metrics.fork_run(status::FINISHED, created);
        }
        Err(err) => {
            let failed_phase = progress.phase.clone();
            // The cause (perhaps database or driver text) goes to the log with the run id;
            // the record and the events get the stable code and message.
            let failure = Failure::of(&err);
            tracing::warn!(
                fork.run_id = %run_id,
                fork.phase = ?failed_phase,
                fork.failure = failure.code,
                error = ?err,
                "fork rolled back"
            );
            let reason = failure.message.to_string();
            progress.emit(EventKind::RunRolledBack, None, None, failure.detail());
            progress.flush().await;
            let _ = fork_runs::Entity::update_many()
                .col_expr(fork_runs::Column::Status, Expr::value(status::ROLLED_BACK))
                .col_expr(fork_runs::Column::Phase, Expr::value(failed_phase.clone()))
                .col_expr(fork_runs::Column::FailedPhase, Expr::value(failed_phase))
                .col_expr(fork_runs::Column::Error, Expr::value(reason))
                .col_expr(fork_runs::Column::FinishedAt, Expr::value(finished))
                .col_expr(fork_runs::Column::UpdatedAt, Expr::value(finished))
                .filter(fork_runs::Column::Id.eq(run_id))
                .exec(&db)
                .await;
            set_provisioning(
                &db,
                input.target.id,
                &previous_state_after_failure(&previous_state),
            )
            .await;
            state.metrics.fork_run(status::ROLLED_BACK, 0);
        }
    }
    state.hub.close(run_id);
}

fn previous_state_after_failure(previous: &str) -> String {
    if previous == "RUNNING" {
        "PENDING".into()
    } else {
        previous.to_string()
    }
}

/// The error of a fork cut by shutdown.
const SHUTDOWN_CUT: &str = "the server shut down before the fork finished; nothing of it was kept";

/// A fork cut by shutdown (its cause, for [`Failure::of`]).
#[derive(Debug, thiserror::Error)]
#[error("{SHUTDOWN_CUT}")]
struct ShutdownCut;

/// The message of a run that failed for a reason of its own (a database error, a bug).
pub const FORK_FAILED_MESSAGE: &str = "the fork failed and was rolled back; nothing of it was \
     kept. The cause is in the server log under this run's id";

/// What clients read about a failed run, in `ForkRun.error` and in the `ROLLING_BACK` and
/// `RUN_ROLLED_BACK` events: a stable code and message, never the cause's own text (which may
/// be the database's). The cause is logged with the run id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    /// `SHUTDOWN` (the server stopped first) or `FORK_FAILED` (anything else).
    pub code: &'static str,
    /// The sentence shown.
    pub message: &'static str,
}

impl Failure {
    /// The public face of `err`.
    pub fn of(err: &anyhow::Error) -> Self {
        if err.downcast_ref::<ShutdownCut>().is_some() {
            Failure {
                code: "SHUTDOWN",
                message: SHUTDOWN_CUT,
            }
        } else {
            Failure {
                code: "FORK_FAILED",
                message: FORK_FAILED_MESSAGE,
            }
        }
    }

    /// The `detail` of the events that report it.
    fn detail(self) -> serde_json::Value {
        serde_json::json!({ "code": self.code, "reason": self.message })
    }
}

/// True once the server is shutting down and the grace for running forks is over.
fn grace_expired(state: &AppState) -> bool {
    *state.shutdown.borrow()
        && state
            .stopping_since
            .get()
            .is_none_or(|since| since.elapsed() >= state.config.shutdown_grace)
}

async fn run_in_transaction(
    state: &AppState,
    input: &ForkPlanInput,
    progress: &mut RunProgress,
    postgres: bool,
) -> anyhow::Result<(ForkOutcome, Option<i32>)> {
    catch_up_versions(state, input).await?;
    // On the fork's own pool (its runtime's), under the target's lock.
    let tx = begin_locked(&progress.db, input.target.id).await?;
    let version = version_after(&tx, input).await?;
    let result = {
        let engine = engine(&tx, state, input, false, version);
        let mut relay = Relay {
            inner: progress,
            postgres,
            pending_flush: false,
        };
        engine.run(&mut relay).await
    };
    // A fork that reaches its commit after the shutdown grace ran out is cut here too: the
    // cut in `execute` can only act when the run yields, and a run must not outlive its grace.
    let result = match result {
        Ok(_) if grace_expired(state) => Err(anyhow::Error::new(ShutdownCut)),
        other => other,
    };
    match result {
        Ok(outcome) => {
            tx.commit().await?;
            Ok((outcome, version))
        }
        Err(err) => {
            progress.emit(
                EventKind::RollingBack,
                None,
                None,
                Failure::of(&err).detail(),
            );
            if postgres {
                progress.flush().await;
            }
            tx.rollback().await?;
            Err(err)
        }
    }
}

/// Forwards engine progress; on PostgreSQL events are stored as they happen.
struct Relay<'a> {
    inner: &'a mut RunProgress,
    postgres: bool,
    pending_flush: bool,
}

impl Progress for Relay<'_> {
    fn phase_started(&mut self, phase: &str) {
        self.inner.phase_started(phase);
        self.pending_flush = self.postgres;
    }
    fn rows_copied(&mut self, phase: &str, count: &ClassCount) {
        self.inner.rows_copied(phase, count);
        self.pending_flush = self.postgres;
    }
    fn row_skipped(&mut self, phase: &str, skipped: &SkippedRow) {
        self.inner.row_skipped(phase, skipped);
        self.pending_flush = self.postgres;
    }
    fn row_conflict(&mut self, phase: &str, conflict: &Conflict) {
        self.inner.row_conflict(phase, conflict);
        self.pending_flush = self.postgres;
    }
    fn phase_finished(&mut self, phase: &str) {
        self.inner.phase_finished(phase);
        self.pending_flush = self.postgres;
    }
    fn checkpoint(&mut self, point: &str) -> anyhow::Result<()> {
        if self.pending_flush {
            // Store on a pool connection, outside the fork's transaction, without blocking it.
            let events = std::mem::take(&mut self.inner.pending);
            let db = self.inner.db.clone();
            let run_id = self.inner.run_id;
            let write = tokio::spawn(async move {
                if let Err(err) = store_events(&db, &events).await {
                    tracing::error!(fork.run_id = %run_id, error = %err, "could not store fork events");
                }
            });
            self.inner.inflight.push(write);
            self.pending_flush = false;
        }
        self.inner.checkpoint(point)
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
        let tx = state.db.begin().await?;
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
            if ever_finished { "READY" } else { "PENDING" },
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
    let next = stored_events(db, run_id)
        .await?
        .last()
        .map_or(1, |e| e.seq + 1);
    let event = ForkEvent {
        run_id,
        seq: next,
        kind: EventKind::RunFailed,
        phase,
        class_name: None,
        count: None,
        detail: serde_json::json!({
            "status": status::ABANDONED,
            "reason": ABANDONED_REASON,
        }),
        at: chrono::Utc::now(),
    };
    store_events(db, &[event]).await
}

/// Stored events of a run, in order.
pub async fn stored_events(
    db: &impl ConnectionTrait,
    run_id: Uuid,
) -> anyhow::Result<Vec<ForkEvent>> {
    stored_events_after(db, run_id, 0).await
}

/// The stored events of `run_id` whose sequence is above `after`, in order: a follower reads
/// only what it has not seen yet.
pub async fn stored_events_after(
    db: &impl ConnectionTrait,
    run_id: Uuid,
    after: i64,
) -> anyhow::Result<Vec<ForkEvent>> {
    use entity::fork_events;
    use sea_orm::QueryOrder;
    let rows = fork_events::Entity::find()
        .filter(fork_events::Column::RunId.eq(run_id))
        .filter(fork_events::Column::Seq.gt(after))
        .order_by_asc(fork_events::Column::Seq)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|e| {
            Some(ForkEvent {
                run_id: e.run_id,
                seq: e.seq.into(),
                kind: EventKind::parse(&e.kind)?,
                phase: e.phase,
                class_name: e.class_name,
                count: e.count.map(i64::from),
                detail: e.detail,
                at: e.at,
            })
        })
        .collect())
}
