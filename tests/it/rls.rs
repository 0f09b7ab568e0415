//! Issue #7: row-level security on PostgreSQL, the second wall between tenants.

use forklift::registry::Registry;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::{
    fixture,
    harness::{APP_ROLE, Backend, SYSTEM_ROLE, TestApp},
};

async fn rows(db: &sea_orm::DatabaseConnection, sql: &str) -> Vec<sea_orm::QueryResult> {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        sql.to_string(),
    ))
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tenant_table_has_forced_rls_and_the_server_role_cannot_bypass_it() {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, |_| {}, Registry::default()).await
    else {
        return;
    };
    let db = &app.state.db;
    let tables = rows(
        db,
        "SELECT c.relname AS name, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced, \
                pg_get_userbyid(c.relowner) AS owner, \
                (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies \
            FROM pg_class c JOIN information_schema.columns col \
            ON col.table_name = c.relname AND col.column_name = 'tenant_id' AND col.table_schema = 'public' \
            WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace",
    )
    .await;
    assert!(
        tables.len() >= 20,
        "tenant-owned tables found: {}",
        tables.len()
    );
    for t in &tables {
        let name: String = t.try_get("", "name").expect("name");
        assert!(
            t.try_get::<bool>("", "rls").expect("rls"),
            "{name}: RLS enabled"
        );
        assert!(
            t.try_get::<bool>("", "forced").expect("forced"),
            "{name}: RLS forced"
        );
        assert!(
            t.try_get::<i64>("", "policies").expect("policies") >= 1,
            "{name}: a policy"
        );
        let owner: String = t.try_get("", "owner").expect("owner");
        assert_ne!(owner, APP_ROLE, "{name}: the server's role owns no table");
    }
    let who = "SELECT current_user AS who, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user";
    let me = rows(&app.state.scoped_db.request, who).await;
    assert_eq!(
        me[0].try_get::<String>("", "who").expect("who"),
        APP_ROLE,
        "the request pool connects as the application role"
    );
    assert!(!me[0].try_get::<bool>("", "rolsuper").expect("super"));
    assert!(!me[0].try_get::<bool>("", "rolbypassrls").expect("bypass"));
    let system = rows(db, who).await;
    assert_eq!(
        system[0].try_get::<String>("", "who").expect("who"),
        SYSTEM_ROLE,
        "the system pool is a role of its own"
    );
    assert!(
        system[0]
            .try_get::<bool>("", "rolbypassrls")
            .expect("bypass")
    );
    // One policy per table, and it depends on nothing but the named tenant.
    let policies = rows(
        db,
        "SELECT tablename::text AS t, policyname::text AS p, coalesce(qual, '') || ' ' || coalesce(with_check, '') AS expr \
            FROM pg_policies WHERE schemaname = 'public'",
    )
    .await;
    assert_eq!(
        policies.len(),
        tables.len(),
        "one policy per tenant-owned table"
    );
    for p in &policies {
        let (table, name, expr): (String, String, String) = (
            p.try_get("", "t").expect("t"),
            p.try_get("", "p").expect("p"),
            p.try_get("", "expr").expect("expr"),
        );
        assert_eq!(name, "tenant_only", "{table}");
        assert!(
            !expr.contains("system") && !expr.contains("all_tenants") && !expr.contains('*'),
            "{table}: {expr}"
        );
    }
    let gone = rows(
        db,
        "SELECT proname::text AS p FROM pg_proc WHERE proname IN ('forklift_system', 'forklift_all_tenants')",
    )
    .await;
    assert!(gone.is_empty(), "the session-switch functions are gone");
}

