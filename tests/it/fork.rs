//! Issue #4: the fork's guarantees, with the database inspected after each case, and the live
//! progress stream over a real WebSocket.

use std::collections::{BTreeMap, BTreeSet};

use forklift::{
    registry::{ColumnDesc, ColumnKind, Fork, Plane, ReferenceDesc, Registry, RowClass, Surface},
    rows::Cell,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    fixture,
    harness::{Backend, TestApp, code, uuid_of},
    wsclient,
};

/// Row counts of every copied class for `tenant`.
async fn counts(app: &TestApp, tenant: Uuid) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for class in app.state.registry.copied_classes() {
        out.insert(
            class.table.clone(),
            fixture::count(&app.state.db, &class.table, tenant).await,
        );
    }
    out
}

/// Asserts every same-tenant reference of every copied row of `tenant` points at a row of
/// `tenant`, and every vocabulary reference at the vocabulary.
async fn assert_references_stay_inside(app: &TestApp, tenant: Uuid, vocabulary: &fixture::Seeded) {
    for class in app.state.registry.copied_classes() {
        let rows = fixture::rows_of(&app.state, class, tenant).await;
        for reference in &class.references {
            let targets: BTreeSet<Uuid> = if reference.same_tenant {
                fixture::ids_of(&app.state, &reference.table, tenant)
                    .await
                    .into_iter()
                    .collect()
            } else {
                vocabulary
                    .get(&reference.table)
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .collect()
            };
            for row in &rows {
                if let Some(target) = row.get(&reference.column).as_uuid() {
                    assert!(
                        targets.contains(&target),
                        "{}.{} = {target} points outside the target tenant",
                        class.table,
                        reference.column
                    );
                }
            }
        }
    }
}

crate::both!(a_fork_copies_every_class_and_rewrites_references);
async fn a_fork_copies_every_class_and_rewrites_references(app: TestApp) {
    let (template, vocabulary, _) = fixture::seeded_template(&app.state, 3).await;
    let tenant = uuid_of(&app.create_tenant("acme").await);
    let run = app.fork("acme").await;
    assert_eq!(run["status"], "FINISHED", "{run}");
    assert_eq!(
        counts(&app, tenant).await,
        counts(&app, template).await,
        "counts per class equal the template's"
    );
    assert_references_stay_inside(&app, tenant, &vocabulary).await;
    // Derived phases realised geo layers and citizen grants in the tenant.
    assert!(
        fixture::count(&app.state.db, "geo_layers", tenant).await > 0,
        "geo layers derived"
    );
    assert!(
        fixture::count(&app.state.db, "access_grants", tenant).await > 0,
        "citizen grants derived"
    );
    // The run record says what happened.
    let created: i64 = run["counts"]
        .as_array()
        .expect("counts")
        .iter()
        .map(|c| c["created"].as_i64().unwrap_or(0))
        .sum();
    let copied: i64 = counts(&app, tenant).await.values().sum();
    assert!(
        created >= copied,
        "counts {created} cover the {copied} copied rows: {run}"
    );
    assert_eq!(run["actor"], "admin@platform.test");
    // The tenant is ready for its members.
    let admin = app.admin();
    let data = app
        .ok(
            &admin,
            None,
            "query($id: ID!) { tenant(id: $id) { provisioningState } }",
            json!({ "id": forklift::graphql::ids::encode("Tenant", tenant) }),
        )
        .await;
    assert_eq!(data["tenant"]["provisioningState"], "READY", "{data}");
}

