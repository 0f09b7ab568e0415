//! GraphQL over WebSocket: `graphql-transport-ws` and the legacy `graphql-ws`
//! (subscriptions-transport-ws) protocol, authenticated from the `connection_init` payload.
//!
//! `graphql-transport-ws` rules: no `connection_init` within the init timeout → close 4408;
//! a refused token or tenant → 4403; `subscribe` before the ack → 4401; a second init → 4429;
//! a duplicate subscription id → 4409; an unparsable or unknown message → 4400. Forklift adds:
//! the token expired → 4403; a subscriber whose [`OUTGOING_MESSAGES`] queue stayed full for
//! [`SLOW_CONSUMER_GRACE`] → [`SLOW_CONSUMER_CLOSE`] (4029; resume with
//! `forkProgress(runId, after:)`). On shutdown every
//! socket is closed with 1001 so clients reconnect elsewhere.
//!
//! Subscriptions that ask for the same thing share one execution whose responses are serialised
//! once ([`shared`]): a thousand dashboards on one fork cost one encoding per event.

mod credentials;
pub mod delivery;
mod outbox;
pub mod shared;

use std::{
    collections::HashMap,
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::{
        State, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket},
    },
    http::HeaderMap,
    response::Response,
};
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};
use tokio::task::AbortHandle;

use async_graphql::parser::types::OperationType;

use crate::{
    http::{execution::Server, limits},
    scope::{self, RequestInputs},
};
use credentials::{expires_at, inputs_from_payload, renew};
pub use outbox::{OUTGOING_MESSAGES, SLOW_CONSUMER_CLOSE, SLOW_CONSUMER_GRACE};
use outbox::{Outbox, Queue};

/// How long a client has to send `connection_init`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Copy, Clone, PartialEq, Eq)]
enum Protocol {
    TransportWs,
    Legacy,
}

/// Read buffer of one WebSocket connection: client messages are small (`connection_init`,
/// `subscribe`, `ping`), and a larger one grows the buffer as it arrives.
const WS_READ_BUFFER_BYTES: usize = 1024;

/// How much of a burst of outgoing frames is gathered before it is written to the socket (the
/// writer flushes at the end of every burst anyway); it bounds what a socket's write buffer
/// grows to, so a thousand dashboards after a burst stay cheap.
const WS_WRITE_BUFFER_BYTES: usize = 8 * 1024;

/// Upgrades `/graphql/ws`.
pub async fn upgrade(
    State(server): State<Server>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // Subscription traffic is small messages: buffers of a few KiB instead of tungstenite's
    // 128 KiB keep a thousand idle dashboards cheap, and a message may be no larger than an
    // HTTP request body.
    let ws = ws
        .protocols(["graphql-transport-ws", "graphql-ws"])
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .write_buffer_size(WS_WRITE_BUFFER_BYTES)
        .max_message_size(crate::http::execution::MAX_BODY_BYTES)
        .max_frame_size(crate::http::execution::MAX_BODY_BYTES);
    let protocol = match ws.selected_protocol().and_then(|p| p.to_str().ok()) {
        Some("graphql-ws") => Protocol::Legacy,
        _ => Protocol::TransportWs,
    };
    let host = match crate::http::headers::header_text(&headers, "host") {
        Ok(host) => host,
        Err(err) => {
            return crate::http::negotiation::error_response(
                axum::http::StatusCode::BAD_REQUEST,
                err,
            );
        }
    };
    ws.on_upgrade(move |socket| serve(socket, server, protocol, host))
}

