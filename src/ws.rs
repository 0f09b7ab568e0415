//! GraphQL over WebSocket: `graphql-transport-ws` and the legacy `graphql-ws`
//! (subscriptions-transport-ws) protocol, authenticated from the `connection_init` payload.
//!
//! `graphql-transport-ws` rules: no `connection_init` within the init timeout → close 4408;
//! a refused token or tenant → 4403; `subscribe` before the ack → 4401; a second init → 4429;
//! a duplicate subscription id → 4409; an unparsable or unknown message → 4400. On shutdown
//! every socket is closed with 1001 so clients reconnect elsewhere.

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
use futures::{FutureExt, SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{sync::mpsc, task::AbortHandle};

use crate::{
    limits,
    scope::{self, RequestContext, RequestInputs},
    server::Server,
};

/// How long a client has to send `connection_init`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Copy, Clone, PartialEq, Eq)]
enum Protocol {
    TransportWs,
    Legacy,
}

/// Read buffer of one WebSocket connection.
const WS_READ_BUFFER_BYTES: usize = 16 * 1024;

/// Upgrades `/graphql/ws`.
pub async fn upgrade(
    State(server): State<Server>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // Subscription traffic is small messages: a 16 KiB read buffer instead of tungstenite's
    // 128 KiB keeps a thousand idle dashboards cheap, and a message may be no larger than an
    // HTTP request body.
    let ws = ws
        .protocols(["graphql-transport-ws", "graphql-ws"])
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .max_message_size(crate::server::MAX_BODY_BYTES)
        .max_frame_size(crate::server::MAX_BODY_BYTES);
    let protocol = match ws.selected_protocol().and_then(|p| p.to_str().ok()) {
        Some("graphql-ws") => Protocol::Legacy,
        _ => Protocol::TransportWs,
    };
    let host = match crate::server::header_text(&headers, "host") {
        Ok(host) => host,
        Err(err) => {
            return crate::server::error_response(axum::http::StatusCode::BAD_REQUEST, err);
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

/// A `next`/`data` message written straight from the GraphQL response, without building an
/// intermediate JSON tree: with a thousand subscribers every event is written a thousand times.
#[derive(serde::Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    payload: &'a async_graphql::Response,
}

/// The request inputs carried by a `connection_init` payload.
fn inputs_from_payload(payload: &Value, host: Option<String>) -> RequestInputs {
    let get = |keys: &[&str]| {
        keys.iter().find_map(|k| {
            payload
                .get(*k)
                .or_else(|| payload.get("headers").and_then(|h| h.get(*k)))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
    };
    let bearer = get(&["Authorization", "authorization"])
        .map(|v| {
            v.trim_start_matches("Bearer ")
                .trim_start_matches("bearer ")
                .trim()
                .to_string()
        })
        .or_else(|| get(&["token", "authToken"]));
    RequestInputs {
        bearer,
        tenant_header: get(&["X-Tenant", "x-tenant", "tenant"]),
        host,
    }
}

type Subscriptions = Arc<Mutex<HashMap<String, AbortHandle>>>;

async fn serve(socket: WebSocket, server: Server, protocol: Protocol, host: Option<String>) {
    let (mut sink, mut stream) = socket.split();
    let (out, mut outgoing) = mpsc::channel::<Message>(256);
    let writer = tokio::spawn(async move {
        while let Some(message) = outgoing.recv().await {
            let closing = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let subscriptions: Subscriptions = Arc::default();
    let mut shutdown = server.state.shutdown.subscribe();
    let mut ctx: Option<RequestContext> = None;
    let mut init_seen = false;
    let deadline = tokio::time::sleep(INIT_TIMEOUT);
    tokio::pin!(deadline);
    server
        .state
        .metrics
        .websockets
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
                match scope::resolve(&server.state, inputs_from_payload(&payload, host.clone()))
                    .await
                {
                    Ok(resolved) => {
                        ctx = Some(resolved);
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
            (Protocol::TransportWs, "ping") => {
                let mut pong = json!({"type": "pong"});
                if let Some(p) = msg.get("payload") {
                    pong["payload"] = p.clone();
                }
                let _ = out.send(text(pong)).await;
            }
            (Protocol::TransportWs, "pong") => {}
            (Protocol::TransportWs, "subscribe") | (Protocol::Legacy, "start") => {
                let Some(resolved) = ctx.clone() else {
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
                    resolved,
                    id,
                    request,
                    out.clone(),
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
    let _ = writer.await;
    server
        .state
        .metrics
        .websockets
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}

fn start(
    server: &Server,
    protocol: Protocol,
    ctx: RequestContext,
    id: String,
    request: async_graphql::Request,
    out: mpsc::Sender<Message>,
    subscriptions: Subscriptions,
) {
    let server = server.clone();
    let registry = subscriptions.clone();
    let task_id = id.clone();
    let mut map = subscriptions.lock().unwrap_or_else(|p| p.into_inner());
    let task = tokio::spawn(async move {
        let id = task_id;
        let _active = ActiveSubscription::new(&server.state.metrics);
        let operation = operate(&server, protocol, ctx, &id, request, &out);
        // A panic ends this operation with a coded error; the socket and its other
        // operations carry on (the panic hook has logged it with its span).
        if AssertUnwindSafe(operation).catch_unwind().await.is_err() {
            let payload =
                json!([{"message": "internal error", "extensions": {"code": "INTERNAL"}}]);
            let _ = out
                .send(text(json!({"type": "error", "id": id, "payload": payload})))
                .await;
        }
        registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    });
    map.insert(id, task.abort_handle());
    drop(map);
}

/// Runs one operation of a socket to its end: checks it like any request, then sends its
/// responses and the protocol's closing message.
async fn operate(
    server: &Server,
    protocol: Protocol,
    ctx: RequestContext,
    id: &str,
    mut request: async_graphql::Request,
    out: &mpsc::Sender<Message>,
) {
    let next = match protocol {
        Protocol::TransportWs => "next",
        Protocol::Legacy => "data",
    };
    if let Err(err) = limits::inspect(&mut request) {
        let payload = json!([{"message": err.message(), "extensions": {"code": err.code()}}]);
        let _ = out
            .send(text(json!({"type": "error", "id": id, "payload": payload})))
            .await;
        if protocol == Protocol::Legacy {
            let _ = out.send(text(json!({"type": "complete", "id": id}))).await;
        }
        return;
    }
    crate::server::failpoint(&server.state, &request);
    let loader = async_graphql::dataloader::DataLoader::new(
        crate::graphql::loaders::RowsLoader {
            db: server.state.scoped_db.clone(),
            ctx: ctx.clone(),
            registry: server.state.registry.clone(),
        },
        tokio::spawn,
    );
    let mut responses = server
        .schema
        .execute_stream(request.data(ctx).data(loader))
        .boxed();
    let mut first = true;
    while let Some(mut response) = responses.next().await {
        for error in &mut response.errors {
            crate::server::with_code(error);
        }
        if first && response.data == async_graphql::Value::Null && !response.errors.is_empty() {
            let errors = serde_json::to_value(&response.errors).unwrap_or_default();
            let _ = out
                .send(text(json!({"type": "error", "id": id, "payload": errors})))
                .await;
            if protocol == Protocol::Legacy {
                let _ = out.send(text(json!({"type": "complete", "id": id}))).await;
            }
            return;
        }
        first = false;
        let message = serde_json::to_string(&Payload {
            kind: next,
            id,
            payload: &response,
        })
        .unwrap_or_default();
        if out.send(Message::Text(message.into())).await.is_err() {
            return;
        }
    }
    let _ = out.send(text(json!({"type": "complete", "id": id}))).await;
}

/// Counts a subscription as active for as long as it lives (also when its task is aborted).
struct ActiveSubscription(std::sync::Arc<crate::metrics::Metrics>);

impl ActiveSubscription {
    fn new(metrics: &std::sync::Arc<crate::metrics::Metrics>) -> Self {
        metrics
            .subscriptions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(metrics.clone())
    }
}

impl Drop for ActiveSubscription {
    fn drop(&mut self) {
        self.0
            .subscriptions
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
