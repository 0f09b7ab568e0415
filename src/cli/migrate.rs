//! `forklift migrate`: the main database first, then every named tenant database
//! ([`crate::databases`]), one report line each (`main: up to date`, `eu1: applied 2`). A
//! database that cannot be reached or fails is reported and the others are still tried; the
//! command then exits non-zero.

use std::{process::ExitCode, time::Duration};

use migration::{Migrator, MigratorTrait};
use sea_orm::DatabaseConnection;

use super::MigrateAction;
use crate::{
    config::Config,
    databases::{self, MAIN, PoolSettings},
};

/// Runs `action` on every database and prints a line per database (standard output for
/// successes, standard error for failures).
pub(super) async fn run(action: MigrateAction, config: &Config) -> ExitCode {
    let mut failed = false;
    match main_connection(config).await {
        Ok((db, own_pool)) => {
            failed |= !report(MAIN, apply(action, &db).await);
            if let Some(pool) = own_pool {
                let _ = pool.close().await;
            }
            let _ = db.close().await;
        }
        Err(err) => failed |= !report(MAIN, Err(err)),
    }
    let settings = PoolSettings {
        max_connections: 2,
        idle_timeout: Duration::from_secs(10),
    };
    for named in config.tenant_databases.iter() {
        let outcome = match databases::connect(named, settings).await {
            Ok(db) => {
                let outcome = apply(action, &db).await;
                let _ = db.close().await;
                outcome
            }
            Err(err) => Err(err),
        };
        failed |= !report(&named.name, outcome);
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The main database's migration connection, and the system pool to close after it when the
/// migration connection is a pool of its own.
async fn main_connection(
    config: &Config,
) -> anyhow::Result<(DatabaseConnection, Option<DatabaseConnection>)> {
    let server = crate::db::connect(config).await?;
    let db = crate::db::migration_connection(config, &server).await?;
    Ok(match crate::db::migration_url(config) {
        Some(_) => (db, Some(server)),
        None => (db, None),
    })
}

/// Prints `name: outcome`; returns whether it succeeded.
fn report(name: &str, outcome: anyhow::Result<String>) -> bool {
    match outcome {
        Ok(text) => {
            println!("{name}: {text}");
            true
        }
        Err(err) => {
            let text = format!("{err:#}");
            eprintln!("{name}: failed: {}", text.lines().next().unwrap_or("error"));
            false
        }
    }
}

/// Applies `action` to one database; the report's text.
async fn apply(action: MigrateAction, db: &DatabaseConnection) -> anyhow::Result<String> {
    Ok(match action {
        MigrateAction::Up => {
            let pending = Migrator::get_pending_migrations(db).await?.len();
            Migrator::up(db, None).await?;
            match pending {
                0 => "up to date".to_string(),
                n => format!("applied {n}"),
            }
        }
        MigrateAction::Down => {
            let applied = Migrator::get_applied_migrations(db).await?.len();
            Migrator::down(db, None).await?;
            match applied {
                0 => "nothing to revert".to_string(),
                n => format!("reverted {n}"),
            }
        }
        MigrateAction::Fresh => {
            Migrator::fresh(db).await?;
            format!("fresh, applied {}", Migrator::migrations().len())
        }
        MigrateAction::Status => {
            let applied: Vec<String> = Migrator::get_applied_migrations(db)
                .await?
                .iter()
                .map(|m| m.name().to_string())
                .collect();
            let mut lines = Vec::new();
            for m in Migrator::migrations() {
                let name = m.name().to_string();
                let state = if applied.contains(&name) {
                    "applied"
                } else {
                    "pending"
                };
                lines.push(format!("  {state:8} {name}"));
            }
            let pending = lines.len() - applied.len().min(lines.len());
            format!(
                "{} applied, {pending} pending\n{}",
                applied.len(),
                lines.join("\n")
            )
        }
    })
}
