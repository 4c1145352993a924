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
    },
}

fn init_tracing(debug: bool) {
    let default = if debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("weir: {e:#}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => {
            let config = match weir_config::load(&config) {
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
        Command::Check { config } => match weir_config::load(&config) {
            Ok(c) => {
                print!("{}", plan::render(&c));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
    }
}
