//! Fleet upgrades (issue #18, item 6): every tenant of the template upgraded a few at a time,
//! one broken tenant reported without stopping the others, through the API and the CLI.

use forklift::fork::engine::target_id;
use sea_orm::{
    ConnectionTrait,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    fixture,
    harness::{TestApp, uuid_of},
};

const FLEET: &str = "mutation($dry: Boolean, $n: Int, $only: [String!]) { \
    upgradeAllTenants(input: { dryRun: $dry, concurrency: $n, tenants: $only }) { \
    tenant { slug } run { id status kind counts { className updated } } code error } }";

/// The `name` of report template `id`.
async fn report_name(app: &TestApp, id: Uuid) -> String {
    let mut select = Query::select();
    select
        .column(Alias::new("name"))
        .from(Alias::new("report_templates"))
        .and_where(Expr::col(Alias::new("id")).eq(id));
    let row = app.state.db.query_one(&select).await.expect("select");
    row.expect("the row")
        .try_get::<String>("", "name")
        .expect("name")
}

/// Renames the template's report template `id` (an edit the upgrade carries to the tenants).
async fn rename_report(app: &TestApp, id: Uuid, name: &str) {
    let mut update = Query::update();
    update
        .table(Alias::new("report_templates"))
        .value(Alias::new("name"), name)
        .and_where(Expr::col(Alias::new("id")).eq(id));
    app.state.db.execute(&update).await.expect("update");
}

/// A report template of the template.
async fn a_template_report(app: &TestApp, template: Uuid) -> Uuid {
    let mut select = Query::select();
    select
        .column(Alias::new("id"))
        .from(Alias::new("report_templates"))
        .and_where(Expr::col(Alias::new("tenant_id")).eq(template))
        .limit(1);
    let row = app.state.db.query_one(&select).await.expect("select");
    row.expect("a report template")
        .try_get::<Uuid>("", "id")
        .expect("id")
}

/// Removes `tenant`'s root organization (and what hangs from it): its upgrade's preconditions
/// fail from now on.
async fn break_tenant(app: &TestApp, tenant: Uuid) {
    let owner = app.owner_db().await;
    let mut delete = Query::delete();
    delete
        .from_table(Alias::new("organizations"))
        .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant));
    owner.execute(&delete).await.expect("delete organizations");
}

fn entries(data: &Value) -> &Vec<Value> {
    data["upgradeAllTenants"].as_array().expect("entries")
}

