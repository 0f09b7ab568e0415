//! Fan-out of fork progress (issue #16): subscribers with different selections on one run each
//! get exactly theirs, and a subscriber that stops reading is cut off with 4029 and resumes
//! with `after` without gaps or repeats. Real servers, real sockets, both databases.

use std::collections::BTreeSet;

use futures::StreamExt;
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

use crate::{harness::TestApp, wsclient};

const SELECTIONS: [(&str, &[&str]); 3] = [
    ("seq kind", &["seq", "kind"]),
    (
        "seq kind phase className count",
        &["seq", "kind", "phase", "className", "count"],
    ),
    ("runId seq detail at", &["runId", "seq", "detail", "at"]),
];

fn progress(selection: &str) -> String {
    format!("subscription($id: ID!) {{ forkProgress(runId: $id) {{ {selection} }} }}")
}

/// Reads one socket's subscriptions (by id) until each has completed.
async fn collect(socket: &mut wsclient::Socket, ids: &[&str]) -> Vec<Vec<Value>> {
    let mut events = vec![Vec::new(); ids.len()];
    let mut open = ids.len();
    while open > 0 {
        let message = wsclient::next_json(socket).await;
        let at = ids
            .iter()
            .position(|id| message["id"] == *id)
            .unwrap_or_else(|| panic!("a message of another subscription: {message}"));
        match message["type"].as_str() {
            Some("next") => {
                assert!(message["payload"].get("errors").is_none(), "{message}");
                events[at].push(message["payload"]["data"]["forkProgress"].clone());
            }
            Some("complete") => open -= 1,
            _ => panic!("unexpected message {message}"),
        }
    }
    events
}

