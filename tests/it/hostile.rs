//! Issue #21: nothing a client sends can stop the server. Nesting at every position the grammar
//! allows, at depths up to 100,000, over every transport, with and without a token: each is
//! refused cleanly and the server keeps answering. Also: a panicking handler costs one request,
//! slow headers are cut, undecodable headers and `crit` tokens are refused.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    harness::{Backend, TestApp, code},
    wsclient::{self, Frame},
};

/// Depths tried at every position: just past the limit, then far past it.
const DEPTHS: &[usize] = &[65, 200, 2_000, 20_000, 100_000];

/// `depth` levels of `open … close` around `core`.
fn nest(open: &str, core: &str, close: &str, depth: usize) -> String {
    format!("{}{core}{}", open.repeat(depth), close.repeat(depth))
}

/// One hostile request: its query, and variables (possibly nested themselves).
struct Case {
    position: &'static str,
    depth: usize,
    query: String,
    variables: Value,
}

/// Nested JSON without recursion (serde_json's own builders would recurse to drop it).
fn deep_json_text(depth: usize) -> String {
    nest("[", "1", "]", depth)
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for &depth in DEPTHS {
        let positions: Vec<(&'static str, String, Value)> = vec![
            (
                "value list",
                format!("{{ me(x: {}) {{ subject }} }}", nest("[", "1", "]", depth)),
                Value::Null,
            ),
            (
                "input object",
                format!(
                    "{{ me(x: {}) {{ subject }} }}",
                    nest("{a: ", "1", "}", depth)
                ),
                Value::Null,
            ),
            (
                "selection set",
                nest("{ me ", "{ subject }", " }", depth),
                Value::Null,
            ),
            (
                "inline fragment",
                format!(
                    "{{ {} }}",
                    nest("... on Query { ", "__typename", " }", depth)
                ),
                Value::Null,
            ),
            (
                "fragment chain",
                {
                    // Fragments spreading the previous one: nesting through names, not brackets.
                    let n = depth.min(1_500);
                    let mut text = format!("{{ ...F{n} }} fragment F0 on Query {{ __typename }}");
                    for i in 1..=n {
                        text.push_str(&format!(" fragment F{i} on Query {{ ...F{} }}", i - 1));
                    }
                    text
                },
                Value::Null,
            ),
            (
                "directive argument",
                format!(
                    "{{ me @include(if: {}) {{ subject }} }}",
                    nest("[", "true", "]", depth)
                ),
                Value::Null,
            ),
            (
                "variable default",
                format!(
                    "query($v: JSON = {}) {{ me {{ subject }} }}",
                    nest("[", "1", "]", depth)
                ),
                Value::Null,
            ),
            (
                "variables JSON",
                "query($v: JSON) { me { subject } }".to_string(),
                // Marked for the transports to splice in as raw text.
                Value::String(format!("__DEEP_JSON_{depth}")),
            ),
        ];
        for (position, query, variables) in positions {
            cases.push(Case {
                position,
                depth,
                query,
                variables,
            });
        }
    }
    cases
}

/// The raw JSON body of a case: `{"query": …, "variables": …}` with deep variables spliced in
/// as text.
fn body_of(case: &Case) -> String {
    let variables = match case.variables.as_str() {
        Some(marker) if marker.starts_with("__DEEP_JSON_") => {
            format!("{{\"v\": {}}}", deep_json_text(case.depth))
        }
        _ => "null".to_string(),
    };
    format!(
        "{{\"query\": {}, \"variables\": {variables}}}",
        serde_json::to_string(&case.query).expect("query text")
    )
}

/// Asserts `body` is a clean refusal: a GraphQL error with `BAD_USER_INPUT`, no data.
fn assert_refused(what: &str, status: u16, body: &Value) {
    assert!(
        status == 200 || status == 400,
        "{what}: status {status}: {body}"
    );
    assert_eq!(
        code(body).as_deref(),
        Some("BAD_USER_INPUT"),
        "{what}: {body}"
    );
    assert!(
        body.get("data").is_none_or(Value::is_null),
        "{what}: {body}"
    );
}

