//! Ids are one kind (issue #14 item 5): fields naming another node hold its global id, and a
//! membership's own id is enough to change or remove it without naming the tenant; the guard
//! still decides, in the membership's tenant, and tells a stranger nothing.

use serde_json::json;

use crate::harness::{TestApp, code};

crate::both!(fields_naming_other_nodes_hold_global_ids);

async fn fields_naming_other_nodes_hold_global_ids(app: TestApp) {
    let tenant = app.create_tenant("acme").await;
    app.add_member("acme", "viewer@acme.test", "VIEWER").await;
    let executor = app.replica(|c| c.planned_reads = false).await;
    let admin = app.admin();
    app.ok(
        &admin,
        Some("acme"),
        "mutation { createApplication(input: { code: \"crm\", name: \"CRM\", routeNamespace: \"crm\" }) { id } }",
        json!({}),
    )
    .await;
    for server in [&app, &executor] {
        let data = server
            .ok(
                &admin,
                Some("acme"),
                "{ applications { nodes { tenantId } } memberships { nodes { tenantId userId user { id } } } }",
                json!({}),
            )
            .await;
        assert_eq!(data["applications"]["nodes"][0]["tenantId"], json!(tenant));
        let m = &data["memberships"]["nodes"][0];
        assert_eq!(m["tenantId"], json!(tenant));
        assert_eq!(
            m["userId"], m["user"]["id"],
            "userId is the User's global id"
        );
        // The global id works where an id is looked up.
        let node = server
            .ok(
                &admin,
                Some("acme"),
                "query($id: ID!) { node(id: $id) { __typename } }",
                json!({ "id": tenant }),
            )
            .await;
        assert_eq!(node["node"]["__typename"], json!("Tenant"), "{node}");
        // Filters on a user reference take the global id, and the raw UUID still.
        let user = m["userId"].as_str().expect("userId").to_string();
        let raw = crate::harness::uuid_of(&user).to_string();
        for id in [&user, &raw] {
            let data = server
                .ok(
                    &admin,
                    Some("acme"),
                    "query($u: ID) { memberships(filter: { userId: $u }) { totalCount } }",
                    json!({ "u": id }),
                )
                .await;
            assert_eq!(data["memberships"]["totalCount"], json!(1), "{id}");
        }
    }
}

crate::both!(a_membership_id_is_enough_and_the_guard_still_decides);

async fn a_membership_id_is_enough_and_the_guard_still_decides(app: TestApp) {
    app.ready_tenant("acme").await;
    app.ready_tenant("other").await;
    app.add_member("acme", "owner@acme.test", "OWNER").await;
    let viewer = app.add_member("acme", "viewer@acme.test", "VIEWER").await;
    let editor = app.add_member("acme", "editor@acme.test", "EDITOR").await;
    app.add_member("other", "owner@other.test", "OWNER").await;
    // Tokens that name no tenant: the request says nothing but the membership's id.
    let owner = app.token("owner@acme.test", None, false, &[]);
    let stranger = app.token("owner@other.test", None, false, &[]);
    let low = app.token("viewer@acme.test", None, false, &[]);
    let change = "mutation($id: ID!, $role: Role!) { changeMemberRole(id: $id, role: $role) { id role tenantId } }";
    let remove = "mutation($id: ID!) { removeMember(id: $id) }";

    let data = app
        .ok(
            &owner,
            None,
            change,
            json!({ "id": viewer, "role": "EDITOR" }),
        )
        .await;
    assert_eq!(data["changeMemberRole"]["role"], json!("EDITOR"));

    // Someone with no role in acme: refused exactly as for an id that does not exist.
    let missing = {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        URL_SAFE_NO_PAD.encode(format!("Membership:{}", uuid::Uuid::now_v7()))
    };
    for id in [&viewer, &missing] {
        for (query, vars) in [
            (change, json!({ "id": id, "role": "VIEWER" })),
            (remove, json!({ "id": id })),
        ] {
            let body = app.gql(&stranger, None, query, vars.clone()).await;
            assert_eq!(code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
            let message = body["errors"][0]["message"].clone();
            let again = app.gql(&stranger, Some("other"), query, vars).await;
            assert_eq!(code(&again).as_deref(), Some("NOT_FOUND"), "{again}");
            assert_eq!(again["errors"][0]["message"], message, "the same answer");
        }
    }
    // A member of acme below the role needed: the usual refusal, in acme.
    let body = app
        .gql(
            &low,
            None,
            change,
            json!({ "id": editor, "role": "VIEWER" }),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    // Nothing changed for the refused calls.
    let roles = app
        .ok(
            &app.admin(),
            Some("acme"),
            "{ memberships { nodes { id role } } }",
            json!({}),
        )
        .await;
    let role_of = |id: &str| {
        roles["memberships"]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["id"] == json!(id))
            .map(|m| m["role"].clone())
    };
    assert_eq!(role_of(&viewer), Some(json!("EDITOR")));
    assert_eq!(role_of(&editor), Some(json!("EDITOR")));

    let data = app.ok(&owner, None, remove, json!({ "id": viewer })).await;
    assert_eq!(data["removeMember"], json!(viewer));
    let body = app.gql(&owner, None, remove, json!({ "id": viewer })).await;
    assert_eq!(code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
}
