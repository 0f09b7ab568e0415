//! A small real WebSocket client for both GraphQL subscription protocols.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a socket speaking `protocol` (`graphql-transport-ws` or `graphql-ws`).
pub async fn open(url: &str, protocol: &str) -> Socket {
    let mut request = url.into_client_request().expect("ws request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(protocol).expect("protocol"),
    );
    let (socket, response) = connect_async(request).await.expect("ws connect");
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some(protocol),
        "the server picked the protocol"
    );
    socket
}

/// Sends one JSON message.
pub async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .expect("ws send");
}

/// What the next frame was.
#[derive(Debug)]
pub enum Frame {
    Json(Value),
    Closed(u16, String),
}

/// The next text or close frame (pings answered; 20 s limit).
pub async fn next(socket: &mut Socket) -> Frame {
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(20), socket.next())
            .await
            .expect("a frame within 20 s");
        match message {
            Some(Ok(Message::Text(text))) => {
                return Frame::Json(serde_json::from_str(&text).expect("json frame"));
            }
            Some(Ok(Message::Close(frame))) => {
                return frame.map_or(Frame::Closed(1005, String::new()), |f| {
                    Frame::Closed(f.code.into(), f.reason.to_string())
                });
            }
            Some(Ok(_)) => continue,
            Some(Err(err)) => return Frame::Closed(1006, err.to_string()),
            None => return Frame::Closed(1006, "stream ended".into()),
        }
    }
}

/// The next JSON message (panics on close).
pub async fn next_json(socket: &mut Socket) -> Value {
    match next(socket).await {
        Frame::Json(v) => v,
        Frame::Closed(code, reason) => panic!("socket closed {code}: {reason}"),
    }
}

/// Opens, initialises with `token` and waits for the ack.
pub async fn connect(url: &str, protocol: &str, token: &str) -> Socket {
    let mut socket = open(url, protocol).await;
    send(
        &mut socket,
        json!({ "type": "connection_init",
            "payload": { "Authorization": format!("Bearer {token}") } }),
    )
    .await;
    loop {
        let message = next_json(&mut socket).await;
        match message["type"].as_str() {
            Some("connection_ack") => return socket,
            Some("ka") => continue,
            other => panic!("expected connection_ack, got {other:?}: {message}"),
        }
    }
}

const PROGRESS: &str = "subscription($id: ID!) { forkProgress(runId: $id) { runId seq kind \
    phase className count detail } }";

/// Subscribes to `forkProgress(run)` and collects events until the stream completes.
pub async fn fork_events(url: &str, protocol: &str, token: &str, run: &str) -> Vec<Value> {
    let mut socket = connect(url, protocol, token).await;
    let (subscribe, data, done) = if protocol == "graphql-ws" {
        ("start", "data", "complete")
    } else {
        ("subscribe", "next", "complete")
    };
    send(
        &mut socket,
        json!({ "id": "1", "type": subscribe, "payload": { "query": PROGRESS,
            "variables": { "id": run } } }),
    )
    .await;
    let mut events = Vec::new();
    loop {
        let message = next_json(&mut socket).await;
        match message["type"].as_str() {
            Some(t) if t == data => {
                assert!(message["payload"].get("errors").is_none(), "{message}");
                events.push(message["payload"]["data"]["forkProgress"].clone());
            }
            Some(t) if t == done => break,
            Some("ka") => continue,
            _ => panic!("unexpected message {message}"),
        }
    }
    events
}

/// Asserts `events` are one complete run in order: seq 1, 2, …; the run's start first and its
/// end last.
pub fn assert_complete_run(events: &[Value], last: &str) {
    assert!(!events.is_empty(), "no events");
    for (i, event) in events.iter().enumerate() {
        assert_eq!(
            event["seq"].as_i64(),
            Some(i as i64 + 1),
            "event {i} in order: {events:#?}"
        );
    }
    assert_eq!(events[0]["kind"], "RUN_STARTED", "{events:#?}");
    assert_eq!(events[events.len() - 1]["kind"], last, "{events:#?}");
}
