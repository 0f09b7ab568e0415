//! Issue #18: template evolution. Lineage, versions, tombstones, the three-way diff and the
//! upgrade, checked against the database on both backends.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use forklift::{
    fork::{engine::target_id, lineage},
    registry::{ColumnKind, RowClass},
    rows::{Cell, Row},
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use sea_orm::{
    ConnectionTrait,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    fixture,
    harness::{TestApp, uuid_of},
    wsclient,
};

const UPGRADE: &str = "mutation($t: String!, $dry: Boolean, $restore: Boolean, $remove: \
    Boolean) { upgradeTenant(input: { target: $t, dryRun: $dry, \
    restoreDeleted: $restore, removeDeleted: $remove }) { id status kind \
    dryRun counts { className created updated removed conflicts keptDeleted \
    } skipped { className sourceId column } conflicts { className rowId \
    sourceId field base template tenant reason } } }";

/// Starts an upgrade of `target`; returns the run id.
async fn start_upgrade(app: &TestApp, target: &str, restore: bool, remove: bool) -> String {
    let data = app
        .ok(
            &app.admin(),
            None,
            UPGRADE,
            json!({ "t": target, "restore": restore, "remove": remove }),
        )
        .await;
    assert_eq!(data["upgradeTenant"]["kind"], "UPGRADE", "{data}");
    data["upgradeTenant"]["id"]
        .as_str()
        .expect("run id")
        .to_string()
}

/// Upgrades `target` and waits; returns the finished run (with its conflicts).
async fn upgrade(app: &TestApp, target: &str, restore: bool, remove: bool) -> Value {
    let id = start_upgrade(app, target, restore, remove).await;
    app.wait_run(&id).await;
    let data = app
        .ok(
            &app.admin(),
            None,
            "query($id: ID!) { forkRun(id: $id) { id status kind counts { className \
                rows created updated removed conflicts keptDeleted } skipped { className \
                sourceId column } conflicts { className rowId sourceId field base \
                template tenant reason } templateVersion } }",
            json!({ "id": id }),
        )
        .await;
    let run = data["forkRun"].clone();
    assert_eq!(run["status"], "FINISHED", "{run}");
    assert_eq!(run["kind"], "UPGRADE", "{run}");
    run
}

/// Sum of a count over the copied classes of a run.
fn copied_total(app: &TestApp, run: &Value, key: &str) -> i64 {
    run["counts"]
        .as_array()
        .expect("counts")
        .iter()
        .filter(|c| {
            app.state
                .registry
                .by_name(c["className"].as_str().unwrap_or(""))
                .is_some_and(|k| k.fork.is_copied())
        })
        .map(|c| c[key].as_i64().unwrap_or(0))
        .sum()
}

/// Text columns a test may edit: not an id, not part of the natural key.
fn editable(class: &RowClass) -> Vec<String> {
    class
        .columns
        .iter()
        .filter(|c| {
            c.kind == ColumnKind::Text
                && !class.natural_key.contains(&c.name)
                && !c.name.ends_with("_id")
        })
        .map(|c| c.name.clone())
        .collect()
}

async fn set_text(app: &TestApp, table: &str, id: Uuid, column: &str, value: &str) {
    let mut update = Query::update();
    update
        .table(Alias::new(table))
        .value(Alias::new(column), value)
        .and_where(Expr::col(Alias::new("id")).eq(id));
    app.state.db.execute(&update).await.expect("update");
}

async fn delete_row(app: &TestApp, table: &str, id: Uuid) {
    let mut delete = Query::delete();
    delete
        .from_table(Alias::new(table))
        .and_where(Expr::col(Alias::new("id")).eq(id));
    app.state.db.execute(&delete).await.expect("delete");
}

