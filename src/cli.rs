//! The command line: `forklift serve | migrate | schema | token | fork | bootstrap | sheets`: the
//! commands and their dispatch. The settings each reads are in [`settings`]. The benchmarks are
//! a binary of their own (`bench/`, `forklift-bench`).

use std::{process::ExitCode, sync::Arc};

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::{
    app::{self, Application},
    auth::TokenRequest,
    bootstrap::{self, BootstrapOptions},
    config::{Config, LogFormat},
    error::AppError,
    fork::runs,
    registry::Registry,
};

mod export;
mod migrate;
mod phase_bar;
mod settings;
mod sheet_paths;
mod upgrade_report;

use phase_bar::PhaseBar;
use settings::Settings;
pub use settings::{
    DatabaseSettings, ForkSettings, LogSettings, ServerSettings, StackSettings, TokenSettings,
};
use sheet_paths::{sheet_paths, validation_batch};

/// Forklift: author one template, fork it into every tenant.
///
/// Every setting comes from the environment (see `.env.example`); each command's `--help` lists
/// the variables it reads, and a flag of the same name overrides its variable.
#[derive(Parser, Debug)]
#[command(name = "forklift", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub logs: LogSettings,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Serve the GraphQL API (migrates, and bootstraps a demo on an empty database).
    Serve {
        #[command(flatten)]
        server: ServerSettings,
        #[command(flatten)]
        stack: StackSettings,
    },
    /// Apply or inspect migrations.
    Migrate {
        /// `up` applies pending migrations, `down` reverts them all, `fresh` drops every table
        /// and re-applies, `status` lists each as applied or pending.
        #[arg(value_enum, default_value = "up")]
        action: MigrateAction,
        #[command(flatten)]
        database: DatabaseSettings,
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
        #[command(flatten)]
        tokens: TokenSettings,
    },
    /// Fork a source tenant (default: the template) into a target tenant.
    Fork {
        /// The target tenant: slug or id.
        #[arg(long)]
        target: String,
        /// The source tenant: slug or id (default: the template).
        #[arg(long)]
        source: Option<String>,
        /// Print the plan and write nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        stack: StackSettings,
    },
    /// Show what changed since a tenant was forked or last upgraded, per class: rows added,
    /// changed or removed in the template, changed or deleted by the tenant, and conflicts
    /// (the same field changed on both sides).
    Diff {
        /// The tenant: slug or id.
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        stack: StackSettings,
    },
    /// Export a tenant to a tar archive: its configuration as provisioning sheets (importable
    /// as a template) and its runtime rows as JSON lines (the archive `GET
    /// /tenants/{id}/export` streams). Progress goes to standard error.
    Export {
        /// The tenant: slug or id.
        #[arg(long)]
        tenant: String,
        /// The archive to write.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        stack: StackSettings,
    },
    /// Upgrade tenants to the template's latest version and print a report per tenant: rows
    /// updated, created, removed, conflicts (left as the tenant has them), and failures. One
    /// tenant's failure does not stop the others; the exit status says whether all succeeded.
    Upgrade {
        /// Every tenant forked from the template.
        #[arg(long, required_unless_present = "tenant")]
        all: bool,
        /// Only this tenant (slug or id); repeatable.
        #[arg(long, conflicts_with = "all")]
        tenant: Vec<String>,
        /// Plan each upgrade and report; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// How many tenants upgrade at once.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        concurrency: u16,
        /// Remove copies whose source the template removed, where the tenant left them untouched.
        #[arg(long)]
        remove_deleted: bool,
        /// Re-create copies the tenant deleted.
        #[arg(long)]
        restore_deleted: bool,
        #[command(flatten)]
        stack: StackSettings,
    },
    /// Provisioning sheets: validate, import, or print their JSON Schema.
    Sheets {
        #[command(subcommand)]
        what: SheetsCommand,
    },
    /// Bring an empty database to a switched-on stack (idempotent).
    Bootstrap {
        /// The first tenant's slug.
        #[arg(long, default_value = "demo")]
        tenant: String,
        /// The first tenant's name.
        #[arg(long, default_value = "Demo")]
        tenant_name: String,
        /// Seed this e-mail address as the tenant's first staff administrator.
        #[arg(long)]
        admin_email: Option<String>,
        #[command(flatten)]
        stack: StackSettings,
    },
}

