//! Test data: the registry-driven generator of `forklift::synthetic`, plus helpers that read the
//! database back (counts, dumps, rows of a tenant).

use std::collections::{BTreeMap, HashMap};

use forklift::{registry::RowClass, rows::Cell, state::AppState};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, Statement,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use uuid::Uuid;

pub use forklift::synthetic::{Seeded, vocabulary_classes};

/// Inserts one row; returns its id.
pub async fn insert(
    db: &DatabaseConnection,
    class: &RowClass,
    values: &HashMap<String, Cell>,
) -> Uuid {
    forklift::synthetic::insert_rows(db, class, std::slice::from_ref(values))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    values["id"].as_uuid().expect("id")
}

/// Seeds `per_class` rows of every vocabulary class but the tenant catalog.
pub async fn seed_vocabulary(state: &AppState, per_class: usize) -> Seeded {
    forklift::synthetic::vocabulary(&state.db, &state.registry, per_class)
        .await
        .expect("vocabulary")
}

/// Seeds `per_class` rows of every class the fork copies into `tenant`, parents first.
pub async fn seed_config(
    state: &AppState,
    tenant: Uuid,
    per_class: usize,
    vocabulary: &Seeded,
) -> Seeded {
    forklift::synthetic::configuration(&state.db, &state.registry, tenant, per_class, vocabulary)
        .await
        .expect("configuration")
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
        if matches!(
            class.table.as_str(),
            "fork_runs" | "fork_events" | "audit_entries"
        ) {
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
                let sorted: BTreeMap<_, _> = row
                    .values
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect();
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
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        sql.to_string(),
    ))
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Ids of the rows of `table` owned by `tenant`.
pub async fn ids_of(state: &AppState, table: &str, tenant: Uuid) -> Vec<Uuid> {
    ids_in(&state.db, table, tenant).await
}

/// The ids of `tenant`'s rows of `table` in `db` (any database), by direct SQL.
pub async fn ids_in(db: &DatabaseConnection, table: &str, tenant: Uuid) -> Vec<Uuid> {
    let mut select = Query::select();
    select
        .column(Alias::new("id"))
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant));
    db.query_all(&select)
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
