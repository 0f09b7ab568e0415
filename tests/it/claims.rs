//! What ARCHITECTURE.md claims, held by a test each (issue #20): the provisioning block, the
//! fork's skip reasons, derived rows removed, backward paging, the root organization, and error
//! codes on WebSocket errors.

use std::collections::HashMap;

use forklift::{fork::engine::target_id, graphql::ids, rows::Cell};
use sea_orm::{
    ConnectionTrait,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    fixture,
    harness::{TestApp, code, uuid_of},
    wsclient,
};

/// The skipped rows of a run whose class is `class_name`.
fn skipped_of<'a>(run: &'a Value, class_name: &str) -> Vec<&'a Value> {
    run["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .filter(|s| s["className"] == class_name)
        .collect()
}

/// The count of `class_name` in `phase` of a run.
fn count_of<'a>(run: &'a Value, phase: &str, class_name: &str) -> &'a Value {
    run["counts"]
        .as_array()
        .expect("counts")
        .iter()
        .find(|c| c["phase"] == phase && c["className"] == class_name)
        .unwrap_or_else(|| panic!("no count of {class_name} in {phase}: {run}"))
}

/// A copy of `row` with `changes` applied, as insertable values.
fn with(row: &forklift::rows::Row, changes: &[(&str, Cell)]) -> HashMap<String, Cell> {
    let mut values = (*row.values).clone();
    for (column, cell) in changes {
        values.insert(column.to_string(), cell.clone());
    }
    values
}

