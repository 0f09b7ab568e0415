//! Synthetic configuration generated from the row-class registry: rows of every vocabulary
//! class and of every class the fork copies, with every reference pointing at a real row. The
//! benchmark builds its templates with it and the tests their fixtures, so a class added to the
//! registry is covered by both without a change.

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use sea_orm::{
    ConnectionTrait,
    sea_query::{Alias, Expr, Query},
};
use serde_json::json;
use uuid::Uuid;

use crate::{
    registry::{ColumnKind, Plane, Registry, RowClass},
    rows::Cell,
};

/// Ids of generated rows by table.
pub type Seeded = BTreeMap<String, Vec<Uuid>>;

/// Largest number of bind parameters in one statement (PostgreSQL allows 65,535).
const MAX_PARAMS: usize = 30_000;

/// The value of a plain (non-key, non-reference) column of row `i`.
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
        // Records of custom types are forked only when their type is forkable.
        ("forkable", ColumnKind::Bool) => Cell::Bool(true),
        (_, ColumnKind::Text) => Cell::Text(format!("{tag}-{column}")),
        (_, ColumnKind::Int) => Cell::Int(i as i64),
        // Phases 4 and 5 input (`is_public`, `public_submit`, `public_vote`): every other row.
        (_, ColumnKind::Bool) => Cell::Bool(i.is_multiple_of(2)),
        (_, ColumnKind::Json) => Cell::Json(json!({ "seed": tag })),
        (_, ColumnKind::Timestamp) => Cell::Timestamp(Utc::now()),
        (_, ColumnKind::Uuid) if nullable => Cell::Null,
        (_, ColumnKind::Uuid) => Cell::Uuid(Uuid::new_v4()),
        (_, ColumnKind::Bytes) => Cell::Bytes(tag.into_bytes()),
    }
}

/// Inserts `rows` of `class` in multi-row statements sized under the parameter limit.
pub async fn insert_rows(
    db: &impl ConnectionTrait,
    class: &RowClass,
    rows: &[HashMap<String, Cell>],
) -> anyhow::Result<()> {
    let per_statement = (MAX_PARAMS / class.columns.len().max(1)).max(1);
    for chunk in rows.chunks(per_statement) {
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new(&class.table))
            .columns(class.columns.iter().map(|c| Alias::new(&c.name)));
        for row in chunk {
            let values: Vec<Expr> = class
                .columns
                .iter()
                .map(|c| {
                    row.get(&c.name)
                        .cloned()
                        .unwrap_or(Cell::Null)
                        .to_value(c.kind)
                        .into()
                })
                .collect();
            insert.values(values)?;
        }
        db.execute(&insert)
            .await
            .map_err(|e| anyhow::anyhow!("generating {}: {e}", class.table))?;
    }
    Ok(())
}

/// Generates and inserts `count` rows of `class` owned by `tenant` (`None`: vocabulary).
pub async fn generate_class(
    db: &impl ConnectionTrait,
    class: &RowClass,
    tenant: Option<Uuid>,
    count: usize,
    seeded: &mut Seeded,
    vocabulary: &Seeded,
) -> anyhow::Result<()> {
    let mut rows = Vec::with_capacity(count);
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let mut values = HashMap::with_capacity(class.columns.len());
        let id = Uuid::now_v7();
        for column in &class.columns {
            let cell = if column.name == "id" {
                Cell::Uuid(id)
            } else if column.name == "tenant_id" {
                tenant.map_or(Cell::Null, Cell::Uuid)
            } else if let Some(reference) =
                class.references.iter().find(|r| r.column == column.name)
            {
                let is_self = reference.table == class.table;
                let pool: &[Uuid] = if is_self {
                    &ids
                } else if reference.same_tenant {
                    seeded.get(&reference.table).map_or(&[], Vec::as_slice)
                } else {
                    vocabulary
                        .get(&reference.table)
                        .or_else(|| seeded.get(&reference.table))
                        .map_or(&[], Vec::as_slice)
                };
                match pool.len() {
                    0 if column.nullable => Cell::Null,
                    0 => anyhow::bail!(
                        "{}.{}: no {} row to point at",
                        class.table,
                        column.name,
                        reference.table
                    ),
                    // A tree: the first row is a root, later ones hang off it.
                    _ if is_self => Cell::Uuid(pool[0]),
                    n => Cell::Uuid(pool[i % n]),
                }
            } else {
                value_for(class, &column.name, column.kind, column.nullable, i)
            };
            values.insert(column.name.clone(), cell);
        }
        ids.push(id);
        rows.push(values);
    }
    insert_rows(db, class, &rows).await?;
    seeded.entry(class.table.clone()).or_default().extend(ids);
    Ok(())
}

