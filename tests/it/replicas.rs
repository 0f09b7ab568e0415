//! Issue #7: several replicas on one PostgreSQL — progress across replicas through
//! `LISTEN/NOTIFY` (surviving a killed listener connection), forks serialized across replicas,
//! and a replica killed with SIGKILL mid-fork whose run another replica marks abandoned.
//!
//! These are PostgreSQL-only by nature (SQLite is one process); they are skipped like every
//! PostgreSQL test when PostgreSQL is unreachable and not required.

use std::{process::Stdio, time::Duration};

use forklift::registry::Registry;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::{
    fixture,
    harness::{Backend, TEST_SECRET, TestApp, uuid_of},
    wsclient,
};

async fn counts(app: &TestApp, tenant: uuid::Uuid) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for class in app.state.registry.copied_classes() {
        out.push((
            class.table.clone(),
            fixture::count(&app.state.db, &class.table, tenant).await,
        ));
    }
    out
}

async fn kill_listeners(app: &TestApp) -> u64 {
    let sql = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{}' AND datname = current_database()",
        forklift::fork::listener::APPLICATION_NAME
    );
    let rows = app
        .state
        .db
        .query_all_raw(Statement::from_string(
            app.state.db.get_database_backend(),
            sql,
        ))
        .await
        .expect("terminate listeners");
    rows.len() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_on_one_replica_sees_every_event_of_a_fork_on_another() {
    // Replica A holds its forks for a moment after phase 1, so the run is surely live while
    // replica B's listener connection is killed.
    let Some(a) = TestApp::spawn_with(
        Backend::Postgres,
        |c| c.fork_failpoint = Some("pause:after_phase:1:1500".into()),
        Registry::default(),
    )
    .await
    else {
        return;
    };
    let b = a.replica(|_| {}).await;
    fixture::seeded_template(&a.state, 3).await;
    a.create_tenant("acme").await;
    let run = a.start_fork("acme").await;
    let url = b.ws_url();
    let token = b.admin();
    let follower = {
        let run = run.clone();
        tokio::spawn(async move {
            wsclient::fork_events(&url, "graphql-transport-ws", &token, &run).await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        kill_listeners(&a).await >= 1,
        "the listener connections were found and killed"
    );
    let events = tokio::time::timeout(Duration::from_secs(30), follower)
        .await
        .expect("stream ends")
        .expect("task");
    wsclient::assert_complete_run(&events, "RUN_FINISHED");
    // The same events, in the same order, as the replica that ran the fork has.
    let local = wsclient::fork_events(&a.ws_url(), "graphql-transport-ws", &a.admin(), &run).await;
    assert_eq!(events, local);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_forks_on_two_replicas_make_one_set_of_rows() {
    let Some(a) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let b = a.replica(|_| {}).await;
    let (template, _, _) = fixture::seeded_template(&a.state, 3).await;
    let tenant = uuid_of(&a.create_tenant("acme").await);
    let (ra, rb) = tokio::join!(a.start_fork("acme"), b.start_fork("acme"));
    let (ra, rb) = tokio::join!(a.wait_run(&ra), b.wait_run(&rb));
    assert_eq!(ra["status"], "FINISHED", "{ra}");
    assert_eq!(rb["status"], "FINISHED", "{rb}");
    assert_eq!(
        counts(&a, tenant).await,
        counts(&a, template).await,
        "one set of rows"
    );
}

/// A free local port (bound, then released for the child process).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_mid_fork_leaves_no_rows_and_its_run_is_abandoned() {
    let Some(survivor) = TestApp::spawn_with(
        Backend::Postgres,
        |c| c.fork_lease = Duration::from_secs(2),
        Registry::default(),
    )
    .await
    else {
        return;
    };
    let (template, _, _) = fixture::seeded_template(&survivor.state, 3).await;
    let tenant = uuid_of(&survivor.create_tenant("acme").await);

    // A real server process that will hold its fork in phase 2, then be killed.
    let port = free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_forklift"))
        .arg("serve")
        .env("DATABASE_URL", survivor.database_url())
        .env("FORKLIFT_MIGRATION_DATABASE_URL", survivor.owner_url())
        .env("FORKLIFT_ADDR", format!("127.0.0.1:{port}"))
        .env("FORKLIFT_JWT_SECRET", TEST_SECRET)
        .env("FORKLIFT_FORK_LEASE_SECS", "2")
        .env("FORKLIFT_FORK_FAILPOINT", "pause:mid_phase:2:60000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server binary");
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..200 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the child server came up");
    let response: serde_json::Value = http
        .post(format!("{base}/graphql"))
        .bearer_auth(survivor.admin())
        .json(&json!({ "query": "mutation { forkTenant(input: { target: \"acme\" }) { id } }" }))
        .send()
        .await
        .expect("fork request")
        .json()
        .await
        .expect("json");
    let run = response["data"]["forkTenant"]["id"]
        .as_str()
        .expect("run id")
        .to_string();
    // Wait until the run is in phase 2, then kill the process holding it.
    let admin = survivor.admin();
    for _ in 0..200 {
        let data = survivor
            .ok(
                &admin,
                None,
                "query($id: ID!) { forkRun(id: $id) { phase } }",
                json!({ "id": run }),
            )
            .await;
        if data["forkRun"]["phase"] == "TENANT_WIDE"
            || fixture::count_all(&survivor.state.db, "fork_events").await >= 4
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();

    // The survivor's lease sweep marks the run abandoned; the target has no partial rows.
    let mut status = String::new();
    for _ in 0..200 {
        let data = survivor
            .ok(
                &admin,
                None,
                "query($id: ID!) { forkRun(id: $id) { status } }",
                json!({ "id": run }),
            )
            .await;
        status = data["forkRun"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if status == "ABANDONED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "ABANDONED");
    assert!(
        counts(&survivor, tenant).await.iter().all(|(_, n)| *n == 0),
        "no partial rows: {:?}",
        counts(&survivor, tenant).await
    );
    // A re-run gives the same result as a clean fork.
    let again = survivor.fork("acme").await;
    assert_eq!(again["status"], "FINISHED", "{again}");
    assert_eq!(
        counts(&survivor, tenant).await,
        counts(&survivor, template).await
    );
}

crate::both_backends! {
    async fn sigterm_closes_sockets_with_1001_and_rolls_back_a_cut_fork(backend) {
        let Some(app) = TestApp::spawn(backend).await else { return };
        fixture::seeded_template(&app.state, 3).await;
        let tenant = uuid_of(&app.create_tenant("acme").await);
        let port = free_port();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_forklift"));
        if app.owner_url() != app.database_url() {
            command.env("FORKLIFT_MIGRATION_DATABASE_URL", app.owner_url());
        }
        let mut child = command
            .arg("serve")
            .env("DATABASE_URL", app.database_url())
            .env("FORKLIFT_ADDR", format!("127.0.0.1:{port}"))
            .env("FORKLIFT_JWT_SECRET", TEST_SECRET)
            .env("FORKLIFT_SHUTDOWN_GRACE_SECS", "1")
            .env("FORKLIFT_FORK_FAILPOINT", "pause:after_phase:1:2500")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server binary");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            if http.get(format!("{base}/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut socket = wsclient::connect(&format!("ws://127.0.0.1:{port}/graphql/ws"), "graphql-transport-ws", &app.admin()).await;
        let response: serde_json::Value = http
            .post(format!("{base}/graphql"))
            .bearer_auth(app.admin())
            .json(&json!({ "query": "mutation { forkTenant(input: { target: \"acme\" }) { id } }" }))
            .send()
            .await
            .expect("fork request")
            .json()
            .await
            .expect("json");
        let run = response["data"]["forkTenant"]["id"].as_str().expect("run id").to_string();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = std::time::Instant::now();
        let pid = child.id().to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
        match wsclient::next(&mut socket).await {
            wsclient::Frame::Closed(code, _) => assert_eq!(code, 1001, "WebSockets close with 1001"),
            wsclient::Frame::Json(m) => panic!("expected a close, got {m}"),
        }
        let status = tokio::task::spawn_blocking(move || child.wait()).await.expect("join").expect("wait");
        assert!(started.elapsed() < Duration::from_secs(15), "the process stopped within the grace period");
        assert!(status.success(), "a clean exit: {status:?}");
        let data = app.ok(&app.admin(), None, "query($id: ID!) { forkRun(id: $id) { status error } }", json!({ "id": run })).await;
        assert_eq!(data["forkRun"]["status"], "ROLLED_BACK", "{data}");
        assert!(data["forkRun"]["error"].as_str().unwrap_or("").contains("shut down"), "{data}");
        assert!(counts(&app, tenant).await.iter().all(|(_, n)| *n == 0), "no partial rows");
    }
}
