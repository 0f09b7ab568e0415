//! Issue #17: tenant administration an admin UI can be built on — editing a tenant, with an
//! audit entry that says what changed.

use serde_json::{Value, json};

use crate::harness::{TestApp, code};

const UPDATE: &str = "mutation($id: ID!, $input: UpdateTenantInput!) { updateTenant(id: $id, \
    input: $input) { slug name contactEmail plan regionHint rootCompanyId \
    subdomain status } }";

crate::both!(a_tenant_is_edited_by_slug_or_id);
async fn a_tenant_is_edited_by_slug_or_id(app: TestApp) {
    let admin = app.admin();
    let id = app.ready_tenant("acme").await;
    app.create_tenant("globex").await;
    let data = app
        .ok(
            &admin,
            None,
            UPDATE,
            json!({ "id": "acme", "input": {
            "name": "Acme City", "contactEmail": "Ops@Acme.test", "plan": "gold",
            "regionHint": "eu-west", "rootCompanyId": "C-1001", "subdomain": "acme-city" } }),
        )
        .await;
    assert_eq!(
        data["updateTenant"],
        json!({
        "slug": "acme", "name": "Acme City", "contactEmail": "ops@acme.test", "plan": "gold",
        "regionHint": "eu-west", "rootCompanyId": "C-1001", "subdomain": "acme-city", "status": data["updateTenant"]["status"] })
    );
    // By global id; null clears a nullable field, an absent one stays.
    let data = app
        .ok(
            &admin,
            None,
            UPDATE,
            json!({ "id": id, "input": { "plan": null } }),
        )
        .await;
    assert_eq!(data["updateTenant"]["plan"], Value::Null);
    assert_eq!(data["updateTenant"]["rootCompanyId"], "C-1001");
    app.ok(
        &admin,
        None,
        UPDATE,
        json!({ "id": "globex", "input": { "subdomain": "globex" } }),
    )
    .await;
    // Bad input, and nothing changed by it.
    for (input, expected) in [
        (json!({}), "BAD_USER_INPUT"),
        (json!({ "name": "  " }), "BAD_USER_INPUT"),
        (
            json!({ "contactEmail": "not-an-address" }),
            "BAD_USER_INPUT",
        ),
        (json!({ "subdomain": "Not A Label" }), "BAD_USER_INPUT"),
        (json!({ "subdomain": "globex" }), "CONFLICT"),
        (json!({ "status": "SUSPENDED" }), "BAD_USER_INPUT"),
    ] {
        let body = app
            .gql(
                &admin,
                None,
                UPDATE,
                json!({ "id": "acme", "input": input }),
            )
            .await;
        assert_eq!(code(&body).as_deref(), Some(expected), "{input}: {body}");
    }
    let tenant = app
        .ok(
            &admin,
            None,
            "{ tenants(first: 10) { nodes { slug name subdomain } } }",
            json!({}),
        )
        .await;
    let acme = tenant["tenants"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|t| t["slug"] == "acme")
        .cloned();
    assert_eq!(
        acme,
        Some(json!({ "slug": "acme", "name": "Acme City", "subdomain": "acme-city" }))
    );
    // Members, even Owners, do not edit the catalog.
    app.add_member("acme", "o@acme.test", "OWNER").await;
    let owner = app.token("o@acme.test", Some("acme"), false, &[]);
    let body = app
        .gql(
            &owner,
            Some("acme"),
            UPDATE,
            json!({ "id": "acme", "input": { "name": "Mine" } }),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    // An unknown tenant.
    let body = app
        .gql(
            &admin,
            None,
            UPDATE,
            json!({ "id": "nope", "input": { "name": "X" } }),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("TENANT_NOT_FOUND"), "{body}");
}

crate::both!(the_audit_entry_shows_before_and_after);
async fn the_audit_entry_shows_before_and_after(app: TestApp) {
    let admin = app.admin();
    app.create_tenant("acme").await;
    app.ok(
        &admin,
        None,
        UPDATE,
        json!({ "id": "acme", "input": { "name": "Acme City", "rootCompanyId": "C-7" } }),
    )
    .await;
    let log = app
        .ok(
            &admin,
            None,
            "{ auditLog(filter: { operation: \"updateTenant\" }) { nodes { actor \
                outcome target requestId detail } } }",
            json!({}),
        )
        .await;
    let entry = &log["auditLog"]["nodes"][0];
    assert_eq!(entry["outcome"], "ALLOWED", "{log}");
    assert_eq!(entry["target"], "acme");
    assert!(
        entry["requestId"].is_string(),
        "the request id is kept: {entry}"
    );
    let change = &entry["detail"]["change"];
    assert_eq!(change["targetType"], "Tenant");
    assert_eq!(change["before"]["name"], "Tenant acme", "{change}");
    assert_eq!(change["after"]["name"], "Acme City", "{change}");
    assert_eq!(change["before"]["rootCompanyId"], Value::Null);
    assert_eq!(change["after"]["rootCompanyId"], "C-7");
}

crate::both!(the_members_page_shows_people);
async fn the_members_page_shows_people(app: TestApp) {
    app.ready_tenant("acme").await;
    app.ready_tenant("globex").await;
    app.add_member("acme", "Owen@Acme.test", "OWNER").await;
    app.add_member("acme", "vera@acme.test", "VIEWER").await;
    app.add_member("globex", "gil@globex.test", "OWNER").await;
    let owner = app.token("owen@acme.test", None, false, &[]);
    let page = app
        .ok(
            &owner,
            Some("acme"),
            "{ memberships(first: 10, orderBy: CREATED_AT_ASC) { nodes { role \
                createdAt user { id email subject displayName createdAt } } } }",
            json!({}),
        )
        .await;
    let people: Vec<(String, String)> = page["memberships"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|m| {
            (
                m["user"]["email"].as_str().unwrap_or("").to_string(),
                m["role"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        people,
        vec![
            ("owen@acme.test".to_string(), "OWNER".to_string()),
            ("vera@acme.test".to_string(), "VIEWER".to_string())
        ],
        "{page}"
    );
    let user = &page["memberships"]["nodes"][0]["user"];
    assert!(
        user["id"].as_str().is_some_and(|id| !id.contains('@')),
        "a global id: {user}"
    );
    assert_eq!(user["subject"], "owen@acme.test");
    // Team members show people too.
    let admin = app.admin();
    let root = app
        .ok(
            &admin,
            Some("acme"),
            "{ organizations { nodes { id } } }",
            json!({}),
        )
        .await;
    let team = app
        .ok(
            &admin,
            Some("acme"),
            "mutation($o: ID!) { createTeam(input: { organizationId: $o, name: \
                \"Roads\" }) { id } }",
            json!({ "o": root["organizations"]["nodes"][0]["id"] }),
        )
        .await;
    let vera = forklift::tenants::members::user_for_email(&app.state.db, "vera@acme.test")
        .await
        .expect("user");
    app.ok(
        &admin,
        Some("acme"),
        "mutation($t: ID!, $u: ID!) { createTeamMember(input: { teamId: $t, userId: $u }) { id } }",
        json!({ "t": team["createTeam"]["id"], "u": vera.id.to_string() }),
    )
    .await;
    let members = app
        .ok(
            &owner,
            Some("acme"),
            "{ teamMembers { nodes { team { name } user { email } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        members["teamMembers"]["nodes"],
        json!([{ "team": { "name": "Roads" }, "user": { "email": "vera@acme.test" } }])
    );
    // Another tenant's people stay out of sight.
    let all = page.to_string() + &members.to_string();
    assert!(!all.contains("gil@globex.test"), "{all}");
}

crate::both!(lifecycle_details_follow_seed_002);
async fn lifecycle_details_follow_seed_002(app: TestApp) {
    let admin = app.admin();
    // The suspension reason is optional, and stored when given.
    let id = app.create_tenant("acme").await;
    let suspend = "mutation($id: ID!, $r: String) { suspendTenant(id: $id, reason: $r) { status suspensionReason } }";
    let data = app.ok(&admin, None, suspend, json!({ "id": id })).await;
    assert_eq!(
        data["suspendTenant"],
        json!({ "status": "SUSPENDED", "suspensionReason": null })
    );
    let data = app
        .ok(
            &admin,
            None,
            suspend,
            json!({ "id": id, "r": "Unpaid invoice" }),
        )
        .await;
    assert_eq!(data["suspendTenant"]["suspensionReason"], "Unpaid invoice");
    // registerFeatures answers the tenant's whole catalog.
    let globex = app.ready_tenant("globex").await;
    let register = "mutation($t: ID!, $f: [FeatureInput!]!) { registerFeatures(tenantId: \
        $t, features: $f) { featureKey version } }";
    app.ok(
        &admin,
        None,
        register,
        json!({ "t": globex, "f": [{ "key": "permits", "version": "1", "provider": "core" }] }),
    )
    .await;
    let data = app
        .ok(
            &admin,
            None,
            register,
            json!({ "t": globex, "f": [{ "key": "budget", "version": "2", "provider": "core" }] }),
        )
        .await;
    assert_eq!(
        data["registerFeatures"],
        json!([{ "featureKey": "budget", "version": "2" }, { "featureKey": "permits", "version": "1" }])
    );
    // A domain given at creation expects the same TXT value as one added later.
    let created = app
        .ok(
            &admin,
            None,
            "mutation { createTenant(input: { name: \"Initech\", slug: \"initech\", \
                domain: \"portal.initech.test\", status: ACTIVE }) { id } }",
            json!({}),
        )
        .await;
    assert!(created["createTenant"]["id"].is_string());
    let domains = app
        .ok(
            &admin,
            Some("initech"),
            "{ domains { nodes { host verificationToken } } }",
            json!({}),
        )
        .await;
    let token = domains["domains"]["nodes"][0]["verificationToken"]
        .as_str()
        .expect("token")
        .to_string();
    assert!(
        token.len() == 32 && token.chars().all(|c| c.is_ascii_hexdigit()),
        "a bare token: {token}"
    );
}

crate::both!(x_tenant_id_is_an_alias_of_x_tenant);
async fn x_tenant_id_is_an_alias_of_x_tenant(app: TestApp) {
    app.ready_tenant("acme").await;
    app.add_member("acme", "o@acme.test", "OWNER").await;
    let owner = app.token("o@acme.test", None, false, &[]);
    let send = |headers: Vec<(&'static str, &'static str)>| {
        let mut request = app
            .http
            .post(app.url("/graphql"))
            .bearer_auth(&owner)
            .json(&json!({ "query": "{ memberships { totalCount } }" }));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move {
            request
                .send()
                .await
                .expect("sent")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let body = send(vec![("X-Tenant-Id", "acme")]).await;
    assert_eq!(body["data"]["memberships"]["totalCount"], 1, "{body}");
    let body = send(vec![("X-Tenant", "acme"), ("X-Tenant-Id", "acme")]).await;
    assert_eq!(body["data"]["memberships"]["totalCount"], 1, "{body}");
    let body = send(vec![("X-Tenant", "acme"), ("X-Tenant-Id", "globex")]).await;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
}

crate::both!(an_invited_member_is_linked_by_verified_email);
async fn an_invited_member_is_linked_by_verified_email(app: TestApp) {
    use crate::hostile::sign_hs256;
    app.ready_tenant("acme").await;
    app.add_member("acme", "amy@acme.test", "EDITOR").await;
    let admin = app.admin();
    let statuses = || async {
        let page = app
            .ok(
                &admin,
                Some("acme"),
                "{ memberships { nodes { status role user { email subject lastSeenAt } } } }",
                json!({}),
            )
            .await;
        page["memberships"]["nodes"][0].clone()
    };
    let before = statuses().await;
    assert_eq!(before["status"], "INVITED", "{before}");
    assert_eq!(before["user"]["lastSeenAt"], Value::Null);
    let header = json!({ "alg": "HS256", "typ": "JWT" });
    let exp = chrono::Utc::now().timestamp() + 600;
    let token = |sub: &str, verified: Value| {
        sign_hs256(
            &header,
            &json!({ "sub": sub, "exp": exp, "email": "Amy@Acme.test", "email_verified": verified }),
        )
    };
    // An unverified e-mail never links.
    for unverified in [json!(false), json!("false"), Value::Null] {
        let (_, body) = app
            .post(
                Some(&token("auth0|amy-123", unverified.clone())),
                Some("acme"),
                "{ me { subject } memberships { totalCount } }",
                Value::Null,
            )
            .await;
        assert_eq!(
            code(&body).as_deref(),
            Some("CROSS_TENANT_DENIED"),
            "{unverified}: {body}"
        );
    }
    assert_eq!(statuses().await["status"], "INVITED");
    // An opaque subject with the verified, invited e-mail: linked, and the member is active.
    let amy = token("auth0|amy-123", json!(true));
    let data = app
        .ok(
            &amy,
            Some("acme"),
            "{ me { subject } memberships { totalCount } }",
            Value::Null,
        )
        .await;
    assert_eq!(data["me"]["subject"], "auth0|amy-123");
    let after = statuses().await;
    assert_eq!(after["status"], "ACTIVE", "{after}");
    assert_eq!(after["user"]["subject"], "auth0|amy-123");
    assert_eq!(after["user"]["email"], "amy@acme.test");
    assert!(after["user"]["lastSeenAt"].is_string(), "{after}");
    // The same subject keeps working; another subject with the same e-mail is not Amy.
    app.ok(
        &amy,
        Some("acme"),
        "{ memberships { totalCount } }",
        Value::Null,
    )
    .await;
    let impostor = token("google-oauth2|999", json!(true));
    let (_, body) = app
        .post(
            Some(&impostor),
            Some("acme"),
            "{ memberships { totalCount } }",
            Value::Null,
        )
        .await;
    assert_eq!(
        code(&body).as_deref(),
        Some("CROSS_TENANT_DENIED"),
        "{body}"
    );
}

crate::both!(the_audit_log_says_who_changed_what);
async fn the_audit_log_says_who_changed_what(app: TestApp) {
    let admin = app.admin();
    app.ready_tenant("acme").await;
    let membership = app.add_member("acme", "amy@acme.test", "VIEWER").await;
    app.ok(
        &admin,
        Some("acme"),
        "mutation($id: ID!) { changeMemberRole(id: $id, role: EDITOR) { id } }",
        json!({ "id": membership }),
    )
    .await;
    app.ok(
        &admin,
        None,
        "mutation { suspendTenant(id: \"acme\", reason: \"Unpaid\") { status } }",
        json!({}),
    )
    .await;
    let created = app
        .ok(
            &admin,
            None,
            "mutation { createTenant(input: { name: \"Globex\", slug: \"globex\" }) { id } }",
            json!({}),
        )
        .await;
    let log = app
        .ok(
            &admin,
            None,
            "{ auditLog(orderBy: AT_ASC, first: 50) { nodes { operation target \
                tenantId detail } } }",
            json!({}),
        )
        .await;
    let entries = log["auditLog"]["nodes"]
        .as_array()
        .expect("entries")
        .clone();
    let find = |op: &str| {
        entries
            .iter()
            .rev()
            .find(|e| e["operation"] == op)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let role = find("changeMemberRole");
    assert_eq!(
        role["detail"]["change"]["user"]["email"], "amy@acme.test",
        "{role}"
    );
    assert_eq!(role["detail"]["change"]["before"]["role"], "VIEWER");
    assert_eq!(role["detail"]["change"]["after"]["role"], "EDITOR");
    assert!(role["tenantId"].is_string(), "{role}");
    let added = find("addMember");
    assert_eq!(
        added["detail"]["change"]["after"]["role"], "VIEWER",
        "{added}"
    );
    let suspended = find("suspendTenant");
    assert_eq!(
        suspended["detail"]["change"]["before"]["status"], "ACTIVE",
        "{suspended}"
    );
    assert_eq!(
        suspended["detail"]["change"]["after"]["status"],
        "SUSPENDED"
    );
    assert_eq!(
        suspended["detail"]["change"]["after"]["suspensionReason"],
        "Unpaid"
    );
    let create = find("createTenant");
    assert_eq!(
        create["detail"]["change"]["tenant"]["slug"], "globex",
        "{create}"
    );
    assert_eq!(
        create["target"], created["createTenant"]["id"],
        "the created tenant is the target"
    );
    assert!(
        create["tenantId"].is_string(),
        "and the entry is in its log: {create}"
    );
    let fork = find("forkTenant");
    assert_eq!(fork["detail"]["change"]["tenant"]["slug"], "acme", "{fork}");
    assert!(fork["detail"]["change"]["run"].is_string());
    // The run names its target as a Tenant.
    let run = app
        .ok(
            &admin,
            None,
            "query($id: ID!) { forkRun(id: $id) { target { slug name } } }",
            json!({ "id": fork["detail"]["change"]["run"] }),
        )
        .await;
    assert_eq!(
        run["forkRun"]["target"],
        json!({ "slug": "acme", "name": "Tenant acme" }),
        "{run}"
    );
    // Super Users read their tenant's log; Editors do not.
    app.ok(
        &admin,
        None,
        "mutation { activateTenant(id: \"acme\") { status } }",
        json!({}),
    )
    .await;
    app.add_member("acme", "su@acme.test", "SUPER_USER").await;
    app.add_member("acme", "ed@acme.test", "EDITOR").await;
    let su = app.token("su@acme.test", None, false, &[]);
    let own = app
        .ok(
            &su,
            Some("acme"),
            "{ auditLog(filter: { operation: \"changeMemberRole\" }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(own["auditLog"]["totalCount"], 1, "{own}");
    let editor = app.token("ed@acme.test", None, false, &[]);
    let body = app
        .gql(
            &editor,
            Some("acme"),
            "{ auditLog { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
}

crate::both!(platform_admins_find_people);
async fn platform_admins_find_people(app: TestApp) {
    let admin = app.admin();
    app.ready_tenant("acme").await;
    for n in 0..5 {
        app.add_member("acme", &format!("person{n}@acme.test"), "VIEWER")
            .await;
    }
    app.add_member("acme", "100%_odd@acme.test", "VIEWER").await;
    let page = "query($s: String, $after: String) { users(search: $s, first: 2, after: \
        $after) { totalCount nodes { email } pageInfo { hasNextPage endCursor } \
        } }";
    // Keyset pages: every person once, in order, however the pages fall.
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = app
            .ok(&admin, None, page, json!({ "s": "PERSON", "after": after }))
            .await;
        let expected_total = if seen.len() < 2 { 5 } else { 6 };
        assert_eq!(data["users"]["totalCount"], expected_total, "{data}");
        for node in data["users"]["nodes"].as_array().expect("nodes") {
            seen.push(node["email"].as_str().expect("email").to_string());
        }
        if data["users"]["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = data["users"]["pageInfo"]["endCursor"].clone();
        // A user added between two pages does not shift or repeat anyone.
        if seen.len() == 2 {
            app.add_member("acme", "person-late@acme.test", "VIEWER")
                .await;
        }
    }
    let mut expected: Vec<String> = (0..5).map(|n| format!("person{n}@acme.test")).collect();
    expected.push("person-late@acme.test".into());
    assert_eq!(seen, expected);
    // `%` and `_` in a search are literal.
    let data = app.ok(&admin, None, page, json!({ "s": "100%_" })).await;
    assert_eq!(
        data["users"]["nodes"],
        json!([{ "email": "100%_odd@acme.test" }])
    );
    // Only platform admins list people.
    app.add_member("acme", "o@acme.test", "OWNER").await;
    let owner = app.token("o@acme.test", None, false, &[]);
    let body = app.gql(&owner, Some("acme"), page, json!({})).await;
    assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
}