crate::both!(an_adapter_placement_points_at_the_targets_copy);
async fn an_adapter_placement_points_at_the_targets_copy(app: TestApp) {
    let (template, vocabulary, config) = fixture::seeded_template(&app.state, 2).await;
    // Placement of application 0 pointing at an action of application 1 (an adapter).
    let apps = &config["applications"];
    let actions = fixture::rows_of(
        &app.state,
        app.state.registry.by_table("actions").expect("actions"),
        template,
    )
    .await;
    let foreign = actions
        .iter()
        .find(|a| a.get("application_id").as_uuid() == Some(apps[1]))
        .expect("an action of app 1");
    let class = app
        .state
        .registry
        .by_table("action_placements")
        .expect("placements")
        .clone();
    let mut values = std::collections::HashMap::new();
    for column in &class.columns {
        let cell = match column.name.as_str() {
            "id" => Cell::Uuid(Uuid::now_v7()),
            "tenant_id" => Cell::Uuid(template),
            "application_id" => Cell::Uuid(apps[0]),
            "action_id" => Cell::Uuid(foreign.id()),
            "surface_type_id" => Cell::Uuid(vocabulary["surface_types"][0]),
            "created_at" | "updated_at" => Cell::Timestamp(chrono::Utc::now()),
            _ => match column.kind {
                ColumnKind::Text => Cell::Text("adapter".into()),
                ColumnKind::Int => Cell::Int(9),
                ColumnKind::Bool => Cell::Bool(false),
                ColumnKind::Json => Cell::Json(json!({})),
                _ => Cell::Null,
            },
        };
        values.insert(column.name.clone(), cell);
    }
    let adapter = fixture::insert(&app.state.db, &class, &values).await;
    let tenant = uuid_of(&app.create_tenant("acme").await);
    assert_eq!(app.fork("acme").await["status"], "FINISHED");
    let copy = forklift::fork::engine::target_id(tenant, adapter);
    let placements = fixture::rows_of(&app.state, &class, tenant).await;
    let placed = placements
        .iter()
        .find(|p| p.id() == copy)
        .expect("the adapter placement was copied");
    assert_eq!(
        placed.get("action_id").as_uuid(),
        Some(forklift::fork::engine::target_id(tenant, foreign.id()))
    );
    assert_eq!(
        placed.get("application_id").as_uuid(),
        Some(forklift::fork::engine::target_id(tenant, apps[0]))
    );
    assert_eq!(
        placed.get("surface_type_id").as_uuid(),
        Some(vocabulary["surface_types"][0]),
        "vocabulary kept as-is"
    );
}

crate::both!(a_dry_run_plans_and_writes_nothing);
async fn a_dry_run_plans_and_writes_nothing(app: TestApp) {
    let (template, _, _) = fixture::seeded_template(&app.state, 2).await;
    let tenant = uuid_of(&app.create_tenant("acme").await);
    let before = fixture::dump(&app.state, tenant).await;
    let runs_before = fixture::count_all(&app.state.db, "fork_runs").await;
    let data = app
        .ok(
            &app.admin(),
            None,
            "mutation { forkTenant(input: { target: \"acme\", dryRun: true }) { \
                status dryRun counts { className phase rows created matched skipped \
                removed } skipped { className sourceId column reason } } }",
            json!({}),
        )
        .await;
    let plan = &data["forkTenant"];
    assert_eq!(plan["status"], "PLANNED");
    assert_eq!(plan["dryRun"], true);
    let planned: BTreeMap<String, i64> = plan["counts"]
        .as_array()
        .expect("counts")
        .iter()
        .filter_map(|c| {
            let class = app
                .state
                .registry
                .by_name(c["className"].as_str().unwrap_or(""))?;
            class
                .fork
                .is_copied()
                .then(|| (class.table.clone(), c["created"].as_i64().unwrap_or(0)))
        })
        .collect();
    assert_eq!(
        planned,
        counts(&app, template).await,
        "the plan counts the rows to create: {plan}"
    );
    assert_eq!(
        before,
        fixture::dump(&app.state, tenant).await,
        "nothing written"
    );
    assert_eq!(
        runs_before,
        fixture::count_all(&app.state.db, "fork_runs").await,
        "no run recorded"
    );
    // The derived phases are planned too, from the rows the run would create: the real run
    // creates exactly what the plan said.
    let derived = |run: &Value| -> BTreeMap<(String, String), i64> {
        run["counts"]
            .as_array()
            .expect("counts")
            .iter()
            .filter(|c| {
                app.state
                    .registry
                    .by_name(c["className"].as_str().unwrap_or(""))
                    .is_some_and(|k| !k.fork.is_copied())
            })
            .map(|c| {
                (
                    (
                        c["phase"].as_str().unwrap_or("").to_string(),
                        c["className"].as_str().unwrap_or("").to_string(),
                    ),
                    c["created"].as_i64().unwrap_or(0),
                )
            })
            .collect()
    };
    let planned_derived = derived(plan);
    assert!(
        planned_derived.values().sum::<i64>() > 0,
        "the fixture yields derived rows: {plan}"
    );
    let run = app.fork("acme").await;
    assert_eq!(run["status"], "FINISHED", "{run}");
    assert_eq!(planned_derived, derived(&run), "plan {plan}\nrun {run}");
}

