//! The three-way diff of a tenant against its template (issue #18): base (the template's
//! content when the tenant's copy was made or last upgraded, from [`super::lineage`]) against
//! the template now, and against the tenant now.
//!
//! Per field: changed in the template when the template differs from the base; changed by the
//! tenant when the tenant differs from the base; a conflict when both changed it to different
//! values (both changing it to the same value is no conflict). Per row: added in the template
//! (no copy and no lineage), removed from the template (lineage whose source is gone), deleted
//! by the tenant (lineage whose copy is gone: a tombstone).

use std::collections::HashMap;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, TransactionTrait,
    sea_query::{Alias, Expr, ExprTrait, Order, Query},
};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    fork::{
        engine::target_id,
        lineage::{self, Content, content, remapped_content},
    },
    registry::{Registry, RowClass},
    rows::Row,
};

/// One field that changed on one side: `from` (the base) → `to`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FieldChange {
    pub field: String,
    pub from: serde_json::Value,
    pub to: serde_json::Value,
}

/// One field both sides changed, to different values.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FieldConflict {
    pub field: String,
    pub base: serde_json::Value,
    pub template: serde_json::Value,
    pub tenant: serde_json::Value,
}

/// The three-way merge of one row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Merge {
    /// Fields the template changed (base → template).
    pub template_changes: Vec<FieldChange>,
    /// Fields the tenant changed (base → tenant).
    pub tenant_changes: Vec<FieldChange>,
    /// Fields both changed, differently.
    pub conflicts: Vec<FieldConflict>,
    /// Template changes to fields the tenant left alone: what an upgrade writes.
    pub apply: Vec<(String, serde_json::Value)>,
}

/// Merges one row: `base`, the `template`'s content (remapped) and the `tenant`'s.
pub fn merge(base: &Content, template: &Content, tenant: &Content) -> Merge {
    let mut out = Merge::default();
    for (field, now) in template {
        // A field the base does not know (a column added since) counts as unchanged.
        let base_value = base.get(field).unwrap_or(now);
        let mine = tenant.get(field).unwrap_or(base_value);
        let template_changed = now != base_value;
        let tenant_changed = mine != base_value;
        if template_changed {
            out.template_changes.push(FieldChange {
                field: field.clone(),
                from: base_value.clone(),
                to: now.clone(),
            });
        }
        if tenant_changed {
            out.tenant_changes.push(FieldChange {
                field: field.clone(),
                from: base_value.clone(),
                to: mine.clone(),
            });
        }
        match (template_changed, tenant_changed) {
            (true, false) => out.apply.push((field.clone(), now.clone())),
            (true, true) if mine != now => out.conflicts.push(FieldConflict {
                field: field.clone(),
                base: base_value.clone(),
                template: now.clone(),
                tenant: mine.clone(),
            }),
            _ => {}
        }
    }
    out
}

/// A row named in a diff: the tenant's copy and the template row it comes from.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RowRef {
    pub row_id: Uuid,
    pub source_id: Uuid,
}

/// A row with field changes on one side.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RowChange {
    pub row_id: Uuid,
    pub source_id: Uuid,
    pub fields: Vec<FieldChange>,
}

/// A row with conflicting fields.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RowConflict {
    pub row_id: Uuid,
    pub source_id: Uuid,
    pub fields: Vec<FieldConflict>,
}

/// A row the template removed: whether the tenant changed its copy since.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RemovedRow {
    pub row_id: Uuid,
    pub source_id: Uuid,
    pub changed_by_tenant: bool,
}

/// The diff of one class.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClassDiff {
    pub class_name: String,
    pub added_in_template: Vec<RowRef>,
    pub changed_in_template: Vec<RowChange>,
    pub removed_from_template: Vec<RemovedRow>,
    pub changed_by_tenant: Vec<RowChange>,
    pub deleted_by_tenant: Vec<RowRef>,
    pub conflicts: Vec<RowConflict>,
}

impl ClassDiff {
    /// True when nothing differs.
    pub fn is_empty(&self) -> bool {
        self.added_in_template.is_empty()
            && self.changed_in_template.is_empty()
            && self.removed_from_template.is_empty()
            && self.changed_by_tenant.is_empty()
            && self.deleted_by_tenant.is_empty()
            && self.conflicts.is_empty()
    }
}

/// The diff of a tenant against its template.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateDiff {
    pub tenant_id: Uuid,
    pub template_id: Uuid,
    /// The template's latest version.
    pub template_version: i32,
    /// The version the tenant was forked from or last upgraded to.
    pub tenant_version: Option<i32>,
    /// Classes with any difference, in fork order.
    pub classes: Vec<ClassDiff>,
}

fn col(name: &str) -> Expr {
    Expr::col(Alias::new(name))
}

