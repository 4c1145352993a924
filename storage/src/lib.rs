//! weir-storage: the per-shard append log and the checkpoint store.
//!
//! **What it is.** Two durable structures a shard needs, as a leaf crate with
//! no knowledge of events, windows or executors:
//!
//! * [`log`]: an append log of fixed-size, memory-mapped segment files. Records
//!   are framed with a length and a crc32c, their payloads are 16-byte aligned
//!   so that an rkyv archive can be read in place, offsets are logical and
//!   monotonic, recovery cuts a torn tail, and group commit runs its syncs off
//!   the caller's thread ([`SyncJob`]).
//! * [`checkpoint`]: a store of checkpoints, each a folder of blobs plus a JSON
//!   manifest written atomically, with verified loading that falls back to the
//!   previous checkpoint when a blob is corrupt.
//!
//! **What it is not.** Not a key-value store, not a runtime: it spawns no
//! executor, routes nothing and decides nothing about barriers. It blocks in
//! a few documented places (opening, syncing, committing a checkpoint); the
//! caller runs those on a blocking thread. One `Log` per folder, owned by one
//! thread.
//!
//! **Memory maps.** Segment files are mapped shared. Do not truncate or rewrite
//! a segment file while a `Log` has it open: the next access to a truncated
//! page raises SIGBUS. The log locks its folder against other `Log`s.
//!
//! # Example
//!
//! ```
//! use weir_storage::log::{FsyncPolicy, Log, LogOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let tmp = tempfile::tempdir()?;
//! # let dir = tmp.path().join("shard-0");
//! let (mut log, report) = Log::open(&dir, LogOptions::new(1 << 20, FsyncPolicy::Group))?;
//! assert_eq!(report.records, 0);
//!
//! let first = log.append(b"batch 1")?;
//! log.append(b"batch 2")?;
//!
//! // Group commit: run the job on a blocking thread, then report it.
//! if let Some(job) = log.sync_job()? {
//!     let durable = std::thread::spawn(move || job.run()).join().expect("sync thread")?;
//!     log.mark_durable(durable)?;
//! }
//! assert!(log.is_durable(first));
//!
//! let payloads: Vec<&[u8]> = log
//!     .read_from(first)
//!     .map(|r| r.map(|record| record.payload))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(payloads, [b"batch 1".as_slice(), b"batch 2".as_slice()]);
//! # Ok(())
//! # }
//! ```

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod checkpoint;
mod error;
mod fsutil;
pub mod log;

pub use checkpoint::{CheckpointId, CheckpointStore, CheckpointWriter, LoadedCheckpoint, Manifest};
pub use error::{Error, Result};
pub use log::{FsyncPolicy, Log, LogOffset, LogOptions, Record, RecoveryReport, SyncJob};

#[cfg(test)]
mod tests {
    /// What the runtime moves between threads must be movable.
    fn assert_send_static<T: Send + 'static>() {}

    #[test]
    fn sync_jobs_logs_and_checkpoint_writers_can_move_to_other_threads() {
        assert_send_static::<crate::SyncJob>();
        assert_send_static::<crate::Log>();
        assert_send_static::<crate::CheckpointWriter>();
        assert_send_static::<crate::Error>();
    }
}