/// A PostgreSQL server with a seeded template forked into `acme` and `globex`; `None` when
/// PostgreSQL is unavailable and not required.
async fn acme_and_globex() -> Option<TestApp> {
    let app = TestApp::spawn_with(Backend::Postgres, |_| {}, Registry::default()).await?;
    fixture::seeded_template(&app.state, 2).await;
    app.ready_tenant("acme").await;
    app.ready_tenant("globex").await;
    Some(app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_skips_the_scope_sees_no_tenant_rows() {
    let Some(app) = acme_and_globex().await else {
        return;
    };
    // Through the request pool with no tenant named (as a scoping bug would): nothing.
    let scoped = &app.state.scoped_db.request;
    for table in [
        "applications",
        "actions",
        "navigation_items",
        "organizations",
        "memberships",
    ] {
        let found = rows(scoped, &format!("SELECT id FROM {table}")).await;
        assert!(
            found.is_empty(),
            "{table}: {} rows visible without a tenant",
            found.len()
        );
    }
    // Vocabulary stays readable.
    assert!(
        !rows(scoped, "SELECT id FROM entity_schemas")
            .await
            .is_empty()
    );
    // A transaction naming acme sees acme's rows only, and cannot write globex's.
    let tenants = rows(&app.state.db, "SELECT id::text AS id, slug FROM tenants").await;
    let id_of = |slug: &str| -> String {
        tenants
            .iter()
            .find(|t| t.try_get::<String>("", "slug").ok().as_deref() == Some(slug))
            .and_then(|t| t.try_get::<String>("", "id").ok())
            .expect("tenant")
    };
    let (acme, globex) = (id_of("acme"), id_of("globex"));
    use sea_orm::TransactionTrait;
    let tx = scoped.begin().await.expect("begin");
    tx.execute_unprepared(&format!(
        "SELECT set_config('forklift.tenant', '{acme}', true)"
    ))
    .await
    .expect("set tenant");
    let seen = rows_tx(
        &tx,
        "SELECT DISTINCT tenant_id::text AS t FROM applications",
    )
    .await;
    assert_eq!(seen, vec![acme.clone()], "only acme's applications");
    let changed = tx
        .execute_unprepared(&format!(
            "UPDATE applications SET name = 'x' WHERE tenant_id = '{globex}'"
        ))
        .await
        .expect("update")
        .rows_affected();
    assert_eq!(changed, 0, "globex's rows are invisible to the update");
    let insert = tx
        .execute_unprepared(&format!(
            "INSERT INTO organizations (id, tenant_id, parent_id, name, created_at, updated_at) \
                VALUES (gen_random_uuid(), '{globex}', NULL, 'sneaky', now(), now())"
        ))
        .await;
    assert!(
        insert.is_err(),
        "a row for another tenant is refused by the policy"
    );
    drop(tx);
    // The setting ended with the transaction: the next one on the pool sees nothing again.
    assert!(rows(scoped, "SELECT id FROM applications").await.is_empty());
    // And the API, which names the tenant, works as usual.
    let data = app
        .ok(
            &app.admin(),
            Some("acme"),
            "{ applications { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(data["applications"]["totalCount"], 2);
}

async fn rows_tx(tx: &sea_orm::DatabaseTransaction, sql: &str) -> Vec<String> {
    tx.query_all_raw(Statement::from_string(
        tx.get_database_backend(),
        sql.to_string(),
    ))
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
    .iter()
    .map(|r| r.try_get::<String>("", "t").expect("t"))
    .collect()
}

/// One connection as `url`'s role, so session settings stick between statements.
async fn session(url: &str) -> sea_orm::DatabaseConnection {
    let mut options = sea_orm::ConnectOptions::new(url.to_string());
    options
        .max_connections(1)
        .min_connections(1)
        .sqlx_logging(false);
    sea_orm::Database::connect(options)
        .await
        .expect("connect as the application role")
}

/// `sql` on `db`: `Ok(rows affected)` or the database's refusal.
async fn run(db: &sea_orm::DatabaseConnection, sql: &str) -> Result<u64, String> {
    db.execute_unprepared(sql)
        .await
        .map(|r| r.rows_affected())
        .map_err(|e| e.to_string())
}

/// Every session setting the application role can change, each with whether PostgreSQL must
/// refuse the statement itself. Whatever it accepts must not widen what the session sees.
fn attempts(system_role: &str, acme: &str) -> Vec<(&'static str, Vec<String>, bool)> {
    let s = |v: &str| v.to_string();
    vec![
        (
            "SET forklift.system",
            vec![s("SET forklift.system = 'on'")],
            false,
        ),
        (
            "set_config(forklift.system)",
            vec![s("SELECT set_config('forklift.system', 'on', false)")],
            false,
        ),
        (
            "set_config(forklift.tenant, *)",
            vec![s("SELECT set_config('forklift.tenant', '*', false)")],
            false,
        ),
        (
            "SET forklift.tenant = *",
            vec![s("SET forklift.tenant = '*'")],
            false,
        ),
        (
            "both at once, acme named",
            vec![
                s("SET forklift.system = 'on'"),
                format!("SELECT set_config('forklift.tenant', '{acme}', false)"),
            ],
            false,
        ),
        (
            "SET ROLE system",
            vec![format!("SET ROLE {system_role}")],
            true,
        ),
        (
            "SET SESSION AUTHORIZATION system",
            vec![format!("SET SESSION AUTHORIZATION {system_role}")],
            true,
        ),
        (
            "SET SESSION AUTHORIZATION postgres",
            vec![s("SET SESSION AUTHORIZATION postgres")],
            true,
        ),
        ("SET ROLE postgres", vec![s("SET ROLE postgres")], true),
        (
            "SET row_security = off",
            vec![s("SET row_security = off")],
            false,
        ),
        (
            "RESET everything",
            vec![
                s("RESET ALL"),
                s("RESET ROLE"),
                s("RESET SESSION AUTHORIZATION"),
                s("DISCARD ALL"),
            ],
            false,
        ),
        (
            "ALTER TABLE … NO FORCE / DISABLE",
            vec![s("ALTER TABLE applications NO FORCE ROW LEVEL SECURITY")],
            true,
        ),
        (
            "DISABLE ROW LEVEL SECURITY",
            vec![s("ALTER TABLE applications DISABLE ROW LEVEL SECURITY")],
            true,
        ),
        (
            "DROP POLICY",
            vec![s("DROP POLICY tenant_only ON applications")],
            true,
        ),
        (
            "CREATE POLICY",
            vec![s("CREATE POLICY open ON applications FOR ALL USING (true)")],
            true,
        ),
        (
            "replace the tenant function",
            vec![s(
                "CREATE OR REPLACE FUNCTION forklift_current_tenant() RETURNS uuid \
                    LANGUAGE sql AS $$ SELECT tenant_id FROM applications LIMIT 1 $$",
            )],
            true,
        ),
        (
            "a shadowing function in pg_temp",
            vec![
                s(
                    "CREATE FUNCTION pg_temp.forklift_current_tenant() RETURNS uuid LANGUAGE \
                        sql AS $$ SELECT NULL::uuid $$",
                ),
                s("SET search_path = pg_temp, public"),
            ],
            false,
        ),
        (
            "GRANT the system role to itself",
            vec![format!("GRANT {system_role} TO CURRENT_USER")],
            true,
        ),
        (
            "ALTER ROLE … BYPASSRLS",
            vec![s("ALTER ROLE CURRENT_USER BYPASSRLS")],
            true,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_application_role_cannot_switch_row_level_security_off() {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, |_| {}, Registry::default()).await
    else {
        return;
    };
    fixture::seeded_template(&app.state, 2).await;
    let acme = app.ready_tenant("acme").await;
    app.ready_tenant("globex").await;
    let tenants = rows(&app.state.db, "SELECT id::text AS id, slug FROM tenants").await;
    let id_of = |slug: &str| -> String {
        tenants
            .iter()
            .find(|t| t.try_get::<String>("", "slug").ok().as_deref() == Some(slug))
            .and_then(|t| t.try_get::<String>("", "id").ok())
            .expect("tenant")
    };
    let (acme_id, globex) = (id_of("acme"), id_of("globex"));
    let _ = acme;
    let tables: Vec<String> = rows(
        &app.state.db,
        "SELECT c.relname::text AS t FROM pg_class c JOIN information_schema.columns col \
            ON col.table_name = c.relname AND col.column_name = 'tenant_id' AND col.table_schema = 'public' \
            WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace ORDER BY 1",
    )
    .await
    .iter()
    .map(|r| r.try_get::<String>("", "t").expect("t"))
    .collect();
    // What exists, as the system role sees it: globex's rows must all survive the attack.
    let globex_rows = |db: sea_orm::DatabaseConnection, tables: Vec<String>, globex: String| async move {
        let mut total = 0i64;
        for t in &tables {
            let r = rows(
                &db,
                &format!("SELECT count(*) AS n FROM {t} WHERE tenant_id = '{globex}'"),
            )
            .await;
            total += r[0].try_get::<i64>("", "n").expect("n");
        }
        total
    };
    let before = globex_rows(app.state.db.clone(), tables.clone(), globex.clone()).await;
    assert!(before > 20, "globex has rows to steal: {before}");

    for (what, statements, must_fail) in attempts(SYSTEM_ROLE, &acme_id) {
        let db = session(app.database_url()).await;
        for sql in &statements {
            let outcome = run(&db, sql).await;
            if must_fail {
                assert!(outcome.is_err(), "{what}: `{sql}` was accepted");
            }
        }
        let who = rows(&db, "SELECT current_user::text AS u").await;
        assert_eq!(
            who[0].try_get::<String>("", "u").expect("u"),
            APP_ROLE,
            "{what}"
        );
        // Twice: as the attempt left the session, and with acme named on top of it.
        for named in [false, true] {
            if named {
                run(
                    &db,
                    &format!("SELECT set_config('forklift.tenant', '{acme_id}', false)"),
                )
                .await
                .expect("name acme");
            }
            for t in &tables {
                // Another tenant's rows: none seen, updated or deleted. An error (row_security =
                // off refuses filtered queries) touches nothing either.
                for (action, statement) in [
                    (
                        "seen",
                        format!("SELECT 1 FROM {t} WHERE tenant_id IS DISTINCT FROM '{acme_id}'"),
                    ),
                    (
                        "updated",
                        format!(
                            "UPDATE {t} SET tenant_id = tenant_id WHERE tenant_id = '{globex}'"
                        ),
                    ),
                    (
                        "deleted",
                        format!("DELETE FROM {t} WHERE tenant_id = '{globex}'"),
                    ),
                ] {
                    let rows = run(&db, &statement).await;
                    assert!(
                        matches!(rows, Ok(0) | Err(_)),
                        "{what}: {t}: {rows:?} rows of other tenants {action}"
                    );
                }
            }
            let insert = run(
                &db,
                &format!(
                    "INSERT INTO organizations (id, tenant_id, parent_id, name, created_at, updated_at) \
                        VALUES (gen_random_uuid(), '{globex}', NULL, 'pwned', now(), now())"
                ),
            )
            .await;
            assert!(insert.is_err(), "{what}: a row written into globex");
        }
        let _ = db.close().await;
    }
    let after = globex_rows(app.state.db.clone(), tables.clone(), globex.clone()).await;
    assert_eq!(
        before, after,
        "globex's rows are all there, unchanged in number"
    );
    let pwned = rows(
        &app.state.db,
        "SELECT id FROM organizations WHERE name = 'pwned'",
    )
    .await;
    assert!(pwned.is_empty(), "nothing was written into another tenant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_works_with_the_wall_up() {
    // Forks (through the API) cross tenants as the system role.
    let Some(app) = acme_and_globex().await else {
        return;
    };
    let admin = app.admin();
    // The admins' read-only view of every tenant: template, acme and globex.
    let all = app
        .ok(
            &admin,
            Some("*"),
            "{ applications { totalCount } organizations { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(all["applications"]["totalCount"], 6, "{all}");
    assert!(
        all["organizations"]["totalCount"].as_i64().expect("count") >= 3,
        "{all}"
    );
    // A well-formed organization id, so the refusal is the view's, not the input's.
    let organization = forklift::graphql::ids::encode("Organization", uuid::Uuid::now_v7());
    let body = app
        .gql(
            &admin,
            Some("*"),
            "mutation($o: ID!) { createTeam(input: { organizationId: $o, name: \"x\" }) { id } }",
            json!({ "o": organization }),
        )
        .await;
    assert_eq!(
        crate::harness::code(&body).as_deref(),
        Some("FORBIDDEN"),
        "the all-tenants view is read-only: {body}"
    );
    let runs = app
        .ok(&admin, None, "{ forkRuns { totalCount } }", json!({}))
        .await;
    assert_eq!(
        runs["forkRuns"]["totalCount"], 2,
        "admin reads across tenants without a tenant named"
    );
    // Member operations run in the tenant's transaction on the request pool.
    app.add_member("acme", "owner@acme.test", "OWNER").await;
    let owner = app.token("owner@acme.test", None, false, &[]);
    let added = app
        .ok(
            &owner,
            Some("acme"),
            "mutation { addMember(email: \"ed@acme.test\", role: EDITOR) { id role } }",
            json!({}),
        )
        .await;
    let ed = added["addMember"]["id"].as_str().expect("id").to_string();
    let changed = app
        .ok(
            &owner,
            Some("acme"),
            "mutation($id: ID!) { changeMemberRole(id: $id, role: VIEWER) { role } }",
            json!({ "id": ed }),
        )
        .await;
    assert_eq!(changed["changeMemberRole"]["role"], "VIEWER");
    // Another tenant's membership is a missing one.
    let body = app
        .gql(
            &admin,
            Some("globex"),
            "mutation($id: ID!) { removeMember(id: $id) }",
            json!({ "id": ed }),
        )
        .await;
    assert_eq!(
        crate::harness::code(&body).as_deref(),
        Some("NOT_FOUND"),
        "{body}"
    );
    app.ok(
        &owner,
        Some("acme"),
        "mutation($id: ID!) { removeMember(id: $id) }",
        json!({ "id": ed }),
    )
    .await;
    let members = app
        .ok(
            &owner,
            Some("acme"),
            "{ memberships { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(members["memberships"]["totalCount"], 1);
    // Branding and the onboarding checklist, per tenant.
    app.ok(
        &owner,
        Some("acme"),
        "mutation { updateBranding(input: { primaryColor: \"#112233\" }) { primaryColor } }",
        json!({}),
    )
    .await;
    let globex_branding = app
        .ok(
            &admin,
            Some("globex"),
            "{ branding { primaryColor } }",
            json!({}),
        )
        .await;
    assert_eq!(globex_branding["branding"]["primaryColor"], Value::Null);
    // The checklist of the example template (computed when read, per tenant).
    let vocabulary = forklift::template::EMBEDDED
        .iter()
        .filter(|(name, _)| *name == "vocabulary.yaml")
        .map(|(name, content)| forklift::sheets::SheetFile {
            name: (*name).into(),
            content: (*content).into(),
        })
        .collect::<Vec<_>>();
    let report = forklift::sheets::import(
        &app.state,
        &vocabulary,
        forklift::sheets::ImportOptions {
            vocabulary_author: true,
            ..Default::default()
        },
    )
    .await
    .expect("import");
    assert!(report.ok, "{:?}", report.errors);
    let catalog = app
        .ok(
            &admin,
            None,
            "{ tenants { nodes { slug onboarding { steps { key done } } } } }",
            json!({}),
        )
        .await;
    let acme = catalog["tenants"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|t| t["slug"] == "acme")
        .cloned()
        .expect("acme");
    let done: Vec<&str> = acme["onboarding"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["done"] == true)
        .map(|s| s["key"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(done, ["forked", "staff-admin", "branding"], "{acme}");
}
