//! Issue #17 item 9, offboarding: `GET /tenants/{id}/export` (sheets that import as a template,
//! runtime rows as JSON) and `deleteTenant(id, purge: true)` (bounded batches, resumable,
//! audited in the platform log).

use std::collections::{BTreeMap, HashMap};

use forklift::{
    offboarding::tar,
    registry::RowClass,
    rows::{Cell, Row},
    sheets::{ImportOptions, SheetFile},
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    fixture,
    harness::{Backend, TestApp, code, uuid_of},
};

/// The repository's example template.
fn examples() -> Vec<SheetFile> {
    forklift::template::EMBEDDED
        .iter()
        .map(|(name, content)| SheetFile {
            name: (*name).into(),
            content: (*content).into(),
        })
        .collect()
}

async fn import_examples(app: &TestApp) {
    let report = forklift::sheets::import(
        &app.state,
        &examples(),
        ImportOptions {
            vocabulary_author: true,
            ..Default::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{}", e.message()));
    assert!(report.ok, "{:?}", report.errors);
}

/// GETs the export of `tenant` (a global id, an id or a slug) with `token`: status, content
/// type, body bytes.
async fn export(app: &TestApp, token: Option<&str>, tenant: &str) -> (u16, String, Vec<u8>) {
    let mut request = app.http.get(app.url(&format!("/tenants/{tenant}/export")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("export request");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response.bytes().await.expect("export body").to_vec();
    (status, content_type, body)
}

fn entries(archive: &[u8]) -> BTreeMap<String, Vec<u8>> {
    tar::read(archive)
        .expect("a whole tar archive")
        .into_iter()
        .collect()
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("json entry")
}

/// Every row of the runtime files of `table`, parsed.
fn runtime_rows(files: &BTreeMap<String, Vec<u8>>, table: &str) -> Vec<Value> {
    files
        .iter()
        .filter(|(name, _)| name.starts_with(&format!("runtime/{table}/")))
        .flat_map(|(_, text)| {
            String::from_utf8_lossy(text)
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("json line"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The configuration of `tenant` as the natural keys of its rows, per copied class, with every
/// reference replaced by the natural key of the row it points at (ids differ between
/// databases; keys do not).
async fn configuration(app: &TestApp, tenant: Uuid) -> BTreeMap<String, Vec<String>> {
    let registry = &app.state.registry;
    let mut rows: HashMap<Uuid, (&RowClass, Row)> = HashMap::new();
    for class in registry.classes() {
        let copied = class.fork.is_copied();
        if !(copied || class.plane == forklift::registry::Plane::Vocabulary)
            || class.table == "tenants"
        {
            continue;
        }
        let mut select = Query::select();
        select
            .columns(class.columns.iter().map(|c| Alias::new(&c.name)))
            .from(Alias::new(&class.table));
        if class.tenant_owned {
            select.and_where(Expr::col(Alias::new("tenant_id")).eq(tenant));
        }
        for r in app.state.db.query_all(&select).await.expect("rows") {
            let row = Row::read(&r, class).expect("row");
            rows.insert(row.id(), (class, row));
        }
    }
    fn describe(rows: &HashMap<Uuid, (&RowClass, Row)>, id: Uuid, depth: usize) -> String {
        let Some((class, row)) = rows.get(&id) else {
            return "?".into();
        };
        let key = if class.natural_key.is_empty() {
            vec!["id".to_string()]
        } else {
            class.natural_key.clone()
        };
        let parts: Vec<String> = key
            .iter()
            .map(|column| match row.get(column) {
                Cell::Uuid(u) if depth < 6 => format!("({})", describe(rows, *u, depth + 1)),
                other => other.to_json().to_string(),
            })
            .collect();
        format!("{}[{}]", class.table, parts.join(","))
    }
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, (class, _)) in &rows {
        if class.fork.is_copied() {
            out.entry(class.table.clone())
                .or_default()
                .push(describe(&rows, *id, 0));
        }
    }
    for keys in out.values_mut() {
        keys.sort();
    }
    out
}

async fn export_reimports_as_a_template_and_forks_to_the_same_configuration(backend: Backend) {
    let Some(source) = TestApp::spawn(backend).await else {
        return;
    };
    import_examples(&source).await;
    let acme = source.ready_tenant("acme").await;
    let acme_id = uuid_of(&acme);
    // The tenant made the configuration its own: what is exported is the tenant's, not the
    // template's.
    let mut rename = Query::update();
    rename
        .table(Alias::new("views"))
        .value(Alias::new("name"), "Open permits (acme)")
        .and_where(Expr::col(Alias::new("key")).eq("pending-permits"))
        .and_where(Expr::col(Alias::new("tenant_id")).eq(acme_id));
    let renamed = source.state.db.execute(&rename).await.expect("rename");
    assert_eq!(renamed.rows_affected(), 1);
    source.add_member("acme", "owen@acme.test", "OWNER").await;
    let (status, content_type, archive) = export(&source, Some(&source.admin()), &acme).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&archive));
    assert_eq!(content_type, "application/x-tar");
    let ordered = tar::read(&archive).expect("archive");
    assert_eq!(ordered.first().map(|e| e.0.as_str()), Some("export.json"));
    assert_eq!(ordered.last().map(|e| e.0.as_str()), Some("manifest.json"));
    let files = entries(&archive);
    let plan = json_of(&files["export.json"]);
    assert_eq!(plan["tenant"]["slug"], "acme");
    let manifest = json_of(&files["manifest.json"]);
    assert_eq!(manifest["complete"], true);
    // The plan announced what the runtime files hold.
    for (table, rows) in plan["runtimeRows"].as_object().expect("plan rows") {
        assert_eq!(
            runtime_rows(&files, table).len() as u64,
            rows.as_u64().expect("count"),
            "{table}"
        );
        assert_eq!(manifest["runtimeRows"][table], *rows, "{table}");
    }
    // Runtime rows as JSON: the member, the root organization, the fork run, all the tenant's.
    let memberships = runtime_rows(&files, "memberships");
    assert_eq!(memberships.len(), 1, "{memberships:?}");
    assert_eq!(memberships[0]["role"], "OWNER");
    assert_eq!(runtime_rows(&files, "organizations").len(), 1);
    assert!(!runtime_rows(&files, "fork_runs").is_empty());
    for table in ["memberships", "organizations", "fork_runs", "audit_entries"] {
        for row in runtime_rows(&files, table) {
            assert_eq!(row["tenant_id"], acme_id.to_string(), "{table}: {row}");
        }
    }
    // No configuration table is dumped as runtime rows.
    assert!(runtime_rows(&files, "applications").is_empty());

    // The sheets import as the template of a fresh database, through the API.
    let sheets: Vec<Value> = files
        .iter()
        .filter(|(name, _)| name.starts_with("sheets/") && name.ends_with(".yaml"))
        .map(|(name, text)| {
            json!({ "name": name.trim_start_matches("sheets/"), "content": String::from_utf8_lossy(text) })
        })
        .collect();
    assert_eq!(sheets.len(), 1 + 4, "the vocabulary and four applications");
    let target = TestApp::spawn(backend).await.expect("second database");
    forklift::bootstrap::ensure_template(&target.state)
        .await
        .expect("template");
    let data = target
        .ok(
            &target.admin(),
            None,
            "mutation($files: [SheetFileInput!]!) { importSheets(files: $files) { ok errors { file line message } sheets { application created } } }",
            json!({ "files": sheets }),
        )
        .await;
    assert_eq!(data["importSheets"]["ok"], true, "{data:#}");
    // The fresh template was empty: everything came from the export.
    let created: u64 = data["importSheets"]["sheets"]
        .as_array()
        .expect("sheets")
        .iter()
        .filter(|s| s["application"] != "vocabulary")
        .map(|s| s["created"].as_u64().unwrap_or(0))
        .sum();
    assert!(created > 30, "{data:#}");
    // Importing the same export again changes nothing: the sheets are a fixed point.
    let again = target
        .ok(
            &target.admin(),
            None,
            "mutation($files: [SheetFileInput!]!) { importSheets(files: $files) { ok sheets { created updated } } }",
            json!({ "files": sheets }),
        )
        .await;
    for sheet in again["importSheets"]["sheets"].as_array().expect("sheets") {
        assert_eq!(
            (sheet["created"].as_u64(), sheet["updated"].as_u64()),
            (Some(0), Some(0)),
            "{again}"
        );
    }
    let copy = uuid_of(&target.ready_tenant("copy").await);
    let expected = configuration(&source, acme_id).await;
    let got = configuration(&target, copy).await;
    assert!(
        expected.values().map(Vec::len).sum::<usize>() > 30,
        "{expected:#?}"
    );
    for class in source.state.registry.copied_classes() {
        assert_eq!(
            got.get(&class.table),
            expected.get(&class.table),
            "{}: the fork of the imported export differs from the exported tenant",
            class.table
        );
    }
    let renamed = entity::views::Entity::find()
        .filter(entity::views::Column::TenantId.eq(copy))
        .filter(entity::views::Column::Key.eq("pending-permits"))
        .one(&target.state.db)
        .await
        .expect("view")
        .expect("the view was forked");
    assert_eq!(renamed.name, "Open permits (acme)");
}

crate::both_backends!(export_reimports_as_a_template_and_forks_to_the_same_configuration);

async fn only_an_owner_or_a_platform_admin_exports_and_strangers_learn_nothing(app: TestApp) {
    app.ready_tenant("acme").await;
    let globex = app.ready_tenant("globex").await;
    app.add_member("acme", "owen@acme.test", "OWNER").await;
    app.add_member("acme", "sue@acme.test", "SUPER_USER").await;
    app.add_member("globex", "gil@globex.test", "OWNER").await;
    let owen = app.token("owen@acme.test", None, false, &[]);
    let sue = app.token("sue@acme.test", None, false, &[]);
    let gil = app.token("gil@globex.test", None, false, &[]);
    let gil_pinned = app.token("gil@globex.test", Some("globex"), false, &[]);

    let (status, content_type, archive) = export(&app, Some(&owen), "acme").await;
    assert_eq!((status, content_type.as_str()), (200, "application/x-tar"));
    assert_eq!(
        json_of(&entries(&archive)["manifest.json"])["complete"],
        true
    );

    // Another tenant's owner, with or without a pinned token, and a tenant that does not
    // exist: the same answer, naming nothing.
    let (_, _, missing) = export(&app, Some(&gil), "no-such-tenant").await;
    for token in [&gil, &gil_pinned] {
        for key in ["acme", "no-such-tenant"] {
            let (status, content_type, body) = export(&app, Some(token), key).await;
            assert_eq!(status, 404, "{key}");
            assert!(content_type.starts_with("application/json"));
            let body: Value = serde_json::from_slice(&body).expect("json error");
            assert_eq!(code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
            assert_eq!(
                body,
                serde_json::from_slice::<Value>(&missing).expect("json")
            );
            assert!(!body.to_string().contains("acme"));
        }
    }
    // A member below Owner: refused.
    let (status, _, body) = export(&app, Some(&sue), "acme").await;
    assert_eq!(status, 403);
    assert_eq!(
        code(&serde_json::from_slice(&body).expect("json")).as_deref(),
        Some("FORBIDDEN")
    );
    // No token.
    let (status, _, body) = export(&app, None, "acme").await;
    assert_eq!(status, 401);
    assert_eq!(
        code(&serde_json::from_slice(&body).expect("json")).as_deref(),
        Some("UNAUTHENTICATED")
    );
    // Globex's owner exports globex, by id, and sees only globex's rows.
    let (status, _, archive) = export(&app, Some(&gil), &uuid_of(&globex).to_string()).await;
    assert_eq!(status, 200);
    let files = entries(&archive);
    for (name, text) in files.iter().filter(|(n, _)| n.starts_with("runtime/")) {
        for line in String::from_utf8_lossy(text).lines() {
            let row: Value = serde_json::from_str(line).expect("json line");
            assert_eq!(row["tenant_id"], uuid_of(&globex).to_string(), "{name}");
        }
    }
    // Each export is in the exported tenant's audit log.
    let logged = entity::audit_entries::Entity::find()
        .filter(entity::audit_entries::Column::Operation.eq("exportTenant"))
        .all(&app.state.db)
        .await
        .expect("audit");
    assert_eq!(logged.len(), 2);
    assert!(
        logged
            .iter()
            .any(|e| e.actor == "owen@acme.test" && e.tenant_id.is_some())
    );
}

crate::both!(only_an_owner_or_a_platform_admin_exports_and_strangers_learn_nothing);

const PURGE: &str = "mutation($id: ID!) { deleteTenant(id: $id, purge: true) }";

/// Rows of `tenant` in every tenant-owned table, and the tenant record.
/// The `status` of tenant `id` as a platform admin reads it.
async fn tenant_status(app: &TestApp, id: &str) -> Value {
    app.ok(
        &app.admin(),
        None,
        "query($id: ID!) { tenant(id: $id) { status } }",
        json!({ "id": id }),
    )
    .await["tenant"]["status"]
        .clone()
}

async fn rows_left(app: &TestApp, tenant: Uuid) -> BTreeMap<String, i64> {
    let mut left = BTreeMap::new();
    for class in app
        .state
        .registry
        .classes()
        .iter()
        .filter(|c| c.tenant_owned)
    {
        let n = fixture::count(&app.state.db, &class.table, tenant).await;
        if n > 0 {
            left.insert(class.table.clone(), n);
        }
    }
    let record = entity::tenants::Entity::find_by_id(tenant)
        .one(&app.state.db)
        .await
        .expect("tenant");
    if record.is_some() {
        left.insert("tenants".into(), 1);
    }
    left
}

async fn an_interrupted_purge_is_finished_by_a_rerun_and_leaves_nothing_of_the_tenant(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn_with(
        backend,
        |c| {
            c.purge_batch_size = 3;
            c.purge_failpoint = Some("after_batches:6".into());
        },
        forklift::registry::Registry::default(),
    )
    .await
    else {
        return;
    };
    import_examples(&app).await;
    let gone = app.ready_tenant("gone").await;
    let gone_id = uuid_of(&gone);
    app.ready_tenant("stay").await;
    let stay_id = uuid_of(&app.ready_tenant("stay2").await);
    for (slug, who) in [
        ("gone", "ann@gone.test"),
        ("gone", "bob@gone.test"),
        ("stay2", "cy@stay.test"),
    ] {
        app.add_member(slug, who, "OWNER").await;
    }
    let ann = app.token("ann@gone.test", None, false, &[]);
    app.ok(
        &ann,
        Some("gone"),
        "mutation { updateBranding(input: { primaryColor: \"#123456\" }) { primaryColor } }",
        json!({}),
    )
    .await;
    let before_stay = fixture::dump(&app.state, stay_id).await;
    let stay_audit = fixture::count(&app.state.db, "audit_entries", stay_id).await;
    let all_before = rows_left(&app, gone_id).await;
    assert!(all_before.len() > 10, "{all_before:?}");

    // Without purge, the old behaviour: refused while members remain.
    let body = app
        .gql(
            &app.admin(),
            None,
            "mutation($id: ID!) { deleteTenant(id: $id) }",
            json!({ "id": gone }),
        )
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("PRECONDITION_FAILED"),
        "{body}"
    );
    // Not the template, not by a tenant's owner.
    let template = app
        .ok(
            &app.admin(),
            None,
            "{ tenants(first: 50) { nodes { id kind } } }",
            json!({}),
        )
        .await;
    let template_id = template["tenants"]["nodes"]
        .as_array()
        .expect("tenants")
        .iter()
        .find(|t| t["kind"] == "TEMPLATE")
        .expect("template")["id"]
        .clone();
    let body = app
        .gql(&app.admin(), None, PURGE, json!({ "id": template_id }))
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("PRECONDITION_FAILED"),
        "{body}"
    );
    let body = app
        .gql(&ann, Some("gone"), PURGE, json!({ "id": gone }))
        .await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");

    // Interrupted after six batches of three rows.
    let body = app
        .gql(&app.admin(), None, PURGE, json!({ "id": gone }))
        .await;
    assert_eq!(code(&body).as_deref(), Some("INTERNAL"), "{body}");
    assert!(!body.to_string().contains("failpoint"), "{body}");
    let partial = rows_left(&app, gone_id).await;
    assert!(partial.contains_key("tenants"), "the record goes last");
    assert!(
        partial.values().sum::<i64>() < all_before.values().sum::<i64>(),
        "{partial:?} vs {all_before:?}"
    );
    assert_eq!(tenant_status(&app, &gone).await, "PURGING");
    // Nobody gets into a tenant being purged, and no fork starts into it.
    let body = app
        .gql(&ann, Some("gone"), "{ me { subject } }", json!({}))
        .await;
    assert_eq!(code(&body).as_deref(), Some("TENANT_NOT_FOUND"), "{body}");
    let body = app
        .gql(
            &app.admin(),
            None,
            "mutation { forkTenant(input: { target: \"gone\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("PRECONDITION_FAILED"),
        "{body}"
    );

    // A re-run (another server, no failpoint) finishes the job.
    let rerun = app
        .replica(|c| {
            c.purge_batch_size = 3;
        })
        .await;
    let data = rerun
        .ok(&rerun.admin(), None, PURGE, json!({ "id": gone }))
        .await;
    assert_eq!(data["deleteTenant"], gone);
    assert_eq!(
        rows_left(&app, gone_id).await,
        BTreeMap::new(),
        "no row of the tenant remains"
    );
    // A third run finds nothing to purge.
    let body = rerun
        .gql(&rerun.admin(), None, PURGE, json!({ "id": gone }))
        .await;
    assert_eq!(code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
    // Other tenants untouched.
    assert_eq!(fixture::dump(&app.state, stay_id).await, before_stay);
    assert_eq!(
        fixture::count(&app.state.db, "audit_entries", stay_id).await,
        stay_audit
    );
    assert!(fixture::count(&app.state.db, "memberships", stay_id).await == 1);
    // The purge is in the platform log: the failed attempt and the one that completed.
    let entries = entity::audit_entries::Entity::find()
        .filter(entity::audit_entries::Column::Operation.eq("deleteTenant"))
        .filter(entity::audit_entries::Column::TenantId.is_null())
        .all(&app.state.db)
        .await
        .expect("audit");
    let outcomes: Vec<(String, Value)> = entries
        .iter()
        .map(|e| {
            (
                format!("{:?}", e.outcome),
                e.detail["change"]["purge"]["complete"].clone(),
            )
        })
        .collect();
    assert!(
        outcomes.contains(&("Failed".into(), json!(false))),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&("Allowed".into(), json!(true))),
        "{outcomes:?}"
    );
    let done = entries
        .iter()
        .find(|e| e.detail["change"]["purge"]["complete"] == true)
        .expect("completed entry");
    assert_eq!(done.detail["change"]["tenant"]["slug"], "gone");
    assert_eq!(done.detail["targetType"], "Tenant");
    assert_eq!(done.actor, "admin@platform.test");
    assert!(done.detail["change"]["purge"]["resumed"] == true);
}

crate::both_backends!(an_interrupted_purge_is_finished_by_a_rerun_and_leaves_nothing_of_the_tenant);

crate::both_backends!(a_purge_killed_midway_is_finished_by_a_rerun);
/// A real server process purging a tenant is killed (SIGKILL) between two batches: the tenant
/// stays `PURGING` (nobody gets in), some of its rows are gone, and a re-run on another server
/// removes the rest; the other tenant is untouched.
async fn a_purge_killed_midway_is_finished_by_a_rerun(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    import_examples(&app).await;
    let gone = app.ready_tenant("gone").await;
    let gone_id = uuid_of(&gone);
    let stay_id = uuid_of(&app.ready_tenant("stay").await);
    let before_stay = fixture::dump(&app.state, stay_id).await;
    let all_before: i64 = rows_left(&app, gone_id).await.values().sum();
    let child = crate::replicas::Child::start(
        &app,
        &[
            ("FORKLIFT_PURGE_BATCH_SIZE", "3"),
            ("FORKLIFT_PURGE_FAILPOINT", "pause_after_batches:4:60000"),
        ],
    )
    .await;
    let request = {
        let (base, admin, id) = (child.base.clone(), app.admin(), gone.clone());
        tokio::spawn(async move {
            let _ = reqwest::Client::new()
                .post(format!("{base}/graphql"))
                .bearer_auth(admin)
                .json(&json!({ "query": PURGE, "variables": { "id": id } }))
                .send()
                .await;
        })
    };
    // Held after its fourth batch: twelve rows fewer (or fewer tables' worth), then killed.
    let mut left = all_before;
    for _ in 0..400 {
        left = rows_left(&app, gone_id).await.values().sum();
        if left <= all_before - 12 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        left < all_before,
        "the purge started: {left} of {all_before}"
    );
    drop(child); // SIGKILL, and reaped
    request.abort();
    assert!(
        rows_left(&app, gone_id).await.contains_key("tenants"),
        "the record goes last"
    );
    assert_eq!(tenant_status(&app, &gone).await, "PURGING");
    let data = app
        .ok(&app.admin(), None, PURGE, json!({ "id": gone }))
        .await;
    assert_eq!(data["deleteTenant"], gone);
    assert_eq!(
        rows_left(&app, gone_id).await,
        BTreeMap::new(),
        "no row of the tenant remains"
    );
    assert_eq!(fixture::dump(&app.state, stay_id).await, before_stay);
}

crate::both!(a_tenant_other_tenants_were_forked_from_is_not_deleted_under_them);
/// Deleting a tenant never touches another tenant's rows: while other tenants' fork runs name
/// it as their source (their records would go with it), deletion and purge are refused, naming
/// them; once those tenants are gone, it is deleted.
async fn a_tenant_other_tenants_were_forked_from_is_not_deleted_under_them(app: TestApp) {
    fixture::seeded_template(&app.state, 1).await;
    let alpha = app.ready_tenant("alpha").await;
    let beta = app.create_tenant("beta").await;
    let admin = app.admin();
    let run = app
        .ok(
            &admin,
            None,
            "mutation { forkTenant(input: { target: \"beta\", source: \"alpha\" }) { id } }",
            json!({}),
        )
        .await["forkTenant"]["id"]
        .as_str()
        .expect("run id")
        .to_string();
    assert_eq!(app.wait_run(&run).await["status"], "FINISHED");
    let beta_runs = fixture::count(&app.state.db, "fork_runs", uuid_of(&beta)).await;
    assert_eq!(beta_runs, 1);
    for query in [
        "mutation($id: ID!) { deleteTenant(id: $id) }",
        "mutation($id: ID!) { deleteTenant(id: $id, purge: true) }",
    ] {
        let body = app.gql(&admin, None, query, json!({ "id": alpha })).await;
        assert_eq!(
            code(&body).as_deref(),
            Some("PRECONDITION_FAILED"),
            "{body}"
        );
        assert!(
            body.to_string().contains("beta"),
            "names the tenants: {body}"
        );
    }
    assert_eq!(
        fixture::count(&app.state.db, "fork_runs", uuid_of(&beta)).await,
        beta_runs,
        "beta's run history is intact"
    );
    assert_ne!(tenant_status(&app, &alpha).await, "PURGING");
    // Once beta is gone, alpha can go.
    app.ok(&admin, None, PURGE, json!({ "id": beta })).await;
    let data = app.ok(&admin, None, PURGE, json!({ "id": alpha })).await;
    assert_eq!(data["deleteTenant"], alpha);
}
