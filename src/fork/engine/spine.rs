//! Copying a class, whole or in parts: phase 1 forks the spine application by application
//! ([`Engine::copy_spine`]), so a run reports "3 of 4 applications" as it goes.

use std::collections::HashMap;

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::{ApplicationDone, ClassCount, Engine, Progress, target_id, tree_levels};
use crate::{
    fork::{
        lineage::{self, Lineage},
        upgrade,
    },
    registry::RowClass,
    rows::Row,
};

/// A class being copied in parts (phase 1, application by application).
struct ClassCopy {
    count: ClassCount,
    fresh: bool,
    lineage: HashMap<Uuid, Lineage>,
    /// An upgrade's delta ([`Engine::changed_sources`]): the only source rows to read.
    among: Option<Vec<Uuid>>,
}

/// Which source rows of a class a copy reads.
#[derive(Clone, Copy)]
enum Selection<'s> {
    /// Every row of the class.
    All,
    /// The rows whose column holds the id (one application's).
    Application(&'s str, Uuid),
    /// The rows with these ids.
    Among(&'s [Uuid]),
}

impl<C: ConnectionTrait> Engine<'_, C> {
    pub(super) async fn copy_class(
        &mut self,
        class: &RowClass,
        phase: &str,
        progress: &mut dyn Progress,
    ) -> anyhow::Result<()> {
        let mut part = self.start_class(class, phase).await?;
        self.lineage = std::mem::take(&mut part.lineage);
        let selection = part
            .among
            .as_deref()
            .map_or(Selection::All, Selection::Among);
        self.copy_part(
            class,
            selection,
            part.fresh,
            &mut part.count,
            progress,
            phase,
        )
        .await?;
        self.finish_class(class, part.count, phase, progress).await
    }

    /// Phase 1, application by application: every spine class's rows of the first application,
    /// then of the next, so a run can report "3 of 4 applications". Each class is still counted
    /// once (its `ROWS_COPIED` comes when every application is done). Falls back to class by
    /// class when a spine class does not name its application, and for an upgrade that reads
    /// only what changed (an upgrade reports classes, not applications).
    pub(super) async fn copy_spine(
        &mut self,
        classes: &[RowClass],
        phase: &str,
        progress: &mut dyn Progress,
    ) -> anyhow::Result<()> {
        let by_application = classes.iter().all(|c| {
            c.table == "applications" || c.columns.iter().any(|col| col.name == "application_id")
        });
        let applications = if by_application && !self.reads_delta() {
            self.source_applications().await?
        } else {
            Vec::new()
        };
        if applications.is_empty() {
            for class in classes {
                self.copy_class(class, phase, progress).await?;
            }
            return Ok(());
        }
        let mut parts = Vec::with_capacity(classes.len());
        for class in classes {
            parts.push(self.start_class(class, phase).await?);
        }
        let total = applications.len();
        for (i, (id, code)) in applications.into_iter().enumerate() {
            for (class, part) in classes.iter().zip(parts.iter_mut()) {
                let column = if class.table == "applications" {
                    "id"
                } else {
                    "application_id"
                };
                std::mem::swap(&mut self.lineage, &mut part.lineage);
                let copied = self
                    .copy_part(
                        class,
                        Selection::Application(column, id),
                        part.fresh,
                        &mut part.count,
                        progress,
                        phase,
                    )
                    .await;
                std::mem::swap(&mut self.lineage, &mut part.lineage);
                copied?;
            }
            progress.application_forked(
                phase,
                &ApplicationDone {
                    application: code,
                    application_id: id,
                    index: i + 1,
                    total,
                },
            );
            // Stores the events so far (PostgreSQL): followers on other replicas see it too.
            progress.checkpoint(&format!("after_application:{}", i + 1))?;
        }
        for (class, part) in classes.iter().zip(parts) {
            self.lineage = part.lineage;
            self.finish_class(class, part.count, phase, progress)
                .await?;
        }
        Ok(())
    }

    /// Before a class is copied: its count, whether the target has none of its rows yet, and
    /// the lineage of the target's copies (for an upgrade that reads only what changed: of the
    /// copies of the changed rows, and every row of the class the target has is known present).
    async fn start_class(&mut self, class: &RowClass, phase: &str) -> anyhow::Result<ClassCopy> {
        let mut count = ClassCount {
            class_name: class.name.to_string(),
            phase: phase.to_string(),
            ..ClassCount::default()
        };
        self.present.entry(class.table.clone()).or_default();
        let (lineage, among) = if self.reads_delta() {
            let among = self.changed_sources(class).await?;
            let copies: Vec<Uuid> = among.iter().map(|s| target_id(self.target, *s)).collect();
            let lineage = lineage::load_among(self.db, self.target, &class.table, &copies).await?;
            let ids = self.target_ids(class).await?;
            self.present
                .entry(class.table.clone())
                .or_default()
                .extend(ids);
            (lineage, Some(among))
        } else {
            (
                lineage::load(self.db, self.target, &class.table).await?,
                None,
            )
        };
        count.removed = self.retired.get(&class.table).copied().unwrap_or(0);
        // A first fork finds the class empty in the target: no batch can match an existing row,
        // so the per-batch lookup of existing ids is skipped.
        let fresh = !self.target_has_rows(class).await?;
        Ok(ClassCopy {
            count,
            fresh,
            lineage,
            among,
        })
    }

    /// Copies the `selection` of the source rows of `class`.
    async fn copy_part(
        &mut self,
        class: &RowClass,
        selection: Selection<'_>,
        fresh: bool,
        count: &mut ClassCount,
        progress: &mut dyn Progress,
        phase: &str,
    ) -> anyhow::Result<()> {
        let self_ref = class.references.iter().any(|r| r.table == class.table);
        let batch = Self::batch_rows(class);
        let mut all = Vec::new();
        let mut after = None;
        let mut chunks = match selection {
            Selection::Among(ids) => ids.chunks(batch),
            _ => [].chunks(batch),
        };
        loop {
            let (rows, done) = match selection {
                Selection::Among(_) => match chunks.next() {
                    Some(chunk) => (self.source_among(class, chunk).await?, false),
                    None => (Vec::new(), true),
                },
                Selection::All | Selection::Application(..) => {
                    let only = match selection {
                        Selection::Application(column, id) => Some((column, id)),
                        _ => None,
                    };
                    let rows = self.source_batch(class, only, after, batch).await?;
                    after = rows.last().map(Row::id);
                    let done = rows.len() < batch;
                    (rows, done)
                }
            };
            if self_ref {
                // Trees: read the whole selection, then copy level by level (parents first).
                all.extend(rows);
            } else if !rows.is_empty() {
                self.copy_rows(class, rows, fresh, count, progress, phase)
                    .await?;
            }
            if done {
                break;
            }
        }
        if self_ref {
            let target = self.target;
            let present = self.present.get(&class.table);
            // A parent the target already has counts as placed.
            let levels = tree_levels(class, all, |parent| {
                present.is_some_and(|ids| ids.contains(&target_id(target, parent)))
            });
            for level in levels {
                for chunk in level.chunks(batch) {
                    self.copy_rows(class, chunk.to_vec(), fresh, count, progress, phase)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// After a class is copied (`self.lineage` is its lineage): an upgrade's changes, then its
    /// count.
    async fn finish_class(
        &mut self,
        class: &RowClass,
        mut count: ClassCount,
        phase: &str,
        progress: &mut dyn Progress,
    ) -> anyhow::Result<()> {
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
}
