//! Upgrades (issue #18): bring a tenant's copies up to the template's latest version without
//! overwriting what the tenant changed.
//!
//! An upgrade is a run of the fork engine ([`super::engine`]) with [`UpgradeOptions`], in the
//! same transaction, lock and progress stream as a fork. On top of what a fork does (create the
//! copies that are missing, keep tombstoned rows deleted unless `restoreDeleted`), it:
//!
//! 1. **retires** copies whose source the template removed ([`retire`], at the start of phase 1,
//!    children before parents): a copy the tenant left untouched is removed when
//!    `removeDeleted` is set; a copy the tenant changed is kept and reported as a conflict; a
//!    copy other rows of the tenant still point at is kept and reported;
//! 2. **applies** the template's changes to each class right after copying it ([`apply_class`]):
//!    per field, a three-way merge against the copy's base ([`super::diff::merge`]). A field
//!    only the template changed is written; a field both sides changed differently is a
//!    conflict, reported (event `ROW_CONFLICT`) and left as the tenant has it. The copy's base
//!    becomes the template's content, so a second upgrade finds nothing to do.
//!
//! Derived rows (phases 3–5) are then re-derived exactly as after a fork.

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ConnectionTrait,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    fork::{
        diff::merge,
        engine::{ClassCount, ForkOutcome, Progress, SkippedRow},
        lineage::{self, Content, Lineage, content, remapped_content},
    },
    registry::{ColumnKind, Plane, Registry, RowClass},
    rows::{Cell, Row},
};

/// What an upgrade may do beyond applying changes.
#[derive(Clone, Debug, Default)]
pub struct UpgradeOptions {
    /// Remove copies whose source the template removed, when the tenant left them untouched.
    pub remove_deleted: bool,
}

/// A change an upgrade did not apply because the tenant changed the same thing.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    pub class_name: String,
    /// The tenant's copy.
    pub row_id: Uuid,
    /// The template row.
    pub source_id: Uuid,
    /// The field both sides changed; `null` for a whole row (a removal not applied).
    pub field: Option<String>,
    pub base: serde_json::Value,
    pub template: serde_json::Value,
    pub tenant: serde_json::Value,
    pub reason: String,
}

impl Conflict {
    /// A template removal not applied to the tenant's copy `l`, whose content is `tenant`.
    fn removal_kept(class: &RowClass, l: &Lineage, tenant: Content, reason: &str) -> Conflict {
        let object = |content: Content| serde_json::Value::Object(content.into_iter().collect());
        Conflict {
            class_name: class.name.to_string(),
            row_id: l.id,
            source_id: l.source_id,
            field: None,
            base: object(l.base.clone()),
            template: serde_json::Value::Null,
            tenant: object(tenant),
            reason: reason.into(),
        }
    }
}

/// The run an upgrade step works in.
pub struct Scope<'a, C: ConnectionTrait> {
    pub db: &'a C,
    /// Where the template's rows are read (`db`, or the source's own database).
    pub source_db: &'a C,
    pub registry: &'a Registry,
    /// The template.
    pub source: Uuid,
    /// The tenant.
    pub target: Uuid,
    /// The template version the run brings the tenant to.
    pub version: Option<i32>,
}

fn col(name: &str) -> Expr {
    Expr::col(Alias::new(name))
}

/// Ids of the rows of `table` owned by `tenant`.
async fn ids_of(
    db: &impl ConnectionTrait,
    table: &str,
    tenant: Uuid,
) -> anyhow::Result<HashSet<Uuid>> {
    let mut select = Query::select();
    select
        .column(Alias::new("id"))
        .from(Alias::new(table))
        .and_where(col("tenant_id").eq(tenant));
    db.query_all(&select)
        .await?
        .iter()
        .map(|r| r.try_get::<Uuid>("", "id").map_err(Into::into))
        .collect()
}

/// Rows of `class` of `tenant` among `ids`, by id.
async fn rows_among(
    db: &impl ConnectionTrait,
    class: &RowClass,
    tenant: Uuid,
    ids: &[Uuid],
) -> anyhow::Result<HashMap<Uuid, Row>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(1_000) {
        let mut select = Query::select();
        select
            .columns(class.columns.iter().map(|c| Alias::new(&c.name)))
            .from(Alias::new(&class.table))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("id").is_in(chunk.iter().copied()));
        for result in db.query_all(&select).await? {
            let row = Row::read(&result, class)?;
            out.insert(row.id(), row);
        }
    }
    Ok(out)
}

