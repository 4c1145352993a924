//! `Manifest`: the file whose presence makes a checkpoint complete.
//!
//! A manifest is pretty-printed JSON so that an operator can read it:
//!
//! ```json
//! {
//!   "format": 1,
//!   "id": 7,
//!   "created": "2026-05-01T12:00:00.000Z",
//!   "created_unix_ms": 1777636800000,
//!   "blobs": [ { "name": "shard-0.groups-0-2047", "len": 5120, "crc32c": 305419896 } ],
//!   "meta": { "sources": { "clicks/0": 1234 } }
//! }
//! ```
//!
//! An incremental checkpoint also lists, under `refs`, blobs of earlier checkpoints that
//! it builds on (`{ "checkpoint": 5, "name": "shard-0000.rkyv", "len": …, "crc32c": … }`):
//! they are verified and loaded with it, and kept as long as it is.
//!
//! It is written last, atomically (temporary file, fsync, rename, fsync of the
//! folder), after every blob it lists is synced. So a checkpoint folder either
//! has a manifest and every blob it names was complete when it was written, or
//! it is the leftover of a crash and is ignored.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;

use super::id::CheckpointId;
use crate::error::{Error, Result};

/// File name of the manifest inside a checkpoint folder.
pub(crate) const MANIFEST_FILE: &str = "MANIFEST.json";
/// Where the manifest is written before it is renamed into place.
pub(crate) const MANIFEST_TMP: &str = "MANIFEST.json.tmp";
/// The manifest format this version writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;

/// A blob of a checkpoint: its name, length and checksum.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlobInfo {
    /// The caller's name for it (also its file name).
    pub name: String,
    /// Length in bytes.
    pub len: u64,
    /// crc32c of its bytes.
    pub crc32c: u32,
}

/// A blob of an earlier checkpoint that a checkpoint builds on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlobRef {
    /// The earlier checkpoint.
    pub checkpoint: CheckpointId,
    /// The blob's name in it.
    pub name: String,
    /// Length in bytes.
    pub len: u64,
    /// crc32c of its bytes.
    pub crc32c: u32,
}

/// The description of a complete checkpoint.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Format version of the manifest.
    pub format: u32,
    /// The checkpoint's id.
    pub id: CheckpointId,
    /// When it was committed, RFC 3339 in UTC (for people).
    pub created: String,
    /// When it was committed, in milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
    /// Its blobs, in the order they were written.
    pub blobs: Vec<BlobInfo>,
    /// Blobs of earlier checkpoints it builds on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refs: Vec<BlobRef>,
    /// What the caller stored with it (source positions, log offsets, ...).
    pub meta: serde_json::Value,
}

impl Manifest {
    /// A manifest committed now.
    pub(crate) fn new(
        id: CheckpointId,
        blobs: Vec<BlobInfo>,
        refs: Vec<BlobRef>,
        meta: serde_json::Value,
    ) -> Self {
        let created_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Manifest {
            format: MANIFEST_FORMAT,
            id,
            created: rfc3339_utc(created_unix_ms),
            created_unix_ms,
            blobs,
            refs,
            meta,
        }
    }

    /// The caller's metadata as `T`.
    pub fn meta_as<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.meta.clone()).map_err(|source| Error::Meta { source })
    }

    /// The blob called `name`.
    #[must_use]
    pub fn blob(&self, name: &str) -> Option<&BlobInfo> {
        self.blobs.iter().find(|b| b.name == name)
    }

    /// Total bytes of the blobs.
    #[must_use]
    pub fn total_bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.len).sum()
    }

    /// Reads the manifest of the checkpoint folder `dir`.
    pub(crate) fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = std::fs::read(&path).map_err(Error::io("read", &path))?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Manifest { path, source })
    }
}

/// Formats milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn rfc3339_utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        unix_ms % 1000
    )
}

/// Year, month and day of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_formatted_in_utc() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339_utc(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
    }
}
