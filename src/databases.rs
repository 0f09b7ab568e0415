//! Named tenant databases (issue #19, item 1): the databases besides the main one that tenants
//! may later be placed in, as configuration only.
//!
//! They come from `FORKLIFT_TENANT_DATABASES` (`eu1=postgres://…,eu2=postgres://…`) or from
//! `FORKLIFT_TENANT_DATABASES_FILE` (one `name=url` per line, `#` comments), are checked when the
//! configuration is read ([`TenantDatabases::parse`]), and are never stored in a database.
//! `forklift migrate` migrates each of them after the main one and `/readyz` reports each.
//! [`TenantPools`] opens a pool per name on first use (none at startup), migrating the database
//! then when it has pending migrations; [`crate::placement`] routes a placed tenant's rows there.

use std::{collections::HashMap, fmt, sync::Arc, time::Duration};

use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use tokio::sync::{Mutex, OnceCell};

use crate::config::Secret;

/// The name the main database (`DATABASE_URL`) goes by; no named database may take it.
pub const MAIN: &str = "main";

/// One named database: its name and its URL (a secret: it may carry a password).
#[derive(Clone)]
pub struct NamedDatabase {
    /// `[a-z0-9-]{1,32}`, not starting or ending with `-`, never `main`.
    pub name: String,
    /// The connection URL; [`masked_url`] shows it to humans.
    pub url: Secret,
}

impl NamedDatabase {
    /// The URL with its password masked, for messages.
    pub fn masked_url(&self) -> String {
        masked_url(self.url.expose())
    }

    /// True for a SQLite file.
    pub fn is_sqlite(&self) -> bool {
        self.url.expose().starts_with("sqlite:")
    }
}

impl fmt::Debug for NamedDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.masked_url())
    }
}

/// The named tenant databases, in the order they were configured. Empty: only the main database.
#[derive(Clone, Debug, Default)]
pub struct TenantDatabases {
    entries: Vec<NamedDatabase>,
}

/// Where the entries were read from, for error messages: the variable, or the file and line.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// `FORKLIFT_TENANT_DATABASES`: comma-separated entries.
    Variable,
    /// `FORKLIFT_TENANT_DATABASES_FILE`: one entry per line.
    File(&'a str),
}

impl TenantDatabases {
    /// Parses the entries of `text` (comma-separated from the variable, one per line from a
    /// file, where blank lines and lines starting with `#` are skipped). Each must be
    /// `name=url` with a DNS-label-like name (`[a-z0-9-]{1,32}`, not `main`), a name and a URL
    /// given once, and a URL of the same backend as `main_url`. The error names the entry, with
    /// the password masked.
    pub fn parse(text: &str, source: Source<'_>, main_url: &str) -> Result<Self, String> {
        let items: Vec<(String, &str)> = match source {
            Source::Variable => text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .enumerate()
                .map(|(i, s)| (format!("entry {}", i + 1), s))
                .collect(),
            Source::File(path) => text
                .lines()
                .enumerate()
                .map(|(i, l)| (format!("{path}:{}", i + 1), l.trim()))
                .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
                .collect(),
        };
        let main_sqlite = main_url.starts_with("sqlite:");
        let mut entries: Vec<NamedDatabase> = Vec::new();
        for (place, item) in items {
            let Some((name, url)) = item.split_once('=') else {
                return Err(format!(
                    "{place} `{}`: expected NAME=URL (eu1=postgres://USER@HOST/DB)",
                    masked_entry(item)
                ));
            };
            let (name, url) = (name.trim(), url.trim());
            let shown = format!("{place} `{name}={}`", masked_url(url));
            if !valid_name(name) {
                return Err(format!(
                    "{shown}: the name must be 1 to 32 of a-z, 0-9 and `-`, not starting or \
                     ending with `-`"
                ));
            }
            if name == MAIN {
                return Err(format!(
                    "{shown}: `main` is the main database (DATABASE_URL); choose another name"
                ));
            }
            let sqlite = url.starts_with("sqlite:");
            let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
            if !(sqlite || postgres) {
                return Err(format!(
                    "{shown}: expected a postgres://USER@HOST/DB or sqlite://FILE URL"
                ));
            }
            if sqlite != main_sqlite {
                let main = if main_sqlite { "SQLite" } else { "PostgreSQL" };
                return Err(format!(
                    "{shown}: the main database is {main}; every named database must be too"
                ));
            }
            if entries.iter().any(|e| e.name == name) {
                return Err(format!("{shown}: the name `{name}` is given twice"));
            }
            if url == main_url || entries.iter().any(|e| e.url.expose() == url) {
                return Err(format!(
                    "{shown}: this database is already configured (as `main` or another name)"
                ));
            }
            entries.push(NamedDatabase {
                name: name.to_string(),
                url: Secret::new(url),
            });
        }
        Ok(Self { entries })
    }

