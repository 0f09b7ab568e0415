//! A dedicated tenant's runtime rows (issue #19, item 2): its organizations, teams and their
//! members, branding, features and onboarding marks live in its database only (direct SQL on
//! both), every operation that writes or reads them works there (the generic surface and the
//! hand-written branding, features, onboarding and access-check operations), and a move carries
//! them along.

use sea_orm::Database;
use serde_json::json;

use super::{Eu1, count, ready_placed, spawn_placed};
use crate::{fixture, harness::Backend};

/// The runtime tables a placed tenant keeps in its database (`row_lineage` aside: the lineage of
/// forked rows, covered with them).
fn runtime() -> impl Iterator<Item = &'static str> {
    forklift::placement::PLACED_RUNTIME
        .iter()
        .copied()
        .filter(|t| *t != "row_lineage")
}

crate::both_backends!(a_dedicated_tenant_s_runtime_rows_live_in_its_database_and_move_with_it);
async fn a_dedicated_tenant_s_runtime_rows_live_in_its_database_and_move_with_it(backend: Backend) {
    let Some((app, eu1)) = spawn_placed(backend, Eu1::AppRole, |_| {}).await else {
        return;
    };
    fixture::seeded_template(&app.state, 2).await;
    crate::onboarding::import_checklist(&app, crate::onboarding::CUSTOM_STEP).await;
    let tenant = ready_placed(&app, "dedicated", Some("eu1")).await;
    app.add_member("dedicated", "olga@dedicated.test", "OWNER")
        .await;
    app.add_member("dedicated", "ed@dedicated.test", "EDITOR")
        .await;
    let olga = app.token("olga@dedicated.test", None, false, &[]);
    let ed = app.token("ed@dedicated.test", None, false, &[]);
    let admin = app.admin();
    let main = app.owner_db().await;
    let named = Database::connect(&eu1.owner_url).await.expect("eu1");
    let at = Some("dedicated");

    // The generic surface: a team under the root organization, with a member.
    let data = app
        .ok(
            &olga,
            at,
            "{ organizations { nodes { id } } memberships { nodes { userId user { email } } } }",
            json!({}),
        )
        .await;
    let root = data["organizations"]["nodes"][0]["id"].clone();
    let ed_id = data["memberships"]["nodes"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["user"]["email"] == "ed@dedicated.test")
        .map(|m| m["userId"].clone())
        .expect("ed is a member");
    let team = app
        .ok(
            &olga,
            at,
            "mutation($o: ID!) { createTeam(input: { organizationId: $o, name: \"Roads\", services: [\"potholes\"] }) { id } }",
            json!({ "o": root }),
        )
        .await["createTeam"]["id"]
        .clone();
    app.ok(
        &olga,
        at,
        "mutation($t: ID!, $u: ID!) { createTeamMember(input: { teamId: $t, userId: $u }) { id } }",
        json!({ "t": team, "u": ed_id }),
    )
    .await;
    // A configuration row referencing the team: both in eu1.
    let rule = app
        .ok(
            &olga,
            at,
            "{ notificationRules(first: 1) { nodes { id } } }",
            json!({}),
        )
        .await["notificationRules"]["nodes"][0]["id"]
        .clone();
    assert!(rule.is_string(), "the fork copied a notification rule");
    app.ok(
        &olga,
        at,
        "mutation($r: ID!, $t: ID!) { createNotificationSubscription(input: { ruleId: $r, teamId: $t, audience: \"team\", channel: \"email\" }) { id } }",
        json!({ "r": rule, "t": team }),
    )
    .await;
    // The hand-written operations: branding, features, onboarding, the access check.
    app.ok(
        &olga,
        at,
        "mutation { updateBranding(input: { primaryColor: \"#123456\" }) { primaryColor } }",
        json!({}),
    )
    .await;
    let global = app
        .ok(
            &admin,
            None,
            "{ tenant(id: \"dedicated\") { id } }",
            json!({}),
        )
        .await["tenant"]["id"]
        .clone();
    let features = app
        .ok(
            &admin,
            None,
            "mutation($t: ID!) { registerFeatures(tenantId: $t, features: [{ key: \"maps\", provider: \"osm\", version: \"1\" }]) { id } }",
            json!({ "t": global }),
        )
        .await;
    let feature = features["registerFeatures"][0]["id"].clone();
    let updated = app
        .ok(
            &admin,
            None,
            "mutation($id: ID!) { updateFeature(id: $id, input: { version: \"2\" }) { version } }",
            json!({ "id": feature }),
        )
        .await;
    assert_eq!(
        updated["updateFeature"]["version"], "2",
        "the admin finds the feature in eu1"
    );
    let marked = app
        .ok(
            &olga,
            at,
            "mutation { completeOnboardingStep(key: \"train-staff\") { steps { key done } } }",
            json!({}),
        )
        .await;
    assert!(
        marked["completeOnboardingStep"]["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .any(|s| s["key"] == "train-staff" && s["done"] == true),
        "{marked}"
    );
    let decision = app
        .ok(
            &ed,
            at,
            "query($t: ID!) { checkAccess(teamId: $t, service: \"potholes\") { allowed } }",
            json!({ "t": team }),
        )
        .await;
    assert_eq!(decision["checkAccess"]["allowed"], true, "{decision}");
    let read = app
        .ok(
            &olga,
            at,
            "{ branding { primaryColor } teams { nodes { teamMembers { userId } notificationSubscriptions { id } } } onboarding { steps { key done } } }",
            json!({}),
        )
        .await;
    assert_eq!(read["branding"]["primaryColor"], "#123456", "{read}");
    assert_eq!(
        read["teams"]["nodes"][0]["teamMembers"][0]["userId"], ed_id,
        "{read}"
    );
    assert_eq!(
        read["teams"]["nodes"][0]["notificationSubscriptions"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{read}"
    );

    // By direct SQL: in eu1 only.
    for table in runtime() {
        assert!(count(&named, table, tenant).await > 0, "{table} in eu1");
        assert_eq!(
            count(&main, table, tenant).await,
            0,
            "{table}: none in main"
        );
    }
    assert_eq!(count(&main, "notification_subscriptions", tenant).await, 0);
    // The control plane stays in the main database.
    assert_eq!(count(&main, "memberships", tenant).await, 2);
    assert_eq!(count(&named, "memberships", tenant).await, 0);

    // Moved to the main database, they all go along.
    let before: Vec<i64> = {
        let mut out = Vec::new();
        for table in runtime() {
            out.push(count(&named, table, tenant).await);
        }
        out
    };
    let run = app
        .ok(
            &admin,
            None,
            "mutation { moveTenant(id: \"dedicated\", database: null) { id } }",
            json!({}),
        )
        .await;
    let run = app
        .wait_run(run["moveTenant"]["id"].as_str().expect("run"))
        .await;
    assert_eq!(run["status"], "FINISHED", "{run}");
    for (table, n) in runtime().zip(before) {
        assert_eq!(count(&main, table, tenant).await, n, "{table} in main");
        assert_eq!(
            count(&named, table, tenant).await,
            0,
            "{table}: none left in eu1"
        );
    }
    let again = app
        .ok(
            &olga,
            at,
            "{ branding { primaryColor } teams { nodes { teamMembers { userId } } } }",
            json!({}),
        )
        .await;
    assert_eq!(again["branding"]["primaryColor"], "#123456", "{again}");
    assert_eq!(
        again["teams"]["nodes"][0]["teamMembers"][0]["userId"], ed_id,
        "{again}"
    );
    let _ = named.close().await;
}
