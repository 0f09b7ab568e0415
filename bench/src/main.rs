//! `forklift-bench`: the speed figures of `docs/performance.md`, measured on scratch databases.
//! A workspace crate of its own, so the server binary carries no benchmark code: `cargo run
//! --release -p forklift-bench -- query`.
//!
//! - [`fork_floor`]: the fork against a hand-written `INSERT … SELECT` copy;
//! - [`nested_query`]: the nested query against a server process, at several concurrencies;
//! - [`fanout`]: one fork streamed to many WebSocket subscribers, with the delivery lag;
//! - [`side_by_side`]: the nested query against PostGraphile on the same database
//!   (`forklift-bench query --against postgraphile`);
//! - [`upgrade`]: an upgrade against a fork of the same template, at several shares of
//!   changed rows;
//! - [`placement`]: the nested query on tenants spread over many named databases, with the
//!   connections PostgreSQL counts to them against the configured bound;
//! - [`all`]: fork, query and fan-out in a row, then one summary table.
//!
//! [`load`] is the load generator the query benchmarks share.
//!
//! Every benchmark that talks to a server starts it as a separate process of this same binary
//! (`forklift-bench serve …` is `forklift serve …`, the same library with the test failpoints the
//! fan-out uses to hold its fork; [`BenchServer`]), so the load generator and the server do not
//! share a runtime, and reads the server's idle and peak memory from `/proc`.

mod all;
mod arrival;
mod fanout;
mod fork_floor;
mod load;
mod nested_query;
mod placement;
mod side_by_side;
mod upgrade;

use std::{process::ExitCode, time::Duration};

use clap::{Parser, Subcommand, ValueEnum};
use sea_orm::{ConnectionTrait, Database};

use forklift::config::{Config, Secret};

/// The same allocator as the `forklift` binary, so the server processes this binary starts
/// measure what production runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Forklift's benchmarks, on scratch databases (`DATABASE_URL`: a PostgreSQL superuser's URL, or
/// SQLite by default).
#[derive(Parser, Debug)]
#[command(name = "forklift-bench", version)]
struct Cli {
    /// Where scratch databases are made: `sqlite://…` or a PostgreSQL superuser's
    /// `postgres://USER@HOST:PORT/DB`.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    database_url: Option<String>,
    #[command(subcommand)]
    what: BenchCommand,
}

