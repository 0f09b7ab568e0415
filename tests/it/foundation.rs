//! Issue #2: migrations, every row class stored and read back, natural keys, the one-root rule,
//! the registry covering every table, health endpoints.

use std::collections::BTreeSet;

use forklift::{naming, registry::Plane};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;

use crate::{
    fixture,
    harness::{TestApp, code},
};

/// Tables in the database, without the migration bookkeeping table.
async fn tables(app: &TestApp) -> BTreeSet<String> {
    let db = &app.state.db;
    let sql = match db.get_database_backend() {
        DbBackend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        _ => {
            "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'"
        }
    };
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("list tables")
        .iter()
        .map(|r| r.try_get::<String>("", "name").expect("name"))
        .filter(|name| name != "seaql_migrations")
        .collect()
}

/// The connection-type label of a relation field, e.g. `actions` on `Application`.
fn list_field(class_name: &str) -> String {
    // The generic surface names list fields after the table: `application_entities` →
    // `applicationEntities`.
    naming::camel(class_name)
}

crate::both!(migrations_go_up_down_and_up_again);
async fn migrations_go_up_down_and_up_again(app: TestApp) {
    let expected: BTreeSet<String> = app
        .state
        .registry
        .classes()
        .iter()
        .map(|c| c.table.clone())
        .collect();
    assert_eq!(tables(&app).await, expected, "after the first up");

    // Migrations run as the owner of the tables (on PostgreSQL the server's role owns none).
    let owner = app.owner_db().await;
    Migrator::down(&owner, None).await.expect("down");
    assert!(tables(&app).await.is_empty(), "down leaves no table behind");

    Migrator::up(&owner, None).await.expect("up again");
    assert_eq!(tables(&app).await, expected, "after up again");
}

crate::both!(the_registry_classifies_every_table);
async fn the_registry_classifies_every_table(app: TestApp) {
    let registry = &app.state.registry;
    for table in tables(&app).await {
        let class = registry
            .by_table(&table)
            .unwrap_or_else(|| panic!("table `{table}` has no row class in the registry"));
        // The plane is decided by the owner column alone (`docs/planes.md`).
        match class.plane {
            Plane::Vocabulary => assert!(!class.tenant_owned, "{table}: vocabulary has no owner"),
            Plane::Configuration | Plane::Derived => {
                assert!(class.tenant_owned, "{table}: configuration is tenant-owned")
            }
            Plane::Runtime => {}
        }
        if class.fork.is_copied() {
            assert_eq!(
                class.plane,
                Plane::Configuration,
                "{table}: only configuration is copied"
            );
        }
    }
    // Vocabulary and runtime classes are never forked; control-plane apps are vocabulary.
    let cp = registry
        .by_table("control_plane_applications")
        .expect("control plane apps");
    assert_eq!(cp.plane, Plane::Vocabulary);
    assert!(!cp.fork.is_copied());
    for runtime in [
        "organizations",
        "memberships",
        "teams",
        "domains",
        "brandings",
        "tenant_features",
        "audit_entries",
    ] {
        let class = registry.by_table(runtime).expect(runtime);
        assert_eq!(class.plane, Plane::Runtime, "{runtime}");
        assert!(!class.fork.is_copied(), "{runtime} is never copied");
    }
    // References come from the entity relations: the placement of an action points at it
    // within the same tenant.
    let placements = registry.by_table("action_placements").expect("placements");
    let to_actions = placements
        .references
        .iter()
        .find(|r| r.table == "actions")
        .expect("→ actions");
    assert!(to_actions.same_tenant);
}

