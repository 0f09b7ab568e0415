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

crate::both! {
    async fn keys_come_back_in_the_order_of_the_query(app) {
        crate::fixture::seeded_template(&app.state, 2).await;
        app.ready_tenant("acme").await;
        for transport in TRANSPORTS {
            let text = raw(&app, transport, None, "{ zeta: __typename alpha: __typename me { subject isPlatformAdmin grants } }").await;
            assert!(
                text.contains(r#""zeta":"Query","alpha":"Query","me":{"subject":"#),
                "{transport:?}: {text}"
            );
            let me = text.find("\"subject\"").zip(text.find("\"isPlatformAdmin\"")).zip(text.find("\"grants\""));
            let ((subject, admin), grants) = me.expect("all three keys");
            assert!(subject < admin && admin < grants, "{transport:?}: {text}");
            // Generated fields too, nested, in the order asked (not the schema's).
            let text = raw(&app, transport, Some("acme"), "{ applications(first: 1) { totalCount nodes { name code id } } }").await;
            let (name, code, id) = (text.find("\"name\""), text.find("\"code\""), text.find("\"id\""));
            assert!(text.find("\"totalCount\"") < text.find("\"nodes\""), "{transport:?}: {text}");
            assert!(name.is_some() && name < code && code < id, "{transport:?}: {text}");
        }
    }

    async fn a_failed_nullable_field_is_null_with_its_path(app) {
        for transport in TRANSPORTS {
            let text = raw(&app, transport, None, "{ me { subject } missing: tenant(id: \"nope\") { slug } after: __typename }").await;
            let body = parse(&text);
            // The failed field keeps its key, as null, between its siblings.
            assert_eq!(body["data"], json!({ "me": { "subject": "admin@platform.test" }, "missing": null, "after": "Query" }), "{transport:?}: {text}");
            assert!(text.contains(r#""me":{"subject":"admin@platform.test"},"missing":null,"after":"Query""#), "{transport:?}: {text}");
            let errors = body["errors"].as_array().expect("errors");
            assert_eq!(errors.len(), 1, "{transport:?}: {text}");
            assert_eq!(errors[0]["path"], json!(["missing"]), "{transport:?}: {text}");
            assert_eq!(errors[0]["extensions"]["code"], "BAD_USER_INPUT", "{transport:?}: {text}");
            assert!(errors[0]["locations"].is_array(), "{transport:?}: {text}");
        }
    }

    async fn a_failed_mutation_answers_data_null(app) {
        for transport in TRANSPORTS {
            let text = raw(&app, transport, None, "mutation { activateTenant(id: \"nope\") { id slug } }").await;
            let body = parse(&text);
            assert!(body.as_object().expect("object").contains_key("data"), "{transport:?}: {text}");
            assert_eq!(body["data"], Value::Null, "{transport:?}: {text}");
            assert_eq!(body["errors"][0]["path"], json!(["activateTenant"]), "{transport:?}: {text}");
            assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{transport:?}: {text}");
        }
        // A request that never executed has no `data` at all (the spec), on every transport.
        for transport in TRANSPORTS {
            let text = raw(&app, transport, None, "{ noSuchField }").await;
            let body = parse(&text);
            assert!(body.get("data").is_none(), "{transport:?}: {text}");
            assert!(body["errors"][0].get("path").is_none(), "{transport:?}: {text}");
        }
    }
}
