//! Dedicated tenants through their lifecycle: a failed fork, a database that is down, an
//! upgrade, the export and the purge (see the parent module).

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::json;

use super::{Eu1, count, create_placed, placed_counts, ready_placed, spawn_placed, total};
use crate::{
    fixture,
    harness::{Backend, code, uuid_of},
};

/// The failure points the engine offers to tests: `fork.rs`'s, and the one before any phase.
fn failpoints() -> impl Iterator<Item = &'static str> {
    std::iter::once("before_phase:1").chain(crate::fork::FAILPOINTS)
}

crate::both_backends!(a_failed_fork_into_a_dedicated_tenant_leaves_nothing_anywhere);
async fn a_failed_fork_into_a_dedicated_tenant_leaves_nothing_anywhere(backend: Backend) {
    for point in failpoints() {
        let Some((app, eu1)) = spawn_placed(backend, Eu1::AppRole, |c| {
            c.fork_failpoint = Some(point.to_string())
        })
        .await
        else {
            return;
        };
        fixture::seeded_template(&app.state, 2).await;
        let tenant = uuid_of(&create_placed(&app, "dedicated", Some("eu1")).await);
        let main = app.owner_db().await;
        let named = Database::connect(&eu1.owner_url).await.expect("eu1");
        // Before its fork a placed tenant has its root organization, in eu1 only.
        let before = placed_counts(&app, &named, tenant).await;
        assert_eq!(total(&before), 1, "{point}: {before:?}");
        assert_eq!(count(&named, "organizations", tenant).await, 1, "{point}");
        let run = app.fork("dedicated").await;
        assert_eq!(run["status"], "ROLLED_BACK", "{point}: {run}");
        assert_eq!(
            run["error"],
            forklift::fork::runs::FORK_FAILED_MESSAGE,
            "{point}"
        );
        assert_eq!(
            placed_counts(&app, &named, tenant).await,
            before,
            "{point}: eu1 as before the fork"
        );
        assert_eq!(
            total(&placed_counts(&app, &main, tenant).await),
            0,
            "{point}: main"
        );
        let _ = named.close().await;
    }
}