/// Step 1: copies whose source the template removed, every copied class, children first.
/// Returns the number of copies removed per table.
pub async fn retire<C: ConnectionTrait>(
    scope: &Scope<'_, C>,
    options: &UpgradeOptions,
    phase: &str,
    progress: &mut dyn Progress,
    conflicts: &mut Vec<Conflict>,
) -> anyhow::Result<HashMap<String, u64>> {
    let mut removed = HashMap::new();
    let classes: Vec<RowClass> = scope
        .registry
        .copied_classes()
        .into_iter()
        .cloned()
        .collect();
    for class in classes.iter().rev() {
        let links = lineage::links(scope.db, scope.target, &class.table).await?;
        if links.is_empty() {
            continue;
        }
        let sources = ids_of(scope.source_db, &class.table, scope.source).await?;
        let mut ids: Vec<Uuid> = links
            .iter()
            .filter(|(_, link)| !sources.contains(&link.source_id))
            .map(|(id, _)| *id)
            .collect();
        if ids.is_empty() {
            continue;
        }
        ids.sort_unstable();
        let lineage = lineage::load_among(scope.db, scope.target, &class.table, &ids).await?;
        let retired: Vec<&Lineage> = ids.iter().filter_map(|id| lineage.get(id)).collect();
        let rows = rows_among(scope.db, class, scope.target, &ids).await?;
        let mut forget = Vec::new();
        let mut candidates = Vec::new();
        for l in retired {
            let Some(row) = rows.get(&l.id) else {
                // Removed from the template and deleted by the tenant: nothing left to track.
                forget.push(l.id);
                continue;
            };
            if content(class, row) != l.base {
                let conflict = Conflict::removal_kept(
                    class,
                    l,
                    content(class, row),
                    "removed from the template, changed by the tenant: kept",
                );
                progress.row_conflict(phase, &conflict);
                conflicts.push(conflict);
            } else if options.remove_deleted {
                candidates.push(l);
            }
        }
        let blocked = referenced(
            scope,
            class,
            &candidates.iter().map(|l| l.id).collect::<Vec<_>>(),
        )
        .await?;
        let mut gone = Vec::new();
        for l in candidates {
            if blocked.contains(&l.id) {
                let conflict = Conflict::removal_kept(
                    class,
                    l,
                    l.base.clone(),
                    "removed from the template, still referenced by rows of the tenant: kept",
                );
                progress.row_conflict(phase, &conflict);
                conflicts.push(conflict);
            } else {
                gone.push(l.id);
            }
        }
        for chunk in gone.chunks(1_000) {
            let mut delete = Query::delete();
            delete
                .from_table(Alias::new(&class.table))
                .and_where(col("tenant_id").eq(scope.target))
                .and_where(col("id").is_in(chunk.iter().copied()));
            scope.db.execute(&delete).await?;
        }
        removed.insert(class.table.clone(), gone.len() as u64);
        forget.extend(gone);
        lineage::forget(scope.db, scope.target, &forget).await?;
    }
    Ok(removed)
}

/// The candidates that rows of the tenant (other than candidates, and derived rows, which are
/// re-derived) still point at.
async fn referenced<C: ConnectionTrait>(
    scope: &Scope<'_, C>,
    class: &RowClass,
    candidates: &[Uuid],
) -> anyhow::Result<HashSet<Uuid>> {
    let mut out = HashSet::new();
    if candidates.is_empty() {
        return Ok(out);
    }
    let own: HashSet<Uuid> = candidates.iter().copied().collect();
    for (referrer, reference) in scope.registry.referrers(&class.table) {
        if !referrer.tenant_owned || referrer.plane == Plane::Derived {
            continue;
        }
        for chunk in candidates.chunks(1_000) {
            let mut select = Query::select();
            select
                .columns([Alias::new("id"), Alias::new(&reference.column)])
                .from(Alias::new(&referrer.table))
                .and_where(col("tenant_id").eq(scope.target))
                .and_where(col(&reference.column).is_in(chunk.iter().copied()));
            for row in scope.db.query_all(&select).await? {
                let id: Uuid = row.try_get("", "id")?;
                let target: Uuid = row.try_get("", &reference.column)?;
                if referrer.table == class.table && own.contains(&id) {
                    continue;
                }
                out.insert(target);
            }
        }
    }
    Ok(out)
}

