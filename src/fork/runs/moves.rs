//! `moveTenant` (issue #19, item 5): a run of kind `MOVE` that carries a tenant's placed rows
//! ([`crate::placement::is_placed`]) from the database it lives in to another, streamed through
//! `forkProgress` like a fork. Three phases, each its own transaction(s):
//!
//! 1. `MOVE_COPY`: the destination is brought in line with a consistent snapshot of the
//!    origin (inserts, updates and deletes: a copy an interrupted move left there is reused), in
//!    one transaction there. The tenant is served from the origin meanwhile.
//! 2. `MOVE_SWITCH`: the tenant is `RUNNING` (members are refused with `TENANT_PROVISIONING`),
//!    the origin is **fenced** (the tenant's lock there, which every write of its placed rows
//!    takes shared: `access::transactions`), what changed since the copy is carried over, every
//!    table's count and checksum are compared on both sides, and only when all match the
//!    catalog's `tenants.database` changes, before the fence is released. Writers that waited
//!    on the fence then see the new placement and are refused; the next request goes to the
//!    destination.
//! 3. `MOVE_CLEANUP`: the tenant's rows are removed from the origin (and from wherever an
//!    earlier interrupted move left a copy: `fork_runs.from_database`/`to_database`), one
//!    transaction per database.
//!
//! **A crash at any step** leaves the catalog naming exactly one database, which holds every row:
//! before the switch commits it is the origin (a copy in the destination is unused), after it the
//! destination (the origin's copy is unused). Running `moveTenant` again finishes the move: it
//! copies again (only what differs) or, when the tenant is already where it was asked to go,
//! only cleans up.

use std::sync::Arc;

use entity::tenants::{self, ProvisioningState, TenantKind, TenantStatus};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, TransactionTrait, sea_query::Expr,
};
use serde_json::json;
use uuid::Uuid;

use super::{
    record::{self, NewRun, kind, status},
    relay::RunProgress,
    task::{Failure, advisory_key, begin_locked, heartbeat, spawn_run},
};
use crate::{
    error::{AppError, AppResult},
    fork::{
        engine::{ClassCount, ForkOutcome, Progress},
        hub::EventKind,
    },
    placement::{self, transfer},
    registry::RowClass,
    state::AppState,
};

/// The phases of a move, in order (members of `ForkPhase` after the fork's).
pub const MOVE_PHASES: [&str; 3] = [COPY, SWITCH, CLEANUP];
const COPY: &str = "MOVE_COPY";
const SWITCH: &str = "MOVE_SWITCH";
const CLEANUP: &str = "MOVE_CLEANUP";

/// Mixed into the tenant's advisory-lock key for the lock that serializes its moves and forks.
const MOVE_LOCK: i64 = 0x6d6f_7665;

/// The message of a move that failed for a reason of its own.
pub const MOVE_FAILED_MESSAGE: &str = "the move failed; the tenant stays in the database it was \
     in, and its copy in the other was removed. The cause is in the server log under this run's id";

/// A checked `moveTenant`.
#[derive(Clone, Debug)]
pub struct MoveInput {
    /// The tenant, as the catalog had it when the move was asked for.
    pub tenant: tenants::Model,
    /// Where it goes: a configured tenant database, or `None` for the main one.
    pub to: Option<String>,
    /// Who asked (the JWT subject).
    pub actor: String,
    /// The move does nothing until this fires (see [`super::ForkPlanInput::start_after`]).
    pub start_after: Option<super::StartSignal>,
}

/// Checks a `moveTenant`: the tenant exists and is not the template nor being deleted, and
/// `to` names a configured database (`None` or `main`: the main one).
pub async fn check(
    state: &AppState,
    key: &str,
    to: Option<&str>,
    actor: &str,
) -> AppResult<MoveInput> {
    let tenant = super::tenant_by_key(&state.db, key)
        .await?
        .ok_or_else(|| AppError::NotFound("Tenant".into()))?;
    if tenant.kind == TenantKind::Template {
        return Err(AppError::PreconditionFailed(
            "the template lives in the main database and does not move".into(),
        ));
    }
    if tenant.status == TenantStatus::Purging.as_str() {
        return Err(AppError::PreconditionFailed(format!(
            "tenant `{}` is being deleted",
            tenant.slug
        )));
    }
    let to = placement::check_name(&state.config.tenant_databases, "database", to)?;
    Ok(MoveInput {
        tenant,
        to,
        actor: actor.to_string(),
        start_after: None,
    })
}