/// What to measure.
#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// The fork against a hand-written `INSERT … SELECT` copy, on a scratch database.
    Fork {
        /// Template sizes in rows, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [1_000usize, 10_000, 100_000])]
        rows: Vec<usize>,
    },
    /// The nested query against a server process, at several concurrencies (this process is the
    /// load generator).
    Query {
        /// Concurrent clients, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [1usize, 32, 256])]
        concurrency: Vec<usize>,
        /// Seconds per concurrency level (after a 2 s warm-up).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Measure side by side with another server on the same database: `postgraphile`
        /// (installed from the npm registry on first use; needs PostgreSQL and Node.js).
        #[arg(long, value_name = "SERVER")]
        against: Option<Against>,
        /// Interleaved rounds with `--against`.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// One fork streamed to many `forkProgress` subscribers over WebSocket: delivery lag and
    /// the server's memory.
    Fanout {
        /// WebSocket subscribers.
        #[arg(long, default_value_t = 2000)]
        subscribers: usize,
        /// Template size in rows.
        #[arg(long, default_value_t = 1000)]
        rows: usize,
        /// Server processes: 2 runs the fork on one and connects every subscriber to the other
        /// (PostgreSQL).
        #[arg(long, default_value_t = 1)]
        replicas: usize,
        /// Percentage of subscribers that read slowly (their lag is reported apart).
        #[arg(long, default_value_t = 0)]
        slow_percent: usize,
    },
    /// An upgrade against a fork of the same template: `changed`% of the template's rows
    /// edited, as many of the tenant's own, some on both sides (conflicts).
    Upgrade {
        /// Template size in rows.
        #[arg(long, default_value_t = 10_000)]
        rows: usize,
        /// Shares of changed rows in percent, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [1usize, 5, 10])]
        changed: Vec<usize>,
    },
    /// Tenants spread over many named databases (PostgreSQL): the nested query on all of them
    /// at once, and the peak of the connections open to the named databases against the bound.
    Placement {
        /// Named databases, one placed tenant in each.
        #[arg(long, default_value_t = 20)]
        databases: usize,
        /// The server's `FORKLIFT_TENANT_DATABASES_MAX_CONNECTIONS`.
        #[arg(long, default_value_t = 40)]
        bound: usize,
        /// Concurrent clients, spread evenly over the tenants.
        #[arg(long, default_value_t = 80)]
        concurrency: usize,
        /// Seconds measured (after a 2 s warm-up).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// `fork`, `query` and `fanout` in a row, then one summary table.
    All {
        /// Template sizes for `fork`, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [1_000usize, 10_000, 100_000])]
        rows: Vec<usize>,
        /// Concurrent clients for `query`, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [1usize, 32, 256])]
        concurrency: Vec<usize>,
        /// Seconds per concurrency level.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// WebSocket subscribers for `fanout`.
        #[arg(long, default_value_t = 2000)]
        subscribers: usize,
    },
}

/// Servers `query --against` measures beside Forklift: `postgraphile` is PostGraphile 4.14 over
/// the same database, as a role row-level security binds.
#[derive(Copy, Clone, Debug, ValueEnum)]
enum Against {
    Postgraphile,
}

fn main() -> ExitCode {
    // The server processes the benchmarks start: this binary as `forklift`.
    if std::env::args().nth(1).as_deref() == Some("serve") {
        return forklift::cli::main();
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("forklift-bench: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("forklift-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let url = cli
        .database_url
        .unwrap_or_else(|| "sqlite://forklift-bench.db?mode=rwc".to_string());
    let config = Config::for_database(url);
    match cli.what {
        BenchCommand::Fork { rows } => {
            fork_floor::run(&config, &rows).await?;
        }
        BenchCommand::Query {
            concurrency,
            seconds,
            against: Some(Against::Postgraphile),
            rounds,
        } => side_by_side::run(&config, &concurrency, seconds, rounds).await?,
        BenchCommand::Query {
            concurrency,
            seconds,
            against: None,
            ..
        } => {
            nested_query::run(&config, &concurrency, seconds).await?;
        }
        BenchCommand::Fanout {
            subscribers,
            rows,
            replicas,
            slow_percent,
        } => {
            let options = fanout::FanoutOptions {
                subscribers,
                rows,
                replicas,
                slow_percent,
            };
            fanout::run(&config, &options).await?;
        }
        BenchCommand::Placement {
            databases,
            bound,
            concurrency,
            seconds,
        } => {
            let options = placement::PlacementOptions {
                databases,
                bound,
                concurrency,
                seconds,
            };
            placement::run(&config, &options).await?;
        }
        BenchCommand::Upgrade { rows, changed } => {
            upgrade::run(&config, rows, &changed).await?;
        }
        BenchCommand::All {
            rows,
            concurrency,
            seconds,
            subscribers,
        } => {
            let plan = all::Plan {
                rows,
                concurrency,
                seconds,
                subscribers,
                fanout_rows: 1000,
            };
            all::run(&config, &plan).await?;
        }
    }
    Ok(())
}

/// `PostgreSQL` or `SQLite`, for table headings.
pub(crate) fn backend_name(config: &Config) -> &'static str {
    if config.is_sqlite() {
        "SQLite"
    } else {
        "PostgreSQL"
    }
}

/// The value at quantile `p` (0–1) of sorted samples; 0 for none.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Resident memory of a process, in MiB: now (`VmRSS`) and at its peak (`VmHWM`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Memory {
    pub rss_mb: f64,
    pub peak_mb: f64,
}

impl Memory {
    /// Reads `/proc/<pid>/status` (`self` for this process); zeros where unknown.
    pub(crate) fn of(pid: &str) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        Memory {
            rss_mb: field("VmRSS:"),
            peak_mb: field("VmHWM:"),
        }
    }
}

/// CPU seconds process `pid` has used so far (user + system, from `/proc/<pid>/stat`; 0 where
/// unknown). Clock ticks are taken as 100 per second, Linux's fixed `USER_HZ`.
pub(crate) fn cpu_seconds_of(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat; here 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds the threads of process `pid` named `name` have used so far (their
/// `/proc/<pid>/task/<tid>/stat`; threads that ended are not counted).
pub(crate) fn thread_cpu_seconds_of(pid: &str, name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim() == name)
        })
        .map(|task| {
            cpu_seconds_of(&format!(
                "{pid}/task/{}",
                task.file_name().to_string_lossy()
            ))
        })
        .sum()
}

/// A scratch database, removed by [`Scratch::drop_it`]: a temporary SQLite file, or a new
/// database on the PostgreSQL server of `DATABASE_URL`.
pub(crate) struct Scratch {
    pub url: String,
    admin_url: Option<String>,
    pub name: String,
}

impl Scratch {
    /// Creates an empty scratch database named after this process and `label`.
    pub(crate) async fn create(base: &Config, label: &str) -> anyhow::Result<Scratch> {
        let name = format!("forklift_bench_{}_{label}", std::process::id());
        if base.is_sqlite() {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            let _ = std::fs::remove_file(&path);
            return Ok(Scratch {
                url: format!("sqlite://{}?mode=rwc", path.display()),
                admin_url: None,
                name,
            });
        }
        let admin_url = base.database_url.clone();
        let admin = Database::connect(&admin_url).await?;
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
            .await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        let _ = admin.close().await;
        let base_url = admin_url.split('?').next().unwrap_or_default();
        let (server, _) = base_url
            .rsplit_once('/')
            .ok_or_else(|| anyhow::anyhow!("DATABASE_URL: expected postgres://USER@HOST/DB"))?;
        Ok(Scratch {
            url: format!("{server}/{name}"),
            admin_url: Some(admin_url),
            name,
        })
    }

