//! Fork progress: the in-process event hub that subscribers read from.
//!
//! Each live run keeps its events so far and a broadcast channel; subscribing takes a snapshot
//! and a receiver under one lock, so a late subscriber gets every event exactly once and in
//! order. Runs that are not live here are replayed from the stored `fork_events`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

/// One event of a run's progress stream.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ForkEvent {
    pub run_id: Uuid,
    /// 1, 2, 3… within the run.
    pub seq: i64,
    pub kind: EventKind,
    pub phase: Option<String>,
    pub class_name: Option<String>,
    pub count: Option<i64>,
    pub detail: serde_json::Value,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// What happened (SPEC §3).
#[derive(Copy, Clone, Debug, Serialize, Deserialize, PartialEq, Eq, async_graphql::Enum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventKind {
    RunStarted,
    PhaseStarted,
    RowsCopied,
    RowSkipped,
    /// An upgrade left a change of the template unapplied: the tenant changed the same thing.
    RowConflict,
    PhaseFinished,
    RollingBack,
    RunFinished,
    RunFailed,
    RunRolledBack,
}

impl EventKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::RunStarted => "RUN_STARTED",
            EventKind::PhaseStarted => "PHASE_STARTED",
            EventKind::RowsCopied => "ROWS_COPIED",
            EventKind::RowSkipped => "ROW_SKIPPED",
            EventKind::RowConflict => "ROW_CONFLICT",
            EventKind::PhaseFinished => "PHASE_FINISHED",
            EventKind::RollingBack => "ROLLING_BACK",
            EventKind::RunFinished => "RUN_FINISHED",
            EventKind::RunFailed => "RUN_FAILED",
            EventKind::RunRolledBack => "RUN_ROLLED_BACK",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<EventKind> {
        serde_json::from_value(serde_json::Value::String(value.into())).ok()
    }

    /// True for the last event of a run.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            EventKind::RunFinished | EventKind::RunFailed | EventKind::RunRolledBack
        )
    }
}

struct LiveRun {
    history: Vec<ForkEvent>,
    sender: broadcast::Sender<ForkEvent>,
    finished: bool,
}

/// What a subscriber starts from.
pub struct Subscription {
    /// Events already emitted, in order.
    pub history: Vec<ForkEvent>,
    /// Live events after the history; `None` when the run has already ended.
    pub live: Option<broadcast::Receiver<ForkEvent>>,
}

/// The hub of live runs in this process.
#[derive(Clone)]
pub struct ProgressHub {
    runs: Arc<Mutex<HashMap<Uuid, LiveRun>>>,
    target_locks: Arc<Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>>,
    /// Rings with a run id when new events of that run were stored by any replica (from
    /// PostgreSQL `LISTEN`), or with the nil id when every follower should re-read (after the
    /// listener reconnected and may have missed notifications).
    doorbell: broadcast::Sender<Uuid>,
    /// Forks running in this process.
    active: Arc<std::sync::atomic::AtomicUsize>,
}

/// Counts a fork as running in this process while it lives.
pub struct ActiveFork(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for ActiveFork {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Default for ProgressHub {
    fn default() -> Self {
        Self {
            runs: Default::default(),
            target_locks: Default::default(),
            doorbell: broadcast::channel(1024).0,
            active: Default::default(),
        }
    }
}

impl ProgressHub {
    /// Announces stored events of `run_id` (nil: of every run) to local followers.
    pub fn ring(&self, run_id: Uuid) {
        let _ = self.doorbell.send(run_id);
    }

    /// Listens for [`ProgressHub::ring`].
    pub fn doorbell(&self) -> broadcast::Receiver<Uuid> {
        self.doorbell.subscribe()
    }

    /// Registers a run before its first event.
    pub fn open(&self, run_id: Uuid) {
        let (sender, _) = broadcast::channel(4096);
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.entry(run_id).or_insert(LiveRun {
            history: Vec::new(),
            sender,
            finished: false,
        });
    }

    /// Records and broadcasts an event, assigning its sequence number.
    pub fn publish(&self, mut event: ForkEvent) -> ForkEvent {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        let (sender, _) = broadcast::channel(4096);
        let run = runs.entry(event.run_id).or_insert(LiveRun {
            history: Vec::new(),
            sender,
            finished: false,
        });
        event.seq = run.history.len() as i64 + 1;
        run.history.push(event.clone());
        if event.kind.is_terminal() {
            run.finished = true;
        }
        let _ = run.sender.send(event.clone());
        event
    }

    /// Subscribes to a run that is live in this process; `None` when it is not.
    pub fn subscribe(&self, run_id: Uuid) -> Option<Subscription> {
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        let run = runs.get(&run_id)?;
        Some(Subscription {
            history: run.history.clone(),
            live: (!run.finished).then(|| run.sender.subscribe()),
        })
    }

    /// Forgets a finished run (its events are stored by then).
    pub fn close(&self, run_id: Uuid) {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.remove(&run_id);
    }

    /// Marks a fork as running here until the returned guard drops.
    pub fn fork_running(&self) -> ActiveFork {
        self.active
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        ActiveFork(self.active.clone())
    }

    /// Forks running in this process.
    pub fn running_forks(&self) -> usize {
        self.active.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The in-process lock that serializes forks of one target.
    pub fn target_lock(&self, target: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.target_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(target).or_default().clone()
    }
}
