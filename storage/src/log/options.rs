//! `LogOptions` and `FsyncPolicy`: how a log is sized and when it reaches the disk.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The largest segment the log creates: a frame length is a `u32`.
pub const MAX_SEGMENT_BYTES: u64 = 1 << 32;

/// The smallest segment, and the unit segment sizes are a multiple of (a page).
pub const MIN_SEGMENT_BYTES: u64 = 4096;

/// When appended records are forced to the disk.
///
/// The log itself never blocks on a sync: it hands out [`SyncJob`](super::SyncJob)s
/// and the caller decides where and when they run. The policy says what the log
/// promises about [`durable_offset`](super::Log::durable_offset).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// Nothing is ever synced; the kernel writes pages back when it likes.
    /// `durable_offset()` equals `end_offset()`: the log makes no promise beyond
    /// the page cache, which survives a process crash but not a power loss.
    Never,
    /// Group commit: appends accumulate and one sync job covers all of them.
    /// A caller acknowledges a record once `durable_offset()` has passed it.
    #[default]
    Group,
    /// Same mechanism as `Group`, but the caller is expected to run one sync job
    /// per append and wait for it before acknowledging that record.
    Always,
}

impl FsyncPolicy {
    /// The configuration string: `"never"`, `"group"` or `"always"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            FsyncPolicy::Never => "never",
            FsyncPolicy::Group => "group",
            FsyncPolicy::Always => "always",
        }
    }

    /// Whether this policy ever syncs anything.
    #[must_use]
    pub const fn syncs(self) -> bool {
        !matches!(self, FsyncPolicy::Never)
    }
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FsyncPolicy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "never" => Ok(FsyncPolicy::Never),
            "group" => Ok(FsyncPolicy::Group),
            "always" => Ok(FsyncPolicy::Always),
            other => Err(Error::FsyncPolicy {
                value: other.to_owned(),
            }),
        }
    }
}

/// How a log is laid out and synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOptions {
    /// Size of every new segment file, a multiple of 4096 in
    /// `4096..=4294967296`. Existing segments keep the size they were made with.
    pub segment_bytes: u64,
    /// When appended records reach the disk.
    pub fsync: FsyncPolicy,
    /// Prepare the next segment (allocate, map, pre-fault) on a background
    /// thread while the current one fills, so that rolling over is a pointer
    /// swap. When false the next segment is prepared inline at rollover.
    pub prepare_ahead: bool,
    /// How many segments retired by `truncate_before` are kept (renamed,
    /// still mapped) to be recycled as new segments instead of deleted.
    /// Recycling skips the kernel's page allocation, zeroing and faulting of a
    /// fresh file, and the unlink of an old one; each spare keeps
    /// `segment_bytes` of disk and page cache. 0 deletes retired segments.
    pub recycle_segments: usize,
    /// Make `recycle_segments` spares when the log opens, so that even the
    /// first segments after a start are recycled ones. Costs that much disk
    /// and time at open; worth it for a log that turns over its segments
    /// under steady load, where making a fresh segment (new page cache, new
    /// blocks to convert on the first sync) slows the group commits around it.
    pub preallocate_spares: bool,
}

impl LogOptions {
    /// Options with the given size and policy, preparing segments ahead,
    /// recycling up to 2 retired segments and making no spares at open.
    #[must_use]
    pub const fn new(segment_bytes: u64, fsync: FsyncPolicy) -> Self {
        LogOptions {
            segment_bytes,
            fsync,
            prepare_ahead: true,
            recycle_segments: 2,
            preallocate_spares: false,
        }
    }

    /// Checks `segment_bytes`.
    pub(crate) fn validate(&self) -> Result<()> {
        if valid_segment_len(self.segment_bytes) {
            Ok(())
        } else {
            Err(Error::InvalidSegmentBytes {
                segment_bytes: self.segment_bytes,
            })
        }
    }
}

impl Default for LogOptions {
    /// 64 MiB segments, group commit, prepared ahead, 2 recycled.
    fn default() -> Self {
        LogOptions::new(64 << 20, FsyncPolicy::Group)
    }
}

/// Whether a segment of `len` bytes is one the log makes.
pub(crate) const fn valid_segment_len(len: u64) -> bool {
    len >= MIN_SEGMENT_BYTES && len <= MAX_SEGMENT_BYTES && len.is_multiple_of(MIN_SEGMENT_BYTES)
}
