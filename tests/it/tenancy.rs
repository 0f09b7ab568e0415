//! Issue #6: branding, domains and host routing, the feature catalog, access decisions, the
//! onboarding checklist and the audit log — over HTTP.

use std::{collections::HashMap, sync::Arc};

use forklift::{domains::StaticResolver, registry::Registry};
use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, code};

/// Sends a GraphQL multipart request (the upload spec) with one file as `variables.file`.
pub(crate) async fn upload(
    app: &TestApp,
    token: &str,
    tenant: &str,
    filename: &str,
    bytes: &[u8],
) -> (u16, Value) {
    let boundary = "forkliftboundary7d3c";
    let operations = json!({
    "query": "mutation($file: Upload!) { uploadLogo(file: $file) { logoContentType logoUrl } }",
    "variables": { "file": null }
    });
    let mut body = Vec::new();
    let mut part = |name: &str, extra: &str, content: &[u8]| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{extra}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    };
    part("operations", "", operations.to_string().as_bytes());
    part("map", "", br#"{"0": ["variables.file"]}"#);
    part(
        "0",
        &format!("; filename=\"{filename}\"\r\nContent-Type: image/png"),
        bytes,
    );
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let sent = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .header("X-Tenant", tenant)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await;
    // A body over the limit may be refused while it is still being sent: the connection then
    // closes under the client. That is a refusal too (status 0, the client's error as the body).
    let response = match sent {
        Ok(response) => response,
        Err(err) => return (0, Value::String(err.to_string())),
    };
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

crate::both!(branding_validates_colours_css_and_logos);
async fn branding_validates_colours_css_and_logos(app: TestApp) {
    app.ready_tenant("acme").await;
    app.add_member("acme", "su@acme.test", "SUPER_USER").await;
    app.add_member("acme", "ed@acme.test", "EDITOR").await;
    let su = app.token("su@acme.test", None, false, &[]);
    let editor = app.token("ed@acme.test", None, false, &[]);
    let update = "mutation($input: BrandingInput!) { updateBranding(input: $input) { \
        primaryColor linkColor customCss } }";

    let body = app
        .gql(
            &su,
            Some("acme"),
            update,
            json!({ "input": { "primaryColor": "red" } }),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    let body = app
        .gql(
            &su,
            Some("acme"),
            update,
            json!({ "input": { "customCss": "@import url(https://evil.example/x.css);" } }),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    let body = app
        .gql(
            &editor,
            Some("acme"),
            update,
            json!({ "input": { "primaryColor": "#123456" } }),
        )
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("FORBIDDEN"),
        "an editor does not manage branding: {body}"
    );
    // Nothing was saved by the refused attempts.
    let read = app
        .ok(
            &editor,
            Some("acme"),
            "{ branding { primaryColor customCss logoUrl } }",
            json!({}),
        )
        .await;
    assert_eq!(
        read["branding"],
        json!({ "primaryColor": null, "customCss": null, "logoUrl": null })
    );

    let css = ".header { background: #0b3d91; }";
    let saved = app
        .ok(
            &su,
            Some("acme"),
            update,
            json!({ "input": { "primaryColor": "#0B3D91", "linkColor": "#fff",
                "customCss": css } }),
        )
        .await;
    assert_eq!(
        saved["updateBranding"],
        json!({ "primaryColor": "#0b3d91", "linkColor": "#fff", "customCss": css })
    );
    // Omitted fields stay; null clears.
    let saved = app
        .ok(
            &su,
            Some("acme"),
            update,
            json!({ "input": { "linkColor": null } }),
        )
        .await;
    assert_eq!(saved["updateBranding"]["primaryColor"], "#0b3d91");
    assert!(saved["updateBranding"]["linkColor"].is_null());

    // Logos: typed by content.
    let (_, body) = upload(
        &app,
        &su,
        "acme",
        "page.png",
        b"<html><body>hi</body></html>",
    )
    .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("BAD_USER_INPUT"),
        "HTML named .png: {body}"
    );
    let (_, body) = upload(
        &app,
        &su,
        "acme",
        "logo.svg",
        br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#,
    )
    .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("BAD_USER_INPUT"),
        "SVG with a script: {body}"
    );
    let mut big = PNG.to_vec();
    big.resize(2 * 1024 * 1024 + 1, 0);
    let (status, body) = upload(&app, &su, "acme", "big.png", &big).await;
    // Under the 3 MB body limit: read, and refused by the logo check.
    assert_eq!(
        (status, code(&body).as_deref()),
        (200, Some("BAD_USER_INPUT")),
        "2 MB + 1 byte: {body}"
    );
    let (_, body) = upload(&app, &su, "acme", "logo.bin", PNG).await;
    assert_eq!(
        body["data"]["uploadLogo"]["logoContentType"], "image/png",
        "{body}"
    );
    let url = body["data"]["uploadLogo"]["logoUrl"]
        .as_str()
        .expect("logo url")
        .to_string();
    let served = app.http.get(app.url(&url)).send().await.expect("logo");
    assert_eq!(served.status().as_u16(), 200);
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.bytes().await.expect("bytes").as_ref(), PNG);
}

