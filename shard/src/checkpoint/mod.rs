//! Checkpoints: aligned barriers, snapshots, the coordinator, and restore.
//!
//! Aligned barriers, as in Chandy–Lamport and Flink, on weir's all-to-all shard graph:
//!
//! 1. The coordinator asks every shard to start checkpoint `n`
//!    ([`crate::Control::Checkpoint`]); a shard that sees barrier `n` from another shard
//!    first starts it then.
//! 2. Starting, a shard records its source positions, sends its current source watermark
//!    and then barrier `n` down every outgoing channel (after every event it routed
//!    before), and stops reading its sources until its snapshot is taken (so that no
//!    event read after the recorded positions reaches its own operators before it).
//! 3. A shard that has seen barrier `n` on an inbox holds that inbox until barrier `n`
//!    has arrived on all of them; the other inboxes keep flowing. Then it freezes its
//!    operators (copy-on-write, in time independent of the state's size: see
//!    [`weir_engine::WindowOperator::freeze`]), stages its exactly-once sinks' output,
//!    acknowledges with the frozen state, and releases everything.
//! 4. The coordinator writes each shard's record off the shards, incrementally: the
//!    entries changed since the shard's previous committed checkpoint plus a compaction
//!    slice, or everything ([`weir_engine::chain`]). When every shard has acknowledged,
//!    it writes the blobs and the manifest atomically (weir-storage), the manifest naming
//!    the earlier blobs each record builds on, and only then commits the sinks' staged
//!    output of `n` and tells sources that `n` is complete.
//!
//! On start the latest complete checkpoint is restored: positions are sought, window
//! state is rebuilt from each old shard's chain of records and split by key group over
//! the new shard count, and sinks are repaired to the output of exactly that checkpoint
//! (see [`crate::sink::transaction`]).

mod coordinator;
mod restore;

pub use coordinator::{
    CheckpointError, CheckpointInfo, Coordinator, CoordinatorHandle, ShardRecords,
    exactly_once_files,
};
pub use restore::{Restore, ShardChain};

use rkyv::{Archive, Deserialize, Serialize};
use weir_engine::FrozenState;
use weir_engine::snapshot::OperatorState;

use crate::message::ShardId;

/// A source partition's position in a checkpoint.
#[derive(Debug, Clone, PartialEq, Archive, Serialize, Deserialize)]
pub struct PositionEntry {
    /// The partition.
    pub partition: u32,
    /// The offset of the next record to read.
    pub offset: u64,
    /// The largest event time up to the partition's last cut point, so the watermark
    /// resumes where it was.
    pub max_time: i64,
    /// Records read from the partition since its start: where its next cut point is.
    pub records: u64,
    /// The largest event time read since the last cut point (it counts from the next).
    pub pending_max: i64,
}

/// One pipeline's part of a shard snapshot.
#[derive(Debug, Clone, PartialEq, Archive, Serialize, Deserialize)]
pub struct PipelineSnapshot {
    /// The pipeline id.
    pub id: String,
    /// Positions of the partitions this shard read.
    pub positions: Vec<PositionEntry>,
    /// Window state of the key groups this shard owned.
    pub operator: OperatorState,
}

/// What one shard's record of a checkpoint holds: positions, and window state in full
/// or as what changed since the records it builds on.
#[derive(Debug, Clone, PartialEq, Archive, Serialize, Deserialize)]
pub struct ShardSnapshot {
    /// The shard.
    pub shard: u32,
    /// Per pipeline.
    pub pipelines: Vec<PipelineSnapshot>,
    /// The earlier checkpoints whose record of this shard this one builds on, oldest
    /// first; empty when it holds the whole state.
    pub chain: Vec<u64>,
    /// Per slice of the state, the checkpoint whose record holds it in full (see
    /// [`weir_engine::chain`]); empty when this record holds everything.
    pub full_at: Vec<u64>,
    /// Entries of window state in this record.
    pub entries: u64,
}

/// A shard's record as format 2 wrote it: always the whole state.
#[derive(Debug, Clone, PartialEq, Archive, Serialize, Deserialize)]
pub struct ShardSnapshotV2 {
    /// The shard.
    pub shard: u32,
    /// Per pipeline.
    pub pipelines: Vec<PipelineSnapshot>,
}

/// One pipeline's part of a shard's acknowledgement: positions and frozen state.
#[derive(Debug, Clone)]
pub struct FrozenPipeline {
    /// The pipeline id.
    pub id: String,
    /// Positions of the partitions this shard read.
    pub positions: Vec<PositionEntry>,
    /// Window state of the key groups this shard owned, frozen at the barrier.
    pub operator: FrozenState,
}

/// What one shard hands the coordinator for a checkpoint, to be written off the shard.
#[derive(Debug, Clone)]
pub struct FrozenShard {
    /// The shard.
    pub shard: u32,
    /// Per pipeline.
    pub pipelines: Vec<FrozenPipeline>,
}

/// The manifest's own metadata (JSON).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckpointMeta {
    /// Shards that took it.
    pub nr_shards: usize,
    /// Key groups of the state (must match the config to restore).
    pub key_groups: u32,
    /// Pipeline ids, in config order.
    pub pipelines: Vec<String>,
    /// Event time of the first generated event, per pipeline with a generator.
    pub generator_start_ms: Vec<Option<i64>>,
    /// The layout of the shard snapshots ([`SNAPSHOT_FORMAT`]); checkpoints written
    /// before it was recorded have none (format 1).
    #[serde(default = "first_format")]
    pub snapshot_format: u32,
}

/// The layout of the shard snapshots this build writes: 2 added each partition's record
/// count and pending event time ([`PositionEntry`]), 3 incremental records
/// ([`ShardSnapshot::chain`]). Format 2 is still read.
pub const SNAPSHOT_FORMAT: u32 = 3;

fn first_format() -> u32 {
    1
}

/// A shard's acknowledgement of a checkpoint.
#[derive(Debug)]
pub struct ShardAck {
    /// The checkpoint.
    pub id: u64,
    /// The shard.
    pub shard: ShardId,
    /// The shard's frozen state (written by the coordinator, off the shard), or why it
    /// failed.
    pub snapshot: Result<FrozenShard, StageError>,
    /// Longest time the shard's event processing stood still for it, µs.
    pub pause_us: u64,
}

/// Why a shard could not stage a sink's output for a checkpoint.
#[derive(Debug, thiserror::Error)]
#[error("staging {sink}: {source}")]
pub struct StageError {
    /// The sink (`file out/r.jsonl (exactly once)`).
    pub sink: String,
    /// What the OS said.
    #[source]
    pub source: std::io::Error,
}

/// Blob name of a shard's snapshot.
pub fn blob_name(shard: usize) -> String {
    format!("shard-{shard:04}.rkyv")
}
