//! The settings each command reads: flags with clap's `env`, so `--help` lists the variables,
//! turned into (variable, value) pairs for [`crate::config::Config::from_lookup`].

use clap::Args;

/// Log settings, read by every command.
#[derive(Args, Debug, Default)]
pub struct LogSettings {
    /// Log line format: `pretty` (or `text`) or `json`. Colours only when stderr is a terminal
    /// (and `NO_COLOR` is unset).
    #[arg(
        long,
        global = true,
        env = "FORKLIFT_LOG_FORMAT",
        value_name = "FORMAT"
    )]
    pub log_format: Option<String>,
    /// Log filter, in tracing's EnvFilter syntax (default `info,sqlx=warn,sea_orm=warn`).
    #[arg(long = "log", global = true, env = "RUST_LOG", value_name = "FILTER")]
    pub log_filter: Option<String>,
}

/// The database.
#[derive(Args, Debug, Default)]
pub struct DatabaseSettings {
    /// The database: `sqlite://FILE?mode=rwc` (default `sqlite://forklift.db?mode=rwc`) or
    /// `postgres://USER:PASSWORD@HOST:PORT/DB`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// PostgreSQL: the role that owns the tables and runs migrations (default: `DATABASE_URL`).
    #[arg(
        long,
        env = "FORKLIFT_MIGRATION_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub migration_database_url: Option<String>,
    /// PostgreSQL: the system pool's role (`BYPASSRLS`), for bookkeeping that crosses tenants
    /// (default: `DATABASE_URL`).
    #[arg(
        long,
        env = "FORKLIFT_SYSTEM_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub system_database_url: Option<String>,
    /// Named tenant databases, comma-separated `NAME=URL` (`eu1=postgres://…`; SQLite:
    /// `eu1=sqlite://FILE`), of the main database's backend: migrated by `migrate`, reported
    /// by `/readyz`. Configuration only; tenants are not placed in them yet.
    #[arg(
        long,
        env = "FORKLIFT_TENANT_DATABASES",
        hide_env_values = true,
        value_name = "NAME=URL,..."
    )]
    pub tenant_databases: Option<String>,
    /// A file of named tenant databases, one `NAME=URL` per line (`#` comments); instead of
    /// `FORKLIFT_TENANT_DATABASES`.
    #[arg(long, env = "FORKLIFT_TENANT_DATABASES_FILE", value_name = "FILE")]
    pub tenant_databases_file: Option<String>,
}

/// Token verification and signing.
#[derive(Args, Debug, Default)]
pub struct TokenSettings {
    /// HS256 secret, at least 32 bytes. Unset in development: generated once and kept in
    /// `.forklift/jwt-secret`.
    #[arg(
        long,
        env = "FORKLIFT_JWT_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub jwt_secret: Option<String>,
    /// An RS256, ES256 or EdDSA public key: PEM text or a file path.
    #[arg(
        long,
        env = "FORKLIFT_JWT_PUBLIC_KEY",
        hide_env_values = true,
        value_name = "PEM"
    )]
    pub jwt_public_key: Option<String>,
    /// A JWKS file or http(s) URL; keys looked up by `kid`.
    #[arg(long, env = "FORKLIFT_JWKS", value_name = "FILE_OR_URL")]
    pub jwks: Option<String>,
    /// The `iss` every token must carry.
    #[arg(long, env = "FORKLIFT_JWT_ISSUER", value_name = "ISSUER")]
    pub jwt_issuer: Option<String>,
    /// The `aud` every token must carry.
    #[arg(long, env = "FORKLIFT_JWT_AUDIENCE", value_name = "AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// The claim holding a token's e-mail, to link a new subject to an invited member (default
    /// `email`).
    #[arg(long, env = "FORKLIFT_JWT_EMAIL_CLAIM", value_name = "CLAIM")]
    pub jwt_email_claim: Option<String>,
    /// The claim that must be `true` for that link (default `email_verified`).
    #[arg(long, env = "FORKLIFT_JWT_EMAIL_VERIFIED_CLAIM", value_name = "CLAIM")]
    pub jwt_email_verified_claim: Option<String>,
    /// `development` (default) or `production`: production never generates a secret, turns
    /// introspection off and allows no CORS origin unless told.
    #[arg(long = "env", env = "FORKLIFT_ENV", value_name = "ENV")]
    pub environment: Option<String>,
}

