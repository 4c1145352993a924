//! Window state: sizes per shard, and the open windows themselves.

use serde::{Deserialize, Serialize};

/// The size of every shard's state and log, as answered by `GET /state`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSummary {
    /// Every shard, in shard order.
    pub shards: Vec<ShardState>,
    /// Sums over shards (its `shard` field is the number of shards).
    pub totals: ShardState,
}

impl StateSummary {
    /// A summary whose totals are the sums of `shards`.
    pub fn from_shards(shards: Vec<ShardState>) -> Self {
        let totals = shards.iter().fold(
            ShardState {
                shard: shards.len(),
                ..ShardState::default()
            },
            |t, s| ShardState {
                shard: t.shard,
                keys: t.keys + s.keys,
                windows: t.windows + s.windows,
                bytes: t.bytes + s.bytes,
                log_segments: t.log_segments + s.log_segments,
                log_bytes: t.log_bytes + s.log_bytes,
            },
        );
        Self { shards, totals }
    }
}

/// One shard's state and log size, over all its pipelines.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardState {
    /// The shard.
    pub shard: usize,
    /// Distinct keys with state.
    pub keys: u64,
    /// Open (key, window) states.
    pub windows: u64,
    /// Approximate bytes of memory held by window state.
    pub bytes: u64,
    /// Segment files of its append log.
    pub log_segments: u64,
    /// Bytes of its append log on disk.
    pub log_bytes: u64,
}

/// A state scan: `GET /state?pipeline=ID&prefix=P&limit=N`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateQuery {
    /// The pipeline to scan.
    pub pipeline: String,
    /// Keys that start with this (empty: every key).
    pub prefix: String,
    /// At most this many windows (1..=10000).
    pub limit: usize,
}

/// One open window of one key and its accumulators so far.
///
/// For sliding windows these are panes (`slide_ms` long) that are combined when a window
/// fires; for sessions, the session so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowState {
    /// The pipeline.
    pub pipeline: String,
    /// The shard that owns the key.
    pub shard: usize,
    /// The key.
    pub key: String,
    /// Start of the window, ms since the epoch (inclusive).
    pub window_start: i64,
    /// End of the window, ms since the epoch (exclusive).
    pub window_end: i64,
    /// Events so far.
    pub count: u64,
    /// Sum of values so far.
    pub sum: f64,
    /// Smallest value so far.
    pub min: f64,
    /// Largest value so far.
    pub max: f64,
    /// Whether the window already fired and is kept for allowed lateness (its end is at
    /// or below the owning operator's watermark).
    pub fired: bool,
}

/// How many windows are open in one pipeline on one shard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowCount {
    /// The pipeline.
    pub pipeline: String,
    /// The shard.
    pub shard: usize,
    /// Open (key, window) states.
    pub open: u64,
}

/// Open windows, as answered by `GET /windows`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowsReport {
    /// Open windows per pipeline and shard (only the asked pipeline when one is).
    pub open: Vec<WindowCount>,
    /// The windows themselves, ordered by pipeline, key and start; empty unless listed.
    pub windows: Vec<WindowState>,
    /// Whether more windows matched than were listed.
    pub truncated: bool,
}
