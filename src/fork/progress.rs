//! The `forkProgress` stream: events so far, then live ones, in order, ending with the run.

use std::{sync::Arc, time::Duration};

use futures::Stream;
use sea_orm::EntityTrait;
use tokio::sync::{broadcast::error::RecvError, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

use crate::{
    error::{AppError, AppResult},
    fork::{
        hub::{Follower, ForkEvent, Subscription},
        runs,
    },
    state::AppState,
};

/// How often a run that is live in another process is re-read when no notification came: on
/// PostgreSQL the doorbell (`LISTEN`) wakes followers at once, this is the safety net.
const POLL: Duration = Duration::from_millis(1000);

/// The event stream of `run_id` after sequence `after` (0 for the whole run); `NOT_FOUND` for
/// an unknown run. A client that lost its socket resumes with the last sequence it saw.
///
/// A run live in this process is read from the hub. Any other run is read from the stored
/// events by one follower per run in this process ([`ProgressHub::follow`]), however many
/// streams watch it: the database is read once per replica, not once per subscriber.
///
/// [`ProgressHub::follow`]: crate::fork::hub::ProgressHub::follow
pub async fn stream(
    state: Arc<AppState>,
    run_id: Uuid,
    after: i64,
) -> AppResult<impl Stream<Item = ForkEvent> + Send + 'static> {
    let (tx, rx) = mpsc::channel::<ForkEvent>(1024);
    if let Some(sub) = state.hub.subscribe(run_id) {
        tokio::spawn(relay(sub, after, tx));
        return Ok(ReceiverStream::new(rx));
    }
    if entity::fork_runs::Entity::find_by_id(run_id)
        .one(&state.db)
        .await?
        .is_none()
    {
        return Err(AppError::NotFound("ForkRun".into()));
    }
    let (sub, follower) = state.hub.follow(run_id);
    if let Some(follower) = follower {
        tokio::spawn(follow(state.clone(), follower));
    }
    tokio::spawn(relay(sub, after, tx));
    Ok(ReceiverStream::new(rx))
}

/// Sends one subscriber the events of `sub` after `after`, in order, once each, until the run's
/// terminal event; when the receiver lagged, the gap is filled from the run's history.
async fn relay(mut sub: Subscription, after: i64, tx: mpsc::Sender<ForkEvent>) {
    let mut last = after;
    for event in std::mem::take(&mut sub.history)
        .into_iter()
        .filter(|e| e.seq > after)
    {
        last = event.seq;
        let terminal = event.kind.is_terminal();
        if tx.send(event).await.is_err() || terminal {
            return;
        }
    }
    let Some(mut live) = sub.live.take() else {
        return;
    };
    loop {
        let received = tokio::select! {
            received = live.recv() => received,
            // The subscriber left: let go of the run (its follower may stop).
            _ = tx.closed() => return,
        };
        let batch = match received {
            Ok(event) => vec![event],
            // Too slow to keep up: fill the gap from the history.
            Err(RecvError::Lagged(_)) => sub.after(last),
            Err(RecvError::Closed) => return,
        };
        for event in batch {
            if event.seq <= last {
                continue;
            }
            last = event.seq;
            let terminal = event.kind.is_terminal();
            if tx.send(event).await.is_err() || terminal {
                return;
            }
        }
    }
}

/// The follower of one run in this process: replays the stored events and follows new ones while
/// the run goes on elsewhere, woken by the doorbell when a replica stores new ones (with a
/// one-second poll as a safety net). Ends with the run, or when nobody listens any more.
async fn follow(state: Arc<AppState>, follower: Follower) {
    let run_id = follower.run_id();
    let mut doorbell = state.hub.doorbell();
    let mut last = 0;
    loop {
        let events = match runs::events::after(&state.db, run_id, last).await {
            Ok(events) => events,
            Err(err) => {
                tracing::error!(fork.run_id = %run_id, error = %err, "cannot read fork events");
                return;
            }
        };
        for event in events {
            if event.seq != last + 1 {
                break; // wait for the gap to be stored
            }
            last = event.seq;
            let terminal = event.kind.is_terminal();
            follower.publish(event);
            if terminal {
                return;
            }
        }
        let run = entity::fork_runs::Entity::find_by_id(run_id)
            .one(&state.db)
            .await;
        let ended = match run {
            Ok(Some(run)) => !run.status.is_live(),
            _ => true,
        };
        if ended {
            // Whatever was stored last (an abandoned run ends with `RUN_FAILED`, stored in the
            // same transaction that marked it), then the streams end.
            let events = runs::events::after(&state.db, run_id, last)
                .await
                .unwrap_or_default();
            for event in events {
                follower.publish(event);
            }
            return;
        }
        if follower.abandoned() {
            return;
        }
        let wait = async {
            loop {
                match doorbell.recv().await {
                    Ok(id) if id == run_id || id.is_nil() => return,
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => return,
                    Err(RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        };
        let _ = tokio::time::timeout(POLL, wait).await;
    }
}
