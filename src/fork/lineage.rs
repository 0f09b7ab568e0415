//! Lineage: what every copied row was forked from (issue #18).
//!
//! Each row a fork or an upgrade copies into a tenant gets a `row_lineage` record keyed by the
//! copy's id: the source tenant and row, and the source's *content* at that time (`base`), in
//! the target's id space (references already remapped). The base is the common ancestor of a
//! three-way diff: the template's current content against it says what the template changed;
//! the tenant's current row against it says what the tenant changed.
//!
//! A lineage record outlives its row. A record whose copy no longer exists is the tombstone of a
//! tenant's deletion: a later fork or upgrade does not bring that row back unless asked to
//! (`restoreDeleted`). Rows the tenant created itself have no lineage.
//!
//! Lineage is written and read only inside the fork's (or upgrade's, or diff's) system-pool
//! transaction, like the copies themselves.

use std::collections::{BTreeMap, HashMap};

use sea_orm::{
    ConnectionTrait,
    sea_query::{Alias, Expr, ExprTrait, OnConflict, Query, SelectStatement},
};
use uuid::Uuid;

use crate::{
    fork::engine::target_id,
    registry::{Plane, Registry, RowClass},
    rows::{Cell, Row},
};

/// A row's content: every column but the identity and the timestamps, as JSON, by column.
pub type Content = BTreeMap<String, serde_json::Value>;

/// Columns that are not content: set by the engine or the server, never diffed.
pub const NOT_CONTENT: [&str; 4] = ["id", "tenant_id", "created_at", "updated_at"];

/// The lineage of one copy.
#[derive(Clone, Debug, PartialEq)]
pub struct Lineage {
    /// The copy's id (in the tenant).
    pub id: Uuid,
    /// The source row's id.
    pub source_id: Uuid,
    /// The source's content when the copy was made or last upgraded.
    pub base: Content,
    /// The template version `base` is of (`None`: recorded before versions were kept).
    pub base_version: Option<i32>,
}

/// A copy's lineage without its base: what an upgrade needs to tell which copies the template
/// changed since their base ([`links`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// The source row's id.
    pub source_id: Uuid,
    /// The template version of the copy's base.
    pub base_version: Option<i32>,
}

/// The content of `row` of `class`, as stored.
pub fn content(class: &RowClass, row: &Row) -> Content {
    class
        .columns
        .iter()
        .filter(|c| !NOT_CONTENT.contains(&c.name.as_str()))
        .map(|c| (c.name.clone(), row.get(&c.name).to_json()))
        .collect()
}

/// The content of the source row `row` as its copy in `target` would have it: same-tenant
/// references mapped by the identity map, vocabulary kept as it is.
pub fn remapped_content(registry: &Registry, class: &RowClass, row: &Row, target: Uuid) -> Content {
    let mut out = content(class, row);
    for reference in &class.references {
        let same_tenant = reference.same_tenant
            && registry
                .by_table(&reference.table)
                .is_some_and(|t| t.plane != Plane::Vocabulary);
        if !same_tenant {
            continue;
        }
        if let Some(value) = row.get(&reference.column).as_uuid() {
            out.insert(
                reference.column.clone(),
                Cell::Uuid(target_id(target, value)).to_json(),
            );
        }
    }
    out
}

/// A stable fingerprint of a content (FNV-1a, 64 bits, over its canonical JSON), as hex.
pub fn fingerprint(content: &Content) -> String {
    let text = serde_json::to_string(content).unwrap_or_default();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn col(name: &str) -> Expr {
    Expr::col(Alias::new(name))
}

/// The lineage of `target`'s copies of `table`, by copy id.
pub async fn load(
    db: &impl ConnectionTrait,
    target: Uuid,
    table: &str,
) -> anyhow::Result<HashMap<Uuid, Lineage>> {
    read(db, lineage_select(target, table, true)).await
}

/// The lineage of `target`'s copies of `table` among `ids` (copy ids), by copy id.
pub async fn load_among(
    db: &impl ConnectionTrait,
    target: Uuid,
    table: &str,
    ids: &[Uuid],
) -> anyhow::Result<HashMap<Uuid, Lineage>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(1_000) {
        let mut select = lineage_select(target, table, true);
        select.and_where(col("id").is_in(chunk.iter().copied()));
        out.extend(read(db, select).await?);
    }
    Ok(out)
}

