//! `weir log inspect DIR`: a read-only report on an append-log folder.

use std::path::PathBuf;

use clap::Subcommand;

/// `weir log` subcommands.
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Report on a log folder (segments, records, where recovery would cut) without
    /// changing it; safe on the log of a running engine.
    Inspect {
        /// The log folder, e.g. data/log/<pipeline>/shard-0.
        dir: PathBuf,
    },
}

/// Runs a `weir log` subcommand.
pub fn run(command: &LogCommand) -> anyhow::Result<()> {
    match command {
        LogCommand::Inspect { dir } => {
            // The storage error names the file and the OS error already.
            let report = weir_storage::log::inspect(dir)
                .map_err(|e| anyhow::anyhow!("cannot inspect {}: {e}", dir.display()))?;
            print!("{report}");
            Ok(())
        }
    }
}
