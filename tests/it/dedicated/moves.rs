//! `moveTenant` (issue #19, item 5): a tenant moves from the main database to a named one and
//! back with every placed row identical (compared row by row, by direct SQL), served from
//! exactly one database throughout, and a server killed at any step of a move leaves the tenant
//! served from one place and data intact; running the move again finishes it.

use std::time::Duration;

use forklift::{
    databases::{Source, TenantDatabases},
    placement::transfer::{placed_classes, tenant_rows},
    rows::Row,
};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};

use super::{Eu1, spawn_placed};
use crate::{
    fixture,
    harness::{Backend, TestApp, uuid_of},
    replicas::Child,
    wsclient,
};

/// Every placed row of `tenant` in `db`, table by table (parents first), in id order.
async fn placed_rows(
    app: &TestApp,
    db: &DatabaseConnection,
    tenant: uuid::Uuid,
) -> Vec<(String, Vec<Row>)> {
    let mut out = Vec::new();
    for class in placed_classes(&app.state.registry) {
        let rows = tenant_rows(db, class, tenant).await.expect("rows");
        out.push((class.table.clone(), rows));
    }
    out
}

/// True when `db`'s `tenants` has a row with this id.
async fn in_catalog(db: &DatabaseConnection, id: uuid::Uuid) -> bool {
    use sea_orm::EntityTrait;
    entity::tenants::Entity::find_by_id(id)
        .one(db)
        .await
        .expect("catalog")
        .is_some()
}

fn row_count(rows: &[(String, Vec<Row>)]) -> usize {
    rows.iter().map(|(_, r)| r.len()).sum()
}

/// Starts `moveTenant` at the server `base`; returns the run id.
async fn start_move_at(base: &str, token: &str, tenant: &str, database: Option<&str>) -> String {
    let response: Value = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({
            "query": "mutation($id: ID!, $db: String) { moveTenant(id: $id, database: $db) { id kind status } }",
            "variables": { "id": tenant, "db": database },
        }))
        .send()
        .await
        .expect("move request")
        .json()
        .await
        .expect("json");
    assert_eq!(response["data"]["moveTenant"]["kind"], "MOVE", "{response}");
    response["data"]["moveTenant"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{response}"))
        .to_string()
}

/// Moves `tenant` through `app` and waits for the run's end.
async fn move_tenant(app: &TestApp, tenant: &str, database: Option<&str>) -> Value {
    let base = app.url("").trim_end_matches('/').to_string();
    let run = start_move_at(&base, &app.admin(), tenant, database).await;
    app.wait_run(&run).await
}

/// Where the catalog places `tenant`, as an Admin reads it.
async fn placement_of(app: &TestApp, tenant: &str) -> String {
    let data = app
        .ok(
            &app.admin(),
            None,
            "query($id: ID!) { tenant(id: $id) { database provisioningState } }",
            json!({ "id": tenant }),
        )
        .await;
    data["tenant"]["database"]
        .as_str()
        .expect("database")
        .to_string()
}

/// How many applications a member reads through the API.
async fn applications_read(app: &TestApp, token: &str, tenant: &str) -> Value {
    app.gql(
        token,
        Some(tenant),
        "{ applications { totalCount } }",
        json!({}),
    )
    .await
}