fn close(code: u16, reason: &str) -> Message {
    let mut reason = reason.to_string();
    while reason.len() > 123 {
        reason.pop();
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

fn text(value: Value) -> Message {
    Message::Text(value.to_string().into())
}

/// Answers operation `id`, which did not start, with its `errors` (and, on the legacy
/// protocol, the `complete` its clients expect after an `error`).
async fn send_not_started(out: &Queue, protocol: Protocol, id: &str, errors: Value) {
    let _ = out
        .send(text(json!({"type": "error", "id": id, "payload": errors})))
        .await;
    if protocol == Protocol::Legacy {
        let _ = out.send(text(json!({"type": "complete", "id": id}))).await;
    }
}

/// A `next`/`data` message written straight from the GraphQL response, without building an
/// intermediate JSON tree: with a thousand subscribers every event is written a thousand times.
#[derive(serde::Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    payload: &'a async_graphql::Response,
}

type Subscriptions = Arc<Mutex<HashMap<String, AbortHandle>>>;

async fn serve(socket: WebSocket, server: Server, protocol: Protocol, host: Option<String>) {
    let (sink, mut stream) = socket.split();
    let (out, outgoing) = Queue::new();
    // A close that must jump the queue (a subscriber too slow for its own buffer).
    let slow = outbox::Slow::default();
    let mut writer = outbox::spawn_writer(
        &server.state.delivery,
        sink,
        outgoing,
        slow.clone(),
        server.state.metrics.clone(),
    );
    let mut writer_done = false;
    let subscriptions: Subscriptions = Arc::default();
    let mut shutdown = server.state.shutdown.subscribe();
    // What `connection_init` carried: every operation re-runs the guard on it, so a member
    // removed, a tenant suspended or a role lowered since the init counts at the next operation.
    let mut inputs: Option<RequestInputs> = None;
    let mut init_seen = false;
    let deadline = tokio::time::sleep(INIT_TIMEOUT);
    tokio::pin!(deadline);
    // When the token expires: the socket closes with 4403 and its subscriptions end.
    let expiry = tokio::time::sleep(Duration::from_secs(u32::MAX as u64));
    tokio::pin!(expiry);
    server.state.metrics.websockets.inc();
    loop {
        let message = tokio::select! {
            _ = &mut deadline, if !init_seen => {
                let _ = out.send(close(4408, "Connection initialisation timeout")).await;
                break;
            }
            _ = shutdown.changed() => {
                let _ = out.send(close(1001, "Server is going away")).await;
                break;
            }
            _ = &mut writer, if !writer_done => {
                // The writer stopped (the peer is gone, or a slow subscriber was cut off).
                writer_done = true;
                break;
            }
            _ = &mut expiry, if inputs.is_some() => {
                let _ = out.send(close(4403, "Forbidden: token expired")).await;
                break;
            }
            message = stream.next() => message,
        };
        let Some(Ok(message)) = message else { break };
        let raw = match message {
            Message::Text(t) => t.to_string(),
            Message::Binary(_) => {
                let _ = out
                    .send(close(4400, "Binary messages are not supported"))
                    .await;
                break;
            }
            Message::Close(_) => break,
            _ => continue,
        };
        if limits::check_json("message", raw.as_bytes()).is_err() {
            let _ = out.send(close(4400, "Message nested too deeply")).await;
            break;
        }
        let Ok(msg) = serde_json::from_str::<Value>(&raw) else {
            let _ = out.send(close(4400, "Invalid message received")).await;
            break;
        };
        let kind = msg
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let id = msg.get("id").and_then(Value::as_str).map(str::to_string);
        match (protocol, kind.as_str()) {
            (_, "connection_init") => {
                if init_seen {
                    let _ = out
                        .send(close(4429, "Too many initialisation requests"))
                        .await;
                    break;
                }
                init_seen = true;
                let payload = msg.get("payload").cloned().unwrap_or(Value::Null);
                let given = inputs_from_payload(&payload, host.clone());
                match scope::resolve(&server.state, given.clone()).await {
                    Ok(_) => {
                        expiry.as_mut().reset(expires_at(&server, &given));
                        inputs = Some(given);
                        let _ = out.send(text(json!({"type": "connection_ack"}))).await;
                    }
                    Err(err) => {
                        if protocol == Protocol::Legacy {
                            let _ = out
                                .send(text(json!({"type": "connection_error", "payload": {"message": err.message(), "extensions": {"code": err.code()}}})))
                                .await;
                            let _ = out.send(close(4403, "Forbidden")).await;
                        } else {
                            let _ = out
                                .send(close(4403, &format!("Forbidden: {}", err.message())))
                                .await;
                        }
                        break;
                    }
                }
            }
            (Protocol::TransportWs, "ping")
                if msg.pointer("/payload/token").is_some()
                    || msg.pointer("/payload/Authorization").is_some() =>
            {
                // Renewal: a ping carrying a fresh token for the same subject replaces the
                // socket's token (and its expiry); anything else closes the socket.
                let Some(current) = inputs.as_mut() else {
                    let _ = out.send(close(4401, "Unauthorized")).await;
                    break;
                };
                let payload = msg.get("payload").cloned().unwrap_or(Value::Null);
                let renewed = RequestInputs {
                    bearer: inputs_from_payload(&payload, None).bearer,
                    ..current.clone()
                };
                match renew(&server, current, &renewed).await {
                    Ok(()) => {
                        expiry.as_mut().reset(expires_at(&server, &renewed));
                        *current = renewed;
                        let _ = out
                            .send(text(json!({"type": "pong", "payload": {"renewed": true}})))
                            .await;
                    }
                    Err(err) => {
                        let _ = out
                            .send(close(4403, &format!("Forbidden: {}", err.message())))
                            .await;
                        break;
                    }
                }
            }
            (Protocol::TransportWs, "ping") => {
                let mut pong = json!({"type": "pong"});
                if let Some(p) = msg.get("payload") {
                    pong["payload"] = p.clone();
                }
                let _ = out.send(text(pong)).await;
            }
            (Protocol::TransportWs, "pong") => {}
            (Protocol::TransportWs, "subscribe") | (Protocol::Legacy, "start") => {
                let Some(given) = inputs.clone() else {
                    let _ = out.send(close(4401, "Unauthorized")).await;
                    break;
                };
                let Some(id) = id else {
                    let _ = out
                        .send(close(4400, "Subscribe message without an id"))
                        .await;
                    break;
                };
                let duplicate = subscriptions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains_key(&id);
                if duplicate {
                    if protocol == Protocol::TransportWs {
                        let _ = out
                            .send(close(4409, &format!("Subscriber for {id} already exists")))
                            .await;
                        break;
                    }
                    continue;
                }
                let request = match serde_json::from_value::<async_graphql::Request>(
                    msg.get("payload").cloned().unwrap_or(Value::Null),
                ) {
                    Ok(r) => r,
                    Err(_) => {
                        let _ = out.send(close(4400, "Invalid subscribe payload")).await;
                        break;
                    }
                };
                start(
                    &server,
                    protocol,
                    given,
                    id,
                    request,
                    Outbox {
                        out: out.clone(),
                        slow: slow.clone(),
                        grace: SLOW_CONSUMER_GRACE,
                    },
                    subscriptions.clone(),
                );
            }
            (Protocol::TransportWs, "complete") | (Protocol::Legacy, "stop") => {
                let removed = id.as_ref().and_then(|id| {
                    subscriptions
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(id)
                });
                if let (Some(id), Some(handle)) = (id, removed) {
                    handle.abort();
                    if protocol == Protocol::Legacy {
                        let _ = out.send(text(json!({"type": "complete", "id": id}))).await;
                    }
                }
            }
            (Protocol::Legacy, "connection_terminate") => break,
            (_, other) => {
                let _ = out
                    .send(close(4400, &format!("Unknown message type `{other}`")))
                    .await;
                break;
            }
        }
    }
    for (_, handle) in subscriptions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain()
    {
        handle.abort();
    }
    drop(out);
    if !writer_done {
        let _ = writer.await;
    }
    server.state.metrics.websockets.dec();
}

fn start(
    server: &Server,
    protocol: Protocol,
    inputs: RequestInputs,
    id: String,
    request: async_graphql::Request,
    outbox: Outbox,
    subscriptions: Subscriptions,
) {
    let server = server.clone();
    let registry = subscriptions.clone();
    let task_id = id.clone();
    let mut map = subscriptions.lock().unwrap_or_else(|p| p.into_inner());
    let task = tokio::spawn(async move {
        let id = task_id;
        let active = ActiveSubscription::new(&server.state.metrics);
        let out = &outbox.out;
        let operation = operate(&server, protocol, inputs, &id, request, &outbox);
        // A panic ends this operation with a coded error; the socket and its other
        // operations carry on (the panic hook has logged it with its span).
        match AssertUnwindSafe(operation).catch_unwind().await {
            Ok(Some(follow)) => return hand_over(&server, follow, id, outbox, registry, active),
            Ok(None) => {}
            Err(_) => send_internal_error(out, &id).await,
        }
        registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    });
    map.insert(id, task.abort_handle());
    drop(map);
}

/// Moves a shared subscription to the delivery runtime: its follow loop becomes the task
/// registered under the operation's id (so `complete` and the socket's end still abort it), and
/// the operation's own task, with everything its execution held, ends.
fn hand_over(
    server: &Server,
    follow: shared::Follow,
    id: String,
    outbox: Outbox,
    registry: Subscriptions,
    active: ActiveSubscription,
) {
    // Held while the follow task is spawned and registered: it removes its id when it ends, and
    // must not do so before it is registered.
    let mut map = registry.lock().unwrap_or_else(|p| p.into_inner());
    if !map.contains_key(&id) {
        return; // completed or cancelled meanwhile
    }
    let task_registry = registry.clone();
    let task_id = id.clone();
    let task = server.state.delivery.spawn(async move {
        let _active = active;
        if AssertUnwindSafe(follow.run()).catch_unwind().await.is_err() {
            send_internal_error(&outbox.out, &task_id).await;
        }
        task_registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&task_id);
    });
    map.insert(id, task.abort_handle());
}

