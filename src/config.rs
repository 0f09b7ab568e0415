//! Typed configuration, read once from the environment (every variable is in `.env.example`).
//!
//! A bad value is a one-line error naming the variable. Secrets are wrapped in [`Secret`] so
//! they never print.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use crate::databases::{self, TenantDatabases};

/// A value that must never reach a log line or a `Debug` dump.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Development or production: production turns introspection and suggestions off and refuses
/// a generated JWT secret.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// How log lines are written.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Where verification keys for RS256/ES256/EdDSA tokens come from.
#[derive(Clone, Debug)]
pub enum PublicKeySource {
    /// A PEM file or PEM text (`FORKLIFT_JWT_PUBLIC_KEY`).
    Pem(String),
    /// A JWKS document: a file path or an `http(s)` URL (`FORKLIFT_JWKS`).
    Jwks(String),
}

/// The whole configuration of a Forklift process.
#[derive(Clone, Debug)]
pub struct Config {
    /// The server's database (`DATABASE_URL`).
    pub database_url: String,
    /// Migrations' database, as the role owning the tables (`FORKLIFT_MIGRATION_DATABASE_URL`);
    /// `DATABASE_URL` when unset. With PostgreSQL row-level security the server's role should
    /// own no tables: give it here.
    pub migration_database_url: Option<String>,
    /// The system pool's database (`FORKLIFT_SYSTEM_DATABASE_URL`): PostgreSQL only, a role with
    /// `BYPASSRLS` for the bookkeeping that crosses tenants (guard, forks, audit, catalog, the
    /// admins' all-tenants view). Unset: `DATABASE_URL`, which then must bypass row-level
    /// security itself; production refuses that (see [`crate::db::check_roles`]).
    pub system_database_url: Option<String>,
    /// The named tenant databases (`FORKLIFT_TENANT_DATABASES` or
    /// `FORKLIFT_TENANT_DATABASES_FILE`): configuration only, never stored in a database. See
    /// [`crate::databases`].
    pub tenant_databases: TenantDatabases,
    pub addr: SocketAddr,
    pub jwt_secret: Option<Secret>,
    pub jwt_public_key: Option<PublicKeySource>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    /// The claim holding a token's e-mail (`FORKLIFT_JWT_EMAIL_CLAIM`, `email`): a token whose
    /// subject is unknown is linked on first sight to the user invited with that e-mail.
    pub jwt_email_claim: String,
    /// The claim saying the e-mail is verified (`FORKLIFT_JWT_EMAIL_VERIFIED_CLAIM`,
    /// `email_verified`); an unverified e-mail never links.
    pub jwt_email_verified_claim: String,
    pub base_domain: Option<String>,
    pub environment: Environment,
    /// `FORKLIFT_INTROSPECTION` (`on` or `off`), when set; see [`Config::introspection`].
    pub introspection: Option<bool>,
    /// `FORKLIFT_CORS_ORIGINS`, when set; see [`Config::cors_origins`].
    pub cors_origins: Option<CorsOrigins>,
    /// `FORKLIFT_PLANNED_READS` (`on`, the default, or `off`): whether read queries over the
    /// generated surface take the planned read path (`graphql/planned`) or always the executor.
    pub planned_reads: bool,
    pub log_format: LogFormat,
    /// Default length of a trial (`FORKLIFT_TRIAL_DAYS`, 14).
    pub trial_days: i64,
    /// How long a fork run may go without a heartbeat before another replica calls it
    /// abandoned (`FORKLIFT_FORK_LEASE_SECS`, 30).
    pub fork_lease: Duration,
    /// Per-request deadline (`FORKLIFT_REQUEST_TIMEOUT_SECS`, 30).
    pub request_timeout: Duration,
    /// How long a tenant move waits after its switch before it removes the old copy, so that
    /// requests routed there just before the switch finish reading it
    /// (`FORKLIFT_MOVE_DRAIN_MS`, 1000).
    pub move_drain: Duration,
    /// How long a client has to send a request's headers, from the first byte of the request
    /// (`FORKLIFT_HEADER_TIMEOUT_SECS`, 10); the connection is closed after it.
    pub header_timeout: Duration,
    /// GraphQL operations over HTTP executing at once (`FORKLIFT_MAX_CONCURRENT_REQUESTS`, four
    /// per core, at least 8); more wait their turn within the request deadline. A large nested
    /// response is CPU and memory while it is built, so this bounds both under a burst.
    pub max_concurrent_requests: usize,
    /// How many nice levels below the server's priority WebSocket delivery runs
    /// (`FORKLIFT_DELIVERY_NICE`, 10, 0–19; see [`crate::http::ws::delivery`]). 0 puts
    /// dashboards on equal terms with forks and requests when the CPU is saturated.
    pub delivery_nice: i32,
    /// Connections of the request pool at most (`FORKLIFT_DB_POOL_SIZE`, 16; PostgreSQL).
    pub db_pool_size: u32,
    /// Connections of the system pool, and of the forks' pool, at most
    /// (`FORKLIFT_DB_SYSTEM_POOL_SIZE`, 8 each; PostgreSQL).
    pub db_system_pool_size: u32,
    /// How long an idle pooled connection stays open (`FORKLIFT_DB_IDLE_TIMEOUT_SECS`, 60): after
    /// a burst the server gives its connections back to a PostgreSQL it shares.
    pub db_idle_timeout: Duration,
    /// Connections of every named tenant database's pool together, at most
    /// (`FORKLIFT_TENANT_DATABASES_MAX_CONNECTIONS`, 64): each pool gets an equal share
    /// ([`crate::databases::PoolSettings::for_config`]).
    pub tenant_databases_max_connections: u32,
    /// On SIGTERM, how long running requests and forks may go on before they are cut
    /// (`FORKLIFT_SHUTDOWN_GRACE_SECS`, 20). A cut fork rolls back and says so in its record.
    pub shutdown_grace: Duration,
    /// Test and benchmark hook (`FORKLIFT_FORK_FAILPOINT`): make every fork fail at a point
    /// (`before_phase:1`, `mid_phase:2`, `after_phase:N`), or hold it there
    /// (`pause:after_phase:1:1500`, milliseconds). Acts only in a build with the `failpoints`
    /// feature (the integration tests'); never set it in production.
    pub fork_failpoint: Option<String>,
    /// Test-only (`FORKLIFT_REQUEST_FAILPOINT`): `panic` makes an operation named
    /// `http::execution::PANIC_OPERATION` panic in its handler. Acts only in a build with the
    /// `failpoints` feature.
    pub request_failpoint: Option<String>,
    /// Rows deleted per statement when a tenant is purged (`FORKLIFT_PURGE_BATCH_SIZE`, 500):
    /// `deleteTenant(purge: true)` never holds more than one batch's locks at a time.
    pub purge_batch_size: u64,
    /// Test-only (`FORKLIFT_PURGE_FAILPOINT`): `after_batches:N` makes a purge fail after its
    /// N-th batch, as an interrupted one would. Acts only in a build with the `failpoints`
    /// feature.
    pub purge_failpoint: Option<String>,
}

