//! Issue #13, items 9–12, as an attacker observes them: no existence oracles and no domain
//! squatting; NUL bytes and out-of-range numbers are bad input (and still audited); stylesheets
//! and logos cannot reach out, and the body limit is the documented one; a failed fork shows a
//! stable message, never the database's text.

use std::{collections::HashMap, sync::Arc};

use forklift::{domains::StaticResolver, registry::Registry};
use serde_json::{Value, json};

use crate::{
    fixture,
    harness::{Backend, TestApp, code, uuid_of},
    wsclient,
};

/// The message of the first error.
fn message(body: &Value) -> String {
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn count_domains(app: &TestApp, host: &str) -> usize {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    entity::domains::Entity::find()
        .filter(entity::domains::Column::Host.eq(host))
        .all(&app.state.db)
        .await
        .expect("domains")
        .len()
}

crate::both_backends!(no_existence_oracles_and_no_domain_squatting);
async fn no_existence_oracles_and_no_domain_squatting(backend: Backend) {
    let Some(app) = TestApp::spawn_with(
        backend,
        |c| c.base_domain = Some("forklift.test".into()),
        Registry::default(),
    )
    .await
    else {
        return;
    };
    app.ready_tenant("acme").await;
    app.ready_tenant("globex").await;
    app.add_member("acme", "o@acme.test", "OWNER").await;
    app.add_member("globex", "o@globex.test", "OWNER").await;
    let acme = app.token("o@acme.test", None, false, &[]);
    let globex = app.token("o@globex.test", None, false, &[]);
    let admin = app.admin();

    // checkAccess: another tenant's team answers exactly as a team that does not exist.
    let root = app
        .ok(
            &admin,
            Some("globex"),
            "{ organizations { nodes { id } } }",
            json!({}),
        )
        .await;
    let team = app
        .ok(
            &admin,
            Some("globex"),
            "mutation($o: ID!) { createTeam(input: { organizationId: $o, name: \
                \"Payroll\", services: [\"payroll\"] }) { id } }",
            json!({ "o": root["organizations"]["nodes"][0]["id"] }),
        )
        .await;
    let theirs = team["createTeam"]["id"].as_str().expect("team").to_string();
    let missing = forklift::graphql::ids::encode("Team", uuid::Uuid::now_v7());
    let check = "query($t: ID!) { checkAccess(teamId: $t, service: \"payroll\") { allowed reason message } }";
    let other = app
        .gql(&acme, Some("acme"), check, json!({ "t": theirs }))
        .await;
    let nothing = app
        .gql(&acme, Some("acme"), check, json!({ "t": missing }))
        .await;
    assert_eq!(code(&other).as_deref(), Some("NOT_FOUND"), "{other}");
    assert_eq!(
        other["errors"][0]["message"], nothing["errors"][0]["message"],
        "indistinguishable: {other} {nothing}"
    );
    assert!(!other.to_string().contains("Payroll"), "{other}");

    // Loopback names and IP literals are not custom domains.
    let add =
        "mutation($h: String!) { addDomain(host: $h) { id host verificationToken verifiedAt } }";
    for host in [
        "localhost",
        "app.localhost",
        "127.0.0.1",
        "127.1",
        "0x7f.1",
        "10.0.0.1",
        "::1",
        "[::1]",
        "[2001:db8::1]",
    ] {
        let body = app
            .gql(&acme, Some("acme"), add, json!({ "h": host }))
            .await;
        assert_eq!(
            code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{host}: {body}"
        );
    }
    let body = app
        .gql(
            &admin,
            None,
            "mutation { createTenant(input: { name: \"Loop\", slug: \"loop\", \
                domain: \"portal.localhost\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");

    // An unverified claim blocks nobody and reveals nothing: both tenants claim the host.
    let host = "portal.shared.example";
    let squat = app
        .ok(&globex, Some("globex"), add, json!({ "h": host }))
        .await["addDomain"]
        .clone();
    let mine = app.ok(&acme, Some("acme"), add, json!({ "h": host })).await["addDomain"].clone();
    assert_eq!(mine["host"], host);
    assert!(mine["verifiedAt"].is_null());
    assert_eq!(count_domains(&app, host).await, 2, "two unverified claims");
    // A tenant that tries the same host twice: its own claim is its own business.
    let body = app
        .gql(&acme, Some("acme"), add, json!({ "h": host }))
        .await;
    assert_eq!(code(&body).as_deref(), Some("CONFLICT"), "{body}");

    // Both publish their own TXT record; the first to verify wins.
    let mut records = HashMap::new();
    records.insert(
        format!("_forklift-challenge.{host}"),
        [&mine, &squat]
            .iter()
            .map(|d| {
                format!(
                    "forklift-verification={}",
                    d["verificationToken"].as_str().expect("token")
                )
            })
            .collect(),
    );
    app.state.set_resolver(Arc::new(StaticResolver { records }));
    let verify = "mutation($id: ID!) { verifyDomain(id: $id) { host verifiedAt } }";
    let won = app
        .ok(&acme, Some("acme"), verify, json!({ "id": mine["id"] }))
        .await;
    assert!(won["verifyDomain"]["verifiedAt"].is_string(), "{won}");
    let lost = app
        .gql(
            &globex,
            Some("globex"),
            verify,
            json!({ "id": squat["id"] }),
        )
        .await;
    assert_eq!(code(&lost).as_deref(), Some("CONFLICT"), "{lost}");
    let text = lost.to_string().to_lowercase();
    assert!(
        !text.contains("unique") && !text.contains("constraint") && !text.contains("ux_"),
        "no database text: {lost}"
    );
    // The host routes to the winner only.
    let routed = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&acme)
        .header("Host", host)
        .json(&json!({ "query": "{ branding { primaryColor } }" }))
        .send()
        .await
        .expect("request");
    let routed: Value = routed.json().await.expect("json");
    assert!(routed.get("errors").is_none(), "routes to acme: {routed}");
    let routed = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&globex)
        .header("Host", host)
        .json(&json!({ "query": "{ branding { primaryColor } }" }))
        .send()
        .await
        .expect("request");
    let routed: Value = routed.json().await.expect("json");
    assert_eq!(
        code(&routed).as_deref(),
        Some("CROSS_TENANT_DENIED"),
        "not to globex: {routed}"
    );

    // The database holds the rule even for a writer that skips the check.
    {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        let forced = entity::domains::Entity::update_many()
            .col_expr(
                entity::domains::Column::VerifiedAt,
                Expr::value(chrono::Utc::now()),
            )
            .filter(entity::domains::Column::Id.eq(uuid_of(squat["id"].as_str().expect("id"))))
            .exec(&app.state.db)
            .await;
        assert!(
            forced.is_err(),
            "a second verified row for the host is refused by the index"
        );
    }

    // Once the winner lets go, the other tenant can verify.
    app.ok(
        &acme,
        Some("acme"),
        "mutation($id: ID!) { removeDomain(id: $id) }",
        json!({ "id": mine["id"] }),
    )
    .await;
    let now = app
        .ok(
            &globex,
            Some("globex"),
            verify,
            json!({ "id": squat["id"] }),
        )
        .await;
    assert!(now["verifyDomain"]["verifiedAt"].is_string(), "{now}");
}