crate::both!(a_fleet_upgrade_upgrades_every_tenant_and_reports_a_broken_one);
async fn a_fleet_upgrade_upgrades_every_tenant_and_reports_a_broken_one(app: TestApp) {
    let (template, _, _) = fixture::seeded_template(&app.state, 1).await;
    let mut tenants = Vec::new();
    for i in 0..50 {
        let slug = format!("t{i:02}");
        tenants.push((slug.clone(), uuid_of(&app.ready_tenant(&slug).await)));
    }
    let report = a_template_report(&app, template).await;
    rename_report(&app, report, "Renamed by the template").await;
    let broken = tenants[17].1;
    break_tenant(&app, broken).await;
    let admin = app.admin();

    // A dry run plans every tenant and writes nothing.
    let data = app
        .ok(&admin, None, FLEET, json!({ "dry": true, "n": 8 }))
        .await;
    assert_eq!(entries(&data).len(), 50, "{data}");
    for entry in entries(&data) {
        if entry["tenant"]["slug"] == "t17" {
            assert_eq!(entry["code"], "PRECONDITION_FAILED", "{entry}");
            assert!(Value::is_null(&entry["run"]), "{entry}");
            continue;
        }
        assert_eq!(entry["run"]["status"], "PLANNED", "{entry}");
        let updated: i64 = entry["run"]["counts"]
            .as_array()
            .expect("counts")
            .iter()
            .map(|c| c["updated"].as_i64().unwrap_or(0))
            .sum();
        assert_eq!(updated, 1, "one row follows the template: {entry}");
    }
    let copy = target_id(tenants[0].1, report);
    assert_ne!(report_name(&app, copy).await, "Renamed by the template");

    // The upgrade: 49 runs, one refusal, and every run finishes with the template's change.
    let data = app.ok(&admin, None, FLEET, json!({ "n": 4 })).await;
    let mut runs = Vec::new();
    for entry in entries(&data) {
        if entry["tenant"]["slug"] == "t17" {
            assert_eq!(entry["code"], "PRECONDITION_FAILED", "{entry}");
            assert!(
                entry["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("root organization")),
                "{entry}"
            );
            continue;
        }
        assert_eq!(entry["run"]["kind"], "UPGRADE", "{entry}");
        runs.push(entry["run"]["id"].as_str().expect("run id").to_string());
    }
    assert_eq!(runs.len(), 49);
    for run in &runs {
        assert_eq!(app.wait_run(run).await["status"], "FINISHED");
    }
    for (slug, tenant) in &tenants {
        let name = report_name(&app, target_id(*tenant, report)).await;
        if *tenant == broken {
            assert_ne!(name, "Renamed by the template", "{slug} was not upgraded");
        } else {
            assert_eq!(name, "Renamed by the template", "{slug} was upgraded");
        }
    }
    // Nothing is left to do: a second fleet upgrade updates nothing.
    let data = app
        .ok(
            &admin,
            None,
            FLEET,
            json!({ "dry": true, "only": ["t00", "t49"] }),
        )
        .await;
    assert_eq!(entries(&data).len(), 2, "{data}");
    for entry in entries(&data) {
        assert!(
            entry["run"]["counts"]
                .as_array()
                .expect("counts")
                .iter()
                .all(|c| c["updated"] == 0),
            "{entry}"
        );
    }
}

crate::both!(a_fleet_upgrade_is_for_platform_admins_and_checks_its_input);
async fn a_fleet_upgrade_is_for_platform_admins_and_checks_its_input(app: TestApp) {
    fixture::seeded_template(&app.state, 1).await;
    app.ready_tenant("acme").await;
    let owner = app.add_member("acme", "owner@acme.test", "OWNER").await;
    let _ = owner;
    let token = app.token("owner@acme.test", Some("acme"), false, &[]);
    let body = app.gql(&token, Some("acme"), FLEET, json!({})).await;
    assert_eq!(
        crate::harness::code(&body).as_deref(),
        Some("FORBIDDEN"),
        "{body}"
    );
    let admin = app.admin();
    for (variables, field) in [
        (json!({ "n": 0 }), "concurrency"),
        (json!({ "n": 65 }), "concurrency"),
        (json!({ "only": ["nobody"] }), "tenant"),
    ] {
        let body = app.gql(&admin, None, FLEET, variables).await;
        assert_eq!(
            crate::harness::code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
        assert!(body.to_string().contains(field), "{body}");
    }
    // Nothing was started.
    let data = app
        .ok(
            &admin,
            None,
            "{ forkRuns(first: 50) { totalCount nodes { kind } } }",
            json!({}),
        )
        .await;
    assert!(
        data["forkRuns"]["nodes"]
            .as_array()
            .expect("runs")
            .iter()
            .all(|r| r["kind"] == "FORK"),
        "{data}"
    );
}

#[tokio::test]
async fn the_cli_upgrades_the_fleet_and_reports_each_tenant() {
    use std::process::Command;
    let dir = std::env::temp_dir().join(format!("forklift-fleet-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let url = format!("sqlite://{}?mode=rwc", dir.join("f.db").display());
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_forklift"))
            .current_dir(&dir)
            .args(args)
            .env("DATABASE_URL", &url)
            .env(
                "FORKLIFT_JWT_SECRET",
                "fleet-test-secret-0123456789abcdef0123",
            )
            .env_remove("FORKLIFT_SYSTEM_DATABASE_URL")
            .output()
            .expect("run forklift")
    };
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).to_string();
    // The demo tenant, forked from the compiled-in example template.
    let output = run(&["bootstrap"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let output = run(&["diff", "--tenant", "demo"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("(no differences)"), "{stdout}");
    // The template renames its applications: the diff shows them, the upgrade applies them.
    let db = sea_orm::Database::connect(&url).await.expect("connect");
    let renamed = db
        .execute_unprepared(
            "UPDATE applications SET name = name || ' v2' WHERE tenant_id IN \
             (SELECT id FROM tenants WHERE kind = 'TEMPLATE')",
        )
        .await
        .expect("rename")
        .rows_affected();
    assert!(renamed > 0);
    db.close().await.expect("close");
    let output = run(&["diff", "--tenant", "demo"]);
    let stdout = text(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Application "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let columns: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        columns[2],
        renamed.to_string(),
        "changed in the template: {stdout}"
    );
    let output = run(&["upgrade", "--all", "--dry-run"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(
        stdout.contains("demo") && stdout.contains("PLANNED"),
        "{stdout}"
    );
    let output = run(&["upgrade", "--tenant", "demo", "--concurrency", "2"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    let line = stdout
        .lines()
        .find(|l| l.starts_with("demo "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let columns: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(columns[1], "FINISHED", "{stdout}");
    assert_eq!(columns[2], renamed.to_string(), "rows updated: {stdout}");
    assert!(stdout.contains("1 tenant(s)"), "{stdout}");
    let output = run(&["diff", "--tenant", "demo"]);
    assert!(
        text(&output.stdout).contains("(no differences)"),
        "{}",
        text(&output.stdout)
    );
    // A tenant that is not there is a usage error, not an empty report.
    let output = run(&["upgrade", "--tenant", "nobody"]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("nobody"),
        "{}",
        text(&output.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

crate::both_backends!(an_upgrade_killed_mid_run_changes_nothing_and_a_rerun_completes);
/// A real server process upgrading a tenant is killed (SIGKILL) in the middle of phase 2: the
/// tenant is exactly as before, the run is abandoned, and running the upgrade again completes.
async fn an_upgrade_killed_mid_run_changes_nothing_and_a_rerun_completes(
    backend: crate::harness::Backend,
) {
    use std::time::Duration;
    let Some(survivor) = TestApp::spawn_with(
        backend,
        |c| c.fork_lease = Duration::from_secs(2),
        forklift::registry::Registry::default(),
    )
    .await
    else {
        return;
    };
    let (template, _, _) = fixture::seeded_template(&survivor.state, 3).await;
    let tenant = uuid_of(&survivor.ready_tenant("acme").await);
    let report = a_template_report(&survivor, template).await;
    rename_report(&survivor, report, "Renamed by the template").await;
    let before = fixture::dump(&survivor.state, tenant).await;
    let child = crate::replicas::Child::holding_mid_phase_2(&survivor).await;
    let admin = survivor.admin();
    // Not awaited: on SQLite the request's audit entry waits for the held run's write lock.
    let request = {
        let (base, admin) = (child.base.clone(), admin.clone());
        tokio::spawn(async move {
            let _ = reqwest::Client::new()
                .post(format!("{base}/graphql"))
                .bearer_auth(admin)
                .json(&json!({ "query": "mutation { upgradeTenant(input: { target: \"acme\" }) { id } }" }))
                .send()
                .await;
        })
    };
    let run = crate::replicas::running_run(&survivor, "UPGRADE").await;
    // Phase 1 takes milliseconds; the run then holds for a minute in the middle of phase 2.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(child); // SIGKILL, and reaped
    request.abort();
    let restarted = survivor
        .replica(|c| c.fork_lease = Duration::from_secs(2))
        .await;
    let status = restarted.wait_run_status(&run, "ABANDONED").await;
    assert_eq!(status, "ABANDONED");
    assert_eq!(
        fixture::dump(&restarted.state, tenant).await,
        before,
        "the killed upgrade left the tenant as it was"
    );
    // Running it again completes, and the template's change arrives.
    let data = restarted
        .ok(
            &admin,
            None,
            "mutation { upgradeTenant(input: { target: \"acme\" }) { id } }",
            json!({}),
        )
        .await;
    let rerun = data["upgradeTenant"]["id"]
        .as_str()
        .expect("run id")
        .to_string();
    assert_eq!(restarted.wait_run(&rerun).await["status"], "FINISHED");
    assert_eq!(
        report_name(&restarted, target_id(tenant, report)).await,
        "Renamed by the template"
    );
}
