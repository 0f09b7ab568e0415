//! Dedicated tenants (issue #19, items 2–4): a tenant placed in a named database has its
//! configuration, derived rows and lineage there only (checked with direct SQL on both
//! databases), is isolated from a shared tenant through the API in both directions, is forked
//! atomically there (a failure in any phase leaves nothing in either database), and a named
//! database that is down refuses only its tenants (`SERVICE_UNAVAILABLE`). Both backends: on
//! PostgreSQL the named database is a second database of the local server, on SQLite another
//! file.

use forklift::{
    databases::{Source, TenantDatabases},
    placement::is_placed,
    registry::Registry,
};
use sea_orm::{Database, DatabaseConnection};
use serde_json::json;

use crate::{
    fixture,
    harness::{Backend, TestApp, TestDb, code, uuid_of},
};

/// How the server reaches `eu1`.
#[derive(Clone, Copy, PartialEq)]
enum Eu1 {
    /// As the owner (on PostgreSQL the administrator): the server migrates it on first use.
    Owner,
    /// As the application role, which row-level security binds (`harness::APP_ROLE`), after
    /// its owner migrated it (`forklift migrate` would).
    AppRole,
}

/// A server whose named databases are `eu1` (a fresh database, reached as `how` says) and
/// `down` (nothing answers there), with `adjust` applied to its configuration.
async fn spawn_placed(
    backend: Backend,
    how: Eu1,
    adjust: impl FnOnce(&mut forklift::config::Config),
) -> Option<(TestApp, TestDb)> {
    use migration::MigratorTrait;
    let eu1 = TestDb::create(backend).await?;
    let url = match how {
        Eu1::Owner => eu1.owner_url.clone(),
        Eu1::AppRole => {
            let owner = Database::connect(&eu1.owner_url).await.expect("eu1 owner");
            migration::Migrator::up(&owner, None)
                .await
                .expect("migrate eu1");
            let _ = owner.close().await;
            eu1.url.clone()
        }
    };
    let down = match backend {
        Backend::Postgres => "postgres://forklift:hunter2secret@127.0.0.1:1/nowhere".to_string(),
        Backend::Sqlite => "sqlite:///nonexistent-forklift-dir/deeper/down.db?mode=rwc".into(),
    };
    let app = TestApp::spawn_with(
        backend,
        |config| {
            let list = format!("eu1={url},down={down}");
            config.tenant_databases =
                TenantDatabases::parse(&list, Source::Variable, &config.database_url)
                    .expect("valid entries");
            adjust(config);
        },
        Registry::default(),
    )
    .await?;
    Some((app, eu1))
}

/// Creates an ACTIVE tenant placed in `database` (none: the main one); returns its id.
async fn create_placed(app: &TestApp, slug: &str, database: Option<&str>) -> String {
    let data = app
        .ok(
            &app.admin(),
            None,
            "mutation($input: CreateTenantInput!) { createTenant(input: $input) { id database } }",
            json!({ "input": { "name": format!("Tenant {slug}"), "slug": slug,
                "status": "ACTIVE", "database": database } }),
        )
        .await;
    assert_eq!(
        data["createTenant"]["database"],
        database.unwrap_or("main"),
        "{data}"
    );
    data["createTenant"]["id"]
        .as_str()
        .expect("tenant id")
        .to_string()
}

/// Creates, forks and waits: a tenant ready for its members, placed in `database`.
async fn ready_placed(app: &TestApp, slug: &str, database: Option<&str>) -> uuid::Uuid {
    let id = create_placed(app, slug, database).await;
    let run = app.fork(slug).await;
    assert_eq!(run["status"], "FINISHED", "fork of {slug}: {run}");
    uuid_of(&id)
}

/// How many rows of `table` `tenant` owns in `db`, by direct SQL.
async fn count(db: &DatabaseConnection, table: &str, tenant: uuid::Uuid) -> i64 {
    fixture::count(db, table, tenant).await
}

