//! Connecting to the database, and running migrations.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};

use crate::config::Config;

/// Opens the pool for `config.database_url`, failing within a few seconds when the database
/// cannot be reached. SQLite files are created when missing and run in WAL mode, so readers are
/// never blocked by a running fork; foreign keys are enforced.
pub async fn connect(config: &Config) -> anyhow::Result<DatabaseConnection> {
    open(config, &config.database_url, Pool::System).await
}

/// Which pool: the system pool (`forklift.system = on` on PostgreSQL, for the server's own
/// bookkeeping) or the request pool (row-level security by the tenant set per transaction).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Pool {
    System,
    Scoped,
}

/// The request pool: on PostgreSQL a pool whose connections see tenant-owned rows only for the
/// tenant a transaction names (see [`crate::access`]); on SQLite the system pool itself.
pub async fn connect_scoped(
    config: &Config,
    system: &DatabaseConnection,
) -> anyhow::Result<DatabaseConnection> {
    if config.is_sqlite() {
        return Ok(system.clone());
    }
    open(config, &config.database_url, Pool::Scoped).await
}

async fn open(config: &Config, url: &str, pool: Pool) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_string());
    options
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if config.is_sqlite() {
        options.max_connections(8).min_connections(1);
        options.map_sqlx_sqlite_opts(|opts| {
            opts.create_if_missing(true)
                .foreign_keys(true)
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
        });
    } else {
        options.max_connections(32).min_connections(1);
        if pool == Pool::System {
            options.map_sqlx_postgres_opts(|opts| opts.options([("forklift.system", "on")]));
        }
    }
    let label = config.database_label();
    let db = tokio::time::timeout(Duration::from_secs(12), Database::connect(options))
        .await
        .map_err(|_| anyhow::anyhow!("cannot reach database {label}: timed out"))?
        .map_err(|err| anyhow::anyhow!("cannot reach database {label}: {}", one_line(&err)))?;
    Ok(db)
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None).await?;
    Ok(())
}

/// The connection migrations run on: the owner's (`FORKLIFT_MIGRATION_DATABASE_URL`) when set,
/// else `db`.
pub async fn migration_connection(
    config: &Config,
    db: &DatabaseConnection,
) -> anyhow::Result<DatabaseConnection> {
    match &config.migration_database_url {
        Some(url) => open(config, url, Pool::System).await,
        None => Ok(db.clone()),
    }
}

/// True when the database answers a trivial query.
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.execute_unprepared("SELECT 1").await.is_ok()
}

/// True for PostgreSQL.
pub fn is_postgres(db: &impl ConnectionTrait) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}

fn one_line(err: &impl std::fmt::Display) -> String {
    err.to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}
