//! The fork: copies the source's configuration into the target in one transaction.
//!
//! **Identity map.** The copy of source row `s` in target tenant `t` has id
//! `uuid_v5(namespace = t, name = s)`. The map is a pure function: references are remapped by
//! applying it, a re-run finds its earlier copies by primary key, and two runs collide on keys
//! instead of duplicating.
//!
//! **Reconciled** means: a source row whose copy exists in the target (same id) is *matched* and
//! left exactly as the tenant has it; a source row whose copy was never made is *created*; a
//! source row whose copy the tenant deleted (its lineage remains: a tombstone) stays deleted
//! unless the run restores deleted rows; nothing the tenant owns is overwritten or deleted.
//! Derived rows (phases 3–5) are engine-owned and recomputed: missing ones are added, stale ones
//! removed.
//!
//! **Lineage.** Every row created or matched gets its [`super::lineage`] record (source and base
//! content). An upgrade ([`super::upgrade`]) runs this same engine, and additionally retires
//! rows the template removed and applies the template's changes to each class after copying it.
//!
//! **Anchors.** A row is copied only when every reference resolves: references to vocabulary are
//! kept as they are; references to copied classes must point at a row that exists in the target
//! after remapping; anything else (a runtime row of the source, such as a team) cannot resolve,
//! and the row is skipped and reported. Vocabulary that declares `forkable = false` (custom
//! types) keeps its records out of the fork.

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ConnectionTrait,
    sea_query::{Alias, Expr, ExprTrait, OnConflict, Order, Query},
};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    fork::{
        lineage::{self, Lineage},
        upgrade::{self, Conflict, UpgradeOptions},
    },
    registry::{ColumnKind, Fork, Plane, Registry, RowClass},
    rows::{Cell, Row},
};

/// Largest number of bind parameters one statement uses (PostgreSQL allows 65,535; SQLite
/// 32,766).
pub const MAX_BIND_PARAMS: usize = 30_000;
/// Largest number of rows read or written per statement.
pub const MAX_BATCH_ROWS: usize = 1_000;

/// The phases, in order.
pub const PHASES: [&str; 5] = [
    "APPLICATION_SPINE",
    "TENANT_WIDE",
    "GEOSPATIAL_LAYERS",
    "CITIZEN_READ_ACCESS",
    "CITIZEN_SUBMIT_VOTE_ACCESS",
];

/// The id of the copy of `source_id` in `target`.
pub fn target_id(target: Uuid, source_id: Uuid) -> Uuid {
    Uuid::new_v5(&target, source_id.as_bytes())
}

/// Counts for one class.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ClassCount {
    pub class_name: String,
    pub phase: String,
    /// Source rows considered.
    pub rows: u64,
    /// Rows created in the target (or, in a dry run, that would be).
    pub created: u64,
    /// Rows already present in the target (reconciled, left as the tenant has them).
    pub matched: u64,
    /// Rows skipped (unresolved anchor, or natural key already taken in the target).
    pub skipped: u64,
    /// Derived rows removed because they no longer follow from the configuration (an
    /// upgrade: also copies removed because the template removed their source).
    pub removed: u64,
    /// Copies an upgrade changed to follow the template.
    pub updated: u64,
    /// Rows with fields both the template and the tenant changed (left as the tenant has them).
    pub conflicts: u64,
    /// Source rows whose copy the tenant deleted, kept deleted (tombstones).
    pub kept_deleted: u64,
}

/// A row that was not copied, and why.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SkippedRow {
    pub class_name: String,
    pub source_id: Uuid,
    /// The reference that did not resolve (or `null` for a natural-key clash).
    pub column: Option<String>,
    pub reason: String,
}

/// Receives progress as the engine works.
pub trait Progress: Send {
    fn phase_started(&mut self, phase: &str);
    fn rows_copied(&mut self, phase: &str, count: &ClassCount);
    fn row_skipped(&mut self, phase: &str, skipped: &SkippedRow);
    fn phase_finished(&mut self, phase: &str);
    /// An upgrade left a field (or a row) as the tenant has it because both sides changed it.
    fn row_conflict(&mut self, _phase: &str, _conflict: &Conflict) {}
    /// Called after each phase and in the middle of phase 2; an error aborts the run (used by
    /// the test-only failpoint).
    fn checkpoint(&mut self, point: &str) -> anyhow::Result<()>;
}

