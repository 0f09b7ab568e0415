//! OpenTelemetry export: a real server process sends its spans over OTLP/HTTP to a collector
//! (here a minimal HTTP listener) when built with `--features otel`; without the feature it
//! still starts and serves with an endpoint configured.

use std::time::Duration;

use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::mpsc,
};

use crate::{
    harness::{Backend, TestApp},
    replicas::Child,
};

/// One request the collector received: its request line and body.
type Received = (String, Vec<u8>);

/// Accepts HTTP/1.1 requests, answers 200 and reports each one.
async fn collector() -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buffer[..end]).to_string();
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buffer.len() < end + 4 + length {
                        continue;
                    }
                    let body = buffer[end + 4..end + 4 + length].to_vec();
                    let _ = tx.send((head.lines().next().unwrap_or_default().to_string(), body));
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\ncontent-type: \
                                application/x-protobuf\r\n\r\n",
                        )
                        .await;
                    buffer.drain(..end + 4 + length);
                }
            });
        }
    });
    (format!("http://{addr}"), rx)
}

crate::both_backends!(spans_are_exported_over_otlp_when_built_with_the_otel_feature);
async fn spans_are_exported_over_otlp_when_built_with_the_otel_feature(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (endpoint, mut received) = collector().await;
    let child = Child::start(
        &app,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SERVICE_NAME", "forklift-under-test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("RUST_LOG", "info"),
        ],
    )
    .await;
    let response = reqwest::Client::new()
        .post(format!("{}/graphql", child.base))
        .bearer_auth(app.admin())
        .json(&json!({ "query": "{ tenants(first: 1) { totalCount } }" }))
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.status().as_u16(),
        200,
        "the server answers with an endpoint configured"
    );
    // With the feature the batch goes out within 100 ms; without it, two seconds of silence.
    let wait = Duration::from_secs(if cfg!(feature = "otel") { 15 } else { 2 });
    let exported = tokio::time::timeout(wait, async {
        loop {
            let (line, body) = received.recv().await?;
            let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
            if line.starts_with("POST /v1/traces")
                && has(b"forklift-under-test")
                && has(b"http.path")
                && has(b"request.id")
            {
                return Some(line);
            }
        }
    })
    .await
    .ok()
    .flatten();
    if cfg!(feature = "otel") {
        assert!(exported.is_some(), "the request span reached the collector");
    } else {
        assert!(exported.is_none(), "a build without `otel` exports nothing");
    }
}