/// Every row of `class` owned by `tenant`, by id.
pub async fn rows_by_id(
    db: &impl ConnectionTrait,
    class: &RowClass,
    tenant: Uuid,
) -> anyhow::Result<HashMap<Uuid, Row>> {
    let mut select = Query::select();
    select
        .columns(class.columns.iter().map(|c| Alias::new(&c.name)))
        .from(Alias::new(&class.table))
        .and_where(col("tenant_id").eq(tenant))
        .order_by(Alias::new("id"), Order::Asc);
    db.query_all(&select)
        .await?
        .iter()
        .map(|r| Row::read(r, class).map(|row| (row.id(), row)))
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// The diff of one class of `tenant` (its rows and lineage read from `tenant_db`) against
/// `template` (read from `db`).
pub async fn class_diff<C: ConnectionTrait>(
    db: &C,
    tenant_db: &C,
    registry: &Registry,
    template: Uuid,
    tenant: Uuid,
    class: &RowClass,
) -> anyhow::Result<ClassDiff> {
    let source = rows_by_id(db, class, template).await?;
    let mine = rows_by_id(tenant_db, class, tenant).await?;
    let lineage = lineage::load(tenant_db, tenant, &class.table).await?;
    let mut out = ClassDiff {
        class_name: class.name.to_string(),
        ..ClassDiff::default()
    };
    let mut sources: Vec<&Row> = source.values().collect();
    sources.sort_by_key(|r| r.id());
    for row in sources {
        let copy = target_id(tenant, row.id());
        let reference = RowRef {
            row_id: copy,
            source_id: row.id(),
        };
        let now = remapped_content(registry, class, row, tenant);
        let base = match (lineage.get(&copy), mine.get(&copy)) {
            (Some(_), None) => {
                out.deleted_by_tenant.push(reference);
                continue;
            }
            (None, None) => {
                out.added_in_template.push(reference);
                continue;
            }
            (Some(l), Some(_)) => l.base.clone(),
            // A copy made before lineage existed: its base is taken to be the template now.
            (None, Some(_)) => now.clone(),
        };
        let current = content(class, &mine[&copy]);
        let merged = merge(&base, &now, &current);
        if !merged.template_changes.is_empty() {
            out.changed_in_template.push(RowChange {
                row_id: copy,
                source_id: row.id(),
                fields: merged.template_changes,
            });
        }
        if !merged.tenant_changes.is_empty() {
            out.changed_by_tenant.push(RowChange {
                row_id: copy,
                source_id: row.id(),
                fields: merged.tenant_changes,
            });
        }
        if !merged.conflicts.is_empty() {
            out.conflicts.push(RowConflict {
                row_id: copy,
                source_id: row.id(),
                fields: merged.conflicts,
            });
        }
    }
    let mut retired: Vec<_> = lineage
        .values()
        .filter(|l| !source.contains_key(&l.source_id))
        .collect();
    retired.sort_by_key(|l| l.id);
    for l in retired {
        if let Some(row) = mine.get(&l.id) {
            out.removed_from_template.push(RemovedRow {
                row_id: l.id,
                source_id: l.source_id,
                changed_by_tenant: content(class, row) != l.base,
            });
        }
    }
    Ok(out)
}

/// The diff of `tenant` against `template`, read in one read-only transaction of the system
/// pool (it reads two tenants, as a fork does), and one of `placed`, the tenant's own database
/// when it is placed in a named one ([`crate::placement`]).
pub async fn diff(
    db: &DatabaseConnection,
    placed: Option<&DatabaseConnection>,
    registry: &Registry,
    template: Uuid,
    tenant: Uuid,
) -> anyhow::Result<TemplateDiff> {
    let read_only = async |pool: &DatabaseConnection| -> anyhow::Result<_> {
        let tx = pool.begin().await?;
        if tx.get_database_backend() == DbBackend::Postgres {
            tx.execute_unprepared("SET TRANSACTION READ ONLY").await?;
        }
        Ok(tx)
    };
    let tx = read_only(db).await?;
    let placed_tx = match placed {
        Some(pool) => {
            let tx = read_only(pool).await?;
            crate::access::name_tenant_in(&tx, tenant).await?;
            Some(tx)
        }
        None => None,
    };
    let tenant_tx = placed_tx.as_ref().unwrap_or(&tx);
    let mut out = TemplateDiff {
        tenant_id: tenant,
        template_id: template,
        template_version: super::versions::latest(&tx, template).await?,
        tenant_version: super::versions::of_tenant(&tx, tenant).await?,
        classes: Vec::new(),
    };
    for class in registry.copied_classes() {
        let class_diff = class_diff(&tx, tenant_tx, registry, template, tenant, class).await?;
        if !class_diff.is_empty() {
            out.classes.push(class_diff);
        }
    }
    if let Some(placed) = placed_tx {
        placed.commit().await?;
    }
    tx.commit().await?;
    Ok(out)
}