/// The result of a run (or of a dry run).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ForkOutcome {
    pub counts: Vec<ClassCount>,
    pub skipped: Vec<SkippedRow>,
    /// An upgrade's conflicts.
    pub conflicts: Vec<Conflict>,
}

/// What a run does beyond copying missing rows.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Re-create copies the tenant deleted (otherwise their tombstones keep them deleted).
    pub restore_deleted: bool,
    /// The template version recorded in the lineage of the rows this run writes.
    pub version: Option<i32>,
    /// Set for an upgrade: apply the template's changes too.
    pub upgrade: Option<UpgradeOptions>,
}

/// One fork, running inside a transaction (`db`).
pub struct Engine<'a, C: ConnectionTrait> {
    db: &'a C,
    registry: &'a Registry,
    source: Uuid,
    target: Uuid,
    dry_run: bool,
    /// Ids present in the target after each copied class was processed (by table).
    present: HashMap<String, HashSet<Uuid>>,
    /// Vocabulary ids whose rows must stay out of the fork (`forkable = false`), by table.
    unforkable: HashMap<String, HashSet<Uuid>>,
    /// A dry run's rows to create, for the tables the derived phases read ([`DERIVED_INPUTS`]):
    /// they plan from the target as it would be.
    planned: HashMap<String, Vec<Row>>,
    outcome: ForkOutcome,
    options: RunOptions,
    /// The lineage of the target's copies of the class being copied, by copy id.
    lineage: HashMap<Uuid, Lineage>,
    /// An upgrade's copies removed because the template removed their source, by table.
    retired: HashMap<String, u64>,
}

/// The copied tables the derived phases (3–5) compute from.
const DERIVED_INPUTS: [&str; 5] = [
    "applications",
    "application_entities",
    "actions",
    "action_placements",
    "portal_pages",
];

fn col(name: &str) -> Expr {
    Expr::col(Alias::new(name))
}

impl<'a, C: ConnectionTrait> Engine<'a, C> {
    /// Prepares a fork of `source` into `target`.
    pub fn new(
        db: &'a C,
        registry: &'a Registry,
        source: Uuid,
        target: Uuid,
        dry_run: bool,
    ) -> Self {
        Self {
            db,
            registry,
            source,
            target,
            dry_run,
            present: HashMap::new(),
            unforkable: HashMap::new(),
            planned: HashMap::new(),
            outcome: ForkOutcome::default(),
            options: RunOptions::default(),
            lineage: HashMap::new(),
            retired: HashMap::new(),
        }
    }

    /// Sets what the run does beyond copying missing rows.
    pub fn with_options(mut self, options: RunOptions) -> Self {
        self.options = options;
        self
    }

