//! Pipelines: what they are and how they are doing.

use serde::{Deserialize, Serialize};

/// Whether a pipeline reads its sources.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PipelineState {
    /// Reading its sources.
    #[default]
    Running,
    /// Paused by `POST /pipelines/{id}/stop`: sources are not read, state is kept, and its
    /// partitions are never counted idle (so nothing becomes late because of the pause).
    Stopped,
    /// Every source is bounded and finished; the last windows fired.
    Finished,
}

/// A pipeline as listed by `GET /pipelines`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineInfo {
    /// The pipeline id from the config.
    pub id: String,
    /// Running, stopped or finished.
    pub state: PipelineState,
    /// The source, described for humans (e.g. `file data/in/*.jsonl (jsonl)`).
    pub source: String,
    /// The window, described for humans (e.g. `tumbling 60000 ms, lateness 5000 ms`).
    pub window: String,
    /// The aggregates computed per window, as named in the config.
    pub aggregates: Vec<String>,
}

/// Latency percentiles from ingest to the event being applied to window state, in ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
}

/// One pipeline's numbers, as answered by `GET /pipelines/{id}/stats`.
///
/// Counters count since the engine started (restored counters are not carried over).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineStats {
    /// The pipeline id.
    pub pipeline: String,
    /// Running, stopped or finished.
    pub state: PipelineState,
    /// Events applied to window state.
    pub processed: u64,
    /// Late events that still updated a fired window (re-emitted with a new revision).
    pub late: u64,
    /// Events dropped because their window's state had expired.
    pub dropped_late: u64,
    /// Lines that were not valid events (all reasons).
    pub invalid: u64,
    /// Events recognised as already processed and skipped.
    pub deduplicated: u64,
    /// Window results emitted (all revisions).
    pub results: u64,
    /// Events processed per second, over the last few seconds.
    pub events_per_s: f64,
    /// Processing latency percentiles over the last few seconds, in ms.
    pub latency_ms: Latency,
    /// Open (key, window) states over all shards.
    pub active_windows: u64,
    /// The pipeline's watermark (minimum over shards), ms since the epoch; `null` before
    /// the first event and once every input finished.
    pub watermark_ms: Option<i64>,
    /// Wall clock minus the watermark, in ms (negative for event times in the future);
    /// `null` when the watermark is.
    pub watermark_lag_ms: Option<i64>,
    /// Its Kafka sinks, per shard: the last committed transaction's checkpoint and the
    /// records of the open one (absent without Kafka sinks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kafka_sinks: Vec<super::KafkaSinkMetrics>,
    /// Keys of a Kafka source seen on more than one input partition (absent for other
    /// sources): instances sharing the topic need each key in one partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys_on_two_partitions: Option<u64>,
}
