//! Issue #13: what an attacker observes. Lists cost by their size, refused requests cost one
//! audit row, metrics labels are the schema's, a socket re-runs the guard on every operation
//! and closes when its token expires, configured JWT claims are required.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::{
    harness::{Backend, TestApp, code},
    hostile::sign_hs256,
    wsclient::{self, Frame},
};

const CREATE_APP: &str = "mutation($c: String!) { createApplication(input: { code: $c, name: \
    \"A\", routeNamespace: $c }) { id } }";

/// Rows of `table` (all tenants), read as the owner.
async fn rows(app: &TestApp, table: &str) -> i64 {
    let db = app.owner_db().await;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .expect("count")
        .expect("a row");
    row.try_get::<i64>("", "n").expect("n")
}

/// Every audit row, oldest first, as (operation, whether it names a tenant, detail, target).
async fn audit_rows(app: &TestApp) -> Vec<(String, Option<String>, Value, Option<String>)> {
    let db = app.owner_db().await;
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT operation, CASE WHEN tenant_id IS NULL THEN 0 ELSE 1 END AS \
                has_tenant, CAST(detail AS TEXT) AS detail, target FROM audit_entries \
                ORDER BY at, id"
                .to_string(),
        ))
        .await
        .expect("audit rows");
    rows.iter()
        .map(|r| {
            (
                r.try_get::<String>("", "operation").expect("operation"),
                (r.try_get::<i32>("", "has_tenant").expect("has_tenant") == 1)
                    .then(|| "tenant".to_string()),
                serde_json::from_str(&r.try_get::<String>("", "detail").expect("detail"))
                    .unwrap_or(Value::Null),
                r.try_get::<Option<String>>("", "target").expect("target"),
            )
        })
        .collect()
}

crate::both!(lists_cost_by_their_size);
async fn lists_cost_by_their_size(app: TestApp) {
    let admin = app.admin();
    // Aliases × `first`: 15 × 1,000 rows × 4 fields is past the expanded-field budget.
    let fields: Vec<String> = (0..15)
        .map(|i| format!("a{i}: tenants(first: 1000) {{ nodes {{ id slug name status }} }}"))
        .collect();
    let (_, body) = app
        .post(
            Some(&admin),
            None,
            &format!("{{ {} }}", fields.join(" ")),
            Value::Null,
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("expanded"),
        "{body}"
    );
    // `nodes` looks up at most 100 ids per call.
    use base64::Engine;
    let ids: Vec<String> = (0..101)
        .map(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(format!("Tenant:{}", uuid::Uuid::new_v4()))
        })
        .collect();
    let body = app
        .gql(
            &admin,
            None,
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({ "ids": ids }),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    let body = app
        .gql(
            &admin,
            None,
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({ "ids": ids[..100] }),
        )
        .await;
    assert!(code(&body).is_none(), "100 ids are fine: {body}");
}

