//! What shards send each other: data and control kept apart, in one FIFO per (from, to).
//!
//! Order on a channel is the contract: a watermark or a barrier follows every event its
//! sender routed before it, so a receiver that sees watermark `W` from shard `s` has
//! every event of `s` that `W` covers.

use weir_engine::{Event, Watermark};
/// A checkpoint's number: the one the checkpoint store hands out.
pub use weir_storage::CheckpointId;

/// A shard: its index in the core map (0, 1, …), which is also the index of its
/// counters, channels and partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ShardId(pub usize);

impl ShardId {
    /// The shard's index, for the per-shard vectors.
    pub const fn index(self) -> usize {
        self.0
    }
}

impl std::fmt::Display for ShardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One message on a shard-to-shard channel.
#[derive(Debug)]
pub enum Message {
    /// Events of one pipeline whose keys the receiver owns.
    Batch {
        /// Index of the pipeline.
        pipeline: usize,
        /// The events, in the order read.
        events: Vec<Event>,
        /// When the first event was read (ns on the runtime's clock), for latency.
        ingest_ns: u64,
    },
    /// The sender's source watermark for a pipeline: no more events below it from there.
    Watermark {
        /// Index of the pipeline.
        pipeline: usize,
        /// The watermark.
        watermark: Watermark,
        /// Every partition of the sender is idle: leave it out of the minimum.
        idle: bool,
    },
    /// A checkpoint barrier: everything before it belongs to the checkpoint.
    Barrier(CheckpointId),
    /// The sender has stopped its sources and sent everything it will send.
    Drained,
}
