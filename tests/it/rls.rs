//! Issue #7: row-level security on PostgreSQL, the second wall between tenants.

use forklift::registry::Registry;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::{
    fixture,
    harness::{APP_ROLE, Backend, TestApp},
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
    let me = rows(db, "SELECT current_user AS who, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").await;
    assert_eq!(
        me[0].try_get::<String>("", "who").expect("who"),
        APP_ROLE,
        "the server connects as the application role"
    );
    assert!(!me[0].try_get::<bool>("", "rolsuper").expect("super"));
    assert!(!me[0].try_get::<bool>("", "rolbypassrls").expect("bypass"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_skips_the_scope_sees_no_tenant_rows() {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, |_| {}, Registry::default()).await
    else {
        return;
    };
    fixture::seeded_template(&app.state, 2).await;
    app.ready_tenant("acme").await;
    app.ready_tenant("globex").await;
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
