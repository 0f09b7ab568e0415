//! Issue #17 item 8: the onboarding checklist of seed 001 — steps declared by the template's
//! sheets, server-checked steps that complete themselves, manual steps a Super User marks,
//! state and percentage — over HTTP, on both databases.

use std::{collections::HashMap, sync::Arc};

use forklift::{
    domains::StaticResolver,
    sheets::{self, ImportOptions, SheetFile},
};
use serde_json::{Value, json};

use crate::{
    fixture,
    harness::{TestApp, code, uuid_of},
};

/// A step the example template does not have, appended to its vocabulary sheet.
pub(crate) const CUSTOM_STEP: &str =
    "    - { key: train-staff, title: Train the staff, order: 95, hint: One session per team. }\n";

const CHECKLIST: &str = "onboarding { state percentage steps { key title hint order kind check \
    done doneAt doneBy } }";

const COMPLETE: &str = "mutation($key: String!) { completeOnboardingStep(key: $key) { state \
    percentage steps { key done doneAt doneBy } } }";

const REOPEN: &str = "mutation($key: String!) { reopenOnboardingStep(key: $key) { state \
    percentage steps { key done doneAt doneBy } } }";

/// Imports the example vocabulary sheet (its checklist is seed 001's), plus `extra` lines
/// appended to its `onboarding_steps`.
pub(crate) async fn import_checklist(app: &TestApp, extra: &str) {
    let (name, content) = forklift::template::EMBEDDED
        .iter()
        .find(|(name, _)| *name == "vocabulary.yaml")
        .expect("the example vocabulary");
    assert!(
        content.trim_end().ends_with("}"),
        "onboarding_steps is the last list of the example vocabulary"
    );
    let report = sheets::import(
        &app.state,
        &[SheetFile {
            name: (*name).into(),
            content: format!("{content}{extra}"),
        }],
        ImportOptions {
            vocabulary_author: true,
            ..Default::default()
        },
    )
    .await
    .expect("import");
    assert!(report.ok, "{:?}", report.errors);
}

fn step<'a>(checklist: &'a Value, key: &str) -> &'a Value {
    checklist["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no step {key} in {checklist}"))
}

