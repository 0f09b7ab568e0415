//! The shape of responses, as the GraphQL spec and the clients built on it (Apollo, Relay,
//! urql) expect, on HTTP and on both WebSocket protocols: keys in the order of the query, a
//! failed field `null` with its error's `path` (bubbling to the nearest nullable parent), and
//! `data` present once execution started.

use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::{harness::TestApp, wsclient};

/// The transports a response can come back on.
#[derive(Copy, Clone, Debug)]
enum Transport {
    Http,
    GraphqlTransportWs,
    LegacyWs,
}

const TRANSPORTS: [Transport; 3] = [
    Transport::Http,
    Transport::GraphqlTransportWs,
    Transport::LegacyWs,
];

/// Runs `query` as the platform admin over `transport` and returns the raw text of the
/// GraphQL response (`payload` of the first `next`/`data` or `error` message on WebSocket).
async fn raw(app: &TestApp, transport: Transport, tenant: Option<&str>, query: &str) -> String {
    let token = app.admin();
    match transport {
        Transport::Http => {
            let mut request = app
                .http
                .post(app.url("/graphql"))
                .bearer_auth(&token)
                .json(&json!({ "query": query }));
            if let Some(tenant) = tenant {
                request = request.header("X-Tenant", tenant);
            }
            let response = request.send().await.expect("request");
            assert_eq!(response.status().as_u16(), 200);
            response.text().await.expect("body")
        }
        Transport::GraphqlTransportWs | Transport::LegacyWs => {
            let (protocol, subscribe) = match transport {
                Transport::GraphqlTransportWs => ("graphql-transport-ws", "subscribe"),
                _ => ("graphql-ws", "start"),
            };
            let mut socket = wsclient::open(&app.ws_url(), protocol).await;
            let mut init = json!({ "Authorization": format!("Bearer {token}") });
            if let Some(tenant) = tenant {
                init["X-Tenant"] = json!(tenant);
            }
            wsclient::send(
                &mut socket,
                json!({ "type": "connection_init", "payload": init }),
            )
            .await;
            wsclient::send(
                &mut socket,
                json!({ "id": "1", "type": subscribe, "payload": { "query": query } }),
            )
            .await;
            loop {
                let frame = tokio::time::timeout(std::time::Duration::from_secs(20), socket.next())
                    .await
                    .expect("a frame within 20 s")
                    .expect("socket open")
                    .expect("frame");
                let Message::Text(text) = frame else { continue };
                let message: Value = serde_json::from_str(&text).expect("json");
                match message["type"].as_str() {
                    Some("next" | "data") => return payload_text(&text),
                    Some("error") => return format!("{{\"errors\":{}}}", payload_text(&text)),
                    _ => continue,
                }
            }
        }
    }
}