    fn upgrade_scope(&self) -> upgrade::Scope<'a, C> {
        upgrade::Scope {
            db: self.db,
            registry: self.registry,
            source: self.source,
            target: self.target,
            version: self.options.version,
        }
    }

    /// Runs every phase.
    pub async fn run(mut self, progress: &mut dyn Progress) -> anyhow::Result<ForkOutcome> {
        self.load_unforkable().await?;
        progress.checkpoint("before_phase:1")?;
        for (phase, fork) in [(PHASES[0], Fork::Spine), (PHASES[1], Fork::TenantWide)] {
            progress.phase_started(phase);
            if fork == Fork::Spine
                && let Some(options) = self.options.upgrade.clone()
            {
                // Copies whose source the template removed go first, children before parents.
                self.retired = upgrade::retire(
                    &self.upgrade_scope(),
                    &options,
                    phase,
                    progress,
                    &mut self.outcome.conflicts,
                )
                .await?;
            }
            let classes: Vec<RowClass> = self
                .registry
                .fork_order(fork)
                .into_iter()
                .cloned()
                .collect();
            let half = classes.len() / 2;
            for (i, class) in classes.iter().enumerate() {
                if fork == Fork::TenantWide && i == half {
                    progress.checkpoint("mid_phase:2")?;
                }
                self.copy_class(class, phase, progress).await?;
            }
            progress.phase_finished(phase);
            progress.checkpoint(&format!(
                "after_phase:{}",
                if fork == Fork::Spine { 1 } else { 2 }
            ))?;
        }
        for (n, phase) in PHASES.iter().enumerate().skip(2) {
            progress.phase_started(phase);
            // A dry run plans these from the target plus the rows it would have created.
            let desired = match n {
                2 => self.geo_layers().await?,
                3 => self.citizen_read().await?,
                _ => self.citizen_submit_vote().await?,
            };
            self.reconcile_derived(phase, desired, progress).await?;
            progress.phase_finished(phase);
            progress.checkpoint(&format!("after_phase:{}", n + 1))?;
        }
        Ok(self.outcome)
    }

    async fn load_unforkable(&mut self) -> anyhow::Result<()> {
        for class in self.registry.classes() {
            if class.plane != Plane::Vocabulary
                || !class
                    .columns
                    .iter()
                    .any(|c| c.name == "forkable" && c.kind == ColumnKind::Bool)
            {
                continue;
            }
            let mut select = Query::select();
            select
                .column(Alias::new("id"))
                .from(Alias::new(&class.table))
                .and_where(col("forkable").eq(false));
            let ids = self
                .db
                .query_all(&select)
                .await?
                .iter()
                .map(|r| r.try_get::<Uuid>("", "id"))
                .collect::<Result<HashSet<_>, _>>()?;
            self.unforkable.insert(class.table.clone(), ids);
        }
        Ok(())
    }

    /// Reads source rows of `class` with ids after `after`, in id order.
    async fn source_batch(
        &self,
        class: &RowClass,
        after: Option<Uuid>,
        limit: usize,
    ) -> anyhow::Result<Vec<Row>> {
        let mut select = Query::select();
        select
            .columns(class.columns.iter().map(|c| Alias::new(&c.name)))
            .from(Alias::new(&class.table))
            .and_where(col("tenant_id").eq(self.source))
            .order_by(Alias::new("id"), Order::Asc)
            .limit(limit as u64);
        if let Some(after) = after {
            select.and_where(col("id").gt(after));
        }
        Ok(self
            .db
            .query_all(&select)
            .await?
            .iter()
            .map(|r| Row::read(r, class))
            .collect::<Result<Vec<_>, _>>()?)
    }

    fn batch_rows(class: &RowClass) -> usize {
        (MAX_BIND_PARAMS / class.columns.len().max(1)).clamp(1, MAX_BATCH_ROWS)
    }

    async fn copy_class(
        &mut self,
        class: &RowClass,
        phase: &str,
        progress: &mut dyn Progress,
    ) -> anyhow::Result<()> {
        let mut count = ClassCount {
            class_name: class.name.to_string(),
            phase: phase.to_string(),
            ..ClassCount::default()
        };
        self.present.entry(class.table.clone()).or_default();
        self.lineage = lineage::load(self.db, self.target, &class.table).await?;
        count.removed = self.retired.get(&class.table).copied().unwrap_or(0);
        // A first fork finds the class empty in the target: no batch can match an existing row,
        // so the per-batch lookup of existing ids is skipped.
        let fresh = !self.target_has_rows(class).await?;
        let self_ref = class.references.iter().any(|r| r.table == class.table);
        let batch = Self::batch_rows(class);
        if self_ref {
            // Trees: read the whole class, then copy level by level so parents come first.
            let mut all = Vec::new();
            let mut after = None;
            loop {
                let rows = self.source_batch(class, after, batch).await?;
                let done = rows.len() < batch;
                after = rows.last().map(Row::id);
                all.extend(rows);
                if done {
                    break;
                }
            }
            for level in tree_levels(class, all) {
                for chunk in level.chunks(batch) {
                    self.copy_rows(class, chunk.to_vec(), fresh, &mut count, progress, phase)
                        .await?;
                }
            }
        } else {
            let mut after = None;
            loop {
                let rows = self.source_batch(class, after, batch).await?;
                let done = rows.len() < batch;
                after = rows.last().map(Row::id);
                self.copy_rows(class, rows, fresh, &mut count, progress, phase)
                    .await?;
                if done {
                    break;
                }
            }
        }
        if self.options.upgrade.is_some() {
            let present = std::mem::take(&mut self.present);
            let applied = upgrade::apply_class(
                &self.upgrade_scope(),
                class,
                &present,
                &self.unforkable,
                &self.lineage,
                &mut count,
                phase,
                progress,
                &mut self.outcome,
            )
            .await;
            self.present = present;
            applied?;
        }
        progress.rows_copied(phase, &count);
        self.outcome.counts.push(count);
        Ok(())
    }

    /// Resolves the references of `row` for the target; `Err(column)` names the one that does
    /// not resolve.
    fn remap(&self, class: &RowClass, row: &Row) -> Result<Row, (String, String)> {
        let mut out = row.clone();
        out.set("id", Cell::Uuid(target_id(self.target, row.id())));
        out.set("tenant_id", Cell::Uuid(self.target));
        let now = chrono::Utc::now();
        for stamp in ["created_at", "updated_at"] {
            if out.values.contains_key(stamp) {
                out.set(stamp, Cell::Timestamp(now));
            }
        }
        for reference in &class.references {
            let Some(value) = row.get(&reference.column).as_uuid() else {
                continue;
            };
            let Some(target_class) = self.registry.by_table(&reference.table) else {
                return Err((
                    reference.column.clone(),
                    "references an unknown class".into(),
                ));
            };
            if target_class.plane == Plane::Vocabulary {
                if self
                    .unforkable
                    .get(&reference.table)
                    .is_some_and(|ids| ids.contains(&value))
                {
                    return Err((
                        reference.column.clone(),
                        format!("its {} is not declared forkable", target_class.name),
                    ));
                }
                continue;
            }
            if !reference.same_tenant || !target_class.fork.is_copied() {
                return Err((
                    reference.column.clone(),
                    format!(
                        "references a {} ({}), which the fork does not copy",
                        target_class.name, value
                    ),
                ));
            }
            let mapped = target_id(self.target, value);
            let present = self
                .present
                .get(&reference.table)
                .is_some_and(|ids| ids.contains(&mapped));
            if !present {
                return Err((
                    reference.column.clone(),
                    format!("its {} was not copied", target_class.name),
                ));
            }
            out.set(reference.column.clone(), Cell::Uuid(mapped));
        }
        Ok(out)
    }

    /// Whether the target has any row of `class` yet.
    async fn target_has_rows(&self, class: &RowClass) -> anyhow::Result<bool> {
        let mut select = Query::select();
        select
            .column(Alias::new("id"))
            .from(Alias::new(&class.table))
            .and_where(col("tenant_id").eq(self.target))
            .limit(1);
        Ok(self.db.query_one(&select).await?.is_some())
    }

    async fn existing_ids(&self, class: &RowClass, ids: &[Uuid]) -> anyhow::Result<HashSet<Uuid>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let mut select = Query::select();
        select
            .column(Alias::new("id"))
            .from(Alias::new(&class.table))
            .and_where(col("tenant_id").eq(self.target))
            .and_where(col("id").is_in(ids.iter().copied()));
        Ok(self
            .db
            .query_all(&select)
            .await?
            .iter()
            .map(|r| r.try_get::<Uuid>("", "id"))
            .collect::<Result<HashSet<_>, _>>()?)
    }

    async fn insert_rows(&self, class: &RowClass, rows: &[Row]) -> anyhow::Result<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new(&class.table))
            .columns(class.columns.iter().map(|c| Alias::new(&c.name)))
            .on_conflict(OnConflict::new().do_nothing().to_owned());
        for row in rows {
            let values: Vec<Expr> = class
                .columns
                .iter()
                .map(|c| row.get(&c.name).to_value(c.kind).into())
                .collect();
            insert.values(values)?;
        }
        Ok(self.db.execute(&insert).await?.rows_affected())
    }

    async fn copy_rows(
        &mut self,
        class: &RowClass,
        rows: Vec<Row>,
        fresh: bool,
        count: &mut ClassCount,
        progress: &mut dyn Progress,
        phase: &str,
    ) -> anyhow::Result<()> {
        count.rows += rows.len() as u64;
        let sources: HashMap<Uuid, Uuid> = rows
            .iter()
            .map(|r| (target_id(self.target, r.id()), r.id()))
            .collect();
        let mut ready = Vec::with_capacity(rows.len());
        for row in &rows {
            match self.remap(class, row) {
                Ok(mapped) => ready.push(mapped),
                Err((column, reason)) => {
                    let skipped = SkippedRow {
                        class_name: class.name.to_string(),
                        source_id: row.id(),
                        column: Some(column),
                        reason,
                    };
                    progress.row_skipped(phase, &skipped);
                    self.outcome.skipped.push(skipped);
                    count.skipped += 1;
                }
            }
        }
        let ids: Vec<Uuid> = ready.iter().map(Row::id).collect();
        let existing = if fresh {
            HashSet::new()
        } else {
            self.existing_ids(class, &ids).await?
        };
        count.matched += existing.len() as u64;
        // Copies that exist but have no lineage (made before lineage was kept) are adopted:
        // their base is the source as it is now.
        let adopted: Vec<lineage::Entry> = ready
            .iter()
            .filter(|r| existing.contains(&r.id()) && !self.lineage.contains_key(&r.id()))
            .map(|r| self.lineage_entry(class, r, &sources))
            .collect();
        let restore = self.options.restore_deleted;
        let (to_insert, tombstoned): (Vec<Row>, Vec<Row>) = ready
            .into_iter()
            .filter(|r| !existing.contains(&r.id()))
            .partition(|r| restore || !self.lineage.contains_key(&r.id()));
        count.kept_deleted += tombstoned.len() as u64;
        let present = self.present.entry(class.table.clone()).or_default();
        present.extend(existing.iter().copied());
        if self.dry_run {
            count.created += to_insert.len() as u64;
            let present = self.present.entry(class.table.clone()).or_default();
            present.extend(to_insert.iter().map(Row::id));
            if DERIVED_INPUTS.contains(&class.table.as_str()) {
                self.planned
                    .entry(class.table.clone())
                    .or_default()
                    .extend(to_insert);
            }
            return Ok(());
        }
        let inserted = self.insert_rows(class, &to_insert).await?;
        if inserted as usize == to_insert.len() {
            count.created += inserted;
            let present = self.present.entry(class.table.clone()).or_default();
            present.extend(to_insert.iter().map(Row::id));
            let mut entries = adopted;
            entries.extend(
                to_insert
                    .iter()
                    .map(|r| self.lineage_entry(class, r, &sources)),
            );
            self.store_lineage(class, &entries).await?;
            return Ok(());
        }
        // Some rows clashed with a row the tenant made itself under the same natural key.
        let wanted: Vec<Uuid> = to_insert.iter().map(Row::id).collect();
        let now_present = self.existing_ids(class, &wanted).await?;
        count.created += now_present.len() as u64;
        for row in &to_insert {
            if !now_present.contains(&row.id()) {
                let source_id = rows
                    .iter()
                    .find(|s| target_id(self.target, s.id()) == row.id())
                    .map_or(row.id(), Row::id);
                let skipped = SkippedRow {
                    class_name: class.name.to_string(),
                    source_id,
                    column: None,
                    reason: "the target already has a different row with the same natural key"
                        .into(),
                };
                progress.row_skipped(phase, &skipped);
                self.outcome.skipped.push(skipped);
                count.skipped += 1;
            }
        }
        let mut entries = adopted;
        entries.extend(
            to_insert
                .iter()
                .filter(|r| now_present.contains(&r.id()))
                .map(|r| self.lineage_entry(class, r, &sources)),
        );
        self.store_lineage(class, &entries).await?;
        self.present
            .entry(class.table.clone())
            .or_default()
            .extend(now_present);
        Ok(())
    }

    /// The lineage of the copy `mapped` (a remapped row of `sources`).
    fn lineage_entry(
        &self,
        class: &RowClass,
        mapped: &Row,
        sources: &HashMap<Uuid, Uuid>,
    ) -> lineage::Entry {
        lineage::Entry {
            id: mapped.id(),
            source_id: sources.get(&mapped.id()).copied().unwrap_or_default(),
            base: lineage::content(class, mapped),
        }
    }

    async fn store_lineage(
        &mut self,
        class: &RowClass,
        entries: &[lineage::Entry],
    ) -> anyhow::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        lineage::store(
            self.db,
            self.target,
            self.source,
            &class.table,
            entries,
            self.options.version,
        )
        .await?;
        for entry in entries {
            self.lineage.insert(
                entry.id,
                Lineage {
                    id: entry.id,
                    source_id: entry.source_id,
                    base: entry.base.clone(),
                },
            );
        }
        Ok(())
    }

    // ----- derived phases -------------------------------------------------------------------

    async fn target_rows(&self, table: &str) -> anyhow::Result<Vec<Row>> {
        let class = self
            .registry
            .by_table(table)
            .ok_or_else(|| anyhow::anyhow!("registry has no {table}"))?;
        let mut select = Query::select();
        select
            .columns(class.columns.iter().map(|c| Alias::new(&c.name)))
            .from(Alias::new(table))
            .and_where(col("tenant_id").eq(self.target));
        let mut rows = self
            .db
            .query_all(&select)
            .await?
            .iter()
            .map(|r| Row::read(r, class))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(planned) = self.planned.get(table) {
            rows.extend(planned.iter().cloned());
        }
        Ok(rows)
    }

    async fn vocabulary(&self, table: &str) -> anyhow::Result<HashMap<Uuid, Row>> {
        let class = self
            .registry
            .by_table(table)
            .ok_or_else(|| anyhow::anyhow!("registry has no {table}"))?;
        let mut select = Query::select();
        select
            .columns(class.columns.iter().map(|c| Alias::new(&c.name)))
            .from(Alias::new(table));
        Ok(self
            .db
            .query_all(&select)
            .await?
            .iter()
            .map(|r| Row::read(r, class).map(|row| (row.id(), row)))
            .collect::<Result<HashMap<_, _>, _>>()?)
    }

    fn derived_row(&self, table: &str, key: &str, values: Vec<(&str, Cell)>) -> (String, Row) {
        let mut row = Row::default();
        row.set(
            "id",
            Cell::Uuid(Uuid::new_v5(
                &self.target,
                format!("{table}:{key}").as_bytes(),
            )),
        );
        row.set("tenant_id", Cell::Uuid(self.target));
        let now = chrono::Utc::now();
        row.set("created_at", Cell::Timestamp(now));
        row.set("updated_at", Cell::Timestamp(now));
        for (k, v) in values {
            row.set(k, v);
        }
        (table.to_string(), row)
    }

    /// Phase 3: a layer per geometry field of each entity of a `map` application.
    async fn geo_layers(&self) -> anyhow::Result<Vec<(String, Row)>> {
        let schemas = self.vocabulary("entity_schemas").await?;
        let apps: HashMap<Uuid, Row> = self
            .target_rows("applications")
            .await?
            .into_iter()
            .map(|r| (r.id(), r))
            .collect();
        let mut out = Vec::new();
        for membership in self.target_rows("application_entities").await? {
            let (Some(app_id), Some(schema_id)) = (
                membership.get("application_id").as_uuid(),
                membership.get("entity_schema_id").as_uuid(),
            ) else {
                continue;
            };
            let Some(app) = apps.get(&app_id) else {
                continue;
            };
            let has_map = matches!(app.get("features"), Cell::Json(f) if f.get("map") == Some(&serde_json::Value::Bool(true)));
            if !has_map {
                continue;
            }
            let Some(schema) = schemas.get(&schema_id) else {
                continue;
            };
            let Cell::Json(serde_json::Value::Array(fields)) = schema.get("fields") else {
                continue;
            };
            for field in fields {
                let geometry = field.get("geometry").and_then(|g| g.as_bool()) == Some(true)
                    || field.get("type").and_then(|t| t.as_str()).is_some_and(|t| {
                        matches!(t, "geometry" | "point" | "polygon" | "line" | "geojson")
                    });
                let Some(name) = field.get("name").and_then(|n| n.as_str()) else {
                    continue;
                };
                if !geometry {
                    continue;
                }
                let schema_key = schema.get("key").as_text().unwrap_or_default();
                let key = format!(
                    "{}.{}.{}",
                    app.get("code").as_text().unwrap_or_default(),
                    schema_key,
                    name
                );
                out.push(self.derived_row(
                    "geo_layers",
                    &format!("{app_id}:{schema_id}:{name}"),
                    vec![
                        ("application_id", Cell::Uuid(app_id)),
                        ("entity_schema_id", Cell::Uuid(schema_id)),
                        ("field", Cell::Text(name.to_string())),
                        ("key", Cell::Text(key)),
                    ],
                ));
            }
        }
        Ok(out)
    }

    fn grant(
        &self,
        kind: &str,
        app: Uuid,
        page: Option<Uuid>,
        action: Option<Uuid>,
        resource: String,
    ) -> (String, Row) {
        self.derived_row(
            "access_grants",
            &format!("{kind}:{resource}"),
            vec![
                ("kind", Cell::Text(kind.into())),
                ("application_id", Cell::Uuid(app)),
                ("portal_page_id", page.map_or(Cell::Null, Cell::Uuid)),
                ("action_id", action.map_or(Cell::Null, Cell::Uuid)),
                ("resource", Cell::Text(resource)),
                ("audience", Cell::Text("CITIZEN".into())),
            ],
        )
    }

    /// Phase 4: citizens read public portal pages and actions placed on public surfaces.
    async fn citizen_read(&self) -> anyhow::Result<Vec<(String, Row)>> {
        let surfaces = self.vocabulary("surface_types").await?;
        let mut out = Vec::new();
        for page in self.target_rows("portal_pages").await? {
            let public_surface = page
                .get("surface_type_id")
                .as_uuid()
                .and_then(|s| surfaces.get(&s))
                .is_some_and(|s| s.get("is_public").as_bool());
            if !(page.get("is_public").as_bool() || public_surface) {
                continue;
            }
            let Some(app) = page.get("application_id").as_uuid() else {
                continue;
            };
            out.push(self.grant(
                "CITIZEN_READ",
                app,
                Some(page.id()),
                None,
                format!("portal_page:{}", page.id()),
            ));
        }
        for placement in self.target_rows("action_placements").await? {
            let public = placement
                .get("surface_type_id")
                .as_uuid()
                .and_then(|s| surfaces.get(&s))
                .is_some_and(|s| s.get("is_public").as_bool());
            let (Some(app), Some(action)) = (
                placement.get("application_id").as_uuid(),
                placement.get("action_id").as_uuid(),
            ) else {
                continue;
            };
            if public {
                out.push(self.grant(
                    "CITIZEN_READ",
                    app,
                    None,
                    Some(action),
                    format!("action:{action}"),
                ));
            }
        }
        dedup(&mut out);
        Ok(out)
    }

    /// Phase 5: citizens submit to and vote on actions marked public submit / public vote.
    async fn citizen_submit_vote(&self) -> anyhow::Result<Vec<(String, Row)>> {
        let mut out = Vec::new();
        for action in self.target_rows("actions").await? {
            let Some(app) = action.get("application_id").as_uuid() else {
                continue;
            };
            if action.get("public_submit").as_bool() {
                out.push(self.grant(
                    "CITIZEN_SUBMIT",
                    app,
                    None,
                    Some(action.id()),
                    format!("action:{}", action.id()),
                ));
            }
            if action.get("public_vote").as_bool() {
                out.push(self.grant(
                    "CITIZEN_VOTE",
                    app,
                    None,
                    Some(action.id()),
                    format!("action:{}", action.id()),
                ));
            }
        }
        Ok(out)
    }

    /// Adds missing derived rows and removes stale ones of the kinds this phase owns.
    async fn reconcile_derived(
        &mut self,
        phase: &str,
        desired: Vec<(String, Row)>,
        progress: &mut dyn Progress,
    ) -> anyhow::Result<()> {
        let (table, kinds): (&str, &[&str]) = match phase {
            "GEOSPATIAL_LAYERS" => ("geo_layers", &[]),
            "CITIZEN_READ_ACCESS" => ("access_grants", &["CITIZEN_READ"]),
            _ => ("access_grants", &["CITIZEN_SUBMIT", "CITIZEN_VOTE"]),
        };
        let class = self
            .registry
            .by_table(table)
            .ok_or_else(|| anyhow::anyhow!("registry has no {table}"))?
            .clone();
        let mut count = ClassCount {
            class_name: class.name.to_string(),
            phase: phase.to_string(),
            rows: desired.len() as u64,
            ..ClassCount::default()
        };
        let mut select = Query::select();
        select
            .column(Alias::new("id"))
            .from(Alias::new(table))
            .and_where(col("tenant_id").eq(self.target));
        if !kinds.is_empty() {
            select.and_where(col("kind").is_in(kinds.iter().copied()));
        }
        let existing: HashSet<Uuid> = self
            .db
            .query_all(&select)
            .await?
            .iter()
            .map(|r| r.try_get::<Uuid>("", "id"))
            .collect::<Result<_, _>>()?;
        let wanted: HashSet<Uuid> = desired.iter().map(|(_, r)| r.id()).collect();
        let missing: Vec<Row> = desired
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| !existing.contains(&r.id()))
            .collect();
        let stale: Vec<Uuid> = existing.difference(&wanted).copied().collect();
        count.matched = (wanted.len() - missing.len()) as u64;
        count.created = missing.len() as u64;
        count.removed = stale.len() as u64;
        if !self.dry_run {
            for chunk in missing.chunks(Self::batch_rows(&class)) {
                self.insert_rows(&class, chunk).await?;
            }
            for chunk in stale.chunks(MAX_BATCH_ROWS) {
                let mut delete = Query::delete();
                delete
                    .from_table(Alias::new(table))
                    .and_where(col("tenant_id").eq(self.target))
                    .and_where(col("id").is_in(chunk.iter().copied()));
                self.db.execute(&delete).await?;
            }
        }
        progress.rows_copied(phase, &count);
        self.outcome.counts.push(count);
        Ok(())
    }
}

