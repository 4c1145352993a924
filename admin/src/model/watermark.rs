//! Watermarks per partition and shard, as answered by `GET /watermarks`.

use serde::{Deserialize, Serialize};

/// Every pipeline's watermarks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatermarkReport {
    /// One entry per pipeline, in config order.
    pub pipelines: Vec<PipelineWatermarks>,
}

/// One pipeline's watermarks: where they come from and what holds them back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineWatermarks {
    /// The pipeline id.
    pub pipeline: String,
    /// The pipeline's watermark (minimum over its operators), ms since the epoch; `null`
    /// before the first event and once every input finished.
    pub watermark_ms: Option<i64>,
    /// Every source partition.
    pub partitions: Vec<PartitionWatermark>,
    /// Every shard's operator watermark for this pipeline.
    pub shards: Vec<OperatorWatermark>,
    /// The active partition whose watermark is the minimum, if one is.
    pub held_back_by: Option<HoldBack>,
}

/// Whether a partition counts toward its pipeline's watermark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionState {
    /// Counts: its watermark can hold the pipeline's back.
    #[default]
    Active,
    /// Polled and silent for the idle timeout: does not hold the watermark back.
    Idle,
    /// Bounded and finished: counts as +∞.
    Finished,
}

/// One source partition's watermark.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionWatermark {
    /// The partition, as `source/partition` (e.g. `data/in/a.jsonl`, `tcp/0`).
    pub partition: String,
    /// The shard that reads it.
    pub shard: usize,
    /// Max event time seen minus the delay, ms since the epoch; `null` before its first
    /// event and once finished.
    pub watermark_ms: Option<i64>,
    /// Wall clock minus the watermark, in ms; `null` when the watermark is.
    pub lag_ms: Option<i64>,
    /// Active, idle or finished.
    pub state: PartitionState,
    /// The offset of the next record to read (a Kafka offset, a file's line), where
    /// the source has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Records between `offset` and the end of the partition (Kafka's lag behind the
    /// last stable offset), where the source knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_behind: Option<u64>,
}

/// One shard's operator watermark for a pipeline: the minimum over its inputs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorWatermark {
    /// The shard.
    pub shard: usize,
    /// ms since the epoch; `null` before any input has a watermark and once all finished.
    pub watermark_ms: Option<i64>,
}

/// The partition that holds a pipeline's watermark back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldBack {
    /// The partition, as in [`PartitionWatermark::partition`].
    pub partition: String,
    /// Since when it has been the minimum, ms since the epoch.
    pub since_ms: i64,
}
