//! What standard tools need from a live server: the standard introspection query (graphql-js
//! `getIntrospectionQuery` with every option, as GraphiQL, graphql-codegen and Python `gql`
//! send it) and CORS for pages served from another origin.

use forklift::config::{CorsOrigins, Environment};
use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, code};

/// graphql-js 16.9's `getIntrospectionQuery({ descriptions, specifiedByUrl,
/// directiveIsRepeatable, schemaDescription, inputValueDeprecation, oneOf })`.
const STANDARD_INTROSPECTION: &str = include_str!("../fixtures/introspection.graphql");

async fn introspect(app: &TestApp) -> Value {
    app.gql(&app.admin(), None, STANDARD_INTROSPECTION, json!({}))
        .await
}

fn type_names(body: &Value) -> Vec<String> {
    body["data"]["__schema"]["types"]
        .as_array()
        .map(|types| {
            types
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

crate::both!(the_standard_introspection_query_answers);
async fn the_standard_introspection_query_answers(app: TestApp) {
    let body = introspect(&app).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let schema = &body["data"]["__schema"];
    assert_eq!(schema["queryType"]["name"], "Query");
    assert_eq!(schema["mutationType"]["name"], "Mutation");
    assert_eq!(schema["subscriptionType"]["name"], "Subscription");
    let names = type_names(&body);
    for expected in [
        "Query",
        "Application",
        "Node",
        "Role",
        "ForkRunStatus",
        "__Schema",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    // It is as deep as tools make it, and an ordinary query is still held to depth 10.
    forklift::bootstrap::ensure_template(&app.state)
        .await
        .expect("template");
    let mut deep = String::from("id");
    for _ in 0..10 {
        deep = format!("children {{ {deep} }}");
    }
    let body = app
        .gql(
            &app.admin(),
            Some("template"),
            &format!("{{ navigationItems {{ nodes {{ {deep} }} }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    // Introspection beside an ordinary query costs that query nothing.
    let mut nine = String::from("id");
    for _ in 0..7 {
        nine = format!("children {{ {nine} }}");
    }
    let query = format!(
        "{{ navigationItems {{ nodes {{ {nine} }} }} __schema {{ types {{ name \
            fields {{ name type {{ name ofType {{ name ofType {{ name }} }} }} }} \
            }} }} }}"
    );
    let body = app
        .gql(&app.admin(), Some("template"), &query, json!({}))
        .await;
    assert!(body.get("errors").is_none(), "{body}");
}

crate::both!(introspection_has_its_own_bound);
async fn introspection_has_its_own_bound(app: TestApp) {
    // A document that would multiply the schema by itself is refused before it runs.
    let query =
        "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
    let (status, body) = app.post(Some(&app.admin()), None, query, json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    assert!(body.get("data").is_none(), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("introspection")),
        "{body}"
    );
}

/// A production server: introspection off unless turned on.
async fn production(backend: Backend, introspection: Option<bool>) -> Option<TestApp> {
    TestApp::spawn_with(
        backend,
        |config| {
            config.environment = Environment::Production;
            config.introspection = introspection;
        },
        Default::default(),
    )
    .await
}

crate::both_backends!(production_introspects_only_when_turned_on);
async fn production_introspects_only_when_turned_on(backend: Backend) {
    let Some(app) = production(backend, None).await else {
        return;
    };
    let body = introspect(&app).await;
    assert!(body.get("data").is_none(), "{body}");
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    let body = app
        .gql(
            &app.admin(),
            None,
            "{ __type(name: \"Query\") { name } }",
            json!({}),
        )
        .await;
    assert!(body.get("data").is_none(), "{body}");
    // Ordinary queries, `__typename` included, are unaffected.
    let body = app
        .gql(
            &app.admin(),
            None,
            "{ __typename me { subject } }",
            json!({}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    drop(app);
    let Some(app) = production(backend, Some(true)).await else {
        return;
    };
    let body = introspect(&app).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert!(type_names(&body).iter().any(|n| n == "Query"));
}

/// A CORS preflight for a POST to `/graphql` from `origin`.
async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.http
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type, x-tenant, x-request-id",
        )
        .send()
        .await
        .expect("preflight")
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

crate::both!(development_allows_local_origins);
async fn development_allows_local_origins(app: TestApp) {
    let response = preflight(&app, "http://localhost:5173").await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some("http://localhost:5173")
    );
    let allowed = header(&response, "access-control-allow-headers")
        .unwrap_or_default()
        .to_lowercase();
    for name in ["authorization", "content-type", "x-tenant", "x-request-id"] {
        assert!(allowed.contains(name), "{name} in {allowed}");
    }
    let methods = header(&response, "access-control-allow-methods").unwrap_or_default();
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );
    let max_age: u64 = header(&response, "access-control-max-age")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(max_age >= 600, "preflights are cached: {max_age}");
    // 127.0.0.1 on any port too; another site is not allowed.
    let response = preflight(&app, "http://127.0.0.1:3000").await;
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some("http://127.0.0.1:3000")
    );
    let response = preflight(&app, "https://evil.example").await;
    assert_eq!(header(&response, "access-control-allow-origin"), None);
    let response = preflight(&app, "http://localhost.evil.example").await;
    assert_eq!(header(&response, "access-control-allow-origin"), None);
    // The request itself, from an allowed page: its answer is readable, request id included.
    let response = app
        .http
        .post(app.url("/graphql"))
        .header("Origin", "http://localhost:5173")
        .bearer_auth(app.admin())
        .json(&json!({ "query": "{ me { subject } }" }))
        .send()
        .await
        .expect("post");
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some("http://localhost:5173")
    );
    assert!(
        header(&response, "access-control-expose-headers")
            .unwrap_or_default()
            .contains("x-request-id")
    );
    // A bare OPTIONS is never 405.
    let response = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .send()
        .await
        .expect("options");
    assert_ne!(response.status().as_u16(), 405);
}

crate::both_backends!(production_allows_only_configured_origins);
async fn production_allows_only_configured_origins(backend: Backend) {
    let Some(app) = production(backend, None).await else {
        return;
    };
    let response = preflight(&app, "http://localhost:5173").await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        None,
        "none until configured"
    );
    drop(app);
    let Some(app) = TestApp::spawn_with(
        backend,
        |config| {
            config.environment = Environment::Production;
            config.cors_origins =
                Some(CorsOrigins::parse("https://admin.example.org").expect("origins"));
        },
        Default::default(),
    )
    .await
    else {
        return;
    };
    let response = preflight(&app, "https://admin.example.org").await;
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some("https://admin.example.org")
    );
    let response = preflight(&app, "http://admin.example.org").await;
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        None,
        "the scheme counts"
    );
    let response = preflight(&app, "http://localhost:5173").await;
    assert_eq!(header(&response, "access-control-allow-origin"), None);
}

#[test]
fn cors_origins_parse() {
    let origins =
        CorsOrigins::parse("https://admin.example.org, http://localhost:*").expect("parses");
    assert!(origins.allows("https://admin.example.org"));
    assert!(origins.allows("https://ADMIN.example.org"));
    assert!(!origins.allows("https://admin.example.org:8443"));
    assert!(origins.allows("http://localhost"));
    assert!(origins.allows("http://localhost:5173"));
    assert!(!origins.allows("http://localhost:5173x"));
    assert!(!origins.allows("http://localhostx:5173"));
    assert!(!origins.allows("https://localhost:5173"));
    assert!(
        CorsOrigins::parse("*")
            .expect("parses")
            .allows("https://anything.example")
    );
    assert!(CorsOrigins::parse("none").expect("parses").is_empty());
    assert!(CorsOrigins::parse("admin.example.org").is_err());
    assert!(CorsOrigins::parse("https://*.example.org").is_err());
    assert!(CorsOrigins::parse("https://a.example/path").is_err());
}
