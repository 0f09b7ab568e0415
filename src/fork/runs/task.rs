//! The run task: the fork transaction under the target's locks, the background task that runs
//! it and records its end, the shutdown cut, and the public face of a failure. Also the plan
//! (a dry run in a transaction that is rolled back).

use std::sync::Arc;

use entity::tenants::ProvisioningState;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Statement, TransactionTrait,
};
use uuid::Uuid;

use super::{
    ForkPlanInput, record,
    record::status,
    relay::{Relay, RunProgress, Silent},
};
use crate::{
    error::{AppError, AppResult},
    fork::{
        engine::{Engine, ForkOutcome, RunOptions},
        hub::EventKind,
        versions,
    },
    state::AppState,
};

/// The template version a run leaves the target at: an upgrade brings it to the template's
/// latest; a fork keeps the version the target has, or gives a first fork the latest.
pub(super) async fn version_after(
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
pub(super) fn engine<'a, C: ConnectionTrait>(
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
    let pools = RunPools::of(state, input, &state.db).await?;
    if input.upgrade.is_none() {
        let tx = pools.target.begin().await?;
        let source = pools.source_tx(input).await?;
        let version = pools
            .version_after(&tx, input)
            .await
            .map_err(AppError::Internal)?;
        let outcome = async {
            pools.prepare(state, input, &tx).await?;
            let engine = engine(&tx, state, input, true, version);
            match &source {
                Some(source) => engine.with_source(source),
                None => engine,
            }
            .run(&mut sink)
            .await
        }
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
    // A fleet's run waits for its turn, still `PENDING` (its heartbeat keeps it alive).
    let _turn = match &input.turns {
        Some(turns) => Some(turns.clone().acquire_owned().await),
        None => None,
    };
    let tx = begin_locked(&pools.target, input.target.id).await?;
    let source = pools.source_tx(input).await?;
    let version = pools
        .version_after(&tx, input)
        .await
        .map_err(AppError::Internal)?;
    let outcome = async {
        pools.prepare(state, input, &tx).await?;
        let engine = engine(&tx, state, input, false, version);
        match &source {
            Some(source) => engine.with_source(source),
            None => engine,
        }
        .run(&mut sink)
        .await
    }
    .await
    .map_err(AppError::Internal);
    tx.rollback().await?;
    outcome
}

/// The pools a run works on (issue #19): the target's database (the main one, or the named
/// database the target is placed in) and, unless both are in the main database, the source's.
/// The fork transaction is on the target's alone; the source is only read.
struct RunPools {
    /// The main database (the fork pool, or the system pool).
    main: DatabaseConnection,
    /// The target's database; its transaction is the fork transaction.
    target: DatabaseConnection,
    /// The source's database, unless source and target are both in the main database.
    source: Option<DatabaseConnection>,
}

impl RunPools {
    /// The pools of `input`'s run, `main` being the main database's. A named database that
    /// cannot be reached is `SERVICE_UNAVAILABLE`.
    async fn of(
        state: &AppState,
        input: &ForkPlanInput,
        main: &DatabaseConnection,
    ) -> AppResult<Self> {
        let pools = &state.tenant_pools;
        let target =
            crate::placement::pool_or_main(pools, main, input.target.database.as_deref()).await?;
        // Both in the main database: one transaction, as before placement. Otherwise the source
        // is read in its own transaction, which names the source for row-level security when
        // it is placed (even in the target's database: the target's transaction names the
        // target only).
        let source = if input.source.database.is_none() && input.target.database.is_none() {
            None
        } else {
            Some(
                crate::placement::pool_or_main(pools, main, input.source.database.as_deref())
                    .await?,
            )
        };
        Ok(Self {
            main: main.clone(),
            target,
            source,
        })
    }

    /// [`version_after`], read from the main database: through the fork transaction `tx` when
    /// that is the main database's (on SQLite another connection could wait on its lock, and a
    /// pool of a few could run out with several runs each holding one), else from the main pool.
    async fn version_after(
        &self,
        tx: &sea_orm::DatabaseTransaction,
        input: &ForkPlanInput,
    ) -> anyhow::Result<Option<i32>> {
        match input.target.database {
            None => version_after(tx, input).await,
            Some(_) => version_after(&self.main, input).await,
        }
    }

    /// A transaction of the source's database, unless both are in the main database (only
    /// read). In a named database it names the source for row-level security, as the target's
    /// names the target.
    async fn source_tx(
        &self,
        input: &ForkPlanInput,
    ) -> Result<Option<sea_orm::DatabaseTransaction>, sea_orm::DbErr> {
        let Some(pool) = &self.source else {
            return Ok(None);
        };
        let tx = pool.begin().await?;
        if input.source.database.is_some() {
            crate::access::name_tenant_in(&tx, input.source.id).await?;
        }
        Ok(Some(tx))
    }

    /// In a placed target's fork transaction, first: the target named for row-level security,
    /// then the copy of its catalog row and of the vocabulary its copies reference
    /// ([`crate::placement`]), so they commit or roll back with the copies.
    async fn prepare(
        &self,
        state: &AppState,
        input: &ForkPlanInput,
        tx: &sea_orm::DatabaseTransaction,
    ) -> anyhow::Result<()> {
        if input.target.database.is_some() {
            // Row-level security may bind the named database's role: the run names its target.
            crate::access::name_tenant_in(tx, input.target.id).await?;
            crate::placement::copy_for_tenant(&self.main, tx, &state.registry, input.target.id)
                .await?;
            // The anchor of the tenant's rows, there with them (created with the tenant unless
            // its database could not be reached then).
            crate::placement::ensure_root_organization(tx, input.target.id).await?;
        }
        Ok(())
    }
}

/// The fork transaction: on PostgreSQL its first statement takes the target's advisory lock; on
/// SQLite it is `BEGIN IMMEDIATE` (the database's write lock).
pub(super) async fn begin_locked(
    db: &DatabaseConnection,
    target: Uuid,
) -> Result<sea_orm::DatabaseTransaction, sea_orm::DbErr> {
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    let tx = crate::db::begin_write(db).await?;
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

/// The advisory-lock key of a target: the first eight bytes of its id. A run holds it
/// exclusively in the target's database; every write of the tenant's placed rows holds it
/// shared there (`access::transactions`), so a move's fence waits those out.
pub(crate) fn advisory_key(target: Uuid) -> i64 {
    let bytes = target.as_bytes();
    i64::from_be_bytes([
        bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
    ])
}

/// Runs `run_id` in the background: on the fork runtime with the fork pool when they can be
/// had, else on the server's runtime with the system pool.
pub(super) fn spawn(state: Arc<AppState>, run_id: Uuid, input: ForkPlanInput) {
    let span = tracing::info_span!(
        "fork",
        fork.run_id = %run_id,
        tenant.id = %input.target.id,
        fork.source = %input.source.id,
    );
    spawn_run(state, span, move |state, db| {
        execute(state, db, run_id, input)
    });
}

/// Runs the task `run` makes of the state and the fork's own pool (`fork::runtime`) on the
/// fork's own runtime, under `span`; without them, on the server's runtime with the system pool.
pub(super) fn spawn_run<F, Fut>(state: Arc<AppState>, span: tracing::Span, run: F)
where
    F: FnOnce(Arc<AppState>, DatabaseConnection) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let forks = state.forks.handle();
    let task = async move {
        use tracing::Instrument;
        let db = match state.forks.db(&state).await {
            Ok(db) => db,
            Err(err) => {
                tracing::warn!(error = %err, "no fork pool; the fork uses the system pool");
                state.db.clone()
            }
        };
        run(state, db).instrument(span).await;
    };
    match forks {
        Ok(forks) => drop(forks.spawn(task)),
        Err(err) => {
            tracing::warn!(error = %err, "no fork runtime; the fork runs on the server's");
            drop(tokio::spawn(task));
        }
    }
}

/// The background task of one run.
#[tracing::instrument(skip_all, fields(fork.run_id = %run_id, tenant.id = %input.target.id))]
async fn execute(state: Arc<AppState>, db: DatabaseConnection, run_id: Uuid, input: ForkPlanInput) {
    let _running = state.hub.fork_running();
    if let Some(signal) = input.start_after.clone() {
        signal.wait().await;
    }
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    // The heartbeat starts before waiting for the target's lock: a run queued behind another
    // fork of the same target is alive, not abandoned.
    let heartbeat = heartbeat(&state, &db, run_id);
    let lock = state.hub.target_lock(input.target.id);
    let _guard = lock.lock().await;
    // A fleet's run waits for its turn, still `PENDING` (its heartbeat keeps it alive).
    let _turn = match &input.turns {
        Some(turns) => Some(turns.clone().acquire_owned().await),
        None => None,
    };
    let previous_state = input.target.provisioning_state;
    let mut progress = RunProgress::new(&state, &db, run_id);
    record::mark_running(&db, run_id).await;
    record::set_provisioning(&db, input.target.id, ProvisioningState::Running).await;
    progress.emit(
        EventKind::RunStarted,
        None,
        None,
        serde_json::json!({
            "target": input.target.slug,
            "source": input.source.slug,
            "kind": input.kind().as_str(),
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
    match result {
        Ok((outcome, version)) => {
            progress.phase = None;
            // The target is READY before anyone can see the run finished (its event, its
            // record): a member acting on RUN_FINISHED is never refused as provisioning.
            record::set_provisioning(&db, input.target.id, ProvisioningState::Ready).await;
            progress.emit(
                EventKind::RunFinished,
                None,
                Some(outcome.counts.iter().map(|c| c.created as i64).sum()),
                serde_json::json!({}),
            );
            progress.flush().await;
            record::mark_finished(&db, run_id, &outcome, version).await;
            let created = outcome.counts.iter().map(|c| c.created).sum();
            state.metrics.fork_run(status::FINISHED.as_str(), created);
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
            record::mark_rolled_back(&db, run_id, failed_phase, reason).await;
            record::set_provisioning(
                &db,
                input.target.id,
                record::previous_state_after_failure(previous_state),
            )
            .await;
            state.metrics.fork_run(status::ROLLED_BACK.as_str(), 0);
        }
    }
    state.hub.close(run_id);
}

/// On PostgreSQL, a task that renews `run_id`'s lease until aborted (other replicas' sweeps
/// leave a run with a fresh heartbeat alone); on SQLite (one process) none.
pub(super) fn heartbeat(
    state: &AppState,
    db: &DatabaseConnection,
    run_id: Uuid,
) -> Option<tokio::task::JoinHandle<()>> {
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    postgres.then(|| {
        let db = db.clone();
        let every = (state.config.fork_lease / 3).max(std::time::Duration::from_millis(200));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                record::beat(&db, run_id).await;
            }
        })
    })
}

/// The error of a fork cut by shutdown.
const SHUTDOWN_CUT: &str = "the server shut down before the fork finished; nothing of it was kept";

/// A fork cut by shutdown (its cause, for [`Failure::of`]).
#[derive(Debug, thiserror::Error)]
#[error("{SHUTDOWN_CUT}")]
struct ShutdownCut;

/// The message of a run whose target began to be purged (`deleteTenant(purge: true)`) after the
/// run was checked.
const TARGET_PURGING: &str = "the target tenant is being deleted; nothing was written";

/// A run whose target is being purged (its cause, for [`Failure::of`]).
#[derive(Debug, thiserror::Error)]
#[error("{TARGET_PURGING}")]
pub(super) struct TargetPurging;

/// The message of a run whose target moved to another database (`moveTenant`) while it waited.
const TARGET_MOVED: &str = "the target tenant moved to another database before this run began; nothing was written, \
     run it again";

/// A run whose target moved while it waited for its lock (its cause, for [`Failure::of`]).
#[derive(Debug, thiserror::Error)]
#[error("{TARGET_MOVED}")]
pub(super) struct TargetMoved;

/// The message of a run that failed for a reason of its own (a database error, a bug).
pub const FORK_FAILED_MESSAGE: &str = "the fork failed and was rolled back; nothing of it was \
     kept. The cause is in the server log under this run's id";

/// What clients read about a failed run, in `ForkRun.error` and in the `ROLLING_BACK` and
/// `RUN_ROLLED_BACK` events: a stable code and message, never the cause's own text (which may
/// be the database's). The cause is logged with the run id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    /// `SHUTDOWN` (the server stopped first), `TENANT_PURGING` (the target began to be purged),
    /// `TENANT_MOVED` (a move switched the target's database first) or `FORK_FAILED` (anything
    /// else).
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
        } else if err.downcast_ref::<TargetPurging>().is_some() {
            Failure {
                code: "TENANT_PURGING",
                message: TARGET_PURGING,
            }
        } else if err.downcast_ref::<TargetMoved>().is_some() {
            Failure {
                code: "TENANT_MOVED",
                message: TARGET_MOVED,
            }
        } else {
            Failure {
                code: "FORK_FAILED",
                message: FORK_FAILED_MESSAGE,
            }
        }
    }

    /// The `detail` of the events that report it.
    pub(super) fn detail(self) -> serde_json::Value {
        serde_json::json!({ "code": self.code, "reason": self.message })
    }
}

