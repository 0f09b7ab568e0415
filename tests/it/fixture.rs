//! Test data generated from the row-class registry: a few rows of every vocabulary class and of
//! every class the fork copies, with every reference pointing at a real row. A class added to the
//! registry is covered here without a change.

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use forklift::{
    registry::{ColumnKind, Plane, Registry, RowClass},
    rows::Cell,
    state::AppState,
};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, Statement,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use serde_json::json;
use uuid::Uuid;

/// Ids of seeded rows by table.
pub type Seeded = BTreeMap<String, Vec<Uuid>>;

/// The value of one generated column.
fn value_for(class: &RowClass, column: &str, kind: ColumnKind, nullable: bool, i: usize) -> Cell {
    let tag = format!("{}-{i}", class.table);
    match (column, kind) {
        ("created_at" | "updated_at", _) => Cell::Timestamp(Utc::now()),
        // Phase 3 input: applications with the `map` feature, geometry fields on schemas.
        ("features", ColumnKind::Json) => Cell::Json(json!({ "map": i.is_multiple_of(2) })),
        ("fields", ColumnKind::Json) if class.table == "entity_schemas" => Cell::Json(json!([
            { "name": "title", "type": "string" },
            { "name": "location", "type": "point", "geometry": true }
        ])),
        // Phases 4 and 5 input: every other row public.
        ("is_public" | "public_submit" | "public_vote", ColumnKind::Bool) => Cell::Bool(i.is_multiple_of(2)),
        // Records of custom types are forked only when their type is forkable.
        ("forkable", ColumnKind::Bool) => Cell::Bool(true),
        ("kind", ColumnKind::Text) if class.table == "tenants" => Cell::Text("TENANT".into()),
        (_, ColumnKind::Text) => Cell::Text(format!("{tag}-{column}")),
        (_, ColumnKind::Int) => Cell::Int(i as i64),
        (_, ColumnKind::Bool) => Cell::Bool(i.is_multiple_of(2)),
        (_, ColumnKind::Json) => Cell::Json(json!({ "seed": tag })),
        (_, ColumnKind::Timestamp) => Cell::Timestamp(Utc::now()),
        (_, ColumnKind::Uuid) if nullable => Cell::Null,
        (_, ColumnKind::Uuid) => Cell::Uuid(Uuid::new_v4()),
        (_, ColumnKind::Bytes) => Cell::Bytes(tag.into_bytes()),
    }
}

/// Inserts one row; returns its id.
pub async fn insert(db: &DatabaseConnection, class: &RowClass, values: &HashMap<String, Cell>) -> Uuid {
    let mut insert = Query::insert();
    insert.into_table(Alias::new(&class.table));
    let columns: Vec<_> = class.columns.iter().filter(|c| values.contains_key(&c.name)).collect();
    insert.columns(columns.iter().map(|c| Alias::new(&c.name)));
    insert
        .values(
            columns
                .iter()
                .map(|c| Expr::val(values[&c.name].to_value(c.kind))),
        )
        .expect("values match columns");
    db.execute(&insert)
        .await
        .unwrap_or_else(|e| panic!("seeding {}: {e}", class.table));
    values["id"].as_uuid().expect("id")
}

/// Builds and inserts `per_class` rows of `class` owned by `tenant` (None: vocabulary).
async fn seed_class(
    db: &DatabaseConnection,
    class: &RowClass,
    tenant: Option<Uuid>,
    per_class: usize,
    seeded: &mut Seeded,
    vocabulary: &Seeded,
) {
    for i in 0..per_class {
        let mut values = HashMap::new();
        for column in &class.columns {
            let cell = if column.name == "id" {
                Cell::Uuid(Uuid::now_v7())
            } else if column.name == "tenant_id" {
                tenant.map_or(Cell::Null, Cell::Uuid)
            } else if let Some(reference) = class.references.iter().find(|r| r.column == column.name) {
                let pool = if reference.same_tenant {
                    seeded.get(&reference.table)
                } else {
                    vocabulary.get(&reference.table).or_else(|| seeded.get(&reference.table))
                };
                let pool: Vec<Uuid> = pool.cloned().unwrap_or_default();
                let is_self = reference.table == class.table;
                match pool.len() {
                    0 if column.nullable => Cell::Null,
                    0 => panic!("{}.{}: nothing to point at in {}", class.table, column.name, reference.table),
                    // A tree: the first row is a root, later ones hang off the first.
                    _ if is_self && column.nullable => Cell::Uuid(pool[0]),
                    n => Cell::Uuid(pool[i % n]),
                }
            } else {
                value_for(class, &column.name, column.kind, column.nullable, i)
            };
            values.insert(column.name.clone(), cell);
        }
        let id = insert(db, class, &values).await;
        seeded.entry(class.table.clone()).or_default().push(id);
    }
}