    /// The named databases, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &NamedDatabase> {
        self.entries.iter()
    }

    /// The database called `name`, when configured.
    pub fn get(&self, name: &str) -> Option<&NamedDatabase> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// True when only the main database is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many named databases there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// DNS-label-like: `[a-z0-9-]{1,32}`, no leading or trailing `-`.
fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// An entry without `=`: whatever follows a `://` user part is masked as a URL would be.
fn masked_entry(item: &str) -> String {
    if item.contains("://") {
        masked_url(item)
    } else {
        item.to_string()
    }
}

/// `url` with the password of its user part replaced by `***`
/// (`postgres://app:***@db:5432/forklift`); a URL without one is returned as it is. A
/// `password=` query parameter is masked too.
pub fn masked_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some(parts) => parts,
        None => return url.to_string(),
    };
    // The user part ends at the last `@` before the query, so a password holding `/` is masked
    // whole.
    let query_at = rest.find('?').unwrap_or(rest.len());
    let (authority, tail) = match rest[..query_at].rfind('@') {
        Some(at) => {
            let (userinfo, after) = rest.split_at(at);
            let userinfo = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                None => userinfo.to_string(),
            };
            let end = after[1..].find(['/', '?']).map_or(after.len(), |i| i + 1);
            (format!("{userinfo}{}", &after[..end]), &after[end..])
        }
        None => {
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            (rest[..end].to_string(), &rest[end..])
        }
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Connection settings of the named databases' pools.
#[derive(Clone, Copy, Debug)]
pub struct PoolSettings {
    /// Connections of one named database's pool at most.
    pub max_connections: u32,
    /// How long an idle connection stays open; a pool keeps none open when idle.
    pub idle_timeout: Duration,
}

impl PoolSettings {
    /// The serving settings: every named database's pool gets an equal share of
    /// `FORKLIFT_TENANT_DATABASES_MAX_CONNECTIONS` (at least 1, at most `FORKLIFT_DB_POOL_SIZE`),
    /// so all of them together never hold more than that bound (or one each, when there are
    /// more databases than the bound), and an idle pool holds none.
    pub fn for_config(config: &crate::config::Config) -> Self {
        let databases = u32::try_from(config.tenant_databases.len().max(1)).unwrap_or(u32::MAX);
        let share = (config.tenant_databases_max_connections / databases).max(1);
        Self {
            max_connections: share.min(config.db_pool_size.max(1)),
            idle_timeout: config.db_idle_timeout,
        }
    }
}

/// The named databases' pools, each opened on first use ([`TenantPools::pool`]) and none at
/// startup. A pool keeps no idle connection past its idle timeout. A failed connect is not
/// remembered: the next use tries again.
pub struct TenantPools {
    databases: TenantDatabases,
    settings: PoolSettings,
    pools: Mutex<HashMap<String, Arc<OnceCell<DatabaseConnection>>>>,
    /// Databases whose last connect failed, until when they are not tried again: a burst of
    /// requests for a database that is down fails at once instead of each waiting out a
    /// connect timeout.
    down_until: std::sync::Mutex<HashMap<String, std::time::Instant>>,
    /// When each pool was last handed out ([`TenantPools::close_idle`]).
    last_used: std::sync::Mutex<HashMap<String, std::time::Instant>>,
}

/// How long a named database whose connect failed is reported down without being tried.
const RETRY_AFTER: Duration = Duration::from_secs(2);

