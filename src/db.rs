//! Connecting to the database, and running migrations.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};

use crate::config::{Config, Environment};

/// Opens the system pool: `FORKLIFT_SYSTEM_DATABASE_URL` when set, else `DATABASE_URL`,
/// failing within a few seconds when the database cannot be reached. On PostgreSQL its role must
/// bypass row-level security (`BYPASSRLS`): it serves the bookkeeping that crosses tenants (the
/// guard, forks, audit, the catalog, the admins' read-only all-tenants view). SQLite files are
/// created when missing and run in WAL mode, so readers are never blocked by a running fork;
/// foreign keys are enforced.
pub async fn connect(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let url = match (&config.system_database_url, config.is_sqlite()) {
        (Some(url), false) => url,
        _ => &config.database_url,
    };
    open(config, url, config.db_system_pool_size).await
}

/// The request pool (`DATABASE_URL`): on PostgreSQL a pool whose connections see tenant-owned
/// rows only for the one tenant a transaction names (see [`crate::access`]); on SQLite the
/// system pool itself.
pub async fn connect_scoped(
    config: &Config,
    system: &DatabaseConnection,
) -> anyhow::Result<DatabaseConnection> {
    if config.is_sqlite() {
        return Ok(system.clone());
    }
    open(config, &config.database_url, config.db_pool_size).await
}

async fn open(config: &Config, url: &str, size: u32) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_string());
    options
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        .idle_timeout(config.db_idle_timeout)
        .sqlx_logging(false);
    if config.is_sqlite() {
        options.max_connections(8).min_connections(1);
        sqlite_options(&mut options);
    } else {
        options.max_connections(size.max(1)).min_connections(1);
    }
    let label = config.database_label();
    let db = tokio::time::timeout(Duration::from_secs(12), Database::connect(options))
        .await
        .map_err(|_| anyhow::anyhow!("cannot reach database {label}: timed out"))?
        .map_err(|err| anyhow::anyhow!("cannot reach database {label}: {}", one_line(&err)))?;
    Ok(db)
}

/// SQLite's settings for every file Forklift opens: created when missing, foreign keys
/// enforced, WAL mode (readers never blocked by a running fork), a 30 s busy timeout.
pub fn sqlite_options(options: &mut ConnectOptions) {
    options.map_sqlx_sqlite_opts(|opts| {
        opts.create_if_missing(true)
            .foreign_keys(true)
            .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
    });
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None).await?;
    Ok(())
}

/// The connection migrations run on: the owner's (`FORKLIFT_MIGRATION_DATABASE_URL`) when set,
/// else `DATABASE_URL`'s (`db` itself unless the system pool has its own role).
pub async fn migration_connection(
    config: &Config,
    db: &DatabaseConnection,
) -> anyhow::Result<DatabaseConnection> {
    match migration_url(config) {
        Some(url) => open(config, url, 2).await,
        None => Ok(db.clone()),
    }
}

/// The URL [`migration_connection`] opens a pool of its own for; `None` when it uses the system
/// pool (close the pool after migrating only when this is `Some`).
pub fn migration_url(config: &Config) -> Option<&str> {
    match (&config.migration_database_url, &config.system_database_url) {
        (Some(url), _) => Some(url),
        (None, Some(_)) if !config.is_sqlite() => Some(&config.database_url),
        _ => None,
    }
}

/// One PostgreSQL role, as a pool connects.
struct PgRole {
    name: String,
    /// Superuser or `BYPASSRLS`: row-level security does not bind it.
    bypasses_rls: bool,
}

async fn role_of(db: &DatabaseConnection) -> anyhow::Result<PgRole> {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_user::text AS name, (rolsuper OR rolbypassrls) AS bypass \
             FROM pg_roles WHERE rolname = current_user",
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("the connected role is not in pg_roles"))?;
    Ok(PgRole {
        name: row.try_get("", "name")?,
        bypasses_rls: row.try_get("", "bypass")?,
    })
}

/// Checks the roles of the two pools on PostgreSQL (nothing on SQLite).
///
/// - The system pool's role must bypass row-level security (`BYPASSRLS` or superuser), or the
///   server's bookkeeping would see no tenant's rows: refused in every environment.
/// - The request pool's role should be bound by it: no superuser, no `BYPASSRLS`, not the system
///   role and no member of it (else `SET ROLE` would undo the wall). In production a request
///   role that is not bound is refused; in development (one superuser URL for everything) it is
///   a warning.
pub async fn check_roles(
    config: &Config,
    system: &DatabaseConnection,
    request: &DatabaseConnection,
) -> anyhow::Result<()> {
    if !is_postgres(system) {
        return Ok(());
    }
    let sys = role_of(system).await?;
    let req = role_of(request).await?;
    if !sys.bypasses_rls {
        let variable = if config.system_database_url.is_some() {
            "FORKLIFT_SYSTEM_DATABASE_URL"
        } else {
            "FORKLIFT_SYSTEM_DATABASE_URL (unset, so DATABASE_URL)"
        };
        anyhow::bail!(
            "{variable}: the system pool's role `{}` is bound by row-level security, so forks, \
             the guard and audit would see no tenant's rows; give the system pool a role with \
             BYPASSRLS (deploy/postgres-init.sql creates forklift_system)",
            sys.name
        );
    }
    let member = request
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_has_role(current_user, $1, 'MEMBER') AS member",
            [sys.name.clone().into()],
        ))
        .await?
        .map(|r| r.try_get::<bool>("", "member"))
        .transpose()?
        .unwrap_or(true);
    let why = if req.name == sys.name {
        "is also the system pool's role".to_string()
    } else if req.bypasses_rls {
        "bypasses row-level security (superuser or BYPASSRLS)".to_string()
    } else if member {
        format!("can SET ROLE to the system pool's role `{}`", sys.name)
    } else {
        return Ok(());
    };
    if config.environment == Environment::Production {
        anyhow::bail!(
            "DATABASE_URL: the request role `{}` {why}, so row-level security would not bind \
             requests; in production serve as a role bound by it (forklift_app) and give the \
             system pool its own role in FORKLIFT_SYSTEM_DATABASE_URL",
            req.name
        );
    }
    tracing::warn!(
        role = %req.name,
        "row-level security does not bind the request pool: its role {why} (development only; \
         production refuses this)"
    );
    Ok(())
}

/// True when the database answers a trivial query.
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.execute_unprepared("SELECT 1").await.is_ok()
}

/// Begins a transaction that will write. On SQLite it takes the write lock when it begins
/// (`BEGIN IMMEDIATE`), waiting for it under the busy timeout: a deferred transaction that read
/// first cannot upgrade to a writer once another writer has committed meanwhile, and fails with
/// `SQLITE_BUSY` instead of waiting its turn. On PostgreSQL, a plain `BEGIN`.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let sqlite = db.get_database_backend() == DbBackend::Sqlite;
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: sqlite.then_some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
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