/// Records a `MOVE` run (`PENDING`) and starts it in the background; returns the record.
pub async fn start(state: Arc<AppState>, input: MoveInput) -> AppResult<entity::fork_runs::Model> {
    let run = record::insert_pending_run(
        &state,
        NewRun {
            target: input.tenant.id,
            source: input.tenant.id,
            kind: kind::MOVE,
            actor: input.actor.clone(),
            from_database: input.tenant.database.clone(),
            to_database: input.to.clone(),
        },
    )
    .await?;
    state.hub.open(run.id);
    let span = tracing::info_span!("move", fork.run_id = %run.id, tenant.id = %input.tenant.id);
    let run_id = run.id;
    spawn_run(state, span, move |state, db| {
        execute(state, db, run_id, input)
    });
    Ok(run)
}

/// The background task of one move.
async fn execute(state: Arc<AppState>, db: DatabaseConnection, run_id: Uuid, input: MoveInput) {
    let _running = state.hub.fork_running();
    if let Some(signal) = input.start_after.clone() {
        signal.wait().await;
    }
    let heartbeat = heartbeat(&state, &db, run_id);
    // Serialized with the tenant's forks and upgrades in this process (across replicas, by the
    // tenant's lock in its database).
    let lock = state.hub.target_lock(input.tenant.id);
    let _guard = lock.lock().await;
    let mut progress = RunProgress::new(&state, &db, run_id);
    record::mark_running(&db, run_id).await;
    progress.emit(
        EventKind::RunStarted,
        None,
        None,
        json!({ "target": input.tenant.slug, "kind": kind::MOVE.as_str() }),
    );
    progress.flush().await;
    let mut mover = Mover {
        state: &state,
        main: db.clone(),
        tenant: input.tenant.id,
        classes: transfer::placed_classes(&state.registry),
        provisioning: None,
    };
    let result = mover.run(&input, &mut progress).await;
    if let Some(h) = heartbeat {
        h.abort();
    }
    // A failure inside the switch puts the provisioning state back as it was.
    if let Some(previous) = mover.provisioning.take() {
        record::set_provisioning(&db, input.tenant.id, previous).await;
    }
    match result {
        Ok(outcome) => {
            progress.phase = None;
            progress.emit(
                EventKind::RunFinished,
                None,
                Some(outcome.counts.iter().map(|c| c.created as i64).sum()),
                json!({}),
            );
            progress.flush().await;
            record::mark_finished(&db, run_id, &outcome, None).await;
            state.metrics.fork_run(status::FINISHED.as_str(), 0);
        }
        Err(err) => {
            let failure = match Failure::of(&err) {
                Failure {
                    code: "FORK_FAILED",
                    ..
                } => Failure {
                    code: "MOVE_FAILED",
                    message: MOVE_FAILED_MESSAGE,
                },
                other => other,
            };
            tracing::warn!(
                fork.run_id = %run_id,
                fork.phase = ?progress.phase,
                error = ?err,
                "tenant move failed; the tenant stays where the catalog says"
            );
            let failed_phase = progress.phase.clone();
            progress.emit(EventKind::RunRolledBack, None, None, failure.detail());
            progress.flush().await;
            record::mark_rolled_back(&db, run_id, failed_phase, failure.message.to_string()).await;
            state.metrics.fork_run(status::ROLLED_BACK.as_str(), 0);
        }
    }
    state.hub.close(run_id);
}

/// One move at work.
struct Mover<'a> {
    state: &'a AppState,
    /// The main database (the fork's pool).
    main: DatabaseConnection,
    tenant: Uuid,
    /// The placed classes, parents first.
    classes: Vec<&'a RowClass>,
    /// Set while the switch holds the tenant `RUNNING`: the state to put back.
    provisioning: Option<ProvisioningState>,
}

