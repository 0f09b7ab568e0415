//! Issue #5: provisioning sheets — errors with locations, idempotent import, pruning, the
//! mutation, the JSON Schema, and the bootstrap pipeline.

use std::path::PathBuf;

use forklift::sheets::{self, ImportOptions, SheetFile};
use serde_json::json;

use crate::{
    fixture,
    harness::{TestApp, code},
};

fn examples() -> Vec<SheetFile> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/sheets"));
    sheets::read_paths(&[dir])
        .expect("example sheets")
        .into_iter()
        .map(|f| SheetFile {
            name: f.name.rsplit('/').next().unwrap_or_default().to_string(),
            content: f.content,
        })
        .collect()
}

fn file(name: &str, content: &str) -> SheetFile {
    SheetFile {
        name: name.into(),
        content: content.into(),
    }
}

#[test]
fn the_json_schema_is_generated_from_the_code() {
    let generated = sheets::format::json_schema();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/sheets/sheet.schema.json");
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "sheets/sheet.schema.json is out of date: regenerate it with `cargo run \
            -q -- sheets schema > sheets/sheet.schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_str(&generated).expect("json");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    for sheet in examples() {
        assert!(
            sheet
                .content
                .starts_with("# yaml-language-server: $schema=./sheet.schema.json"),
            "{} points editors at the schema",
            sheet.name
        );
    }
}

#[test]
fn problems_are_reported_at_their_line_and_column_all_at_once() {
    let vocabulary = examples()
        .into_iter()
        .find(|f| f.name == "vocabulary.yaml")
        .expect("vocabulary");
    let permits = examples()
        .into_iter()
        .find(|f| f.name == "permits.yaml")
        .expect("permits");
    let broken = file(
        "broken.yaml",
        "identity:\n  code: broken\n  name: Broken\n  route_namespace: \
            permits\nentities: [nope, permit]\nactions:\n  - key: a\n    label: \
            A\n    placements: [{ surface: nowhere }]\n  - key: a\n    label: \
            Again\nnotifications:\n  - { key: n, event: no.event, channel: email, \
            subject: s, body: b }\n",
    );
    let typo = file(
        "typo.yaml",
        "identity:\n  code: typo\n  name: Typo\n  route_namespace: typo\n  colour: blue\n",
    );
    let twice = file("twice.yaml", "identity:\n  code: twice\n  code: again\n");
    let wrong_type = file(
        "types.yaml",
        "identity:\n  code: t\n  name: T\n  route_namespace: t\n  nav_order: first\n",
    );
    let errors: Vec<String> =
        sheets::validate(&[vocabulary, permits, broken, typo, twice, wrong_type])
            .iter()
            .map(ToString::to_string)
            .collect();
    let expected = [
        "broken.yaml:4:20: the route namespace `permits` is also used by permits.yaml",
        "broken.yaml:5:12: unknown entity schema `nope`",
        "broken.yaml:9:29: unknown surface type `nowhere`",
        "broken.yaml:10:10: duplicate action key `a`",
        "broken.yaml:13:22: unknown event type `no.event`",
    ];
    for line in expected {
        assert!(
            errors.iter().any(|e| e == line),
            "missing `{line}` in {errors:#?}"
        );
    }
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("typo.yaml:5:3: unknown field `colour`")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("twice.yaml:3:3: duplicate mapping key")),
        "{errors:#?}"
    );
    assert!(
        errors.iter().any(|e| e.starts_with("types.yaml:5:14:")),
        "{errors:#?}"
    );
    assert!(
        !errors.iter().any(|e| e.contains("DuplicateKeyPolicy")),
        "no advice meant for the crate's users"
    );
    // The examples on their own are valid.
    assert!(
        sheets::validate(&examples()).is_empty(),
        "{:#?}",
        sheets::validate(&examples())
    );
}

