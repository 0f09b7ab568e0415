//! Template versions (issue #18): a numbered version per change set of the template, with a
//! summary of the rows added, changed and removed per class.
//!
//! [`record`] compares the template's rows with their fingerprints as of the latest version
//! (`template_row_states`). When anything differs it writes the next version with its summary
//! and the new fingerprints; otherwise it writes nothing. Sheets imports call it inside their
//! transaction, template edits through the API after each mutation, and forks and upgrades from
//! the template before their transaction (so edits made any other way are caught too, with the
//! origin `detected`). On PostgreSQL it takes the template's transaction-scoped advisory lock,
//! so two recorders never pick the same number.

use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, Statement, TransactionOptions, TransactionTrait,
    sea_query::{Alias, Expr, ExprTrait, OnConflict, Query},
};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    fork::lineage::{content, fingerprint},
    registry::Registry,
    rows::Row,
};

/// Where a version came from.
pub mod origin {
    /// A sheets import.
    pub const SHEETS: &str = "sheets";
    /// A mutation of the generic API on the template.
    pub const API: &str = "api";
    /// Found by a fork or an upgrade: the template changed by some other way.
    pub const DETECTED: &str = "detected";
}

/// What one version changed in one class.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ClassChanges {
    pub class_name: String,
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
}

/// A version just recorded.
#[derive(Clone, Debug, Serialize)]
pub struct Recorded {
    pub number: i32,
    pub summary: Vec<ClassChanges>,
}

fn col(name: &str) -> Expr {
    Expr::col(Alias::new(name))
}

/// The transaction-scoped advisory lock key of a tenant (the fork's key: first 8 bytes).
pub fn advisory_key(tenant: Uuid) -> i64 {
    let b = tenant.as_bytes();
    i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// The latest version number of `template` (0 when it has none).
pub async fn latest(db: &impl ConnectionTrait, template: Uuid) -> anyhow::Result<i32> {
    use entity::template_versions as v;
    Ok(v::Entity::find()
        .filter(v::Column::TenantId.eq(template))
        .order_by_desc(v::Column::Number)
        .one(db)
        .await?
        .map_or(0, |m| m.number))
}

/// Every version of `template`, newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    template: Uuid,
) -> anyhow::Result<Vec<entity::template_versions::Model>> {
    use entity::template_versions as v;
    Ok(v::Entity::find()
        .filter(v::Column::TenantId.eq(template))
        .order_by_desc(v::Column::Number)
        .all(db)
        .await?)
}

/// The template version `tenant` was forked from or last upgraded to: that of its latest
/// finished run that set one.
pub async fn of_tenant(db: &impl ConnectionTrait, tenant: Uuid) -> anyhow::Result<Option<i32>> {
    use entity::fork_runs as r;
    Ok(r::Entity::find()
        .filter(r::Column::TenantId.eq(tenant))
        .filter(r::Column::Status.eq(crate::fork::runs::status::FINISHED))
        .filter(r::Column::TemplateVersion.is_not_null())
        .order_by_desc(r::Column::FinishedAt)
        .one(db)
        .await?
        .and_then(|m| m.template_version))
}

