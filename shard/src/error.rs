//! Runtime errors.

use std::path::PathBuf;

/// What can stop the runtime from starting or running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The locked-memory limit is too low for io_uring.
    #[error(
        "the locked-memory limit (RLIMIT_MEMLOCK) is {available_kib} KiB, but {shards} shard(s) need \
         at least {required_kib} KiB for io_uring. Raise it: `ulimit -l unlimited` (as root) in the \
         shell that starts weir, `LimitMEMLOCK=infinity` in the systemd unit, or a `memlock` line in \
         /etc/security/limits.conf"
    )]
    MemlockTooLow {
        /// Shards to start.
        shards: usize,
        /// Locked memory needed.
        required_kib: u64,
        /// The current limit.
        available_kib: u64,
    },
    /// A core of the core map does not exist on this machine.
    #[error("runtime.cores lists core {core}, but this machine has cores 0..{available}")]
    NoSuchCore {
        /// The core asked for.
        core: usize,
        /// Number of cores available.
        available: usize,
    },
    /// A shard executor could not be started.
    #[error("cannot start shard {shard}: {reason}")]
    Executor {
        /// The shard.
        shard: crate::message::ShardId,
        /// What glommio said.
        reason: String,
    },
    /// A source could not be opened.
    #[error("pipeline {pipeline}: source: {reason}")]
    Source {
        /// The pipeline.
        pipeline: String,
        /// What went wrong.
        reason: String,
    },
    /// A file or folder could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The checkpoint to restore cannot be used.
    #[error("checkpoint: {reason}")]
    Checkpoint {
        /// What is wrong.
        reason: String,
    },
    /// Another process holds a folder this engine must own alone.
    #[error(
        "{} is in use by another weir process{}: {}",
        folder.display(),
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default(),
        match *what { "data_dir" => "two engines must not share a data_dir", _ => "two engines must not write one sink file" }
    )]
    Locked {
        /// The folder.
        folder: PathBuf,
        /// `"data_dir"` or `"sink"` (the staging folder of an exactly-once sink file).
        what: &'static str,
        /// The pid the holder wrote into the lock file, when it could be read.
        holder: Option<u32>,
    },
    /// A source, sink or listener could not start; `key` is the config key it comes
    /// from (`pipelines[0].source.bind`).
    #[error("{key}: {reason}")]
    Start {
        /// The config key.
        key: String,
        /// What went wrong.
        reason: String,
    },
    /// The shards did not drain and stop within `processing.shutdown_timeout`.
    #[error(
        "the shards did not stop within {}s of the stop request (processing.shutdown_timeout); \
         abandoned them: the last complete checkpoint is intact and the next start resumes from it",
        waited.as_secs_f64()
    )]
    ShutdownTimeout {
        /// How long it waited.
        waited: std::time::Duration,
    },
    /// A shard stopped with an error.
    #[error("shard {shard} failed: {reason}")]
    Shard {
        /// The shard.
        shard: crate::message::ShardId,
        /// What went wrong.
        reason: String,
    },
}

/// The runtime's result.
pub type Result<T> = std::result::Result<T, Error>;
