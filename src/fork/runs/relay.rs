//! What a running fork reports: the engine's progress goes to the hub at once and to the event
//! log (on PostgreSQL at each checkpoint, by background writes that never block the fork; on
//! SQLite after the fork's transaction), and the test failpoints act at the engine's checkpoints.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::{events, record};
use crate::{
    fork::{
        engine::{ApplicationDone, ClassCount, Progress, SkippedRow},
        hub::{EventKind, ForkEvent},
        upgrade::Conflict,
    },
    state::AppState,
};

/// Progress nobody hears (a plan).
pub(super) struct Silent;
impl Progress for Silent {
    fn phase_started(&mut self, _: &str) {}
    fn rows_copied(&mut self, _: &str, _: &ClassCount) {}
    fn row_skipped(&mut self, _: &str, _: &SkippedRow) {}
    fn phase_finished(&mut self, _: &str) {}
    fn checkpoint(&mut self, _: &str) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Streams events to the hub, and stores them (now on PostgreSQL, after the run on SQLite).
pub(super) struct RunProgress {
    pub(super) state: Arc<AppState>,
    /// The fork's pool: run record, events, heartbeats.
    pub(super) db: DatabaseConnection,
    pub(super) run_id: Uuid,
    pub(super) pending: Vec<ForkEvent>,
    pub(super) phase: Option<String>,
    /// When the current phase started (for the phase-duration metric).
    pub(super) phase_started: Option<std::time::Instant>,
    /// Event writes started during the run, awaited before the next flush so the stored
    /// events never have a gap once the run is recorded as ended.
    pub(super) inflight: Vec<tokio::task::JoinHandle<()>>,
    /// The fork failpoint (`FORKLIFT_FORK_FAILPOINT`), with the `failpoints` feature only.
    #[cfg(feature = "failpoints")]
    pub(super) failpoint: Option<String>,
}

impl RunProgress {
    /// The progress of `run_id`, stored through `db` (the fork's pool).
    pub(super) fn new(state: &Arc<AppState>, db: &DatabaseConnection, run_id: Uuid) -> Self {
        RunProgress {
            state: state.clone(),
            db: db.clone(),
            run_id,
            pending: Vec::new(),
            phase: None,
            phase_started: None,
            inflight: Vec::new(),
            #[cfg(feature = "failpoints")]
            failpoint: state.config.fork_failpoint.clone(),
        }
    }

    pub(super) fn emit(
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
    pub(super) async fn flush(&mut self) {
        for write in std::mem::take(&mut self.inflight) {
            let _ = write.await;
        }
        let events = std::mem::take(&mut self.pending);
        if let Err(err) = events::store(&self.db, &events).await {
            tracing::error!(fork.run_id = %self.run_id, error = %err, "could not store fork events");
        }
    }
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
                record::show_phase(&db, run_id, phase).await;
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
    fn application_forked(&mut self, _phase: &str, application: &ApplicationDone) {
        let detail = serde_json::to_value(application).unwrap_or_default();
        self.emit(
            EventKind::ApplicationForked,
            None,
            Some(application.index as i64),
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
        #[cfg(feature = "failpoints")]
        fork_failpoint(&self.state, self.failpoint.as_deref(), point)?;
        #[cfg(not(feature = "failpoints"))]
        let _ = point;
        Ok(())
    }
}

/// The fork failpoint (`FORKLIFT_FORK_FAILPOINT`) at `point`: fails the run there, or with
/// `pause:<point>:<ms>` holds it there (until the shutdown grace runs out, as a long phase
/// would be cut then). Compiled only with the `failpoints` feature.
#[cfg(feature = "failpoints")]
fn fork_failpoint(state: &AppState, failpoint: Option<&str>, point: &str) -> anyhow::Result<()> {
    let Some(failpoint) = failpoint else {
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
        let until = std::time::Instant::now()
            + std::time::Duration::from_millis(ms.parse::<u64>().unwrap_or(1000));
        tokio::task::block_in_place(|| {
            while std::time::Instant::now() < until && !super::task::grace_expired(state) {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        });
    }
    Ok(())
}

/// Forwards engine progress; on PostgreSQL events are stored as they happen.
pub(super) struct Relay<'a> {
    pub(super) inner: &'a mut RunProgress,
    pub(super) postgres: bool,
    pub(super) pending_flush: bool,
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
    fn application_forked(&mut self, phase: &str, application: &ApplicationDone) {
        self.inner.application_forked(phase, application);
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
                if let Err(err) = events::store(&db, &events).await {
                    tracing::error!(fork.run_id = %run_id, error = %err, "could not store fork events");
                }
            });
            self.inner.inflight.push(write);
            self.pending_flush = false;
        }
        self.inner.checkpoint(point)
    }
}
