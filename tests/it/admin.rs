//! Issue #6: the tenant catalog and lifecycle, members and the role hierarchy.

use serde_json::{Value, json};

use crate::harness::{TestApp, code};

const CREATE: &str = "mutation($input: CreateTenantInput!) { createTenant(input: $input) { id \
    slug status trialEndsAt } }";

async fn create(app: &TestApp, input: Value) -> Value {
    app.gql(&app.admin(), None, CREATE, json!({ "input": input }))
        .await
}

crate::both!(creating_tenants_derives_and_validates_slugs);
async fn creating_tenants_derives_and_validates_slugs(app: TestApp) {
    let body = create(&app, json!({ "name": "Ville de Saint-Étienne" })).await;
    let tenant = &body["data"]["createTenant"];
    assert_eq!(tenant["slug"], "ville-de-saint-etienne", "{body}");
    assert_eq!(tenant["status"], "TRIAL", "trial by default");
    let ends =
        chrono::DateTime::parse_from_rfc3339(tenant["trialEndsAt"].as_str().expect("trial end"))
            .expect("date");
    let days = (ends.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours();
    assert!((13 * 24..=14 * 24).contains(&days), "14 days: {days} h");

    for bad in ["-acme", "acme-", "ac_me", "ACME!", &"a".repeat(64), ""] {
        let body = create(&app, json!({ "name": "Bad", "slug": bad })).await;
        assert_eq!(
            code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "slug {bad:?}: {body}"
        );
    }
    let body = create(
        &app,
        json!({ "name": "Other", "slug": "ville-de-saint-etienne" }),
    )
    .await;
    assert_eq!(code(&body).as_deref(), Some("CONFLICT"), "{body}");
    // Only platform admins create tenants.
    let someone = app.token("someone@example.test", None, false, &[]);
    let body = app
        .gql(
            &someone,
            None,
            CREATE,
            json!({ "input": { "name": "Mine" } }),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
}

crate::both!(the_lifecycle_moves_through_trial_active_and_suspended);
async fn the_lifecycle_moves_through_trial_active_and_suspended(app: TestApp) {
    let admin = app.admin();
    let body = create(
        &app,
        json!({ "name": "Acme", "slug": "acme", "trialDays": 3 }),
    )
    .await;
    let id = body["data"]["createTenant"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let extend = "mutation($id: ID!, $d: Int!) { extendTrial(id: $id, days: $d) { trialEndsAt } }";
    for days in [0, -5] {
        let body = app
            .gql(&admin, None, extend, json!({ "id": id, "d": days }))
            .await;
        assert_eq!(
            code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{days} days: {body}"
        );
    }
    let extended = app
        .ok(&admin, None, extend, json!({ "id": id, "d": 10 }))
        .await;
    let ends = chrono::DateTime::parse_from_rfc3339(
        extended["extendTrial"]["trialEndsAt"]
            .as_str()
            .expect("end"),
    )
    .expect("date");
    let days = (ends.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours() / 24;
    assert!((12..=13).contains(&days), "3 + 10 days: {days}");

    let stats = "{ tenantStats(expiringWithinDays: 30) { total active trial suspended expiring } }";
    let s = app.ok(&admin, None, stats, json!({})).await;
    assert_eq!(s["tenantStats"]["trial"], 1, "{s}");
    assert_eq!(s["tenantStats"]["expiring"], 1, "{s}");

    app.ok(
        &admin,
        None,
        "mutation($id: ID!) { activateTenant(id: $id) { status } }",
        json!({ "id": id }),
    )
    .await;
    let body = app
        .gql(&admin, None, extend, json!({ "id": id, "d": 5 }))
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("PRECONDITION_FAILED"),
        "only trials extend: {body}"
    );
    let suspended = app
        .ok(
            &admin,
            None,
            "mutation($id: ID!) { suspendTenant(id: $id, reason: \"Unpaid invoice\") \
                { status suspensionReason } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(suspended["suspendTenant"]["status"], "SUSPENDED");
    assert_eq!(
        suspended["suspendTenant"]["suspensionReason"],
        "Unpaid invoice"
    );
    let s = app.ok(&admin, None, stats, json!({})).await;
    assert_eq!(s["tenantStats"]["suspended"], 1, "{s}");
    let listed = app
        .ok(
            &admin,
            None,
            "{ tenants(filter: { status: SUSPENDED }) { totalCount nodes { slug } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["tenants"]["nodes"][0]["slug"], "acme", "{listed}");
}

crate::both!(deleting_a_tenant_needs_it_empty_of_members);
async fn deleting_a_tenant_needs_it_empty_of_members(app: TestApp) {
    let admin = app.admin();
    let id = app.ready_tenant("acme").await;
    let membership = app.add_member("acme", "olga@acme.test", "OWNER").await;
    let body = app
        .gql(
            &admin,
            None,
            "mutation($id: ID!) { deleteTenant(id: $id) }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("PRECONDITION_FAILED"),
        "refused while members remain: {body}"
    );
    app.ok(
        &admin,
        Some("acme"),
        "mutation($id: ID!) { removeMember(id: $id) }",
        json!({ "id": membership }),
    )
    .await;
    app.ok(
        &admin,
        None,
        "mutation($id: ID!) { deleteTenant(id: $id) }",
        json!({ "id": id }),
    )
    .await;
    let body = app
        .gql(
            &admin,
            None,
            "query($id: ID!) { tenant(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert!(body["data"]["tenant"].is_null(), "{body}");
    let tenant = crate::harness::uuid_of(&id);
    assert_eq!(
        crate::fixture::count(&app.state.db, "organizations", tenant).await,
        0,
        "its rows are gone"
    );
}

crate::both!(the_role_hierarchy_and_last_owner_hold);
async fn the_role_hierarchy_and_last_owner_hold(app: TestApp) {
    app.ready_tenant("acme").await;
    let owner_m = app.add_member("acme", "owner@acme.test", "OWNER").await;
    app.add_member("acme", "super@acme.test", "SUPER_USER")
        .await;
    let editor_m = app.add_member("acme", "editor@acme.test", "EDITOR").await;
    let owner = app.token("owner@acme.test", None, false, &[]);
    let superu = app.token("super@acme.test", None, false, &[]);
    let editor = app.token("editor@acme.test", None, false, &[]);
    let add = "mutation($e: String!, $r: Role!) { addMember(email: $e, role: $r) { id role } }";
    // Super User assigns Editor and below, not Super User or Owner.
    app.ok(
        &superu,
        Some("acme"),
        add,
        json!({ "e": "c1@acme.test", "r": "CONTRIBUTOR" }),
    )
    .await;
    for role in ["SUPER_USER", "OWNER"] {
        let body = app
            .gql(
                &superu,
                Some("acme"),
                add,
                json!({ "e": "x@acme.test", "r": role }),
            )
            .await;
        assert_eq!(
            code(&body).as_deref(),
            Some("FORBIDDEN"),
            "super user → {role}: {body}"
        );
    }
    // Owner assigns Super User, not Owner.
    app.ok(
        &owner,
        Some("acme"),
        add,
        json!({ "e": "s2@acme.test", "r": "SUPER_USER" }),
    )
    .await;
    let body = app
        .gql(
            &owner,
            Some("acme"),
            add,
            json!({ "e": "o2@acme.test", "r": "OWNER" }),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    // An editor manages nobody.
    let body = app
        .gql(
            &editor,
            Some("acme"),
            add,
            json!({ "e": "v@acme.test", "r": "VIEWER" }),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    let body = app
        .gql(
            &superu,
            Some("acme"),
            "mutation($id: ID!) { changeMemberRole(id: $id, role: OWNER) { id } }",
            json!({ "id": editor_m }),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    // The last owner can be neither demoted nor removed, even by an admin.
    let admin = app.admin();
    let body = app
        .gql(
            &admin,
            Some("acme"),
            "mutation($id: ID!) { changeMemberRole(id: $id, role: VIEWER) { id } }",
            json!({ "id": owner_m }),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("LAST_OWNER"), "{body}");
    let body = app
        .gql(
            &admin,
            Some("acme"),
            "mutation($id: ID!) { removeMember(id: $id) }",
            json!({ "id": owner_m }),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("LAST_OWNER"), "{body}");
    // me lists the caller's tenants and roles.
    let me = app
        .ok(
            &owner,
            None,
            "{ me { subject memberships { slug role } } }",
            json!({}),
        )
        .await;
    assert_eq!(me["me"]["memberships"][0]["slug"], "acme");
    assert_eq!(me["me"]["memberships"][0]["role"], "OWNER");
}

crate::both!(seeding_a_staff_admin_is_explicit);
async fn seeding_a_staff_admin_is_explicit(app: TestApp) {
    let id = app.ready_tenant("acme").await;
    let admin = app.admin();
    let seed =
        "mutation($t: ID!, $e: String!) { seedStaffAdmin(tenantId: $t, email: $e) { id role } }";
    let someone = app.token("someone@example.test", None, false, &[]);
    let body = app
        .gql(
            &someone,
            None,
            seed,
            json!({ "t": id, "e": "staff@acme.test" }),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    let seeded = app
        .ok(
            &admin,
            None,
            seed,
            json!({ "t": id, "e": "staff@acme.test" }),
        )
        .await;
    assert_eq!(seeded["seedStaffAdmin"]["role"], "OWNER");
    let staff = app.token("staff@acme.test", None, false, &[]);
    app.ok(
        &staff,
        Some("acme"),
        "{ applications { totalCount } }",
        json!({}),
    )
    .await;
}

crate::both!(trial_arithmetic_follows_the_clock);
async fn trial_arithmetic_follows_the_clock(app: TestApp) {
    let admin = app.admin();
    let id = app.ready_tenant_in_trial("acme").await;
    let read = "query($id: ID!) { tenant(id: $id) { status trialEndsAt trialExpired } }";
    let ends = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v["tenant"]["trialEndsAt"].as_str().expect("end"))
            .expect("date")
            .with_timezone(&chrono::Utc)
    };
    let t = app.ok(&admin, None, read, json!({ "id": id })).await;
    let first_end = ends(&t);
    let expected = app.state.clock.now() + chrono::Duration::days(14);
    assert!(
        (first_end - expected).num_seconds().abs() < 60,
        "14 days by default: {first_end} vs {expected}"
    );
    let stats = "{ tenantStats(expiringWithinDays: 7) { trial expiring } }";
    assert_eq!(
        app.ok(&admin, None, stats, json!({})).await["tenantStats"],
        json!({ "trial": 1, "expiring": 0 })
    );

    app.state.clock.advance(chrono::Duration::days(8));
    assert_eq!(
        app.ok(&admin, None, stats, json!({})).await["tenantStats"],
        json!({ "trial": 1, "expiring": 1 }),
        "6 days left"
    );
    let t = app.ok(&admin, None, read, json!({ "id": id })).await;
    assert_eq!(t["tenant"]["trialExpired"], false);

    let extended = app
        .ok(
            &admin,
            None,
            "mutation($id: ID!) { extendTrial(id: $id, days: 5) { trialEndsAt } }",
            json!({ "id": id }),
        )
        .await;
    let new_end = chrono::DateTime::parse_from_rfc3339(
        extended["extendTrial"]["trialEndsAt"]
            .as_str()
            .expect("end"),
    )
    .expect("date");
    assert_eq!(
        (new_end.with_timezone(&chrono::Utc) - first_end).num_days(),
        5,
        "extended from the old end"
    );

    app.state.clock.advance(chrono::Duration::days(20));
    let t = app.ok(&admin, None, read, json!({ "id": id })).await;
    assert_eq!(t["tenant"]["status"], "TRIAL");
    assert_eq!(t["tenant"]["trialExpired"], true, "flagged");
    app.add_member("acme", "m@acme.test", "VIEWER").await;
    let member = app.token("m@acme.test", None, false, &[]);
    app.ok(
        &member,
        Some("acme"),
        "{ applications { totalCount } }",
        json!({}),
    )
    .await;
    // An expired trial can be extended from today, and activation ends it.
    let extended = app
        .ok(
            &admin,
            None,
            "mutation($id: ID!) { extendTrial(id: $id, days: 3) { trialEndsAt trialExpired } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(extended["extendTrial"]["trialExpired"], false);
    let activated = app
        .ok(
            &admin,
            None,
            "mutation($id: ID!) { activateTenant(id: $id) { status trialExpired } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        activated["activateTenant"],
        json!({ "status": "ACTIVE", "trialExpired": false })
    );
}

crate::both!(the_role_matrix_of_administrative_mutations);
async fn the_role_matrix_of_administrative_mutations(app: TestApp) {
    let tenant = app.ready_tenant("acme").await;
    app.ready_tenant("other").await;
    let roles = ["OWNER", "SUPER_USER", "EDITOR", "CONTRIBUTOR", "VIEWER"];
    // Two owners, so that nothing here trips the last-owner rule.
    app.add_member("acme", "owner2@acme.test", "OWNER").await;
    for role in roles {
        app.add_member("acme", &format!("{}@acme.test", role.to_lowercase()), role)
            .await;
    }
    app.add_member("other", "stranger@other.test", "OWNER")
        .await;
    let rank = |who: &str| match who {
        "ADMIN" => 6,
        "OWNER" => 5,
        "SUPER_USER" => 4,
        "EDITOR" => 3,
        "CONTRIBUTOR" => 2,
        "VIEWER" => 1,
        _ => 0,
    };
    let token = |who: &str| match who {
        "ADMIN" => app.admin(),
        "STRANGER" => app.token("stranger@other.test", None, false, &[]),
        role => app.token(
            &format!("{}@acme.test", role.to_lowercase()),
            None,
            false,
            &[],
        ),
    };
    // (mutation, variables, least rank allowed) — in the tenant `acme`.
    let existing = app
        .ok(
            &app.admin(),
            Some("acme"),
            "mutation { createApplication(input: { code: \"kept\", name: \"Kept\", \
                routeNamespace: \"kept\" }) { id } }",
            json!({}),
        )
        .await;
    let existing = existing["createApplication"]["id"].clone();
    let mut n = 0;
    for who in [
        "ADMIN",
        "OWNER",
        "SUPER_USER",
        "EDITOR",
        "CONTRIBUTOR",
        "VIEWER",
        "STRANGER",
    ] {
        n += 1;
        let victim = app
            .ok(
                &app.admin(),
                Some("acme"),
                "mutation($c: String!) { createApplication(input: { code: $c, name: \
                    \"Victim\", routeNamespace: $c }) { id } }",
                json!({ "c": format!("victim{n}") }),
            )
            .await;
        let victim = victim["createApplication"]["id"].clone();
        let cases: Vec<(String, Value, i32)> = vec![
            (
                "mutation($e: String!) { addMember(email: $e, role: VIEWER) { id } }".into(),
                json!({ "e": format!("new{n}@acme.test") }),
                4,
            ),
            (
                "mutation($i: BrandingInput!) { updateBranding(input: $i) { primaryColor \
                    } }"
                .into(),
                json!({ "i": { "primaryColor": "#123456" } }),
                4,
            ),
            (
                "mutation($h: String!) { addDomain(host: $h) { id } }".into(),
                json!({ "h": format!("d{n}.acme.example") }),
                5,
            ),
            (
                "mutation($c: String!) { createApplication(input: { code: $c, name: \
                    \"A\", routeNamespace: $c }) { id } }"
                    .into(),
                json!({ "c": format!("app{n}") }),
                2,
            ),
            // Seed 002: Contributors add, Editors edit and delete.
            (
                "mutation($id: ID!, $n: String!) { updateApplication(id: $id, input: { \
                    name: $n }) { id } }"
                    .into(),
                json!({ "id": existing, "n": format!("Renamed {n}") }),
                3,
            ),
            (
                "mutation($id: ID!) { deleteApplication(id: $id) }".into(),
                json!({ "id": victim }),
                3,
            ),
            (
                "mutation($i: ID!) { createOrganization(input: { name: \"Unit\", \
                    parentId: $i }) { id } }"
                    .into(),
                json!({ "i": null }),
                4,
            ),
        ];
        for (mutation, mut variables, least) in cases {
            if mutation.contains("createOrganization") {
                let roots = app
                    .ok(
                        &app.admin(),
                        Some("acme"),
                        "{ organizations(filter: { parentId: null }) { nodes { id } } }",
                        json!({}),
                    )
                    .await;
                variables = json!({ "i": roots["organizations"]["nodes"][0]["id"] });
                let name = format!("Unit {n}");
                let mutation = mutation.replace("\"Unit\"", &format!("\"{name}\""));
                check(
                    &app,
                    &token(who),
                    who,
                    &mutation,
                    variables,
                    least,
                    rank(who),
                )
                .await;
                continue;
            }
            check(
                &app,
                &token(who),
                who,
                &mutation,
                variables,
                least,
                rank(who),
            )
            .await;
        }
        // Platform-only operations: everyone but the admin is refused.
        if who != "ADMIN" {
            for (mutation, variables) in [
                (
                    "mutation($id: ID!) { suspendTenant(id: $id, reason: \"x\") { id } }",
                    json!({ "id": tenant }),
                ),
                (
                    "mutation($id: ID!) { extendTrial(id: $id, days: 1) { id } }",
                    json!({ "id": tenant }),
                ),
                (
                    "mutation($id: ID!) { deleteTenant(id: $id) }",
                    json!({ "id": tenant }),
                ),
                (
                    "mutation($id: ID!) { seedStaffAdmin(tenantId: $id, email: \"s@acme.test\") { id } }",
                    json!({ "id": tenant }),
                ),
                (
                    "mutation { createTenant(input: { name: \"Nope\" }) { id } }",
                    json!({}),
                ),
                (
                    "mutation($id: ID!) { registerFeatures(tenantId: $id, features: []) { id } }",
                    json!({ "id": tenant }),
                ),
            ] {
                let body = app.gql(&token(who), None, mutation, variables).await;
                assert_eq!(
                    code(&body).as_deref(),
                    Some("FORBIDDEN"),
                    "{who}: {mutation}: {body}"
                );
            }
        }
    }
    // Every attempt above left an audit entry, refused ones marked so.
    let log = app
        .ok(
            &app.admin(),
            None,
            "{ auditLog(filter: { outcome: \"REFUSED\" }) { totalCount } }",
            json!({}),
        )
        .await;
    assert!(
        log["auditLog"]["totalCount"].as_i64().unwrap_or(0) >= 30,
        "{log}"
    );
}

async fn check(
    app: &TestApp,
    token: &str,
    who: &str,
    mutation: &str,
    variables: Value,
    least: i32,
    rank: i32,
) {
    let body = app.gql(token, Some("acme"), mutation, variables).await;
    if who == "STRANGER" {
        assert_eq!(
            code(&body).as_deref(),
            Some("CROSS_TENANT_DENIED"),
            "{who}: {mutation}: {body}"
        );
    } else if rank >= least {
        assert!(
            body.get("errors").is_none(),
            "{who} may: {mutation}: {body}"
        );
    } else {
        assert_eq!(
            code(&body).as_deref(),
            Some("FORBIDDEN"),
            "{who} may not: {mutation}: {body}"
        );
    }
}
