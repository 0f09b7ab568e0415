//! The command line: `forklift serve | migrate | schema | token | fork | bootstrap`.

use std::{process::ExitCode, sync::Arc};

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use migration::{Migrator, MigratorTrait};

use crate::{
    app::{self, Application},
    auth::TokenRequest,
    bootstrap::{self, BootstrapOptions},
    config::{Config, LogFormat},
    error::AppError,
    fork::{hub::EventKind, runs},
    registry::Registry,
};

/// Forklift: author one template, fork it into every tenant.
#[derive(Parser, Debug)]
#[command(name = "forklift", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the GraphQL API (migrates, and bootstraps a demo on an empty database).
    Serve,
    /// Apply or inspect migrations.
    Migrate {
        #[arg(value_enum, default_value = "up")]
        action: MigrateAction,
    },
    /// Print the GraphQL SDL (what `schema.graphql` holds).
    Schema,
    /// Mint a development token signed with the configured HS256 secret.
    Token {
        /// The subject (user); an e-mail address for users created by `addMember`.
        #[arg(long)]
        sub: String,
        /// The tenant (slug or id) the token is pinned to.
        #[arg(long)]
        tenant: Option<String>,
        /// Make the token a platform admin's.
        #[arg(long)]
        admin: bool,
        /// Add a grant (`template:author`, `vocabulary:author`); repeatable.
        #[arg(long = "grant")]
        grants: Vec<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
    },
    /// Fork a source tenant (default: the template) into a target tenant.
    Fork {
        #[arg(long)]
        target: String,
        #[arg(long)]
        source: Option<String>,
        /// Print the plan and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Provisioning sheets: validate, import, or print their JSON Schema.
    Sheets {
        #[command(subcommand)]
        what: SheetsCommand,
    },
    /// Measure the fork against its floor (scratch databases; prints a table).
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Bring an empty database to a switched-on stack (idempotent).
    Bootstrap {
        #[arg(long, default_value = "demo")]
        tenant: String,
        #[arg(long, default_value = "Demo")]
        tenant_name: String,
        /// Seed this e-mail address as the tenant's first staff administrator.
        #[arg(long)]
        admin_email: Option<String>,
    },
}

/// What `sheets` does.
#[derive(Subcommand, Debug)]
pub enum SheetsCommand {
    /// Check sheets without a database (references must resolve within the given sheets).
    Validate {
        /// Sheet files or directories (default: `sheets/`).
        paths: Vec<PathBuf>,
    },
    /// Import sheets onto the template (idempotent; all or nothing).
    Import {
        /// Sheet files or directories (default: `sheets/`).
        paths: Vec<PathBuf>,
        /// Check and report, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Delete rows the sheets no longer declare (reported otherwise).
        #[arg(long)]
        prune: bool,
    },
    /// Print the JSON Schema of the sheet format (what `sheets/sheet.schema.json` holds).
    Schema,
}

fn sheet_paths(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from("sheets")]
    } else {
        paths
    }
}

/// Draws the progress of a fork, one bar per phase, from its events.
#[derive(Default)]
struct PhaseBar {
    done: usize,
    rows: i64,
}

impl PhaseBar {
    const PHASES: usize = 5;

    fn bar(&self) -> String {
        let filled = "█".repeat(self.done);
        let empty = "░".repeat(Self::PHASES.saturating_sub(self.done));
        format!("[{filled}{empty}] {}/{}", self.done, Self::PHASES)
    }

    fn show(&mut self, event: &crate::fork::hub::ForkEvent) {
        let phase = event.phase.as_deref().unwrap_or_default();
        match event.kind {
            EventKind::PhaseStarted => {
                self.rows = 0;
                println!("{} ▶ {phase}", self.bar());
            }
            EventKind::RowsCopied => {
                self.rows += event.count.unwrap_or_default();
                println!(
                    "{:>14} {:<28} {:>8} created",
                    "",
                    event.class_name.as_deref().unwrap_or_default(),
                    event.count.unwrap_or_default()
                );
            }
            EventKind::RowSkipped => println!(
                "{:>14} skipped {}: {}",
                "",
                event.class_name.as_deref().unwrap_or_default(),
                event
                    .detail
                    .get("reason")
                    .and_then(|r| r.as_str())
                    .unwrap_or_default()
            ),
            EventKind::PhaseFinished => {
                self.done += 1;
                println!("{} ✔ {phase} ({} rows)", self.bar(), self.rows);
            }
            EventKind::RollingBack => println!("{} ↺ rolling back in {phase}", self.bar()),
            _ => {}
        }
    }
}

