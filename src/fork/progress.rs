//! The `forkProgress` stream: events so far, then live ones, in order, ending with the run.

use std::{sync::Arc, time::Duration};

use futures::Stream;
use sea_orm::EntityTrait;
use tokio::sync::{broadcast::error::RecvError, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

use crate::{
    error::{AppError, AppResult},
    fork::{hub::ForkEvent, runs},
    state::AppState,
};

/// How often a run that is live in another process is re-read when no notification came: on
/// PostgreSQL the doorbell (`LISTEN`) wakes followers at once, this is the safety net.
const POLL: Duration = Duration::from_millis(1000);

/// The event stream of `run_id` after sequence `after` (0 for the whole run); `NOT_FOUND` for
/// an unknown run. A client that lost its socket resumes with the last sequence it saw.
pub async fn stream(
    state: Arc<AppState>,
    run_id: Uuid,
    after: i64,
) -> AppResult<impl Stream<Item = ForkEvent> + Send + 'static> {
    let (tx, rx) = mpsc::channel::<ForkEvent>(1024);
    if let Some(sub) = state.hub.subscribe(run_id) {
        tokio::spawn(async move {
            let mut last = after;
            for event in sub.history.into_iter().filter(|e| e.seq > after) {
                last = event.seq;
                if tx.send(event).await.is_err() {
                    return;
                }
            }
            let Some(mut live) = sub.live else { return };
            loop {
                match live.recv().await {
                    Ok(event) => {
                        if event.seq <= last {
                            continue;
                        }
                        last = event.seq;
                        let terminal = event.kind.is_terminal();
                        if tx.send(event).await.is_err() || terminal {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        // Too slow to keep up: fill the gap from the hub's history.
                        if let Some(again) = state.hub.subscribe(run_id) {
                            let from = last;
                            for event in again.history.into_iter().filter(|e| e.seq > from) {
                                last = event.seq;
                                let terminal = event.kind.is_terminal();
                                if tx.send(event).await.is_err() || terminal {
                                    return;
                                }
                            }
                        }
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        return Ok(ReceiverStream::new(rx));
    }
    if entity::fork_runs::Entity::find_by_id(run_id)
        .one(&state.db)
        .await?
        .is_none()
    {
        return Err(AppError::NotFound("ForkRun".into()));
    }
    tokio::spawn(async move {
        // Not live here: replay the stored events, and follow them while the run goes on
        // elsewhere, woken by the doorbell when another replica stores new ones.
        let mut doorbell = state.hub.doorbell();
        let mut last = after;
        loop {
            let events = match runs::stored_events_after(&state.db, run_id, last).await {
                Ok(events) => events,
                Err(err) => {
                    tracing::error!(fork.run_id = %run_id, error = %err, "cannot read fork events");
                    return;
                }
            };
            let from = last;
            for event in events.into_iter().filter(|e| e.seq > from) {
                if event.seq != last + 1 {
                    break; // wait for the gap to be stored
                }
                last = event.seq;
                let terminal = event.kind.is_terminal();
                if tx.send(event).await.is_err() || terminal {
                    return;
                }
            }
            let run = entity::fork_runs::Entity::find_by_id(run_id)
                .one(&state.db)
                .await;
            let ended = match run {
                Ok(Some(run)) => !matches!(run.status.as_str(), "PENDING" | "RUNNING"),
                _ => true,
            };
            if ended {
                // Whatever was stored last (an abandoned run ends with `RUN_FAILED`, stored in
                // the same transaction that marked it), then the stream ends.
                let events = runs::stored_events_after(&state.db, run_id, last)
                    .await
                    .unwrap_or_default();
                for event in events.into_iter().filter(|e| e.seq > last) {
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
                return;
            }
            if tx.is_closed() {
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
    });
    Ok(ReceiverStream::new(rx))
}