/// A copy of `row` with a new id and its text natural-key columns suffixed (a new row with valid
/// references); `None` when the class has no text natural key to make unique.
async fn duplicate(app: &TestApp, class: &RowClass, row: &Row, suffix: &str) -> Option<Uuid> {
    let text_keys: Vec<&String> = class
        .natural_key
        .iter()
        .filter(|k| {
            class
                .columns
                .iter()
                .any(|c| &&c.name == k && c.kind == ColumnKind::Text)
        })
        .collect();
    if text_keys.is_empty()
        || class.natural_key.iter().any(|k| k == "tenant_id") && class.natural_key.len() == 1
    {
        return None;
    }
    let mut values: HashMap<String, Cell> = row.values.as_ref().clone();
    let id = Uuid::now_v7();
    values.insert("id".into(), Cell::Uuid(id));
    for key in text_keys {
        let old = row.get(key).as_text().unwrap_or_default().to_string();
        values.insert(key.clone(), Cell::Text(format!("{old}-{suffix}")));
    }
    // Self references would point at the original's parent: keep them, they are valid.
    forklift::synthetic::insert_rows(&app.state.db, class, std::slice::from_ref(&values))
        .await
        .ok()?;
    Some(id)
}

/// Every row of every copied class of `tenant`, by (table, id).
async fn snapshot(app: &TestApp, tenant: Uuid) -> BTreeMap<(String, Uuid), Row> {
    let mut out = BTreeMap::new();
    for class in app.state.registry.copied_classes() {
        for row in fixture::rows_of(&app.state, class, tenant).await {
            out.insert((class.table.clone(), row.id()), row);
        }
    }
    out
}

/// Every lineage record of `tenant`, by (table, copy id).
async fn lineage_of(app: &TestApp, tenant: Uuid) -> BTreeMap<(String, Uuid), lineage::Lineage> {
    let mut out = BTreeMap::new();
    for class in app.state.registry.copied_classes() {
        for (id, l) in lineage::load(&app.state.db, tenant, &class.table)
            .await
            .expect("lineage")
        {
            out.insert((class.table.clone(), id), l);
        }
    }
    out
}

/// A copied class no other copied class points at, with rows in the template.
fn leaf_class(app: &TestApp) -> RowClass {
    let registry = &app.state.registry;
    registry
        .copied_classes()
        .into_iter()
        .find(|c| {
            registry
                .referrers(&c.table)
                .all(|(r, _)| !r.fork.is_copied())
                && c.name == "ReportTemplate"
        })
        .or_else(|| {
            registry.copied_classes().into_iter().find(|c| {
                registry
                    .referrers(&c.table)
                    .all(|(r, _)| !r.fork.is_copied())
            })
        })
        .expect("a leaf class")
        .clone()
}

crate::both!(lineage_remembers_every_copy_and_deletions_stay_deleted);
async fn lineage_remembers_every_copy_and_deletions_stay_deleted(app: TestApp) {
    let (template, _, _) = fixture::seeded_template(&app.state, 2).await;
    let tenant = uuid_of(&app.ready_tenant("acme").await);
    let copies = snapshot(&app, tenant).await;
    let lineage = lineage_of(&app, tenant).await;
    assert_eq!(
        copies.keys().collect::<BTreeSet<_>>(),
        lineage.keys().collect::<BTreeSet<_>>(),
        "every copy has lineage, nothing else"
    );
    for ((table, id), l) in &lineage {
        let class = app.state.registry.by_table(table).expect("class");
        assert_eq!(
            *id,
            target_id(tenant, l.source_id),
            "{table}: lineage names the source"
        );
        assert_eq!(
            l.base,
            lineage::content(class, &copies[&(table.clone(), *id)]),
            "{table}: the base is the copy as made"
        );
    }
    // A row the tenant creates has no lineage.
    let admin = app.admin();
    let class = leaf_class(&app);
    let victim = fixture::rows_of(&app.state, &class, tenant).await[0].id();
    let global = forklift::graphql::ids::encode(class.name, victim);
    app.ok(
        &admin,
        Some("acme"),
        &format!("mutation($id: ID!) {{ delete{}(id: $id) }}", class.name),
        json!({ "id": global }),
    )
    .await;
    // A re-fork keeps it deleted (the tombstone) ...
    let again = app.fork("acme").await;
    assert_eq!(again["status"], "FINISHED", "{again}");
    assert!(
        !fixture::ids_of(&app.state, &class.table, tenant)
            .await
            .contains(&victim),
        "a re-fork does not resurrect a deletion"
    );
    // ... so does an upgrade ...
    upgrade(&app, "acme", false, false).await;
    assert!(
        !fixture::ids_of(&app.state, &class.table, tenant)
            .await
            .contains(&victim),
        "nor does an upgrade"
    );
    // ... unless asked.
    let data = app
        .ok(
            &admin,
            None,
            "mutation { forkTenant(input: { target: \"acme\", restoreDeleted: true }) { id } }",
            json!({}),
        )
        .await;
    let run = app
        .wait_run(data["forkTenant"]["id"].as_str().expect("id"))
        .await;
    assert_eq!(run["status"], "FINISHED", "{run}");
    assert!(
        fixture::ids_of(&app.state, &class.table, tenant)
            .await
            .contains(&victim),
        "restoreDeleted brings it back"
    );
    let _ = template;
}

