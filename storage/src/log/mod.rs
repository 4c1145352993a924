//! The per-shard append log: fixed-size, memory-mapped segment files.
//!
//! # Format
//!
//! A log is a folder of segment files, each named by its base offset
//! (`00000000000000000000.seg`, `00000000000000065536.seg`, ...), all allocated
//! at their full size. A segment holds an 8-byte header and then frames
//! `[len u32 LE][crc32c u32 LE][payload][padding]`, laid out so that every
//! payload starts 16-byte aligned in the mapping (see `frame.rs`). Offsets
//! ([`LogOffset`]) are logical byte positions across segments: monotonic, not
//! dense. A segment is full when the next frame does not fit; its zeroed tail
//! is skipped and the writer moves on to the next segment. A record larger than
//! a segment can hold is refused with [`Error::RecordTooLarge`](crate::Error::RecordTooLarge).
//!
//! # Appending without page faults
//!
//! Writing into a fresh file mapping page by page costs a page fault per 4 KiB
//! (plus block allocation in the file system), which at a gigabyte per second
//! is a quarter of a million faults. The log moves that work off the append
//! path: each new segment is allocated with `fallocate` (so a full disk is an
//! error at allocation time, not a SIGBUS in the middle of a `memcpy`), mapped
//! with `MAP_POPULATE`, and then pre-faulted writable by storing to one byte of
//! every page. All of that happens on a helper thread for the segment after
//! the active one, while the active one fills (see `prepare.rs`), so that a
//! rollover only swaps segments. Pages touched this way are dirty zeros; the
//! kernel writes them back in the background like any other dirty page.
//!
//! # Durability
//!
//! [`Log::append`] only copies into the page cache. What reaches the disk is
//! decided by [`FsyncPolicy`] and by the caller running [`SyncJob`]s off its
//! own thread (group commit; see `sync.rs`):
//!
//! * `never`: no sync ever; `durable_offset() == end_offset()`.
//! * `group`: take a [`SyncJob`] whenever none is running, run it on a blocking
//!   thread, report it with [`Log::mark_durable`]; acknowledge records whose
//!   offset is below [`Log::durable_offset`].
//! * `always`: the same, one job per append, waited for before acknowledging.
//!
//! A failed sync poisons the log: every later call returns
//! [`Error::Poisoned`](crate::Error::Poisoned).
//!
//! # Recovery
//!
//! [`Log::open`] on an existing folder checks the segment names and their
//! sequence, walks every frame verifying checksums, and cuts the log at the
//! first torn or corrupt frame: the bytes after it are zeroed, later segments
//! deleted, and the result synced. See `recovery.rs` for why this never loses
//! a record a completed sync covered.
//!
//! # What this is not
//!
//! Not a database: no index, no compaction, no concurrent writers, no
//! replication. Readers see a record by offset or by scanning forward; segments
//! go away whole, with [`Log::truncate_before`].

#[allow(unsafe_code)]
mod mapping;

mod frame;
mod inspect;
mod lock;
mod offset;
mod options;
mod prepare;
mod reader;
mod recovery;
mod retire;
mod segment;
mod sync;
mod writer;

pub use inspect::{LogInspection, SegmentInspection, SegmentIssue, inspect};
pub use offset::LogOffset;
pub use options::{FsyncPolicy, LogOptions, MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES};
pub use reader::{LogReader, Record};
pub use recovery::RecoveryReport;
pub use sync::SyncJob;
pub use writer::Log;
