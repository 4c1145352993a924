//! The numbers behind `GET /metrics`, as structured data.
//!
//! The backend sums its per-shard counters into this on each scrape; [`crate::metrics`]
//! renders it as Prometheus text. Counters are totals since start; gauges are current.

use serde::{Deserialize, Serialize};

/// Everything `GET /metrics` exposes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// Per (pipeline, shard) counters.
    pub pipeline_shards: Vec<PipelineShardMetrics>,
    /// Per (pipeline, partition) watermark lag.
    pub partitions: Vec<PartitionLag>,
    /// Per pipeline counters.
    pub pipelines: Vec<PipelineCounters>,
    /// Per shard numbers.
    pub shards: Vec<ShardMetrics>,
    /// Checkpoints attempted, by outcome.
    pub checkpoints: CheckpointCounts,
    /// Checkpoint durations, seconds.
    pub checkpoint_duration: Histogram,
    /// Ingest → applied to window state, seconds (all pipelines and shards).
    pub processing_duration: Histogram,
    /// Per (pipeline, partition) source position, where the source knows its lag.
    #[serde(default)]
    pub source_positions: Vec<SourcePosition>,
    /// Per Kafka sink and shard: its transactions.
    #[serde(default)]
    pub kafka_sinks: Vec<KafkaSinkMetrics>,
}

/// `stream_source_offset` and `stream_source_lag_records` for one (pipeline, partition).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePosition {
    /// The pipeline.
    pub pipeline: String,
    /// The partition (`topic/3`).
    pub partition: String,
    /// The offset of the next record to read (gauge).
    pub offset: u64,
    /// Records behind the end of the partition (gauge).
    pub records_behind: u64,
}

/// `stream_kafka_sink_committed_checkpoint` and `stream_kafka_sink_transaction_records`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaSinkMetrics {
    /// The pipeline.
    pub pipeline: String,
    /// `sink0`, `sink1`, …, or `late`.
    pub sink: String,
    /// The shard.
    pub shard: usize,
    /// The checkpoint the last committed transaction carried (gauge).
    pub committed_checkpoint: u64,
    /// Records in the open transaction (gauge).
    pub transaction_records: u64,
}

/// `stream_events_processed_total` and `stream_active_windows` for one (pipeline, shard).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineShardMetrics {
    /// The pipeline.
    pub pipeline: String,
    /// The shard.
    pub shard: usize,
    /// Events applied to window state (counter).
    pub processed: u64,
    /// Open (key, window) states (gauge).
    pub active_windows: u64,
}

/// `stream_watermark_lag_seconds` for one (pipeline, partition).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionLag {
    /// The pipeline.
    pub pipeline: String,
    /// The partition, as in [`super::PartitionWatermark::partition`].
    pub partition: String,
    /// Wall clock minus the partition's watermark, in seconds (gauge).
    pub lag_s: f64,
}

/// Per pipeline counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineCounters {
    /// The pipeline.
    pub pipeline: String,
    /// `stream_events_late_total`: late events that updated a fired window.
    pub late: u64,
    /// `stream_events_dropped_late_total`: events dropped as too late.
    pub dropped_late: u64,
    /// `stream_events_invalid_total` by reason (e.g. `not_json`, `missing_key`).
    pub invalid: Vec<ReasonCount>,
    /// `stream_events_deduplicated_total`: duplicates skipped.
    pub deduplicated: u64,
    /// `stream_results_emitted_total`: window results emitted.
    pub results: u64,
    /// `stream_keys_on_two_partitions_total`: keys of a Kafka source seen on a second
    /// input partition (`None` for other sources).
    #[serde(default)]
    pub keys_on_two_partitions: Option<u64>,
}

/// A count for one reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonCount {
    /// The reason, as a label value.
    pub reason: String,
    /// How many.
    pub count: u64,
}

/// `stream_checkpoints_total{status}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointCounts {
    /// Checkpoints whose manifest was written (`status="completed"`).
    pub completed: u64,
    /// Checkpoints abandoned: a shard timed out or a write failed (`status="failed"`).
    pub failed: u64,
}

/// Per shard numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardMetrics {
    /// The shard.
    pub shard: usize,
    /// `stream_queue_depth`: events waiting in its inboxes (gauge).
    pub queue_depth: u64,
    /// `stream_backpressure_seconds_total`: seconds its sources were paused because a
    /// queue it sends to was full (counter).
    pub backpressure_s: f64,
    /// `stream_log_bytes`: bytes of its append log on disk (gauge).
    pub log_bytes: u64,
    /// `stream_shard_busy_seconds_total`: seconds its thread did work (counter).
    pub busy_s: f64,
    /// `stream_shard_idle_seconds_total`: seconds its thread had nothing to do (counter).
    pub idle_s: f64,
    /// `stream_shard_backpressured_seconds_total`: seconds its thread waited on a full
    /// queue (counter).
    pub backpressured_s: f64,
}

/// A histogram as Prometheus wants it: cumulative buckets plus sum and count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Cumulative buckets in increasing `le`; the `+Inf` bucket is implied by `count`.
    pub buckets: Vec<Bucket>,
    /// Sum of all observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

/// Observations less than or equal to an upper bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// The upper bound, in the histogram's unit.
    pub le: f64,
    /// Observations ≤ `le` (cumulative).
    pub count: u64,
}

impl Histogram {
    /// Default bucket bounds for latencies in seconds: 50 µs to 10 s.
    pub const LATENCY_BOUNDS_S: [f64; 16] = [
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
        1.0, 2.5, 10.0,
    ];

    /// A histogram of `observations` (in the histogram's unit) over the bucket `bounds`;
    /// handy for tests and for runtimes that keep raw samples.
    pub fn from_observations(bounds: &[f64], observations: &[f64]) -> Self {
        let buckets = bounds
            .iter()
            .map(|&le| Bucket {
                le,
                count: observations.iter().filter(|&&o| o <= le).count() as u64,
            })
            .collect();
        Self {
            buckets,
            sum: observations.iter().sum(),
            count: observations.len() as u64,
        }
    }
}