/// The links of `target`'s copies of `table` (lineage without the bases), by copy id: one
/// narrow read, whatever the size of the bases.
pub async fn links(
    db: &impl ConnectionTrait,
    target: Uuid,
    table: &str,
) -> anyhow::Result<HashMap<Uuid, Link>> {
    let mut out = HashMap::new();
    for row in db.query_all(&lineage_select(target, table, false)).await? {
        out.insert(
            row.try_get("", "id")?,
            Link {
                source_id: row.try_get("", "source_id")?,
                base_version: row.try_get("", "base_version")?,
            },
        );
    }
    Ok(out)
}

fn lineage_select(target: Uuid, table: &str, with_base: bool) -> SelectStatement {
    let mut select = Query::select();
    select
        .columns(["id", "source_id", "base_version"].map(Alias::new))
        .from(Alias::new("row_lineage"))
        .and_where(col("tenant_id").eq(target))
        .and_where(col("table_name").eq(table));
    if with_base {
        select.column(Alias::new("base"));
    }
    select
}

async fn read(
    db: &impl ConnectionTrait,
    select: SelectStatement,
) -> anyhow::Result<HashMap<Uuid, Lineage>> {
    let mut out = HashMap::new();
    for row in db.query_all(&select).await? {
        let id: Uuid = row.try_get("", "id")?;
        let base: serde_json::Value = row.try_get("", "base")?;
        let base = match base {
            serde_json::Value::Object(map) => map.into_iter().collect(),
            _ => Content::new(),
        };
        out.insert(
            id,
            Lineage {
                id,
                source_id: row.try_get("", "source_id")?,
                base,
                base_version: row.try_get("", "base_version")?,
            },
        );
    }
    Ok(out)
}

/// One lineage record to write.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The copy's id.
    pub id: Uuid,
    /// The source row's id.
    pub source_id: Uuid,
    /// The base content.
    pub base: Content,
    /// The template version of the base.
    pub version: Option<i32>,
}

/// Writes (or replaces) the lineage of `target`'s copies of `table` from `source`.
pub async fn store(
    db: &impl ConnectionTrait,
    target: Uuid,
    source: Uuid,
    table: &str,
    entries: &[Entry],
) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    // Nine bind parameters a row: far under every limit at 1,000 rows a statement.
    for chunk in entries.chunks(1_000) {
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new("row_lineage"))
            .columns(
                [
                    "id",
                    "tenant_id",
                    "table_name",
                    "source_tenant_id",
                    "source_id",
                    "base",
                    "base_version",
                    "created_at",
                    "updated_at",
                ]
                .map(Alias::new),
            )
            .on_conflict(
                OnConflict::columns([Alias::new("tenant_id"), Alias::new("id")])
                    .update_columns(
                        [
                            "source_tenant_id",
                            "source_id",
                            "base",
                            "base_version",
                            "updated_at",
                        ]
                        .map(Alias::new),
                    )
                    .to_owned(),
            );
        for entry in chunk {
            let base = serde_json::Value::Object(entry.base.clone().into_iter().collect());
            insert.values([
                entry.id.into(),
                target.into(),
                table.into(),
                source.into(),
                entry.source_id.into(),
                base.into(),
                entry.version.into(),
                now.into(),
                now.into(),
            ])?;
        }
        db.execute(&insert).await?;
    }
    Ok(())
}

/// Forgets the lineage of these copies of `target` (rows the template removed and an upgrade
/// removed too, or that both sides deleted).
pub async fn forget(db: &impl ConnectionTrait, target: Uuid, ids: &[Uuid]) -> anyhow::Result<()> {
    for chunk in ids.chunks(1_000) {
        let mut delete = Query::delete();
        delete
            .from_table(Alias::new("row_lineage"))
            .and_where(col("tenant_id").eq(target))
            .and_where(col("id").is_in(chunk.iter().copied()));
        db.execute(&delete).await?;
    }
    Ok(())
}