/// The raw text of a WebSocket message's `payload`, order kept (the message is written by the
/// server as `{"type":…,"id":…,"payload":…}`).
fn payload_text(message: &str) -> String {
    let start = message.find("\"payload\":").expect("a payload") + "\"payload\":".len();
    message[start..message.len() - 1].to_string()
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

crate::both!(keys_come_back_in_the_order_of_the_query);
async fn keys_come_back_in_the_order_of_the_query(app: TestApp) {
    crate::fixture::seeded_template(&app.state, 2).await;
    app.ready_tenant("acme").await;
    for transport in TRANSPORTS {
        let text = raw(
            &app,
            transport,
            None,
            "{ zeta: __typename alpha: __typename me { subject isPlatformAdmin grants } }",
        )
        .await;
        assert!(
            text.contains(r#""zeta":"Query","alpha":"Query","me":{"subject":"#),
            "{transport:?}: {text}"
        );
        let me = text
            .find("\"subject\"")
            .zip(text.find("\"isPlatformAdmin\""))
            .zip(text.find("\"grants\""));
        let ((subject, admin), grants) = me.expect("all three keys");
        assert!(subject < admin && admin < grants, "{transport:?}: {text}");
        // Root fields resolve concurrently; a slow one (a database read) still keeps its place
        // before a quick one asked after it.
        let text = raw(
            &app,
            transport,
            Some("acme"),
            "{ first: __typename applications(first: 1) { totalCount } \
                tenants(first: 1) { totalCount } last: __typename }",
        )
        .await;
        let (first, applications, tenants, last) = (
            text.find("\"first\""),
            text.find("\"applications\""),
            text.find("\"tenants\""),
            text.find("\"last\""),
        );
        assert!(
            first.is_some() && first < applications && applications < tenants && tenants < last,
            "{transport:?}: {text}"
        );
        // Generated fields too, nested, in the order asked (not the schema's).
        let text = raw(
            &app,
            transport,
            Some("acme"),
            "{ applications(first: 1) { totalCount nodes { name code id } } }",
        )
        .await;
        let (name, code, id) = (
            text.find("\"name\""),
            text.find("\"code\""),
            text.find("\"id\""),
        );
        assert!(
            text.find("\"totalCount\"") < text.find("\"nodes\""),
            "{transport:?}: {text}"
        );
        assert!(
            name.is_some() && name < code && code < id,
            "{transport:?}: {text}"
        );
    }
}

crate::both!(a_failed_nullable_field_is_null_with_its_path);
async fn a_failed_nullable_field_is_null_with_its_path(app: TestApp) {
    for transport in TRANSPORTS {
        let text = raw(
            &app,
            transport,
            None,
            "{ me { subject } missing: tenant(id: \"nope\") { slug } after: __typename }",
        )
        .await;
        let body = parse(&text);
        // The failed field keeps its key, as null, between its siblings.
        assert_eq!(
            body["data"],
            json!({ "me": { "subject": "admin@platform.test" }, "missing": null, "after": "Query" }),
            "{transport:?}: {text}"
        );
        assert!(
            text.contains(
                r#""me":{"subject":"admin@platform.test"},"missing":null,"after":"Query""#
            ),
            "{transport:?}: {text}"
        );
        let errors = body["errors"].as_array().expect("errors");
        assert_eq!(errors.len(), 1, "{transport:?}: {text}");
        assert_eq!(
            errors[0]["path"],
            json!(["missing"]),
            "{transport:?}: {text}"
        );
        assert_eq!(
            errors[0]["extensions"]["code"], "TENANT_NOT_FOUND",
            "{transport:?}: {text}"
        );
        assert!(errors[0]["locations"].is_array(), "{transport:?}: {text}");
    }
}

crate::both!(a_failed_mutation_answers_data_null);
async fn a_failed_mutation_answers_data_null(app: TestApp) {
    for transport in TRANSPORTS {
        let text = raw(
            &app,
            transport,
            None,
            "mutation { activateTenant(id: \"nope\") { id slug } }",
        )
        .await;
        let body = parse(&text);
        assert!(
            body.as_object().expect("object").contains_key("data"),
            "{transport:?}: {text}"
        );
        assert_eq!(body["data"], Value::Null, "{transport:?}: {text}");
        assert_eq!(
            body["errors"][0]["path"],
            json!(["activateTenant"]),
            "{transport:?}: {text}"
        );
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "TENANT_NOT_FOUND",
            "{transport:?}: {text}"
        );
    }
    // A request that never executed has no `data` at all (the spec), on every transport.
    for transport in TRANSPORTS {
        let text = raw(&app, transport, None, "{ noSuchField }").await;
        let body = parse(&text);
        assert!(body.get("data").is_none(), "{transport:?}: {text}");
        assert!(
            body["errors"][0].get("path").is_none(),
            "{transport:?}: {text}"
        );
    }
}

crate::both!(a_failed_non_null_field_nulls_its_nearest_nullable_parent);
async fn a_failed_non_null_field_nulls_its_nearest_nullable_parent(app: TestApp) {
    // A stored value outside its enum fails the field (an internal error, never the value).
    let id = app.create_tenant("acme").await;
    app.create_tenant("beta").await;
    let owner = app.owner_db().await;
    crate::fixture::exec(
        &owner,
        "UPDATE tenants SET status = 'BOGUS' WHERE slug = 'acme'",
    )
    .await;
    for transport in TRANSPORTS {
        // `tenant` is nullable: it alone becomes null; its siblings stay.
        let query = format!(
            "{{ first: me {{ subject }} tenant(id: \"{id}\") {{ slug status name }} last: __typename }}"
        );
        let text = raw(&app, transport, None, &query).await;
        let body = parse(&text);
        assert_eq!(
            body["data"],
            json!({ "first": { "subject": "admin@platform.test" }, "tenant": null, "last": "Query" }),
            "{transport:?}: {text}"
        );
        let errors = body["errors"].as_array().expect("errors");
        assert_eq!(errors.len(), 1, "{transport:?}: {text}");
        assert_eq!(
            errors[0]["path"],
            json!(["tenant", "status"]),
            "{transport:?}: {text}"
        );
        assert_eq!(
            errors[0]["extensions"]["code"], "INTERNAL",
            "{transport:?}: {text}"
        );
        assert_eq!(
            errors[0]["message"], "internal error",
            "{transport:?}: {text}"
        );
        assert!(
            !text.contains("BOGUS"),
            "the stored value does not leak: {text}"
        );
        // Through a list of non-null items, a non-null connection and a non-null root field:
        // the null reaches `data`, and the path names the list index.
        let text = raw(
            &app,
            transport,
            None,
            "{ tenants(first: 10, search: \"acme\") { totalCount nodes { slug status } } }",
        )
        .await;
        let body = parse(&text);
        assert!(
            body.as_object().expect("object").contains_key("data"),
            "{transport:?}: {text}"
        );
        assert_eq!(body["data"], Value::Null, "{transport:?}: {text}");
        assert_eq!(
            body["errors"][0]["path"],
            json!(["tenants", "nodes", 0, "status"]),
            "{transport:?}: {text}"
        );
    }
}

crate::both!(fixed_sets_are_enums);
async fn fixed_sets_are_enums(app: TestApp) {
    let body = app
        .ok(
            &app.admin(),
            None,
            "{ __schema { types { name kind fields { name type { kind name ofType { \
                kind name ofType { kind name ofType { kind name } } } } } } } }",
            json!({}),
        )
        .await;
    let field_type = |ty: &str, field: &str| -> String {
        let types = body["__schema"]["types"].as_array().expect("types");
        let t = types
            .iter()
            .find(|t| t["name"] == ty)
            .unwrap_or_else(|| panic!("type {ty}"));
        let f = t["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .find(|f| f["name"] == field)
            .unwrap_or_else(|| panic!("{ty}.{field}"));
        let mut t = &f["type"];
        while t["kind"] == "NON_NULL" || t["kind"] == "LIST" {
            t = &t["ofType"];
        }
        format!(
            "{}:{}",
            t["kind"].as_str().unwrap_or(""),
            t["name"].as_str().unwrap_or("")
        )
    };
    for (ty, field, expected) in [
        ("Membership", "role", "ENUM:Role"),
        ("MyMembership", "role", "ENUM:Role"),
        ("MyMembership", "status", "ENUM:TenantStatus"),
        ("Tenant", "status", "ENUM:TenantStatus"),
        ("Tenant", "provisioningState", "ENUM:ProvisioningState"),
        ("Tenant", "kind", "ENUM:TenantKind"),
        ("ForkRun", "status", "ENUM:ForkRunStatus"),
        ("ForkRun", "phase", "ENUM:ForkPhase"),
        ("ForkRun", "failedPhase", "ENUM:ForkPhase"),
        ("ForkRun", "counts", "OBJECT:ForkClassCount"),
        ("ForkRun", "skipped", "OBJECT:ForkSkippedRow"),
        ("ForkClassCount", "phase", "ENUM:ForkPhase"),
        ("ForkEvent", "kind", "ENUM:ForkEventKind"),
        ("ForkEvent", "phase", "ENUM:ForkPhase"),
        ("ForkProgressEvent", "kind", "ENUM:ForkEventKind"),
        ("ForkProgressEvent", "phase", "ENUM:ForkPhase"),
        ("AuditEntry", "outcome", "ENUM:AuditOutcome"),
        ("AccessGrant", "kind", "ENUM:AccessGrantKind"),
    ] {
        assert_eq!(field_type(ty, field), expected, "{ty}.{field}");
    }
    // The values come back as the enum's members, filters take them, and the counts are
    // typed rows.
    crate::fixture::seeded_template(&app.state, 1).await;
    app.ready_tenant("acme").await;
    let data = app
        .ok(
            &app.admin(),
            None,
            "{ tenants(first: 10) { nodes { slug kind status provisioningState } } \
                forkRuns(first: 5, filter: { status: FINISHED }) { totalCount nodes { \
                status phase failedPhase counts { className phase rows created matched \
                skipped removed } skipped { className sourceId column reason } } } }",
            json!({}),
        )
        .await;
    let acme = data["tenants"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|t| t["slug"] == "acme")
        .cloned()
        .expect("acme");
    assert_eq!(
        acme,
        json!({ "slug": "acme", "kind": "TENANT", "status": "ACTIVE", "provisioningState": "READY" })
    );
    assert_eq!(data["forkRuns"]["totalCount"], 1, "{data}");
    let run = &data["forkRuns"]["nodes"][0];
    assert_eq!(run["status"], "FINISHED");
    let counts = run["counts"].as_array().expect("counts");
    assert!(
        counts.iter().any(|c| c["phase"] == "APPLICATION_SPINE"
            && c["className"] == "Application"
            && c["created"].as_i64() > Some(0)),
        "{run}"
    );
    assert!(
        counts
            .iter()
            .all(|c| c["rows"].is_i64() && c["removed"].is_i64()),
        "{run}"
    );
    let none = app
        .ok(
            &app.admin(),
            None,
            "{ forkRuns(filter: { status: ROLLED_BACK }) { totalCount } \
                auditLog(filter: { outcome: REFUSED }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(none["forkRuns"]["totalCount"], 0);
    // A value outside the enum is refused before anything runs.
    let body = app
        .gql(
            &app.admin(),
            None,
            "{ forkRuns(filter: { status: DONE }) { totalCount } }",
            json!({}),
        )
        .await;
    assert!(body.get("data").is_none(), "{body}");
}
