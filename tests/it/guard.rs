//! Issue #3: JWT verification, tenant resolution, the isolation matrix, roles, no fallthrough,
//! request limits.

use base64::Engine;
use forklift::{
    access::{ClassAccess, access_of},
    naming,
    placement::is_placed,
    registry::{ColumnKind, Registry},
};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};

use crate::{
    fixture,
    harness::{Backend, TEST_SECRET, TestApp, code, test_config, uuid_of},
};

const ME: &str = "{ me { subject isPlatformAdmin } }";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn hs256(claims: &Value, secret: &[u8]) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("encode")
}

fn b64(value: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

/// Asserts the request is refused as unauthenticated with no data.
async fn refused(app: &TestApp, token: Option<&str>, what: &str) {
    let (_, body) = app.post(token, None, ME, json!({})).await;
    assert_eq!(
        code(&body).as_deref(),
        Some("UNAUTHENTICATED"),
        "{what}: {body}"
    );
    assert!(
        body.get("data")
            .is_none_or(|d| d.is_null() || d["me"].is_null()),
        "{what}: no data: {body}"
    );
}

/// Runs `openssl` with `args`; returns stdout.
fn openssl(args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

crate::both!(jwt_negatives_are_unauthenticated);
async fn jwt_negatives_are_unauthenticated(app: TestApp) {
    // A valid token works: the negatives below fail for their own reason.
    let good = json!({ "sub": "alice@example.test", "exp": now() + 600 });
    let data = app
        .ok(&hs256(&good, TEST_SECRET.as_bytes()), None, ME, json!({}))
        .await;
    assert_eq!(data["me"]["subject"], "alice@example.test");

    refused(&app, None, "missing").await;
    refused(&app, Some("not-a-jwt"), "malformed").await;
    refused(
        &app,
        Some(&hs256(
            &json!({ "sub": "a", "exp": now() - 3600 }),
            TEST_SECRET.as_bytes(),
        )),
        "expired",
    )
    .await;
    refused(
        &app,
        Some(&hs256(
            &json!({ "sub": "a", "exp": now() + 3600, "nbf": now() + 3600 }),
            TEST_SECRET.as_bytes(),
        )),
        "not yet valid",
    )
    .await;
    refused(
        &app,
        Some(&hs256(
            &good,
            b"another-secret-another-secret-another-secret",
        )),
        "wrong signature",
    )
    .await;
    refused(
        &app,
        Some(&hs256(
            &json!({ "sub": "a", "exp": "tomorrow" }),
            TEST_SECRET.as_bytes(),
        )),
        "exp of the wrong type",
    )
    .await;
    refused(
        &app,
        Some(&hs256(&json!({ "sub": "a" }), TEST_SECRET.as_bytes())),
        "no exp",
    )
    .await;
    refused(
        &app,
        Some(&hs256(
            &json!({ "exp": now() + 600 }),
            TEST_SECRET.as_bytes(),
        )),
        "no sub",
    )
    .await;
    let none = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT" })),
        b64(&good)
    );
    refused(&app, Some(&none), "alg none").await;
    // A platform-admin claim in an unsigned token gets nothing either.
    let forged = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none" })),
        b64(&json!({ "sub": "x", "exp": now() + 600, "platform_role": "admin" }))
    );
    let (_, body) = app
        .post(Some(&forged), None, "{ tenants { totalCount } }", json!({}))
        .await;
    assert_eq!(code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
}

crate::both!(a_member_of_one_tenant_cannot_act_in_another);
async fn a_member_of_one_tenant_cannot_act_in_another(app: TestApp) {
    app.ready_tenant("acme").await;
    app.ready_tenant("globex").await;
    app.add_member("globex", "bob@globex.test", "OWNER").await;
    let bob = app.token("bob@globex.test", None, false, &[]);
    app.ok(
        &bob,
        Some("globex"),
        "{ applications { totalCount } }",
        json!({}),
    )
    .await;

    let body = app
        .gql(
            &bob,
            Some("acme"),
            "{ applications { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("CROSS_TENANT_DENIED"),
        "{body}"
    );
    assert!(body["data"].is_null(), "{body}");
    // A token pinned to globex with a header naming acme: denied, not resolved to either.
    let pinned = app.token("bob@globex.test", Some("globex"), false, &[]);
    let body = app
        .gql(
            &pinned,
            Some("acme"),
            "{ applications { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("CROSS_TENANT_DENIED"),
        "{body}"
    );
    // Pinned and consistent: fine.
    app.ok(
        &pinned,
        Some("globex"),
        "{ applications { totalCount } }",
        json!({}),
    )
    .await;
    app.ok(&pinned, None, "{ applications { totalCount } }", json!({}))
        .await;
    // No tenant at all is an error, never "all tenants".
    let body = app
        .gql(&bob, None, "{ applications { totalCount } }", json!({}))
        .await;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["field"], "X-Tenant",
        "{body}"
    );
    assert!(body["data"].is_null(), "{body}");
    // An unknown tenant.
    let body = app
        .gql(
            &bob,
            Some("nope"),
            "{ applications { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("TENANT_NOT_FOUND"), "{body}");
    // "All tenants" is for platform admins, read-only.
    let body = app
        .gql(
            &bob,
            Some("*"),
            "{ applications { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    let admin = app.admin();
    app.ok(
        &admin,
        Some("*"),
        "{ applications { totalCount } }",
        json!({}),
    )
    .await;
    let body = app
        .gql(
            &admin,
            Some("*"),
            "mutation { createApplication(input: { code: \"x\", name: \"X\", \
                routeNamespace: \"x\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
}

crate::both!(the_isolation_matrix_covers_every_class);
async fn the_isolation_matrix_covers_every_class(app: TestApp) {
    // Tenant A gets rows of every class the fork copies, and derived rows from its fork.
    let vocabulary = fixture::seed_vocabulary(&app.state, 2).await;
    let template = fixture::template(&app.state).await;
    fixture::seed_config(&app.state, template, 2, &vocabulary).await;
    let a = uuid_of(&app.ready_tenant("tenant-a").await);
    app.ready_tenant("tenant-b").await;
    app.add_member("tenant-b", "mallory@b.test", "OWNER").await;
    let mallory = app.token("mallory@b.test", None, false, &[]);
    let before = fixture::dump(&app.state, a).await;
    let main = app.owner_db().await;
    let checked = isolation_matrix(&app, &mallory, "tenant-b", a, &main).await;
    assert!(checked >= 15, "the matrix covered only {checked} classes");
    // Nested: B's applications never list A's children.
    let body = app
        .gql(
            &mallory,
            Some("tenant-b"),
            "{ applications { nodes { actions { id } actionPlacements { id } } } }",
            json!({}),
        )
        .await;
    let a_actions = fixture::ids_of(&app.state, "actions", a).await;
    for id in a_actions {
        assert!(
            !body
                .to_string()
                .contains(&forklift::graphql::ids::encode("Action", id)),
            "nested leak: {body}"
        );
    }
    assert_eq!(
        before,
        fixture::dump(&app.state, a).await,
        "A's rows are unchanged"
    );
}

/// The isolation matrix, from `attacker` (a member of `attacker_slug`) against the
/// rows of `victim`, read with direct SQL from the database each class of the victim lives in.
/// Returns how many classes it covered.
pub(crate) async fn isolation_matrix(
    app: &TestApp,
    attacker: &str,
    attacker_slug: &str,
    victim: uuid::Uuid,
    victim_db: &DatabaseConnection,
) -> usize {
    let main = app.owner_db().await;
    let sdl = forklift::graphql::sdl(&app.state.registry).expect("sdl");
    let mut checked = 0;
    for class in app
        .state
        .registry
        .classes()
        .iter()
        .filter(|c| c.tenant_owned)
    {
        if matches!(access_of(class), ClassAccess::Hidden | ClassAccess::Catalog) {
            continue;
        }
        let db = if is_placed(class) { victim_db } else { &main };
        let ids = fixture::ids_in(db, &class.table, victim).await;
        let Some(first) = ids.first() else { continue };
        checked += 1;
        let globals: Vec<String> = ids
            .iter()
            .map(|id| forklift::graphql::ids::encode(class.name, *id))
            .collect();
        let one = forklift::graphql::ids::encode(class.name, *first);
        let list = naming::camel(&class.table);
        let body = app
            .gql(
                attacker,
                Some(attacker_slug),
                &format!("{{ {list}(first: 100) {{ nodes {{ id }} }} }}"),
                json!({}),
            )
            .await;
        for id in &globals {
            assert!(
                !body.to_string().contains(id.as_str()),
                "{}: list leaks: {body}",
                class.table
            );
        }
        let single = {
            let mut chars = class.name.chars();
            let first = chars.next().expect("name").to_lowercase().to_string();
            first + chars.as_str()
        };
        let body = app
            .gql(
                attacker,
                Some(attacker_slug),
                &format!("query($id: ID!) {{ {single}(id: $id) {{ id }} node(id: $id) {{ id }} }}"),
                json!({ "id": one }),
            )
            .await;
        assert!(
            body["data"][&single].is_null() && body["data"]["node"].is_null(),
            "{}: fetch by id leaks: {body}",
            class.table
        );
        let body = app
            .gql(
                attacker,
                Some(attacker_slug),
                "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
                json!({ "ids": globals }),
            )
            .await;
        assert_eq!(
            body["data"]["nodes"],
            json!([]),
            "{}: nodes leaks: {body}",
            class.table
        );
        let name = class.name;
        if sdl.contains(&format!("update{name}(")) {
            let column = class
                .columns
                .iter()
                .find(|c| {
                    c.kind == ColumnKind::Text
                        && !c.nullable
                        && !class.references.iter().any(|r| r.column == c.name)
                })
                .map(|c| naming::camel(&c.name));
            if let Some(field) = column {
                let body = app
                    .gql(
                        attacker,
                        Some(attacker_slug),
                        &format!("mutation($id: ID!) {{ update{name}(id: $id, input: {{ {field}: \"owned\" }}) {{ id }} }}"),
                        json!({ "id": one }),
                    )
                    .await;
                assert_eq!(
                    code(&body).as_deref(),
                    Some("NOT_FOUND"),
                    "{}: update: {body}",
                    class.table
                );
            }
        }
        if sdl.contains(&format!("delete{name}(")) {
            let body = app
                .gql(
                    attacker,
                    Some(attacker_slug),
                    &format!("mutation($id: ID!) {{ delete{name}(id: $id) }}"),
                    json!({ "id": one }),
                )
                .await;
            assert_eq!(
                code(&body).as_deref(),
                Some("NOT_FOUND"),
                "{}: delete: {body}",
                class.table
            );
        }
    }
    checked
}

crate::both!(roles_decide_what_a_token_may_do_on_the_next_request);
async fn roles_decide_what_a_token_may_do_on_the_next_request(app: TestApp) {
    app.ready_tenant("acme").await;
    let membership = app.add_member("acme", "vera@acme.test", "VIEWER").await;
    let vera = app.token("vera@acme.test", None, false, &[]);
    let create = "mutation($c: String!) { createApplication(input: { code: $c, name: \
        \"N\", routeNamespace: $c }) { id } }";
    let body = app
        .gql(&vera, Some("acme"), create, json!({ "c": "one" }))
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("FORBIDDEN"),
        "a viewer cannot create: {body}"
    );
    app.ok(
        &vera,
        Some("acme"),
        "{ applications { totalCount } }",
        json!({}),
    )
    .await;

    let admin = app.admin();
    app.ok(
        &admin,
        Some("acme"),
        "mutation($id: ID!) { changeMemberRole(id: $id, role: CONTRIBUTOR) { id role } }",
        json!({ "id": membership }),
    )
    .await;
    // The same token, the next request: now a contributor.
    let created = app
        .ok(&vera, Some("acme"), create, json!({ "c": "one" }))
        .await;
    let id = created["createApplication"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let body = app
        .gql(
            &vera,
            Some("acme"),
            "mutation($id: ID!) { deleteApplication(id: $id) }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("FORBIDDEN"),
        "a contributor cannot delete: {body}"
    );

    app.ok(
        &admin,
        Some("acme"),
        "mutation($id: ID!) { changeMemberRole(id: $id, role: EDITOR) { id } }",
        json!({ "id": membership }),
    )
    .await;
    app.ok(
        &vera,
        Some("acme"),
        "mutation($id: ID!) { deleteApplication(id: $id) }",
        json!({ "id": id }),
    )
    .await;

    // Suspension blocks a token issued before it; activation lifts it.
    let tenant = app
        .ok(
            &admin,
            None,
            "{ tenants(search: \"acme\") { nodes { id } } }",
            json!({}),
        )
        .await;
    let tenant_id = tenant["tenants"]["nodes"][0]["id"]
        .as_str()
        .expect("tenant")
        .to_string();
    app.ok(
        &admin,
        None,
        "mutation($id: ID!) { suspendTenant(id: $id, reason: \"unpaid\") { status } }",
        json!({ "id": tenant_id }),
    )
    .await;
    let body = app
        .gql(
            &vera,
            Some("acme"),
            "{ applications { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("TENANT_SUSPENDED"), "{body}");
    app.ok(
        &admin,
        Some("acme"),
        "{ applications { totalCount } }",
        json!({}),
    )
    .await;
    app.ok(
        &admin,
        None,
        "mutation($id: ID!) { activateTenant(id: $id) { status } }",
        json!({ "id": tenant_id }),
    )
    .await;
    app.ok(
        &vera,
        Some("acme"),
        "{ applications { totalCount } }",
        json!({}),
    )
    .await;
}

crate::both!(a_tenant_without_navigation_gets_none_of_the_templates);
async fn a_tenant_without_navigation_gets_none_of_the_templates(app: TestApp) {
    let vocabulary = fixture::seed_vocabulary(&app.state, 2).await;
    let template = fixture::template(&app.state).await;
    fixture::seed_config(&app.state, template, 2, &vocabulary).await;
    app.ready_tenant("acme").await;
    let admin = app.admin();
    let nav = app
        .ok(
            &admin,
            Some("acme"),
            "{ navigationItems { totalCount nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        nav["navigationItems"]["totalCount"], 2,
        "the fork copied the navigation"
    );
    // The tenant deletes its navigation: the roots, and their children with them.
    let roots = app
        .ok(
            &admin,
            Some("acme"),
            "{ navigationItems(filter: { parentId: null }) { nodes { id } } }",
            json!({}),
        )
        .await;
    let roots = roots["navigationItems"]["nodes"]
        .as_array()
        .expect("roots")
        .clone();
    assert!(!roots.is_empty());
    for root in roots {
        app.ok(
            &admin,
            Some("acme"),
            "mutation($id: ID!) { deleteNavigationItem(id: $id) }",
            json!({ "id": root["id"] }),
        )
        .await;
    }
    let nav = app
        .ok(
            &admin,
            Some("acme"),
            "{ navigationItems { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        nav["navigationItems"]["totalCount"], 0,
        "no fallthrough to the template"
    );
    let template_nav = app
        .ok(
            &admin,
            Some("template"),
            "{ navigationItems { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(template_nav["navigationItems"]["totalCount"], 2);
}

crate::both!(a_nested_query_costs_the_same_statements_for_5_and_50_parents);
async fn a_nested_query_costs_the_same_statements_for_5_and_50_parents(app: TestApp) {
    let vocabulary = fixture::seed_vocabulary(&app.state, 2).await;
    let small = uuid_of(&app.create_tenant("small").await);
    let large = uuid_of(&app.create_tenant("large").await);
    fixture::seed_config(&app.state, small, 5, &vocabulary).await;
    fixture::seed_config(&app.state, large, 50, &vocabulary).await;
    let admin = app.admin();
    let query = "{ applications(first: 100) { totalCount nodes { code actions { key \
        actionPlacements { id surfaceType { key } } } } } }";
    let mut cost = Vec::new();
    for tenant in ["small", "large"] {
        // The least of three runs: a background task may slip a statement in.
        let mut least = u64::MAX;
        for _ in 0..3 {
            let before = app.state.metrics.statements();
            let data = app.ok(&admin, Some(tenant), query, json!({})).await;
            least = least.min(app.state.metrics.statements() - before);
            assert!(data["applications"]["totalCount"].as_i64().unwrap_or(0) >= 5);
        }
        cost.push(least);
    }
    assert_eq!(
        cost[0], cost[1],
        "statements for 5 and 50 parents: {cost:?}"
    );
    // A small constant: the guard's lookups, count and page, and one per nesting level
    // (actions, placements, surface types); on PostgreSQL each of the five scoped reads
    // also names its tenant for row-level security (`set_config`).
    let postgres = app.state.db.get_database_backend() == sea_orm::DbBackend::Postgres;
    let bound = if postgres { 14 } else { 9 };
    assert!(cost[0] <= bound, "{cost:?} statements");
}

crate::both!(request_limits_refuse_cleanly);
async fn request_limits_refuse_cleanly(app: TestApp) {
    let admin = app.admin();
    // Depth 11, on a tenant that exists (so the depth is what is refused).
    crate::fixture::template(&app.state).await;
    let mut deep = String::from("id");
    for _ in 0..10 {
        deep = format!("children {{ {deep} }}");
    }
    let body = app
        .gql(
            &admin,
            Some("template"),
            &format!("{{ navigationItems {{ nodes {{ {deep} }} }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("BAD_USER_INPUT"),
        "depth 11 refused: {body}"
    );
    assert!(body["data"].is_null(), "{body}");
    // 16 aliases.
    let aliases: Vec<String> = (0..16).map(|i| format!("a{i}: me {{ subject }}")).collect();
    let body = app
        .gql(
            &admin,
            None,
            &format!("{{ {} }}", aliases.join(" ")),
            json!({}),
        )
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("BAD_USER_INPUT"),
        "16 aliases: {body}"
    );
    // A batch of 10 operations.
    let batch: Vec<Value> = (0..10).map(|_| json!({ "query": ME })).collect();
    let response = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&admin)
        .json(&batch)
        .send()
        .await
        .expect("batch");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    // A mutation over GET.
    let response = app
        .http
        .get(app.url("/graphql"))
        .query(&[("query", "mutation { activateTenant(id: \"x\") { id } }")])
        .bearer_auth(&admin)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status().as_u16(), 405);
    assert!(
        response
            .headers()
            .get("allow")
            .is_some_and(|v| v.to_str().unwrap_or("").contains("POST"))
    );
    // A query over GET works.
    let response = app
        .http
        .get(app.url("/graphql"))
        .query(&[("query", ME)])
        .bearer_auth(&admin)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status().as_u16(), 200);
    // An oversized body: refused from its declared length, before the server reads it.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: \
            application/json\r\nAuthorization: Bearer {admin}\r\nContent-Length: \
            {}\r\n\r\n{{\"query\":\"",
        8 * 1024 * 1024
    );
    tcp.write_all(head.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), tcp.read(&mut buf))
        .await
        .expect("answer in time")
        .expect("read");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

crate::both_backends!(public_keys_accept_only_their_algorithm_issuer_and_audience);
async fn public_keys_accept_only_their_algorithm_issuer_and_audience(backend: Backend) {
    let dir = std::env::temp_dir().join(format!("forklift-keys-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let private = dir.join("rsa.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        private.to_str().expect("path"),
    ]);
    let public = openssl(&["pkey", "-in", private.to_str().expect("path"), "-pubout"]);
    let private_pem = std::fs::read(&private).expect("read key");
    let public_pem = String::from_utf8(public).expect("pem");
    let Some(db) = crate::harness::TestDb::create(backend).await else {
        return;
    };
    let mut config = test_config(&db);
    config.jwt_secret = None;
    config.environment = forklift::config::Environment::Production;
    config.jwt_public_key = Some(forklift::config::PublicKeySource::Pem(public_pem.clone()));
    config.jwt_issuer = Some("https://issuer.test".into());
    config.jwt_audience = Some("forklift".into());
    let app = TestApp::serve(db, config, Registry::default()).await;
    let key = EncodingKey::from_rsa_pem(&private_pem).expect("rsa key");
    let claims = |iss: &str, aud: &str| {
        json!({ "sub": "carol@example.test", "exp": now() + 600, "iss": iss,
            "aud": aud })
    };
    let good = encode(
        &Header::new(Algorithm::RS256),
        &claims("https://issuer.test", "forklift"),
        &key,
    )
    .expect("sign");
    let (_, body) = app.post(Some(&good), None, ME, json!({})).await;
    assert_eq!(
        body["data"]["me"]["subject"], "carol@example.test",
        "{body}"
    );

    let wrong_iss = encode(
        &Header::new(Algorithm::RS256),
        &claims("https://evil.test", "forklift"),
        &key,
    )
    .expect("sign");
    refused(&app, Some(&wrong_iss), "wrong issuer").await;
    let wrong_aud = encode(
        &Header::new(Algorithm::RS256),
        &claims("https://issuer.test", "other"),
        &key,
    )
    .expect("sign");
    refused(&app, Some(&wrong_aud), "wrong audience").await;
    // Algorithm confusion: HS256 signed with the public key as the secret.
    let confused = hs256(
        &claims("https://issuer.test", "forklift"),
        public_pem.as_bytes(),
    );
    refused(&app, Some(&confused), "HS256 with the RS256 public key").await;
    let none = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none" })),
        b64(&claims("https://issuer.test", "forklift"))
    );
    refused(&app, Some(&none), "alg none").await;
    let _ = std::fs::remove_dir_all(dir);
}

crate::both_backends!(jwks_keys_are_looked_up_by_kid);
async fn jwks_keys_are_looked_up_by_kid(backend: Backend) {
    let dir = std::env::temp_dir().join(format!("forklift-jwks-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let private = dir.join("ed.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        private.to_str().expect("path"),
    ]);
    let der = openssl(&[
        "pkey",
        "-in",
        private.to_str().expect("path"),
        "-pubout",
        "-outform",
        "DER",
    ]);
    let raw = &der[der.len() - 32..];
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let jwks = json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1", "alg": "EdDSA",
        "use": "sig" }] });
    let jwks_path = dir.join("jwks.json");
    std::fs::write(&jwks_path, jwks.to_string()).expect("write jwks");
    let Some(db) = crate::harness::TestDb::create(backend).await else {
        return;
    };
    let mut config = test_config(&db);
    config.jwt_secret = None;
    config.environment = forklift::config::Environment::Production;
    config.jwt_public_key = Some(forklift::config::PublicKeySource::Jwks(
        jwks_path.display().to_string(),
    ));
    let app = TestApp::serve(db, config, Registry::default()).await;
    let key = EncodingKey::from_ed_pem(&std::fs::read(&private).expect("key")).expect("ed key");
    let claims = json!({ "sub": "dan@example.test", "exp": now() + 600 });
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k1".into());
    let good = encode(&header, &claims, &key).expect("sign");
    let (_, body) = app.post(Some(&good), None, ME, json!({})).await;
    assert_eq!(body["data"]["me"]["subject"], "dan@example.test", "{body}");
    header.kid = Some("k2".into());
    refused(
        &app,
        Some(&encode(&header, &claims, &key).expect("sign")),
        "unknown kid",
    )
    .await;
    // HS256 is not configured in production with a JWKS: refused.
    refused(
        &app,
        Some(&hs256(&claims, TEST_SECRET.as_bytes())),
        "HS256 not configured",
    )
    .await;
    let _ = std::fs::remove_dir_all(dir);
}

