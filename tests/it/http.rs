//! Issue #8: GraphQL over HTTP — media types and status codes as the spec has them.

use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, code};

async fn post(
    app: &TestApp,
    accept: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, String, Value) {
    let mut request = app
        .http
        .post(app.url("/graphql"))
        .header("accept", accept)
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = response.text().await.expect("body");
    (
        status,
        content_type,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

crate::both!(media_types_and_status_codes_follow_the_spec);
async fn media_types_and_status_codes_follow_the_spec(app: TestApp) {
    let admin = app.admin();
    let gql_json = "application/graphql-response+json";
    // A good request: 200 with the negotiated type.
    let (status, ct, body) = post(
        &app,
        gql_json,
        Some(&admin),
        json!({ "query": "{ me { subject } }" }),
    )
    .await;
    assert_eq!((status, ct.starts_with(gql_json)), (200, true), "{body}");
    let (status, ct, _) = post(
        &app,
        "application/json",
        Some(&admin),
        json!({ "query": "{ me { subject } }" }),
    )
    .await;
    assert_eq!((status, ct.starts_with("application/json")), (200, true));
    // Unparsable and invalid documents: 400 without `data` for graphql-response+json…
    for query in ["{", "{ nope }"] {
        let (status, _, body) = post(&app, gql_json, Some(&admin), json!({ "query": query })).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.get("data").is_none(), "{query}: no data key: {body}");
        assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    }
    // …and 200 (still without `data`) for application/json.
    let (status, _, body) = post(
        &app,
        "application/json",
        Some(&admin),
        json!({ "query": "{" }),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.get("data").is_none(), "{body}");
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    // A refused token: 401 with graphql-response+json.
    let (status, _, body) = post(
        &app,
        gql_json,
        None,
        json!({ "query": "{ me { subject } }" }),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(code(&body).as_deref(), Some("UNAUTHENTICATED"));
    // Neither type acceptable: 406. No query string: 400.
    let (status, _, _) = post(
        &app,
        "text/html",
        Some(&admin),
        json!({ "query": "{ me { subject } }" }),
    )
    .await;
    assert_eq!(status, 406);
    let (status, _, body) = post(
        &app,
        gql_json,
        Some(&admin),
        json!({ "qeury": "{ me { subject } }" }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // A wrong content type: 415.
    let response = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&admin)
        .header("content-type", "text/plain")
        .body("{ me { subject } }")
        .send()
        .await
        .expect("post");
    assert_eq!(response.status().as_u16(), 415);
    // Every response names its request.
    let response = app.http.get(app.url("/healthz")).send().await.expect("get");
    assert!(
        response.headers().get("x-request-id").is_some(),
        "a request id on every response"
    );
}

crate::both!(graphiql_and_the_monitor_are_served_from_the_binary);
async fn graphiql_and_the_monitor_are_served_from_the_binary(app: TestApp) {
    let page = app
        .http
        .get(app.url("/graphiql"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("text");
    for asset in [
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "react-dom.production.min.js",
    ] {
        assert!(
            page.contains(&format!("\"/assets/{asset}\"")),
            "{asset} from this server"
        );
        let response = app
            .http
            .get(app.url(&format!("/assets/{asset}")))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .expect("asset");
        assert_eq!(response.status().as_u16(), 200, "{asset}");
        assert_eq!(response.headers()["content-encoding"], "gzip", "{asset}");
        let bytes = response.bytes().await.expect("bytes");
        assert!(
            bytes.len() > 1000 && bytes[..2] == [0x1f, 0x8b],
            "{asset}: gzip bytes"
        );
    }
    assert!(
        !page.contains("unpkg.com") && !page.contains("https://"),
        "no CDN: {page}"
    );
    assert!(
        page.contains("/graphql/ws"),
        "pointed at the WebSocket endpoint too"
    );
    let response = app
        .http
        .get(app.url("/assets/graphiql.min.js"))
        .header("accept-encoding", "identity")
        .send()
        .await
        .expect("asset");
    assert_eq!(response.status().as_u16(), 406, "gzip refused: said so");
    let unknown = app
        .http
        .get(app.url("/assets/..%2F..%2Fetc%2Fpasswd"))
        .send()
        .await
        .expect("asset");
    assert_eq!(
        unknown.status().as_u16(),
        404,
        "only the listed assets are served"
    );
    let monitor = app
        .http
        .get(app.url("/monitor"))
        .send()
        .await
        .expect("monitor")
        .text()
        .await
        .expect("text");
    assert!(monitor.contains("forkProgress") && monitor.contains("graphql-transport-ws"));
}

crate::both!(automatic_persisted_queries_save_the_query_text);
async fn automatic_persisted_queries_save_the_query_text(app: TestApp) {
    let admin = app.admin();
    let query = "{ me { subject } }";
    let hash = {
        use std::fmt::Write;
        let digest = <sha2::Sha256 as sha2::Digest>::digest(query.as_bytes());
        digest.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    };
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let (_, _, body) = post(
        &app,
        "application/json",
        Some(&admin),
        json!({ "extensions": extensions }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["message"], "PersistedQueryNotFound",
        "{body}"
    );
    let (_, _, body) = post(
        &app,
        "application/json",
        Some(&admin),
        json!({ "query": query, "extensions": extensions }),
    )
    .await;
    assert_eq!(
        body["data"]["me"]["subject"], "admin@platform.test",
        "{body}"
    );
    let (_, _, body) = post(
        &app,
        "application/json",
        Some(&admin),
        json!({ "extensions": extensions }),
    )
    .await;
    assert_eq!(
        body["data"]["me"]["subject"], "admin@platform.test",
        "the hash alone now runs it: {body}"
    );
}

crate::both_backends!(requests_beyond_the_concurrency_limit_wait_their_turn);
async fn requests_beyond_the_concurrency_limit_wait_their_turn(backend: Backend) {
    use forklift::registry::Registry;
    let Some(app) = TestApp::spawn_with(
        backend,
        |c| c.max_concurrent_requests = 1,
        Registry::default(),
    )
    .await
    else {
        return;
    };
    let admin = app.admin();
    app.create_tenant("acme").await;
    // Twelve at once through one permit: every one answers, none is refused.
    let answers = futures::future::join_all((0..12).map(|_| {
        app.post(
            Some(&admin),
            None,
            "{ tenants(first: 10) { totalCount nodes { slug } } }",
            json!({}),
        )
    }))
    .await;
    for (status, body) in answers {
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
        assert_eq!(
            body["data"]["tenants"]["nodes"][0]["slug"], "acme",
            "{body}"
        );
    }
}

crate::both!(concurrent_writers_in_one_tenant_all_succeed);
/// Writers that read before they write (the hand-written branding and member operations, the
/// generated surface's creates) all succeed when they arrive together: none answers `INTERNAL`
/// because another writer committed between its read and its write (SQLite's deferred
/// transactions would; writers begin with the write lock there).
async fn concurrent_writers_in_one_tenant_all_succeed(app: TestApp) {
    app.ready_tenant("acme").await;
    let admin = app.admin();
    let requests = (0..24).map(|i| {
        let (query, variables) = match i % 3 {
            0 => (
                "mutation($c: String!) { updateBranding(input: { primaryColor: $c }) { primaryColor } }",
                json!({ "c": format!("#{:06x}", i * 4099) }),
            ),
            1 => (
                "mutation($i: CreateApplicationInput!) { createApplication(input: $i) { code } }",
                json!({ "i": { "code": format!("app{i}"), "name": format!("App {i}"),
                               "routeNamespace": format!("app{i}") } }),
            ),
            _ => (
                "mutation($e: String!) { addMember(email: $e, role: EDITOR) { role } }",
                json!({ "e": format!("member{i}@acme.test") }),
            ),
        };
        app.post(Some(&admin), Some("acme"), query, variables)
    });
    for (status, body) in futures::future::join_all(requests).await {
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
    }
    let data = app
        .ok(
            &admin,
            Some("acme"),
            "{ applications(filter: { code: \"app1\" }) { totalCount } \
               memberships(filter: { role: EDITOR }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(data["applications"]["totalCount"], 1, "{data}");
    assert_eq!(data["memberships"]["totalCount"], 8, "{data}");
}