/// Four concurrent GraphQL operations per core, at least 8.
fn default_concurrency() -> usize {
    (4 * std::thread::available_parallelism().map_or(2, |n| n.get())).max(8)
}

/// A configuration value that could not be used; the message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

/// Where settings are read from: a name → value lookup (the process environment, or the
/// command line's values backed by it).
type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn bad(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}

/// A listen address: `IP:PORT`, `[IPv6]:PORT`, or `localhost:PORT` (127.0.0.1).
pub fn parse_addr(text: &str) -> Option<SocketAddr> {
    let text = text.trim();
    if let Ok(addr) = text.parse() {
        return Some(addr);
    }
    let (host, port) = text.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    host.eq_ignore_ascii_case("localhost")
        .then(|| SocketAddr::from(([127, 0, 0, 1], port)))
}

/// `on`/`off` (also `true`/`false`, `1`/`0`, `yes`/`no`).
fn parse_switch(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Some(true),
        "off" | "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// One allowed browser origin: exact (`https://admin.example.org`), or any port of a host
/// (`http://localhost:*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OriginRule {
    /// The origin, exactly (scheme, host and port as the browser sends them).
    Exact(String),
    /// `scheme://host` with any port, or none.
    AnyPort(String),
}

/// The browser origins allowed to call the API across origins (CORS). Empty: none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorsOrigins {
    /// Every origin (`*`). Tokens travel in `Authorization`, never in cookies, so this grants
    /// nothing a page could not do from a server.
    pub any: bool,
    pub rules: Vec<OriginRule>,
}