crate::both_backends!(a_named_database_that_is_down_refuses_only_its_tenants);
async fn a_named_database_that_is_down_refuses_only_its_tenants(backend: Backend) {
    let Some((app, _eu1)) = spawn_placed(backend, Eu1::AppRole, |_| {}).await else {
        return;
    };
    fixture::seeded_template(&app.state, 1).await;
    let gone = ready_placed(&app, "gone", Some("eu1")).await;
    ready_placed(&app, "shared", None).await;
    app.add_member("gone", "gina@gone.test", "OWNER").await;
    app.add_member("shared", "sam@shared.test", "OWNER").await;
    // Its database goes away: the catalog now places it where nothing answers.
    let main = app.owner_db().await;
    {
        use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
        let mut update = Query::update();
        update
            .table(Alias::new("tenants"))
            .value(Alias::new("database"), "down")
            .and_where(Expr::col(Alias::new("id")).eq(gone));
        let moved = main.execute(&update).await.expect("move the placement");
        assert_eq!(moved.rows_affected(), 1);
    }
    let gina = app.token("gina@gone.test", None, false, &[]);
    let sam = app.token("sam@shared.test", None, false, &[]);
    for query in [
        // The planned read path, and the executor (a hand-written field beside).
        "{ applications { totalCount } }",
        "{ me { subject } applications { nodes { id actions { id } } } }",
        "mutation { createApplication(input: { code: \"c\", name: \"C\", routeNamespace: \"c\" }) { id } }",
    ] {
        let body = app.gql(&gina, Some("gone"), query, json!({})).await;
        assert_eq!(
            code(&body).as_deref(),
            Some("SERVICE_UNAVAILABLE"),
            "{query}: {body}"
        );
        let text = body.to_string();
        for secret in ["127.0.0.1", "hunter2", "postgres", "sqlite", "nonexistent"] {
            assert!(!text.contains(secret), "{query}: {body}");
        }
        let data = app
            .ok(
                &sam,
                Some("shared"),
                "{ applications { totalCount } }",
                json!({}),
            )
            .await;
        assert!(
            data["applications"]["totalCount"].as_i64() > Some(0),
            "{data}"
        );
    }
    // Its control plane is still served: who its members are, its domains; its runtime rows
    // (organizations) live in the database that is down.
    let data = app
        .ok(
            &gina,
            Some("gone"),
            "{ me { subject } memberships { totalCount } domains { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(data["memberships"]["totalCount"], 1, "{data}");
    app.refused(
        &gina,
        Some("gone"),
        "{ organizations { totalCount } }",
        json!({}),
        "SERVICE_UNAVAILABLE",
    )
    .await;
    // A tenant cannot be placed there, and nothing is created.
    let body = app
        .gql(
            &app.admin(),
            None,
            "mutation { createTenant(input: { name: \"Late\", slug: \"late\", database: \"down\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("SERVICE_UNAVAILABLE"),
        "{body}"
    );
    assert!(!body.to_string().contains("hunter2"), "{body}");
    let late = main
        .query_one_raw(Statement::from_string(
            main.get_database_backend(),
            "SELECT COUNT(*) AS n FROM tenants WHERE slug = 'late'".to_string(),
        ))
        .await
        .expect("count")
        .expect("a row")
        .try_get::<i64>("", "n")
        .expect("n");
    assert_eq!(late, 0, "nothing was created");
}

/// The `name` of the application `id` in `db`, by direct SQL.
async fn application_name(db: &DatabaseConnection, id: uuid::Uuid) -> Option<String> {
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
    let mut select = Query::select();
    select
        .column(Alias::new("name"))
        .from(Alias::new("applications"))
        .and_where(Expr::col(Alias::new("id")).eq(id));
    db.query_one(&select)
        .await
        .expect("select")
        .map(|r| r.try_get::<String>("", "name").expect("name"))
}

crate::both_backends!(an_upgrade_of_a_dedicated_tenant_reads_the_template_and_writes_its_database);
async fn an_upgrade_of_a_dedicated_tenant_reads_the_template_and_writes_its_database(
    backend: Backend,
) {
    let Some((app, eu1)) = spawn_placed(backend, Eu1::AppRole, |_| {}).await else {
        return;
    };
    fixture::seeded_template(&app.state, 2).await;
    let template = fixture::template(&app.state).await;
    let dedicated = ready_placed(&app, "dedicated", Some("eu1")).await;
    let main = app.owner_db().await;
    let named = Database::connect(&eu1.owner_url).await.expect("eu1");
    // The template changes one application's name.
    let source = fixture::ids_in(&main, "applications", template).await[0];
    let copy = forklift::fork::engine::target_id(dedicated, source);
    let before = application_name(&named, copy)
        .await
        .expect("the copy, in eu1");
    {
        use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
        let mut update = Query::update();
        update
            .table(Alias::new("applications"))
            .value(Alias::new("name"), "Renamed by the template")
            .and_where(Expr::col(Alias::new("id")).eq(source));
        main.execute(&update).await.expect("rename");
    }
    let diff = app
        .ok(
            &app.admin(),
            None,
            "query($t: String!) { templateDiff(tenant: $t) { classes { className \
                changedInTemplate { rowId fields { field from to } } } } }",
            json!({ "t": "dedicated" }),
        )
        .await;
    let text = diff.to_string();
    assert!(
        text.contains(&forklift::graphql::ids::encode("Application", copy))
            && text.contains("Renamed by the template")
            && text.contains(&before),
        "the diff reads the copy in eu1 against the template in main: {diff}"
    );
    let data = app
        .ok(
            &app.admin(),
            None,
            "mutation { upgradeTenant(input: { target: \"dedicated\" }) { id } }",
            json!({}),
        )
        .await;
    let run = app
        .wait_run(data["upgradeTenant"]["id"].as_str().expect("run id"))
        .await;
    assert_eq!(run["status"], "FINISHED", "{run}");
    assert_eq!(
        application_name(&named, copy).await.as_deref(),
        Some("Renamed by the template"),
        "applied in eu1"
    );
    assert_eq!(application_name(&main, copy).await, None, "nothing in main");
    assert_eq!(total(&placed_counts(&app, &main, dedicated).await), 0);
    let _ = named.close().await;
}

crate::both_backends!(a_dedicated_tenant_is_exported_and_purged_from_its_database);
async fn a_dedicated_tenant_is_exported_and_purged_from_its_database(backend: Backend) {
    let Some((app, eu1)) = spawn_placed(backend, Eu1::AppRole, |_| {}).await else {
        return;
    };
    fixture::seeded_template(&app.state, 2).await;
    let global = create_placed(&app, "dedicated", Some("eu1")).await;
    let dedicated = uuid_of(&global);
    let run = app.fork("dedicated").await;
    assert_eq!(run["status"], "FINISHED", "{run}");
    let main = app.owner_db().await;
    let named = Database::connect(&eu1.owner_url).await.expect("eu1");

    // The export reads the configuration and the lineage from eu1.
    let response = app
        .http
        .get(app.url("/tenants/dedicated/export"))
        .bearer_auth(app.admin())
        .send()
        .await
        .expect("export");
    assert_eq!(response.status().as_u16(), 200);
    let archive = response.bytes().await.expect("body").to_vec();
    let files: std::collections::BTreeMap<String, Vec<u8>> =
        forklift::offboarding::tar::read(&archive)
            .expect("a tar archive")
            .into_iter()
            .collect();
    let applications = count(&named, "applications", dedicated).await;
    let sheets = files
        .keys()
        .filter(|name| name.starts_with("sheets/") && name.ends_with(".yaml"))
        .count() as i64;
    assert_eq!(
        sheets,
        applications + 1,
        "one sheet per application, and the vocabulary"
    );
    let lineage: usize = files
        .iter()
        .filter(|(name, _)| name.starts_with("runtime/row_lineage/"))
        .map(|(_, text)| String::from_utf8_lossy(text).lines().count())
        .sum();
    assert_eq!(
        lineage as i64,
        count(&named, "row_lineage", dedicated).await
    );
    assert!(lineage > 0);

    // The purge deletes its rows in eu1 (and its copy of the catalog row there) and in main.
    let body = app
        .gql(
            &app.admin(),
            None,
            "mutation($id: ID!) { deleteTenant(id: $id, purge: true) }",
            json!({ "id": global }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let catalog = |db: &DatabaseConnection| {
        let db = db.clone();
        async move {
            use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
            let mut select = Query::select();
            select
                .column(Alias::new("id"))
                .from(Alias::new("tenants"))
                .and_where(Expr::col(Alias::new("id")).eq(dedicated));
            db.query_one(&select).await.expect("select").is_some()
        }
    };
    for _ in 0..300 {
        if !catalog(&main).await {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!catalog(&main).await, "purged from the catalog");
    assert!(!catalog(&named).await, "its copy in eu1 too");
    assert_eq!(total(&placed_counts(&app, &named, dedicated).await), 0);
    assert_eq!(count(&main, "organizations", dedicated).await, 0);

    // A plain delete (no members) takes its rows in eu1 with it too.
    let global = create_placed(&app, "brief", Some("eu1")).await;
    let brief = uuid_of(&global);
    let run = app.fork("brief").await;
    assert_eq!(run["status"], "FINISHED", "{run}");
    assert!(total(&placed_counts(&app, &named, brief).await) > 0);
    app.ok(
        &app.admin(),
        None,
        "mutation($id: ID!) { deleteTenant(id: $id) }",
        json!({ "id": global }),
    )
    .await;
    assert_eq!(total(&placed_counts(&app, &named, brief).await), 0);
    assert_eq!(count(&main, "organizations", brief).await, 0);
    let _ = named.close().await;
}

crate::both_backends!(a_fork_from_a_dedicated_tenant_reads_its_database);
async fn a_fork_from_a_dedicated_tenant_reads_its_database(backend: Backend) {
    let Some((app, eu1)) = spawn_placed(backend, Eu1::AppRole, |_| {}).await else {
        return;
    };
    fixture::seeded_template(&app.state, 2).await;
    let dedicated = ready_placed(&app, "dedicated", Some("eu1")).await;
    // Into a shared tenant, and into another tenant of eu1.
    let copy = uuid_of(&create_placed(&app, "copy", None).await);
    let sibling = uuid_of(&create_placed(&app, "sibling", Some("eu1")).await);
    for target in ["copy", "sibling"] {
        let data = app
            .ok(
                &app.admin(),
                None,
                "mutation($t: String!) { forkTenant(input: { target: $t, source: \"dedicated\" }) { id } }",
                json!({ "t": target }),
            )
            .await;
        let run = app
            .wait_run(data["forkTenant"]["id"].as_str().expect("run id"))
            .await;
        assert_eq!(run["status"], "FINISHED", "{target}: {run}");
    }
    let main = app.owner_db().await;
    let named = Database::connect(&eu1.owner_url).await.expect("eu1");
    for table in ["applications", "actions", "navigation_items"] {
        let source = count(&named, table, dedicated).await;
        assert!(source > 0, "{table}");
        assert_eq!(
            count(&main, table, copy).await,
            source,
            "{table}: copied into main"
        );
        assert_eq!(
            count(&named, table, copy).await,
            0,
            "{table}: nothing of it in eu1"
        );
        assert_eq!(
            count(&named, table, sibling).await,
            source,
            "{table}: into eu1"
        );
        assert_eq!(
            count(&main, table, sibling).await,
            0,
            "{table}: nothing in main"
        );
    }
    let _ = named.close().await;
}