/// Sends `request` (with the bearer `token`, if any) and reads the answer as JSON.
async fn answer(request: reqwest::RequestBuilder, token: Option<&str>) -> (u16, Value) {
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body read");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn post_raw(app: &TestApp, token: Option<&str>, body: String) -> (u16, Value) {
    let request = app
        .http
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(body);
    answer(request, token).await
}

async fn get_raw(app: &TestApp, token: Option<&str>, case: &Case) -> (u16, Value) {
    let mut params = vec![("query", case.query.clone())];
    if case.variables.is_string() {
        params.push((
            "variables",
            format!("{{\"v\": {}}}", deep_json_text(case.depth)),
        ));
    }
    answer(app.http.get(app.url("/graphql")).query(&params), token).await
}

/// The server is alive and serving: `/readyz` and a normal query.
async fn assert_alive(app: &TestApp) {
    let ready = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz answers");
    assert_eq!(ready.status().as_u16(), 200);
    let data = app
        .ok(&app.admin(), None, "{ me { subject } }", Value::Null)
        .await;
    assert!(data["me"]["subject"].is_string(), "{data}");
}

/// Sends `case` as a subscribe message on a socket and asserts the refusal: an `error` message
/// with `BAD_USER_INPUT` for nesting inside the query, or a 4400 close when the message itself
/// nests too deep. Returns whether the socket is still usable.
async fn ws_refused(socket: &mut wsclient::Socket, protocol: &str, id: usize, case: &Case) -> bool {
    let kind = if protocol == "graphql-ws" {
        "start"
    } else {
        "subscribe"
    };
    let message = format!(
        "{{\"id\": \"{id}\", \"type\": \"{kind}\", \"payload\": {}}}",
        body_of(case)
    );
    use futures::SinkExt;
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text(
            message.into(),
        ))
        .await
        .expect("ws send");
    let what = format!("ws {protocol} {} at {}", case.position, case.depth);
    loop {
        match wsclient::next(socket).await {
            Frame::Json(m) if m["type"] == "ka" => continue,
            Frame::Json(m) => {
                assert_eq!(m["type"], "error", "{what}: {m}");
                assert_eq!(
                    m["payload"][0]["extensions"]["code"], "BAD_USER_INPUT",
                    "{what}: {m}"
                );
                if protocol == "graphql-ws" {
                    // The legacy protocol completes the operation after its error.
                    let done = wsclient::next_json(socket).await;
                    assert_eq!(done["type"], "complete", "{what}: {done}");
                }
                return true;
            }
            Frame::Closed(code, reason) => {
                assert_eq!(code, 4400, "{what}: closed {code} {reason}");
                return false;
            }
        }
    }
}