crate::both!(a_refused_request_writes_one_bounded_audit_row);
async fn a_refused_request_writes_one_bounded_audit_row(app: TestApp) {
    app.ready_tenant("acme").await;
    app.add_member("acme", "v@acme.test", "VIEWER").await;
    let before = audit_rows(&app).await.len();
    // Unauthenticated: 4,000 root fields, one row naming how many.
    let repeated = format!("mutation {{ {} }}", "removeLogo ".repeat(4_000));
    let (_, body) = app.post(None, None, &repeated, Value::Null).await;
    assert_eq!(code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
    let log = audit_rows(&app).await;
    assert_eq!(log.len(), before + 1, "one row for the whole request");
    let (operation, tenant, detail, _) = log.last().expect("row").clone();
    assert_eq!((operation.as_str(), tenant), ("removeLogo", None));
    assert_eq!(detail["rootFields"], 4_000, "{detail}");
    // A 40 KB field name and a 1 MB id are stored cut to their documented sizes.
    let long_name = "x".repeat(40_000);
    app.post(
        None,
        None,
        &format!("mutation {{ {long_name} }}"),
        Value::Null,
    )
    .await;
    let (operation, ..) = audit_rows(&app).await.last().expect("row").clone();
    assert_eq!(
        operation.chars().count(),
        forklift::graphql::audit::MAX_OPERATION_CHARS
    );
    // A stranger naming acme: refused by the guard, logged once, and not in acme's log.
    let stranger = app.token("s@else.test", None, false, &[]);
    let body = app
        .gql(
            &stranger,
            Some("acme"),
            "mutation($id: ID!) { a: removeMember(id: $id) b: removeMember(id: $id) }",
            json!({ "id": "x".repeat(1_000_000) }),
        )
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("CROSS_TENANT_DENIED"),
        "{body}"
    );
    let (_, tenant, detail, _) = audit_rows(&app).await.last().expect("row").clone();
    assert_eq!(tenant, None, "a stranger writes nothing into acme's log");
    assert_eq!(detail["rootFields"], 2);
    // A member whose every field is refused: one row with the count, target bounded.
    let viewer = app.token("v@acme.test", None, false, &[]);
    let before = audit_rows(&app).await.len();
    let long_id = "i".repeat(1_000_000);
    let body = app
        .gql(
            &viewer,
            Some("acme"),
            "mutation($id: ID!) { a: deleteApplication(id: $id) b: \
                deleteApplication(id: $id) c: deleteApplication(id: $id) }",
            json!({ "id": long_id }),
        )
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("BAD_USER_INPUT"),
        "a million-character id: {body}"
    );
    let log = audit_rows(&app).await;
    assert_eq!(log.len(), before + 1, "{:?}", &log[before..]);
    let (_, tenant, detail, target) = log.last().expect("row").clone();
    assert!(
        tenant.is_some(),
        "a member's refusal is in its tenant's log"
    );
    assert_eq!(detail["refusedFields"], 3, "{detail}");
    assert_eq!(
        target.map(|t| t.chars().count()),
        Some(forklift::graphql::audit::MAX_TARGET_CHARS)
    );
}

crate::both!(metrics_labels_are_the_schemas);
async fn metrics_labels_are_the_schemas(app: TestApp) {
    let admin = app.admin();
    app.ok(&admin, None, "{ me { subject } }", Value::Null)
        .await;
    let before = app.metrics().await.len();
    for i in 0..300 {
        app.post(
            Some(&admin),
            None,
            &format!("{{ made_up_field_{i} }}"),
            Value::Null,
        )
        .await;
    }
    let text = app.metrics().await;
    assert!(
        !text.contains("made_up_field"),
        "client text never becomes a label"
    );
    assert!(text.contains("operation=\"unknown\""), "{text}");
    assert!(
        text.len() < before + 4_096,
        "{} → {} bytes",
        before,
        text.len()
    );
    assert!(
        text.contains(
            "forklift_graphql_request_duration_seconds_count{operation=\"me\",outcome=\"ok\"}"
        ),
        "{text}"
    );
}

crate::both!(a_socket_runs_the_guards_current_decision);
async fn a_socket_runs_the_guards_current_decision(app: TestApp) {
    let acme = app.ready_tenant("acme").await;
    let membership = app.add_member("acme", "e@acme.test", "EDITOR").await;
    app.add_member("acme", "o@acme.test", "OWNER").await;
    let admin = app.admin();
    // A member removed while its socket stays open (graphql-transport-ws).
    let editor = app.token("e@acme.test", Some("acme"), false, &[]);
    let mut socket = wsclient::connect(&app.ws_url(), "graphql-transport-ws", &editor).await;
    wsclient::send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": CREATE_APP,
            "variables": { "c": "before" } } }),
    )
    .await;
    let created = wsclient::next_json(&mut socket).await;
    assert!(
        created["payload"]["data"]["createApplication"]["id"].is_string(),
        "{created}"
    );
    assert_eq!(wsclient::next_json(&mut socket).await["type"], "complete");
    app.ok(
        &admin,
        Some("acme"),
        "mutation($id: ID!) { removeMember(id: $id) }",
        json!({ "id": membership }),
    )
    .await;
    let apps_before = rows(&app, "applications").await;
    wsclient::send(
        &mut socket,
        json!({ "id": "2", "type": "subscribe", "payload": { "query": CREATE_APP,
            "variables": { "c": "after" } } }),
    )
    .await;
    let refused = wsclient::next_json(&mut socket).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"], "CROSS_TENANT_DENIED",
        "{refused}"
    );
    assert_eq!(
        rows(&app, "applications").await,
        apps_before,
        "nothing written after the removal"
    );
    // A tenant suspended while an owner's socket stays open (legacy graphql-ws).
    let owner = app.token("o@acme.test", Some("acme"), false, &[]);
    let mut socket = wsclient::connect(&app.ws_url(), "graphql-ws", &owner).await;
    app.ok(
        &admin,
        None,
        "mutation($id: ID!) { suspendTenant(id: $id, reason: \"Unpaid\") { status } }",
        json!({ "id": acme }),
    )
    .await;
    wsclient::send(
        &mut socket,
        json!({ "id": "3", "type": "start", "payload": { "query": CREATE_APP,
            "variables": { "c": "suspended" } } }),
    )
    .await;
    let refused = wsclient::next_json(&mut socket).await;
    assert_eq!(
        refused["payload"][0]["extensions"]["code"], "TENANT_SUSPENDED",
        "{refused}"
    );
    assert_eq!(
        rows(&app, "applications").await,
        apps_before,
        "nothing written after the suspension"
    );
}

