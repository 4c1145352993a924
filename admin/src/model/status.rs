//! The engine at a glance, as answered by `GET /status`.

use serde::{Deserialize, Serialize};

use super::CheckpointInfo;

/// Version, uptime, shards, totals and the last checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The `weir` version.
    pub version: String,
    /// `app_name` from the config.
    pub app_name: String,
    /// This instance of the application (`--instance`, default the app name).
    #[serde(default)]
    pub instance: String,
    /// Seconds since the engine started.
    pub uptime_s: f64,
    /// Every shard, in shard order.
    pub shards: Vec<ShardStatus>,
    /// Sums over pipelines and shards.
    pub totals: Totals,
    /// The latest complete checkpoint, if any.
    pub last_checkpoint: Option<CheckpointInfo>,
}

/// One shard at a glance.
///
/// `busy_s + idle_s + backpressured_s` is the shard thread's wall time since start, so
/// the shard whose busy share is highest is the bottleneck.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardStatus {
    /// The shard number, from 0.
    pub shard: usize,
    /// The core it is pinned to; `null` when unpinned.
    pub core: Option<usize>,
    /// Events this shard applied to window state (all pipelines).
    pub events: u64,
    /// Events waiting in this shard's inboxes.
    pub queue_depth: u64,
    /// Seconds spent doing work.
    pub busy_s: f64,
    /// Seconds spent with nothing to do.
    pub idle_s: f64,
    /// Seconds spent blocked on a full outgoing queue.
    pub backpressured_s: f64,
}

/// Sums over every pipeline and shard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Pipelines configured.
    pub pipelines: usize,
    /// Events applied to window state.
    pub events_processed: u64,
    /// Window results emitted (all revisions).
    pub results_emitted: u64,
    /// Late events that updated a fired window.
    pub events_late: u64,
    /// Events dropped as too late.
    pub events_dropped_late: u64,
    /// Invalid lines.
    pub events_invalid: u64,
    /// Duplicates skipped.
    pub events_deduplicated: u64,
    /// Events waiting in all inboxes.
    pub queue_depth: u64,
}