impl Mover<'_> {
    /// The three phases; the counts are the copy's (and the switch's catch-up) per class.
    async fn run(
        &mut self,
        input: &MoveInput,
        progress: &mut RunProgress,
    ) -> anyhow::Result<ForkOutcome> {
        // Moves and forks of one tenant are serialized across replicas too ([`serialize`]).
        let _serialized = serialize(&self.main, self.tenant).await?;
        let current = self.catalog_row().await?;
        let from = current.database.clone();
        let to = input.to.clone();
        let mut outcome = ForkOutcome::default();
        if from != to {
            let moved = async {
                self.copy(&from, &to, progress, &mut outcome).await?;
                self.switch(
                    &from,
                    &to,
                    current.provisioning_state,
                    progress,
                    &mut outcome,
                )
                .await
            }
            .await;
            if let Err(err) = moved {
                self.discard(&to).await;
                return Err(err);
            }
        }
        self.cleanup(&to, from != to, progress).await?;
        Ok(outcome)
    }

    /// After a failed copy or switch: removes what the copy left in `to`, unless the catalog
    /// places the tenant there after all (a switch that committed before its failure). Best
    /// effort: what stays is removed by the tenant's next move.
    async fn discard(&self, to: &Option<String>) {
        let removed = async {
            if self.catalog_row().await?.database == *to {
                return Ok(0);
            }
            let tx = self.write_tx(&self.pool(to).await?).await?;
            let n = transfer::remove(&tx, &self.classes, self.tenant).await?;
            tx.commit().await?;
            anyhow::Ok(n)
        }
        .await;
        if let Err(err) = removed {
            tracing::warn!(tenant.id = %self.tenant, error = %err, "could not remove a failed move's copy");
        }
    }

    /// The tenant's catalog row now; a tenant being deleted stops the move.
    async fn catalog_row(&self) -> anyhow::Result<tenants::Model> {
        let row = tenants::Entity::find_by_id(self.tenant)
            .one(&self.main)
            .await?
            .filter(|t| t.status != TenantStatus::Purging.as_str());
        row.ok_or_else(|| anyhow::Error::new(super::task::TargetPurging))
    }

    /// The pool of `database` (`None`: the main one).
    async fn pool(&self, database: &Option<String>) -> anyhow::Result<DatabaseConnection> {
        placement::pool_or_main(&self.state.tenant_pools, &self.main, database.as_deref())
            .await
            .map_err(AppError::into_anyhow)
    }

    /// A transaction that writes in `pool`, naming the tenant for row-level security.
    async fn write_tx(&self, pool: &DatabaseConnection) -> anyhow::Result<DatabaseTransaction> {
        crate::access::begin_tenant_for_write(pool, Some(self.tenant))
            .await
            .map_err(AppError::into_anyhow)
    }

    /// Phase `MOVE_COPY`: the destination in line with a snapshot of the origin.
    async fn copy(
        &self,
        from: &Option<String>,
        to: &Option<String>,
        progress: &mut RunProgress,
        outcome: &mut ForkOutcome,
    ) -> anyhow::Result<()> {
        progress.phase_started(COPY);
        progress.flush().await;
        progress.checkpoint("move_copy")?;
        let (origin, destination) = (self.pool(from).await?, self.pool(to).await?);
        // One state of the tenant throughout (`REPEATABLE READ` on PostgreSQL).
        let snapshot = crate::access::begin_tenant_snapshot(&origin, self.tenant)
            .await
            .map_err(AppError::into_anyhow)?;
        let tx = self.write_tx(&destination).await?;
        if to.is_some() {
            // The destination's copy of the catalog row and of the vocabulary (foreign keys).
            placement::copy_for_tenant(&self.main, &tx, &self.state.registry, self.tenant).await?;
        }
        let synced = transfer::sync(&snapshot, &tx, &self.classes, self.tenant).await?;
        for (class, synced) in self.classes.iter().zip(&synced) {
            let count = class_count(class, COPY, synced);
            progress.rows_copied(COPY, &count);
            outcome.counts.push(count);
        }
        // Holding here, the copy is written but not committed: a crash leaves nothing.
        progress.checkpoint("move_copied")?;
        tx.commit().await?;
        snapshot.commit().await?;
        progress.phase_finished(COPY);
        progress.flush().await;
        Ok(())
    }

    /// Phase `MOVE_SWITCH`: fence, catch up, verify, switch the catalog, unfence.
    async fn switch(
        &mut self,
        from: &Option<String>,
        to: &Option<String>,
        provisioning: ProvisioningState,
        progress: &mut RunProgress,
        outcome: &mut ForkOutcome,
    ) -> anyhow::Result<()> {
        progress.phase_started(SWITCH);
        progress.flush().await;
        progress.checkpoint("move_switch")?;
        let (origin, destination) = (self.pool(from).await?, self.pool(to).await?);
        // Members are refused from here until the switch ends (the run watchers excepted).
        self.provisioning = Some(provisioning);
        record::set_provisioning(&self.main, self.tenant, ProvisioningState::Running).await;
        // The fence: no write of the tenant's placed rows commits in the origin meanwhile.
        let fence = begin_locked(&origin, self.tenant).await?;
        crate::access::name_tenant_in(&fence, self.tenant).await?;
        let catalog = match from {
            None => tenants::Entity::find_by_id(self.tenant).one(&fence).await?,
            Some(_) => {
                tenants::Entity::find_by_id(self.tenant)
                    .one(&self.main)
                    .await?
            }
        };
        match catalog {
            Some(t) if t.status != TenantStatus::Purging.as_str() && t.database == *from => {}
            Some(t) if t.status != TenantStatus::Purging.as_str() => {
                anyhow::bail!(
                    "tenant {} was placed elsewhere while the move copied it",
                    self.tenant
                )
            }
            _ => return Err(anyhow::Error::new(super::task::TargetPurging)),
        }
        let tx = self.write_tx(&destination).await?;
        let caught_up = transfer::sync(&fence, &tx, &self.classes, self.tenant).await?;
        for (class, synced) in self.classes.iter().zip(&caught_up) {
            if synced.inserted + synced.updated + synced.deleted > 0 {
                let count = class_count(class, SWITCH, synced);
                progress.rows_copied(SWITCH, &count);
                outcome.counts.push(count);
            }
        }
        let expected = transfer::digests(&fence, &self.classes, self.tenant).await?;
        let found = transfer::digests(&tx, &self.classes, self.tenant).await?;
        if expected != found {
            let differ: Vec<&str> = expected
                .iter()
                .zip(&found)
                .filter(|(a, b)| a != b)
                .map(|(a, _)| a.table.as_str())
                .collect();
            anyhow::bail!("the copy does not match the origin in {differ:?}");
        }
        progress.checkpoint("move_verified")?;
        tx.commit().await?;
        // The switch. Through the fence when the origin is the main database (one commit);
        // otherwise the main database's catalog commits first, then the fence is released.
        let placed = Expr::value(to.clone());
        let update = tenants::Entity::update_many()
            .col_expr(tenants::Column::Database, placed)
            .col_expr(tenants::Column::UpdatedAt, Expr::value(chrono::Utc::now()))
            .filter(tenants::Column::Id.eq(self.tenant));
        match from {
            None => update.exec(&fence).await?,
            Some(_) => update.exec(&self.main).await?,
        };
        fence.commit().await?;
        self.provisioning = None;
        record::set_provisioning(&self.main, self.tenant, provisioning).await;
        progress.emit(
            EventKind::PhaseFinished,
            None,
            Some(expected.iter().map(|d| d.rows as i64).sum()),
            json!({ "verified": expected }),
        );
        progress.flush().await;
        Ok(())
    }

    /// Phase `MOVE_CLEANUP`: after a switch, [`Config::move_drain`] for the requests routed just
    /// before it; then the tenant's placed rows removed from every database it no longer lives
    /// in and a move of it (this one, or an interrupted one) touched.
    ///
    /// [`Config::move_drain`]: crate::config::Config::move_drain
    async fn cleanup(
        &self,
        placed: &Option<String>,
        switched: bool,
        progress: &mut RunProgress,
    ) -> anyhow::Result<()> {
        progress.phase_started(CLEANUP);
        progress.flush().await;
        // The move is done once switched: an old copy that cannot be removed now is only
        // reported (`detail.left`, and the log), and the tenant's next move or its purge
        // removes it.
        let leftovers = leftovers(self.state, &self.main, self.tenant, placed).await?;
        let (mut removed, mut left) = (0, 0);
        match progress.checkpoint("move_cleanup") {
            Err(err) => {
                tracing::warn!(tenant.id = %self.tenant, error = %err, "tenant move: old copies left");
                left = leftovers.len();
            }
            Ok(()) => {
                if switched {
                    // Requests routed to the old copy just before the switch finish reading it.
                    tokio::time::sleep(self.state.config.move_drain).await;
                }
                for database in &leftovers {
                    match remove_copy(self.state, &self.main, database, self.tenant).await {
                        Ok(n) => removed += n,
                        Err(err) => {
                            tracing::warn!(tenant.id = %self.tenant, database = ?database, error = %err, "tenant move: an old copy could not be removed");
                            left += 1;
                        }
                    }
                }
            }
        }
        progress.emit(
            EventKind::PhaseFinished,
            None,
            Some(removed as i64),
            json!({ "removed": removed, "left": left }),
        );
        progress.flush().await;
        Ok(())
    }
}