/// The vocabulary classes generated (everything shared but the tenant catalog).
pub fn vocabulary_classes(registry: &Registry) -> Vec<&RowClass> {
    registry
        .classes()
        .iter()
        .filter(|c| c.plane == Plane::Vocabulary && c.table != "tenants")
        .collect()
}

/// Generates `per_class` rows of every vocabulary class but the tenant catalog.
pub async fn vocabulary(
    db: &impl ConnectionTrait,
    registry: &Registry,
    per_class: usize,
) -> anyhow::Result<Seeded> {
    let mut seeded = Seeded::new();
    let empty = Seeded::new();
    for class in vocabulary_classes(registry) {
        generate_class(db, class, None, per_class, &mut seeded, &empty).await?;
    }
    Ok(seeded)
}

/// Generates `per_class` rows of every class the fork copies into `tenant`, parents first.
pub async fn configuration(
    db: &impl ConnectionTrait,
    registry: &Registry,
    tenant: Uuid,
    per_class: usize,
    vocabulary: &Seeded,
) -> anyhow::Result<Seeded> {
    let mut seeded = Seeded::new();
    for class in registry.copied_classes() {
        generate_class(db, class, Some(tenant), per_class, &mut seeded, vocabulary).await?;
    }
    Ok(seeded)
}

/// The data of the benchmarks' nested query (`docs/performance.md`): the template, a tenant `bench`, seven surface types, and in the
/// tenant 50 applications, 500 actions and 1,000 placements. Returns the tenant's id.
pub async fn nested_query_tenant(state: &crate::state::AppState) -> anyhow::Result<uuid::Uuid> {
    Ok(nested_query_tenant_and_vocabulary(state).await?.0)
}

/// [`nested_query_tenant`], also returning the vocabulary it made (for [`nested_rows`] of
/// another tenant).
pub async fn nested_query_tenant_and_vocabulary(
    state: &crate::state::AppState,
) -> anyhow::Result<(uuid::Uuid, Seeded)> {
    crate::bootstrap::ensure_template(state).await?;
    let tenant = crate::bootstrap::ensure_tenant(state, "bench", "Bench", "TENANT").await?;
    // Seven surface types: placement i and i + 500 (same action, same application) then land on
    // different surfaces, so the 1,000 placements keep their natural keys distinct.
    let vocabulary = vocabulary(&state.db, &state.registry, 7).await?;
    nested_rows(&state.db, &state.registry, tenant.id, &vocabulary).await?;
    Ok((tenant.id, vocabulary))
}

/// The nested query's rows of `tenant` in `db`: 50 applications, 500 actions, 1,000 placements
/// over `vocabulary`.
pub async fn nested_rows(
    db: &impl ConnectionTrait,
    registry: &Registry,
    tenant: Uuid,
    vocabulary: &Seeded,
) -> anyhow::Result<()> {
    let mut seeded = Seeded::new();
    for (table, count) in [
        ("applications", 50),
        ("actions", 500),
        ("action_placements", 1000),
    ] {
        let class = registry
            .by_table(table)
            .ok_or_else(|| anyhow::anyhow!("no class {table}"))?;
        generate_class(db, class, Some(tenant), count, &mut seeded, vocabulary).await?;
    }
    Ok(())
}