/// The `error` an operation that panicked ends with.
async fn send_internal_error(out: &Queue, id: &str) {
    let payload = json!([{"message": "internal error", "extensions": {"code": "INTERNAL"}}]);
    let _ = out
        .send(text(json!({"type": "error", "id": id, "payload": payload})))
        .await;
}

/// Runs one operation of a socket to its end, through the same steps as an HTTP request: the
/// limits, the guard's current decision (not the one taken at `connection_init`), then for a
/// query or mutation the execution permit, the deadline, error codes and metrics
/// (`server::execute_limited`); a subscription streams its events until it ends. A shared
/// subscription is handed back instead, to be followed on the delivery runtime
/// ([`shared::Follow`]).
async fn operate(
    server: &Server,
    protocol: Protocol,
    inputs: RequestInputs,
    id: &str,
    mut request: async_graphql::Request,
    outbox: &Outbox,
) -> Option<shared::Follow> {
    let out = &outbox.out;
    let next = match protocol {
        Protocol::TransportWs => "next",
        Protocol::Legacy => "data",
    };
    let refuse = |err: crate::error::AppError| {
        let payload = json!([{"message": err.message(), "extensions": {"code": err.code()}}]);
        let mut messages = vec![text(json!({"type": "error", "id": id, "payload": payload}))];
        if protocol == Protocol::Legacy {
            messages.push(text(json!({"type": "complete", "id": id})));
        }
        messages
    };
    let inspection = match limits::inspect(&mut request) {
        Ok(inspection) => inspection,
        Err(err) => {
            for message in refuse(err) {
                let _ = out.send(message).await;
            }
            return None;
        }
    };
    let inputs = RequestInputs {
        fork_watch: scope::watches_forks_only(inspection.kind, &inspection.root_fields),
        ..inputs
    };
    let ctx = match scope::resolve(&server.state, inputs).await {
        Ok(ctx) => ctx,
        Err(err) => {
            for message in refuse(err) {
                let _ = out.send(message).await;
            }
            return None;
        }
    };
    crate::http::execution::failpoint(&server.state, &request);
    let request = request.data(crate::graphql::audit::RequestId(
        uuid::Uuid::new_v4().to_string(),
    ));
    if inspection.kind != Some(OperationType::Subscription) {
        let response =
            crate::http::execution::execute_limited(server, ctx, request, inspection.label()).await;
        let failed = not_executed(&response);
        let message = if failed {
            text(json!({"type": "error", "id": id, "payload": response.errors}))
        } else {
            Message::Text(
                serde_json::to_string(&Payload {
                    kind: next,
                    id,
                    payload: &response,
                })
                .unwrap_or_default()
                .into(),
            )
        };
        if out.send(message).await.is_err() {
            return None;
        }
        if !failed || protocol == Protocol::Legacy {
            let _ = out.send(text(json!({"type": "complete", "id": id}))).await;
        }
        return None;
    }
    if let Some(key) = shared::key(&request, &inspection, &ctx) {
        return Some(shared::subscribe(
            server,
            protocol,
            id,
            key,
            request,
            ctx,
            outbox,
            inspection.label(),
        ));
    }
    let started = std::time::Instant::now();
    let (request, field_errors) = crate::http::execution::with_request_data(server, ctx, request);
    let mut responses = server.schema.execute_stream(request).boxed();
    let mut first = true;
    let mut ok = true;
    while let Some(mut response) = responses.next().await {
        // Before the field errors of an event are added: errors here mean the subscription did
        // not start (parse, validation, limits, or its source stream refused, as `after: -1`),
        // and the protocol answers with `error`. An event's field errors go out in `next`.
        let not_started =
            first && response.data == async_graphql::Value::Null && !response.errors.is_empty();
        field_errors.finish(&mut response);
        for error in &mut response.errors {
            crate::http::execution::with_code(error);
        }
        ok &= response.errors.is_empty();
        if not_started {
            let errors = serde_json::to_value(&response.errors).unwrap_or_default();
            send_not_started(out, protocol, id, errors).await;
            server
                .state
                .metrics
                .request(inspection.label(), false, started.elapsed());
            return None;
        }
        first = false;
        let message = serde_json::to_string(&Payload {
            kind: next,
            id,
            payload: &response,
        })
        .unwrap_or_default();
        if !outbox.push_event(Message::Text(message.into())).await {
            return None;
        }
    }
    server
        .state
        .metrics
        .request(inspection.label(), ok, started.elapsed());
    let _ = out.send(text(json!({"type": "complete", "id": id}))).await;
    None
}

/// True when `response` failed before execution (parse, validation, limits): `data` is null and
/// no error has a path. A field error (with a path) is an executed response, sent as `next`.
fn not_executed(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// Counts a subscription as active for as long as it lives (also when its task is aborted).
struct ActiveSubscription(std::sync::Arc<crate::metrics::Metrics>);

impl ActiveSubscription {
    fn new(metrics: &std::sync::Arc<crate::metrics::Metrics>) -> Self {
        metrics.subscriptions.inc();
        Self(metrics.clone())
    }
}

impl Drop for ActiveSubscription {
    fn drop(&mut self) {
        self.0.subscriptions.dec();
    }
}

#[cfg(test)]
mod tests;