crate::both!(nesting_anywhere_is_refused_on_every_transport);
async fn nesting_anywhere_is_refused_on_every_transport(app: TestApp) {
    let admin = app.admin();
    let all = cases();
    for token in [None, Some(admin.as_str())] {
        let who = if token.is_some() {
            "authenticated"
        } else {
            "anonymous"
        };
        for case in &all {
            let what = format!("{who} {} at {}", case.position, case.depth);
            // POST, plain and as an automatic persisted query.
            let (status, body) = post_raw(&app, token, body_of(case)).await;
            assert_refused(&format!("POST {what}"), status, &body);
            let hash = "0".repeat(64);
            let persisted = body_of(case).replacen(
                '{',
                &format!("{{\"extensions\": {{\"persistedQuery\": {{\"version\": 1, \"sha256Hash\": \"{hash}\"}}}}, "),
                1,
            );
            let (status, body) = post_raw(&app, token, persisted).await;
            assert_refused(&format!("APQ {what}"), status, &body);
            // GET: URLs stay under what HTTP servers accept, so only the shallower cases.
            if case.depth <= 2_000 {
                let (status, body) = get_raw(&app, token, case).await;
                assert_refused(&format!("GET {what}"), status, &body);
            }
        }
        assert_alive(&app).await;
    }
    // WebSocket, both protocols: an authenticated socket gets an `error` per operation;
    // a message nested too deep closes it with 4400.
    for protocol in ["graphql-transport-ws", "graphql-ws"] {
        let mut socket = wsclient::connect(&app.ws_url(), protocol, &admin).await;
        for (id, case) in all.iter().enumerate() {
            if !ws_refused(&mut socket, protocol, id, case).await {
                socket = wsclient::connect(&app.ws_url(), protocol, &admin).await;
            }
        }
        // Before any token is checked: a deeply nested `connection_init`.
        for &depth in DEPTHS {
            let mut socket = wsclient::open(&app.ws_url(), protocol).await;
            let init = format!(
                "{{\"type\": \"connection_init\", \"payload\": {}}}",
                deep_json_text(depth)
            );
            use futures::SinkExt;
            socket
                .send(tokio_tungstenite::tungstenite::Message::Text(init.into()))
                .await
                .expect("ws send");
            match wsclient::next(&mut socket).await {
                Frame::Closed(code, _) => assert_eq!(code, 4400, "{protocol} init at {depth}"),
                Frame::Json(m) => panic!("{protocol} init at {depth}: {m}"),
            }
        }
    }
    assert_alive(&app).await;
}

crate::both!(the_expanded_document_is_what_counts);
async fn the_expanded_document_is_what_counts(app: TestApp) {
    let admin = app.admin();
    // Fragments that each spread the previous one twice: 1 KB of text, 2^25 fields.
    let mut doubling = String::from("query { ...F25 } fragment F0 on Query { __typename }");
    for level in 1..=25 {
        doubling.push_str(&format!(
            " fragment F{level} on Query {{ ...F{p} ...F{p} }}",
            p = level - 1
        ));
    }
    for token in [None, Some(admin.as_str())] {
        let (status, body) = app.post(token, None, &doubling, Value::Null).await;
        assert_refused("fragment doubling", status, &body);
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("expanded"),
            "{body}"
        );
    }
    // Lists count by their size: `first` from a literal or a variable.
    let (status, body) = app
        .post(
            Some(&admin),
            None,
            "query($n: Int) { a: tenants(first: $n) { nodes { id slug name status } \
                } b: tenants(first: $n) { nodes { id slug name status } } }",
            json!({ "n": 1000 }),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        code(&body).is_none(),
        "10,000 fields are within the budget: {body}"
    );
    assert_alive(&app).await;
}

crate::both!(nested_css_is_refused);
async fn nested_css_is_refused(app: TestApp) {
    let admin = app.admin();
    app.create_tenant("css-depth").await;
    for depth in [17, 1_000, 4_000] {
        let css = nest("a{", "color:red", "}", depth);
        let body = app
            .gql(
                &admin,
                Some("css-depth"),
                "mutation($css: String!) { updateBranding(input: { customCss: $css }) { customCss } }",
                json!({ "css": css }),
            )
            .await;
        assert_eq!(
            code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "depth {depth}: {body}"
        );
    }
    assert_alive(&app).await;
}

