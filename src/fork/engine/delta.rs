//! An upgrade's delta: the template rows an upgrade must look at, so that its cost follows the
//! rows that changed rather than the template's size.
//!
//! Every copy's lineage records the template version of its base, and the template keeps the
//! version at which each of its rows last changed (`template_row_states`, written by
//! [`crate::fork::versions::record`] before every run). A template row needs the upgrade's
//! attention only when its copy has no lineage (the template added it, or an earlier run could
//! not copy it) or when it changed after the copy's base. Every other row is left alone: its
//! copy is already as the template has it, or the tenant's own, or deleted by the tenant.
//!
//! An upgrade that restores deleted rows reads everything, as a fork does: a tombstone is found
//! only by looking at every copy.

use std::collections::HashSet;

use sea_orm::{
    ConnectionTrait,
    sea_query::{Alias, ExprTrait, Order, Query},
};
use uuid::Uuid;

use super::{Engine, col, target_id};
use crate::{
    fork::{lineage, versions},
    registry::RowClass,
    rows::Row,
};

impl<C: ConnectionTrait> Engine<'_, C> {
    /// True when the run reads only the template rows that changed since each copy's base: an
    /// upgrade that does not restore deleted rows.
    pub(super) fn reads_delta(&self) -> bool {
        self.options.upgrade.is_some() && !self.options.restore_deleted
    }

    /// The source rows of `class` the upgrade must look at, in id order: those whose copy has
    /// no lineage in the target, and those the template changed after their copy's base.
    pub(super) async fn changed_sources(&mut self, class: &RowClass) -> anyhow::Result<Vec<Uuid>> {
        if self.row_versions.is_none() {
            self.row_versions = Some(versions::row_versions(self.source_db, self.source).await?);
        }
        let links = lineage::links(self.db, self.target, &class.table).await?;
        let Some(versions) = self
            .row_versions
            .as_ref()
            .and_then(|by_table| by_table.get(&class.table))
        else {
            return Ok(Vec::new());
        };
        let mut out: Vec<Uuid> = versions
            .iter()
            .filter(|&(id, &changed_at)| {
                links
                    .get(&target_id(self.target, *id))
                    .is_none_or(|link| link.base_version.is_none_or(|base| changed_at > base))
            })
            .map(|(id, _)| *id)
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    /// The source rows of `class` among `ids`, in id order.
    pub(super) async fn source_among(
        &self,
        class: &RowClass,
        ids: &[Uuid],
    ) -> anyhow::Result<Vec<Row>> {
        let mut select = Query::select();
        select
            .columns(class.columns.iter().map(|c| Alias::new(&c.name)))
            .from(Alias::new(&class.table))
            .and_where(col("tenant_id").eq(self.source))
            .and_where(col("id").is_in(ids.iter().copied()))
            .order_by(Alias::new("id"), Order::Asc);
        self.source_rows(class, &select).await
    }

    /// Ids of every row of `class` the target has.
    pub(super) async fn target_ids(&self, class: &RowClass) -> anyhow::Result<HashSet<Uuid>> {
        let mut select = Query::select();
        select
            .column(Alias::new("id"))
            .from(Alias::new(&class.table))
            .and_where(col("tenant_id").eq(self.target));
        self.target_id_set(&select).await
    }
}
