//! Encode once: subscribers that ask for the same thing share one execution.
//!
//! Subscribers of a shared root field (`forkProgress`, whose events depend only on its
//! arguments and the caller's authority) that send the same operation — the same document up to
//! insignificant whitespace, commas and comments, the same operation name and variables — with
//! the same authority (platform admin or not, tenant, role, grants) share one [`Shared`] stream:
//! the operation runs once, each response is serialised once, and every socket gets the same
//! bytes. The WebSocket frame differs between sockets only by the subscription id, which is
//! spliced around the serialised payload once per distinct (protocol, id) and event.
//!
//! Each subscriber still passes the limits and the guard itself before joining (`operate` in
//! `ws.rs`); only the execution is shared. A subscriber that joins late replays the stream's log
//! from its beginning (waiting for its socket as long as needed), then follows it live, where
//! the socket's bounded queue applies ([`super::SLOW_CONSUMER_CLOSE`]). The execution stops
//! when its stream ends or when its last subscriber leaves.

use std::{
    collections::HashMap,
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex},
};

use async_graphql::parser::types::OperationType;
use axum::extract::ws::{Message, Utf8Bytes};
use futures::{FutureExt, StreamExt};
use serde_json::json;
use tokio::sync::watch;

use super::{Outbox, Protocol, text};
use crate::{
    http::{execution::Server, limits::Inspection},
    scope::RequestContext,
};

/// Root fields whose subscriptions are shared: their events depend only on the arguments and
/// on the caller's authority, never on who the caller is beyond it.
const SHARED_FIELDS: &[&str] = &["forkProgress"];

/// The executions being shared in one process, by key.
#[derive(Clone, Default)]
pub struct Streams(Arc<Mutex<HashMap<String, Arc<Shared>>>>);

impl Streams {
    /// Executions running now (each serves one or more subscribers).
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// True when nothing is shared right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One shared execution: its log of encoded responses.
pub struct Shared {
    log: watch::Sender<Log>,
}

#[derive(Default)]
struct Log {
    items: Vec<Arc<Item>>,
    /// Set when the stream ended normally: whether every response was free of errors.
    ended: Option<bool>,
}

enum Item {
    /// A response, serialised once.
    Next(Encoded),
    /// The operation failed before its first event (or panicked): the serialised errors; the
    /// stream ends here.
    Error(String),
}

/// A serialised response and the frames made of it so far, by (protocol, subscription id).
struct Encoded {
    payload: Box<str>,
    /// When it was serialised (the delivery metric counts from here).
    at: std::time::Instant,
    frames: Mutex<Vec<(Protocol, Box<str>, Utf8Bytes)>>,
}

/// Distinct (protocol, id) frames kept per event; further ids are spliced for each socket.
const FRAMES_KEPT: usize = 8;

impl Encoded {
    /// The `next` (or legacy `data`) message of subscription `id` carrying this response.
    fn frame(&self, protocol: Protocol, id: &str) -> Message {
        let mut frames = self.frames.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, _, bytes)) = frames.iter().find(|(p, i, _)| *p == protocol && &**i == id) {
            return Message::Text(bytes.clone());
        }
        let bytes = Utf8Bytes::from(splice(protocol, id, &self.payload));
        if frames.len() < FRAMES_KEPT {
            frames.push((protocol, id.into(), bytes.clone()));
        }
        Message::Text(bytes)
    }
}

/// `{"type":"next","id":<id>,"payload":<payload>}` around an already serialised payload.
fn splice(protocol: Protocol, id: &str, payload: &str) -> String {
    let kind = match protocol {
        Protocol::TransportWs => "next",
        Protocol::Legacy => "data",
    };
    let id = serde_json::to_string(id).unwrap_or_else(|_| "\"\"".into());
    let mut frame = String::with_capacity(payload.len() + id.len() + 32);
    frame.push_str("{\"type\":\"");
    frame.push_str(kind);
    frame.push_str("\",\"id\":");
    frame.push_str(&id);
    frame.push_str(",\"payload\":");
    frame.push_str(payload);
    frame.push('}');
    frame
}