crate::both!(headers_that_do_not_decode_are_refused);
async fn headers_that_do_not_decode_are_refused(app: TestApp) {
    let admin = app.admin();
    let body = br#"{"query":"{ me { subject } }"}"#;
    for header in ["x-tenant", "host"] {
        let mut request = b"POST /graphql HTTP/1.1\r\n".to_vec();
        let host: &[u8] = if header == "host" {
            b"caf\xe9.example"
        } else {
            b"localhost"
        };
        request.extend_from_slice(b"Host: ");
        request.extend_from_slice(host);
        request.extend_from_slice(b"\r\n");
        if header == "x-tenant" {
            request.extend_from_slice(b"X-Tenant: acme\xff\xfe\r\n");
        }
        request.extend_from_slice(
            format!(
                "Authorization: Bearer {admin}\r\nContent-Type: \
                    application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        request.extend_from_slice(body);
        let response = send_raw(&app, request).await;
        assert!(response.contains("BAD_USER_INPUT"), "{header}: {response}");
        assert!(
            response.contains(header),
            "names the header {header}: {response}"
        );
        assert!(
            !response.contains("\"data\""),
            "{header}: nothing served: {response}"
        );
    }
    assert_alive(&app).await;
}

crate::both!(tokens_with_crit_or_embedded_keys_are_refused);
async fn tokens_with_crit_or_embedded_keys_are_refused(app: TestApp) {
    let claims = json!({ "sub": "crit@example.test", "exp": chrono::Utc::now().timestamp() + 600 });
    for header in [
        json!({ "alg": "HS256", "typ": "JWT", "crit": ["exp"] }),
        json!({ "alg": "HS256", "typ": "JWT", "crit": ["urn:example:unknown"], "urn:example:unknown": true }),
        json!({ "alg": "HS256", "typ": "JWT", "jku": "https://attacker.example/keys" }),
        json!({ "alg": "HS256", "typ": "JWT", "x5u": "https://attacker.example/cert" }),
    ] {
        let token = sign_hs256(&header, &claims);
        let (_, body) = app
            .post(Some(&token), None, "{ me { subject } }", Value::Null)
            .await;
        assert_eq!(
            code(&body).as_deref(),
            Some("UNAUTHENTICATED"),
            "{header}: {body}"
        );
    }
    // The same claims under a plain header are accepted: the refusal is the header's.
    let token = sign_hs256(&json!({ "alg": "HS256", "typ": "JWT" }), &claims);
    let (_, body) = app
        .post(Some(&token), None, "{ me { subject } }", Value::Null)
        .await;
    assert!(code(&body).is_none(), "{body}");
}

/// An HS256 token with an arbitrary header, signed with the test secret.
pub fn sign_hs256(header: &Value, claims: &Value) -> String {
    use base64::Engine;
    use sha2::Digest;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    // HMAC-SHA256 by its definition (RFC 2104), to sign headers no JWT library would write.
    let key = crate::harness::TEST_SECRET.as_bytes();
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = sha2::Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(input.as_bytes())
        .finalize();
    let mac = sha2::Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    format!("{input}.{}", b64(&mac))
}

/// Writes raw bytes to the server and returns everything it answers until it closes.
async fn send_raw(app: &TestApp, request: Vec<u8>) -> String {
    let addr = app
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(&request).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).to_string()
}

crate::both_backends!(a_panic_costs_one_request);
async fn a_panic_costs_one_request(backend: Backend) {
    let Some(app) = TestApp::spawn_with(
        backend,
        |config| config.request_failpoint = Some("panic".into()),
        Default::default(),
    )
    .await
    else {
        return;
    };
    let admin = app.admin();
    let panicking = format!(
        "query {} {{ me {{ subject }} }}",
        forklift::http::execution::PANIC_OPERATION
    );
    let response = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&admin)
        .json(&json!({ "query": panicking, "operationName": forklift::http::execution::PANIC_OPERATION }))
        .send()
        .await
        .expect("the panicking request is answered");
    assert_eq!(response.status().as_u16(), 500);
    assert!(response.headers().get("x-request-id").is_some());
    let body: Value = response.json().await.expect("json");
    assert_eq!(code(&body).as_deref(), Some("INTERNAL"), "{body}");
    assert_eq!(
        body["errors"][0]["message"], "internal error",
        "nothing of the panic leaks"
    );
    assert_alive(&app).await;
    // On a socket: the panicking operation ends with an INTERNAL error, the socket and its
    // next operation carry on.
    let mut socket = wsclient::connect(&app.ws_url(), "graphql-transport-ws", &admin).await;
    wsclient::send(
        &mut socket,
        json!({ "id": "p", "type": "subscribe", "payload": { "query": panicking,
            "operationName": forklift::http::execution::PANIC_OPERATION } }),
    )
    .await;
    let error = wsclient::next_json(&mut socket).await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(
        error["payload"][0]["extensions"]["code"], "INTERNAL",
        "{error}"
    );
    wsclient::send(
        &mut socket,
        json!({ "id": "q", "type": "subscribe", "payload": { "query": "{ me { subject } }" } }),
    )
    .await;
    let next = wsclient::next_json(&mut socket).await;
    assert_eq!(next["type"], "next", "{next}");
    assert!(
        next["payload"]["data"]["me"]["subject"].is_string(),
        "{next}"
    );
}