crate::both!(nul_bytes_and_wild_numbers_are_bad_input_and_still_audited);
async fn nul_bytes_and_wild_numbers_are_bad_input_and_still_audited(app: TestApp) {
    app.ready_tenant("acme").await;
    app.add_member("acme", "o@acme.test", "OWNER").await;
    let owner = app.token("o@acme.test", None, false, &[]);
    let admin = app.admin();
    let create =
        "mutation($input: CreateApplicationInput!) { createApplication(input: $input) { id } }";

    // In a literal argument, in a nested input object given as a variable, in a list.
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "literal",
            "mutation { createApplication(input: { code: \"a\\u0000\", name: \"A\", routeNamespace: \"a\" }) { id } }",
            json!({}),
        ),
        (
            "variable",
            create,
            json!({ "input": { "code": "b", "name": "B\u{0}", "routeNamespace": "b" } }),
        ),
        (
            "id argument",
            "mutation($id: ID!) { deleteApplication(id: $id) }",
            json!({ "id": "QXBwbGljYXRpb246\u{0}" }),
        ),
        (
            "css",
            "mutation($c: String) { updateBranding(input: { customCss: $c }) { customCss } }",
            json!({ "c": "a { color: red }\u{0}" }),
        ),
    ];
    for (what, query, variables) in &cases {
        let (status, body) = app
            .post(Some(&owner), Some("acme"), query, variables.clone())
            .await;
        assert_eq!(
            code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{what}: {status} {body}"
        );
        assert!(message(&body).contains("NUL"), "{what}: {body}");
        assert!(status < 500, "{what}: {status}");
    }
    let apps = app
        .ok(
            &owner,
            Some("acme"),
            "{ applications { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(apps["applications"]["totalCount"], 0, "nothing was written");
    // Each refused mutation is in the audit log, the NUL one included.
    let log = app
        .ok(
            &owner,
            Some("acme"),
            "{ auditLog(filter: { outcome: \"REFUSED\" }) { totalCount nodes { \
                operation detail } } }",
            json!({}),
        )
        .await;
    let entries = log["auditLog"]["nodes"]
        .as_array()
        .expect("entries")
        .clone();
    for operation in ["createApplication", "deleteApplication", "updateBranding"] {
        assert!(
            entries
                .iter()
                .any(|e| e["operation"] == operation && e["detail"]["code"] == "BAD_USER_INPUT"),
            "{operation} audited: {log}"
        );
    }
    assert_eq!(log["auditLog"]["totalCount"], 4, "{log}");

    // Queries too, and the admin's catalog.
    let body = app
        .gql(
            &admin,
            None,
            "query($id: ID!) { tenant(id: $id) { id } }",
            json!({ "id": "\u{0}" }),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    let body = app
        .gql(
            &admin,
            None,
            "{ tenants(search: \"ac\\u0000me\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");

    // Token claims.
    for token in [
        app.token("o@acme.test\u{0}", None, false, &[]),
        app.token("o@acme.test", Some("ac\u{0}me"), false, &[]),
        app.token(
            "admin@platform.test",
            None,
            true,
            &["vocabulary:author\u{0}"],
        ),
    ] {
        let (status, body) = app
            .post(Some(&token), None, "{ me { subject } }", json!({}))
            .await;
        assert_eq!(
            code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{status} {body}"
        );
    }
    // A path: the logo of a tenant whose slug holds a NUL is simply not there.
    let response = app
        .http
        .get(app.url("/tenants/ac%00me/logo"))
        .send()
        .await
        .expect("logo");
    assert_eq!(response.status().as_u16(), 404);

    // Numbers out of range: refused, and the server goes on.
    for (query, field) in [
        (
            "{ tenantStats(expiringWithinDays: 2147483647) { expiring } }",
            "expiringWithinDays",
        ),
        (
            "{ tenantStats(expiringWithinDays: -1) { expiring } }",
            "expiringWithinDays",
        ),
        (
            "{ tenants(filter: { expiringWithinDays: 2147483647 }) { totalCount } }",
            "filter.expiringWithinDays",
        ),
        (
            "mutation { createTenant(input: { name: \"Long\", slug: \"long\", trialDays: 2147483647 }) { id } }",
            "input.trialDays",
        ),
    ] {
        let (status, body) = app.post(Some(&admin), None, query, json!({})).await;
        assert_eq!(
            code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{query}: {status} {body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    let stats = app
        .ok(
            &admin,
            None,
            "{ tenantStats(expiringWithinDays: 3650) { total } }",
            json!({}),
        )
        .await;
    assert_eq!(stats["tenantStats"]["total"], 1);
}

#[test]
fn the_cli_refuses_sheets_it_cannot_read_to_an_end() {
    // Each run must end by itself: one still reading after a minute is killed and fails the test
    // (a liveness bound, not a speed goal).
    let run = |path: &std::path::Path| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_forklift"))
            .args(["sheets", "validate"])
            .arg(path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("forklift runs");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while child.try_wait().expect("wait").is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("`forklift sheets validate {}` did not end", path.display());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child.wait_with_output().expect("output")
    };
    // A device that never ends.
    let output = run(std::path::Path::new("/dev/zero"));
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("not a regular file"),
        "{output:?}"
    );
    // A file over the documented size.
    let dir = std::env::temp_dir().join(format!("forklift-big-sheets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let big = dir.join("big.yaml");
    let mut text = "identity:\n  code: big\n".to_string();
    text.push_str(&"# padding\n".repeat(forklift::sheets::check::MAX_SHEET_BYTES / 10 + 1));
    std::fs::write(&big, &text).expect("write");
    let output = run(&big);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("larger than"),
        "{output:?}"
    );
    // A NUL written as a YAML escape is refused with its place.
    let nul = dir.join("nul.yaml");
    std::fs::write(&nul, "identity:\n  code: \"a\\0b\"\n").expect("write");
    let output = run(&nul);
    assert_ne!(output.status.code(), Some(0), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("nul.yaml:2:")
            || String::from_utf8_lossy(&output.stderr).contains("nul.yaml:2:"),
        "{output:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends a GraphQL multipart upload of `bytes` as the logo; returns the status and the body.
async fn upload_logo(app: &TestApp, token: &str, tenant: &str, bytes: &[u8]) -> (u16, Value) {
    crate::tenancy::upload(app, token, tenant, "logo", bytes).await
}

crate::both!(stylesheets_and_logos_cannot_reach_out);
async fn stylesheets_and_logos_cannot_reach_out(app: TestApp) {
    app.ready_tenant("acme").await;
    app.add_member("acme", "su@acme.test", "SUPER_USER").await;
    let su = app.token("su@acme.test", None, false, &[]);
    let update =
        "mutation($css: String) { updateBranding(input: { customCss: $css }) { customCss } }";
    for css in [
        "input[value^=a] { background: url('/\t/evil.example/a') }",
        "input[value^=a] { background: url('/\n/evil.example/a') }",
        "input[value^=a] { background: url(\"\u{1}//evil.example/a\") }",
        "input[value^=a] { background: url('ht\ttps://evil.example/a') }",
    ] {
        let body = app
            .gql(&su, Some("acme"), update, json!({ "css": css }))
            .await;
        assert_eq!(
            code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{css:?}: {body}"
        );
    }
    let kept = app
        .ok(&su, Some("acme"), "{ branding { customCss } }", json!({}))
        .await;
    assert!(
        kept["branding"]["customCss"].is_null(),
        "nothing stored: {kept}"
    );

    let svg = |body: &str| {
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">{body}</svg>"#
        )
    };
    for trick in [
        r#"<a href="&#106;avascript:alert(document.domain)"><text>x</text></a>"#,
        r#"<a xlink:href="&#x6A;avascript&#x3A;alert(1)"><text>x</text></a>"#,
        r#"<a><set attributeName="href" to="javascript:alert(1)"/><text>x</text></a>"#,
        r#"<a><animate attributeName="xlink:href" values="javascript:alert(1)"/><text>x</text></a>"#,
        r#"<use href="https://evil.example/sprite.svg#icon"/>"#,
        r#"<style>@import url(https://evil.example/x.css);</style>"#,
        r#"<foreignObject><iframe xmlns="http://www.w3.org/1999/xhtml" src="https://evil.example"/></foreignObject>"#,
        r#"<rect width="1" height="1" onmouseover="alert(1)"/>"#,
        r#"<image href="https://evil.example/pixel.png"/>"#,
    ] {
        let (status, body) = upload_logo(&app, &su, "acme", svg(trick).as_bytes()).await;
        assert_eq!(
            code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{trick}: {status} {body}"
        );
    }
    let kept = app
        .ok(&su, Some("acme"), "{ branding { logoUrl } }", json!({}))
        .await;
    assert!(
        kept["branding"]["logoUrl"].is_null(),
        "no logo stored: {kept}"
    );

    // The body limit is the documented 3 MB: a logo of the largest size (2 MB) goes through
    // (its request is over axum's 2 MB default), 2.5 MB reaches the logo check, 3.5 MB is 413.
    let png = |len: usize| {
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        bytes.resize(len, 7);
        bytes
    };
    let largest = png(forklift::branding::MAX_LOGO_BYTES);
    let (status, body) = upload_logo(&app, &su, "acme", &largest).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["uploadLogo"]["logoContentType"], "image/png",
        "{body}"
    );
    let url = body["data"]["uploadLogo"]["logoUrl"]
        .as_str()
        .expect("url")
        .to_string();
    let served = app.http.get(app.url(&url)).send().await.expect("logo");
    assert_eq!(served.bytes().await.expect("bytes").len(), largest.len());
    let (status, body) = upload_logo(&app, &su, "acme", &png(2_500_000)).await;
    assert_eq!(
        code(&body).as_deref(),
        Some("BAD_USER_INPUT"),
        "2.5 MB reaches the logo check: {status} {body}"
    );
    assert!(message(&body).contains("2 MB"), "{body}");
    let kept = app
        .ok(&su, Some("acme"), "{ branding { logoUrl } }", json!({}))
        .await;
    assert_eq!(
        kept["branding"]["logoUrl"],
        url.as_str(),
        "the 2 MB logo stays"
    );
    // A plain JSON body of 2.5 MB is read too (and refused for what it is, not its size).
    let padding = "x".repeat(2_500_000);
    let (status, body) = app
        .post(
            Some(&su),
            Some("acme"),
            "query($p: String) { branding { customCss } }",
            json!({ "p": padding }),
        )
        .await;
    assert!(status != 413, "2.5 MB JSON body: {status} {body}");
    // Last: a body over the limit is refused before it is read, and the server closes that
    // connection, so nothing else goes over this client's pooled connections after it.
    let (status, body) = upload_logo(&app, &su, "acme", &png(3_500_000)).await;
    assert!(
        status == 413 || status == 0,
        "over the body limit: {status} {body}"
    );
}

crate::both_backends!(a_failed_fork_shows_a_stable_message_not_the_database_text);
async fn a_failed_fork_shows_a_stable_message_not_the_database_text(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |_| {}, Registry::default()).await else {
        return;
    };
    fixture::seeded_template(&app.state, 2).await;
    let tenant = uuid_of(&app.create_tenant("acme").await);
    let before = fixture::dump(&app.state, tenant).await;
    // A real database error in the middle of the first phase, with text of its own.
    let secret = "secret-driver-text-7f3a";
    let owner = app.owner_db().await;
    if backend == Backend::Sqlite {
        fixture::exec(&owner, &format!(
            "CREATE TRIGGER it_boom BEFORE INSERT ON applications BEGIN SELECT RAISE(ABORT, '{secret}'); END"
        )).await;
    } else {
        fixture::exec(&owner, &format!(
            "CREATE FUNCTION it_boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{secret}'; END $$"
        )).await;
        fixture::exec(
            &owner,
            "CREATE TRIGGER it_boom BEFORE INSERT ON applications FOR EACH ROW \
                EXECUTE FUNCTION it_boom()",
        )
        .await;
    }
    let run_id = app.start_fork("acme").await;
    let run = app.wait_run(&run_id).await;
    assert_eq!(run["status"], "ROLLED_BACK", "{run}");
    assert_eq!(run["failedPhase"], "APPLICATION_SPINE", "{run}");
    assert_eq!(
        run["error"],
        forklift::fork::runs::FORK_FAILED_MESSAGE,
        "{run}"
    );
    assert!(!run.to_string().contains(secret), "{run}");
    assert_eq!(
        before,
        fixture::dump(&app.state, tenant).await,
        "target unchanged"
    );
    let events =
        wsclient::fork_events(&app.ws_url(), "graphql-transport-ws", &app.admin(), &run_id).await;
    wsclient::assert_complete_run(&events, "RUN_ROLLED_BACK");
    for event in &events[events.len() - 2..] {
        assert_eq!(event["detail"]["code"], "FORK_FAILED", "{event}");
        assert_eq!(
            event["detail"]["reason"],
            forklift::fork::runs::FORK_FAILED_MESSAGE,
            "{event}"
        );
    }
    let all = serde_json::to_string(&events).expect("json");
    assert!(!all.contains(secret), "no driver text in any event: {all}");
    // The stored record reads the same through the generic surface.
    let stored = app
        .ok(
            &app.admin(),
            None,
            "{ forkRuns { nodes { error } } forkEvents { nodes { detail } } }",
            json!({}),
        )
        .await;
    assert!(!stored.to_string().contains(secret), "{stored}");
}