crate::both!(every_row_class_is_stored_and_read_back_with_its_references);
async fn every_row_class_is_stored_and_read_back_with_its_references(app: TestApp) {
    let (template, vocabulary, config) = fixture::seeded_template(&app.state, 3).await;
    let admin = app.admin();
    let registry = app.state.registry.clone();
    // Through the API, as the template's author sees it.
    for class in registry.copied_classes() {
        let field = list_field(&class.table);
        let query = format!("{{ {field} {{ totalCount nodes {{ id }} }} }}");
        let data = app.ok(&admin, Some("template"), &query, json!({})).await;
        assert_eq!(
            data[&field]["totalCount"], 3,
            "{} rows read back",
            class.table
        );
    }
    for class in fixture::vocabulary_classes(&registry) {
        let field = list_field(&class.table);
        let query = format!("{{ {field} {{ totalCount }} }}");
        let data = app.ok(&admin, None, &query, json!({})).await;
        assert!(
            data[&field]["totalCount"].as_i64().unwrap_or(0) >= 3,
            "{} vocabulary rows",
            class.table
        );
    }
    // Every reference of every stored row points at a row that exists.
    let mut checked = 0;
    for class in registry.copied_classes() {
        let rows = fixture::rows_of(&app.state, class, template).await;
        assert_eq!(rows.len(), 3, "{}", class.table);
        for reference in &class.references {
            let pool = if reference.same_tenant {
                &config
            } else {
                &vocabulary
            };
            let targets = pool.get(&reference.table).cloned().unwrap_or_default();
            for row in &rows {
                if let Some(target) = row.get(&reference.column).as_uuid() {
                    checked += 1;
                    assert!(
                        targets.contains(&target),
                        "{}.{} points at a row of {}",
                        class.table,
                        reference.column,
                        reference.table
                    );
                }
            }
        }
    }
    assert!(checked > 40, "only {checked} references checked");
    // A nested read: applications with their actions.
    let data = app
        .ok(
            &admin,
            Some("template"),
            "{ applications(first: 1) { nodes { code actions { id } } } }",
            json!({}),
        )
        .await;
    assert!(
        data["applications"]["nodes"][0]["actions"]
            .as_array()
            .is_some(),
        "{data}"
    );
}

crate::both!(natural_keys_are_unique_within_a_tenant_and_free_across_tenants);
async fn natural_keys_are_unique_within_a_tenant_and_free_across_tenants(app: TestApp) {
    app.create_tenant("acme").await;
    app.create_tenant("globex").await;
    let owner = app.admin();
    let create = "mutation($input: CreateApplicationInput!) { createApplication(input: $input) { id code } }";
    let input =
        json!({ "input": { "code": "permits", "name": "Permits", "routeNamespace": "permits" } });
    app.ok(&owner, Some("acme"), create, input.clone()).await;
    let again = app.gql(&owner, Some("acme"), create, input.clone()).await;
    assert_eq!(code(&again).as_deref(), Some("CONFLICT"), "{again}");
    let text = again.to_string().to_lowercase();
    assert!(
        !text.contains("unique") && !text.contains("sqlite") && !text.contains("duplicate key"),
        "no database text: {again}"
    );
    // Same code in another tenant is fine.
    app.ok(&owner, Some("globex"), create, input).await;
    // A route namespace is a natural key too.
    let other_code = json!({ "input": { "code": "permits-2", "name": "Permits 2", "routeNamespace": "permits" } });
    let clash = app.gql(&owner, Some("acme"), create, other_code).await;
    assert_eq!(code(&clash).as_deref(), Some("CONFLICT"), "{clash}");
    let count = app
        .ok(
            &owner,
            Some("acme"),
            "{ applications { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(count["applications"]["totalCount"], 1);
}

crate::both!(a_tenant_has_exactly_one_root_organization);
async fn a_tenant_has_exactly_one_root_organization(app: TestApp) {
    let id = app.create_tenant("acme").await;
    let admin = app.admin();
    let roots = app
        .ok(
            &admin,
            Some("acme"),
            "{ organizations(filter: { parentId: null }) { totalCount nodes { id name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        roots["organizations"]["totalCount"], 1,
        "createTenant made the root: {roots}"
    );
    let second = app
        .gql(
            &admin,
            Some("acme"),
            "mutation { createOrganization(input: { name: \"Second root\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&second).as_deref(), Some("CONFLICT"), "{second}");
    // The database refuses it too, whatever the path.
    let tenant = forklift::graphql::ids::decode(&id).expect("tenant id").1;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    let now = chrono::Utc::now();
    let direct = entity::organizations::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        tenant_id: Set(tenant),
        parent_id: Set(None),
        name: Set("Another root".into()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&app.state.db)
    .await;
    assert!(direct.is_err(), "the database refuses a second root");
    // A child of the root is fine.
    let root = roots["organizations"]["nodes"][0]["id"]
        .as_str()
        .expect("root id");
    app.ok(
        &admin,
        Some("acme"),
        "mutation($p: ID!) { createOrganization(input: { name: \"Field office\", \
            parentId: $p }) { id } }",
        json!({ "p": root }),
    )
    .await;
}

crate::both!(health_and_readiness_answer);
async fn health_and_readiness_answer(app: TestApp) {
    for path in ["/healthz", "/readyz"] {
        let response = app.http.get(app.url(path)).send().await.expect("request");
        assert_eq!(response.status().as_u16(), 200, "{path}");
    }
}