impl CorsOrigins {
    /// Development's default: pages served from this machine, on any port.
    pub fn local() -> Self {
        Self::parse("http://localhost:*,http://127.0.0.1:*,http://[::1]:*").unwrap_or_default()
    }

    /// Parses `FORKLIFT_CORS_ORIGINS`: a comma-separated list of origins (`https://a.example`,
    /// `http://localhost:5173`), `scheme://host:*` for any port, `*` for every origin, or
    /// `none`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut origins = CorsOrigins::default();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "*" {
                origins.any = true;
                continue;
            }
            if item.eq_ignore_ascii_case("none") {
                continue;
            }
            let item = item.trim_end_matches('/').to_ascii_lowercase();
            let Some((scheme, rest)) = item.split_once("://") else {
                return Err(format!(
                    "`{item}` is not an origin like https://admin.example.org"
                ));
            };
            if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains('/') {
                return Err(format!(
                    "`{item}` is not an origin like https://admin.example.org"
                ));
            }
            match rest.strip_suffix(":*") {
                Some(host) if !host.is_empty() && !host.contains('*') => {
                    origins
                        .rules
                        .push(OriginRule::AnyPort(format!("{scheme}://{host}")));
                }
                _ if rest.contains('*') => {
                    return Err(format!(
                        "`{item}`: only a whole port may be `*` (http://localhost:*)"
                    ));
                }
                _ => origins.rules.push(OriginRule::Exact(item.clone())),
            }
        }
        Ok(origins)
    }

    /// True when a page of `origin` may call the API.
    pub fn allows(&self, origin: &str) -> bool {
        if self.any {
            return true;
        }
        let origin = origin.to_ascii_lowercase();
        self.rules.iter().any(|rule| match rule {
            OriginRule::Exact(exact) => *exact == origin,
            OriginRule::AnyPort(base) => origin.strip_prefix(base.as_str()).is_some_and(|rest| {
                rest.is_empty()
                    || rest.strip_prefix(':').is_some_and(|port| {
                        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                    })
            }),
        })
    }

    /// True when no origin is allowed.
    pub fn is_empty(&self) -> bool {
        !self.any && self.rules.is_empty()
    }
}

/// The named tenant databases: `FORKLIFT_TENANT_DATABASES` (comma-separated `name=url`), or the
/// file `FORKLIFT_TENANT_DATABASES_FILE` names (one `name=url` per line, `#` comments); not
/// both.
fn tenant_databases(
    var: &dyn Fn(&str) -> Option<String>,
    main_url: &str,
) -> Result<TenantDatabases, ConfigError> {
    const LIST: &str = "FORKLIFT_TENANT_DATABASES";
    const FILE: &str = "FORKLIFT_TENANT_DATABASES_FILE";
    match (var(LIST), var(FILE)) {
        (Some(_), Some(_)) => Err(bad(FILE, format!("set either {LIST} or {FILE}, not both"))),
        (Some(text), None) => TenantDatabases::parse(&text, databases::Source::Variable, main_url)
            .map_err(|m| bad(LIST, m)),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| bad(FILE, format!("cannot read `{path}`: {e}")))?;
            TenantDatabases::parse(&text, databases::Source::File(&path), main_url)
                .map_err(|m| bad(FILE, m))
        }
        (None, None) => Ok(TenantDatabases::default()),
    }
}