crate::both!(a_second_fork_converges_keeps_tenant_edits_and_deletions);
async fn a_second_fork_converges_keeps_tenant_edits_and_deletions(app: TestApp) {
    let (_, _, _) = fixture::seeded_template(&app.state, 2).await;
    let tenant = uuid_of(&app.ready_tenant("acme").await);
    let first = counts(&app, tenant).await;
    let again = app.fork("acme").await;
    assert_eq!(again["status"], "FINISHED");
    let created: i64 = again["counts"]
        .as_array()
        .expect("counts")
        .iter()
        .filter(|c| {
            app.state
                .registry
                .by_name(c["className"].as_str().unwrap_or(""))
                .is_some_and(|k| k.fork.is_copied())
        })
        .map(|c| c["created"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(created, 0, "nothing new when nothing changed: {again}");
    assert_eq!(first, counts(&app, tenant).await);

    // The tenant edits one application and deletes a report template.
    let admin = app.admin();
    let apps = app
        .ok(
            &admin,
            Some("acme"),
            "{ applications(first: 1) { nodes { id name } } }",
            json!({}),
        )
        .await;
    let app_id = apps["applications"]["nodes"][0]["id"]
        .as_str()
        .expect("app")
        .to_string();
    app.ok(
        &admin,
        Some("acme"),
        "mutation($id: ID!) { updateApplication(id: $id, input: { name: \"Ours now\" }) { name } }",
        json!({ "id": app_id }),
    )
    .await;
    let reports = app
        .ok(
            &admin,
            Some("acme"),
            "{ reportTemplates(first: 1) { nodes { id } } }",
            json!({}),
        )
        .await;
    let report = reports["reportTemplates"]["nodes"][0]["id"]
        .as_str()
        .expect("report")
        .to_string();
    app.ok(
        &admin,
        Some("acme"),
        "mutation($id: ID!) { deleteReportTemplate(id: $id) }",
        json!({ "id": report }),
    )
    .await;
    assert_eq!(app.fork("acme").await["status"], "FINISHED");
    let data = app
        .ok(
            &admin,
            Some("acme"),
            "query($id: ID!) { application(id: $id) { name } reportTemplate(id: $r) { id } }"
                .replace("$id: ID!)", "$id: ID!, $r: ID!)")
                .as_str(),
            json!({ "id": app_id, "r": report }),
        )
        .await;
    assert_eq!(
        data["application"]["name"], "Ours now",
        "the tenant's edit is kept"
    );
    assert_eq!(
        data["reportTemplate"],
        Value::Null,
        "the deleted row stays deleted (its tombstone)"
    );
    let mut expected = first.clone();
    *expected.get_mut("report_templates").expect("reports") -= 1;
    assert_eq!(expected, counts(&app, tenant).await);
    // Unless the run is asked to restore it.
    let restore = app
        .ok(
            &admin,
            None,
            "mutation { forkTenant(input: { target: \"acme\", restoreDeleted: true }) { id } }",
            json!({}),
        )
        .await;
    let run = app
        .wait_run(restore["forkTenant"]["id"].as_str().expect("run"))
        .await;
    assert_eq!(run["status"], "FINISHED", "{run}");
    let data = app
        .ok(
            &admin,
            Some("acme"),
            "query($r: ID!) { reportTemplate(id: $r) { id } }",
            json!({ "r": report }),
        )
        .await;
    assert_eq!(
        data["reportTemplate"]["id"],
        report.as_str(),
        "restoreDeleted brings it back"
    );
    assert_eq!(first, counts(&app, tenant).await);
}

crate::both!(copies_are_independent_of_the_template);
async fn copies_are_independent_of_the_template(app: TestApp) {
    fixture::seeded_template(&app.state, 2).await;
    app.ready_tenant("acme").await;
    let admin = app.admin();
    let query = "{ applications(orderBy: CODE_ASC) { nodes { id code name } } }";
    let tenant_before = app.ok(&admin, Some("acme"), query, json!({})).await;
    let template_before = app.ok(&admin, Some("template"), query, json!({})).await;
    let template_app = template_before["applications"]["nodes"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    app.ok(
        &admin,
        Some("template"),
        "mutation($id: ID!) { updateApplication(id: $id, input: { name: \
            \"Template v2\" }) { name } }",
        json!({ "id": template_app }),
    )
    .await;
    assert_eq!(
        tenant_before,
        app.ok(&admin, Some("acme"), query, json!({})).await,
        "template edits never reach the tenant"
    );
    let tenant_app = tenant_before["applications"]["nodes"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    app.ok(
        &admin,
        Some("acme"),
        "mutation($id: ID!) { updateApplication(id: $id, input: { name: \"Acme's\" }) { name } }",
        json!({ "id": tenant_app }),
    )
    .await;
    let template_after = app.ok(&admin, Some("template"), query, json!({})).await;
    assert_eq!(
        template_after["applications"]["nodes"][0]["name"], "Template v2",
        "tenant edits never reach the template"
    );
}

crate::both!(concurrent_forks_of_one_target_make_one_set_of_rows);
async fn concurrent_forks_of_one_target_make_one_set_of_rows(app: TestApp) {
    let (template, _, _) = fixture::seeded_template(&app.state, 3).await;
    let tenant = uuid_of(&app.create_tenant("acme").await);
    let (a, b) = tokio::join!(app.start_fork("acme"), app.start_fork("acme"));
    let (ra, rb) = tokio::join!(app.wait_run(&a), app.wait_run(&b));
    let statuses: BTreeSet<String> = [&ra, &rb]
        .iter()
        .map(|r| r["status"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(statuses.iter().all(|s| s == "FINISHED"), "{ra} {rb}");
    assert_eq!(
        counts(&app, tenant).await,
        counts(&app, template).await,
        "one set of rows"
    );
}

crate::both!(preconditions_fail_fast);
async fn preconditions_fail_fast(app: TestApp) {
    fixture::template(&app.state).await;
    let admin = app.admin();
    let fork = "mutation($t: String!, $s: String) { forkTenant(input: { target: $t, source: $s }) { id } }";
    let body = app.gql(&admin, None, fork, json!({ "t": "nobody" })).await;
    assert_eq!(
        code(&body).as_deref(),
        Some("PRECONDITION_FAILED"),
        "a missing target: {body}"
    );
    let body = app
        .gql(&admin, None, fork, json!({ "t": "template" }))
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("PRECONDITION_FAILED"),
        "a template is never a target: {body}"
    );
    app.create_tenant("acme").await;
    let body = app
        .gql(&admin, None, fork, json!({ "t": "acme", "s": "acme" }))
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("PRECONDITION_FAILED"),
        "source is target: {body}"
    );
    // Only platform admins fork.
    app.ready_tenant("globex").await;
    app.add_member("globex", "owner@globex.test", "OWNER").await;
    let owner = app.token("owner@globex.test", None, false, &[]);
    let body = app
        .gql(&owner, Some("globex"), fork, json!({ "t": "globex" }))
        .await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
}

crate::both!(late_and_early_subscribers_see_every_event_in_order);
async fn late_and_early_subscribers_see_every_event_in_order(app: TestApp) {
    fixture::seeded_template(&app.state, 3).await;
    app.create_tenant("acme").await;
    let admin = app.admin();
    let run = app.start_fork("acme").await;
    let live = wsclient::fork_events(&app.ws_url(), "graphql-transport-ws", &admin, &run).await;
    wsclient::assert_complete_run(&live, "RUN_FINISHED");
    let kinds: Vec<&str> = live.iter().filter_map(|e| e["kind"].as_str()).collect();
    for phase_kind in ["PHASE_STARTED", "ROWS_COPIED", "PHASE_FINISHED"] {
        assert!(kinds.contains(&phase_kind), "{phase_kind} in {kinds:?}");
    }
    let phases: Vec<&str> = live
        .iter()
        .filter(|e| e["kind"] == "PHASE_STARTED")
        .filter_map(|e| e["phase"].as_str())
        .collect();
    assert_eq!(phases.len(), 5, "five phases: {phases:?}");
    // A subscriber joining after the end gets the stored events, the same ones.
    let late = wsclient::fork_events(&app.ws_url(), "graphql-transport-ws", &admin, &run).await;
    assert_eq!(live, late);
    // And over the legacy protocol.
    let legacy = wsclient::fork_events(&app.ws_url(), "graphql-ws", &admin, &run).await;
    assert_eq!(live, legacy);
}

/// The failure points the engine offers to tests.
pub(crate) const FAILPOINTS: [&str; 6] = [
    "after_phase:1",
    "mid_phase:2",
    "after_phase:2",
    "after_phase:3",
    "after_phase:4",
    "after_phase:5",
];

crate::both_backends!(a_failure_in_any_phase_leaves_the_target_as_it_was);
async fn a_failure_in_any_phase_leaves_the_target_as_it_was(backend: Backend) {
    for point in FAILPOINTS {
        let Some(app) = TestApp::spawn_with(
            backend,
            |c| c.fork_failpoint = Some(point.to_string()),
            Registry::default(),
        )
        .await
        else {
            return;
        };
        fixture::seeded_template(&app.state, 2).await;
        let tenant = uuid_of(&app.create_tenant("acme").await);
        let before = fixture::dump(&app.state, tenant).await;
        let run_id = app.start_fork("acme").await;
        let run = app.wait_run(&run_id).await;
        assert_eq!(run["status"], "ROLLED_BACK", "{point}: {run}");
        assert!(
            run["failedPhase"].as_str().is_some_and(|p| !p.is_empty()),
            "{point}: {run}"
        );
        assert_eq!(
            run["error"],
            forklift::fork::runs::FORK_FAILED_MESSAGE,
            "{point}: {run}"
        );
        assert_eq!(
            before,
            fixture::dump(&app.state, tenant).await,
            "{point}: target unchanged"
        );
        let events =
            wsclient::fork_events(&app.ws_url(), "graphql-transport-ws", &app.admin(), &run_id)
                .await;
        wsclient::assert_complete_run(&events, "RUN_ROLLED_BACK");
        assert_eq!(
            events[events.len() - 2]["kind"],
            "ROLLING_BACK",
            "{point}: {events:#?}"
        );
        drop(app);
    }
}

/// A server whose forks hold inside their transaction (on SQLite, the single write lock; on
/// PostgreSQL, the target's advisory lock) after their first phase until the server shuts down
/// (grace zero), with `acme`'s fork started and held. Returns the server and the run's id and
/// `startedAt`.
async fn held_fork(
    backend: Backend,
    adjust: impl FnOnce(&mut forklift::config::Config),
) -> Option<(TestApp, String, Value)> {
    let app = TestApp::spawn_with(
        backend,
        |c| {
            c.fork_failpoint = Some("pause:after_phase:1:120000".into());
            c.shutdown_grace = std::time::Duration::ZERO;
            adjust(c);
        },
        Registry::default(),
    )
    .await?;
    fixture::seeded_template(&app.state, 2).await;
    app.create_tenant("acme").await;
    let admin = app.admin();
    let run_id = app.start_fork("acme").await;
    // Held once its first phase is done (the live stream says so on both databases).
    let mut socket = wsclient::connect(&app.ws_url(), "graphql-transport-ws", &admin).await;
    wsclient::send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription($id: ID!) { forkProgress(runId: $id) { kind } }",
        "variables": { "id": run_id } } }),
    )
    .await;
    loop {
        let frame = wsclient::next_json(&mut socket).await;
        if frame["payload"]["data"]["forkProgress"]["kind"] == "PHASE_FINISHED" {
            break;
        }
    }
    let run = app
        .ok(
            &admin,
            None,
            "query($id: ID!) { forkRun(id: $id) { status startedAt } }",
            json!({ "id": run_id }),
        )
        .await["forkRun"]
        .clone();
    assert_eq!(run["status"], "RUNNING", "the run is held: {run}");
    Some((app, run_id, run["startedAt"].clone()))
}