crate::both!(the_diff_matches_a_hand_computed_case_and_the_upgrade_applies_it);
async fn the_diff_matches_a_hand_computed_case_and_the_upgrade_applies_it(app: TestApp) {
    let (template, _, _) = fixture::seeded_template(&app.state, 2).await;
    let tenant = uuid_of(&app.ready_tenant("acme").await);
    let admin = app.admin();
    let apps = fixture::rows_of(
        &app.state,
        app.state.registry.by_table("applications").expect("apps"),
        template,
    )
    .await;
    let mut apps: Vec<Row> = apps;
    apps.sort_by_key(|r| r.get("code").as_text().unwrap_or_default().to_string());
    let (a0, a1) = (apps[0].id(), apps[1].id());
    let enc = |name: &str, id: Uuid| forklift::graphql::ids::encode(name, id);
    let update_app = "mutation($id: ID!, $input: UpdateApplicationInput!) { \
        updateApplication(id: $id, input: $input) { id } }";
    // The template: A0's name and A1's name change, a new application, a removed leaf row.
    app.ok(
        &admin,
        Some("template"),
        update_app,
        json!({ "id": enc("Application", a0), "input": { "name": "Template zero" } }),
    )
    .await;
    app.ok(
        &admin,
        Some("template"),
        update_app,
        json!({ "id": enc("Application", a1), "input": { "name": "Template one" } }),
    )
    .await;
    let created = app
        .ok(
            &admin,
            Some("template"),
            "mutation { createApplication(input: { code: \"fresh\", name: \"Fresh\", \
                routeNamespace: \"fresh\", navOrder: 9, isActive: true }) { id } }",
            json!({}),
        )
        .await;
    let fresh = uuid_of(created["createApplication"]["id"].as_str().expect("id"));
    let leaf = leaf_class(&app);
    let mut leaves = fixture::rows_of(&app.state, &leaf, template).await;
    leaves.sort_by_key(Row::id);
    let (r0, r1) = (leaves[0].id(), leaves[1].id());
    app.ok(
        &admin,
        Some("template"),
        &format!("mutation($id: ID!) {{ delete{}(id: $id) }}", leaf.name),
        json!({ "id": enc(leaf.name, r0) }),
    )
    .await;
    // The tenant: A0's icon, A1's name (a conflict), and deletes its copy of R1.
    app.ok(
        &admin,
        Some("acme"),
        update_app,
        json!({ "id": enc("Application", target_id(tenant, a0)), "input": { "icon": "ours" } }),
    )
    .await;
    app.ok(
        &admin,
        Some("acme"),
        update_app,
        json!({ "id": enc("Application", target_id(tenant, a1)), "input": { "name": "Ours one" } }),
    )
    .await;
    app.ok(
        &admin,
        Some("acme"),
        &format!("mutation($id: ID!) {{ delete{}(id: $id) }}", leaf.name),
        json!({ "id": enc(leaf.name, target_id(tenant, r1)) }),
    )
    .await;

    // Versions: the first fork recorded version 1; four API edits of the template, four more.
    let tenant_query = "query($id: ID!) { tenant(id: $id) { templateVersion templateBehind } }";
    let data = app
        .ok(
            &admin,
            None,
            tenant_query,
            json!({ "id": enc("Tenant", tenant) }),
        )
        .await;
    assert_eq!(
        data["tenant"],
        json!({ "templateVersion": 1, "templateBehind": 4 }),
        "{data}"
    );
    let versions = app
        .ok(
            &admin,
            None,
            "{ templateVersions { number origin summary } }",
            json!({}),
        )
        .await;
    assert_eq!(versions["templateVersions"][0]["number"], 5, "{versions}");
    assert_eq!(versions["templateVersions"][0]["origin"], "api");
    assert_eq!(
        versions["templateVersions"][0]["summary"],
        json!([{ "className": leaf.name, "added": 0, "changed": 0, "removed": 1 }]),
        "{versions}"
    );

    let query = "query($t: String!) { templateDiff(tenant: $t) { templateVersion \
        tenantVersion behind classes { className addedInTemplate { rowId \
        sourceId } changedInTemplate { rowId fields { field from to } } \
        removedFromTemplate { rowId changedByTenant } changedByTenant { rowId \
        fields { field from to } } deletedByTenant { rowId sourceId } conflicts \
        { rowId fields { field base template tenant } } } } }";
    let diff = app.ok(&admin, None, query, json!({ "t": "acme" })).await["templateDiff"].clone();
    assert_eq!(
        (
            diff["templateVersion"].clone(),
            diff["tenantVersion"].clone(),
            diff["behind"].clone()
        ),
        (json!(5), json!(1), json!(4)),
        "{diff}"
    );
    let class = |name: &str| {
        diff["classes"]
            .as_array()
            .expect("classes")
            .iter()
            .find(|c| c["className"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let base0 = apps[0].get("name").as_text().expect("name").to_string();
    let base1 = apps[1].get("name").as_text().expect("name").to_string();
    let copy = |id: Uuid| enc("Application", target_id(tenant, id));
    let expected_apps = json!({
        "className": "Application",
        "addedInTemplate": [{ "rowId": copy(fresh), "sourceId": enc("Application", fresh) }],
        "changedInTemplate": [
            { "rowId": copy(a0), "fields": [{ "field": "name", "from": base0, "to": "Template zero" }] },
            { "rowId": copy(a1), "fields": [{ "field": "name", "from": base1, "to": "Template one" }] },
        ],
        "removedFromTemplate": [],
        "changedByTenant": [
            { "rowId": copy(a0), "fields": [{ "field": "icon", "from": apps[0].get("icon").to_json(), "to": "ours" }] },
            { "rowId": copy(a1), "fields": [{ "field": "name", "from": base1, "to": "Ours one" }] },
        ],
        "deletedByTenant": [],
        "conflicts": [{ "rowId": copy(a1), "fields": [{ "field": "name", "base": base1, "template": "Template one", "tenant": "Ours one" }] }],
    });
    let sort = |mut v: Value| {
        for key in ["changedInTemplate", "changedByTenant"] {
            if let Some(list) = v[key].as_array_mut() {
                list.sort_by_key(|r| r["rowId"].as_str().unwrap_or("").to_string());
            }
        }
        v
    };
    assert_eq!(sort(class("Application")), sort(expected_apps), "{diff:#}");
    let expected_leaf = json!({
        "className": leaf.name,
        "addedInTemplate": [],
        "changedInTemplate": [],
        "removedFromTemplate": [{ "rowId": enc(leaf.name, target_id(tenant, r0)), "changedByTenant": false }],
        "changedByTenant": [],
        "deletedByTenant": [{ "rowId": enc(leaf.name, target_id(tenant, r1)), "sourceId": enc(leaf.name, r1) }],
        "conflicts": [],
    });
    assert_eq!(class(leaf.name), expected_leaf, "{diff:#}");
    assert_eq!(
        diff["classes"].as_array().expect("classes").len(),
        2,
        "no other class differs: {diff:#}"
    );

    // An Owner reads their own tenant's diff, not another's.
    app.add_member("acme", "owner@acme.test", "OWNER").await;
    app.ready_tenant("globex").await;
    let owner = app.token("owner@acme.test", None, false, &[]);
    let own = app
        .gql(&owner, Some("acme"), query, json!({ "t": "acme" }))
        .await;
    assert!(own.get("errors").is_none(), "{own}");
    let other = app
        .gql(&owner, Some("acme"), query, json!({ "t": "globex" }))
        .await;
    assert_eq!(
        crate::harness::code(&other).as_deref(),
        Some("FORBIDDEN"),
        "{other}"
    );

    // The plan says what the upgrade will do, and writes nothing.
    let before = fixture::dump(&app.state, tenant).await;
    let plan = app
        .ok(
            &admin,
            None,
            UPGRADE,
            json!({ "t": "acme", "dry": true, "remove": true }),
        )
        .await["upgradeTenant"]
        .clone();
    assert_eq!(
        (plan["status"].clone(), plan["kind"].clone()),
        (json!("PLANNED"), json!("UPGRADE")),
        "{plan}"
    );
    assert_eq!(
        before,
        fixture::dump(&app.state, tenant).await,
        "a dry run writes nothing"
    );
    assert_eq!(copied_total(&app, &plan, "updated"), 1, "{plan}");
    assert_eq!(copied_total(&app, &plan, "created"), 1, "{plan}");
    assert_eq!(copied_total(&app, &plan, "removed"), 1, "{plan}");

    let run_id = start_upgrade(&app, "acme", false, true).await;
    let events =
        wsclient::fork_events(&app.ws_url(), "graphql-transport-ws", &admin, &run_id).await;
    wsclient::assert_complete_run(&events, "RUN_FINISHED");
    let conflicts: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "ROW_CONFLICT")
        .collect();
    assert_eq!(conflicts.len(), 1, "{events:#?}");
    assert_eq!(conflicts[0]["detail"]["field"], "name");
    assert_eq!(conflicts[0]["detail"]["tenant"], "Ours one");
    let run = app.wait_run(&run_id).await;
    assert_eq!(run["status"], "FINISHED", "{run}");
    let names = app
        .ok(
            &admin,
            Some("acme"),
            "query($a: ID!, $b: ID!) { a: application(id: $a) { name icon } b: \
                application(id: $b) { name } }",
            json!({ "a": copy(a0), "b": copy(a1) }),
        )
        .await;
    assert_eq!(
        names,
        json!({ "a": { "name": "Template zero", "icon": "ours" }, "b": { "name": "Ours one" } }),
        "applied where untouched, kept where both changed"
    );
    let leaf_ids = fixture::ids_of(&app.state, &leaf.table, tenant).await;
    assert!(
        !leaf_ids.contains(&target_id(tenant, r0)),
        "the untouched removed row is removed"
    );
    assert!(
        !leaf_ids.contains(&target_id(tenant, r1)),
        "the tenant's deletion stays"
    );
    assert!(
        fixture::ids_of(&app.state, "applications", tenant)
            .await
            .contains(&target_id(tenant, fresh)),
        "the added row is created"
    );
    let data = app
        .ok(
            &admin,
            None,
            tenant_query,
            json!({ "id": enc("Tenant", tenant) }),
        )
        .await;
    assert_eq!(
        data["tenant"],
        json!({ "templateVersion": 5, "templateBehind": 0 }),
        "{data}"
    );
    // What is left: the tenant's own changes (and its deletion).
    let after = app.ok(&admin, None, query, json!({ "t": "acme" })).await["templateDiff"].clone();
    for c in after["classes"].as_array().expect("classes") {
        for key in [
            "addedInTemplate",
            "changedInTemplate",
            "removedFromTemplate",
            "conflicts",
        ] {
            assert_eq!(c[key], json!([]), "{key} after the upgrade: {after:#}");
        }
    }
    // A second upgrade changes nothing.
    let before = fixture::dump(&app.state, tenant).await;
    let again = upgrade(&app, "acme", false, true).await;
    for key in ["created", "updated", "removed", "conflicts"] {
        assert_eq!(copied_total(&app, &again, key), 0, "{key}: {again}");
    }
    assert_eq!(
        before,
        fixture::dump(&app.state, tenant).await,
        "the second upgrade wrote nothing"
    );
}

crate::both!(upgrades_never_overwrite_the_tenant_and_converge);
async fn upgrades_never_overwrite_the_tenant_and_converge(app: TestApp) {
    // What the loop exercised, so it cannot pass by testing nothing.
    let (mut applied, mut kept, mut created) = (0, 0, 0);
    for seed in 0..3u64 {
        let mut rng = StdRng::seed_from_u64(0x18_0000 + seed);
        let slug = format!("prop{seed}");
        if seed == 0 {
            fixture::seeded_template(&app.state, 3).await;
        }
        let template = fixture::template(&app.state).await;
        let tenant = uuid_of(&app.ready_tenant(&slug).await);
        let classes: Vec<RowClass> = app
            .state
            .registry
            .copied_classes()
            .into_iter()
            .cloned()
            .collect();
        // Random template edits: update fields, delete rows, create rows.
        for n in 0..12 {
            let class = &classes[rng.random_range(0..classes.len())];
            let rows = fixture::rows_of(&app.state, class, template).await;
            if rows.is_empty() {
                continue;
            }
            let row = &rows[rng.random_range(0..rows.len())];
            match rng.random_range(0..4) {
                0 | 1 => {
                    if let Some(col) = editable(class).first() {
                        set_text(
                            &app,
                            &class.table,
                            row.id(),
                            col,
                            &format!("tpl-{seed}-{n}"),
                        )
                        .await;
                    }
                }
                2 => delete_row(&app, &class.table, row.id()).await,
                _ => {
                    duplicate(&app, class, row, &format!("t{seed}{n}")).await;
                }
            }
        }
        // Random tenant edits of the same kinds.
        for n in 0..12 {
            let class = &classes[rng.random_range(0..classes.len())];
            let rows = fixture::rows_of(&app.state, class, tenant).await;
            if rows.is_empty() {
                continue;
            }
            let row = &rows[rng.random_range(0..rows.len())];
            match rng.random_range(0..4) {
                0 | 1 => {
                    if let Some(col) = editable(class).first() {
                        set_text(
                            &app,
                            &class.table,
                            row.id(),
                            col,
                            &format!("ten-{seed}-{n}"),
                        )
                        .await;
                    }
                }
                2 => delete_row(&app, &class.table, row.id()).await,
                _ => {
                    duplicate(&app, class, row, &format!("m{seed}{n}")).await;
                }
            }
        }
        let restore = seed == 2;
        let remove = seed >= 1;
        let base = lineage_of(&app, tenant).await;
        let mine = snapshot(&app, tenant).await;
        let source = snapshot(&app, template).await;
        let run = upgrade(&app, &slug, restore, remove).await;
        let after = snapshot(&app, tenant).await;
        let conflicts = run["conflicts"].as_array().cloned().unwrap_or_default();
        let skipped = run["skipped"].as_array().cloned().unwrap_or_default();
        let global = |table: &str, id: Uuid| {
            forklift::graphql::ids::encode(
                app.state.registry.by_table(table).expect("class").name,
                id,
            )
        };
        for ((table, id), l) in &base {
            let class = app.state.registry.by_table(table).expect("class");
            let src = source.get(&(table.clone(), l.source_id));
            match (mine.get(&(table.clone(), *id)), src) {
                (None, _) if !restore => assert!(
                    !after.contains_key(&(table.clone(), *id)),
                    "seed {seed}: {table} {id} deleted by the tenant came back"
                ),
                (Some(row), Some(src)) => {
                    let now = lineage::remapped_content(&app.state.registry, class, src, tenant);
                    let current = lineage::content(class, row);
                    let result = lineage::content(class, &after[&(table.clone(), *id)]);
                    for (field, value) in &current {
                        let b = l.base.get(field).unwrap_or(value);
                        if value != b {
                            kept += 1;
                            assert_eq!(
                                &result[field], value,
                                "seed {seed}: {table}.{field} of {id} changed by the tenant was overwritten"
                            );
                        } else if now[field] != *b {
                            let excused = skipped.iter().any(|s| {
                                s["sourceId"] == global(table, l.source_id)
                                    && s["column"] == field.as_str()
                            });
                            applied += usize::from(!excused);
                            assert!(
                                excused || result[field] == now[field],
                                "seed {seed}: {table}.{field} of {id}: the template's change was not applied"
                            );
                        }
                    }
                }
                (Some(_), None) => {
                    // Removed from the template: removed when asked and untouched, or reported.
                    let reported = conflicts.iter().any(|c| c["rowId"] == global(table, *id));
                    if remove && after.contains_key(&(table.clone(), *id)) {
                        assert!(
                            reported,
                            "seed {seed}: {table} {id} removed from the template was neither removed nor reported"
                        );
                    }
                    if !remove {
                        assert!(
                            after.contains_key(&(table.clone(), *id)),
                            "seed {seed}: removed without removeDeleted"
                        );
                    }
                }
                _ => {}
            }
        }
        // Rows the tenant created are its own.
        for (key, row) in &mine {
            let own = !base.contains_key(key)
                && !source
                    .keys()
                    .any(|(t, s)| t == &key.0 && target_id(tenant, *s) == key.1);
            if own && let Some(kept) = after.get(key) {
                let class = app.state.registry.by_table(&key.0).expect("class");
                assert_eq!(
                    lineage::content(class, kept),
                    lineage::content(class, row),
                    "seed {seed}: a tenant's own row changed"
                );
            }
        }
        // Every template row has a copy now, unless deleted by the tenant, or reported.
        for (table, sid) in source.keys() {
            let copy = target_id(tenant, *sid);
            let tombstone = base.contains_key(&(table.clone(), copy))
                && !mine.contains_key(&(table.clone(), copy));
            let reported = skipped.iter().any(|s| s["sourceId"] == global(table, *sid));
            if !reported && (!tombstone || restore) {
                assert!(
                    after.contains_key(&(table.clone(), copy)),
                    "seed {seed}: {table} {sid} added in the template was not created: {run}"
                );
            }
        }
        created += copied_total(&app, &run, "created");
        // A second upgrade changes nothing.
        let before = fixture::dump(&app.state, tenant).await;
        let again = upgrade(&app, &slug, restore, remove).await;
        for key in ["created", "updated", "removed"] {
            assert_eq!(
                copied_total(&app, &again, key),
                0,
                "seed {seed}: second upgrade {key}: {again}"
            );
        }
        assert_eq!(
            before,
            fixture::dump(&app.state, tenant).await,
            "seed {seed}: the second upgrade wrote nothing"
        );
    }
    assert!(
        applied > 0 && kept > 0 && created > 0,
        "the edits exercised the upgrade: {applied} applied, {kept} kept, {created} created"
    );
}

crate::both!(a_fork_and_an_upgrade_of_one_target_are_serialized);
async fn a_fork_and_an_upgrade_of_one_target_are_serialized(app: TestApp) {
    let (template, _, _) = fixture::seeded_template(&app.state, 3).await;
    app.ready_tenant("acme").await;
    let tenant = fixture::ids_of(&app.state, "applications", template).await;
    let name = "mutation($id: ID!) { updateApplication(id: $id, input: { name: \"Both at once\" }) { id } }";
    app.ok(
        &app.admin(),
        Some("template"),
        name,
        json!({ "id": forklift::graphql::ids::encode("Application", tenant[0]) }),
    )
    .await;
    let (f, u) = tokio::join!(
        app.start_fork("acme"),
        start_upgrade(&app, "acme", false, false)
    );
    let (rf, ru) = tokio::join!(app.wait_run(&f), app.wait_run(&u));
    assert_eq!(
        (rf["status"].clone(), ru["status"].clone()),
        (json!("FINISHED"), json!("FINISHED")),
        "{rf} {ru}"
    );
    let acme = app
        .ok(
            &app.admin(),
            None,
            "{ tenants(search: \"acme\") { nodes { id templateBehind } } }",
            json!({}),
        )
        .await;
    assert_eq!(acme["tenants"]["nodes"][0]["templateBehind"], 0, "{acme}");
    let id = uuid_of(acme["tenants"]["nodes"][0]["id"].as_str().expect("id"));
    let copy = forklift::fork::engine::target_id(id, tenant[0]);
    let rows = fixture::rows_of(
        &app.state,
        app.state.registry.by_table("applications").expect("apps"),
        id,
    )
    .await;
    assert_eq!(
        rows.iter()
            .find(|r| r.id() == copy)
            .and_then(|r| r.get("name").as_text().map(str::to_string))
            .as_deref(),
        Some("Both at once")
    );
    // One consistent result: nothing left to upgrade.
    let again = upgrade(&app, "acme", false, false).await;
    assert_eq!(
        copied_total(&app, &again, "created") + copied_total(&app, &again, "updated"),
        0,
        "{again}"
    );
}

crate::both!(an_upgrade_looks_only_at_what_the_template_changed);
/// An upgrade reads the template rows that changed since each copy's base, not the whole
/// template: its counts name only those, a new subtree under an unchanged parent is created
/// parents first, and a second upgrade looks at nothing.
async fn an_upgrade_looks_only_at_what_the_template_changed(app: TestApp) {
    let (template, _, _) = fixture::seeded_template(&app.state, 3).await;
    let tenant = uuid_of(&app.ready_tenant("acme").await);
    let skipped_rows = |run: &Value| run["skipped"].as_array().map_or(0, Vec::len) as i64;

    // Nothing changed since the fork: only rows the fork could not copy are looked at again.
    let idle = upgrade(&app, "acme", false, false).await;
    assert_eq!(
        copied_total(&app, &idle, "rows"),
        skipped_rows(&idle),
        "{idle}"
    );
    assert_eq!(copied_total(&app, &idle, "created"), 0, "{idle}");
    assert_eq!(copied_total(&app, &idle, "updated"), 0, "{idle}");

    // The template changes one navigation item and adds a child under it and a grandchild.
    let nav = app
        .state
        .registry
        .by_table("navigation_items")
        .expect("navigation")
        .clone();
    let parent = fixture::rows_of(&app.state, &nav, template).await[0].clone();
    let column = editable(&nav)[0].clone();
    set_text(
        &app,
        &nav.table,
        parent.id(),
        &column,
        "renamed by the template",
    )
    .await;
    let child = duplicate(&app, &nav, &parent, "child")
        .await
        .expect("a new navigation item");
    let grandchild = duplicate(&app, &nav, &parent, "grandchild")
        .await
        .expect("another new navigation item");
    for (id, parent_id) in [(child, parent.id()), (grandchild, child)] {
        let mut update = Query::update();
        update
            .table(Alias::new(&nav.table))
            .value(Alias::new("parent_id"), parent_id)
            .and_where(Expr::col(Alias::new("id")).eq(id));
        app.state.db.execute(&update).await.expect("reparent");
    }

    let run = upgrade(&app, "acme", false, false).await;
    assert_eq!(
        copied_total(&app, &run, "rows"),
        skipped_rows(&idle) + 3,
        "the changed row, the two new ones and what could not be copied before: {run}"
    );
    assert_eq!(copied_total(&app, &run, "created"), 2, "{run}");
    assert_eq!(copied_total(&app, &run, "updated"), 1, "{run}");
    assert_eq!(skipped_rows(&run), skipped_rows(&idle), "{run}");
    let copies: HashMap<Uuid, Row> = fixture::rows_of(&app.state, &nav, tenant)
        .await
        .into_iter()
        .map(|r| (r.id(), r))
        .collect();
    let copy = |id: Uuid| copies.get(&target_id(tenant, id)).expect("a copy");
    assert_eq!(
        copy(parent.id()).get(&column).as_text(),
        Some("renamed by the template")
    );
    assert_eq!(
        copy(child).get("parent_id").as_uuid(),
        Some(target_id(tenant, parent.id()))
    );
    assert_eq!(
        copy(grandchild).get("parent_id").as_uuid(),
        Some(target_id(tenant, child))
    );

    let again = upgrade(&app, "acme", false, false).await;
    assert_eq!(
        copied_total(&app, &again, "rows"),
        skipped_rows(&idle),
        "{again}"
    );
    assert_eq!(copied_total(&app, &again, "updated"), 0, "{again}");
}
