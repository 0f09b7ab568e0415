//! `forklift-bench fork`: the fork against its floor (`docs/performance.md`).
//!
//! For each size, a scratch database gets a synthetic template of that many rows spread over
//! every copied class. Then it times:
//! - **fork**: a real run (`forkTenant` without the HTTP), all five phases, events stored;
//! - **floor**: the same rows copied by hand-written `INSERT … SELECT` statements inside the
//!   database, ids remapped through a mapping table, in one transaction;
//!
//! and prints both, their ratio and the process's peak memory.

use std::time::Instant;

use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use uuid::Uuid;

use super::{Memory, Scratch, backend_name, synthetic_template};
use forklift::{bootstrap, config::Config, fork::runs, state::AppState};

/// One measured size.
#[derive(Clone, Debug)]
pub struct Measurement {
    pub rows: usize,
    pub fork_ms: f64,
    pub floor_ms: f64,
    pub peak_rss_mb: f64,
}

/// The hand-written copy: every copied class with `INSERT … SELECT`, ids remapped through a
/// mapping table, in one transaction. Returns the rows copied.
async fn floor_copy(state: &AppState, source: Uuid, target: Uuid) -> anyhow::Result<u64> {
    let db = &state.db;
    let backend = db.get_database_backend();
    let (uuid_type, new_id, p1, p2) = match backend {
        DbBackend::Postgres => ("uuid", "gen_random_uuid()", "$1", "$2"),
        _ => ("blob", "randomblob(16)", "?1", "?2"),
    };
    let classes = state.registry.copied_classes();
    let tx = db.begin().await?;
    tx.execute_unprepared(&format!(
        "CREATE TEMPORARY TABLE forklift_floor_map (old {uuid_type} PRIMARY KEY, new {uuid_type} NOT NULL)"
    ))
    .await?;
    for class in &classes {
        tx.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO forklift_floor_map (old, new) SELECT id, {new_id} FROM {} WHERE tenant_id = {p1}",
                class.table
            ),
            [source.into()],
        ))
        .await?;
    }
    let mut copied = 0;
    for class in &classes {
        let mut select = Vec::new();
        let mut joins = vec!["JOIN forklift_floor_map m_id ON m_id.old = s.id".to_string()];
        for column in &class.columns {
            let reference = class
                .references
                .iter()
                .find(|r| r.column == column.name && r.same_tenant);
            select.push(match (column.name.as_str(), reference) {
                ("id", _) => "m_id.new".to_string(),
                ("tenant_id", _) => p1.to_string(),
                (name, Some(_)) => {
                    joins.push(format!(
                        "LEFT JOIN forklift_floor_map m_{name} ON m_{name}.old = s.{name}"
                    ));
                    format!("m_{name}.new")
                }
                (name, None) => format!("s.{name}"),
            });
        }
        let columns: Vec<&str> = class.columns.iter().map(|c| c.name.as_str()).collect();
        let sql = format!(
            "INSERT INTO {table} ({cols}) SELECT {select} FROM {table} s {joins} WHERE s.tenant_id = {p2}",
            table = class.table,
            cols = columns.join(", "),
            select = select.join(", "),
            joins = joins.join(" "),
        );
        copied += tx
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [target.into(), source.into()],
            ))
            .await?
            .rows_affected();
    }
    tx.execute_unprepared("DROP TABLE forklift_floor_map")
        .await?;
    tx.commit().await?;
    Ok(copied)
}

async fn measure(base: &Config, rows: usize) -> anyhow::Result<Measurement> {
    let scratch = Scratch::create(base, &format!("fork_{rows}")).await?;
    let config = scratch.config();
    let (state, template, per_class) = synthetic_template(&config, rows).await?;
    let classes = state.registry.copied_classes().len().max(1);

    // Two rounds, each a fork and a floor copy into fresh tenants; the better time of each
    // counts, so neither side pays alone for a cold connection or cache.
    let (mut fork_ms, mut floor_ms) = (f64::MAX, f64::MAX);
    for round in 1..=2 {
        let fork_target = bootstrap::ensure_tenant(
            &state,
            &format!("bench-fork-{round}"),
            "Bench fork",
            "TENANT",
        )
        .await?;
        let started = Instant::now();
        let run = bootstrap::fork_and_wait(
            state.clone(),
            runs::ForkRequest {
                target: fork_target.slug.clone(),
                source: None,
                dry_run: false,
                actor: "bench".into(),
            },
            |_| {},
        )
        .await?;
        fork_ms = fork_ms.min(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            run.status == runs::status::FINISHED,
            "the fork ended {}: {:?}",
            run.status,
            run.error
        );

        let floor_target = bootstrap::ensure_tenant(
            &state,
            &format!("bench-floor-{round}"),
            "Bench floor",
            "TENANT",
        )
        .await?;
        let started = Instant::now();
        let copied = floor_copy(&state, template.id, floor_target.id).await?;
        floor_ms = floor_ms.min(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            copied as usize >= per_class * classes,
            "the floor copied only {copied} rows"
        );
    }

    let _ = state.db.clone().close().await;
    scratch.drop_it().await;
    Ok(Measurement {
        rows: per_class * classes,
        fork_ms,
        floor_ms,
        peak_rss_mb: Memory::of("self").peak_mb,
    })
}

/// Runs the benchmark for each size and prints a table; returns the measurements.
pub async fn run(base: &Config, sizes: &[usize]) -> anyhow::Result<Vec<Measurement>> {
    let backend = backend_name(base);
    println!("fork vs floor on {backend} ({})", base.database_label());
    println!(
        "{:>8} {:>12} {:>12} {:>8} {:>14}",
        "rows", "fork ms", "floor ms", "ratio", "peak RSS MiB"
    );
    let mut out = Vec::new();
    for size in sizes {
        let m = measure(base, *size).await?;
        println!(
            "{:>8} {:>12.1} {:>12.1} {:>8.2} {:>14.1}",
            m.rows,
            m.fork_ms,
            m.floor_ms,
            m.fork_ms / m.floor_ms.max(0.001),
            m.peak_rss_mb
        );
        out.push(m);
    }
    Ok(out)
}
