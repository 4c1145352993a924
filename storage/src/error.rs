//! The one error type of weir-storage.
//!
//! Every variant carries the facts an operator needs (the path, the offset, the
//! limit that was crossed) as fields, so that callers can match on them and the
//! `Display` text names the file and what is wrong with it.

use std::io;
use std::path::PathBuf;

use crate::checkpoint::CheckpointId;
use crate::log::LogOffset;

/// Results of weir-storage.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in the append log and the checkpoint store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call on a file or folder failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done (`"open"`, `"fsync"`, `"msync"`, ...).
        op: &'static str,
        /// The file or folder concerned.
        path: PathBuf,
        /// The operating system's answer.
        #[source]
        source: io::Error,
    },

    /// A record is larger than the largest payload a segment can hold.
    #[error("record of {len} bytes exceeds the maximum of {max} bytes per record")]
    RecordTooLarge {
        /// Length of the refused payload.
        len: usize,
        /// Largest payload a segment of the configured size holds.
        max: usize,
    },

    /// An earlier sync failed, so what the page cache holds can no longer be
    /// trusted to reach the disk. The log refuses all further work; reopen it
    /// (which runs recovery) to go on.
    #[error("the log is poisoned by an earlier failed sync; reopen it to recover")]
    Poisoned,

    /// `segment_bytes` is outside what the log supports.
    #[error(
        "segment_bytes = {segment_bytes}: must be a multiple of 4096 between 4096 and 4294967296"
    )]
    InvalidSegmentBytes {
        /// The refused value.
        segment_bytes: u64,
    },

    /// A `.seg` file whose name is not a 20-digit base offset.
    #[error("{path}: not a segment name (expected 20 digits and .seg)")]
    SegmentName {
        /// The offending file.
        path: PathBuf,
    },

    /// A segment file whose length the log never creates.
    #[error("{path}: segment length {len} is not a multiple of 4096 of at least 4096")]
    SegmentLength {
        /// The offending file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
    },

    /// A segment file that does not start with the log's magic bytes.
    #[error("{path}: not a weir log segment (bad header)")]
    SegmentHeader {
        /// The offending file.
        path: PathBuf,
    },

    /// Segment files do not follow one another: one is missing or misnamed.
    #[error("{path}: segment starts at offset {found}, expected {expected} (a segment is missing)")]
    SegmentGap {
        /// The first segment after the gap.
        path: PathBuf,
        /// Where the previous segment ends.
        expected: LogOffset,
        /// Where this one starts.
        found: LogOffset,
    },

    /// Another `Log` (in this or another process) holds the folder.
    #[error("{dir}: the log is already open elsewhere")]
    Locked {
        /// The log folder.
        dir: PathBuf,
    },

    /// `read_from` was given an offset that is not where a record starts.
    #[error("offset {offset} is not a record boundary")]
    NotRecordBoundary {
        /// The refused offset.
        offset: LogOffset,
    },

    /// An offset past the end of the log.
    #[error("offset {offset} is beyond the end of the log ({end})")]
    OffsetBeyondEnd {
        /// The refused offset.
        offset: LogOffset,
        /// The log's end offset.
        end: LogOffset,
    },

    /// An offset in a segment that `truncate_before` already deleted.
    #[error("offset {offset} was truncated; the log now starts at {start}")]
    OffsetTruncated {
        /// The refused offset.
        offset: LogOffset,
        /// The first offset still held.
        start: LogOffset,
    },

    /// A record whose checksum or length is wrong where the log expected a
    /// valid one (the file changed under the log, or the disk rotted).
    #[error("{path}: corrupt record at offset {offset}")]
    CorruptRecord {
        /// The segment file.
        path: PathBuf,
        /// The record's offset.
        offset: LogOffset,
    },

    /// `mark_durable` was told of an offset the log never reached.
    #[error("cannot mark offset {offset} durable: the log ends at {end}")]
    DurableBeyondEnd {
        /// The refused offset.
        offset: LogOffset,
        /// The log's end offset.
        end: LogOffset,
    },

    /// The background thread preparing the next segment panicked.
    #[error("the thread preparing segment {base} panicked")]
    PrepareThread {
        /// Base offset of the segment it was preparing.
        base: LogOffset,
    },

    /// The background thread taking truncated segments off the disk panicked.
    #[error("the thread retiring truncated log segments panicked")]
    RetireThread,

    /// An fsync policy string other than `never`, `group` or `always`.
    #[error("unknown fsync policy {value:?}: expected \"never\", \"group\" or \"always\"")]
    FsyncPolicy {
        /// The refused string.
        value: String,
    },

    /// `retain` of a checkpoint store must keep at least one checkpoint.
    #[error("retain = {retain}: a checkpoint store must retain at least 1 checkpoint")]
    InvalidRetain {
        /// The refused value.
        retain: usize,
    },

    /// A blob name that is not a plain file name.
    #[error(
        "blob name {name:?}: use 1 to 200 characters of A-Z a-z 0-9 . _ -, not starting with '.'"
    )]
    BlobName {
        /// The refused name.
        name: String,
    },

    /// The same blob name was put twice into one checkpoint.
    #[error("blob {name:?} was already written in this checkpoint")]
    DuplicateBlob {
        /// The repeated name.
        name: String,
    },

    /// Checkpoint ids must grow.
    #[error("checkpoint {id} is not newer than the latest complete checkpoint {latest}")]
    CheckpointNotMonotonic {
        /// The refused id.
        id: CheckpointId,
        /// The newest complete checkpoint on disk.
        latest: CheckpointId,
    },

    /// A checkpoint can build only on earlier ones.
    #[error("checkpoint {id} cannot build on checkpoint {referenced}, which is not earlier")]
    RefNotEarlier {
        /// The checkpoint being written.
        id: CheckpointId,
        /// The checkpoint it named.
        referenced: CheckpointId,
    },

    /// A manifest that is not valid JSON of the expected shape.
    #[error("{path}: bad manifest: {source}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What serde_json found.
        #[source]
        source: serde_json::Error,
    },

    /// The caller's checkpoint metadata could not be turned into JSON.
    #[error("checkpoint metadata is not serialisable: {source}")]
    Meta {
        /// What serde_json found.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// Wraps an I/O error with the operation and the path.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}
