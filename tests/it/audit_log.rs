//! The audit log as an admin screen reads it: before → after for branding, domains and
//! features; `auditLog` newest first with keyset pages that hold while entries are written.

use serde_json::{Value, json};

use crate::harness::{TestApp, code};

const BRANDING: &str =
    "mutation($input: BrandingInput!) { updateBranding(input: $input) { primaryColor } }";

const LOG: &str = "query($filter: AuditLogFilter, $first: Int, $after: String, $order: AuditLogOrderBy) { \
    auditLog(filter: $filter, first: $first, after: $after, orderBy: $order) { totalCount \
    nodes { id at actor operation target outcome detail } \
    edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }";

crate::both!(a_branding_change_shows_before_and_after);
async fn a_branding_change_shows_before_and_after(app: TestApp) {
    app.ready_tenant("acme").await;
    app.ready_tenant("globex").await;
    app.add_member("acme", "owen@acme.test", "OWNER").await;
    app.add_member("acme", "vera@acme.test", "VIEWER").await;
    app.add_member("globex", "gil@globex.test", "OWNER").await;
    let owner = app.token("owen@acme.test", None, false, &[]);
    app.ok(
        &owner,
        Some("acme"),
        BRANDING,
        json!({ "input": { "primaryColor": "#112233", "linkColor": "#445566" } }),
    )
    .await;
    app.ok(
        &owner,
        Some("acme"),
        BRANDING,
        json!({ "input": { "primaryColor": "#abcdef" } }),
    )
    .await;
    let log = app
        .ok(
            &owner,
            Some("acme"),
            LOG,
            json!({ "filter": { "targetType": "Branding" } }),
        )
        .await;
    let nodes = log["auditLog"]["nodes"].as_array().expect("nodes").clone();
    assert_eq!(nodes.len(), 2, "{log}");
    // Newest first: the second change, which touched only the primary colour.
    let latest = &nodes[0]["detail"]["change"];
    assert_eq!(
        latest["before"],
        json!({ "primaryColor": "#112233" }),
        "{latest}"
    );
    assert_eq!(
        latest["after"],
        json!({ "primaryColor": "#abcdef" }),
        "{latest}"
    );
    let first = &nodes[1]["detail"]["change"];
    assert_eq!(first["before"]["primaryColor"], Value::Null, "{first}");
    assert_eq!(first["after"]["primaryColor"], "#112233", "{first}");
    assert_eq!(first["after"]["linkColor"], "#445566", "{first}");
    assert!(
        first["after"].get("secondaryColor").is_none(),
        "unchanged fields are left out: {first}"
    );
    assert_eq!(nodes[0]["operation"], "updateBranding");
    assert_eq!(nodes[0]["actor"], "owen@acme.test");
    assert_eq!(nodes[0]["detail"]["targetType"], "Branding");

    // Domains: added (before null), removed (after null).
    let added = app
        .ok(
            &owner,
            Some("acme"),
            "mutation { addDomain(host: \"portal.acme-audit.example\") { id } }",
            json!({}),
        )
        .await;
    let domain = added["addDomain"]["id"]
        .as_str()
        .expect("domain id")
        .to_string();
    app.ok(
        &owner,
        Some("acme"),
        "mutation($id: ID!) { removeDomain(id: $id) }",
        json!({ "id": domain }),
    )
    .await;
    let log = app
        .ok(
            &owner,
            Some("acme"),
            LOG,
            json!({ "filter": { "targetType": "Domain" } }),
        )
        .await;
    let nodes = &log["auditLog"]["nodes"];
    assert_eq!(nodes[0]["operation"], "removeDomain", "{log}");
    assert_eq!(
        nodes[0]["detail"]["change"]["before"]["host"],
        "portal.acme-audit.example"
    );
    assert_eq!(nodes[0]["detail"]["change"]["after"], Value::Null);
    assert_eq!(nodes[1]["operation"], "addDomain");
    assert_eq!(nodes[1]["detail"]["change"]["before"], Value::Null);
    assert_eq!(nodes[1]["detail"]["change"]["after"]["verified"], false);

    // Features: an admin's change lands in the tenant's log, with what changed.
    let admin = app.admin();
    let acme = app
        .ok(&admin, None, "{ tenant(id: \"acme\") { id } }", json!({}))
        .await["tenant"]["id"]
        .clone();
    let registered = app
        .ok(
            &admin,
            None,
            "mutation($t: ID!) { registerFeatures(tenantId: $t, features: [\
                { key: \"billing\", version: \"1\", provider: \"stripe\" }]) { id featureKey } }",
            json!({ "t": acme }),
        )
        .await;
    let feature = registered["registerFeatures"][0]["id"].clone();
    app.ok(
        &admin,
        None,
        "mutation($id: ID!) { updateFeature(id: $id, input: { version: \"2\" }) { version } }",
        json!({ "id": feature }),
    )
    .await;
    let log = app
        .ok(
            &owner,
            Some("acme"),
            LOG,
            json!({ "filter": { "targetType": "TenantFeature" } }),
        )
        .await;
    let nodes = &log["auditLog"]["nodes"];
    assert_eq!(log["auditLog"]["totalCount"], 2, "{log}");
    assert_eq!(nodes[0]["operation"], "updateFeature");
    assert_eq!(
        nodes[0]["detail"]["change"]["before"],
        json!({ "version": "1" })
    );
    assert_eq!(
        nodes[0]["detail"]["change"]["after"],
        json!({ "version": "2" })
    );
    let first = &nodes[1]["detail"]["change"]["features"][0];
    assert_eq!(first["key"], "billing", "{log}");
    assert_eq!(first["before"], Value::Null);
    assert_eq!(first["after"]["provider"], "stripe");

    // Nobody else reads it: another tenant's Owner sees none of acme's, a Viewer is refused.
    let gil = app.token("gil@globex.test", None, false, &[]);
    let theirs = app
        .ok(
            &gil,
            Some("globex"),
            LOG,
            json!({ "filter": { "targetType": "Branding" } }),
        )
        .await;
    assert_eq!(theirs["auditLog"]["totalCount"], 0, "{theirs}");
    let vera = app.token("vera@acme.test", None, false, &[]);
    let body = app.gql(&vera, Some("acme"), LOG, json!({})).await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    let body = app
        .gql(
            &owner,
            Some("acme"),
            LOG,
            json!({ "filter": { "tenantId": acme } }),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
}

/// `n` allowed entries in acme's log: branding changes by its Owner.
async fn write_entries(app: &TestApp, owner: &str, from: usize, n: usize) {
    for i in from..from + n {
        app.ok(
            owner,
            Some("acme"),
            BRANDING,
            json!({ "input": { "primaryColor": format!("#0000{i:02x}") } }),
        )
        .await;
    }
}

fn colors(page: &Value) -> Vec<String> {
    page["auditLog"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            n["detail"]["change"]["after"]["primaryColor"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

crate::both!(audit_pages_hold_while_entries_arrive);
async fn audit_pages_hold_while_entries_arrive(app: TestApp) {
    app.ready_tenant("acme").await;
    app.add_member("acme", "owen@acme.test", "OWNER").await;
    let owner = app.token("owen@acme.test", None, false, &[]);
    write_entries(&app, &owner, 0, 5).await;
    let filter = json!({ "operation": "updateBranding" });
    let one = app
        .ok(
            &owner,
            Some("acme"),
            LOG,
            json!({ "filter": filter, "first": 2 }),
        )
        .await;
    assert_eq!(colors(&one), ["#000004", "#000003"], "newest first: {one}");
    assert_eq!(one["auditLog"]["pageInfo"]["hasNextPage"], true);
    let end = one["auditLog"]["pageInfo"]["endCursor"].clone();
    assert_eq!(end, one["auditLog"]["edges"][1]["cursor"], "{one}");
    // Three entries arrive between the pages: the next page goes on where the first ended.
    write_entries(&app, &owner, 5, 3).await;
    let two = app
        .ok(
            &owner,
            Some("acme"),
            LOG,
            json!({ "filter": filter, "first": 2, "after": end }),
        )
        .await;
    assert_eq!(colors(&two), ["#000002", "#000001"], "{two}");
    assert_eq!(
        two["auditLog"]["totalCount"], 8,
        "the count sees the new entries"
    );
    let three = app
        .ok(
            &owner,
            Some("acme"),
            LOG,
            json!({ "filter": filter, "first": 2, "after": two["auditLog"]["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(colors(&three), ["#000000"], "{three}");
    assert_eq!(three["auditLog"]["pageInfo"]["hasNextPage"], false);

    // Oldest first pages the same way, and a new first page starts with the newest entry.
    let asc = app
        .ok(
            &owner,
            Some("acme"),
            LOG,
            json!({ "filter": filter, "first": 3, "order": "AT_ASC" }),
        )
        .await;
    assert_eq!(colors(&asc), ["#000000", "#000001", "#000002"], "{asc}");
    let asc2 = app
        .ok(
            &owner,
            Some("acme"),
            LOG,
            json!({ "filter": filter, "first": 10, "order": "AT_ASC",
                    "after": asc["auditLog"]["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(colors(&asc2).len(), 5, "{asc2}");
    let newest = app
        .ok(
            &owner,
            Some("acme"),
            LOG,
            json!({ "filter": filter, "first": 1 }),
        )
        .await;
    assert_eq!(colors(&newest), ["#000007"]);

    // A time window: nothing after the newest entry, everything up to it.
    let at = newest["auditLog"]["nodes"][0]["at"]
        .as_str()
        .expect("at")
        .to_string();
    let later = app
        .ok(
            &owner,
            Some("acme"),
            LOG,
            json!({ "filter": { "operation": "updateBranding", "from": at } }),
        )
        .await;
    assert_eq!(
        later["auditLog"]["totalCount"], 1,
        "from is inclusive: {later}"
    );
    let before = app
        .ok(
            &owner,
            Some("acme"),
            LOG,
            json!({ "filter": { "operation": "updateBranding", "to": at } }),
        )
        .await;
    assert_eq!(
        before["auditLog"]["totalCount"], 7,
        "to is exclusive: {before}"
    );

    // Bad input.
    for (variables, field) in [
        (json!({ "after": "not-a-cursor" }), "after"),
        (json!({ "first": 0 }), "first"),
        (json!({ "first": 501 }), "first"),
        (json!({ "filter": { "from": "yesterday" } }), "filter.from"),
    ] {
        let body = app.gql(&owner, Some("acme"), LOG, variables).await;
        assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
}