impl TenantPools {
    /// No pool yet; one per name on first use.
    pub fn new(databases: TenantDatabases, settings: PoolSettings) -> Self {
        Self {
            databases,
            settings,
            pools: Mutex::new(HashMap::new()),
            down_until: std::sync::Mutex::new(HashMap::new()),
            last_used: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The configured databases.
    pub fn databases(&self) -> &TenantDatabases {
        &self.databases
    }

    /// The pool of the database `name`, opened now if it is the first use.
    pub async fn pool(&self, name: &str) -> anyhow::Result<DatabaseConnection> {
        let database = self
            .databases
            .get(name)
            .ok_or_else(|| anyhow::anyhow!("no tenant database is named `{name}`"))?;
        let cell = self
            .pools
            .lock()
            .await
            .entry(name.to_string())
            .or_default()
            .clone();
        self.last_used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), std::time::Instant::now());
        if let Some(pool) = cell.get() {
            return Ok(pool.clone());
        }
        let recently_down = self
            .down_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .is_some_and(|until| *until > std::time::Instant::now());
        if recently_down {
            anyhow::bail!("database {name} was unreachable moments ago; not retried yet");
        }
        let pool = cell
            .get_or_try_init(|| async {
                let pool = connect(database, self.settings).await?;
                migrate_if_behind(database, &pool).await?;
                Ok::<_, anyhow::Error>(pool)
            })
            .await;
        let mut down_until = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        match pool {
            Ok(pool) => {
                down_until.remove(name);
                Ok(pool.clone())
            }
            Err(err) => {
                down_until.insert(name.to_string(), std::time::Instant::now() + RETRY_AFTER);
                Err(err)
            }
        }
    }

    /// The connection settings each pool is opened with.
    pub fn settings(&self) -> PoolSettings {
        self.settings
    }

    /// Closes the pools not handed out for `idle` (an idle pool holds no connection already;
    /// this drops the pool itself, and the next use opens a new one). A pool still in use by a
    /// transaction closes when that ends. Returns how many were closed.
    pub async fn close_idle(&self, idle: Duration) -> usize {
        let now = std::time::Instant::now();
        let stale: Vec<String> = self
            .last_used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, at)| now.duration_since(**at) >= idle)
            .map(|(name, _)| name.clone())
            .collect();
        let mut pools = self.pools.lock().await;
        let mut closed = 0;
        for name in stale {
            if pools.remove(&name).is_some_and(|cell| cell.initialized()) {
                closed += 1;
            }
            self.last_used
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&name);
        }
        closed
    }

    /// How many pools are open (tests, metrics).
    pub async fn open_pools(&self) -> usize {
        let pools = self.pools.lock().await;
        pools.values().filter(|c| c.initialized()).count()
    }

    /// Whether the database `name` answers a trivial query within `within`.
    pub async fn ping(&self, name: &str, within: Duration) -> bool {
        tokio::time::timeout(within, async {
            match self.pool(name).await {
                Ok(pool) => crate::db::ping(&pool).await,
                Err(_) => false,
            }
        })
        .await
        .unwrap_or(false)
    }
}

/// Applies the pending migrations of a named database when its pool is first opened by the
/// server (a fresh named database then works without `forklift migrate`); a database that is up
/// to date is only read (`seaql_migrations`), so a role without DDL rights serves one that
/// `forklift migrate` prepared.
async fn migrate_if_behind(
    database: &NamedDatabase,
    pool: &DatabaseConnection,
) -> anyhow::Result<()> {
    use migration::MigratorTrait;
    let behind = migration::Migrator::get_pending_migrations_read_only(pool)
        .await
        .map_or(true, |pending| !pending.is_empty());
    if behind {
        migration::Migrator::up(pool, None).await.map_err(|err| {
            let text = err.to_string();
            let line = text.lines().next().unwrap_or_default();
            anyhow::anyhow!(
                "database {} ({}): migrating failed: {line}",
                database.name,
                database.masked_url()
            )
        })?;
        tracing::info!(database = %database.name, "named tenant database migrated");
    }
    Ok(())
}