/// What `bench` measures.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
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
        /// Seconds per concurrency level.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// One fork streamed to many `forkProgress` subscribers over WebSocket: delivery lag and
    /// the server's memory.
    Fanout {
        /// WebSocket subscribers.
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// Template size in rows.
        #[arg(long, default_value_t = 1000)]
        rows: usize,
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
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
    },
}

/// `migrate` actions.
#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum MigrateAction {
    Up,
    Down,
    Status,
    Fresh,
}

fn init_tracing(format: LogFormat) -> crate::telemetry::Guard {
    use tracing_subscriber::{Layer, layer::SubscriberExt, util::SubscriberInitExt};
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
        LogFormat::Pretty => fmt.boxed(),
    };
    let (export, guard) = crate::telemetry::layer();
    let _ = tracing_subscriber::registry()
        .with(export)
        .with(fmt)
        .with(filter)
        .try_init();
    guard
}

/// Stack of every runtime worker thread. Input nesting is bounded far below what this holds
/// (`limits.rs`, ARCHITECTURE.md "Input limits"); the size is set here rather than left to
/// the runtime's default so the margin is a decision, not an accident.
pub const WORKER_STACK_BYTES: usize = 4 * 1024 * 1024;

/// Logs a panic once, as an error event inside the span that was current (so it carries the
/// request id), instead of the default hook's bare stderr line. Whoever catches the unwind
/// (the HTTP layer, a WebSocket operation) answers without logging it again.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(panic.message = %message, panic.location = %location, "panic");
    }));
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("forklift: {e}");
            return ExitCode::from(2);
        }
    };
    let _telemetry = init_tracing(config.log_format);
    install_panic_hook();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(WORKER_STACK_BYTES)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("forklift: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(code) => code,
        Err(e) => {
            let text = format!("{e:#}");
            eprintln!("forklift: {}", text.lines().next().unwrap_or("error"));
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Schema => {
            print!("{}", crate::graphql::sdl(&Registry::default())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Token {
            sub,
            tenant,
            admin,
            grants,
            ttl,
        } => {
            let secret = crate::auth::effective_secret(&config)?;
            let verifier = crate::auth::Verifier::new(&config, secret)?;
            let request = TokenRequest {
                sub,
                tenant,
                admin,
                grants,
                ttl_secs: ttl,
            };
            println!("{}", verifier.mint(&request.claims(&config))?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { action } => {
            let server = crate::db::connect(&config).await?;
            let db = crate::db::migration_connection(&config, &server).await?;
            match action {
                MigrateAction::Up => Migrator::up(&db, None).await?,
                MigrateAction::Down => Migrator::down(&db, None).await?,
                MigrateAction::Fresh => Migrator::fresh(&db).await?,
                MigrateAction::Status => {
                    let applied: Vec<String> = Migrator::get_applied_migrations(&db)
                        .await?
                        .iter()
                        .map(|m| m.name().to_string())
                        .collect();
                    for m in Migrator::migrations() {
                        let name = m.name().to_string();
                        let state = if applied.contains(&name) {
                            "applied"
                        } else {
                            "pending"
                        };
                        println!("{state:8} {name}");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bootstrap {
            tenant,
            tenant_name,
            admin_email,
        } => {
            let state = Arc::new(app::build_state(config, Registry::default()).await?);
            let options = BootstrapOptions {
                tenant_slug: tenant,
                tenant_name,
                admin_email,
                ..BootstrapOptions::default()
            };
            bootstrap::run(state, &options, |(step, outcome)| {
                println!("✔ {step:20} {outcome}");
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Fork {
            target,
            source,
            dry_run,
        } => {
            let state = Arc::new(app::build_state(config, Registry::default()).await?);
            let request = runs::ForkRequest {
                target,
                source,
                dry_run,
                actor: "cli".into(),
            };
            if dry_run {
                let checked = runs::check(&state.db, request)
                    .await
                    .map_err(AppError::into_anyhow)?;
                let outcome = runs::plan(&state, &checked)
                    .await
                    .map_err(AppError::into_anyhow)?;
                println!(
                    "{:<28} {:<28} {:>8} {:>8} {:>8}",
                    "phase", "class", "rows", "create", "matched"
                );
                for c in &outcome.counts {
                    println!(
                        "{:<28} {:<28} {:>8} {:>8} {:>8}",
                        c.phase, c.class_name, c.rows, c.created, c.matched
                    );
                }
                for s in &outcome.skipped {
                    println!("skip {} {}: {}", s.class_name, s.source_id, s.reason);
                }
                return Ok(ExitCode::SUCCESS);
            }
            let mut bar = PhaseBar::default();
            let run = bootstrap::fork_and_wait(state, request, |event| bar.show(event)).await?;
            println!("{} {}", run.status, run.id);
            Ok(if run.status == runs::status::FINISHED {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Sheets {
            what: SheetsCommand::Schema,
        } => {
            print!("{}", crate::sheets::format::json_schema());
            Ok(ExitCode::SUCCESS)
        }
        Command::Sheets {
            what: SheetsCommand::Validate { paths },
        } => {
            let files = crate::sheets::read_paths(&sheet_paths(paths))?;
            let errors = crate::sheets::validate(&files);
            for error in &errors {
                eprintln!("{error}");
            }
            if errors.is_empty() {
                println!("{} sheet(s) valid", files.len());
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("{} problem(s)", errors.len());
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Sheets {
            what:
                SheetsCommand::Import {
                    paths,
                    dry_run,
                    prune,
                },
        } => {
            let files = crate::sheets::read_paths(&sheet_paths(paths))?;
            let state = app::build_state(config, Registry::default()).await?;
            let report = crate::sheets::import(
                &state,
                &files,
                crate::sheets::ImportOptions {
                    dry_run,
                    prune,
                    vocabulary_author: true,
                },
            )
            .await
            .map_err(crate::error::AppError::into_anyhow)?;
            crate::sheets::print_report(&report);
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Bench {
            what:
                BenchCommand::Query {
                    concurrency,
                    seconds,
                },
        } => {
            crate::bench::nested_query::run(&config, &concurrency, seconds).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            what: BenchCommand::Fork { rows },
        } => {
            crate::bench::fork_floor::run(&config, &rows).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            what: BenchCommand::Fanout { subscribers, rows },
        } => {
            crate::bench::fanout::run(&config, subscribers, rows).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            what:
                BenchCommand::All {
                    rows,
                    concurrency,
                    seconds,
                    subscribers,
                },
        } => {
            let plan = crate::bench::all::Plan {
                rows,
                concurrency,
                seconds,
                subscribers,
                fanout_rows: 1000,
            };
            crate::bench::all::run(&config, &plan).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve => {
            let development = config.environment == crate::config::Environment::Development;
            let application = Application::build(config).await?;
            if bootstrap::is_empty(&application.state).await? {
                tracing::info!("empty database: bootstrapping the demo tenant");
                bootstrap::run(
                    application.state.clone(),
                    &BootstrapOptions::default(),
                    |(step, outcome)| {
                        tracing::info!(step = %step, "{outcome}");
                    },
                )
                .await?;
            }
            let addr = application.local_addr();
            println!("Forklift is listening on http://{addr}");
            println!("  GraphQL:    http://{addr}/graphql   (WebSocket: ws://{addr}/graphql/ws)");
            println!("  Playground: http://{addr}/");
            if development {
                let request = TokenRequest {
                    sub: "dev-admin@forklift.local".into(),
                    admin: true,
                    ttl_secs: 86_400,
                    ..TokenRequest::default()
                };
                if let Ok(token) = application
                    .state
                    .verifier
                    .mint(&request.claims(&application.state.config))
                {
                    println!("  Development admin token (24 h):\n    {token}");
                    println!(
                        "  Send it as `Authorization: Bearer <token>`, with `X-Tenant: demo` for tenant data."
                    );
                }
            }
            application.run_until(app::shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