/// Inserts a custom type the fork may not copy and `count` records of it into the template:
/// each record is one `ROW_SKIPPED` event of the fork.
async fn unforkable_records(app: &TestApp, count: usize) {
    let template = crate::fixture::template(&app.state).await;
    let now = chrono::Utc::now();
    let kind = uuid::Uuid::new_v4();
    entity::custom_types::Entity::insert(entity::custom_types::ActiveModel {
        id: Set(kind),
        key: Set("unforkable".into()),
        name: Set("Unforkable".into()),
        description: Set(None),
        forkable: Set(false),
        fields: Set(json!([])),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec(&app.state.db)
    .await
    .expect("custom type");
    let records: Vec<_> = (0..count)
        .map(|i| entity::custom_records::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            tenant_id: Set(template),
            custom_type_id: Set(kind),
            application_id: Set(None),
            key: Set(format!("record-{i:06}")),
            data: Set(json!({ "padding": "x".repeat(64) })),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .collect();
    for chunk in records.chunks(1000) {
        entity::custom_records::Entity::insert_many(chunk.to_vec())
            .exec(&app.state.db)
            .await
            .expect("custom records");
    }
}

/// A `graphql-transport-ws` socket whose receive buffer is as small as the kernel allows, so
/// that a client that stops reading makes the server's queue fill rather than kernel buffers.
async fn small_socket(app: &TestApp) -> wsclient::Socket {
    let addr = app
        .ws_url()
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .expect("host")
        .to_string();
    let addr: std::net::SocketAddr = tokio::net::lookup_host(addr)
        .await
        .expect("resolve")
        .next()
        .expect("an address");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let stream = socket.connect(addr).await.expect("connect");
    let mut request = app.ws_url().into_client_request().expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) =
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .expect("handshake");
    wsclient::send(
        &mut socket,
        json!({
            "type": "connection_init",
            "payload": { "Authorization": format!("Bearer {}", app.admin()) }
        }),
    )
    .await;
    assert_eq!(
        wsclient::next_json(&mut socket).await["type"],
        "connection_ack"
    );
    socket
}

crate::both!(three_selections_each_get_exactly_theirs);
async fn three_selections_each_get_exactly_theirs(app: TestApp) {
    crate::fixture::seeded_template(&app.state, 3).await;
    app.create_tenant("watched").await;
    let run = app.start_fork("watched").await;
    let url = app.ws_url();
    // Two sockets per selection, with different subscription ids; one socket holds two.
    let mut sockets = Vec::new();
    for (n, (selection, _)) in SELECTIONS.iter().enumerate() {
        for copy in 0..2 {
            let mut socket = wsclient::connect(&url, "graphql-transport-ws", &app.admin()).await;
            let id = format!("s{n}-{copy}");
            wsclient::send(
                &mut socket,
                json!({ "id": id, "type": "subscribe",
                    "payload": { "query": progress(selection), "variables": { "id": run } } }),
            )
            .await;
            sockets.push((socket, vec![(id, n)]));
        }
    }
    // Also the first selection again on the last socket, formatted differently.
    let (socket, ids) = sockets.last_mut().expect("a socket");
    let query =
        "subscription ($id: ID!) {\n  forkProgress(runId: $id) {\n    seq,\n    kind\n  }\n}";
    wsclient::send(
        socket,
        json!({ "id": "again", "type": "subscribe", "payload": { "query": query,
            "variables": { "id": run } } }),
    )
    .await;
    ids.push(("again".into(), 0));
    let mut seen: Vec<Vec<Vec<Value>>> = vec![Vec::new(); SELECTIONS.len()];
    for (socket, ids) in &mut sockets {
        let names: Vec<&str> = ids.iter().map(|(id, _)| id.as_str()).collect();
        let streams = collect(socket, &names).await;
        for ((_, n), events) in ids.iter().zip(streams) {
            seen[*n].push(events);
        }
    }
    let total = seen[1][0].len();
    assert!(total > 5, "a whole run: {:#?}", seen[1][0]);
    for (n, (_, fields)) in SELECTIONS.iter().enumerate() {
        let expected: BTreeSet<&str> = fields.iter().copied().collect();
        for events in &seen[n] {
            assert_eq!(events.len(), total, "complete: {events:#?}");
            for (i, event) in events.iter().enumerate() {
                let keys: BTreeSet<&str> = event
                    .as_object()
                    .expect("object")
                    .keys()
                    .map(String::as_str)
                    .collect();
                assert_eq!(keys, expected, "exactly the selection: {event}");
                assert_eq!(
                    event["seq"].as_i64(),
                    Some(i as i64 + 1),
                    "in order: {events:#?}"
                );
            }
            assert_eq!(
                events, &seen[n][0],
                "the same events for the same selection"
            );
        }
    }
    assert_eq!(seen[0][0][0]["kind"], "RUN_STARTED");
    assert_eq!(seen[0][0][total - 1]["kind"], "RUN_FINISHED");
    for (i, event) in seen[1][0].iter().enumerate() {
        assert_eq!(event["kind"], seen[0][0][i]["kind"], "one run, one order");
    }
    // The run is over: a subscriber now replays it from the stored events, the same.
    let late = wsclient::fork_events(&url, "graphql-transport-ws", &app.admin(), &run).await;
    wsclient::assert_complete_run(&late, "RUN_FINISHED");
    assert_eq!(late.len(), total);
}

crate::both!(a_subscriber_that_stops_reading_is_cut_off_and_resumes_with_after);
async fn a_subscriber_that_stops_reading_is_cut_off_and_resumes_with_after(app: TestApp) {
    crate::fixture::seeded_template(&app.state, 2).await;
    // Far more events than the socket's queue and the kernel's buffers hold.
    unforkable_records(&app, 50_000).await;
    app.create_tenant("slow").await;
    let run = app.start_fork("slow").await;
    let selection = "runId seq kind phase className count detail at";
    let mut slow = small_socket(&app).await;
    wsclient::send(
        &mut slow,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": progress(selection),
            "variables": { "id": run } } }),
    )
    .await;
    // A reader alongside, on the same run, is not held back: it gets everything.
    let fast = {
        let (url, token, run) = (app.ws_url(), app.admin(), run.clone());
        tokio::spawn(async move {
            wsclient::fork_events(&url, "graphql-transport-ws", &token, &run).await
        })
    };
    // The slow one reads nothing until the run is over (50,000 events: allow a loaded machine).
    let finished = app.wait_run_within(&run, 180).await;
    assert_eq!(finished["status"], "FINISHED", "{finished}");
    let fast = fast.await.expect("fast reader");
    wsclient::assert_complete_run(&fast, "RUN_FINISHED");
    let total = fast.len();
    assert!(total > 50_000, "one event per skipped record: {total}");
    // Now it reads: a prefix of the run, in order, then the close for slow consumers.
    let mut last = 0;
    let code = loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(30), slow.next())
            .await
            .expect("a frame within 30 s");
        match message {
            Some(Ok(Message::Text(text))) => {
                let message: Value = serde_json::from_str(&text).expect("json");
                assert_eq!(message["type"], "next", "{message}");
                let seq = message["payload"]["data"]["forkProgress"]["seq"]
                    .as_i64()
                    .expect("seq");
                assert_eq!(seq, last + 1, "no gap before the cut");
                last = seq;
            }
            Some(Ok(Message::Close(frame))) => break frame.map_or(1005, |f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            other => panic!("expected events then a close, got {other:?}"),
        }
    };
    assert_eq!(
        code,
        forklift::http::ws::SLOW_CONSUMER_CLOSE,
        "closed as a slow consumer after seq {last}"
    );
    assert!(
        last < total as i64,
        "cut off before the end: {last} of {total}"
    );
    // Reconnecting with the last sequence seen yields exactly the rest.
    let mut socket = wsclient::connect(&app.ws_url(), "graphql-transport-ws", &app.admin()).await;
    let resume = format!(
        "subscription($id: ID!, $after: Int) {{ forkProgress(runId: $id, after: $after) {{ {selection} }} }}"
    );
    wsclient::send(
        &mut socket,
        json!({ "id": "r", "type": "subscribe", "payload": { "query": resume,
            "variables": { "id": run, "after": last } } }),
    )
    .await;
    let rest = collect(&mut socket, &["r"]).await.remove(0);
    assert_eq!(
        rest.len() as i64,
        total as i64 - last,
        "the rest, no more, no less"
    );
    for (i, event) in rest.iter().enumerate() {
        assert_eq!(
            event["seq"].as_i64(),
            Some(last + 1 + i as i64),
            "no gap, no repeat"
        );
        let mut event = event.clone();
        event.as_object_mut().expect("object").remove("at");
        assert_eq!(event, fast[last as usize + i], "the same events");
    }
    assert_eq!(rest.last().expect("an event")["kind"], "RUN_FINISHED");
}