crate::both!(a_socket_closes_when_its_token_expires);
async fn a_socket_closes_when_its_token_expires(app: TestApp) {
    // A token two seconds from the end of its validity (expiry plus the verifier's leeway).
    let leeway = forklift::auth::LEEWAY_SECS as i64;
    let claims =
        |exp: i64| json!({ "sub": "admin@platform.test", "exp": exp, "platform_role": "admin" });
    let now = chrono::Utc::now().timestamp();
    let header = json!({ "alg": "HS256", "typ": "JWT" });
    let ending = sign_hs256(&header, &claims(now - leeway + 2));
    let mut socket = wsclient::connect(&app.ws_url(), "graphql-transport-ws", &ending).await;
    // (`next` waits at most 20 s: the close comes at expiry, not at some later sweep.)
    match wsclient::next(&mut socket).await {
        Frame::Closed(code, reason) => {
            assert_eq!(code, 4403, "{reason}");
            assert!(reason.contains("expired"), "{reason}");
        }
        Frame::Json(m) => panic!("expected a close, got {m}"),
    }
    // Renewal: a ping carrying a fresh token for the same subject keeps the socket open.
    let ending = sign_hs256(
        &header,
        &claims(chrono::Utc::now().timestamp() - leeway + 3),
    );
    let fresh = sign_hs256(&header, &claims(chrono::Utc::now().timestamp() + 600));
    let mut socket = wsclient::connect(&app.ws_url(), "graphql-transport-ws", &ending).await;
    wsclient::send(
        &mut socket,
        json!({ "type": "ping", "payload": { "token": fresh } }),
    )
    .await;
    let pong = wsclient::next_json(&mut socket).await;
    assert_eq!(
        pong,
        json!({ "type": "pong", "payload": { "renewed": true } })
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    wsclient::send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ me { subject } }" } }),
    )
    .await;
    let answer = wsclient::next_json(&mut socket).await;
    assert_eq!(
        answer["payload"]["data"]["me"]["subject"], "admin@platform.test",
        "{answer}"
    );
    // Another subject's token is not a renewal.
    let other = sign_hs256(
        &header,
        &json!({ "sub": "mallory@else.test", "exp": chrono::Utc::now().timestamp() + 600 }),
    );
    wsclient::send(
        &mut socket,
        json!({ "type": "ping", "payload": { "token": other } }),
    )
    .await;
    loop {
        match wsclient::next(&mut socket).await {
            Frame::Json(m) if m["type"] == "complete" => continue,
            Frame::Closed(code, _) => {
                assert_eq!(code, 4403);
                break;
            }
            Frame::Json(m) => panic!("expected a close, got {m}"),
        }
    }
}