crate::both_backends!(a_tenant_moves_to_a_named_database_and_back_with_every_row_identical);
async fn a_tenant_moves_to_a_named_database_and_back_with_every_row_identical(backend: Backend) {
    let Some((app, eu1)) = spawn_placed(backend, Eu1::AppRole, |_| {}).await else {
        return;
    };
    fixture::seeded_template(&app.state, 2).await;
    let id = uuid_of(&app.ready_tenant("acme").await);
    let other = uuid_of(&app.ready_tenant("other").await);
    app.add_member("acme", "olga@acme.test", "OWNER").await;
    let olga = app.token("olga@acme.test", None, false, &[]);
    let main = app.owner_db().await;
    let named = Database::connect(&eu1.owner_url).await.expect("eu1");
    let before = placed_rows(&app, &main, id).await;
    let other_before = placed_rows(&app, &main, other).await;
    assert!(row_count(&before) > 20, "a forked tenant has rows to move");

    // Shared → eu1.
    let run = move_tenant(&app, "acme", Some("eu1")).await;
    assert_eq!(run["status"], "FINISHED", "{run}");
    let copied: i64 = run["counts"]
        .as_array()
        .expect("counts")
        .iter()
        .map(|c| c["created"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(copied as usize, row_count(&before), "{run}");
    assert_eq!(placement_of(&app, "acme").await, "eu1");
    assert_eq!(
        placed_rows(&app, &named, id).await,
        before,
        "identical in eu1"
    );
    assert_eq!(
        row_count(&placed_rows(&app, &main, id).await),
        0,
        "none left in main"
    );
    assert_eq!(
        placed_rows(&app, &main, other).await,
        other_before,
        "the other tenant untouched"
    );
    // The run, to an Admin: where it went, and its stream (replayed after the end).
    let data = app
        .ok(
            &app.admin(),
            None,
            "query($id: ID!) { forkRun(id: $id) { kind fromDatabase toDatabase target { slug } } }",
            json!({ "id": run["id"] }),
        )
        .await;
    assert_eq!(
        data["forkRun"],
        json!({ "kind": "MOVE", "fromDatabase": "main", "toDatabase": "eu1", "target": { "slug": "acme" } })
    );
    let run_id = run["id"].as_str().expect("id");
    let events =
        wsclient::fork_events(&app.ws_url(), "graphql-transport-ws", &app.admin(), run_id).await;
    let phases: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "PHASE_STARTED")
        .map(|e| e["phase"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        phases,
        ["MOVE_COPY", "MOVE_SWITCH", "MOVE_CLEANUP"],
        "{events:#?}"
    );
    assert_eq!(
        events.last().map(|e| e["kind"].clone()),
        Some(json!("RUN_FINISHED"))
    );
    // The database names are for platform admins: the tenant's Owner sees neither.
    app.refused(
        &olga,
        Some("acme"),
        "query($id: ID!) { forkRun(id: $id) { toDatabase } }",
        json!({ "id": run["id"] }),
        "FORBIDDEN",
    )
    .await;
    assert!(
        !events.iter().any(|e| e.to_string().contains("eu1")),
        "{events:#?}"
    );

    // Served from eu1: reads and writes.
    let read = applications_read(&app, &olga, "acme").await;
    assert_eq!(
        read["data"]["applications"]["totalCount"],
        before[0].1.len() as i64,
        "{read}"
    );
    let created = app
        .ok(
            &olga,
            Some("acme"),
            "mutation { createApplication(input: { code: \"moved\", name: \"Moved\", routeNamespace: \"moved\" }) { id } }",
            json!({}),
        )
        .await;
    let moved_app = uuid_of(created["createApplication"]["id"].as_str().expect("id"));
    assert!(
        fixture::ids_in(&named, "applications", id)
            .await
            .contains(&moved_app)
    );
    let in_eu1 = placed_rows(&app, &named, id).await;

    // Moving where it already is changes nothing.
    let run = move_tenant(&app, "acme", Some("eu1")).await;
    assert_eq!(run["status"], "FINISHED", "{run}");
    assert_eq!(placed_rows(&app, &named, id).await, in_eu1);

    // eu1 → shared, with the application written there.
    let run = move_tenant(&app, "acme", None).await;
    assert_eq!(run["status"], "FINISHED", "{run}");
    assert_eq!(placement_of(&app, "acme").await, "main");
    assert_eq!(
        placed_rows(&app, &main, id).await,
        in_eu1,
        "identical in main"
    );
    assert_eq!(
        row_count(&placed_rows(&app, &named, id).await),
        0,
        "none left in eu1"
    );
    assert!(
        !in_catalog(&named, id).await,
        "eu1's copy of the catalog row went too"
    );
    let read = applications_read(&app, &olga, "acme").await;
    assert_eq!(
        read["data"]["applications"]["totalCount"],
        in_eu1[0].1.len() as i64,
        "{read}"
    );

    // Refusals: unknown database, the template, a non-admin.
    let body = app
        .refused(
            &app.admin(),
            None,
            "mutation { moveTenant(id: \"acme\", database: \"eu9\") { id } }",
            json!({}),
            "BAD_USER_INPUT",
        )
        .await;
    assert!(!body.to_string().contains("://"), "{body}");
    app.refused(
        &app.admin(),
        None,
        "mutation { moveTenant(id: \"template\", database: \"eu1\") { id } }",
        json!({}),
        "PRECONDITION_FAILED",
    )
    .await;
    app.refused(
        &olga,
        Some("acme"),
        "mutation { moveTenant(id: \"acme\", database: \"eu1\") { id } }",
        json!({}),
        "FORBIDDEN",
    )
    .await;
    assert_eq!(placement_of(&app, "acme").await, "main");
    let _ = named.close().await;
}

/// The points a move can be killed at, and the phase that has started when the run reaches it.
const KILL_POINTS: [(&str, &str); 5] = [
    ("move_copy", "MOVE_COPY"),
    ("move_copied", "MOVE_COPY"),
    ("move_switch", "MOVE_SWITCH"),
    ("move_verified", "MOVE_SWITCH"),
    ("move_cleanup", "MOVE_CLEANUP"),
];

/// The move that is `RUNNING` now: its id.
async fn running_move(app: &TestApp) -> String {
    for _ in 0..400 {
        let data = app
            .ok(
                &app.admin(),
                None,
                "{ forkRuns(first: 1, filter: { kind: MOVE, status: RUNNING }) { nodes { id } } }",
                json!({}),
            )
            .await;
        if let Some(id) = data["forkRuns"]["nodes"][0]["id"].as_str() {
            return id.to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no move is running");
}

/// True once `run`'s `phase` started (its stored events, by direct SQL).
async fn phase_started(db: &DatabaseConnection, run: uuid::Uuid, phase: &str) -> bool {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => {
            "SELECT COUNT(*) FROM fork_events WHERE run_id = $1 AND kind = 'PHASE_STARTED' AND phase = $2"
        }
        _ => {
            "SELECT COUNT(*) FROM fork_events WHERE run_id = ? AND kind = 'PHASE_STARTED' AND phase = ?"
        }
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [run.into(), phase.into()],
        ))
        .await
        .expect("events")
        .expect("one row");
    row.try_get_by_index::<i64>(0).expect("count") > 0
}

crate::both_backends!(a_move_killed_at_any_step_leaves_one_home_and_a_rerun_finishes_it);
async fn a_move_killed_at_any_step_leaves_one_home_and_a_rerun_finishes_it(backend: Backend) {
    let Some((app, eu1)) = spawn_placed(backend, Eu1::AppRole, |c| {
        c.fork_lease = Duration::from_secs(2)
    })
    .await
    else {
        return;
    };
    fixture::seeded_template(&app.state, 2).await;
    let id = uuid_of(&app.ready_tenant("acme").await);
    app.add_member("acme", "olga@acme.test", "OWNER").await;
    let olga = app.token("olga@acme.test", None, false, &[]);
    let admin = app.admin();
    let main = app.owner_db().await;
    let named = Database::connect(&eu1.owner_url).await.expect("eu1");
    let original = placed_rows(&app, &main, id).await;
    let databases = format!("eu1={}", eu1.url);
    let with_eu1 = |c: &mut forklift::config::Config| {
        c.fork_lease = Duration::from_secs(2);
        c.tenant_databases = TenantDatabases::parse(&databases, Source::Variable, &c.database_url)
            .expect("valid entries");
    };
    // On SQLite each kill is followed by a fresh replica (only a start-up sweeps there); on
    // PostgreSQL the first server's sweep finds the run once its lease runs out. The first
    // server owns the databases and stays up.
    let mut replica: Option<TestApp> = None;
    for (point, phase) in KILL_POINTS {
        for (from, to) in [(None, Some("eu1")), (Some("eu1"), None)] {
            let label = format!(
                "{point}, {} → {}",
                from.unwrap_or("main"),
                to.unwrap_or("main")
            );
            let current = replica.as_ref().unwrap_or(&app);
            // A real server process that holds the move at `point`, then is killed there.
            let failpoint = format!("pause:{point}:60000");
            let mut child = Child::start(
                current,
                &[
                    ("FORKLIFT_FORK_LEASE_SECS", "2"),
                    ("FORKLIFT_FORK_FAILPOINT", &failpoint),
                    ("FORKLIFT_TENANT_DATABASES", &databases),
                ],
            )
            .await;
            // Not awaited: on SQLite the request's audit entry may wait for a write lock the
            // held move keeps.
            let request = {
                let (base, admin) = (child.base.clone(), admin.clone());
                tokio::spawn(async move { start_move_at(&base, &admin, "acme", to).await })
            };
            let run = running_move(current).await;
            let run_id = uuid_of(&run);
            let mut reached = false;
            for _ in 0..400 {
                if phase_started(&main, run_id, phase).await {
                    reached = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            if !reached {
                let data = current
                    .ok(
                        &admin,
                        None,
                        "query($id: ID!) { forkRun(id: $id) { status phase error failedPhase } }",
                        json!({ "id": run }),
                    )
                    .await;
                panic!("{label}: the move did not reach {phase}: {data}");
            }
            // What follows the phase's start (a copy, a verification) takes milliseconds.
            tokio::time::sleep(Duration::from_millis(700)).await;
            child.process.kill().expect("SIGKILL");
            let _ = child.process.wait();
            request.abort();
            drop(child);

            // After a restart (SQLite: the start-up sweep) or the lease (PostgreSQL), the run is
            // abandoned; the tenant is served from the one database the catalog names, with
            // every row as before.
            if backend == Backend::Sqlite {
                replica = Some(app.replica(with_eu1).await);
            }
            let current = replica.as_ref().unwrap_or(&app);
            let status = current.wait_run_status(&run, "ABANDONED").await;
            assert_eq!(status, "ABANDONED", "{label}");
            let home = placement_of(current, "acme").await;
            let switched = point == "move_cleanup";
            let expected_home = if switched { to } else { from }.unwrap_or("main");
            assert_eq!(home, expected_home, "{label}");
            let served_from = if home == "main" { &main } else { &named };
            assert_eq!(
                placed_rows(&app, served_from, id).await,
                original,
                "{label}: intact where served"
            );
            // Served again once the sweep has put the provisioning state back.
            let mut read = Value::Null;
            for _ in 0..100 {
                read = applications_read(current, &olga, "acme").await;
                if read["data"]["applications"]["totalCount"].is_number() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(
                read["data"]["applications"]["totalCount"],
                original[0].1.len() as i64,
                "{label}: served: {read}"
            );

            // Running the move again finishes it.
            let finished = move_tenant(current, "acme", to).await;
            assert_eq!(finished["status"], "FINISHED", "{label}: {finished}");
            assert_eq!(
                placement_of(current, "acme").await,
                to.unwrap_or("main"),
                "{label}"
            );
            let (there, left) = match to {
                Some(_) => (&named, &main),
                None => (&main, &named),
            };
            assert_eq!(
                placed_rows(&app, there, id).await,
                original,
                "{label}: identical"
            );
            assert_eq!(
                row_count(&placed_rows(&app, left, id).await),
                0,
                "{label}: old copy removed"
            );
        }
    }
    let _ = named.close().await;
}

crate::both_backends!(an_old_copy_a_move_could_not_remove_goes_with_the_purge);
async fn an_old_copy_a_move_could_not_remove_goes_with_the_purge(backend: Backend) {
    // A move whose cleanup fails (the failpoint acts there) still finishes: the tenant lives in
    // eu1, and the event says one old copy was left, in main.
    let Some((app, eu1)) = spawn_placed(backend, Eu1::AppRole, |c| {
        c.fork_failpoint = Some("move_cleanup".into())
    })
    .await
    else {
        return;
    };
    fixture::seeded_template(&app.state, 1).await;
    let global = app.ready_tenant("acme").await;
    let id = uuid_of(&global);
    let main = app.owner_db().await;
    let named = Database::connect(&eu1.owner_url).await.expect("eu1");
    let before = placed_rows(&app, &main, id).await;
    let run = move_tenant(&app, "acme", Some("eu1")).await;
    assert_eq!(run["status"], "FINISHED", "{run}");
    assert_eq!(placement_of(&app, "acme").await, "eu1");
    assert_eq!(placed_rows(&app, &named, id).await, before);
    assert_eq!(
        placed_rows(&app, &main, id).await,
        before,
        "the old copy was left"
    );
    let events = wsclient::fork_events(
        &app.ws_url(),
        "graphql-transport-ws",
        &app.admin(),
        run["id"].as_str().expect("id"),
    )
    .await;
    let cleanup = events
        .iter()
        .find(|e| e["kind"] == "PHASE_FINISHED" && e["phase"] == "MOVE_CLEANUP")
        .expect("the cleanup phase finished");
    assert_eq!(cleanup["detail"]["left"], 1, "{cleanup}");

    // The purge removes the tenant from eu1 and the copy left in main.
    let body = app
        .gql(
            &app.admin(),
            None,
            "mutation($id: ID!) { deleteTenant(id: $id, purge: true) }",
            json!({ "id": global }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    for _ in 0..300 {
        if !in_catalog(&main, id).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!in_catalog(&main, id).await, "purged");
    assert_eq!(
        row_count(&placed_rows(&app, &named, id).await),
        0,
        "none in eu1"
    );
    assert_eq!(
        row_count(&placed_rows(&app, &main, id).await),
        0,
        "none left in main"
    );
    let _ = named.close().await;
}