/// The sharing key of an operation, or `None` when it is not shared (not a subscription of
/// [`SHARED_FIELDS`] only, or no query text).
pub(super) fn key(
    request: &async_graphql::Request,
    inspection: &Inspection,
    ctx: &RequestContext,
) -> Option<String> {
    if inspection.kind != Some(OperationType::Subscription)
        || inspection.root_fields.is_empty()
        || !inspection
            .root_fields
            .iter()
            .all(|f| SHARED_FIELDS.contains(&f.as_str()))
        || request.query.trim().is_empty()
    {
        return None;
    }
    let variables = serde_json::to_string(&request.variables).ok()?;
    let scope = match ctx.scope() {
        Ok(crate::scope::Scope::Tenant(t)) => t.id.to_string(),
        Ok(crate::scope::Scope::AllTenants) => "*".into(),
        Err(_) => String::new(),
    };
    let mut grants = ctx.principal.grants.clone();
    grants.sort();
    Some(format!(
        "{}\u{0}{}\u{0}{}\u{0}{}|{}|{:?}|{}",
        normalize(&request.query),
        request.operation_name.as_deref().unwrap_or_default(),
        variables,
        ctx.principal.is_admin,
        scope,
        ctx.role,
        grants.join(","),
    ))
}

/// GraphQL text with insignificant whitespace, commas and comments removed (string literals
/// kept exactly), so that the same document sent by differently formatted clients shares.
pub fn normalize(query: &str) -> String {
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '$' || c == '.' || c == '-';
    let mut out = String::with_capacity(query.len());
    let mut chars = query.chars().peekable();
    let mut gap = false;
    while let Some(c) = chars.next() {
        if c.is_whitespace() || c == ',' || c == '\u{feff}' {
            gap = true;
            continue;
        }
        if c == '#' {
            for c in chars.by_ref() {
                if c == '\n' || c == '\r' {
                    break;
                }
            }
            gap = true;
            continue;
        }
        let last = out.chars().last();
        if gap && last.is_some_and(|l| (word(l) && word(c)) || (l == '"' && c == '"')) {
            out.push(' ');
        }
        gap = false;
        out.push(c);
        if c != '"' {
            continue;
        }
        // A string: `"…"` with escapes, or a block string `"""…"""`; copied as it is.
        let mut rest = chars.clone();
        if rest.next() == Some('"') && rest.next() == Some('"') {
            out.push_str("\"\"");
            chars.next();
            chars.next();
            let mut quotes = 0;
            while let Some(c) = chars.next() {
                out.push(c);
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        out.push(next);
                    }
                    quotes = 0;
                    continue;
                }
                quotes = if c == '"' { quotes + 1 } else { 0 };
                if quotes == 3 {
                    break;
                }
            }
        } else {
            while let Some(c) = chars.next() {
                out.push(c);
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        out.push(next);
                    }
                    continue;
                }
                if c == '"' || c == '\n' {
                    break;
                }
            }
        }
    }
    out
}

/// Joins subscription `id` of one socket to the shared execution of `key`, starting it with
/// this subscriber's request and context when nobody runs it yet (on the server's runtime). The
/// returned [`Follow`] carries the events into the socket; the caller runs it on the delivery
/// runtime ([`super::delivery`]).
#[allow(clippy::too_many_arguments)]
pub(super) fn subscribe(
    server: &Server,
    protocol: Protocol,
    id: &str,
    key: String,
    request: async_graphql::Request,
    ctx: RequestContext,
    outbox: &Outbox,
    label: &str,
) -> Follow {
    let started = std::time::Instant::now();
    let log = {
        let streams = &server.state.hub.streams;
        let mut map = streams.0.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&key) {
            Some(shared) => shared.log.subscribe(),
            None => {
                let (sender, receiver) = watch::channel(Log::default());
                let shared = Arc::new(Shared { log: sender });
                map.insert(key.clone(), shared.clone());
                tokio::spawn(drive(server.clone(), key, shared, request, ctx));
                receiver
            }
        }
    };
    Follow {
        server: server.clone(),
        protocol,
        id: id.to_string(),
        outbox: outbox.clone(),
        label: label.to_string(),
        started,
        log,
    }
}

/// A subscriber joined to a shared execution, with what its follow loop needs, owned (it runs
/// on the delivery runtime: [`Follow::run`]).
pub(super) struct Follow {
    server: Server,
    protocol: Protocol,
    id: String,
    outbox: Outbox,
    label: String,
    started: std::time::Instant,
    log: watch::Receiver<Log>,
}