/// On PostgreSQL, a transaction of the main database (`main`, a pool) holding `tenant`'s move
/// lock until it is dropped (rolled back): moves and forks of one tenant take it, so that across
/// replicas no fork runs while the tenant moves (in one process the tenant's in-process lock
/// does that, and on SQLite there is one process). It writes nothing, and writes of the tenant's
/// rows do not take it: they go on while a move copies.
pub(super) async fn serialize(
    main: &DatabaseConnection,
    tenant: Uuid,
) -> anyhow::Result<Option<DatabaseTransaction>> {
    if main.get_database_backend() != DbBackend::Postgres {
        return Ok(None);
    }
    let tx = main.begin().await?;
    tx.execute_raw(sea_orm::Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [(advisory_key(tenant) ^ MOVE_LOCK).into()],
    ))
    .await?;
    Ok(Some(tx))
}

/// The databases other than `placed` (where the catalog places `tenant`) that its moves named,
/// origin or destination: where an interrupted move may have left a copy. Databases no longer
/// configured are left out (nothing can reach or serve from them).
pub async fn leftovers(
    state: &AppState,
    main: &DatabaseConnection,
    tenant: Uuid,
    placed: &Option<String>,
) -> anyhow::Result<Vec<Option<String>>> {
    use entity::fork_runs;
    let moves = fork_runs::Entity::find()
        .filter(fork_runs::Column::TenantId.eq(tenant))
        .filter(fork_runs::Column::Kind.eq(kind::MOVE))
        .all(main)
        .await?;
    let mut out: Vec<Option<String>> = Vec::new();
    for database in moves
        .into_iter()
        .flat_map(|run| [run.from_database, run.to_database])
    {
        let configured = match &database {
            Some(name) => state.config.tenant_databases.get(name).is_some(),
            None => true,
        };
        if database != *placed && configured && !out.contains(&database) {
            out.push(database);
        }
    }
    Ok(out)
}