crate::both!(a_tenant_being_provisioned_refuses_its_members);
async fn a_tenant_being_provisioned_refuses_its_members(app: TestApp) {
    fixture::seeded_template(&app.state, 1).await;
    // Created, not yet forked: its provisioning state is PENDING.
    let acme = app.create_tenant("acme").await;
    app.add_member("acme", "owner@acme.test", "OWNER").await;
    let owner = app.token("owner@acme.test", Some("acme"), false, &[]);
    let query = "{ applications(first: 5) { totalCount } }";
    let body = app.gql(&owner, Some("acme"), query, json!({})).await;
    assert_eq!(
        code(&body).as_deref(),
        Some("TENANT_PROVISIONING"),
        "{body}"
    );
    assert_eq!(body["data"], Value::Null, "nothing is read: {body}");
    // A platform admin still reaches it (to provision it).
    let data = app.ok(&app.admin(), Some("acme"), query, json!({})).await;
    assert_eq!(data["applications"]["totalCount"], 0);
    // Once forked and READY, the members are let in. (The run is recorded FINISHED a moment
    // before its target is marked READY, in a separate statement: wait for READY.)
    assert_eq!(app.fork("acme").await["status"], "FINISHED");
    let state = "query($id: ID!) { tenant(id: $id) { provisioningState } }";
    for _ in 0..100 {
        let data = app
            .ok(&app.admin(), None, state, json!({ "id": acme }))
            .await;
        if data["tenant"]["provisioningState"] == "READY" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let data = app.ok(&owner, Some("acme"), query, json!({})).await;
    assert_eq!(data["applications"]["totalCount"], 1);
}

crate::both!(a_natural_key_clash_skips_the_row_and_its_dependants);
async fn a_natural_key_clash_skips_the_row_and_its_dependants(app: TestApp) {
    let (template, _, _) = fixture::seeded_template(&app.state, 1).await;
    let tenant = uuid_of(&app.create_tenant("acme").await);
    let registry = app.state.registry.clone();
    let applications = registry.by_table("applications").expect("applications");
    let actions = registry.by_table("actions").expect("actions");
    // The template gets an application with code `clash` and one action of it.
    let model = fixture::rows_of(&app.state, applications, template)
        .await
        .remove(0);
    let source = Uuid::now_v7();
    let text = |s: &str| Cell::Text(s.to_string());
    let values = [
        ("id", Cell::Uuid(source)),
        ("code", text("clash")),
        ("route_namespace", text("clash-t")),
    ];
    fixture::insert(&app.state.db, applications, &with(&model, &values)).await;
    let action = fixture::rows_of(&app.state, actions, template)
        .await
        .remove(0);
    let action_id = Uuid::now_v7();
    let values = [
        ("id", Cell::Uuid(action_id)),
        ("application_id", Cell::Uuid(source)),
        ("key", text("clash.act")),
    ];
    fixture::insert(&app.state.db, actions, &with(&action, &values)).await;
    // The tenant made its own application with the same code before the fork.
    let own = Uuid::now_v7();
    let values = [
        ("id", Cell::Uuid(own)),
        ("tenant_id", Cell::Uuid(tenant)),
        ("code", text("clash")),
        ("route_namespace", text("clash-own")),
    ];
    fixture::insert(&app.state.db, applications, &with(&model, &values)).await;

    let run = app.fork("acme").await;
    assert_eq!(run["status"], "FINISHED", "{run}");
    let clashes = skipped_of(&run, "Application");
    assert_eq!(clashes.len(), 1, "{run}");
    assert_eq!(
        clashes[0]["sourceId"],
        ids::encode("Application", source),
        "{run}"
    );
    assert_eq!(
        clashes[0]["column"],
        Value::Null,
        "a clash names no column: {run}"
    );
    assert_eq!(
        clashes[0]["reason"],
        "the target already has a different row with the same natural key"
    );
    // Its action cannot resolve its application: an unresolved reference.
    let unresolved = skipped_of(&run, "Action");
    assert_eq!(unresolved.len(), 1, "{run}");
    assert_eq!(unresolved[0]["sourceId"], ids::encode("Action", action_id));
    assert_eq!(unresolved[0]["column"], "application_id");
    assert_eq!(unresolved[0]["reason"], "its Application was not copied");
    // The tenant's own row is untouched, and neither skipped row exists in the tenant.
    let rows = fixture::rows_of(&app.state, applications, tenant).await;
    let clash: Vec<_> = rows
        .iter()
        .filter(|r| r.get("code").as_text() == Some("clash"))
        .collect();
    assert_eq!(clash.len(), 1);
    assert_eq!(clash[0].id(), own);
    let copied = fixture::ids_of(&app.state, "actions", tenant).await;
    assert!(
        !copied.contains(&target_id(tenant, action_id)),
        "the action was not copied"
    );
    assert_eq!(
        count_of(&run, "APPLICATION_SPINE", "Application")["skipped"],
        1
    );
    assert_eq!(count_of(&run, "APPLICATION_SPINE", "Action")["skipped"], 1);
}

crate::both!(records_of_a_type_not_declared_forkable_are_skipped);
async fn records_of_a_type_not_declared_forkable_are_skipped(app: TestApp) {
    let (template, vocabulary, _) = fixture::seeded_template(&app.state, 2).await;
    let tenant = uuid_of(&app.create_tenant("acme").await);
    let closed = vocabulary["custom_types"][0];
    let update = Query::update()
        .table(Alias::new("custom_types"))
        .value(Alias::new("forkable"), false)
        .and_where(Expr::col(Alias::new("id")).eq(closed))
        .to_owned();
    app.state.db.execute(&update).await.expect("update");
    let records = app
        .state
        .registry
        .by_table("custom_records")
        .expect("records");
    let of_closed: Vec<Uuid> = fixture::rows_of(&app.state, records, template)
        .await
        .iter()
        .filter(|r| r.get("custom_type_id").as_uuid() == Some(closed))
        .map(|r| r.id())
        .collect();
    assert!(
        !of_closed.is_empty(),
        "the fixture has records of the first type"
    );
    let run = app.fork("acme").await;
    assert_eq!(run["status"], "FINISHED", "{run}");
    let skipped = skipped_of(&run, "CustomRecord");
    let mut expected: Vec<Value> = of_closed
        .iter()
        .map(|id| json!(ids::encode("CustomRecord", *id)))
        .collect();
    let mut reported: Vec<Value> = skipped.iter().map(|s| s["sourceId"].clone()).collect();
    expected.sort_by_key(Value::to_string);
    reported.sort_by_key(Value::to_string);
    assert_eq!(reported, expected, "{run}");
    for row in &skipped {
        assert_eq!(row["column"], "custom_type_id");
        assert_eq!(row["reason"], "its CustomType is not declared forkable");
    }
    let copied = fixture::count(&app.state.db, "custom_records", tenant).await;
    let all = fixture::count(&app.state.db, "custom_records", template).await;
    assert_eq!(
        copied,
        all - of_closed.len() as i64,
        "the other records were copied"
    );
}

crate::both!(derived_rows_that_no_longer_follow_are_removed);
async fn derived_rows_that_no_longer_follow_are_removed(app: TestApp) {
    fixture::seeded_template(&app.state, 2).await;
    let tenant = uuid_of(&app.ready_tenant("acme").await);
    let layers = fixture::count(&app.state.db, "geo_layers", tenant).await;
    assert!(layers > 0, "the fixture's applications have maps");
    // The tenant turns the map off on every application: no geo layer follows any more.
    let update = Query::update()
        .table(Alias::new("applications"))
        .value(Alias::new("features"), json!({ "map": false }))
        .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
        .to_owned();
    app.state.db.execute(&update).await.expect("update");
    let run = app.fork("acme").await;
    assert_eq!(run["status"], "FINISHED", "{run}");
    let geo = count_of(&run, "GEOSPATIAL_LAYERS", "GeoLayer");
    assert_eq!(geo["removed"], layers, "{run}");
    assert_eq!(geo["created"], 0, "{run}");
    assert_eq!(fixture::count(&app.state.db, "geo_layers", tenant).await, 0);
}

crate::both!(last_and_before_page_backwards);
async fn last_and_before_page_backwards(app: TestApp) {
    fixture::seeded_template(&app.state, 5).await;
    let admin = app.admin();
    let page = "query($last: Int, $before: String, $first: Int, $after: String) { \
        applications(orderBy: CODE_ASC, last: $last, before: $before, first: \
        $first, after: $after) { totalCount nodes { code } pageInfo { \
        hasPreviousPage hasNextPage startCursor endCursor } } }";
    let codes = |data: &Value| -> Vec<String> {
        data["applications"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["code"].as_str().expect("code").to_string())
            .collect()
    };
    let all = codes(
        &app.ok(&admin, Some("template"), page, json!({ "first": 10 }))
            .await,
    );
    assert_eq!(all.len(), 5);
    // The last two.
    let tail = app
        .ok(&admin, Some("template"), page, json!({ "last": 2 }))
        .await;
    assert_eq!(codes(&tail), all[3..].to_vec());
    assert_eq!(tail["applications"]["totalCount"], 5);
    let info = &tail["applications"]["pageInfo"];
    assert_eq!(info["hasPreviousPage"], true, "{tail}");
    assert_eq!(info["hasNextPage"], false, "{tail}");
    // The two before those.
    let before = info["startCursor"].as_str().expect("start cursor");
    let middle = app
        .ok(
            &admin,
            Some("template"),
            page,
            json!({ "last": 2, "before": before }),
        )
        .await;
    assert_eq!(codes(&middle), all[1..3].to_vec());
    let info = &middle["applications"]["pageInfo"];
    assert_eq!(info["hasPreviousPage"], true, "{middle}");
    assert_eq!(info["hasNextPage"], true, "{middle}");
    // And the first, with nothing before it.
    let before = info["startCursor"].as_str().expect("start cursor");
    let head = app
        .ok(
            &admin,
            Some("template"),
            page,
            json!({ "last": 2, "before": before }),
        )
        .await;
    assert_eq!(codes(&head), all[..1].to_vec());
    assert_eq!(
        head["applications"]["pageInfo"]["hasPreviousPage"], false,
        "{head}"
    );
    // `after` and `before` together: the rows strictly between.
    let after = tail["applications"]["pageInfo"]["startCursor"]
        .as_str()
        .expect("cursor");
    let first = head["applications"]["pageInfo"]["endCursor"]
        .as_str()
        .expect("cursor");
    let between = app
        .ok(
            &admin,
            Some("template"),
            page,
            json!({ "after": first, "before": after }),
        )
        .await;
    assert_eq!(codes(&between), all[1..3].to_vec());
}

crate::both!(the_root_organization_cannot_be_deleted);
async fn the_root_organization_cannot_be_deleted(app: TestApp) {
    app.ready_tenant("acme").await;
    app.add_member("acme", "super@acme.test", "SUPER_USER")
        .await;
    let user = app.token("super@acme.test", Some("acme"), false, &[]);
    let data = app
        .ok(
            &user,
            Some("acme"),
            "{ organizations(first: 10) { nodes { id parentId } } }",
            json!({}),
        )
        .await;
    let nodes = data["organizations"]["nodes"]
        .as_array()
        .expect("nodes")
        .clone();
    assert_eq!(nodes.len(), 1, "{data}");
    let root = nodes[0]["id"].as_str().expect("root").to_string();
    assert_eq!(nodes[0]["parentId"], Value::Null);
    let delete = "mutation($id: ID!) { deleteOrganization(id: $id) }";
    let body = app
        .gql(&user, Some("acme"), delete, json!({ "id": root }))
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("PRECONDITION_FAILED"),
        "{body}"
    );
    // A child organization can go.
    let create =
        "mutation($p: ID!) { createOrganization(input: { name: \"Parks\", parentId: $p }) { id } }";
    let child = app
        .ok(&user, Some("acme"), create, json!({ "p": root }))
        .await;
    let child = child["createOrganization"]["id"]
        .as_str()
        .expect("child")
        .to_string();
    app.ok(&user, Some("acme"), delete, json!({ "id": child }))
        .await;
    let data = app
        .ok(
            &user,
            Some("acme"),
            "{ organizations(first: 10) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["organizations"]["totalCount"], 1,
        "only the root remains"
    );
}