/// Broken sheets, each with the first problem it must report (`file:line:column: message…`).
fn corpus() -> Vec<(SheetFile, &'static str)> {
    let mut bomb = String::from("identity: &a0 [x, x]\n");
    for i in 1..20 {
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}]\n",
            p = i - 1
        ));
    }
    let app = |body: &str| format!("identity:\n  code: x\n  name: X\n  route_namespace: x\n{body}");
    vec![
        (
            file("syntax.yaml", "identity: {code: x\n"),
            "syntax.yaml:1:11: unclosed bracket",
        ),
        (
            file("quote.yaml", "identity:\n  code: \"unterminated\n"),
            "quote.yaml:3:1: invalid indentation in multiline quoted scalar",
        ),
        (
            file("tabs.yaml", "identity:\n\tcode: x\n"),
            "tabs.yaml:2:2: tabs disallowed",
        ),
        (
            file("type.yaml", &app("  nav_order: first\n")),
            "type.yaml:5:14: ",
        ),
        (
            file(
                "bool.yaml",
                &app("actions:\n  - { key: a, label: A, public_vote: sometimes }\n"),
            ),
            "bool.yaml:6:38: invalid boolean",
        ),
        (
            file("unknown-key.yaml", &app("  colour: blue\n")),
            "unknown-key.yaml:5:3: unknown field `colour`",
        ),
        (
            file("unknown-top.yaml", &app("applications: []\n")),
            "unknown-top.yaml:5:1: unknown field `applications`",
        ),
        (
            file("duplicate-key.yaml", "identity:\n  code: a\n  code: b\n"),
            "duplicate-key.yaml:3:3: duplicate mapping key",
        ),
        (
            file("entity.yaml", &app("entities: [nope]\n")),
            "entity.yaml:5:12: unknown entity schema `nope`",
        ),
        (
            file(
                "surface.yaml",
                &app(
                    "actions:\n  - key: a\n    label: A\n    placements: [{ surface: nowhere }]\n",
                ),
            ),
            "surface.yaml:8:29: unknown surface type `nowhere`",
        ),
        (
            file(
                "event.yaml",
                &app(
                    "notifications:\n  - { key: n, event: no.event, channel: email, subject: s, body: b }\n",
                ),
            ),
            "event.yaml:6:22: unknown event type `no.event`",
        ),
        (
            file(
                "action.yaml",
                &app("placements:\n  - { action: permits/missing, surface: portal-home }\n"),
            ),
            "action.yaml:6:15: unknown action `permits/missing`",
        ),
        (
            file(
                "duplicate-action.yaml",
                &app("actions:\n  - { key: a, label: A }\n  - { key: a, label: B }\n"),
            ),
            "duplicate-action.yaml:7:12: duplicate action key `a`",
        ),
        (
            file(
                "namespace.yaml",
                "identity:\n  code: other\n  name: O\n  route_namespace: permits\n",
            ),
            "namespace.yaml:4:20: the route namespace `permits` is also used by permits.yaml",
        ),
        (
            file(
                "code.yaml",
                "identity:\n  code: permits\n  name: P\n  route_namespace: p2\n",
            ),
            "code.yaml:2:9: the application code `permits` is also declared in permits.yaml",
        ),
        (
            file(
                "page.yaml",
                &app("navigation:\n  - { key: n1, label: N, page: missing-page }\n"),
            ),
            "page.yaml:6:32: unknown portal page `missing-page`",
        ),
        (
            file(
                "custom.yaml",
                &app("records:\n  - { type: no-such-type, key: k }\n"),
            ),
            "custom.yaml:6:13: unknown custom type `no-such-type`",
        ),
        (
            file("empty.yaml", "entities: []\n"),
            "empty.yaml:1:1: a sheet needs `identity:`",
        ),
        (file("bomb.yaml", &bomb), "bomb.yaml:"),
        (
            file(
                "big.yaml",
                &format!(
                    "identity:\n  code: big\n  name: \"{}\"\n",
                    "x".repeat(1024 * 1024)
                ),
            ),
            "big.yaml:1:1: the sheet is larger than",
        ),
    ]
}

fn with_examples(extra: SheetFile) -> Vec<SheetFile> {
    let mut files: Vec<SheetFile> = examples()
        .into_iter()
        .filter(|f| f.name == "vocabulary.yaml" || f.name == "permits.yaml")
        .collect();
    files.push(extra);
    files
}

#[test]
fn every_broken_sheet_of_the_corpus_reports_its_location() {
    let corpus = corpus();
    assert!(corpus.len() >= 15);
    for (sheet, expected) in corpus {
        let name = sheet.name.clone();
        let errors: Vec<String> = sheets::validate(&with_examples(sheet))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            errors.iter().any(|e| e.starts_with(expected)),
            "{name}: expected `{expected}…` in {errors:#?}"
        );
        assert!(
            errors.iter().all(|e| e.starts_with(&name)),
            "{name}: only its own problems: {errors:#?}"
        );
    }
}

