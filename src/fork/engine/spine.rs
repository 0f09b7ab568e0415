//! Copying a class, whole or in parts: phase 1 forks the spine application by application
//! ([`Engine::copy_spine`]), so a run reports "3 of 4 applications" as it goes.

use std::collections::HashMap;

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::{ApplicationDone, ClassCount, Engine, Progress, tree_levels};
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
        self.copy_part(class, None, part.fresh, &mut part.count, progress, phase)
            .await?;
        self.finish_class(class, part.count, phase, progress).await
    }

    /// Phase 1, application by application: every spine class's rows of the first application,
    /// then of the next, so a run can report "3 of 4 applications". Each class is still counted
    /// once (its `ROWS_COPIED` comes when every application is done). Falls back to class by
    /// class when a spine class does not name its application.
    pub(super) async fn copy_spine(
        &mut self,
        classes: &[RowClass],
        phase: &str,
        progress: &mut dyn Progress,
    ) -> anyhow::Result<()> {
        let by_application = classes.iter().all(|c| {
            c.table == "applications" || c.columns.iter().any(|col| col.name == "application_id")
        });
        let applications = if by_application {
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
                        Some((column, id)),
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
    /// the lineage of the target's copies.
    async fn start_class(&mut self, class: &RowClass, phase: &str) -> anyhow::Result<ClassCopy> {
        let mut count = ClassCount {
            class_name: class.name.to_string(),
            phase: phase.to_string(),
            ..ClassCount::default()
        };
        self.present.entry(class.table.clone()).or_default();
        let lineage = lineage::load(self.db, self.target, &class.table).await?;
        count.removed = self.retired.get(&class.table).copied().unwrap_or(0);
        // A first fork finds the class empty in the target: no batch can match an existing row,
        // so the per-batch lookup of existing ids is skipped.
        let fresh = !self.target_has_rows(class).await?;
        Ok(ClassCopy {
            count,
            fresh,
            lineage,
        })
    }

    /// Copies the source rows of `class` (those whose `only` column holds the id, when given).
    async fn copy_part(
        &mut self,
        class: &RowClass,
        only: Option<(&str, Uuid)>,
        fresh: bool,
        count: &mut ClassCount,
        progress: &mut dyn Progress,
        phase: &str,
    ) -> anyhow::Result<()> {
        let self_ref = class.references.iter().any(|r| r.table == class.table);
        let batch = Self::batch_rows(class);
        if self_ref {
            // Trees: read the whole class, then copy level by level so parents come first.
            let mut all = Vec::new();
            let mut after = None;
            loop {
                let rows = self.source_batch(class, only, after, batch).await?;
                let done = rows.len() < batch;
                after = rows.last().map(Row::id);
                all.extend(rows);
                if done {
                    break;
                }
            }
            for level in tree_levels(class, all) {
                for chunk in level.chunks(batch) {
                    self.copy_rows(class, chunk.to_vec(), fresh, count, progress, phase)
                        .await?;
                }
            }
        } else {
            let mut after = None;
            loop {
                let rows = self.source_batch(class, only, after, batch).await?;
                let done = rows.len() < batch;
                after = rows.last().map(Row::id);
                self.copy_rows(class, rows, fresh, count, progress, phase)
                    .await?;
                if done {
                    break;
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