/// Seeds `per_class` rows of every vocabulary class but the tenant catalog.
pub async fn seed_vocabulary(state: &AppState, per_class: usize) -> Seeded {
    let mut seeded = Seeded::new();
    let empty = Seeded::new();
    for class in vocabulary_classes(&state.registry) {
        seed_class(&state.db, class, None, per_class, &mut seeded, &empty).await;
    }
    seeded
}

/// The vocabulary classes a fixture fills (everything shared but the tenant catalog).
pub fn vocabulary_classes(registry: &Registry) -> Vec<&RowClass> {
    registry
        .classes()
        .iter()
        .filter(|c| c.plane == Plane::Vocabulary && c.table != "tenants")
        .collect()
}

/// Seeds `per_class` rows of every class the fork copies into `tenant`, parents first.
pub async fn seed_config(state: &AppState, tenant: Uuid, per_class: usize, vocabulary: &Seeded) -> Seeded {
    let mut seeded = Seeded::new();
    for class in state.registry.copied_classes() {
        seed_class(&state.db, class, Some(tenant), per_class, &mut seeded, vocabulary).await;
    }
    seeded
}

/// The template tenant's id (created when missing).
pub async fn template(state: &AppState) -> Uuid {
    forklift::bootstrap::ensure_template(state)
        .await
        .expect("template tenant")
        .id
}

/// A template with `per_class` rows of every copied class over fresh vocabulary.
pub async fn seeded_template(state: &AppState, per_class: usize) -> (Uuid, Seeded, Seeded) {
    let vocabulary = seed_vocabulary(state, per_class.max(2)).await;
    let template = template(state).await;
    let config = seed_config(state, template, per_class, &vocabulary).await;
    (template, vocabulary, config)
}

/// Number of rows of `table` owned by `tenant`.
pub async fn count(db: &DatabaseConnection, table: &str, tenant: Uuid) -> i64 {
    let mut select = Query::select();
    select
        .expr(Expr::cust("COUNT(*)"))
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant));
    let row = db
        .query_one(&select)
        .await
        .expect("count query")
        .expect("one row");
    row.try_get_by_index::<i64>(0).expect("count")
}

/// Every row of every tenant-owned table owned by `tenant`, as sorted JSON text per table: a
/// full dump to compare before and after an operation.
pub async fn dump(state: &AppState, tenant: Uuid) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for class in state.registry.classes().iter().filter(|c| c.tenant_owned) {
        if matches!(class.table.as_str(), "fork_runs" | "fork_events" | "audit_entries") {
            continue;
        }
        let mut select = Query::select();
        select
            .columns(class.columns.iter().map(|c| Alias::new(&c.name)))
            .from(Alias::new(&class.table))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant));
        let rows = state.db.query_all(&select).await.expect("dump");
        let mut lines: Vec<String> = rows
            .iter()
            .map(|r| {
                let row = forklift::rows::Row::read(r, class).expect("read row");
                let sorted: BTreeMap<_, _> = row.values.iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
                serde_json::to_string(&sorted).expect("json")
            })
            .collect();
        lines.sort();
        out.insert(class.table.clone(), lines);
    }
    out
}

/// Runs a raw statement (test setup only).
pub async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_raw(Statement::from_string(db.get_database_backend(), sql.to_string()))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Ids of the rows of `table` owned by `tenant`.
pub async fn ids_of(state: &AppState, table: &str, tenant: Uuid) -> Vec<Uuid> {
    let mut select = Query::select();
    select
        .column(Alias::new("id"))
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant));
    state
        .db
        .query_all(&select)
        .await
        .expect("ids")
        .iter()
        .map(|r| r.try_get::<Uuid>("", "id").expect("id"))
        .collect()
}

/// The rows of `class` owned by `tenant`.
pub async fn rows_of(state: &AppState, class: &RowClass, tenant: Uuid) -> Vec<forklift::rows::Row> {
    let mut select = Query::select();
    select
        .columns(class.columns.iter().map(|c| Alias::new(&c.name)))
        .from(Alias::new(&class.table))
        .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant));
    state
        .db
        .query_all(&select)
        .await
        .expect("rows")
        .iter()
        .map(|r| forklift::rows::Row::read(r, class).expect("row"))
        .collect()
}

/// Number of rows of `table`, whoever owns them.
pub async fn count_all(db: &DatabaseConnection, table: &str) -> i64 {
    let mut select = Query::select();
    select.expr(Expr::cust("COUNT(*)")).from(Alias::new(table));
    let row = db.query_one(&select).await.expect("count").expect("row");
    row.try_get_by_index::<i64>(0).expect("count")
}