/// The value of an unlabelled metric in `/metrics` (0 when absent).
async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app.metrics().await;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

crate::both_backends!(live_events_are_counted_as_they_reach_the_socket);
/// `forklift_subscription_delivery_seconds` counts one observation per live event and
/// subscriber once its write is flushed (replays of what happened before are not delivery).
async fn live_events_are_counted_as_they_reach_the_socket(backend: crate::harness::Backend) {
    // The run holds before its first phase long enough for the subscriber to attach, so every
    // event from the first phase on is live.
    let Some(app) = TestApp::spawn_with(
        backend,
        |c| c.fork_failpoint = Some("pause:before_phase:1:3000".into()),
        forklift::registry::Registry::default(),
    )
    .await
    else {
        return;
    };
    crate::fixture::seeded_template(&app.state, 2).await;
    app.create_tenant("watched").await;
    let count = "forklift_subscription_delivery_seconds_count";
    assert_eq!(metric(&app, count).await, 0.0, "nothing delivered yet");
    let run = app.start_fork("watched").await;
    let mut socket = wsclient::connect(&app.ws_url(), "graphql-transport-ws", &app.admin()).await;
    wsclient::send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe",
            "payload": { "query": progress("seq kind"), "variables": { "id": run } } }),
    )
    .await;
    let events = collect(&mut socket, &["1"]).await.remove(0);
    let live = events
        .iter()
        .skip_while(|e| e["kind"] != "PHASE_STARTED")
        .count();
    assert!(live > 3, "the phases were streamed: {events:#?}");
    // The writer counts right after its flush returns, which may be just after the client read.
    let mut counted = metric(&app, count).await;
    for _ in 0..100 {
        if counted >= live as f64 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        counted = metric(&app, count).await;
    }
    assert!(
        counted >= live as f64 && counted <= events.len() as f64,
        "{counted} counted for {live} live events of {}",
        events.len()
    );
    let sum = metric(&app, "forklift_subscription_delivery_seconds_sum").await;
    assert!(sum > 0.0 && sum < 30.0 * counted, "{sum} s in all");
}