/// Lets [`held_fork`]'s run go: it is cut and rolled back.
async fn release_held_fork(app: &TestApp, run_id: &str) {
    let _ = app.state.shutdown.send(true);
    let run = app.wait_run(run_id).await;
    assert_eq!(run["status"], "ROLLED_BACK", "{run}");
}

crate::both_backends!(a_fork_answers_and_is_audited_while_its_run_holds_the_database);
/// `forkTenant` returns its run, its audit entry written, while the run holds the database
/// (on SQLite, its single write lock, for as long as the fork lasts): the run waits for the
/// request's entry, never the answer for the run.
async fn a_fork_answers_and_is_audited_while_its_run_holds_the_database(backend: Backend) {
    let Some((app, run_id, started_at)) = held_fork(backend, |_| {}).await else {
        return;
    };
    let log = app
        .ok(
            &app.admin(),
            None,
            "{ auditLog(filter: { operation: \"forkTenant\" }) { nodes { at outcome detail } } }",
            json!({}),
        )
        .await;
    let nodes = log["auditLog"]["nodes"].as_array().expect("nodes").clone();
    assert_eq!(nodes.len(), 1, "{log}");
    assert_eq!(nodes[0]["outcome"], "ALLOWED", "{log}");
    assert_eq!(
        nodes[0]["detail"]["change"]["run"],
        run_id.as_str(),
        "{log}"
    );
    // The entry was written before the run started its work.
    let instant = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default()).expect("a DateTime")
    };
    assert!(
        instant(&nodes[0]["at"]) <= instant(&started_at),
        "audited at {}, started at {started_at}",
        nodes[0]["at"],
    );
    release_held_fork(&app, &run_id).await;
}

