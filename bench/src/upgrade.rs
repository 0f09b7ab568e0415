//! `forklift-bench upgrade`: an upgrade against a fork of the same template (`docs/performance.md`).
//!
//! For each share of changed rows, a scratch database gets a synthetic template of `rows` rows,
//! a tenant forked from it (timed: **fork**), then `changed`% of the template's copied rows edited
//! and, on other rows, `changed`% of the tenant's own copies edited (and as many rows edited on
//! both sides, so there are conflicts). Then it times the **upgrade** of the tenant (a real
//! `UPGRADE` run: one transaction, events stored, derived phases) and prints both, their ratio,
//! and what the upgrade did. An upgrade's cost should follow the rows that changed, not the
//! template's size.

use std::{sync::Arc, time::Instant};

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use uuid::Uuid;

use super::{Scratch, backend_name, synthetic_template};
use forklift::{
    bootstrap,
    config::Config,
    fork::{fleet::Totals, runs, upgrade::UpgradeOptions},
    registry::{ColumnKind, RowClass},
    state::AppState,
};

/// One measured share of changed rows.
#[derive(Clone, Debug)]
pub struct Measurement {
    pub rows: usize,
    pub changed_percent: usize,
    pub fork_ms: f64,
    pub upgrade_ms: f64,
    pub totals: Totals,
}

/// A text column of `class` an edit may change: not an id, not part of the natural key.
fn editable(class: &RowClass) -> Option<String> {
    class
        .columns
        .iter()
        .find(|c| {
            c.kind == ColumnKind::Text
                && !class.natural_key.contains(&c.name)
                && !c.name.ends_with("_id")
                && c.name != "id"
        })
        .map(|c| c.name.clone())
}

/// Appends `suffix` to the editable column of every `step`-th row (from `offset`) of `tenant`
/// in every copied class; returns the rows edited.
async fn edit(
    state: &AppState,
    tenant: Uuid,
    step: usize,
    offset: usize,
    suffix: &str,
) -> anyhow::Result<u64> {
    let backend = state.db.get_database_backend();
    let (p1, p2, p3, p4) = match backend {
        DbBackend::Postgres => ("$1", "$2", "$3", "$4"),
        _ => ("?1", "?2", "?3", "?4"),
    };
    let mut edited = 0;
    for class in state.registry.copied_classes() {
        let Some(column) = editable(class) else {
            continue;
        };
        let sql = format!(
            "UPDATE {table} SET {column} = {column} || {p1} WHERE tenant_id = {p2} AND id IN \
             (SELECT id FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) - 1 AS n FROM {table} \
              WHERE tenant_id = {p2}) numbered WHERE n % {p3} = {p4})",
            table = class.table,
        );
        edited += state
            .db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [
                    suffix.into(),
                    tenant.into(),
                    (step as i64).into(),
                    (offset as i64).into(),
                ],
            ))
            .await?
            .rows_affected();
    }
    Ok(edited)
}

async fn measure(base: &Config, rows: usize, percent: usize) -> anyhow::Result<Measurement> {
    let scratch = Scratch::create(base, &format!("upgrade_{rows}_{percent}")).await?;
    let config = scratch.config();
    let (state, template, per_class) = synthetic_template(&config, rows).await?;
    let classes = state.registry.copied_classes().len().max(1);
    let tenant =
        bootstrap::ensure_tenant(&state, "bench-upgrade", "Bench upgrade", "TENANT").await?;

    let started = Instant::now();
    let forked = bootstrap::fork_and_wait(
        state.clone(),
        runs::ForkRequest {
            target: tenant.slug.clone(),
            source: None,
            dry_run: false,
            actor: "bench".into(),
        },
        |_| {},
    )
    .await?;
    let fork_ms = started.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(
        forked.status == runs::status::FINISHED,
        "the fork ended {}",
        forked.status
    );

    // Every `step`-th row changes: the template's from offset 0, the tenant's from offset 1
    // (their own edits), and both sides at offset 2 of a `step * 4` stride (conflicts).
    let step = (100 / percent.max(1)).max(2);
    edit(&state, template.id, step, 0, " (template)").await?;
    edit(&state, tenant.id, step, 1, " (tenant)").await?;
    edit(&state, template.id, step * 4, 2, " (template)").await?;
    edit(&state, tenant.id, step * 4, 2, " (tenant)").await?;

    let mut input = runs::check(
        &state.db,
        runs::ForkRequest {
            target: tenant.slug.clone(),
            source: None,
            dry_run: false,
            actor: "bench".into(),
        },
    )
    .await
    .map_err(forklift::error::AppError::into_anyhow)?;
    input.upgrade = Some(UpgradeOptions::default());
    let started = Instant::now();
    let upgraded = bootstrap::run_and_wait(Arc::clone(&state), input, |_| {}).await?;
    let upgrade_ms = started.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(
        upgraded.status == runs::status::FINISHED,
        "the upgrade ended {}: {:?}",
        upgraded.status,
        upgraded.error
    );

    let _ = state.db.clone().close().await;
    scratch.drop_it().await;
    Ok(Measurement {
        rows: per_class * classes,
        changed_percent: percent,
        fork_ms,
        upgrade_ms,
        totals: Totals::of_counts(&upgraded.counts),
    })
}

/// Runs the benchmark for each share of changed rows and prints a table.
pub async fn run(
    base: &Config,
    rows: usize,
    percents: &[usize],
) -> anyhow::Result<Vec<Measurement>> {
    println!(
        "upgrade vs fork on {} ({})",
        backend_name(base),
        base.database_label()
    );
    println!(
        "{:>8} {:>9} {:>10} {:>12} {:>7} {:>9} {:>10}",
        "rows", "changed", "fork ms", "upgrade ms", "ratio", "updated", "conflicts"
    );
    let mut out = Vec::new();
    for percent in percents {
        let m = measure(base, rows, *percent).await?;
        println!(
            "{:>8} {:>8}% {:>10.1} {:>12.1} {:>7.2} {:>9} {:>10}",
            m.rows,
            m.changed_percent,
            m.fork_ms,
            m.upgrade_ms,
            m.upgrade_ms / m.fork_ms.max(0.001),
            m.totals.updated,
            m.totals.conflicts
        );
        out.push(m);
    }
    Ok(out)
}