crate::both_backends!(production_mode_hides_introspection_and_suggestions);
async fn production_mode_hides_introspection_and_suggestions(backend: Backend) {
    let Some(app) = TestApp::spawn_with(
        backend,
        |c| c.environment = forklift::config::Environment::Production,
        Registry::default(),
    )
    .await
    else {
        return;
    };
    let admin = app.admin();
    let body = app
        .gql(&admin, None, "{ mee { subject } }", json!({}))
        .await;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    assert!(
        !body.to_string().contains("Did you mean"),
        "no suggestions in production: {body}"
    );
    let body = app
        .gql(&admin, None, "{ __schema { types { name } } }", json!({}))
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("BAD_USER_INPUT"),
        "no introspection: {body}"
    );
    assert!(body["data"].is_null(), "no introspection: {body}");
    let _ = Backend::Sqlite;
}

/// An Ed25519 key pair: (private PEM, public JWK without `kid`).
fn ed25519(dir: &std::path::Path, name: &str) -> (Vec<u8>, Value) {
    let private = dir.join(format!("{name}.pem"));
    openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        private.to_str().expect("path"),
    ]);
    let der = openssl(&[
        "pkey",
        "-in",
        private.to_str().expect("path"),
        "-pubout",
        "-outform",
        "DER",
    ]);
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der[der.len() - 32..]);
    (
        std::fs::read(&private).expect("key"),
        json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA", "use": "sig" }),
    )
}