/// Opens a pool on `database` that holds no connection while idle, failing within a few
/// seconds when it cannot be reached. SQLite files are created when missing, as the main one.
pub async fn connect(
    database: &NamedDatabase,
    settings: PoolSettings,
) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(database.url.expose().to_string());
    options
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(settings.idle_timeout)
        .min_connections(0)
        .max_connections(settings.max_connections.max(1))
        .sqlx_logging(false);
    if database.is_sqlite() {
        crate::db::sqlite_options(&mut options);
    }
    let label = database.masked_url();
    let name = &database.name;
    tokio::time::timeout(Duration::from_secs(7), Database::connect(options))
        .await
        .map_err(|_| anyhow::anyhow!("cannot reach database {name} ({label}): timed out"))?
        .map_err(|err| {
            let text = err.to_string();
            let line = text.lines().next().unwrap_or_default();
            anyhow::anyhow!("cannot reach database {name} ({label}): {line}")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PG: &str = "postgres://app:pw@db/forklift";

    #[test]
    fn entries_parse_in_order() {
        let dbs = TenantDatabases::parse(
            " eu1=postgres://a:b@h1/x , eu-2=postgresql://h2/y ",
            Source::Variable,
            PG,
        )
        .expect("parses");
        let names: Vec<&str> = dbs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["eu1", "eu-2"]);
        assert_eq!(
            dbs.get("eu1").map(|d| d.masked_url()).as_deref(),
            Some("postgres://a:***@h1/x")
        );
        let file = "# placement\n\neu1=postgres://h1/x\n  # another\nus=postgres://h3/z\n";
        let dbs = TenantDatabases::parse(file, Source::File("dbs.conf"), PG).expect("parses");
        assert_eq!(dbs.len(), 2);
        assert!(TenantDatabases::parse("", Source::Variable, PG).is_ok_and(|d| d.is_empty()));
    }

    #[test]
    fn bad_entries_are_named_without_their_password() {
        for (text, needle) in [
            (
                "EU1=postgres://u:secret@h/x",
                "entry 1 `EU1=postgres://u:***@h/x`",
            ),
            (
                "eu1=postgres://h/a,main=postgres://u:secret@h/x",
                "entry 2 `main=",
            ),
            (
                "eu1=postgres://h/a,eu1=postgres://u:secret@h/x",
                "given twice",
            ),
            ("eu1=sqlite://x.db", "PostgreSQL"),
            (
                "eu1=mysql://u:secret@h/x",
                "entry 1 `eu1=mysql://u:***@h/x`",
            ),
            ("postgres://u:secret@h/x", "expected NAME=URL"),
            ("eu1=postgres://app:pw@db/forklift", "already configured"),
            (&format!("{}=postgres://h/x", "a".repeat(33)), "1 to 32"),
            ("-eu=postgres://h/x", "1 to 32"),
        ] {
            let err = TenantDatabases::parse(text, Source::Variable, PG).expect_err(text);
            assert!(err.contains(needle), "{text}: {err}");
            assert!(!err.contains("secret"), "{text}: {err}");
        }
        let err =
            TenantDatabases::parse("\nx=postgres://h/x\n", Source::File("f"), "sqlite://a.db")
                .expect_err("backend");
        assert!(
            err.starts_with("f:2 `x=postgres://h/x`: the main database is SQLite"),
            "{err}"
        );
    }

    #[test]
    fn all_named_pools_together_stay_under_the_bound() {
        let mut config = crate::config::Config::for_database(PG);
        config.tenant_databases_max_connections = 64;
        for (databases, share) in [(1, 16), (20, 3), (64, 1), (100, 1)] {
            let list: Vec<String> = (0..databases)
                .map(|i| format!("t{i}=postgres://h/d{i}"))
                .collect();
            config.tenant_databases =
                TenantDatabases::parse(&list.join(","), Source::Variable, PG).expect("parses");
            let settings = PoolSettings::for_config(&config);
            assert_eq!(settings.max_connections, share, "{databases} databases");
            assert!(settings.max_connections * databases <= 64.max(databases));
        }
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            masked_url("postgres://u:p@w@h:5/d?x=1"),
            "postgres://u:***@h:5/d?x=1"
        );
        assert_eq!(masked_url("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(masked_url("postgres://u:a/b@h/d"), "postgres://u:***@h/d");
        assert_eq!(
            masked_url("postgres://h/d?user=u&password=p"),
            "postgres://h/d?user=u&password=***"
        );
        assert_eq!(
            masked_url("sqlite://a.db?mode=rwc"),
            "sqlite://a.db?mode=rwc"
        );
    }
}
