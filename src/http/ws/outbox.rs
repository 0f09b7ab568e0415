//! A socket's outgoing side: the bounded queue operations write to ([`Queue`], [`Outbox`]), the
//! close for a subscriber too slow for it, and the task that writes the queue to the socket.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt, stream::SplitSink};
use tokio::{
    sync::{Notify, Semaphore, SemaphorePermit, TryAcquireError, mpsc},
    task::JoinHandle,
};

use super::close;
use crate::metrics::Metrics;

/// Messages a socket may have waiting to be written, one by one or grouped in writes
/// ([`Outgoing::Frames`]). A subscription event that finds the queue full waits for room at most [`SLOW_CONSUMER_GRACE`]: a socket that took nothing for that
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

/// One write a socket's queue holds.
pub(super) enum Outgoing {
    /// A message.
    One(Message),
    /// Frames handed over together (the events one publication of a shared stream brought to
    /// this subscriber): the writer sends them with one flush, whichever worker thread runs it.
    Frames(Vec<Frame>),
}

/// A frame of [`Outgoing::Frames`], and for a live event when it was serialised (the delivery
/// metric, [`Metrics::delivered`]; `None` for a replay).
pub(super) type Frame = (Message, Option<Instant>);

impl Outgoing {
    /// Messages in this write: what it counts against [`OUTGOING_MESSAGES`].
    pub(super) fn messages(&self) -> usize {
        match self {
            Outgoing::One(_) => 1,
            Outgoing::Frames(frames) => frames.len(),
        }
    }
}

/// Most frames one write carries; a publication that brings more is handed over in several
/// (each must fit the queue's bound).
const FRAMES_PER_WRITE: usize = 64;

/// The sending side of a socket's queue: at most [`OUTGOING_MESSAGES`] messages wait in it,
/// however they are grouped into writes (room is counted in messages by a semaphore).
#[derive(Clone)]
pub(super) struct Queue {
    writes: mpsc::UnboundedSender<Outgoing>,
    room: Arc<Semaphore>,
    capacity: usize,
}

/// The receiving side of a socket's queue ([`spawn_writer`]): taking a write frees its room;
/// dropping it (the writer stopped) turns every sender away.
pub(super) struct Receiver {
    writes: mpsc::UnboundedReceiver<Outgoing>,
    room: Arc<Semaphore>,
}

impl Receiver {
    /// The next write, waiting for one; `None` once every sender is gone.
    pub(super) async fn recv(&mut self) -> Option<Outgoing> {
        let write = self.writes.recv().await?;
        self.room.add_permits(write.messages());
        Some(write)
    }

    /// The next write if one is queued.
    pub(super) fn try_recv(&mut self) -> Option<Outgoing> {
        let write = self.writes.try_recv().ok()?;
        self.room.add_permits(write.messages());
        Some(write)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.room.close();
    }
}

/// The socket's queue is gone (its writer stopped).
#[derive(Debug)]
pub(super) struct Gone;

impl Queue {
    /// A queue of [`OUTGOING_MESSAGES`] messages and its receiving side, for [`spawn_writer`].
    pub(super) fn new() -> (Queue, Receiver) {
        Self::bounded(OUTGOING_MESSAGES)
    }

    /// A queue of `capacity` messages.
    pub(super) fn bounded(capacity: usize) -> (Queue, Receiver) {
        let (writes, receiver) = mpsc::unbounded_channel();
        let room = Arc::new(Semaphore::new(capacity));
        let queue = Queue {
            writes,
            room: room.clone(),
            capacity,
        };
        (
            queue,
            Receiver {
                writes: receiver,
                room,
            },
        )
    }

    /// Queues `message`, waiting for room.
    pub(super) async fn send(&self, message: Message) -> Result<(), Gone> {
        self.send_write(Outgoing::One(message)).await
    }

    /// Queues `frames` in writes of at most [`FRAMES_PER_WRITE`], waiting for room.
    pub(super) async fn send_frames(&self, frames: Vec<Frame>) -> Result<(), Gone> {
        for write in writes_of(frames) {
            self.send_write(write).await?;
        }
        Ok(())
    }

    async fn send_write(&self, write: Outgoing) -> Result<(), Gone> {
        let room = self.room.acquire_many(self.room_for(&write)).await;
        self.enqueue(room.map_err(|_| Gone)?, write)
    }

    /// The room a write takes: its messages (never more than the whole queue).
    fn room_for(&self, write: &Outgoing) -> u32 {
        write.messages().min(self.capacity) as u32
    }

    /// Hands `write` over with the room taken for it (given back when the writer takes it).
    fn enqueue(&self, room: SemaphorePermit<'_>, write: Outgoing) -> Result<(), Gone> {
        room.forget();
        self.writes.send(write).map_err(|_| Gone)
    }
}