/// Forks and tenants.
#[derive(Args, Debug, Default)]
pub struct ForkSettings {
    /// Days a new trial lasts (default 14).
    #[arg(long, env = "FORKLIFT_TRIAL_DAYS", value_name = "DAYS")]
    pub trial_days: Option<String>,
    /// PostgreSQL: seconds a fork run may go without a heartbeat before it is marked ABANDONED
    /// (default 30).
    #[arg(long, env = "FORKLIFT_FORK_LEASE_SECS", value_name = "SECS")]
    pub fork_lease_secs: Option<String>,
    /// Test hook: make forks fail (`after_phase:N`, `mid_phase:2`) or pause
    /// (`pause:after_phase:1:1500`). Never in production.
    #[arg(long, env = "FORKLIFT_FORK_FAILPOINT", value_name = "POINT")]
    pub fork_failpoint: Option<String>,
    /// Rows deleted per statement when `deleteTenant(purge: true)` purges a tenant (default 500).
    #[arg(long, env = "FORKLIFT_PURGE_BATCH_SIZE", value_name = "ROWS")]
    pub purge_batch_size: Option<String>,
    /// Test hook: make purges fail after N batches (`after_batches:N`). Never in production.
    #[arg(long, env = "FORKLIFT_PURGE_FAILPOINT", value_name = "POINT")]
    pub purge_failpoint: Option<String>,
}

/// The HTTP server.
#[derive(Args, Debug, Default)]
pub struct ServerSettings {
    /// Listen address: `HOST:PORT`, `localhost:PORT` or `[::1]:PORT` (default 127.0.0.1:8080).
    #[arg(long, env = "FORKLIFT_ADDR", value_name = "ADDR")]
    pub addr: Option<String>,
    /// Subdomain routing: `acme.<base>` is the tenant whose subdomain is `acme`.
    #[arg(long, env = "FORKLIFT_BASE_DOMAIN", value_name = "DOMAIN")]
    pub base_domain: Option<String>,
    /// Browser origins allowed to call the API (CORS), comma-separated; `scheme://host:*` for any
    /// port, `*` for all, `none`. Default: localhost in development, none in production.
    #[arg(long, env = "FORKLIFT_CORS_ORIGINS", value_name = "ORIGINS")]
    pub cors_origins: Option<String>,
    /// `on` or `off`: introspection (and field suggestions). Default: on in development, off in
    /// production.
    #[arg(long, env = "FORKLIFT_INTROSPECTION", value_name = "ON_OFF")]
    pub introspection: Option<String>,
    /// `on` or `off`: read queries over the generated surface take the planned read path
    /// (default on); `off` sends every operation through the executor.
    #[arg(long, env = "FORKLIFT_PLANNED_READS", value_name = "ON_OFF")]
    pub planned_reads: Option<String>,
    /// Per-request deadline in seconds (default 30).
    #[arg(long, env = "FORKLIFT_REQUEST_TIMEOUT_SECS", value_name = "SECS")]
    pub request_timeout_secs: Option<String>,
    /// Seconds a client has to send a request's headers (default 10).
    #[arg(long, env = "FORKLIFT_HEADER_TIMEOUT_SECS", value_name = "SECS")]
    pub header_timeout_secs: Option<String>,
    /// GraphQL operations executing at once (default 4 per core, at least 8).
    #[arg(long, env = "FORKLIFT_MAX_CONCURRENT_REQUESTS", value_name = "N")]
    pub max_concurrent_requests: Option<String>,
    /// Nice levels below the server's priority that WebSocket delivery runs at (default 10,
    /// 0–19; 0: dashboards on equal terms with forks and requests).
    #[arg(long, env = "FORKLIFT_DELIVERY_NICE", value_name = "N")]
    pub delivery_nice: Option<String>,
    /// PostgreSQL: connections of the request pool at most (default 16).
    #[arg(long, env = "FORKLIFT_DB_POOL_SIZE", value_name = "N")]
    pub db_pool_size: Option<String>,
    /// PostgreSQL: connections of the system pool, and of the forks' pool, at most (default 8
    /// each).
    #[arg(long, env = "FORKLIFT_DB_SYSTEM_POOL_SIZE", value_name = "N")]
    pub db_system_pool_size: Option<String>,
    /// Connections of all named tenant databases' pools together at most (default 64): each
    /// named database's pool gets this divided by their number (at least 1, at most
    /// FORKLIFT_DB_POOL_SIZE).
    #[arg(
        long,
        env = "FORKLIFT_TENANT_DATABASES_MAX_CONNECTIONS",
        value_name = "N"
    )]
    pub tenant_databases_max_connections: Option<String>,
    /// Seconds an idle pooled connection stays open (default 60).
    #[arg(long, env = "FORKLIFT_DB_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    pub db_idle_timeout_secs: Option<String>,
    /// On SIGTERM, seconds running requests and forks get (default 20).
    #[arg(long, env = "FORKLIFT_SHUTDOWN_GRACE_SECS", value_name = "SECS")]
    pub shutdown_grace_secs: Option<String>,
    /// Test hook: `panic` makes the operation named `ForkliftFailpointPanic` panic. Never in
    /// production.
    #[arg(long, env = "FORKLIFT_REQUEST_FAILPOINT", value_name = "POINT")]
    pub request_failpoint: Option<String>,
}