    /// A configuration for this database with a fresh development secret.
    pub(crate) fn config(&self) -> Config {
        let mut config = Config::for_database(&self.url);
        config.jwt_secret = Some(Secret::new(
            forklift::domains::new_token() + &forklift::domains::new_token(),
        ));
        config
    }

    /// Drops the database (or deletes the file).
    pub(crate) async fn drop_it(self) {
        match self.admin_url {
            Some(admin_url) => {
                if let Ok(admin) = Database::connect(&admin_url).await {
                    let _ = admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                            self.name
                        ))
                        .await;
                }
            }
            None => {
                let path = std::env::temp_dir().join(format!("{}.db", self.name));
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
        }
    }
}

/// The state over `config`'s database with a synthetic template of about `rows` rows spread
/// evenly over every copied class (20 rows of each vocabulary class); returns the state, the
/// template and the rows per class.
pub(crate) async fn synthetic_template(
    config: &Config,
    rows: usize,
) -> anyhow::Result<(
    std::sync::Arc<forklift::state::AppState>,
    entity::tenants::Model,
    usize,
)> {
    let state = std::sync::Arc::new(
        forklift::app::build_state(config.clone(), forklift::registry::Registry::default()).await?,
    );
    let per_class = rows.div_ceil(state.registry.copied_classes().len().max(1));
    let template = forklift::bootstrap::ensure_template(&state).await?;
    let vocabulary = forklift::synthetic::vocabulary(&state.db, &state.registry, 20).await?;
    forklift::synthetic::configuration(
        &state.db,
        &state.registry,
        template.id,
        per_class,
        &vocabulary,
    )
    .await?;
    Ok((state, template, per_class))
}

/// A platform-admin token for benchmark clients, signed with `config`'s secret.
pub(crate) fn admin_token(
    state: &forklift::state::AppState,
    config: &Config,
) -> anyhow::Result<String> {
    state.verifier.mint(
        &forklift::auth::TokenRequest {
            sub: "bench@forklift.local".into(),
            admin: true,
            ttl_secs: 3600,
            ..Default::default()
        }
        .claims(config),
    )
}

/// `forklift serve` as a child process (production mode, warnings only) on a free port.
pub(crate) struct BenchServer {
    process: tokio::process::Child,
    /// The server's process id.
    pub pid: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Memory once it answered `/readyz`, before any load.
    pub idle: Memory,
    /// Milliseconds from spawning the process to its first ready `/readyz` (10 ms polls).
    pub ready_ms: u64,
}

impl BenchServer {
    /// Starts the server over `config`'s database with extra environment `env`, and waits until
    /// it is ready (at most 10 s).
    pub(crate) async fn start(
        config: &Config,
        env: &[(&str, &str)],
    ) -> anyhow::Result<BenchServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let secret = config
            .jwt_secret
            .as_ref()
            .map(|s| s.expose().to_string())
            .unwrap_or_default();
        let mut command = tokio::process::Command::new(std::env::current_exe()?);
        command
            .arg("serve")
            .env("DATABASE_URL", &config.database_url)
            .env("FORKLIFT_ADDR", &addr)
            .env("FORKLIFT_JWT_SECRET", secret)
            // On PostgreSQL the scratch database is served by its administrator for both pools,
            // which production refuses (the request role must be bound by row-level security).
            .env(
                "FORKLIFT_ENV",
                if config.is_sqlite() {
                    "production"
                } else {
                    "development"
                },
            )
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let process = command.spawn()?;
        let pid = process
            .id()
            .ok_or_else(|| anyhow::anyhow!("the bench server exited at once"))?
            .to_string();
        let client = reqwest::Client::new();
        let started = std::time::Instant::now();
        for _ in 0..1000 {
            if client
                .get(format!("http://{addr}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                let ready_ms = started.elapsed().as_millis() as u64;
                let idle = Memory::of(&pid);
                return Ok(BenchServer {
                    process,
                    pid,
                    addr,
                    idle,
                    ready_ms,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        anyhow::bail!("the bench server did not become ready within 10 s")
    }

    /// CPU seconds the server has used so far (see [`cpu_seconds_of`]).
    pub(crate) fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(&self.pid)
    }

    /// CPU seconds the server's fork runtime has used so far.
    pub(crate) fn fork_cpu_seconds(&self) -> f64 {
        thread_cpu_seconds_of(&self.pid, forklift::fork::runtime::THREAD_NAME)
    }

    /// The server's memory now (and its peak so far).
    pub(crate) fn memory(&self) -> Memory {
        Memory::of(&self.pid)
    }

    /// Stops the server.
    pub(crate) async fn stop(mut self) {
        let _ = self.process.kill().await;
    }
}