crate::both_backends!(a_request_past_its_deadline_is_answered_timeout_and_writes_nothing);
/// A write that waits on the held fork's lock past `FORKLIFT_REQUEST_TIMEOUT_SECS` is answered
/// with one error coded `TIMEOUT` (504 for `application/graphql-response+json`, a GraphQL body
/// either way), and what it began is not written.
async fn a_request_past_its_deadline_is_answered_timeout_and_writes_nothing(backend: Backend) {
    let Some((app, run_id, _)) = held_fork(backend, |c| {
        c.request_timeout = std::time::Duration::from_secs(1)
    })
    .await
    else {
        return;
    };
    let create = "mutation { createApplication(input: { code: \"late\", name: \"Late\", \
        routeNamespace: \"late\" }) { id } }";
    for (accept, status) in [
        ("application/graphql-response+json", 504),
        ("application/json", 200),
    ] {
        let response = app
            .http
            .post(app.url("/graphql"))
            .bearer_auth(app.admin())
            .header("X-Tenant", "acme")
            .header("Accept", accept)
            .json(&json!({ "query": create }))
            .send()
            .await
            .expect("request sent");
        let got = response.status().as_u16();
        let body: Value = response.json().await.expect("a GraphQL body");
        assert_eq!(got, status, "{accept}: {body}");
        assert_eq!(code(&body).as_deref(), Some("TIMEOUT"), "{accept}: {body}");
        assert!(body.get("data").is_none(), "{accept}: {body}");
    }
    release_held_fork(&app, &run_id).await;
    let apps = app
        .ok(
            &app.admin(),
            Some("acme"),
            "{ applications(filter: { code: \"late\" }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(apps["applications"]["totalCount"], 0, "{apps}");
}

crate::both_backends!(a_new_forkable_class_needs_no_engine_change);
async fn a_new_forkable_class_needs_no_engine_change(backend: Backend) {
    // A table the entity crate does not know, declared to the registry at run time.
    let widgets = RowClass {
        name: "Widget",
        table: "widgets".into(),
        plane: Plane::Configuration,
        fork: Fork::TenantWide,
        natural_key: vec!["key".into()],
        columns: vec![
            ColumnDesc {
                name: "id".into(),
                kind: ColumnKind::Uuid,
                nullable: false,
            },
            ColumnDesc {
                name: "tenant_id".into(),
                kind: ColumnKind::Uuid,
                nullable: false,
            },
            ColumnDesc {
                name: "application_id".into(),
                kind: ColumnKind::Uuid,
                nullable: false,
            },
            ColumnDesc {
                name: "key".into(),
                kind: ColumnKind::Text,
                nullable: false,
            },
            ColumnDesc {
                name: "created_at".into(),
                kind: ColumnKind::Timestamp,
                nullable: false,
            },
            ColumnDesc {
                name: "updated_at".into(),
                kind: ColumnKind::Timestamp,
                nullable: false,
            },
        ],
        references: vec![ReferenceDesc {
            column: "application_id".into(),
            table: "applications".into(),
            same_tenant: true,
        }],
        tenant_owned: true,
        surface: Surface::ByPlane,
    };
    let registry = Registry::default().with_class(widgets.clone());
    let Some(app) = TestApp::spawn_with(backend, |_| {}, registry).await else {
        return;
    };
    let ts = if backend == Backend::Sqlite {
        "TEXT"
    } else {
        "TIMESTAMPTZ"
    };
    let uuid = if backend == Backend::Sqlite {
        "TEXT"
    } else {
        "UUID"
    };
    fixture::exec(&app.owner_db().await, &format!(
        "CREATE TABLE widgets (id {uuid} PRIMARY KEY, tenant_id {uuid} NOT NULL REFERENCES tenants(id), application_id {uuid} NOT NULL, key TEXT NOT NULL, created_at {ts} NOT NULL, updated_at {ts} NOT NULL, \
            UNIQUE (tenant_id, key), FOREIGN KEY (tenant_id, application_id) REFERENCES applications(tenant_id, id) ON DELETE CASCADE)"
    )).await;
    // The generic fixture fills the new class like any other: it is in the registry.
    let (template, _, _) = fixture::seeded_template(&app.state, 2).await;
    assert_eq!(fixture::count(&app.state.db, "widgets", template).await, 2);
    let tenant = uuid_of(&app.create_tenant("acme").await);
    assert_eq!(app.fork("acme").await["status"], "FINISHED");
    assert_eq!(
        fixture::count(&app.state.db, "widgets", tenant).await,
        2,
        "the new class was forked"
    );
    let copied = fixture::rows_of(&app.state, &widgets, tenant).await;
    let tenant_apps: BTreeSet<Uuid> = fixture::ids_of(&app.state, "applications", tenant)
        .await
        .into_iter()
        .collect();
    assert!(copied.iter().all(|w| {
        w.get("application_id")
            .as_uuid()
            .is_some_and(|a| tenant_apps.contains(&a))
    }));
    // And it is served by the same generic API.
    let data = app
        .ok(
            &app.admin(),
            Some("acme"),
            "{ widgets { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(data["widgets"]["totalCount"], 2);
    let _: Option<Value> = None;
}
