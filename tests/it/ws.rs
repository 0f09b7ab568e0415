//! The `graphql-transport-ws` rules, over a real socket.

use serde_json::json;

use crate::{
    harness::TestApp,
    wsclient::{self, Frame},
};

async fn closed_with(socket: &mut wsclient::Socket) -> u16 {
    loop {
        match wsclient::next(socket).await {
            Frame::Closed(code, reason) => {
                assert!(reason.len() <= 123, "close reason within 123 bytes");
                return code;
            }
            Frame::Json(message) if message["type"] == "ka" => continue,
            Frame::Json(message) => panic!("expected a close, got {message}"),
        }
    }
}

crate::both!(the_protocol_rules_hold);
async fn the_protocol_rules_hold(app: TestApp) {
    let url = app.ws_url();
    // A bad token: 4403.
    let mut socket = wsclient::open(&url, "graphql-transport-ws").await;
    wsclient::send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer nope" } }),
    )
    .await;
    assert_eq!(closed_with(&mut socket).await, 4403);
    // Subscribe before the ack: 4401.
    let mut socket = wsclient::open(&url, "graphql-transport-ws").await;
    wsclient::send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe",
            "payload": { "query": "subscription { forkProgress(runId: \"x\") { seq } }" } }),
    )
    .await;
    assert_eq!(closed_with(&mut socket).await, 4401);
    // A second init: 4429.
    let mut socket = wsclient::connect(&url, "graphql-transport-ws", &app.admin()).await;
    wsclient::send(
        &mut socket,
        json!({
            "type": "connection_init",
            "payload": { "Authorization": format!("Bearer {}", app.admin()) }
        }),
    )
    .await;
    assert_eq!(closed_with(&mut socket).await, 4429);
    // Ping → pong.
    let mut socket = wsclient::connect(&url, "graphql-transport-ws", &app.admin()).await;
    wsclient::send(&mut socket, json!({ "type": "ping" })).await;
    assert_eq!(wsclient::next_json(&mut socket).await["type"], "pong");
    // An unknown message: 4400.
    wsclient::send(&mut socket, json!({ "type": "bogus" })).await;
    assert_eq!(closed_with(&mut socket).await, 4400);
    // A duplicate subscription id: 4409. The run waits behind its target's lock, so the first
    // subscription is still open when the second arrives.
    forklift::bootstrap::ensure_template(&app.state)
        .await
        .expect("template");
    crate::fixture::seeded_template(&app.state, 2).await;
    let acme = crate::harness::uuid_of(&app.create_tenant("acme").await);
    let lock = app.state.hub.target_lock(acme);
    let held = lock.lock().await;
    let run = app.start_fork("acme").await;
    let mut socket = wsclient::connect(&url, "graphql-transport-ws", &app.admin()).await;
    let subscribe = json!({ "id": "same", "type": "subscribe",
        "payload": { "query": "subscription($id: ID!) { forkProgress(runId: $id) { seq } }",
        "variables": { "id": run } } });
    wsclient::send(&mut socket, subscribe.clone()).await;
    wsclient::send(&mut socket, subscribe).await;
    let code = loop {
        match wsclient::next(&mut socket).await {
            Frame::Closed(code, _) => break code,
            Frame::Json(_) => continue,
        }
    };
    assert_eq!(code, 4409, "a duplicate id closes the socket with 4409");
    drop(held);
    app.wait_run(&run).await;
}

crate::both!(no_init_closes_with_4408);
async fn no_init_closes_with_4408(app: TestApp) {
    let mut socket = wsclient::open(&app.ws_url(), "graphql-transport-ws").await;
    assert_eq!(closed_with(&mut socket).await, 4408);
}

#[allow(dead_code)]
fn _uses(_: TestApp) {}

crate::both!(a_subscriber_resumes_after_the_last_sequence_it_saw);
async fn a_subscriber_resumes_after_the_last_sequence_it_saw(app: TestApp) {
    forklift::bootstrap::ensure_template(&app.state)
        .await
        .expect("template");
    crate::fixture::seeded_template(&app.state, 2).await;
    app.create_tenant("acme").await;
    let run = app.start_fork("acme").await;
    app.wait_run(&run).await;
    let admin = app.admin();
    let all = wsclient::fork_events(&app.ws_url(), "graphql-transport-ws", &admin, &run).await;
    wsclient::assert_complete_run(&all, "RUN_FINISHED");
    assert!(all.len() > 4, "{all:?}");
    // Reconnecting with `after: 3` gives exactly the rest, in order.
    let mut socket = wsclient::connect(&app.ws_url(), "graphql-transport-ws", &admin).await;
    wsclient::send(
        &mut socket,
        json!({ "id": "r", "type": "subscribe", "payload": {
            "query": "subscription($id: ID!, $after: Int) { forkProgress(runId: $id, after: \
            $after) { runId seq kind phase className count detail } }",
            "variables": { "id": run, "after": 3 } } }),
    )
    .await;
    let mut rest = Vec::new();
    loop {
        let message = wsclient::next_json(&mut socket).await;
        match message["type"].as_str() {
            Some("next") => rest.push(message["payload"]["data"]["forkProgress"].clone()),
            Some("complete") => break,
            _ => panic!("unexpected {message}"),
        }
    }
    assert_eq!(rest, all[3..].to_vec());
    // A negative sequence is bad input.
    wsclient::send(
        &mut socket,
        json!({ "id": "n", "type": "subscribe", "payload": {
            "query": "subscription($id: ID!) { forkProgress(runId: $id, after: -1) { seq } }",
            "variables": { "id": run } } }),
    )
    .await;
    let error = wsclient::next_json(&mut socket).await;
    assert_eq!(
        error["payload"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{error}"
    );
}