crate::both_backends!(a_remote_jwks_is_refetched_for_a_new_kid_at_most_once_a_minute);
async fn a_remote_jwks_is_refetched_for_a_new_kid_at_most_once_a_minute(backend: Backend) {
    use std::sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    };
    let dir =
        std::env::temp_dir().join(format!("forklift-rjwks-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (k1, mut j1) = ed25519(&dir, "k1");
    let (k2, mut j2) = ed25519(&dir, "k2");
    j1["kid"] = json!("k1");
    j2["kid"] = json!("k2");
    // A JWKS endpoint that counts its fetches; the IdP rotates by adding k2 later.
    let document = Arc::new(Mutex::new(json!({ "keys": [j1.clone()] }).to_string()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let router = {
        let (document, fetches) = (document.clone(), fetches.clone());
        axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let (document, fetches) = (document.clone(), fetches.clone());
                async move {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    document.lock().map(|d| d.clone()).unwrap_or_default()
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let jwks_url = format!("http://{}/jwks.json", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });

    let Some(db) = crate::harness::TestDb::create(backend).await else {
        return;
    };
    let mut config = test_config(&db);
    config.jwt_secret = None;
    config.environment = forklift::config::Environment::Production;
    config.jwt_public_key = Some(forklift::config::PublicKeySource::Jwks(jwks_url));
    let app = TestApp::serve(db, config, Registry::default()).await;
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "fetched at start");
    let sign = |key: &[u8], kid: &str| {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.into());
        encode(
            &header,
            &json!({ "sub": "erin@example.test", "exp": now() + 600 }),
            &EncodingKey::from_ed_pem(key).expect("key"),
        )
        .expect("sign")
    };
    let (_, body) = app.post(Some(&sign(&k1, "k1")), None, ME, json!({})).await;
    assert_eq!(body["data"]["me"]["subject"], "erin@example.test", "{body}");

    *document.lock().expect("doc") = json!({ "keys": [j1, j2] }).to_string();
    refused(&app, Some(&sign(&k2, "k2")), "a kid not fetched yet").await;
    for _ in 0..100 {
        if fetches.load(Ordering::SeqCst) == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "the unknown kid caused one refetch"
    );
    let mut body = Value::Null;
    for _ in 0..50 {
        body = app
            .post(Some(&sign(&k2, "k2")), None, ME, json!({}))
            .await
            .1;
        if body["data"]["me"]["subject"].is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        body["data"]["me"]["subject"], "erin@example.test",
        "the rotated key verifies: {body}"
    );
    // More unknown kids within the minute: no more fetches.
    for kid in ["k3", "k4", "k5"] {
        refused(&app, Some(&sign(&k2, kid)), "unknown kid").await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(fetches.load(Ordering::SeqCst), 2, "rate-limited");
    let _ = std::fs::remove_dir_all(dir);
}
