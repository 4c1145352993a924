//! The `weir` command line: run, check, bench, load and log inspection.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod plan;

/// weir: a thread-per-core, shared-nothing stream processor.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a config and print the resolved plan (exit 2 if invalid).
    Check {
        /// The config file.
        #[arg(long, default_value = "config/weir.toml")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
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