fn dedup(rows: &mut Vec<(String, Row)>) {
    let mut seen = HashSet::new();
    rows.retain(|(_, r)| seen.insert(r.id()));
}

/// Splits the rows of a self-referencing class into levels: roots first, then their children…
/// Rows whose parent is not among the source rows end up in the last level (and will be
/// reported as unresolved).
fn tree_levels(class: &RowClass, rows: Vec<Row>) -> Vec<Vec<Row>> {
    let self_columns: Vec<&str> = class
        .references
        .iter()
        .filter(|r| r.table == class.table)
        .map(|r| r.column.as_str())
        .collect();
    let mut placed: HashSet<Uuid> = HashSet::new();
    let mut remaining = rows;
    let mut levels = Vec::new();
    while !remaining.is_empty() {
        let (ready, waiting): (Vec<Row>, Vec<Row>) = remaining.into_iter().partition(|row| {
            self_columns.iter().all(|c| match row.get(c).as_uuid() {
                None => true,
                Some(parent) => placed.contains(&parent),
            })
        });
        if ready.is_empty() {
            levels.push(waiting);
            break;
        }
        placed.extend(ready.iter().map(Row::id));
        levels.push(ready);
        remaining = waiting;
    }
    levels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn node(id: u128, parent: Option<u128>) -> Row {
        let mut row = Row::default();
        row.set("id", Cell::Uuid(Uuid::from_u128(id)));
        row.set(
            "parent_id",
            parent.map_or(Cell::Null, |p| Cell::Uuid(Uuid::from_u128(p))),
        );
        row
    }

    fn ids(levels: &[Vec<Row>]) -> Vec<Vec<u128>> {
        levels
            .iter()
            .map(|level| {
                let mut ids: Vec<u128> = level.iter().map(|r| r.id().as_u128()).collect();
                ids.sort_unstable();
                ids
            })
            .collect()
    }

    #[test]
    fn tree_levels_put_parents_before_children_and_orphans_last() {
        let registry = Registry::default();
        let tree = registry.by_table("navigation_items").expect("navigation");
        // 1 → 2 → 4, 1 → 3; 5 is a root; 7's parent 6 is not among the rows.
        let rows = vec![
            node(4, Some(2)),
            node(7, Some(6)),
            node(2, Some(1)),
            node(1, None),
            node(3, Some(1)),
            node(5, None),
        ];
        let levels = tree_levels(tree, rows);
        assert_eq!(ids(&levels), vec![vec![1, 5], vec![2, 3], vec![4], vec![7]]);
    }

    #[test]
    fn tree_levels_of_roots_only_are_one_level() {
        let registry = Registry::default();
        let tree = registry.by_table("navigation_items").expect("navigation");
        let levels = tree_levels(tree, vec![node(1, None), node(2, None)]);
        assert_eq!(ids(&levels), vec![vec![1, 2]]);
        assert!(tree_levels(tree, Vec::new()).is_empty());
    }
}