impl Follow {
    /// Replays the log from its beginning, then follows it live into the socket's queue, until
    /// the stream ends, fails, or the socket cannot take more.
    pub(super) async fn run(self) {
        let Follow {
            server,
            protocol,
            id,
            outbox,
            label,
            started,
            mut log,
        } = self;
        let (id, label) = (id.as_str(), label.as_str());
        // What was already there is a replay: it waits for the socket. What comes after is live:
        // a socket that cannot take it is too slow.
        let replay = log.borrow().items.len();
        let out = &outbox.out;
        let mut cursor = 0;
        let mut closed = false;
        loop {
            // The events this wake brought go to the socket as one write; a replay (what the log
            // held when this subscriber joined) waits for room, live events are pushed. Frames
            // are taken while the log is borrowed (a read lock held for a few pointer copies).
            let live = cursor >= replay;
            let (frames, failed, ended) = {
                let log = log.borrow_and_update();
                let mut frames = Vec::with_capacity(log.items.len().saturating_sub(cursor));
                let mut failed = None;
                for item in &log.items[cursor.min(log.items.len())..] {
                    cursor += 1;
                    match &**item {
                        Item::Next(encoded) => {
                            let serialised = live.then_some(encoded.at);
                            frames.push((encoded.frame(protocol, id), serialised));
                        }
                        Item::Error(errors) => {
                            failed = Some(errors.clone());
                            break;
                        }
                    }
                }
                (frames, failed, log.ended)
            };
            let delivered = if live {
                outbox.push_events(frames).await
            } else {
                out.send_frames(frames).await.is_ok()
            };
            if !delivered {
                return;
            }
            if let Some(errors) = failed {
                let errors = serde_json::from_str(&errors).unwrap_or_default();
                super::send_not_started(out, protocol, id, errors).await;
                server
                    .state
                    .metrics
                    .request(label, false, started.elapsed());
                return;
            }
            if let Some(ok) = ended {
                server.state.metrics.request(label, ok, started.elapsed());
                let _ = out.send(text(json!({"type": "complete", "id": id}))).await;
                return;
            }
            if closed {
                return; // the execution went away without an end: nothing more will come
            }
            if log.changed().await.is_err() {
                closed = true;
            }
        }
    }
}

/// Runs one shared execution to its end (or until nobody listens), appending every response,
/// serialised once, to the log.
async fn drive(
    server: Server,
    key: String,
    shared: Arc<Shared>,
    request: async_graphql::Request,
    ctx: RequestContext,
) {
    let (request, field_errors) = crate::http::execution::with_request_data(&server, ctx, request);
    let mut responses = server.schema.execute_stream(request).boxed();
    let streams = server.state.hub.streams.clone();
    let unregister = |only_if_unwatched: bool| {
        let mut map = streams.0.lock().unwrap_or_else(|p| p.into_inner());
        if only_if_unwatched && shared.log.receiver_count() > 0 {
            return false;
        }
        if map.get(&key).is_some_and(|s| Arc::ptr_eq(s, &shared)) {
            map.remove(&key);
        }
        true
    };
    let mut first = true;
    let mut ok = true;
    let mut batch = Batch::default();
    loop {
        let next = tokio::select! {
            next = AssertUnwindSafe(responses.next()).catch_unwind() => next,
            _ = shared.log.closed() => {
                if unregister(true) {
                    return;
                }
                continue;
            }
            () = batch.due() => {
                batch.publish(&shared);
                continue;
            }
        };
        let mut response = match next {
            Ok(Some(response)) => response,
            Ok(None) => break,
            Err(_) => {
                // A panic (the hook logged it): this stream ends with a coded error.
                let errors =
                    json!([{"message": "internal error", "extensions": {"code": "INTERNAL"}}]);
                unregister(false);
                batch.publish(&shared);
                shared
                    .log
                    .send_modify(|log| log.items.push(Arc::new(Item::Error(errors.to_string()))));
                return;
            }
        };
        // Before the field errors of an event are added: errors here mean the subscription did
        // not start, and the protocol answers with `error`. An event's field errors go in `next`.
        let not_started =
            first && response.data == async_graphql::Value::Null && !response.errors.is_empty();
        field_errors.finish(&mut response);
        for error in &mut response.errors {
            crate::http::execution::with_code(error);
        }
        ok &= response.errors.is_empty();
        if not_started {
            let errors = serde_json::to_string(&response.errors).unwrap_or_else(|_| "[]".into());
            unregister(false);
            shared
                .log
                .send_modify(|log| log.items.push(Arc::new(Item::Error(errors))));
            return;
        }
        first = false;
        let payload = serde_json::to_string(&response).unwrap_or_default();
        batch.add(
            Arc::new(Item::Next(Encoded {
                payload: payload.into(),
                at: std::time::Instant::now(),
                frames: Mutex::default(),
            })),
            &shared,
        );
    }
    unregister(false);
    batch.publish(&shared);
    shared.log.send_modify(|log| log.ended = Some(ok));
}