crate::both!(the_template_holds_what_the_sheets_say);
async fn the_template_holds_what_the_sheets_say(app: TestApp) {
    let report = sheets::import(
        &app.state,
        &examples(),
        ImportOptions {
            vocabulary_author: true,
            ..Default::default()
        },
    )
    .await
    .expect("import");
    assert!(report.ok, "{:?}", report.errors);
    let admin = app.admin();
    let q = |query: &'static str| {
        let (app, admin) = (&app, admin.clone());
        async move { app.ok(&admin, Some("template"), query, json!({})).await }
    };
    // Identity, entities, actions with typed parameters and placements.
    let permits = q(
        "{ applications(filter: { code: \"permits\" }) { nodes { name \
            routeNamespace navOrder features applicationEntities { position } \
            actions { key parameters actionPlacements { position surfaceType { key \
            } } } } } }",
    )
    .await;
    let app_node = &permits["applications"]["nodes"][0];
    assert_eq!(app_node["routeNamespace"], "permits");
    assert_eq!(app_node["navOrder"], 20);
    assert_eq!(app_node["features"], json!({ "map": true }));
    assert_eq!(
        app_node["applicationEntities"].as_array().map(Vec::len),
        Some(2)
    );
    let apply = app_node["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| a["key"] == "apply")
        .expect("apply")
        .clone();
    assert_eq!(
        apply["parameters"][0],
        json!({ "name": "kind", "type": "enum", "values": ["building", "event", "business"], "required": true })
    );
    let mut surfaces: Vec<&str> = apply["actionPlacements"]
        .as_array()
        .expect("placements")
        .iter()
        .filter_map(|p| p["surfaceType"]["key"].as_str())
        .collect();
    surfaces.sort_unstable();
    assert_eq!(
        surfaces,
        ["list-toolbar", "portal-home"],
        "its own, and the portal's (an adapter)"
    );
    // The adapter places other applications' actions on its own surface.
    let portal = q(
        "{ applications(filter: { code: \"citizen-portal\" }) { nodes { \
            actionPlacements { position action { key application { code } } \
            surfaceType { key isPublic } } } } }",
    )
    .await;
    let placed: Vec<(String, String)> = portal["applications"]["nodes"][0]["actionPlacements"]
        .as_array()
        .expect("placements")
        .iter()
        .map(|p| {
            (
                p["action"]["application"]["code"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                p["action"]["key"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(placed.len(), 3, "{placed:?}");
    assert!(placed.contains(&("service-requests".into(), "report-issue".into())));
    // Navigation is a tree; notifications have rules and subscriptions; records carry data.
    let nav = q(
        "{ navigationItems(filter: { key: \"permits\" }) { nodes { label \
            children { key portalPage { slug } } } } }",
    )
    .await;
    let children = nav["navigationItems"]["nodes"][0]["children"]
        .as_array()
        .expect("children")
        .clone();
    assert_eq!(children.len(), 2);
    assert!(children.iter().any(|c| c["portalPage"]["slug"] == "apply"));
    let rules = q(
        "{ notificationRules(filter: { key: \"to-followers\" }) { nodes { \
            conditions notificationSubscriptions { channel audience } } } }",
    )
    .await;
    assert_eq!(
        rules["notificationRules"]["nodes"][0]["notificationSubscriptions"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let records = q(
        "{ customRecords(filter: { key: \"building\" }) { nodes { data \
            customType { key forkable } } } }",
    )
    .await;
    assert_eq!(
        records["customRecords"]["nodes"][0]["data"],
        json!({ "kind": "building", "amount": 250 })
    );
    assert_eq!(
        records["customRecords"]["nodes"][0]["customType"]["forkable"],
        true
    );
    // Vocabulary: geometry fields, public surfaces, the control plane.
    let vocab = app
        .ok(
            &admin,
            None,
            "{ entitySchemas(filter: { key: \"permit\" }) { nodes { fields } } \
                surfaceTypes(filter: { key: \"portal-home\" }) { nodes { isPublic } } \
                controlPlaneApplications { totalCount } }",
            json!({}),
        )
        .await;
    assert!(
        vocab["entitySchemas"]["nodes"][0]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .any(|f| f["geometry"] == true)
    );
    assert_eq!(vocab["surfaceTypes"]["nodes"][0]["isPublic"], true);
    assert_eq!(vocab["controlPlaneApplications"]["totalCount"], 2);
    let layouts = q(
        "{ listLayouts(filter: { key: \"permits-table\" }) { nodes { columns \
            defaultSort } } views { totalCount } dashboards { totalCount } \
            childCollections { totalCount } reportTemplates { totalCount } \
            portalPages { totalCount } }",
    )
    .await;
    assert_eq!(
        layouts["listLayouts"]["nodes"][0]["columns"],
        json!(["applicant", "kind", "decided_on"])
    );
    assert_eq!(layouts["views"]["totalCount"], 6);
    assert_eq!(layouts["dashboards"]["totalCount"], 2);
    assert_eq!(layouts["childCollections"]["totalCount"], 1);
    assert_eq!(layouts["reportTemplates"]["totalCount"], 2);
    assert_eq!(layouts["portalPages"]["totalCount"], 5);
}

crate::both!(importing_is_idempotent_updates_in_place_and_prunes_only_when_asked);
async fn importing_is_idempotent_updates_in_place_and_prunes_only_when_asked(app: TestApp) {
    let options = ImportOptions {
        vocabulary_author: true,
        ..Default::default()
    };
    let first = sheets::import(&app.state, &examples(), options)
        .await
        .expect("import");
    assert!(first.ok, "{:?}", first.errors);
    assert!(
        first.sheets.iter().all(|s| s.created > 0),
        "{:?}",
        first.sheets
    );
    let template = fixture::template(&app.state).await;
    let applications = fixture::count(&app.state.db, "applications", template).await;
    assert_eq!(applications, 4);
    let before = fixture::dump(&app.state, template).await;

    let again = sheets::import(&app.state, &examples(), options)
        .await
        .expect("import");
    assert!(
        again
            .sheets
            .iter()
            .all(|s| s.created == 0 && s.updated == 0 && s.pruned == 0),
        "{:?}",
        again.sheets
    );
    assert_eq!(
        before,
        fixture::dump(&app.state, template).await,
        "the second import changed nothing"
    );

    // A changed report name updates the row in place; a removed page is reported, kept.
    let changed: Vec<SheetFile> = examples()
        .into_iter()
        .map(|mut f| {
            if f.name == "permits.yaml" {
                f.content = f.content.replace("Permits by kind", "Permits per kind");
                f.content = f
                    .content
                    .lines()
                    .filter(|l| !l.contains("staff-guide"))
                    .collect::<Vec<_>>()
                    .join("\n");
            }
            f
        })
        .collect();
    let reports_before = fixture::ids_of(&app.state, "report_templates", template).await;
    let report = sheets::import(&app.state, &changed, options)
        .await
        .expect("import");
    let permits = report
        .sheets
        .iter()
        .find(|s| s.application == "permits")
        .expect("permits");
    assert_eq!(
        (permits.created, permits.updated, permits.pruned),
        (0, 1, 1),
        "{permits:?}"
    );
    assert_eq!(
        reports_before,
        fixture::ids_of(&app.state, "report_templates", template).await,
        "updated in place"
    );
    let pages = fixture::count(&app.state.db, "portal_pages", template).await;
    let pruned = sheets::import(
        &app.state,
        &changed,
        ImportOptions {
            dry_run: false,
            prune: true,
            vocabulary_author: true,
        },
    )
    .await
    .expect("import");
    assert_eq!(pruned.sheets.iter().map(|s| s.pruned).sum::<u64>(), 1);
    assert_eq!(
        fixture::count(&app.state.db, "portal_pages", template).await,
        pages - 1,
        "pruned with prune"
    );

    // An invalid sheet in the batch: nothing is written.
    let snapshot = fixture::dump(&app.state, template).await;
    let mut bad = examples();
    bad.push(file(
        "bad.yaml",
        "identity:\n  code: bad\n  name: Bad\n  route_namespace: bad\nentities: [unknown-thing]\n",
    ));
    bad[1].content = bad[1].content.replace("Permits", "Permits v2");
    let refused = sheets::import(&app.state, &bad, options)
        .await
        .expect("import");
    assert!(!refused.ok);
    assert_eq!(
        refused.errors[0].to_string(),
        "bad.yaml:5:12: unknown entity schema `unknown-thing`"
    );
    assert_eq!(
        snapshot,
        fixture::dump(&app.state, template).await,
        "nothing written"
    );
    // So for every sheet of the broken corpus.
    for (sheet, _) in corpus() {
        let name = sheet.name.clone();
        let report = sheets::import(&app.state, &with_examples(sheet), options)
            .await
            .expect("import");
        assert!(!report.ok, "{name}");
        assert_eq!(
            snapshot,
            fixture::dump(&app.state, template).await,
            "{name}: nothing written"
        );
    }
}

crate::both!(template_authors_import_through_the_api);
async fn template_authors_import_through_the_api(app: TestApp) {
    let mutation = "mutation($files: [SheetFileInput!]!, $dry: Boolean) { \
        importSheets(files: $files, dryRun: $dry) { ok dryRun sheets { file \
        application created updated unchanged pruned } errors { file line \
        column message } } }";
    let files: Vec<serde_json::Value> = examples()
        .iter()
        .map(|f| json!({ "name": f.name, "content": f.content }))
        .collect();
    let someone = app.token("someone@example.test", None, false, &[]);
    let body = app
        .gql(&someone, None, mutation, json!({ "files": files }))
        .await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    // The examples create vocabulary too: a template author alone may not change it.
    let template_only = app.token("author@platform.test", None, false, &["template:author"]);
    let body = app
        .gql(&template_only, None, mutation, json!({ "files": files }))
        .await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    let author = app.token(
        "author@platform.test",
        None,
        false,
        &["template:author", "vocabulary:author"],
    );
    let dry = app
        .ok(
            &author,
            None,
            mutation,
            json!({ "files": files, "dry": true }),
        )
        .await;
    assert_eq!(dry["importSheets"]["ok"], true);
    assert_eq!(dry["importSheets"]["dryRun"], true);
    let template = fixture::template(&app.state).await;
    assert_eq!(
        fixture::count(&app.state.db, "applications", template).await,
        0,
        "a dry run writes nothing"
    );
    let done = app
        .ok(&author, None, mutation, json!({ "files": files }))
        .await;
    let created: i64 = done["importSheets"]["sheets"]
        .as_array()
        .expect("sheets")
        .iter()
        .map(|s| s["created"].as_i64().unwrap_or(0))
        .sum();
    assert!(created > 50, "{done}");
    // Once the vocabulary is in place, re-importing it unchanged needs no vocabulary grant.
    let again = app
        .ok(&template_only, None, mutation, json!({ "files": files }))
        .await;
    assert_eq!(again["importSheets"]["ok"], true, "{again}");
    let bad = json!([{ "name": "x.yaml", "content": "identity:\n  code: x\n  nme: X\n" }]);
    let refused = app
        .ok(&author, None, mutation, json!({ "files": bad }))
        .await;
    assert_eq!(refused["importSheets"]["ok"], false);
    assert_eq!(refused["importSheets"]["errors"][0]["line"], 3);
    assert_eq!(refused["importSheets"]["errors"][0]["file"], "x.yaml");
}

crate::both!(bootstrap_brings_an_empty_database_to_a_forked_tenant);
async fn bootstrap_brings_an_empty_database_to_a_forked_tenant(app: TestApp) {
    let options = forklift::bootstrap::BootstrapOptions {
        tenant_slug: "riverside".into(),
        tenant_name: "Riverside".into(),
        admin_email: Some("staff@riverside.test".into()),
        sheets_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/sheets")),
    };
    let mut dumps = Vec::new();
    for _ in 0..2 {
        let mut steps = Vec::new();
        forklift::bootstrap::run(app.state.clone(), &options, |(step, _)| steps.push(step))
            .await
            .expect("bootstrap");
        assert!(steps.iter().any(|s| s == "fork"), "{steps:?}");
        let template = fixture::template(&app.state).await;
        let tenant = forklift::tenants::catalog::tenant_by_slug(&app.state.db, "riverside")
            .await
            .expect("tenant")
            .id;
        dumps.push((
            fixture::dump(&app.state, template).await,
            fixture::dump(&app.state, tenant).await,
        ));
    }
    assert!(
        dumps[0] == dumps[1],
        "a second bootstrap gives the same database (same ids, same rows)"
    );
    // The custom type declared only in a sheet was forked, with no Rust change.
    let records = &dumps[1].1["custom_records"];
    assert_eq!(records.len(), 2, "{records:?}");
    let staff = app.token("staff@riverside.test", None, false, &[]);
    let data = app
        .ok(
            &staff,
            Some("riverside"),
            "{ applications { totalCount } actionPlacements { totalCount } geoLayers \
                { totalCount } accessGrants { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(data["applications"]["totalCount"], 4, "{data}");
    assert!(
        data["geoLayers"]["totalCount"].as_i64().unwrap_or(0) >= 3,
        "map applications get layers: {data}"
    );
    assert!(
        data["accessGrants"]["totalCount"].as_i64().unwrap_or(0) >= 5,
        "citizen grants: {data}"
    );
    let template = fixture::template(&app.state).await;
    assert_eq!(
        data["actionPlacements"]["totalCount"].as_i64(),
        Some(fixture::count(&app.state.db, "action_placements", template).await),
        "run twice, one set of rows"
    );
}