/// Removes `tenant`'s placed rows from `database` (`None`: the main one, `main` being its pool)
/// in one transaction there, with a named database's copy of its catalog row; returns how many
/// rows went. Never called for the database the catalog places the tenant in.
pub async fn remove_copy(
    state: &AppState,
    main: &DatabaseConnection,
    database: &Option<String>,
    tenant: Uuid,
) -> anyhow::Result<u64> {
    let pool = placement::pool_or_main(&state.tenant_pools, main, database.as_deref())
        .await
        .map_err(AppError::into_anyhow)?;
    let tx = crate::access::begin_tenant_for_write(&pool, Some(tenant))
        .await
        .map_err(AppError::into_anyhow)?;
    let mut removed =
        transfer::remove(&tx, &transfer::placed_classes(&state.registry), tenant).await?;
    if database.is_some() {
        // A named database's copy of the catalog row (nothing else of the tenant is there).
        removed += tenants::Entity::delete_by_id(tenant)
            .exec(&tx)
            .await?
            .rows_affected;
    }
    tx.commit().await?;
    Ok(removed)
}

/// A move's counts for one class, as `ForkRun.counts` shows them.
fn class_count(class: &RowClass, phase: &str, synced: &transfer::Synced) -> ClassCount {
    ClassCount {
        class_name: class.name.to_string(),
        phase: phase.to_string(),
        rows: synced.rows,
        created: synced.inserted,
        matched: synced.rows - synced.inserted - synced.updated,
        updated: synced.updated,
        removed: synced.deleted,
        ..Default::default()
    }
}