/// True once the server is shutting down and the grace for running forks is over.
pub(super) fn grace_expired(state: &AppState) -> bool {
    *state.shutdown.borrow()
        && state
            .stopping_since
            .get()
            .is_none_or(|since| since.elapsed() >= state.config.shutdown_grace)
}

/// Catches up the template's versions, then runs the engine in the fork transaction and
/// commits, or emits `ROLLING_BACK` and rolls back.
async fn run_in_transaction(
    state: &AppState,
    input: &ForkPlanInput,
    progress: &mut RunProgress,
    postgres: bool,
) -> anyhow::Result<(ForkOutcome, Option<i32>)> {
    catch_up_versions(state, input).await?;
    // Not while the target moves on another replica (held until this run ends).
    let _serialized = super::moves::serialize(&progress.db, input.target.id).await?;
    // The target's database: the fork's own pool (its runtime's) for the main one, else the
    // named database's pool; under the target's lock there too.
    let pools = RunPools::of(state, input, &progress.db)
        .await
        .map_err(AppError::into_anyhow)?;
    let tx = begin_locked(&pools.target, input.target.id).await?;
    // Under the target's lock: a purge that marked the target after this run was checked wins
    // (`offboarding::purge::mark` marks only a target no run is writing into). The catalog is
    // in the main database.
    let target = match input.target.database {
        None => {
            entity::tenants::Entity::find_by_id(input.target.id)
                .one(&tx)
                .await?
        }
        Some(_) => {
            entity::tenants::Entity::find_by_id(input.target.id)
                .one(&pools.main)
                .await?
        }
    };
    let purging = target
        .as_ref()
        .is_none_or(|t| t.status == entity::tenants::TenantStatus::Purging.as_str());
    if purging {
        return Err(anyhow::Error::new(TargetPurging));
    }
    // A move switched the target to another database while this run waited for its lock.
    if target.is_some_and(|t| t.database != input.target.database) {
        return Err(anyhow::Error::new(TargetMoved));
    }
    let version = pools.version_after(&tx, input).await?;
    let source = pools.source_tx(input).await?;
    let result = async {
        pools.prepare(state, input, &tx).await?;
        let engine = engine(&tx, state, input, false, version);
        let engine = match &source {
            Some(source) => engine.with_source(source),
            None => engine,
        };
        let mut relay = Relay {
            inner: &mut *progress,
            postgres,
            pending_flush: false,
        };
        engine.run(&mut relay).await
    }
    .await;
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
