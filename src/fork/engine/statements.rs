//! The statements the copy issues, batched under both databases' limits: a page of the source,
//! which copies the target already has, inserting copies, and storing their lineage.

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ConnectionTrait,
    sea_query::{Alias, Expr, ExprTrait, OnConflict, Order, Query},
};
use uuid::Uuid;

use super::{Engine, MAX_BATCH_ROWS, MAX_BIND_PARAMS, col};
use crate::{
    fork::lineage::{self, Lineage},
    registry::RowClass,
    rows::Row,
};

impl<C: ConnectionTrait> Engine<'_, C> {
    /// Reads source rows of `class` with ids after `after`, in id order.
    /// With `only`, just the rows whose column holds the id (one application's).
    pub(super) async fn source_batch(
        &self,
        class: &RowClass,
        only: Option<(&str, Uuid)>,
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
        if let Some((column, id)) = only {
            select.and_where(col(column).eq(id));
        }
        self.source_rows(class, &select).await
    }

    /// The source rows `select` reads, as rows of `class`.
    pub(super) async fn source_rows(
        &self,
        class: &RowClass,
        select: &sea_orm::sea_query::SelectStatement,
    ) -> anyhow::Result<Vec<Row>> {
        Ok(Row::query_all(self.source_db, select, class).await?)
    }

    /// The source's applications (id and code), in id order: phase 1's units of progress.
    pub(super) async fn source_applications(&self) -> anyhow::Result<Vec<(Uuid, String)>> {
        let mut select = Query::select();
        select
            .columns([Alias::new("id"), Alias::new("code")])
            .from(Alias::new("applications"))
            .and_where(col("tenant_id").eq(self.source))
            .order_by(Alias::new("id"), Order::Asc);
        Ok(self
            .source_db
            .query_all(&select)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<Uuid>("", "id")?,
                    r.try_get::<String>("", "code")?,
                ))
            })
            .collect::<Result<Vec<_>, sea_orm::DbErr>>()?)
    }

    pub(super) fn batch_rows(class: &RowClass) -> usize {
        (MAX_BIND_PARAMS / class.columns.len().max(1)).clamp(1, MAX_BATCH_ROWS)
    }

    /// Whether the target has any row of `class` yet.
    pub(super) async fn target_has_rows(&self, class: &RowClass) -> anyhow::Result<bool> {
        let mut select = Query::select();
        select
            .column(Alias::new("id"))
            .from(Alias::new(&class.table))
            .and_where(col("tenant_id").eq(self.target))
            .limit(1);
        Ok(self.db.query_one(&select).await?.is_some())
    }

    pub(super) async fn existing_ids(
        &self,
        class: &RowClass,
        ids: &[Uuid],
    ) -> anyhow::Result<HashSet<Uuid>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let mut select = Query::select();
        select
            .column(Alias::new("id"))
            .from(Alias::new(&class.table))
            .and_where(col("tenant_id").eq(self.target))
            .and_where(col("id").is_in(ids.iter().copied()));
        self.target_id_set(&select).await
    }

    /// The ids `select` (of the target's `id` column) reads.
    pub(super) async fn target_id_set(
        &self,
        select: &sea_orm::sea_query::SelectStatement,
    ) -> anyhow::Result<HashSet<Uuid>> {
        Ok(self
            .db
            .query_all(select)
            .await?
            .iter()
            .map(|r| r.try_get::<Uuid>("", "id"))
            .collect::<Result<HashSet<_>, _>>()?)
    }

    pub(super) async fn insert_rows(&self, class: &RowClass, rows: &[Row]) -> anyhow::Result<u64> {
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

    /// The lineage of the copy `mapped` (a remapped row of `sources`).
    pub(super) fn lineage_entry(
        &self,
        class: &RowClass,
        mapped: &Row,
        sources: &HashMap<Uuid, Uuid>,
    ) -> lineage::Entry {
        lineage::Entry {
            id: mapped.id(),
            source_id: sources.get(&mapped.id()).copied().unwrap_or_default(),
            base: lineage::content(class, mapped),
            version: self.options.version,
        }
    }

    pub(super) async fn store_lineage(
        &mut self,
        class: &RowClass,
        entries: &[lineage::Entry],
    ) -> anyhow::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        lineage::store(self.db, self.target, self.source, &class.table, entries).await?;
        for entry in entries {
            self.lineage.insert(
                entry.id,
                Lineage {
                    id: entry.id,
                    source_id: entry.source_id,
                    base: entry.base.clone(),
                    base_version: entry.version,
                },
            );
        }
        Ok(())
    }
}