/// The first error of a subscription on `protocol` as `token`: its `extensions.code`.
pub(crate) async fn subscription_error(
    app: &TestApp,
    protocol: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> Value {
    let mut socket = wsclient::connect(&app.ws_url(), protocol, token).await;
    let start = if protocol == "graphql-ws" {
        "start"
    } else {
        "subscribe"
    };
    wsclient::send(
        &mut socket,
        json!({ "id": "1", "type": start, "payload": { "query": query, "variables": variables } }),
    )
    .await;
    let mut message = wsclient::next_json(&mut socket).await;
    while message["type"] == "ka" {
        // The legacy protocol's keep-alive.
        message = wsclient::next_json(&mut socket).await;
    }
    let errors = match message["type"].as_str() {
        Some("error") => message["payload"].clone(),
        Some("next" | "data") => message["payload"]["errors"].clone(),
        _ => panic!("expected an error on {protocol}: {message}"),
    };
    let errors = if errors.is_array() {
        errors
    } else {
        json!([errors])
    };
    errors[0]["extensions"]["code"].clone()
}

crate::both!(websocket_errors_carry_their_code);
async fn websocket_errors_carry_their_code(app: TestApp) {
    fixture::seeded_template(&app.state, 1).await;
    app.ready_tenant("acme").await;
    app.add_member("acme", "viewer@acme.test", "VIEWER").await;
    let viewer = app.token("viewer@acme.test", Some("acme"), false, &[]);
    let admin = app.admin();
    let run = app.start_fork("acme").await;
    app.wait_run(&run).await;
    let progress = "subscription($id: ID!) { forkProgress(runId: $id) { seq } }";
    let nothing = ids::encode("ForkRun", Uuid::now_v7());
    for protocol in ["graphql-transport-ws", "graphql-ws"] {
        // Platform admins follow runs, and a tenant's Owners and Super Users its own; not a Viewer.
        let code =
            subscription_error(&app, protocol, &viewer, progress, json!({ "id": run })).await;
        assert_eq!(code, "FORBIDDEN", "{protocol}");
        // A run that does not exist.
        let code =
            subscription_error(&app, protocol, &admin, progress, json!({ "id": nothing })).await;
        assert_eq!(code, "NOT_FOUND", "{protocol}");
        // A document that does not validate.
        let code = subscription_error(
            &app,
            protocol,
            &admin,
            "subscription { forkProgress { nope } }",
            json!({}),
        )
        .await;
        assert_eq!(code, "BAD_USER_INPUT", "{protocol}");
    }
}
