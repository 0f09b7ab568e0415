//! A socket's outgoing side: the bounded queue operations write to ([`Outbox`]), the close for
//! a subscriber too slow for it, and the task that writes the queue to the socket.

use std::{sync::Arc, time::Duration};

use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt, stream::SplitSink};
use tokio::{
    sync::{Notify, mpsc},
    task::JoinHandle,
};

use super::close;

/// Messages a socket may have waiting to be written. A subscription event that finds the queue
/// full waits for room at most [`SLOW_CONSUMER_GRACE`]: a socket that took nothing for that
/// long is a client reading slower than events come, and it is closed with
/// [`SLOW_CONSUMER_CLOSE`] rather than buffering without bound or holding anyone back (every
/// subscriber waits alone; the shared execution never waits for it). The client reconnects and
/// resumes with `forkProgress(runId, after: <last seq>)`.
pub const OUTGOING_MESSAGES: usize = 256;

/// How long a live event waits for room in a full queue before the socket is closed as slow.
/// A burst larger than the queue is not slowness; a socket that drains nothing for this long is.
pub const SLOW_CONSUMER_GRACE: Duration = Duration::from_secs(1);

/// The close code for a subscriber that fell [`OUTGOING_MESSAGES`] behind.
pub const SLOW_CONSUMER_CLOSE: u16 = 4029;

/// Raised when a subscriber of the socket fell [`OUTGOING_MESSAGES`] behind: the writer then
/// sends the [`SLOW_CONSUMER_CLOSE`] close ahead of everything queued. One per socket, shared
/// by its operations (a signal, not a second queue: an idle socket keeps no buffer for it).
#[derive(Clone, Default)]
pub(super) struct Slow(Arc<Notify>);

impl Slow {
    /// Asks the writer to close the socket as slow.
    pub(super) fn raise(&self) {
        self.0.notify_one();
    }

    /// Resolves once the socket was found slow.
    pub(super) async fn raised(&self) {
        self.0.notified().await;
    }
}

/// The close a slow socket gets.
fn slow_close() -> Message {
    close(
        SLOW_CONSUMER_CLOSE,
        "Subscriber too slow: reconnect and resume with `after`",
    )
}

/// Where an operation's messages go: the socket's queue, and the queue-jumping slow close.
pub(super) struct Outbox {
    pub(super) out: mpsc::Sender<Message>,
    pub(super) slow: Slow,
    /// [`SLOW_CONSUMER_GRACE`] (shorter in unit tests).
    pub(super) grace: Duration,
}

impl Outbox {
    /// Queues a live subscription event; false when the operation should stop (the socket is
    /// gone, or the queue stayed full for the grace and the socket is being closed as slow).
    pub(super) async fn push_event(&self, message: Message) -> bool {
        let message = match self.out.try_send(message) {
            Ok(()) => return true,
            Err(mpsc::error::TrySendError::Closed(_)) => return false,
            Err(mpsc::error::TrySendError::Full(message)) => message,
        };
        match tokio::time::timeout(self.grace, self.out.send(message)).await {
            Ok(sent) => sent.is_ok(),
            Err(_) => {
                self.slow.raise();
                false
            }
        }
    }
}

/// Writes `outgoing` to the socket (the slow close first, once [`Slow`] is raised) until the
/// queue closes, a write fails, or a close was sent; then closes the socket.
pub(super) fn spawn_writer(
    mut sink: SplitSink<WebSocket, Message>,
    mut outgoing: mpsc::Receiver<Message>,
    slow: Slow,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                biased;
                () = slow.raised() => slow_close(),
                message = outgoing.recv() => match message {
                    Some(message) => message,
                    None => break,
                },
            };
            // What else is queued already goes out with it: one flush (one write to the socket)
            // per burst, not per message, when a fork's events arrive faster than they drain.
            let mut closing = matches!(message, Message::Close(_));
            let mut failed = sink.feed(message).await.is_err();
            while !closing && !failed {
                let Ok(next) = outgoing.try_recv() else { break };
                closing = matches!(next, Message::Close(_));
                failed = sink.feed(next).await.is_err();
            }
            if failed || sink.flush().await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    })
}