crate::both_backends!(slow_headers_are_cut);
async fn slow_headers_are_cut(backend: Backend) {
    let Some(app) = TestApp::spawn_with(
        backend,
        |config| config.header_timeout = Duration::from_secs(1),
        Default::default(),
    )
    .await
    else {
        return;
    };
    let addr = app
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let started = Instant::now();
    let header = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut cut = None;
    for byte in header.iter().cycle().take(200) {
        if slow.write_all(&[*byte]).await.is_err() {
            cut = Some(started.elapsed());
            break;
        }
        // Meanwhile other clients are served.
        let ok = app
            .http
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("healthz");
        assert_eq!(ok.status().as_u16(), 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if cut.is_none() {
        // The server may have closed without our write failing yet: read the close.
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(2), slow.read(&mut buf)).await;
        if matches!(read, Ok(Ok(0)) | Ok(Err(_))) {
            cut = Some(started.elapsed());
        }
    }
    let cut = cut.expect("the slow connection was closed");
    assert!(
        cut >= Duration::from_millis(900) && cut < Duration::from_secs(15),
        "{cut:?}"
    );
}

/// Deeply nested YAML of every shape: flow sequences and mappings, block sequences on one line,
/// and indented block mappings.
fn nested_sheets() -> Vec<(String, String)> {
    let mut sheets = Vec::new();
    for depth in [33, 200, 2_000, 100_000] {
        sheets.push((
            format!("flow sequence {depth}"),
            format!("application: {}", nest("[", "1", "]", depth)),
        ));
        sheets.push((
            format!("flow mapping {depth}"),
            format!("application: {}", nest("{a: ", "1", "}", depth)),
        ));
        sheets.push((
            format!("block sequence {depth}"),
            format!("application:\n  {}1\n", "- ".repeat(depth)),
        ));
        if depth <= 2_000 {
            let mut text = String::from("application:\n");
            for level in 1..=depth {
                text.push_str(&" ".repeat(level));
                text.push_str("a:\n");
            }
            sheets.push((format!("block mapping {depth}"), text));
        }
    }
    sheets
}

crate::both!(nested_sheets_are_refused);
async fn nested_sheets_are_refused(app: TestApp) {
    let author = app.token("author@platform.test", None, false, &["template:author"]);
    let mutation = "mutation($files: [SheetFileInput!]!) { importSheets(files: $files, \
        dryRun: true) { ok errors { file line message } } }";
    for (what, content) in nested_sheets() {
        let body = app
            .gql(
                &author,
                None,
                mutation,
                json!({ "files": [{ "name": "deep.yaml", "content": content }] }),
            )
            .await;
        let refused_as_input = code(&body).as_deref() == Some("BAD_USER_INPUT");
        let reported = body["data"]["importSheets"]["ok"] == false
            && body["data"]["importSheets"]["errors"]
                .as_array()
                .is_some_and(|e| !e.is_empty());
        assert!(refused_as_input || reported, "{what}: {body}");
    }
    assert_alive(&app).await;
}

#[test]
fn the_cli_refuses_nested_sheets() {
    let dir = std::env::temp_dir().join(format!("forklift-deep-sheets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (i, (what, content)) in nested_sheets().into_iter().enumerate() {
        let file = dir.join(format!("deep-{i}.yaml"));
        std::fs::write(&file, content).expect("write sheet");
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_forklift"))
            .args(["sheets", "validate"])
            .arg(&file)
            .output()
            .expect("forklift runs");
        // A refusal is an ordinary failure exit, never a signal (a stack overflow aborts).
        assert_eq!(output.status.code(), Some(1), "{what}: {output:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
