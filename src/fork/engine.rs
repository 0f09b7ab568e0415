//! The fork engine's generic copy: copies the source's configuration into the target in one
//! transaction, class by class in the registry's order, whatever the classes are. The domain's
//! derived phases (3–5) are in [`derived`]. (About 650 lines: the copy's steps — anchors,
//! batches, identity map, tombstones — are one algorithm and read best in one file.)
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
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use serde::Serialize;
use uuid::Uuid;

mod delta;
mod derived;
mod spine;
mod statements;

pub use derived::DerivedPhase;

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

/// A copy phase: which classes it copies (by their declared [`Fork`] phase) and under which name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyPhase {
    /// Phase 1: applications and what hangs off them (the `Spine` classes).
    ApplicationSpine,
    /// Phase 2: every other copied class (the `TenantWide` classes), in reference order.
    TenantWide,
}

impl CopyPhase {
    /// The copy phases in the order a run takes them.
    pub const ALL: [CopyPhase; 2] = [CopyPhase::ApplicationSpine, CopyPhase::TenantWide];

    /// The phase's name, as events, run records and the `ForkPhase` enum show it.
    pub const fn name(self) -> &'static str {
        match self {
            CopyPhase::ApplicationSpine => "APPLICATION_SPINE",
            CopyPhase::TenantWide => "TENANT_WIDE",
        }
    }

    /// The classes it copies: those whose entity declares this phase.
    pub const fn classes(self) -> Fork {
        match self {
            CopyPhase::ApplicationSpine => Fork::Spine,
            CopyPhase::TenantWide => Fork::TenantWide,
        }
    }

    /// Its number (1 or 2), as the failpoints name it.
    pub const fn number(self) -> usize {
        match self {
            CopyPhase::ApplicationSpine => 1,
            CopyPhase::TenantWide => 2,
        }
    }
}

/// The phases' names, in order: the copy phases ([`CopyPhase`]), then the derived ones
/// ([`DerivedPhase`]).
pub const PHASES: [&str; 5] = [
    CopyPhase::ALL[0].name(),
    CopyPhase::ALL[1].name(),
    DerivedPhase::ALL[0].name(),
    DerivedPhase::ALL[1].name(),
    DerivedPhase::ALL[2].name(),
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
    /// Phase 1 finished one application (its spine rows in every spine class).
    fn application_forked(&mut self, _phase: &str, _application: &ApplicationDone) {}
    /// Called after each phase and in the middle of phase 2; an error aborts the run (used by
    /// the test-only failpoint).
    fn checkpoint(&mut self, point: &str) -> anyhow::Result<()>;
}

/// One application of phase 1, done: `index` of `total` (1-based), by its code.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationDone {
    pub application: String,
    pub application_id: Uuid,
    pub index: usize,
    pub total: usize,
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
    /// The target's transaction: every write, and every read of the target and vocabulary.
    db: &'a C,
    /// Where the source's rows are read: `db` itself, or a transaction of the source's database
    /// when the target is placed in another one ([`Engine::with_source`]).
    source_db: &'a C,
    registry: &'a Registry,
    source: Uuid,
    target: Uuid,
    dry_run: bool,
    /// Ids present in the target after each copied class was processed (by table).
    present: HashMap<String, HashSet<Uuid>>,
    /// Vocabulary ids whose rows must stay out of the fork (`forkable = false`), by table.
    unforkable: HashMap<String, HashSet<Uuid>>,
    /// A dry run's rows to create, for the tables the derived phases read ([`DerivedPhase::reads`]):
    /// they plan from the target as it would be.
    planned: HashMap<String, Vec<Row>>,
    outcome: ForkOutcome,
    options: RunOptions,
    /// The lineage of the target's copies of the class being copied, by copy id.
    lineage: HashMap<Uuid, Lineage>,
    /// An upgrade's copies removed because the template removed their source, by table.
    retired: HashMap<String, u64>,
    /// An upgrade that need not restore deleted rows reads only what changed
    /// ([`Engine::changed_sources`]): the version at which each template row last changed, by
    /// table, loaded on first use.
    row_versions: Option<HashMap<String, HashMap<Uuid, i32>>>,
}

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
            source_db: db,
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
            row_versions: None,
        }
    }

    /// Reads the source's rows through `source_db` (the source's database) while writing the
    /// target through the engine's own transaction (a placed tenant's database, issue #19).
    pub fn with_source(mut self, source_db: &'a C) -> Self {
        self.source_db = source_db;
        self
    }

    /// Sets what the run does beyond copying missing rows.
    pub fn with_options(mut self, options: RunOptions) -> Self {
        self.options = options;
        self
    }

    fn upgrade_scope(&self) -> upgrade::Scope<'a, C> {
        upgrade::Scope {
            db: self.db,
            source_db: self.source_db,
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
        for copy in CopyPhase::ALL {
            let (phase, fork) = (copy.name(), copy.classes());
            progress.phase_started(phase);
            if copy == CopyPhase::ApplicationSpine
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
            if copy == CopyPhase::ApplicationSpine {
                self.copy_spine(&classes, phase, progress).await?;
                progress.phase_finished(phase);
                progress.checkpoint(&format!("after_phase:{}", copy.number()))?;
                continue;
            }
            let half = classes.len() / 2;
            for (i, class) in classes.iter().enumerate() {
                if copy == CopyPhase::TenantWide && i == half {
                    progress.checkpoint("mid_phase:2")?;
                }
                self.copy_class(class, phase, progress).await?;
            }
            progress.phase_finished(phase);
            progress.checkpoint(&format!("after_phase:{}", copy.number()))?;
        }
        for (n, phase) in DerivedPhase::ALL.into_iter().enumerate() {
            progress.phase_started(phase.name());
            self.derive(phase, progress).await?;
            progress.phase_finished(phase.name());
            progress.checkpoint(&format!("after_phase:{}", CopyPhase::ALL.len() + n + 1))?;
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
            if DerivedPhase::reads(&class.table) {
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
}

/// Splits the rows of a self-referencing class into levels: roots first, then their children…
/// A row whose parent is `in_place` (already copied) is a root here. Rows whose parent is
/// neither among the rows nor in place end up in the last level (and will be reported as
/// unresolved).
pub(crate) fn tree_levels(
    class: &RowClass,
    rows: Vec<Row>,
    in_place: impl Fn(Uuid) -> bool,
) -> Vec<Vec<Row>> {
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
                Some(parent) => placed.contains(&parent) || in_place(parent),
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
        let levels = tree_levels(tree, rows.clone(), |_| false);
        assert_eq!(ids(&levels), vec![vec![1, 5], vec![2, 3], vec![4], vec![7]]);
        // With 6 already copied, 7 is a root too.
        let levels = tree_levels(tree, rows, |parent| parent == Uuid::from_u128(6));
        assert_eq!(ids(&levels), vec![vec![1, 5, 7], vec![2, 3], vec![4]]);
    }

    #[test]
    fn tree_levels_of_roots_only_are_one_level() {
        let registry = Registry::default();
        let tree = registry.by_table("navigation_items").expect("navigation");
        let levels = tree_levels(tree, vec![node(1, None), node(2, None)], |_| false);
        assert_eq!(ids(&levels), vec![vec![1, 2]]);
        assert!(tree_levels(tree, Vec::new(), |_| false).is_empty());
    }
}