/// The SQLite file used when `DATABASE_URL` is unset: `forklift.db` in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://forklift.db?mode=rwc";

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the command line passes its values, each
    /// backed by its environment variable). An empty value counts as unset.
    pub fn from_lookup(lookup: Lookup<'_>) -> Result<Self, ConfigError> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let database_url = var("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(bad(
                "DATABASE_URL",
                "expected sqlite://FILE or postgres://USER@HOST/DB",
            ));
        }
        let addr = match var("FORKLIFT_ADDR") {
            Some(v) => parse_addr(&v).ok_or_else(|| {
                bad(
                    "FORKLIFT_ADDR",
                    format!("`{v}` is not HOST:PORT (127.0.0.1:8080, localhost:8080, [::1]:8080)"),
                )
            })?,
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let environment = match var("FORKLIFT_ENV").as_deref() {
            None | Some("development") => Environment::Development,
            Some("production") => Environment::Production,
            Some(other) => {
                return Err(bad(
                    "FORKLIFT_ENV",
                    format!("`{other}`: expected development or production"),
                ));
            }
        };
        let introspection = match var("FORKLIFT_INTROSPECTION") {
            None => None,
            Some(v) => Some(parse_switch(&v).ok_or_else(|| {
                bad(
                    "FORKLIFT_INTROSPECTION",
                    format!("`{v}`: expected on or off"),
                )
            })?),
        };
        let planned_reads = match var("FORKLIFT_PLANNED_READS") {
            None => true,
            Some(v) => parse_switch(&v).ok_or_else(|| {
                bad(
                    "FORKLIFT_PLANNED_READS",
                    format!("`{v}`: expected on or off"),
                )
            })?,
        };
        let cors_origins = match var("FORKLIFT_CORS_ORIGINS") {
            None => None,
            Some(v) => Some(CorsOrigins::parse(&v).map_err(|m| bad("FORKLIFT_CORS_ORIGINS", m))?),
        };
        let log_format = match var("FORKLIFT_LOG_FORMAT").as_deref() {
            None | Some("pretty") | Some("text") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(bad(
                    "FORKLIFT_LOG_FORMAT",
                    format!("`{other}`: expected pretty or json"),
                ));
            }
        };
        let jwt_secret = var("FORKLIFT_JWT_SECRET").map(Secret::new);
        if let Some(secret) = &jwt_secret
            && secret.expose().len() < 32
        {
            return Err(bad(
                "FORKLIFT_JWT_SECRET",
                "must be at least 32 bytes (try `openssl rand -hex 32`)",
            ));
        }
        let jwt_public_key = match (var("FORKLIFT_JWT_PUBLIC_KEY"), var("FORKLIFT_JWKS")) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "FORKLIFT_JWKS",
                    "set either FORKLIFT_JWT_PUBLIC_KEY or FORKLIFT_JWKS, not both",
                ));
            }
            (Some(pem), None) => Some(PublicKeySource::Pem(pem)),
            (None, Some(jwks)) => Some(PublicKeySource::Jwks(jwks)),
            (None, None) => None,
        };
        let number = |name: &'static str, default: i64| -> Result<i64, ConfigError> {
            match var(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad(name, format!("`{v}` is not a positive number"))),
            }
        };
        let migration_database_url = var("FORKLIFT_MIGRATION_DATABASE_URL");
        if let Some(url) = &migration_database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(bad(
                "FORKLIFT_MIGRATION_DATABASE_URL",
                "expected postgres://OWNER@HOST/DB (only PostgreSQL separates the roles)",
            ));
        }
        let system_database_url = var("FORKLIFT_SYSTEM_DATABASE_URL");
        if let Some(url) = &system_database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(bad(
                "FORKLIFT_SYSTEM_DATABASE_URL",
                "expected postgres://SYSTEM_ROLE@HOST/DB (only PostgreSQL separates the roles)",
            ));
        }
        let tenant_databases = tenant_databases(&var, &database_url)?;
        Ok(Self {
            database_url,
            migration_database_url,
            system_database_url,
            tenant_databases,
            addr,
            jwt_secret,
            jwt_public_key,
            jwt_issuer: var("FORKLIFT_JWT_ISSUER"),
            jwt_audience: var("FORKLIFT_JWT_AUDIENCE"),
            jwt_email_claim: var("FORKLIFT_JWT_EMAIL_CLAIM").unwrap_or_else(|| "email".into()),
            jwt_email_verified_claim: var("FORKLIFT_JWT_EMAIL_VERIFIED_CLAIM")
                .unwrap_or_else(|| "email_verified".into()),
            base_domain: var("FORKLIFT_BASE_DOMAIN").map(|d| d.trim_matches('.').to_lowercase()),
            environment,
            introspection,
            cors_origins,
            planned_reads,
            log_format,
            trial_days: number("FORKLIFT_TRIAL_DAYS", 14)?,
            fork_lease: Duration::from_secs(number("FORKLIFT_FORK_LEASE_SECS", 30)? as u64),
            request_timeout: Duration::from_secs(
                number("FORKLIFT_REQUEST_TIMEOUT_SECS", 30)? as u64
            ),
            move_drain: Duration::from_millis(number("FORKLIFT_MOVE_DRAIN_MS", 1000)? as u64),
            header_timeout: Duration::from_secs(
                number("FORKLIFT_HEADER_TIMEOUT_SECS", 10)?.max(1) as u64
            ),
            max_concurrent_requests: number(
                "FORKLIFT_MAX_CONCURRENT_REQUESTS",
                default_concurrency() as i64,
            )?
            .max(1) as usize,
            delivery_nice: match var("FORKLIFT_DELIVERY_NICE") {
                None => crate::http::ws::delivery::DELIVERY_NICE,
                Some(v) => v
                    .parse::<i32>()
                    .ok()
                    .filter(|n| (0..=19).contains(n))
                    .ok_or_else(|| {
                        bad(
                            "FORKLIFT_DELIVERY_NICE",
                            format!("`{v}` is not a number from 0 to 19"),
                        )
                    })?,
            },
            db_pool_size: number("FORKLIFT_DB_POOL_SIZE", 16)?.clamp(1, 10_000) as u32,
            db_system_pool_size: number("FORKLIFT_DB_SYSTEM_POOL_SIZE", 8)?.clamp(2, 10_000) as u32,
            db_idle_timeout: Duration::from_secs(
                number("FORKLIFT_DB_IDLE_TIMEOUT_SECS", 60)?.max(1) as u64,
            ),
            tenant_databases_max_connections: number(
                "FORKLIFT_TENANT_DATABASES_MAX_CONNECTIONS",
                64,
            )?
            .clamp(1, 100_000) as u32,
            shutdown_grace: Duration::from_secs(number("FORKLIFT_SHUTDOWN_GRACE_SECS", 20)? as u64),
            fork_failpoint: var("FORKLIFT_FORK_FAILPOINT"),
            request_failpoint: var("FORKLIFT_REQUEST_FAILPOINT"),
            purge_batch_size: number("FORKLIFT_PURGE_BATCH_SIZE", 500)?.clamp(1, 100_000) as u64,
            purge_failpoint: var("FORKLIFT_PURGE_FAILPOINT"),
        })
    }

    /// A configuration for tests and tools: the given database, port 0, development mode.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            migration_database_url: None,
            system_database_url: None,
            tenant_databases: TenantDatabases::default(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            jwt_secret: None,
            jwt_public_key: None,
            jwt_issuer: None,
            jwt_audience: None,
            jwt_email_claim: "email".into(),
            jwt_email_verified_claim: "email_verified".into(),
            base_domain: None,
            environment: Environment::Development,
            introspection: None,
            cors_origins: None,
            planned_reads: true,
            log_format: LogFormat::Pretty,
            trial_days: 14,
            fork_lease: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            move_drain: Duration::from_secs(1),
            header_timeout: Duration::from_secs(10),
            max_concurrent_requests: default_concurrency(),
            delivery_nice: crate::http::ws::delivery::DELIVERY_NICE,
            db_pool_size: 16,
            db_system_pool_size: 8,
            db_idle_timeout: Duration::from_secs(60),
            tenant_databases_max_connections: 64,
            shutdown_grace: Duration::from_secs(5),
            fork_failpoint: None,
            request_failpoint: None,
            purge_batch_size: 500,
            purge_failpoint: None,
        }
    }

    /// Whether `__schema` and `__type` answer: `FORKLIFT_INTROSPECTION` when set, else on in
    /// development and off in production. Field suggestions in error messages follow it.
    pub fn introspection(&self) -> bool {
        self.introspection
            .unwrap_or(self.environment == Environment::Development)
    }

    /// The browser origins allowed to call the API: `FORKLIFT_CORS_ORIGINS` when set, else
    /// this machine's pages (`http://localhost:*`, `http://127.0.0.1:*`) in development and
    /// none in production.
    pub fn cors_origins(&self) -> CorsOrigins {
        match (&self.cors_origins, self.environment) {
            (Some(origins), _) => origins.clone(),
            (None, Environment::Development) => CorsOrigins::local(),
            (None, Environment::Production) => CorsOrigins::default(),
        }
    }

    /// True when the database is SQLite.
    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    /// The SQLite file behind `database_url`, when there is one.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.database_url.strip_prefix("sqlite:")?;
        let rest = rest.trim_start_matches("//");
        let path = rest.split('?').next().unwrap_or(rest);
        (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
    }

    /// The database named for humans: the URL without user, password or query.
    pub fn database_label(&self) -> String {
        let url = self.database_url.split('?').next().unwrap_or_default();
        match url.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
                format!("{scheme}://{host}")
            }
            None => url.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_may_name_localhost() {
        assert_eq!(
            parse_addr("localhost:8080"),
            Some(SocketAddr::from(([127, 0, 0, 1], 8080)))
        );
        assert_eq!(
            parse_addr("127.0.0.1:9"),
            Some(SocketAddr::from(([127, 0, 0, 1], 9)))
        );
        assert_eq!(parse_addr("[::1]:8080").map(|a| a.is_ipv6()), Some(true));
        assert_eq!(parse_addr("0.0.0.0:80").map(|a| a.port()), Some(80));
        assert_eq!(parse_addr("localhost"), None);
        assert_eq!(parse_addr("example.org:80"), None);
    }

    #[test]
    fn settings_come_from_the_lookup() {
        let config = Config::from_lookup(&|name| match name {
            "FORKLIFT_ADDR" => Some("localhost:9999".into()),
            "FORKLIFT_ENV" => Some("production".into()),
            "FORKLIFT_INTROSPECTION" => Some("on".into()),
            _ => None,
        })
        .expect("config");
        assert_eq!(config.addr.port(), 9999);
        assert!(config.introspection());
        assert!(config.cors_origins().is_empty());
        let error =
            Config::from_lookup(&|name| (name == "FORKLIFT_INTROSPECTION").then(|| "maybe".into()));
        assert!(error.is_err_and(|e| e.variable == "FORKLIFT_INTROSPECTION"));
    }

    #[test]
    fn delivery_runs_ten_levels_lower_unless_told() {
        let nice = |value: Option<&str>| {
            Config::from_lookup(&|name| {
                (name == "FORKLIFT_DELIVERY_NICE")
                    .then_some(value)
                    .flatten()
                    .map(str::to_string)
            })
            .map(|c| c.delivery_nice)
        };
        assert_eq!(nice(None).ok(), Some(10));
        assert_eq!(nice(Some("0")).ok(), Some(0));
        assert_eq!(nice(Some("19")).ok(), Some(19));
        for refused in ["20", "-1", "low"] {
            assert!(
                nice(Some(refused)).is_err_and(|e| e.variable == "FORKLIFT_DELIVERY_NICE"),
                "{refused}"
            );
        }
    }
}
