//! `LogOffset`: where a record lives in the log.

use std::fmt;

/// A logical, monotonic position in a log: the byte position across all
/// segments, counting every segment at its full size.
///
/// Offsets are not dense: each segment starts with an 8-byte header, frames are
/// padded to 16 bytes, and the unused tail of a full segment is skipped. Compare
/// offsets and hand them back to the log; do not do arithmetic on them.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct LogOffset(u64);

impl LogOffset {
    /// The start of a log that was never truncated.
    pub const ZERO: LogOffset = LogOffset(0);

    /// Wraps a raw offset (one that came from this log, e.g. via a checkpoint).
    #[must_use]
    pub const fn new(raw: u64) -> Self {
        LogOffset(raw)
    }

    /// The raw value, for storing it elsewhere.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// `self + bytes`.
    pub(crate) const fn add(self, bytes: u64) -> Self {
        LogOffset(self.0 + bytes)
    }
}

impl fmt::Display for LogOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