fn done_keys(checklist: &Value) -> Vec<String> {
    checklist["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["done"] == true)
        .map(|s| s["key"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The checklist of tenant `id` as the platform admin reads it in the catalog.
async fn catalog_checklist(app: &TestApp, id: &str) -> Value {
    let data = app
        .ok(
            &app.admin(),
            None,
            &format!("query($id: ID!) {{ tenant(id: $id) {{ {CHECKLIST} }} }}"),
            json!({ "id": id }),
        )
        .await;
    data["tenant"]["onboarding"].clone()
}

crate::both!(steps_come_from_the_sheets_and_server_checks_complete_themselves);
async fn steps_come_from_the_sheets_and_server_checks_complete_themselves(app: TestApp) {
    forklift::bootstrap::ensure_template(&app.state)
        .await
        .expect("template");
    import_checklist(&app, CUSTOM_STEP).await;
    let admin = app.admin();
    let id = app.create_tenant("acme").await;
    let fresh = catalog_checklist(&app, &id).await;
    let keys: Vec<&str> = fresh["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["key"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        keys,
        [
            "forked",
            "staff-admin",
            "custom-domain",
            "branding",
            "connect-data",
            "monitoring",
            "slos",
            "runbook",
            "ai",
            "train-staff"
        ],
        "the template's steps in its order, the sheet's custom step last: {fresh}"
    );
    assert_eq!(
        step(&fresh, "train-staff"),
        &json!({ "key": "train-staff", "title": "Train the staff", "hint": "One session per team.",
            "order": 95, "kind": "MANUAL", "check": null, "done": false, "doneAt": null, "doneBy": null })
    );
    assert_eq!(step(&fresh, "forked")["kind"], "AUTOMATIC");
    assert_eq!(step(&fresh, "forked")["check"], "forked");
    assert_eq!(step(&fresh, "custom-domain")["check"], "domain_verified");
    assert_eq!(step(&fresh, "connect-data")["title"], "Connect data");
    assert!(step(&fresh, "connect-data")["hint"].is_string());
    assert_eq!(fresh["state"], "NOT_STARTED");
    assert_eq!(fresh["percentage"], 0);
    assert!(done_keys(&fresh).is_empty(), "{fresh}");

    // Forked: the step flips when provisioning is READY.
    assert_eq!(app.fork("acme").await["status"], "FINISHED");
    let forked = catalog_checklist(&app, &id).await;
    assert_eq!(done_keys(&forked), ["forked"]);
    assert_eq!(forked["state"], "IN_PROGRESS");
    assert_eq!(forked["percentage"], 10);

    // A staff administrator seeded.
    app.ok(
        &admin,
        None,
        "mutation($id: ID!) { seedStaffAdmin(tenantId: $id, email: \"staff@acme.test\") { id } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(
        done_keys(&catalog_checklist(&app, &id).await),
        ["forked", "staff-admin"]
    );

    // Branding with any field.
    let staff = app.token("staff@acme.test", None, false, &[]);
    app.ok(
        &staff,
        Some("acme"),
        "mutation { updateBranding(input: { linkColor: \"#123456\" }) { linkColor } }",
        json!({}),
    )
    .await;
    assert_eq!(
        done_keys(&catalog_checklist(&app, &id).await),
        ["forked", "staff-admin", "branding"]
    );

    // A domain: claimed is not enough, verified is.
    let domain = app
        .ok(
            &staff,
            Some("acme"),
            "mutation { addDomain(host: \"portal.acme.example\") { id verificationToken } }",
            json!({}),
        )
        .await["addDomain"]
        .clone();
    assert_eq!(
        step(&catalog_checklist(&app, &id).await, "custom-domain")["done"],
        false
    );
    let mut records = HashMap::new();
    records.insert(
        "_forklift-challenge.portal.acme.example".to_string(),
        vec![format!(
            "forklift-verification={}",
            domain["verificationToken"].as_str().expect("token")
        )],
    );
    app.state.set_resolver(Arc::new(StaticResolver { records }));
    app.ok(
        &staff,
        Some("acme"),
        "mutation($id: ID!) { verifyDomain(id: $id) { verifiedAt } }",
        json!({ "id": domain["id"] }),
    )
    .await;
    let automatic = catalog_checklist(&app, &id).await;
    assert_eq!(
        done_keys(&automatic),
        ["forked", "staff-admin", "custom-domain", "branding"]
    );
    assert_eq!(automatic["percentage"], 40);

    // The staff administrator (an Owner) marks every manual step: complete at 100.
    let mut last = Value::Null;
    for key in [
        "connect-data",
        "monitoring",
        "slos",
        "runbook",
        "ai",
        "train-staff",
    ] {
        assert_eq!(
            last["state"].as_str().unwrap_or("IN_PROGRESS"),
            "IN_PROGRESS"
        );
        last = app
            .ok(&staff, Some("acme"), COMPLETE, json!({ "key": key }))
            .await["completeOnboardingStep"]
            .clone();
    }
    assert_eq!(last["state"], "COMPLETE", "{last}");
    // An exported tenant's vocabulary sheet carries the steps, and imports again.
    let (exported, _) = forklift::offboarding::sheets_out::vocabulary(&app.state.db, uuid_of(&id))
        .await
        .expect("export the vocabulary");
    assert!(
        exported.contains("key: train-staff") && exported.contains("check: domain_verified"),
        "{exported}"
    );
    let parsed = sheets::check::parse(&SheetFile {
        name: "vocabulary.yaml".into(),
        content: exported,
    })
    .expect("the exported vocabulary parses");
    let steps = &parsed
        .sheet
        .vocabulary
        .expect("vocabulary")
        .onboarding_steps;
    assert_eq!(steps.len(), 10);
    assert_eq!(
        steps[2].check,
        Some(sheets::format::StepCheck::DomainVerified)
    );
    assert_eq!(last["percentage"], 100);
    assert_eq!(
        fixture::count(&app.state.db, "onboarding_completions", uuid_of(&id)).await,
        6,
        "one row per manual step, none for the automatic ones"
    );
}

crate::both!(super_users_mark_manual_steps_and_nobody_else_does);
async fn super_users_mark_manual_steps_and_nobody_else_does(app: TestApp) {
    forklift::bootstrap::ensure_template(&app.state)
        .await
        .expect("template");
    import_checklist(&app, "").await;
    let acme = app.ready_tenant("acme").await;
    app.ready_tenant("globex").await;
    app.add_member("acme", "sue@acme.test", "SUPER_USER").await;
    app.add_member("acme", "vic@acme.test", "VIEWER").await;
    app.add_member("globex", "gus@globex.test", "SUPER_USER")
        .await;
    let sue = app.token("sue@acme.test", None, false, &[]);
    let vic = app.token("vic@acme.test", None, false, &[]);
    let gus = app.token("gus@globex.test", None, false, &[]);

    // Every member reads the checklist: forked, nothing else (9 steps).
    let read = |token: String, tenant: &'static str| {
        let app = &app;
        async move {
            app.ok(
                &token,
                Some(tenant),
                &format!("{{ {CHECKLIST} }}"),
                json!({}),
            )
            .await["onboarding"]
                .clone()
        }
    };
    let seen = read(vic.clone(), "acme").await;
    assert_eq!(done_keys(&seen), ["forked"]);
    assert_eq!(seen["percentage"], 11);
    assert_eq!(seen["state"], "IN_PROGRESS");

    // A Viewer may not mark a step.
    let body = app
        .gql(
            &vic,
            Some("acme"),
            COMPLETE,
            json!({ "key": "connect-data" }),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");

    // A Super User marks one: done, by whom, when; the percentage and state move.
    let marked = app
        .ok(
            &sue,
            Some("acme"),
            COMPLETE,
            json!({ "key": "connect-data" }),
        )
        .await["completeOnboardingStep"]
        .clone();
    assert_eq!(done_keys(&marked), ["forked", "connect-data"]);
    assert_eq!(marked["percentage"], 22);
    assert_eq!(marked["state"], "IN_PROGRESS");
    let connect = step(&marked, "connect-data");
    assert_eq!(connect["doneBy"], "sue@acme.test");
    assert!(connect["doneAt"].is_string(), "{connect}");
    // Marking it again changes nothing.
    let again = app
        .ok(
            &sue,
            Some("acme"),
            COMPLETE,
            json!({ "key": "connect-data" }),
        )
        .await["completeOnboardingStep"]
        .clone();
    assert_eq!(step(&again, "connect-data")["doneAt"], connect["doneAt"]);

    // Unknown keys and server-checked steps are bad input.
    let body = app
        .gql(
            &sue,
            Some("acme"),
            COMPLETE,
            json!({ "key": "no-such-step" }),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    for (mutation, key) in [
        (COMPLETE, "forked"),
        (REOPEN, "forked"),
        (COMPLETE, "branding"),
    ] {
        let body = app
            .gql(&sue, Some("acme"), mutation, json!({ "key": key }))
            .await;
        assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("checked by the server"),
            "a clear message: {message}"
        );
    }

    // Another tenant neither sees acme's marks nor marks acme's steps.
    let theirs = read(gus.clone(), "globex").await;
    assert_eq!(done_keys(&theirs), ["forked"], "{theirs}");
    for mutation in [COMPLETE, REOPEN] {
        let body = app
            .gql(
                &gus,
                Some("acme"),
                mutation,
                json!({ "key": "connect-data" }),
            )
            .await;
        assert!(code(&body).is_some(), "a stranger marks nothing: {body}");
    }
    let body = app
        .gql(&gus, Some("acme"), &format!("{{ {CHECKLIST} }}"), json!({}))
        .await;
    assert!(
        body["errors"].is_array(),
        "a stranger reads nothing: {body}"
    );
    let stranger = app.token("gus@globex.test", None, false, &[]);
    let body = app
        .gql(&stranger, None, &format!("{{ {CHECKLIST} }}"), json!({}))
        .await;
    assert!(body["errors"].is_array(), "{body}");
    assert_eq!(
        done_keys(&read(sue.clone(), "acme").await),
        ["forked", "connect-data"],
        "acme's mark survived globex's attempts"
    );
    // Globex's own mark stays in globex.
    app.ok(&gus, Some("globex"), COMPLETE, json!({ "key": "slos" }))
        .await;
    assert_eq!(
        done_keys(&read(sue.clone(), "acme").await),
        ["forked", "connect-data"]
    );

    // Reopened: back where it was.
    let reopened = app
        .ok(&sue, Some("acme"), REOPEN, json!({ "key": "connect-data" }))
        .await["reopenOnboardingStep"]
        .clone();
    assert_eq!(done_keys(&reopened), ["forked"]);
    assert_eq!(reopened["percentage"], 11);
    assert_eq!(step(&reopened, "connect-data")["doneBy"], Value::Null);
    assert_eq!(
        fixture::count(&app.state.db, "onboarding_completions", uuid_of(&acme)).await,
        0
    );

    // Audited with before and after.
    let log = app
        .ok(
            &sue,
            Some("acme"),
            "{ auditLog(filter: { targetType: \"OnboardingStep\" }) { nodes { actor operation detail } } }",
            json!({}),
        )
        .await;
    let nodes = log["auditLog"]["nodes"].as_array().expect("nodes").clone();
    let ops: Vec<&str> = nodes
        .iter()
        .map(|n| n["operation"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        ops,
        [
            "reopenOnboardingStep",
            "completeOnboardingStep",
            "completeOnboardingStep"
        ],
        "newest first, acme's only: {log}"
    );
    let reopen = &nodes[0]["detail"]["change"];
    assert_eq!(reopen["before"]["done"], true, "{reopen}");
    assert_eq!(reopen["before"]["doneBy"], "sue@acme.test");
    assert_eq!(reopen["after"]["done"], false);
    let first = &nodes[2]["detail"]["change"];
    assert_eq!(first["before"]["done"], false, "{first}");
    assert_eq!(first["after"]["done"], true);
    assert_eq!(nodes[2]["actor"], "sue@acme.test");
}

crate::both!(a_template_without_steps_has_an_empty_checklist);
async fn a_template_without_steps_has_an_empty_checklist(app: TestApp) {
    // Old sheets (no `onboarding_steps`) still import, and the checklist is simply empty.
    let vocabulary = forklift::template::EMBEDDED
        .iter()
        .find(|(name, _)| *name == "vocabulary.yaml")
        .map(|(_, c)| *c)
        .expect("vocabulary");
    let old = &vocabulary[..vocabulary
        .find("  # The onboarding checklist")
        .expect("steps block")];
    forklift::bootstrap::ensure_template(&app.state)
        .await
        .expect("template");
    let report = sheets::import(
        &app.state,
        &[SheetFile {
            name: "vocabulary.yaml".into(),
            content: old.into(),
        }],
        ImportOptions {
            vocabulary_author: true,
            ..Default::default()
        },
    )
    .await
    .expect("import");
    assert!(report.ok, "{:?}", report.errors);
    let id = app.create_tenant("acme").await;
    let checklist = catalog_checklist(&app, &id).await;
    assert_eq!(
        checklist,
        json!({ "state": "COMPLETE", "percentage": 100, "steps": [] })
    );
    let body = app
        .gql(
            &app.admin(),
            Some("acme"),
            COMPLETE,
            json!({ "key": "connect-data" }),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
}