/// Records a version of `template` in its own transaction (see [`record`]).
pub async fn record_now(
    db: &DatabaseConnection,
    registry: &Registry,
    template: Uuid,
    origin: &str,
    actor: &str,
) -> anyhow::Result<Option<Recorded>> {
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    let tx = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: (!postgres)
                .then_some(sea_orm::SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?;
    let recorded = record(&tx, registry, template, origin, actor).await?;
    tx.commit().await?;
    Ok(recorded)
}

/// Inside a transaction: writes the next version of `template` when its rows differ from the
/// latest version's, and returns it; `None` when nothing changed.
pub async fn record(
    db: &impl ConnectionTrait,
    registry: &Registry,
    template: Uuid,
    origin: &str,
    actor: &str,
) -> anyhow::Result<Option<Recorded>> {
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [advisory_key(template).wrapping_add(1).into()],
        ))
        .await?;
    }
    let mut known: HashMap<Uuid, (String, String)> = HashMap::new();
    let mut select = Query::select();
    select
        .columns(["id", "table_name", "fingerprint"].map(Alias::new))
        .from(Alias::new("template_row_states"))
        .and_where(col("tenant_id").eq(template));
    for row in db.query_all(&select).await? {
        known.insert(
            row.try_get("", "id")?,
            (
                row.try_get("", "table_name")?,
                row.try_get("", "fingerprint")?,
            ),
        );
    }
    let mut summary = Vec::new();
    let mut upserts: Vec<(Uuid, String, String)> = Vec::new();
    for class in registry.copied_classes() {
        let mut changes = ClassChanges {
            class_name: class.name.to_string(),
            ..ClassChanges::default()
        };
        let mut select = Query::select();
        select
            .columns(class.columns.iter().map(|c| Alias::new(&c.name)))
            .from(Alias::new(&class.table))
            .and_where(col("tenant_id").eq(template));
        for result in db.query_all(&select).await? {
            let row = Row::read(&result, class)?;
            let print = fingerprint(&content(class, &row));
            match known.remove(&row.id()) {
                None => {
                    changes.added += 1;
                    upserts.push((row.id(), class.table.clone(), print));
                }
                Some((_, old)) if old != print => {
                    changes.changed += 1;
                    upserts.push((row.id(), class.table.clone(), print));
                }
                Some(_) => {}
            }
        }
        summary.push(changes);
    }
    // What is left of the known rows is gone from the template.
    let removed: Vec<Uuid> = known.keys().copied().collect();
    for (_, (table, _)) in known {
        if let Some(class) = registry.by_table(&table)
            && let Some(changes) = summary.iter_mut().find(|c| c.class_name == class.name)
        {
            changes.removed += 1;
        }
    }
    if upserts.is_empty() && removed.is_empty() {
        return Ok(None);
    }
    summary.retain(|c| c.added + c.changed + c.removed > 0);
    let number = latest(db, template).await? + 1;
    let now = chrono::Utc::now();
    for chunk in upserts.chunks(1_000) {
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new("template_row_states"))
            .columns(
                [
                    "id",
                    "tenant_id",
                    "table_name",
                    "fingerprint",
                    "version",
                    "created_at",
                    "updated_at",
                ]
                .map(Alias::new),
            )
            .on_conflict(
                OnConflict::columns([Alias::new("tenant_id"), Alias::new("id")])
                    .update_columns(["fingerprint", "version", "updated_at"].map(Alias::new))
                    .to_owned(),
            );
        for (id, table, print) in chunk {
            insert.values([
                (*id).into(),
                template.into(),
                table.clone().into(),
                print.clone().into(),
                number.into(),
                now.into(),
                now.into(),
            ])?;
        }
        db.execute(&insert).await?;
    }
    for chunk in removed.chunks(1_000) {
        let mut delete = Query::delete();
        delete
            .from_table(Alias::new("template_row_states"))
            .and_where(col("tenant_id").eq(template))
            .and_where(col("id").is_in(chunk.iter().copied()));
        db.execute(&delete).await?;
    }
    let mut insert = Query::insert();
    insert
        .into_table(Alias::new("template_versions"))
        .columns(
            [
                "id",
                "tenant_id",
                "number",
                "origin",
                "actor",
                "summary",
                "created_at",
                "updated_at",
            ]
            .map(Alias::new),
        )
        .values([
            Uuid::now_v7().into(),
            template.into(),
            number.into(),
            origin.into(),
            actor.into(),
            serde_json::to_value(&summary)?.into(),
            now.into(),
            now.into(),
        ])?;
    db.execute(&insert).await?;
    tracing::info!(
        template.version = number,
        template.origin = origin,
        "template version recorded"
    );
    Ok(Some(Recorded { number, summary }))
}

/// The version at which each of `template`'s rows last changed (was added or changed), by
/// table and row id, as [`record`] keeps them.
pub async fn row_versions(
    db: &impl ConnectionTrait,
    template: Uuid,
) -> anyhow::Result<HashMap<String, HashMap<Uuid, i32>>> {
    let mut select = Query::select();
    select
        .columns(["id", "table_name", "version"].map(Alias::new))
        .from(Alias::new("template_row_states"))
        .and_where(col("tenant_id").eq(template));
    let mut out: HashMap<String, HashMap<Uuid, i32>> = HashMap::new();
    for row in db.query_all(&select).await? {
        out.entry(row.try_get("", "table_name")?)
            .or_default()
            .insert(row.try_get("", "id")?, row.try_get("", "version")?);
    }
    Ok(out)
}