/// Every placed table's row count of `tenant` in `db`, by table.
async fn placed_counts(
    app: &TestApp,
    db: &DatabaseConnection,
    tenant: uuid::Uuid,
) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for class in app.state.registry.classes().iter().filter(|c| is_placed(c)) {
        out.push((class.table.clone(), count(db, &class.table, tenant).await));
    }
    out
}

fn total(counts: &[(String, i64)]) -> i64 {
    counts.iter().map(|(_, n)| n).sum()
}

crate::both_backends!(a_dedicated_tenant_s_rows_live_only_in_its_database);
async fn a_dedicated_tenant_s_rows_live_only_in_its_database(backend: Backend) {
    let Some((app, eu1)) = spawn_placed(backend, Eu1::Owner, |_| {}).await else {
        return;
    };
    fixture::seeded_template(&app.state, 2).await;
    let dedicated = ready_placed(&app, "dedicated", Some("eu1")).await;
    let shared = ready_placed(&app, "shared", None).await;
    let main = app.owner_db().await;
    let named = Database::connect(&eu1.owner_url).await.expect("eu1");

    // Forked rows, derived rows and lineage: the dedicated tenant's only in eu1, the shared
    // tenant's only in the main database.
    for table in [
        "applications",
        "actions",
        "navigation_items",
        "geo_layers",
        "row_lineage",
    ] {
        let in_named = count(&named, table, dedicated).await;
        assert!(
            in_named > 0,
            "{table}: the dedicated tenant's rows are in eu1"
        );
        assert_eq!(
            count(&main, table, dedicated).await,
            0,
            "{table}: none in main"
        );
        assert_eq!(
            count(&main, table, shared).await,
            in_named,
            "{table}: the shared tenant got as many, in main"
        );
        assert_eq!(
            count(&named, table, shared).await,
            0,
            "{table}: none in eu1"
        );
    }
    assert_eq!(total(&placed_counts(&app, &main, dedicated).await), 0);
    // The runtime rows are there too (the root organization); the control plane stays in the
    // main database (the run records).
    assert_eq!(count(&named, "organizations", dedicated).await, 1);
    assert_eq!(count(&main, "organizations", dedicated).await, 0);
    assert_eq!(count(&main, "fork_runs", dedicated).await, 1);
    assert_eq!(count(&named, "fork_runs", dedicated).await, 0);

    // The placement, to an Admin.
    let data = app
        .ok(
            &app.admin(),
            None,
            "query($a: ID!, $b: ID!) { a: tenant(id: $a) { database } b: tenant(id: $b) { database } }",
            json!({ "a": "dedicated", "b": "shared" }),
        )
        .await;
    assert_eq!(
        data,
        json!({ "a": { "database": "eu1" }, "b": { "database": "main" } })
    );

    // Through the API each tenant sees its own rows, wherever they live.
    app.add_member("dedicated", "olga@dedicated.test", "OWNER")
        .await;
    let olga = app.token("olga@dedicated.test", None, false, &[]);
    let data = app
        .ok(
            &olga,
            Some("dedicated"),
            "{ applications { totalCount nodes { actions { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["applications"]["totalCount"],
        count(&named, "applications", dedicated).await,
        "{data}"
    );
    let actions: usize = data["applications"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["actions"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(actions as i64, count(&named, "actions", dedicated).await);
    // The placement is for platform admins: an Owner reaching the tenant through its fork run
    // is refused the field.
    let body = app
        .gql(
            &olga,
            Some("dedicated"),
            "{ forkRuns(first: 1) { nodes { target { database } } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    assert!(!body.to_string().contains("eu1"), "{body}");
    // The server migrated the fresh eu1 when it first opened it.
    {
        use migration::MigratorTrait;
        let applied = migration::Migrator::get_applied_migrations(&named)
            .await
            .expect("applied");
        assert_eq!(applied.len(), migration::Migrator::migrations().len());
    }
    // An idle pool is closed, and the next request opens a new one.
    assert_eq!(app.state.tenant_pools.open_pools().await, 1);
    assert_eq!(
        app.state
            .tenant_pools
            .close_idle(std::time::Duration::ZERO)
            .await,
        1
    );
    assert_eq!(app.state.tenant_pools.open_pools().await, 0);
    // Writes go there too, and come back.
    let created = app
        .ok(
            &olga,
            Some("dedicated"),
            "mutation { createApplication(input: { code: \"own\", name: \"Own\", routeNamespace: \"own\" }) { id code } }",
            json!({}),
        )
        .await;
    let own = uuid_of(created["createApplication"]["id"].as_str().expect("id"));
    assert!(
        fixture::ids_in(&named, "applications", dedicated)
            .await
            .contains(&own)
    );
    assert!(
        !fixture::ids_in(&main, "applications", dedicated)
            .await
            .contains(&own)
    );
    // Not a placement the admin may make up: the known ones are named, no URL is shown.
    let body = app
        .gql(
            &app.admin(),
            None,
            "mutation { createTenant(input: { name: \"X\", slug: \"x\", database: \"eu9\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("main, eu1, down"), "{message}");
    assert!(!message.contains("://"), "{message}");
    let _ = named.close().await;
}

crate::both_backends!(a_shared_and_a_dedicated_tenant_are_isolated_both_ways);
async fn a_shared_and_a_dedicated_tenant_are_isolated_both_ways(backend: Backend) {
    let Some((app, eu1)) = spawn_placed(backend, Eu1::AppRole, |_| {}).await else {
        return;
    };
    fixture::seeded_template(&app.state, 2).await;
    let dedicated = ready_placed(&app, "dedicated", Some("eu1")).await;
    let shared = ready_placed(&app, "shared", None).await;
    app.add_member("dedicated", "olga@dedicated.test", "OWNER")
        .await;
    app.add_member("shared", "mallory@shared.test", "OWNER")
        .await;
    let olga = app.token("olga@dedicated.test", None, false, &[]);
    let mallory = app.token("mallory@shared.test", None, false, &[]);
    let main = app.owner_db().await;
    let named = Database::connect(&eu1.owner_url).await.expect("eu1");
    let before = (
        placed_counts(&app, &named, dedicated).await,
        placed_counts(&app, &main, shared).await,
    );

    if backend == Backend::Postgres {
        // Row-level security binds the server's role in eu1: naming no tenant, it sees nothing.
        let as_app = Database::connect(&eu1.url)
            .await
            .expect("eu1 as the app role");
        assert_eq!(count(&as_app, "applications", dedicated).await, 0);
        assert!(count(&named, "applications", dedicated).await > 0);
        let _ = as_app.close().await;
    }
    let covered = crate::guard::isolation_matrix(&app, &mallory, "shared", dedicated, &named).await;
    assert!(
        covered >= 15,
        "shared → dedicated covered {covered} classes"
    );
    let covered = crate::guard::isolation_matrix(&app, &olga, "dedicated", shared, &main).await;
    assert!(
        covered >= 15,
        "dedicated → shared covered {covered} classes"
    );

    // A token of one tenant naming the other is refused by the guard.
    let body = app
        .gql(
            &mallory,
            Some("dedicated"),
            "{ applications { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("CROSS_TENANT_DENIED"),
        "{body}"
    );
    // Each reads exactly its own rows.
    for (token, slug, db, tenant) in [
        (&olga, "dedicated", &named, dedicated),
        (&mallory, "shared", &main, shared),
    ] {
        let data = app
            .ok(
                token,
                Some(slug),
                "{ applications { totalCount } actions { totalCount } }",
                json!({}),
            )
            .await;
        assert_eq!(
            data["applications"]["totalCount"],
            count(db, "applications", tenant).await
        );
        assert_eq!(
            data["actions"]["totalCount"],
            count(db, "actions", tenant).await
        );
    }
    assert_eq!(
        before,
        (
            placed_counts(&app, &named, dedicated).await,
            placed_counts(&app, &main, shared).await,
        ),
        "neither tenant's rows changed"
    );
    let _ = named.close().await;
}

mod lifecycle;
mod moves;
mod runtime;