impl Command {
    /// The settings given on the command line (or by their variables) for this command.
    fn settings(&self) -> Vec<(&'static str, Option<&String>)> {
        match self {
            Command::Serve { server, stack } => {
                let mut pairs = server.pairs();
                pairs.extend(stack.pairs());
                pairs
            }
            Command::Migrate { database, .. } => database.pairs(),
            Command::Token { tokens, .. } => tokens.pairs(),
            Command::Fork { stack, .. }
            | Command::Upgrade { stack, .. }
            | Command::Diff { stack, .. }
            | Command::Export { stack, .. }
            | Command::Bootstrap { stack, .. } => stack.pairs(),
            Command::Sheets {
                what: SheetsCommand::Import { stack, .. },
            } => stack.pairs(),
            Command::Schema | Command::Sheets { .. } => Vec::new(),
        }
    }
}

/// What `sheets` does.
#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum SheetsCommand {
    /// Check sheets without a database. A directory is checked as a whole; a single file is
    /// checked against the other sheets of its directory (its vocabulary), and only its own
    /// problems are reported.
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
        #[command(flatten)]
        stack: StackSettings,
    },
    /// Print the JSON Schema of the sheet format (what `sheets/sheet.schema.json` holds).
    Schema,
}

/// `migrate` actions.
#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum MigrateAction {
    /// Apply pending migrations.
    Up,
    /// Revert every migration.
    Down,
    /// List each migration as applied or pending.
    Status,
    /// Drop every table and apply every migration.
    Fresh,
}

/// True when log lines may carry colour codes: stderr is a terminal and `NO_COLOR` is unset.
fn colours() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn init_tracing(format: LogFormat, filter: Option<&str>) -> crate::telemetry::Guard {
    use tracing_subscriber::{Layer, layer::SubscriberExt, util::SubscriberInitExt};
    let filter = filter
        .filter(|f| !f.trim().is_empty())
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colours());
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
/// (`http/limits.rs`, ARCHITECTURE.md "Input limits"); the size is set here rather than left to
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
    let given: std::collections::HashMap<&'static str, String> = cli
        .command
        .settings()
        .into_iter()
        .chain(cli.logs.pairs())
        .filter_map(|(name, value)| value.map(|v| (name, v.clone())))
        .collect();
    let lookup = |name: &str| {
        given
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
    };
    let config = match Config::from_lookup(&lookup) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("forklift: {e}");
            return ExitCode::from(2);
        }
    };
    let _telemetry = init_tracing(config.log_format, cli.logs.log_filter.as_deref());
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
            ..
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
        Command::Migrate { action, .. } => Ok(migrate::run(action, &config).await),
        Command::Bootstrap {
            tenant,
            tenant_name,
            admin_email,
            ..
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
            ..
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
        Command::Export { tenant, out, .. } => {
            let state = app::build_state(config, Registry::default()).await?;
            export::run(&state, &tenant, &out).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Diff { tenant, .. } => {
            let state = app::build_state(config, Registry::default()).await?;
            upgrade_report::print_diff(&state, &tenant).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Upgrade {
            tenant,
            dry_run,
            concurrency,
            remove_deleted,
            restore_deleted,
            ..
        } => {
            let state = Arc::new(app::build_state(config, Registry::default()).await?);
            let options = crate::fork::fleet::FleetOptions {
                dry_run,
                concurrency: usize::from(concurrency),
                restore_deleted,
                remove_deleted,
                actor: "cli".into(),
                only: tenant,
                start_after: None,
            };
            let ok = upgrade_report::run(state, &options).await?;
            Ok(if ok {
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
            let (files, context) = validation_batch(&sheet_paths(paths))?;
            let mut batch = files.clone();
            batch.extend(context);
            let named: std::collections::HashSet<&str> =
                files.iter().map(|f| f.name.as_str()).collect();
            // Only the named sheets' problems: the others are there for their vocabulary.
            let errors: Vec<_> = crate::sheets::validate(&batch)
                .into_iter()
                .filter(|e| named.contains(e.file.as_str()))
                .collect();
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
                    ..
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
        Command::Serve { .. } => {
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