crate::both!(sheets_need_the_same_grants_as_the_api);
async fn sheets_need_the_same_grants_as_the_api(app: TestApp) {
    let mutation = "mutation($files: [SheetFileInput!]!) { importSheets(files: $files) { ok errors { message } } }";
    let vocabulary = "vocabulary:\n  surface_types:\n    - { key: hijacked, name: Hijacked, \
        is_public: false }\n  custom_types:\n    - { key: ledger, name: Ledger \
        }\n";
    let files = json!([{ "name": "vocabulary.yaml", "content": vocabulary }]);
    let surfaces = rows(&app, "surface_types").await;
    // A template author without vocabulary:author: refused like updateSurfaceType, nothing written.
    let author = app.token("author@platform.test", None, false, &["template:author"]);
    let body = app
        .gql(&author, None, mutation, json!({ "files": files }))
        .await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    assert_eq!(
        rows(&app, "surface_types").await,
        surfaces,
        "no vocabulary written"
    );
    let body = app
        .gql(
            &author,
            None,
            "mutation { createSurfaceType(input: { key: \"x\", name: \"X\", \
                isPublic: true }) { id } }",
            Value::Null,
        )
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("FORBIDDEN"),
        "the API agrees: {body}"
    );
    // With the grant it goes through; a custom type declared without `forkable` is not forked.
    let both = app.token(
        "vocab@platform.test",
        None,
        false,
        &["template:author", "vocabulary:author"],
    );
    let data = app
        .ok(&both, None, mutation, json!({ "files": files }))
        .await;
    assert_eq!(data["importSheets"]["ok"], true, "{data}");
    let types = app
        .ok(
            &both,
            None,
            "{ customTypes(first: 10) { nodes { key forkable } } }",
            Value::Null,
        )
        .await;
    let ledger = types["customTypes"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|t| t["key"] == "ledger")
        .cloned();
    assert_eq!(
        ledger.map(|t| t["forkable"].clone()),
        Some(json!(false)),
        "{types}"
    );
}

crate::both!(websocket_operations_are_counted_and_coded);
async fn websocket_operations_are_counted_and_coded(app: TestApp) {
    let admin = app.admin();
    let mut socket = wsclient::connect(&app.ws_url(), "graphql-transport-ws", &admin).await;
    for id in 0..3 {
        wsclient::send(
            &mut socket,
            json!({ "id": id.to_string(), "type": "subscribe",
                "payload": { "query": "{ me { subject } }" } }),
        )
        .await;
        assert_eq!(wsclient::next_json(&mut socket).await["type"], "next");
        assert_eq!(wsclient::next_json(&mut socket).await["type"], "complete");
    }
    // An error without a code of its own gets one, as over HTTP.
    wsclient::send(
        &mut socket,
        json!({ "id": "bad", "type": "subscribe", "payload": { "query": "{ nope }" } }),
    )
    .await;
    let error = wsclient::next_json(&mut socket).await;
    assert_eq!(
        error["payload"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{error}"
    );
    let text = app.metrics().await;
    assert!(
        text.contains(
            "forklift_graphql_request_duration_seconds_count{operation=\"me\",outcome=\"ok\"} 3"
        ),
        "{text}"
    );
}

crate::both_backends!(configured_issuer_and_audience_are_required);
async fn configured_issuer_and_audience_are_required(backend: Backend) {
    let Some(app) = TestApp::spawn_with(
        backend,
        |config| {
            config.jwt_issuer = Some("https://issuer.test".into());
            config.jwt_audience = Some("forklift".into());
        },
        Default::default(),
    )
    .await
    else {
        return;
    };
    let header = json!({ "alg": "HS256", "typ": "JWT" });
    let exp = chrono::Utc::now().timestamp() + 600;
    let cases = [
        (
            json!({ "sub": "a@x.test", "exp": exp, "aud": "forklift" }),
            false,
            "no iss",
        ),
        (
            json!({ "sub": "a@x.test", "exp": exp, "iss": "https://issuer.test" }),
            false,
            "no aud",
        ),
        (
            json!({ "sub": "a@x.test", "exp": exp, "iss": "https://issuer.test", "aud": ["other", "forklift"] }),
            true,
            "aud array with ours",
        ),
        (
            json!({ "sub": "a@x.test", "exp": exp, "iss": "https://issuer.test", "aud": ["other"] }),
            false,
            "aud array without ours",
        ),
        (
            json!({ "sub": "a@x.test", "exp": exp, "iss": "https://issuer.test", "aud": "forklift" }),
            true,
            "both",
        ),
    ];
    for (claims, accepted, what) in cases {
        let token = sign_hs256(&header, &claims);
        let (_, body) = app
            .post(Some(&token), None, "{ me { subject } }", Value::Null)
            .await;
        if accepted {
            assert_eq!(body["data"]["me"]["subject"], "a@x.test", "{what}: {body}");
        } else {
            assert_eq!(
                code(&body).as_deref(),
                Some("UNAUTHENTICATED"),
                "{what}: {body}"
            );
        }
    }
}