/// `frames` as writes of at most [`FRAMES_PER_WRITE`] frames each, in order (the usual
/// publication is one write, made without another allocation).
fn writes_of(mut frames: Vec<Frame>) -> impl Iterator<Item = Outgoing> + Send {
    std::iter::from_fn(move || {
        if frames.is_empty() {
            return None;
        }
        let rest = frames.split_off(frames.len().min(FRAMES_PER_WRITE));
        Some(Outgoing::Frames(std::mem::replace(&mut frames, rest)))
    })
}

/// Where an operation's messages go: the socket's queue, and the queue-jumping slow close.
#[derive(Clone)]
pub(super) struct Outbox {
    pub(super) out: Queue,
    pub(super) slow: Slow,
    /// [`SLOW_CONSUMER_GRACE`] (shorter in unit tests).
    pub(super) grace: Duration,
}

impl Outbox {
    /// Queues a live subscription event; false when the operation should stop (the socket is
    /// gone, or the queue stayed full for the grace and the socket is being closed as slow).
    pub(super) async fn push_event(&self, message: Message) -> bool {
        self.push(Outgoing::One(message)).await
    }

    /// Queues live events as writes of at most [`FRAMES_PER_WRITE`] frames
    /// ([`Outgoing::Frames`]); false as for [`Self::push_event`].
    pub(super) async fn push_events(&self, frames: Vec<Frame>) -> bool {
        for write in writes_of(frames) {
            if !self.push(write).await {
                return false;
            }
        }
        true
    }

    async fn push(&self, write: Outgoing) -> bool {
        let needed = self.out.room_for(&write);
        let room = match self.out.room.try_acquire_many(needed) {
            Ok(room) => room,
            Err(TryAcquireError::Closed) => return false,
            Err(TryAcquireError::NoPermits) => {
                match tokio::time::timeout(self.grace, self.out.room.acquire_many(needed)).await {
                    Ok(Ok(room)) => room,
                    Ok(Err(_)) => return false,
                    Err(_) => {
                        self.slow.raise();
                        return false;
                    }
                }
            }
        };
        self.out.enqueue(room, write).is_ok()
    }
}

/// Writes `outgoing` to the socket (the slow close first, once [`Slow`] is raised) until the
/// queue closes, a write fails, or a close was sent; then closes the socket. Live events that
/// reach the socket are counted in `metrics` ([`Metrics::delivered`]). Runs on the delivery
/// runtime ([`super::delivery`]).
pub(super) fn spawn_writer(
    delivery: &super::delivery::Delivery,
    mut sink: SplitSink<WebSocket, Message>,
    mut outgoing: Receiver,
    slow: Slow,
    metrics: Arc<Metrics>,
) -> JoinHandle<()> {
    delivery.spawn(async move {
        // When the live events fed since the last flush were serialised.
        let mut unflushed: Vec<Instant> = Vec::new();
        loop {
            let write = tokio::select! {
                biased;
                () = slow.raised() => Outgoing::One(slow_close()),
                write = outgoing.recv() => match write {
                    Some(write) => write,
                    None => break,
                },
            };
            // What else is queued already goes out with it: one flush (one write to the socket)
            // per burst, not per message, when a fork's events arrive faster than they drain.
            let (mut closing, mut failed) = feed(&mut sink, write, &mut unflushed).await;
            while !closing && !failed {
                let Some(next) = outgoing.try_recv() else {
                    break;
                };
                (closing, failed) = feed(&mut sink, next, &mut unflushed).await;
            }
            if failed || sink.flush().await.is_err() || closing {
                break;
            }
            let flushed = Instant::now();
            for serialised in unflushed.drain(..) {
                metrics.delivered(flushed.saturating_duration_since(serialised));
            }
        }
        let _ = sink.close().await;
    })
}

/// Hands one write to the socket's buffer, noting its live events in `unflushed`: (a close was
/// fed, feeding failed).
async fn feed(
    sink: &mut SplitSink<WebSocket, Message>,
    write: Outgoing,
    unflushed: &mut Vec<Instant>,
) -> (bool, bool) {
    match write {
        Outgoing::One(message) => feed_one(sink, message).await,
        Outgoing::Frames(frames) => {
            for (message, serialised) in frames {
                unflushed.extend(serialised);
                let ended = feed_one(sink, message).await;
                if ended != (false, false) {
                    return ended;
                }
            }
            (false, false)
        }
    }
}

async fn feed_one(sink: &mut SplitSink<WebSocket, Message>, message: Message) -> (bool, bool) {
    let closing = matches!(message, Message::Close(_));
    (closing, sink.feed(message).await.is_err())
}