/// The typed cell of a JSON content value for a column of `kind`.
pub fn cell_of(kind: ColumnKind, value: &serde_json::Value) -> Cell {
    use base64::Engine;
    use serde_json::Value as J;
    match (kind, value) {
        (_, J::Null) => Cell::Null,
        (ColumnKind::Uuid, J::String(s)) => Uuid::parse_str(s).map_or(Cell::Null, Cell::Uuid),
        (ColumnKind::Text, J::String(s)) => Cell::Text(s.clone()),
        (ColumnKind::Int, v) => v.as_i64().map_or(Cell::Null, Cell::Int),
        (ColumnKind::Bool, v) => v.as_bool().map_or(Cell::Null, Cell::Bool),
        (ColumnKind::Json, v) => Cell::Json(v.clone()),
        (ColumnKind::Timestamp, J::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map_or(Cell::Null, |t| {
                Cell::Timestamp(t.with_timezone(&chrono::Utc))
            }),
        (ColumnKind::Bytes, J::String(s)) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_or(Cell::Null, Cell::Bytes),
        (_, other) => Cell::Text(other.to_string()),
    }
}

/// Why the new value of reference `column` cannot be written, if it cannot.
fn unresolved(
    registry: &Registry,
    class: &RowClass,
    column: &str,
    value: &serde_json::Value,
    present: &HashMap<String, HashSet<Uuid>>,
    unforkable: &HashMap<String, HashSet<Uuid>>,
) -> Option<String> {
    let reference = class.references.iter().find(|r| r.column == column)?;
    let id = value.as_str().and_then(|s| Uuid::parse_str(s).ok())?;
    let target = registry.by_table(&reference.table)?;
    if target.plane == Plane::Vocabulary {
        return unforkable
            .get(&reference.table)
            .is_some_and(|ids| ids.contains(&id))
            .then(|| format!("its {} is not declared forkable", target.name));
    }
    (!present
        .get(&reference.table)
        .is_some_and(|ids| ids.contains(&id)))
    .then(|| format!("its {} is not in the tenant", target.name))
}

/// Step 2, for one class after the fork's copy: applies the template's changes to the copies
/// the tenant did not change, reports conflicts, and moves each copy's base to the template.
#[allow(clippy::too_many_arguments)]
pub async fn apply_class<C: ConnectionTrait>(
    scope: &Scope<'_, C>,
    class: &RowClass,
    present: &HashMap<String, HashSet<Uuid>>,
    unforkable: &HashMap<String, HashSet<Uuid>>,
    lineage: &HashMap<Uuid, Lineage>,
    count: &mut ClassCount,
    phase: &str,
    progress: &mut dyn Progress,
    outcome: &mut ForkOutcome,
) -> anyhow::Result<()> {
    if lineage.is_empty() {
        return Ok(());
    }
    let mut source_ids: Vec<Uuid> = lineage.values().map(|l| l.source_id).collect();
    source_ids.sort_unstable();
    let sources = rows_among(scope.source_db, class, scope.source, &source_ids).await?;
    let mut tracked: Vec<&Lineage> = lineage
        .values()
        .filter(|l| sources.contains_key(&l.source_id))
        .collect();
    tracked.sort_by_key(|l| l.id);
    let ids: Vec<Uuid> = tracked.iter().map(|l| l.id).collect();
    let mine = rows_among(scope.db, class, scope.target, &ids).await?;
    let kinds: HashMap<&str, ColumnKind> = class
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.kind))
        .collect();
    let mut rebased = Vec::new();
    for l in tracked {
        let Some(row) = mine.get(&l.id) else {
            continue; // deleted by the tenant: a tombstone, handled by the copy
        };
        let now = remapped_content(scope.registry, class, &sources[&l.source_id], scope.target);
        if now == l.base {
            if l.base_version < scope.version {
                // Unchanged since the base: the base is of this version too.
                rebased.push(lineage::Entry {
                    id: l.id,
                    source_id: l.source_id,
                    base: now,
                    version: scope.version,
                });
            }
            continue;
        }
        let current = content(class, row);
        let merged = merge(&l.base, &now, &current);
        let mut base = now.clone();
        // A field kept at its old base keeps the copy at its old version: a later upgrade
        // looks at it again.
        let mut version = scope.version;
        if !merged.conflicts.is_empty() {
            count.conflicts += 1;
        }
        for field in &merged.conflicts {
            let conflict = Conflict {
                class_name: class.name.to_string(),
                row_id: l.id,
                source_id: l.source_id,
                field: Some(field.field.clone()),
                base: field.base.clone(),
                template: field.template.clone(),
                tenant: field.tenant.clone(),
                reason: "changed by both the template and the tenant: kept the tenant's".into(),
            };
            progress.row_conflict(phase, &conflict);
            outcome.conflicts.push(conflict);
        }
        let mut apply = Vec::new();
        for (field, value) in merged.apply {
            match unresolved(scope.registry, class, &field, &value, present, unforkable) {
                Some(reason) => {
                    let skipped = SkippedRow {
                        class_name: class.name.to_string(),
                        source_id: l.source_id,
                        column: Some(field.clone()),
                        reason,
                    };
                    progress.row_skipped(phase, &skipped);
                    outcome.skipped.push(skipped);
                    // Kept at the old base, so a later upgrade tries again.
                    if let Some(old) = l.base.get(&field) {
                        base.insert(field, old.clone());
                    }
                    version = l.base_version;
                }
                None => apply.push((field, value)),
            }
        }
        if !apply.is_empty()
            && apply.iter().any(|(f, _)| class.natural_key.contains(f))
            && natural_key_taken(scope, class, row, &apply).await?
        {
            let conflict = Conflict {
                class_name: class.name.to_string(),
                row_id: l.id,
                source_id: l.source_id,
                field: None,
                base: serde_json::Value::Object(l.base.clone().into_iter().collect()),
                template: serde_json::Value::Object(now.clone().into_iter().collect()),
                tenant: serde_json::Value::Object(current.clone().into_iter().collect()),
                reason: "the template's new natural key is taken by another row of the tenant"
                    .into(),
            };
            progress.row_conflict(phase, &conflict);
            outcome.conflicts.push(conflict);
            count.conflicts += 1;
            for (field, _) in apply.drain(..) {
                if let Some(old) = l.base.get(&field) {
                    base.insert(field, old.clone());
                }
            }
            version = l.base_version;
        }
        if !apply.is_empty() {
            let mut update = Query::update();
            update
                .table(Alias::new(&class.table))
                .and_where(col("tenant_id").eq(scope.target))
                .and_where(col("id").eq(l.id));
            for (field, value) in &apply {
                let kind = kinds
                    .get(field.as_str())
                    .copied()
                    .unwrap_or(ColumnKind::Text);
                update.value(Alias::new(field), cell_of(kind, value).to_value(kind));
            }
            if kinds.contains_key("updated_at") {
                update.value(Alias::new("updated_at"), chrono::Utc::now());
            }
            scope.db.execute(&update).await?;
            count.updated += 1;
        }
        if base != l.base || version != l.base_version {
            rebased.push(lineage::Entry {
                id: l.id,
                source_id: l.source_id,
                base,
                version,
            });
        }
    }
    lineage::store(scope.db, scope.target, scope.source, &class.table, &rebased).await
}

/// Whether another row of the tenant already has the natural key `row` would get.
async fn natural_key_taken<C: ConnectionTrait>(
    scope: &Scope<'_, C>,
    class: &RowClass,
    row: &Row,
    apply: &[(String, serde_json::Value)],
) -> anyhow::Result<bool> {
    let mut select = Query::select();
    select
        .column(Alias::new("id"))
        .from(Alias::new(&class.table))
        .and_where(col("tenant_id").eq(scope.target))
        .and_where(col("id").ne(row.id()))
        .limit(1);
    for key in &class.natural_key {
        if key == "tenant_id" {
            continue;
        }
        let kind = class
            .columns
            .iter()
            .find(|c| &c.name == key)
            .map_or(ColumnKind::Text, |c| c.kind);
        let cell = match apply.iter().find(|(f, _)| f == key) {
            Some((_, value)) => cell_of(kind, value),
            None => row.get(key).clone(),
        };
        if cell == Cell::Null {
            return Ok(false); // NULL never clashes in a unique index
        }
        select.and_where(col(key).eq(cell.to_value(kind)));
    }
    Ok(scope.db.query_one(&select).await?.is_some())
}
