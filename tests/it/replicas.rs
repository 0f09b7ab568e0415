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
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE \
            application_name = '{}' AND datname = current_database()",
        forklift::fork::listener::APPLICATION_NAME
    );
    // As the owner (the administrator here): the listeners connect as the application role.
    let owner = app.owner_db().await;
    let rows = owner
        .query_all_raw(Statement::from_string(owner.get_database_backend(), sql))
        .await
        .expect("terminate listeners");
    let _ = owner.close().await;
    rows.len() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_on_one_replica_sees_every_event_of_a_fork_on_another() {
    // Replica A is a separate server process that holds its forks for a moment after phase 1,
    // so the run is surely live while replica B's listener connection is killed.
    let Some(b) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    fixture::seeded_template(&b.state, 3).await;
    b.create_tenant("acme").await;
    let a = Child::start(
        &b,
        &[("FORKLIFT_FORK_FAILPOINT", "pause:after_phase:1:1500")],
    )
    .await;
    let token = b.admin();
    let run = a.start_fork(&token, "acme").await;
    let follower = {
        let (run, url, token) = (run.clone(), b.ws_url(), token.clone());
        tokio::spawn(async move {
            wsclient::fork_events(&url, "graphql-transport-ws", &token, &run).await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        kill_listeners(&b).await >= 1,
        "the listener connections were found and killed"
    );
    let events = tokio::time::timeout(Duration::from_secs(30), follower)
        .await
        .expect("stream ends")
        .expect("task");
    wsclient::assert_complete_run(&events, "RUN_FINISHED");
    // The same events, in the same order, as the process that ran the fork has.
    let local = wsclient::fork_events(&a.ws_url(), "graphql-transport-ws", &token, &run).await;
    assert_eq!(events, local);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_forks_on_two_replicas_make_one_set_of_rows() {
    let Some(a) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let b = Child::start(&a, &[]).await;
    let (template, _, _) = fixture::seeded_template(&a.state, 3).await;
    let tenant = uuid_of(&a.create_tenant("acme").await);
    let token = a.admin();
    let (ra, rb) = tokio::join!(a.start_fork("acme"), b.start_fork(&token, "acme"));
    let (ra, rb) = tokio::join!(a.wait_run(&ra), a.wait_run(&rb));
    assert_eq!(ra["status"], "FINISHED", "{ra}");
    assert_eq!(rb["status"], "FINISHED", "{rb}");
    assert_eq!(
        counts(&a, tenant).await,
        counts(&a, template).await,
        "one set of rows"
    );
}

/// A real server process over the same database as `app` (a replica), with extra environment.
pub(crate) struct Child {
    pub(crate) process: std::process::Child,
    pub(crate) base: String,
}

/// The newest run of `kind` (`FORK`, `UPGRADE`), once it is `RUNNING`: its id.
pub(crate) async fn running_run(app: &TestApp, kind: &str) -> String {
    let admin = app.admin();
    for _ in 0..400 {
        let data = app
            .ok(
                &admin,
                None,
                &format!("{{ forkRuns(first: 1, filter: {{ kind: {kind} }}) {{ nodes {{ id status }} }} }}"),
                json!({}),
            )
            .await;
        let node = &data["forkRuns"]["nodes"][0];
        if node["status"] == "RUNNING" {
            return node["id"].as_str().expect("id").to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {kind} run started");
}

impl Child {
    /// A replica whose runs hold for a minute in the middle of phase 2 (to be killed there),
    /// with a 2 s lease.
    pub(crate) async fn holding_mid_phase_2(app: &TestApp) -> Child {
        Child::start(
            app,
            &[
                ("FORKLIFT_FORK_LEASE_SECS", "2"),
                ("FORKLIFT_FORK_FAILPOINT", "pause:mid_phase:2:60000"),
            ],
        )
        .await
    }

    pub(crate) async fn start(app: &TestApp, env: &[(&str, &str)]) -> Child {
        let port = free_port();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_forklift"));
        if app.owner_url() != app.database_url() {
            command.env("FORKLIFT_MIGRATION_DATABASE_URL", app.owner_url());
        }
        if app.system_url() != app.database_url() {
            command.env("FORKLIFT_SYSTEM_DATABASE_URL", app.system_url());
        }
        command
            .arg("serve")
            .env("DATABASE_URL", app.database_url())
            .env("FORKLIFT_ADDR", format!("127.0.0.1:{port}"))
            .env("FORKLIFT_JWT_SECRET", TEST_SECRET)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("FORKLIFT_TEST_CHILD_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        for (k, v) in env {
            command.env(k, v);
        }
        let process = command.spawn().expect("start the server binary");
        // Owned from here: dropping it kills and reaps the process, also on a failed start.
        let child = Child {
            process,
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        for _ in 0..400 {
            if http
                .get(format!("{}/readyz", child.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return child;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the child server did not come up");
    }

    fn ws_url(&self) -> String {
        format!("{}/graphql/ws", self.base.replace("http://", "ws://"))
    }

    /// Starts a fork of `target` through this process; returns the run id.
    async fn start_fork(&self, token: &str, target: &str) -> String {
        start_fork_at(&self.base, token, target).await
    }
}

/// Starts a fork of `target` through the server at `base`; returns the run id.
async fn start_fork_at(base: &str, token: &str, target: &str) -> String {
    let response: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(
            &json!({ "query": "mutation($t: String!) { forkTenant(input: { target: $t }) { id } }",
                "variables": { "t": target } }),
        )
        .send()
        .await
        .expect("fork request")
        .json()
        .await
        .expect("json");
    response["data"]["forkTenant"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{response}"))
        .to_string()
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A free local port (bound, then released for the child process).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

crate::both_backends!(a_server_killed_mid_fork_leaves_no_rows_and_its_run_is_abandoned);
async fn a_server_killed_mid_fork_leaves_no_rows_and_its_run_is_abandoned(backend: Backend) {
    let Some(survivor) = TestApp::spawn_with(
        backend,
        |c| c.fork_lease = Duration::from_secs(2),
        Registry::default(),
    )
    .await
    else {
        return;
    };
    let (template, _, _) = fixture::seeded_template(&survivor.state, 3).await;
    let tenant = uuid_of(&survivor.create_tenant("acme").await);
    // A real server process that holds its fork in the middle of phase 2, then is killed.
    let mut child = Child::holding_mid_phase_2(&survivor).await;
    let admin = survivor.admin();
    // Not awaited: on SQLite the request's audit entry waits for the fork's write lock, which
    // the held fork keeps. The run record is written before the fork takes the lock.
    let request = {
        let (base, admin) = (child.base.clone(), admin.clone());
        tokio::spawn(async move {
            let _ = start_fork_at(&base, &admin, "acme").await;
        })
    };
    let run = running_run(&survivor, "FORK").await;
    // A dashboard on the surviving replica follows the run.
    let follower = {
        let (url, admin, run) = (survivor.ws_url(), admin.clone(), run.clone());
        tokio::spawn(async move {
            wsclient::fork_events(&url, "graphql-transport-ws", &admin, &run).await
        })
    };
    // Phase 1 takes milliseconds; the fork then holds for a minute in the middle of phase 2.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.process.kill().expect("SIGKILL");
    let _ = child.process.wait();
    request.abort();
    // After a restart (SQLite: the start-up sweep) or the lease (PostgreSQL: any replica's
    // sweep), the run is abandoned and the target has no partial rows.
    let restarted = survivor
        .replica(|c| c.fork_lease = Duration::from_secs(2))
        .await;
    let status = restarted.wait_run_status(&run, "ABANDONED").await;
    assert_eq!(status, "ABANDONED");
    // Its stream ends with a terminal event that says why, not with silence.
    let events = tokio::time::timeout(Duration::from_secs(20), follower)
        .await
        .expect("the follower's stream completed")
        .expect("join");
    for (i, event) in events.iter().enumerate() {
        assert_eq!(
            event["seq"].as_i64(),
            Some(i as i64 + 1),
            "in order: {events:#?}"
        );
    }
    let last = events.last().expect("at least the terminal event");
    assert_eq!(last["kind"], "RUN_FAILED", "{events:#?}");
    assert_eq!(last["detail"]["status"], "ABANDONED", "{last}");
    assert!(
        counts(&restarted, tenant)
            .await
            .iter()
            .all(|(_, n)| *n == 0),
        "no partial rows: {:?}",
        counts(&restarted, tenant).await
    );
    // A re-run gives the same result as a clean fork.
    let again = restarted.fork("acme").await;
    assert_eq!(again["status"], "FINISHED", "{again}");
    assert_eq!(
        counts(&restarted, tenant).await,
        counts(&restarted, template).await
    );
}

crate::both_backends!(sigterm_closes_subscriptions_with_1001_and_rolls_back_a_cut_fork);
async fn sigterm_closes_subscriptions_with_1001_and_rolls_back_a_cut_fork(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    fixture::seeded_template(&app.state, 3).await;
    let tenant = uuid_of(&app.create_tenant("acme").await);
    let child = Child::start(
        &app,
        &[
            // The grace ends while the fork is held after phase 1 (1 s < 60 s: the pause lasts
            // until the grace runs out, however late a loaded machine delivers the phase event),
            // and the process waits for the cut fork to record itself (`Application::run`).
            ("FORKLIFT_SHUTDOWN_GRACE_SECS", "1"),
            ("FORKLIFT_FORK_FAILPOINT", "pause:after_phase:1:60000"),
        ],
    )
    .await;
    let admin = app.admin();
    let run = child.start_fork(&admin, "acme").await;
    // A subscriber follows the run on the process about to stop.
    let mut socket = wsclient::connect(&child.ws_url(), "graphql-transport-ws", &admin).await;
    wsclient::send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription($id: ID!) { forkProgress(runId: $id) { seq kind } }", "variables": { "id": run } } })).await;
    // Stop only once the fork is held after its first phase, however loaded the machine is.
    loop {
        let frame = wsclient::next_json(&mut socket).await;
        if frame["payload"]["data"]["forkProgress"]["kind"] == "PHASE_FINISHED" {
            break;
        }
    }
    let started = std::time::Instant::now();
    let mut child = child;
    let pid = child.process.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let code = loop {
        match wsclient::next(&mut socket).await {
            wsclient::Frame::Closed(code, _) => break code,
            wsclient::Frame::Json(_) => continue,
        }
    };
    assert_eq!(code, 1001, "subscriptions close with 1001");
    let status = tokio::task::spawn_blocking(move || {
        let status = child.process.wait();
        drop(child);
        status
    })
    .await
    .expect("join")
    .expect("wait");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the process stopped once the held fork was cut"
    );
    assert!(status.success(), "a clean exit: {status:?}");
    let data = app
        .ok(
            &admin,
            None,
            "query($id: ID!) { forkRun(id: $id) { status error } }",
            json!({ "id": run }),
        )
        .await;
    assert_eq!(data["forkRun"]["status"], "ROLLED_BACK", "{data}");
    assert!(
        data["forkRun"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("shut down"),
        "{data}"
    );
    assert!(
        counts(&app, tenant).await.iter().all(|(_, n)| *n == 0),
        "no partial rows"
    );
}
