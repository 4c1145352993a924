//! A completed checkpoint.

use serde::{Deserialize, Serialize};

/// One complete checkpoint: its manifest was written, sinks may commit its output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// The checkpoint id; ids grow by one per checkpoint.
    pub id: u64,
    /// When the manifest was written, ms since the Unix epoch.
    pub completed_at_ms: i64,
    /// From the barrier's injection to the manifest's rename, in ms.
    pub duration_ms: u64,
    /// Bytes of snapshots and manifest written.
    pub bytes: u64,
}
