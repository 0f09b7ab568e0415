//! Fork progress: the in-process event hub that subscribers read from.
//!
//! Each live run keeps its events so far and a broadcast channel; subscribing takes a snapshot
//! and a receiver under one lock, so a late subscriber gets every event exactly once and in
//! order. Runs that are not live here are replayed from the stored `fork_events` by one shared
//! follower per run in this process ([`ProgressHub::follow`]), however many subscribers watch it.

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

/// What happened (`docs/api.md`).
#[derive(Copy, Clone, Debug, Serialize, Deserialize, PartialEq, Eq, async_graphql::Enum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventKind {
    RunStarted,
    PhaseStarted,
    RowsCopied,
    /// Phase 1 finished one application (of `detail.total`): the spine is forked application
    /// by application.
    ApplicationForked,
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
            EventKind::ApplicationForked => "APPLICATION_FORKED",
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

/// Followed runs, each with the generation of its follower (a follower that left never removes
/// its successor).
type Followed = Arc<Mutex<HashMap<Uuid, (LiveRun, u64)>>>;

static FOLLOWER_GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

struct LiveRun {
    /// Shared with subscribers, which read it again to fill a gap when they lag, even after
    /// the run left the hub.
    history: Arc<Mutex<Vec<ForkEvent>>>,
    sender: broadcast::Sender<ForkEvent>,
    finished: bool,
}

/// Events a live subscriber may fall behind a run before it reads the gap from the history.
const LIVE_EVENTS: usize = 4096;

impl LiveRun {
    fn new() -> Self {
        Self {
            history: Default::default(),
            sender: broadcast::channel(LIVE_EVENTS).0,
            finished: false,
        }
    }
}

/// What a subscriber starts from.
pub struct Subscription {
    /// Events already emitted, in order.
    pub history: Vec<ForkEvent>,
    /// The run's whole history as it grows ([`Subscription::after`]).
    log: Arc<Mutex<Vec<ForkEvent>>>,
    /// Live events after the history; `None` when the run has already ended.
    pub live: Option<broadcast::Receiver<ForkEvent>>,
}

impl Subscription {
    /// The run's events after sequence `after`, as recorded so far (a subscriber that lagged
    /// behind the broadcast fills its gap from here).
    pub fn after(&self, after: i64) -> Vec<ForkEvent> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let start = log.partition_point(|e| e.seq <= after);
        log[start..].to_vec()
    }
}

/// The hub of live runs in this process.
#[derive(Clone)]
pub struct ProgressHub {
    runs: Arc<Mutex<HashMap<Uuid, LiveRun>>>,
    /// Runs live elsewhere (another replica) or already ended, read from the stored events by
    /// one follower each: the same history and broadcast shape as a local run.
    followed: Followed,
    target_locks: Arc<Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>>,
    /// Rings with a run id when new events of that run were stored by any replica (from
    /// PostgreSQL `LISTEN`), or with the nil id when every follower should re-read (after the
    /// listener reconnected and may have missed notifications).
    doorbell: broadcast::Sender<Uuid>,
    /// Forks running in this process.
    active: Arc<std::sync::atomic::AtomicUsize>,
    /// Subscription executions shared by sockets that asked for the same thing
    /// ([`crate::http::ws::shared`]): the encode-once step of delivery.
    pub streams: crate::http::ws::shared::Streams,
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
            followed: Default::default(),
            target_locks: Default::default(),
            doorbell: broadcast::channel(1024).0,
            active: Default::default(),
            streams: Default::default(),
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
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.entry(run_id).or_insert_with(LiveRun::new);
    }

    /// Records and broadcasts an event, assigning its sequence number.
    pub fn publish(&self, mut event: ForkEvent) -> ForkEvent {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        // Made only when the run is new: a channel allocates all its slots at once.
        let run = runs.entry(event.run_id).or_insert_with(LiveRun::new);
        let mut history = run.history.lock().unwrap_or_else(|p| p.into_inner());
        event.seq = history.len() as i64 + 1;
        history.push(event.clone());
        drop(history);
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
            history: run
                .history
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            log: run.history.clone(),
            live: (!run.finished).then(|| run.sender.subscribe()),
        })
    }

    /// Subscribes to the stored events of `run_id` through this process's one follower of that
    /// run. The second value is `Some` when no follower existed: the caller must then run it
    /// ([`Follower`] publishes what it reads and leaves when the run ends or nobody listens).
    pub fn follow(&self, run_id: Uuid) -> (Subscription, Option<Follower>) {
        let mut followed = self.followed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((run, _)) = followed.get(&run_id) {
            return (
                Subscription {
                    history: run
                        .history
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone(),
                    log: run.history.clone(),
                    live: Some(run.sender.subscribe()),
                },
                None,
            );
        }
        let (sender, receiver) = broadcast::channel(LIVE_EVENTS);
        let history: Arc<Mutex<Vec<ForkEvent>>> = Default::default();
        let generation = FOLLOWER_GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        followed.insert(
            run_id,
            (
                LiveRun {
                    history: history.clone(),
                    sender,
                    finished: false,
                },
                generation,
            ),
        );
        let subscription = Subscription {
            history: Vec::new(),
            log: history,
            live: Some(receiver),
        };
        let follower = Follower {
            followed: self.followed.clone(),
            run_id,
            generation,
        };
        (subscription, Some(follower))
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

/// The one reader of a run's stored events in this process: what it publishes reaches every
/// subscriber that [`ProgressHub::follow`]ed the run. Dropping it ends their streams.
pub struct Follower {
    followed: Followed,
    run_id: Uuid,
    generation: u64,
}

impl Follower {
    /// The run followed.
    pub fn run_id(&self) -> Uuid {
        self.run_id
    }

    /// Records and broadcasts a stored event (its sequence is the stored one).
    pub fn publish(&self, event: ForkEvent) {
        let mut followed = self.followed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((run, generation)) = followed.get_mut(&self.run_id)
            && *generation == self.generation
        {
            run.history
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(event.clone());
            let _ = run.sender.send(event);
        }
    }

    /// True (and the follower is unregistered) when nobody listens any more; decided under the
    /// hub's lock, so a subscriber arriving at the same moment gets a new follower instead.
    pub fn abandoned(&self) -> bool {
        let mut followed = self.followed.lock().unwrap_or_else(|p| p.into_inner());
        match followed.get(&self.run_id) {
            Some((run, generation)) if *generation == self.generation => {
                if run.sender.receiver_count() > 0 {
                    return false;
                }
                followed.remove(&self.run_id);
                true
            }
            _ => true,
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let mut followed = self.followed.lock().unwrap_or_else(|p| p.into_inner());
        if followed
            .get(&self.run_id)
            .is_some_and(|(_, generation)| *generation == self.generation)
        {
            followed.remove(&self.run_id);
        }
    }
}
