//! Requests from outside the shards (the admin thread, the runtime handle) and their
//! answers. Each request travels on the shard's bounded control channel; an answer
//! comes back on a one-slot channel the asker waits on with a timeout, so a stalled
//! shard can never hang the asker.

use crate::message::ShardId;
use crossbeam_channel::Sender;
use hdrhistogram::Histogram;
use weir_engine::{OpenWindow, PartitionId, StateStats, Watermark};

/// A request to one shard.
#[derive(Debug)]
pub enum Control {
    /// Pause (`false`) or resume (`true`) reading a pipeline's sources.
    SetRunning {
        /// Index of the pipeline.
        pipeline: usize,
        /// Whether to read.
        running: bool,
    },
    /// Report watermarks, state sizes and latency.
    Inspect {
        /// Where to answer.
        reply: Sender<ShardReport>,
    },
    /// Start checkpoint `id`: record positions, send barriers.
    Checkpoint {
        /// The checkpoint.
        id: u64,
    },
    /// Checkpoint `id` is complete: sources may release what it covers.
    Committed {
        /// The checkpoint.
        id: u64,
    },
    /// Leave the shard loop (after the final checkpoint).
    Shutdown,
    /// List open windows of a pipeline's keys.
    Windows {
        /// Index of the pipeline.
        pipeline: usize,
        /// Only keys equal to this.
        key: Option<String>,
        /// Only keys starting with this.
        prefix: Option<String>,
        /// At most this many.
        limit: usize,
        /// Where to answer.
        reply: Sender<Vec<OpenWindow>>,
    },
}

/// One shard's answer to [`Control::Inspect`].
#[derive(Debug, Clone)]
pub struct ShardReport {
    /// The shard.
    pub shard: ShardId,
    /// Per pipeline, in config order.
    pub pipelines: Vec<PipelineReport>,
}

/// One pipeline on one shard.
#[derive(Debug, Clone)]
pub struct PipelineReport {
    /// Whether its sources are being read.
    pub running: bool,
    /// Whether all its partitions on this shard have ended.
    pub sources_finished: bool,
    /// The operator's watermark on this shard.
    pub operator_watermark: Watermark,
    /// The source partitions this shard reads.
    pub partitions: Vec<PartitionReport>,
    /// The partition holding this shard's source watermark back, and since when (ms).
    pub holding_back: Option<(PartitionId, u64)>,
    /// Window state sizes.
    pub state: StateStats,
    /// Ingest → applied latency, in microseconds.
    pub latency_us: Histogram<u64>,
}

/// One source partition.
#[derive(Debug, Clone, Copy)]
pub struct PartitionReport {
    /// The partition.
    pub partition: PartitionId,
    /// Its watermark.
    pub watermark: Watermark,
    /// Largest event time seen.
    pub max_time: i64,
    /// Whether it is idle.
    pub idle: bool,
    /// Whether it has ended.
    pub finished: bool,
    /// The offset of the next record to read.
    pub offset: Option<u64>,
    /// Records between that offset and the end of the partition, where the source
    /// knows it (Kafka: the last stable offset librdkafka last reported).
    pub behind: Option<u64>,
}
