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
        shard: usize,
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
    /// A shard stopped with an error.
    #[error("shard {shard} failed: {reason}")]
    Shard {
        /// The shard.
        shard: usize,
        /// What went wrong.
        reason: String,
    },
}

/// The runtime's result.
pub type Result<T> = std::result::Result<T, Error>;