/// How long a shared execution may hold events back to hand them to its subscribers together.
/// An event after a quiet spell goes out at once; while a fork streams events faster than this,
/// they go out at most once per window. Each publication wakes every subscriber and costs a
/// write per socket, so a burst of a fork's ~100 events reaches 2,000 sockets in a handful of
/// writes each instead of ~100, for at most this much added delay.
pub const DELIVERY_WINDOW: std::time::Duration = std::time::Duration::from_millis(20);

/// Events of a shared execution not yet published to its log ([`DELIVERY_WINDOW`]).
#[derive(Default)]
struct Batch {
    pending: Vec<Arc<Item>>,
    /// When the log was last published to.
    last: Option<tokio::time::Instant>,
}

impl Batch {
    /// Adds an event: published at once after a quiet spell, else held for the window's end.
    fn add(&mut self, item: Arc<Item>, shared: &Shared) {
        self.pending.push(item);
        if self
            .last
            .is_none_or(|last| last.elapsed() >= DELIVERY_WINDOW)
        {
            self.publish(shared);
        }
    }

    /// Publishes what is pending, if anything, waking the subscribers once.
    fn publish(&mut self, shared: &Shared) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        shared.log.send_modify(|log| log.items.extend(pending));
        self.last = Some(tokio::time::Instant::now());
    }

    /// Resolves when held events are due; never while nothing is held.
    async fn due(&self) {
        match (self.pending.is_empty(), self.last) {
            (false, Some(last)) => tokio::time::sleep_until(last + DELIVERY_WINDOW).await,
            _ => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizing_keeps_meaning_and_drops_formatting() {
        let a = "subscription($id: ID!) {\n  forkProgress(runId: $id) { seq, kind } # c\n}";
        let b = "subscription ($id:ID!){forkProgress(runId:$id){seq kind}}";
        assert_eq!(normalize(a), normalize(b));
        assert_ne!(
            normalize("{ a(x: \"a  b\") }"),
            normalize("{ a(x: \"a b\") }")
        );
        assert_ne!(normalize("{ a b }"), normalize("{ ab }"));
        assert_eq!(normalize("{ a(x: \"\\\" #\") }"), "{a(x:\"\\\" #\")}");
        assert_ne!(
            normalize("{ a(x: \"\" y: \"z\") }"),
            normalize("{ a(x: \"\"\"y: \"z\") }")
        );
        assert_eq!(
            normalize("{ a(x: \"\"\"  q \"\"\") }"),
            "{a(x:\"\"\"  q \"\"\")}"
        );
    }

    #[test]
    fn frames_differ_only_by_id() {
        let encoded = Encoded {
            payload: r#"{"data":{"x":1}}"#.into(),
            at: std::time::Instant::now(),
            frames: Mutex::default(),
        };
        let Message::Text(one) = encoded.frame(Protocol::TransportWs, "1") else {
            panic!("text");
        };
        let Message::Text(again) = encoded.frame(Protocol::TransportWs, "1") else {
            panic!("text");
        };
        let Message::Text(legacy) = encoded.frame(Protocol::Legacy, "a\"b") else {
            panic!("text");
        };
        assert_eq!(
            one.as_str(),
            r#"{"type":"next","id":"1","payload":{"data":{"x":1}}}"#
        );
        assert_eq!(
            one.as_str().as_ptr(),
            again.as_str().as_ptr(),
            "the same bytes"
        );
        let legacy: serde_json::Value = serde_json::from_str(legacy.as_str()).expect("json");
        assert_eq!(
            legacy,
            json!({"type": "data", "id": "a\"b", "payload": {"data": {"x": 1}}})
        );
    }
}