crate::both!(the_feature_catalog_upserts_and_updates_given_fields);
async fn the_feature_catalog_upserts_and_updates_given_fields(app: TestApp) {
    let tenant = app.ready_tenant("acme").await;
    let admin = app.admin();
    let register = "mutation($t: ID!, $f: [FeatureInput!]!) { registerFeatures(tenantId: \
        $t, features: $f) { id featureKey version provider customization } }";
    let first = app
        .ok(
            &admin,
            None,
            register,
            json!({ "t": tenant, "f": [
                { "key": "maps", "version": "1.0.0", "provider": "osm", "customization": { "zoom": 12 } },
                { "key": "payments", "version": "2.1.0", "provider": "stripe" }
                ] }),
        )
        .await;
    let maps_id = first["registerFeatures"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let again = app
        .ok(
            &admin,
            None,
            register,
            json!({ "t": tenant, "f": [
                { "key": "maps", "version": "1.1.0", "provider": "osm" }
                ] }),
        )
        .await;
    assert_eq!(
        again["registerFeatures"][0]["id"],
        maps_id.as_str(),
        "upserted by key"
    );
    assert_eq!(again["registerFeatures"][0]["version"], "1.1.0");
    let listed = app
        .ok(
            &admin,
            Some("acme"),
            "{ tenantFeatures { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["tenantFeatures"]["totalCount"], 2);

    let update = "mutation($id: ID!, $input: UpdateFeatureInput!) { updateFeature(id: \
        $id, input: $input) { version provider } }";
    let body = app
        .gql(&admin, None, update, json!({ "id": maps_id, "input": {} }))
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("BAD_USER_INPUT"),
        "at least one field: {body}"
    );
    let changed = app
        .ok(
            &admin,
            None,
            update,
            json!({ "id": maps_id, "input": { "provider": "mapbox" } }),
        )
        .await;
    assert_eq!(
        changed["updateFeature"],
        json!({ "version": "1.1.0", "provider": "mapbox" })
    );
    // Members of the tenant do not register features.
    app.add_member("acme", "o@acme.test", "OWNER").await;
    let owner = app.token("o@acme.test", None, false, &[]);
    let body = app
        .gql(
            &owner,
            Some("acme"),
            register,
            json!({ "t": tenant, "f": [] }),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
}

crate::both!(check_access_explains_its_decision);
async fn check_access_explains_its_decision(app: TestApp) {
    app.ready_tenant("acme").await;
    app.ready_tenant("globex").await;
    app.add_member("acme", "amy@acme.test", "EDITOR").await;
    let admin = app.admin();
    let amy = app.token("amy@acme.test", None, false, &[]);
    let root = app
        .ok(
            &admin,
            Some("acme"),
            "{ organizations { nodes { id } } }",
            json!({}),
        )
        .await;
    let root = root["organizations"]["nodes"][0]["id"].clone();
    let team = app
        .ok(
            &admin,
            Some("acme"),
            "mutation($o: ID!) { createTeam(input: { organizationId: $o, name: \
                \"Roads\", services: [\"potholes\"] }) { id } }",
            json!({ "o": root }),
        )
        .await;
    let team = team["createTeam"]["id"].as_str().expect("team").to_string();
    let check =
        "query($t: ID!, $s: String!) { checkAccess(teamId: $t, service: $s) { allowed reason } }";
    let d = app
        .ok(
            &amy,
            Some("acme"),
            check,
            json!({ "t": team, "s": "potholes" }),
        )
        .await;
    assert_eq!(
        d["checkAccess"],
        json!({ "allowed": false, "reason": "NOT_A_MEMBER" })
    );
    let me = app
        .ok(&amy, Some("acme"), "{ me { subject } }", json!({}))
        .await;
    assert_eq!(me["me"]["subject"], "amy@acme.test");
    let users = forklift::tenants::members::user_for_email(&app.state.db, "amy@acme.test")
        .await
        .expect("user");
    app.ok(
        &admin,
        Some("acme"),
        "mutation($t: ID!, $u: ID!) { createTeamMember(input: { teamId: $t, userId: $u }) { id } }",
        json!({ "t": team, "u": users.id.to_string() }),
    )
    .await;
    let d = app
        .ok(
            &amy,
            Some("acme"),
            check,
            json!({ "t": team, "s": "potholes" }),
        )
        .await;
    assert_eq!(d["checkAccess"], json!({ "allowed": true, "reason": null }));
    let d = app
        .ok(
            &amy,
            Some("acme"),
            check,
            json!({ "t": team, "s": "payroll" }),
        )
        .await;
    assert_eq!(
        d["checkAccess"],
        json!({ "allowed": false, "reason": "SERVICE_NOT_ALLOWED" })
    );
    // A team of another tenant.
    let other_root = app
        .ok(
            &admin,
            Some("globex"),
            "{ organizations { nodes { id } } }",
            json!({}),
        )
        .await;
    let other = app
        .ok(
            &admin,
            Some("globex"),
            "mutation($o: ID!) { createTeam(input: { organizationId: $o, name: \
                \"X\", services: [] }) { id } }",
            json!({ "o": other_root["organizations"]["nodes"][0]["id"] }),
        )
        .await;
    // Checked in acme's transaction, it is indistinguishable from a missing team.
    let body = app
        .gql(
            &amy,
            Some("acme"),
            check,
            json!({ "t": other["createTeam"]["id"], "s": "potholes" }),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
}

crate::both!(every_mutation_is_audited_allowed_or_refused);
async fn every_mutation_is_audited_allowed_or_refused(app: TestApp) {
    app.ready_tenant("acme").await;
    app.add_member("acme", "o@acme.test", "OWNER").await;
    app.add_member("acme", "v@acme.test", "VIEWER").await;
    let owner = app.token("o@acme.test", None, false, &[]);
    let viewer = app.token("v@acme.test", None, false, &[]);
    let create = "mutation { createApplication(input: { code: \"a\", name: \"A\", routeNamespace: \"a\" }) { id } }";
    app.ok(&owner, Some("acme"), create, json!({})).await;
    let body = app.gql(&viewer, Some("acme"), create, json!({})).await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"));
    // Refused by the guard, before any resolver: a member of nothing.
    let stranger = app.token("s@else.test", None, false, &[]);
    app.gql(&stranger, Some("acme"), create, json!({})).await;
    let log = app
        .ok(
            &owner,
            Some("acme"),
            "{ auditLog(filter: { operation: \"createApplication\" }, orderBy: \
                AT_ASC) { totalCount nodes { actor outcome detail target } } }",
            json!({}),
        )
        .await;
    let entries = log["auditLog"]["nodes"]
        .as_array()
        .expect("entries")
        .clone();
    let summary: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap_or("").to_string(),
                e["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("o@acme.test".into(), "ALLOWED".into()),
            ("v@acme.test".into(), "REFUSED".into())
        ],
        "{log}"
    );
    assert_eq!(entries[1]["detail"]["code"], "FORBIDDEN");
    assert!(!log.to_string().contains("Bearer"), "no tokens in the log");
    // The guard's refusal is in the admin's view of everything.
    let all = app
        .ok(
            &app.admin(),
            None,
            "{ auditLog(filter: { actor: \"s@else.test\" }) { totalCount nodes { \
                outcome detail } } }",
            json!({}),
        )
        .await;
    assert_eq!(all["auditLog"]["totalCount"], 1, "{all}");
    assert_eq!(
        all["auditLog"]["nodes"][0]["detail"]["code"],
        "CROSS_TENANT_DENIED"
    );
    // A viewer does not read the audit log.
    let body = app
        .gql(
            &viewer,
            Some("acme"),
            "{ auditLog { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
}

crate::both!(trial_expiry_is_flagged);
async fn trial_expiry_is_flagged(app: TestApp) {
    let admin = app.admin();
    let id = app.create_tenant("acme").await;
    // An expired trial: moved into the past directly in the catalog.
    forklift::bootstrap::ensure_template(&app.state)
        .await
        .expect("template");
    let tenant = crate::harness::uuid_of(&id);
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let past = chrono::DateTime::parse_from_rfc3339("2020-01-01T00:00:00Z")
        .expect("date")
        .with_timezone(&chrono::Utc);
    entity::tenants::Entity::update_many()
        .col_expr(entity::tenants::Column::Status, Expr::value("TRIAL"))
        .col_expr(entity::tenants::Column::TrialEndsAt, Expr::value(past))
        .filter(entity::tenants::Column::Id.eq(tenant))
        .exec(&app.state.db)
        .await
        .expect("expire the trial");
    let t = app
        .ok(
            &admin,
            None,
            "query($id: ID!) { tenant(id: $id) { status trialExpired onboarding { \
                state percentage steps { key } } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(t["tenant"]["status"], "TRIAL");
    assert_eq!(t["tenant"]["trialExpired"], true);
    // No sheets imported: the template declares no steps (`tests/it/onboarding.rs` has them).
    assert_eq!(
        t["tenant"]["onboarding"],
        json!({ "state": "COMPLETE", "percentage": 100, "steps": [] })
    );
    let listed = app
        .ok(
            &admin,
            None,
            "{ tenants(search: \"acme\") { nodes { slug trialExpired } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["tenants"]["nodes"][0]["trialExpired"], true);
    assert_eq!(app.fork("acme").await["status"], "FINISHED");
}

crate::both_backends!(hosts_route_to_their_tenant_only_when_verified);
async fn hosts_route_to_their_tenant_only_when_verified(backend: Backend) {
    let Some(app) = TestApp::spawn_with(
        backend,
        |c| c.base_domain = Some("forklift.test".into()),
        Registry::default(),
    )
    .await
    else {
        return;
    };
    forklift::bootstrap::ensure_template(&app.state)
        .await
        .expect("template");
    let admin = app.admin();
    app.ok(
        &admin,
        None,
        "mutation { createTenant(input: { name: \"Acme\", slug: \"acme\", \
            subdomain: \"acme\", status: ACTIVE }) { id } }",
        json!({}),
    )
    .await;
    assert_eq!(app.fork("acme").await["status"], "FINISHED");
    app.add_member("acme", "o@acme.test", "OWNER").await;
    let owner = app.token("o@acme.test", None, false, &[]);
    let via_host = |host: &'static str| {
        let app = &app;
        let owner = owner.clone();
        async move {
            let response = app
                .http
                .post(app.url("/graphql"))
                .bearer_auth(&owner)
                .header("Host", host)
                .json(&json!({ "query": "{ applications { totalCount } }" }))
                .send()
                .await
                .expect("request");
            response.json::<Value>().await.expect("json")
        }
    };
    let body = via_host("acme.forklift.test").await;
    assert_eq!(
        body["data"]["applications"]["totalCount"], 0,
        "subdomain routes: {body}"
    );
    let body = via_host("nobody.forklift.test").await;
    assert_eq!(code(&body).as_deref(), Some("TENANT_NOT_FOUND"), "{body}");
    assert!(body.to_string().contains("may have been removed"), "{body}");
    let body = via_host("portal.acme.example").await;
    assert_eq!(
        code(&body).as_deref(),
        Some("DOMAIN_NOT_CONFIGURED"),
        "{body}"
    );

    let added = app
        .ok(
            &owner,
            Some("acme"),
            "mutation { addDomain(host: \"Portal.Acme.Example\") { id host \
                verificationToken verifiedAt } }",
            json!({}),
        )
        .await;
    let domain = added["addDomain"].clone();
    assert_eq!(domain["host"], "portal.acme.example");
    assert!(domain["verifiedAt"].is_null());
    let body = via_host("portal.acme.example").await;
    assert_eq!(
        code(&body).as_deref(),
        Some("DOMAIN_NOT_CONFIGURED"),
        "unverified does not route: {body}"
    );
    let verify = "mutation($id: ID!) { verifyDomain(id: $id) { verifiedAt } }";
    let body = app
        .gql(&owner, Some("acme"), verify, json!({ "id": domain["id"] }))
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("PRECONDITION_FAILED"),
        "no TXT record yet: {body}"
    );
    let mut records = HashMap::new();
    records.insert(
        "_forklift-challenge.portal.acme.example".to_string(),
        vec![format!(
            "forklift-verification={}",
            domain["verificationToken"].as_str().expect("token")
        )],
    );
    app.state.set_resolver(Arc::new(StaticResolver { records }));
    let verified = app
        .ok(&owner, Some("acme"), verify, json!({ "id": domain["id"] }))
        .await;
    assert!(verified["verifyDomain"]["verifiedAt"].is_string());
    let body = via_host("portal.acme.example").await;
    assert_eq!(
        body["data"]["applications"]["totalCount"], 0,
        "verified domain routes: {body}"
    );
    // A host naming one tenant and a header naming another: denied.
    app.ready_tenant("globex").await;
    let response = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&admin)
        .header("Host", "portal.acme.example")
        .header("X-Tenant", "globex")
        .json(&json!({ "query": "{ applications { totalCount } }" }))
        .send()
        .await
        .expect("request");
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        code(&body).as_deref(),
        Some("CROSS_TENANT_DENIED"),
        "{body}"
    );
}

crate::both!(metrics_are_exposed_for_prometheus);
async fn metrics_are_exposed_for_prometheus(app: TestApp) {
    app.ready_tenant("acme").await;
    app.ok(
        &app.admin(),
        Some("acme"),
        "{ applications { totalCount } }",
        json!({}),
    )
    .await;
    let response = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/plain")
    );
    let text = response.text().await.expect("text");
    for needle in [
        "forklift_graphql_request_duration_seconds_count{operation=\"applications\",outcome=\"ok\"} 1",
        "forklift_fork_runs_total{status=\"FINISHED\"} 1",
        "forklift_fork_phase_duration_seconds_count{phase=\"APPLICATION_SPINE\"} 1",
        "forklift_websockets_open 0",
        "forklift_db_pool_connections{state=\"idle\"}",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in\n{text}");
    }
}
