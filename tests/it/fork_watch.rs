//! A tenant's Owners and Super Users watch the fork that provisions it: its runs, events and
//! `forkProgress`, also while it is still being provisioned, and phase 1 per application.

use forklift::graphql::ids;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    claims::subscription_error,
    fixture,
    harness::{TestApp, code},
    wsclient,
};

const RUNS: &str = "{ forkRuns(first: 10) { totalCount nodes { id status } } }";

crate::both!(owners_watch_their_tenant_being_provisioned);
async fn owners_watch_their_tenant_being_provisioned(app: TestApp) {
    // Three applications in the template: phase 1 reports 1, 2, 3 of 3.
    fixture::seeded_template(&app.state, 3).await;
    app.ready_tenant("globex").await;
    app.add_member("globex", "gil@globex.test", "OWNER").await;
    // Created, not forked: PENDING.
    app.create_tenant("acme").await;
    app.add_member("acme", "owen@acme.test", "OWNER").await;
    app.add_member("acme", "sue@acme.test", "SUPER_USER").await;
    app.add_member("acme", "vera@acme.test", "VIEWER").await;
    let owner = app.token("owen@acme.test", Some("acme"), false, &[]);
    let sue = app.token("sue@acme.test", Some("acme"), false, &[]);
    let vera = app.token("vera@acme.test", Some("acme"), false, &[]);
    let gil = app.token("gil@globex.test", Some("globex"), false, &[]);

    // While provisioning: the runs, yes; anything else, no.
    let none = app.ok(&owner, Some("acme"), RUNS, json!({})).await;
    assert_eq!(none["forkRuns"]["totalCount"], 0, "{none}");
    for document in [
        "{ applications(first: 1) { totalCount } }",
        "{ forkRuns { totalCount } applications { totalCount } }",
        "mutation { updateBranding(input: { primaryColor: \"#123456\" }) { primaryColor } }",
    ] {
        let body = app.gql(&owner, Some("acme"), document, json!({})).await;
        assert_eq!(
            code(&body).as_deref(),
            Some("TENANT_PROVISIONING"),
            "{document}: {body}"
        );
    }
    let body = app.gql(&vera, Some("acme"), RUNS, json!({})).await;
    assert_eq!(
        code(&body).as_deref(),
        Some("TENANT_PROVISIONING"),
        "a Viewer waits: {body}"
    );

    let run = app.start_fork("acme").await;
    // Followed from the start by the tenant's Owner (on a socket opened while it provisions).
    let events = wsclient::fork_events(&app.ws_url(), "graphql-transport-ws", &owner, &run).await;
    wsclient::assert_complete_run(&events, "RUN_FINISHED");
    let apps: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "APPLICATION_FORKED")
        .collect();
    assert_eq!(apps.len(), 3, "one event per application: {events:#?}");
    for (i, event) in apps.iter().enumerate() {
        assert_eq!(event["phase"], "APPLICATION_SPINE");
        assert_eq!(event["detail"]["index"], i + 1, "{event}");
        assert_eq!(event["detail"]["total"], 3, "{event}");
        assert_eq!(event["count"], i + 1);
        assert!(event["detail"]["application"].is_string(), "{event}");
    }
    // Each spine class is still counted once, after the applications.
    let spine_counts = events
        .iter()
        .filter(|e| e["kind"] == "ROWS_COPIED" && e["phase"] == "APPLICATION_SPINE")
        .count();
    let applications_copied = events
        .iter()
        .find(|e| e["kind"] == "ROWS_COPIED" && e["className"] == "Application")
        .expect("applications counted");
    assert_eq!(applications_copied["count"], 3, "{applications_copied}");
    assert!(spine_counts >= 2, "{events:#?}");
    let finished = app.wait_run(&run).await;
    assert_eq!(finished["status"], "FINISHED", "{finished}");

    // The Owner and the Super User read the run and its events.
    for token in [&owner, &sue] {
        let data = app
            .ok(
                token,
                Some("acme"),
                "query($id: ID!) { forkRun(id: $id) { id status target { slug } } \
                    forkEvents(first: 200, filter: { kind: APPLICATION_FORKED }) { totalCount } }",
                json!({ "id": run }),
            )
            .await;
        assert_eq!(data["forkRun"]["status"], "FINISHED", "{data}");
        assert_eq!(data["forkRun"]["target"]["slug"], "acme");
        assert_eq!(data["forkEvents"]["totalCount"], 3, "{data}");
    }
    // A Viewer does not.
    let body = app.gql(&vera, Some("acme"), RUNS, json!({})).await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");

    // Another tenant's Owner: acme's run is not there, exactly like a run that does not exist.
    let theirs = app
        .ok(
            &gil,
            Some("globex"),
            "query($id: ID!) { forkRun(id: $id) { id } forkRuns { nodes { target { slug } } } }",
            json!({ "id": run }),
        )
        .await;
    assert_eq!(theirs["forkRun"], Value::Null, "{theirs}");
    for node in theirs["forkRuns"]["nodes"].as_array().expect("runs") {
        assert_eq!(node["target"]["slug"], "globex", "{theirs}");
    }
    let progress = "subscription($id: ID!) { forkProgress(runId: $id) { seq } }";
    let nothing = ids::encode("ForkRun", Uuid::now_v7());
    let foreign = subscription_error(
        &app,
        "graphql-transport-ws",
        &gil,
        progress,
        json!({ "id": run }),
    )
    .await;
    let missing = subscription_error(
        &app,
        "graphql-transport-ws",
        &gil,
        progress,
        json!({ "id": nothing }),
    )
    .await;
    assert_eq!(foreign, "NOT_FOUND");
    assert_eq!(foreign, missing, "no oracle");
}