/// Settings as (variable, value) pairs, for [`crate::config::Config::from_lookup`].
pub(super) trait Settings {
    fn pairs(&self) -> Vec<(&'static str, Option<&String>)>;
}

impl Settings for LogSettings {
    fn pairs(&self) -> Vec<(&'static str, Option<&String>)> {
        vec![
            ("FORKLIFT_LOG_FORMAT", self.log_format.as_ref()),
            ("RUST_LOG", self.log_filter.as_ref()),
        ]
    }
}

impl Settings for DatabaseSettings {
    fn pairs(&self) -> Vec<(&'static str, Option<&String>)> {
        vec![
            ("DATABASE_URL", self.database_url.as_ref()),
            (
                "FORKLIFT_MIGRATION_DATABASE_URL",
                self.migration_database_url.as_ref(),
            ),
            (
                "FORKLIFT_SYSTEM_DATABASE_URL",
                self.system_database_url.as_ref(),
            ),
            ("FORKLIFT_TENANT_DATABASES", self.tenant_databases.as_ref()),
            (
                "FORKLIFT_TENANT_DATABASES_FILE",
                self.tenant_databases_file.as_ref(),
            ),
        ]
    }
}

impl Settings for TokenSettings {
    fn pairs(&self) -> Vec<(&'static str, Option<&String>)> {
        vec![
            ("FORKLIFT_JWT_SECRET", self.jwt_secret.as_ref()),
            ("FORKLIFT_JWT_PUBLIC_KEY", self.jwt_public_key.as_ref()),
            ("FORKLIFT_JWKS", self.jwks.as_ref()),
            ("FORKLIFT_JWT_ISSUER", self.jwt_issuer.as_ref()),
            ("FORKLIFT_JWT_AUDIENCE", self.jwt_audience.as_ref()),
            ("FORKLIFT_JWT_EMAIL_CLAIM", self.jwt_email_claim.as_ref()),
            (
                "FORKLIFT_JWT_EMAIL_VERIFIED_CLAIM",
                self.jwt_email_verified_claim.as_ref(),
            ),
            ("FORKLIFT_ENV", self.environment.as_ref()),
        ]
    }
}

impl Settings for ForkSettings {
    fn pairs(&self) -> Vec<(&'static str, Option<&String>)> {
        vec![
            ("FORKLIFT_TRIAL_DAYS", self.trial_days.as_ref()),
            ("FORKLIFT_FORK_LEASE_SECS", self.fork_lease_secs.as_ref()),
            ("FORKLIFT_FORK_FAILPOINT", self.fork_failpoint.as_ref()),
            ("FORKLIFT_PURGE_BATCH_SIZE", self.purge_batch_size.as_ref()),
            ("FORKLIFT_PURGE_FAILPOINT", self.purge_failpoint.as_ref()),
        ]
    }
}

impl Settings for ServerSettings {
    fn pairs(&self) -> Vec<(&'static str, Option<&String>)> {
        vec![
            ("FORKLIFT_ADDR", self.addr.as_ref()),
            ("FORKLIFT_BASE_DOMAIN", self.base_domain.as_ref()),
            ("FORKLIFT_CORS_ORIGINS", self.cors_origins.as_ref()),
            ("FORKLIFT_INTROSPECTION", self.introspection.as_ref()),
            ("FORKLIFT_PLANNED_READS", self.planned_reads.as_ref()),
            (
                "FORKLIFT_REQUEST_TIMEOUT_SECS",
                self.request_timeout_secs.as_ref(),
            ),
            (
                "FORKLIFT_HEADER_TIMEOUT_SECS",
                self.header_timeout_secs.as_ref(),
            ),
            (
                "FORKLIFT_MAX_CONCURRENT_REQUESTS",
                self.max_concurrent_requests.as_ref(),
            ),
            ("FORKLIFT_DELIVERY_NICE", self.delivery_nice.as_ref()),
            ("FORKLIFT_DB_POOL_SIZE", self.db_pool_size.as_ref()),
            (
                "FORKLIFT_DB_SYSTEM_POOL_SIZE",
                self.db_system_pool_size.as_ref(),
            ),
            (
                "FORKLIFT_TENANT_DATABASES_MAX_CONNECTIONS",
                self.tenant_databases_max_connections.as_ref(),
            ),
            (
                "FORKLIFT_DB_IDLE_TIMEOUT_SECS",
                self.db_idle_timeout_secs.as_ref(),
            ),
            (
                "FORKLIFT_SHUTDOWN_GRACE_SECS",
                self.shutdown_grace_secs.as_ref(),
            ),
            (
                "FORKLIFT_REQUEST_FAILPOINT",
                self.request_failpoint.as_ref(),
            ),
        ]
    }
}

/// What a command needs from the database and the token settings, with `serve`'s extras.
#[derive(Args, Debug, Default)]
pub struct StackSettings {
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub tokens: TokenSettings,
    #[command(flatten)]
    pub forks: ForkSettings,
}

impl Settings for StackSettings {
    fn pairs(&self) -> Vec<(&'static str, Option<&String>)> {
        let mut pairs = self.database.pairs();
        pairs.extend(self.tokens.pairs());
        pairs.extend(self.forks.pairs());
        pairs
    }
}
