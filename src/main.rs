//! The `weir` command line: run, check, bench, load and log inspection.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod admin_backend;
mod bench;
mod load;
mod log_inspect;
mod plan;
mod run;

/// weir: a thread-per-core, shared-nothing stream processor.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the engine.
    Run {
        /// The config file.
        #[arg(long, default_value = "config/weir.toml")]
        config: PathBuf,
        #[command(flatten)]
        overrides: OverrideArgs,
    },
    /// In-process throughput benchmark: generator → pipeline → blackhole.
    Bench(bench::BenchArgs),
    /// Load generator: drive a running engine's TCP source, report events/s and ack latency.
    Load(load::LoadArgs),
    /// Append-log tools.
    Log {
        #[command(subcommand)]
        command: log_inspect::LogCommand,
    },
    /// Validate a config and print the resolved plan (exit 2 if invalid).
    Check {
        /// The config file.
        #[arg(long, default_value = "config/weir.toml")]
        config: PathBuf,
        #[command(flatten)]
        overrides: OverrideArgs,
    },
}

/// Keys of the config file the command line sets, so that one file serves every
/// instance of an application.
#[derive(Debug, clap::Args)]
struct OverrideArgs {
    /// This instance's name (`instance`; default the app name), shown by /status.
    #[arg(long)]
    instance: Option<String>,
    /// Overrides `data_dir`.
    #[arg(long)]
    data_dir: Option<String>,
    /// Overrides `[admin] http`.
    #[arg(long)]
    http: Option<String>,
    /// Overrides `[admin] metrics`.
    #[arg(long)]
    metrics: Option<String>,
}

impl OverrideArgs {
    fn overrides(&self) -> weir_config::Overrides {
        weir_config::Overrides {
            instance: self.instance.clone(),
            data_dir: self.data_dir.clone(),
            http: self.http.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

fn init_tracing(debug: bool) {
    let default = if debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("weir: {e:#}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config, overrides } => {
            let loaded = weir_config::load_with(&config, &overrides.overrides())
                .and_then(|c| weir_config::check_host(&c, &config).map(|()| c));
            let config = match loaded {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            init_tracing(config.debug);
            match run::run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Command::Bench(args) => {
            init_tracing(false);
            match bench::bench(&args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Command::Load(args) => match load::load(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
        Command::Log { command } => match log_inspect::run(&command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
        Command::Check { config, overrides } => {
            match weir_config::load_with(&config, &overrides.overrides())
                .and_then(|c| weir_config::check_host(&c, &config).map(|()| c))
            {
                Ok(c) => {
                    print!("{}", plan::render(&c));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
