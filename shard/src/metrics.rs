//! Per-shard counters, published lock-free for the admin thread.
//!
//! Each shard owns one [`ShardCounters`] and one [`PipelineCounters`] per pipeline, each
//! padded to its own cache lines so that two shards never write the same line. Shards
//! update them with relaxed atomic adds (a counter needs no ordering with anything else);
//! the admin thread sums them over shards when it is scraped. Anything structured
//! (histograms, partition watermarks, state) is asked of the shard over its control
//! channel instead.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crossbeam_utils::CachePadded;
use weir_engine::InvalidReason;

/// Counters of one shard.
#[derive(Debug, Default)]
pub struct ShardCounters {
    /// Events applied to window operators on this shard.
    pub events: AtomicU64,
    /// Events waiting in this shard's inboxes (approximate).
    pub queue_depth: AtomicU64,
    /// Nanoseconds spent doing work.
    pub busy_ns: AtomicU64,
    /// Nanoseconds spent with nothing to do.
    pub idle_ns: AtomicU64,
    /// Nanoseconds spent unable to send because a downstream queue was full.
    pub backpressured_ns: AtomicU64,
    /// Bytes in this shard's append log.
    pub log_bytes: AtomicU64,
    /// Wall-clock ms of the shard loop's last turn (stall detection).
    pub heartbeat_ms: AtomicU64,
    /// Whether one of this shard's sinks has its circuit open.
    pub sink_circuit_open: AtomicBool,
    /// Whether the shard loop has ended.
    pub stopped: AtomicBool,
    /// Whether the shard has finished its input (or drained after a stop) and waits
    /// only for the final checkpoint.
    pub quiesced: AtomicBool,
}

/// Counters of one pipeline on one shard.
#[derive(Debug)]
pub struct PipelineCounters {
    /// Events applied to the window operator.
    pub processed: AtomicU64,
    /// Events read by this shard's sources (before routing).
    pub ingested: AtomicU64,
    /// Events that updated an already-fired window.
    pub late: AtomicU64,
    /// Events dropped past allowed lateness.
    pub dropped_late: AtomicU64,
    /// Bad lines, by reason (index of [`InvalidReason::ALL`]).
    pub invalid: [AtomicU64; InvalidReason::ALL.len()],
    /// Events skipped as already applied.
    pub deduplicated: AtomicU64,
    /// Results emitted.
    pub results: AtomicU64,
    /// Open (key, window) states.
    pub active_windows: AtomicU64,
    /// The operator's watermark (i64::MIN before any).
    pub watermark: AtomicI64,
    /// Keys of a Kafka source seen on a second partition (each key counted once):
    /// window results are right only when each key lives in one input partition.
    pub keys_on_two_partitions: AtomicU64,
}

impl Default for PipelineCounters {
    fn default() -> Self {
        Self {
            processed: AtomicU64::new(0),
            ingested: AtomicU64::new(0),
            late: AtomicU64::new(0),
            dropped_late: AtomicU64::new(0),
            invalid: Default::default(),
            deduplicated: AtomicU64::new(0),
            results: AtomicU64::new(0),
            keys_on_two_partitions: AtomicU64::new(0),
            active_windows: AtomicU64::new(0),
            watermark: AtomicI64::new(i64::MIN),
        }
    }
}

impl PipelineCounters {
    /// Counts a bad line.
    pub fn count_invalid(&self, reason: InvalidReason) {
        if let Some(i) = InvalidReason::ALL.iter().position(|&r| r == reason) {
            self.invalid[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Bad lines of all reasons.
    pub fn invalid_total(&self) -> u64 {
        self.invalid.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// All counters of the runtime: one padded block per shard, and per (pipeline, shard).
#[derive(Debug)]
pub struct Counters {
    /// Indexed by shard.
    pub shards: Vec<CachePadded<ShardCounters>>,
    /// Indexed by pipeline, then shard.
    pub pipelines: Vec<Vec<CachePadded<PipelineCounters>>>,
    /// Completed checkpoints.
    pub checkpoints_ok: AtomicU64,
    /// Failed checkpoints.
    pub checkpoints_failed: AtomicU64,
    /// Faults an operator must see (`/health` answers 503 while any is raised).
    pub faults: Faults,
    /// Every Kafka sink of every shard, for the admin.
    pub kafka_sinks: std::sync::Mutex<Vec<KafkaSinkEntry>>,
}

/// One Kafka sink on one shard, as the admin sees it.
#[derive(Debug, Clone)]
pub struct KafkaSinkEntry {
    /// Its pipeline (index).
    pub pipeline: usize,
    /// `sink0`, `sink1`, …, or `late`.
    pub sink: String,
    /// The shard.
    pub shard: usize,
    /// Its transaction state.
    pub status: std::sync::Arc<crate::kafka::SinkStatus>,
}

impl Counters {
    /// Zeroed counters for `shards` shards and `pipelines` pipelines.
    pub fn new(shards: usize, pipelines: usize) -> Self {
        Self {
            shards: (0..shards).map(|_| CachePadded::default()).collect(),
            pipelines: (0..pipelines)
                .map(|_| (0..shards).map(|_| CachePadded::default()).collect())
                .collect(),
            checkpoints_ok: AtomicU64::new(0),
            checkpoints_failed: AtomicU64::new(0),
            faults: Faults::default(),
            kafka_sinks: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Sum of one counter of a pipeline over shards.
    pub fn pipeline_sum(&self, pipeline: usize, f: impl Fn(&PipelineCounters) -> u64) -> u64 {
        self.pipelines
            .get(pipeline)
            .map_or(0, |shards| shards.iter().map(|c| f(c)).sum())
    }
}

/// Adds `v` to a relaxed counter.
#[inline]
pub fn add(c: &AtomicU64, v: u64) {
    c.fetch_add(v, Ordering::Relaxed);
}

/// A condition that keeps the engine from doing its job until it is fixed, as the
/// component that found it reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// A source cannot accept or store input (a TCP source whose append log failed).
    Source {
        /// The pipeline.
        pipeline: String,
        /// The shard.
        shard: crate::message::ShardId,
        /// What went wrong.
        reason: String,
    },
    /// A sink keeps failing: its circuit is open and results wait.
    Sink {
        /// The shard.
        shard: crate::message::ShardId,
        /// The sink (`file out/r.jsonl (exactly once)`).
        sink: String,
        /// The last error.
        reason: String,
    },
    /// A complete checkpoint's sink output is not committed yet; the commit is retried
    /// and no later checkpoint commits before it.
    Commit {
        /// The checkpoint.
        checkpoint: u64,
        /// The last error.
        reason: String,
    },
}

/// The faults raised now, each under a key that says who raised it.
///
/// Written only when a fault comes or goes (rare), read on `/health`: a mutex is fine
/// here, it is nowhere near the data path.
#[derive(Debug, Default)]
pub struct Faults {
    raised: Mutex<Vec<(String, Fault)>>,
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, Vec<(String, Fault)>> {
        // A panic while holding it leaves a consistent list: use it.
        self.raised.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Raises (or updates) the fault under `key`.
    pub fn raise(&self, key: &str, fault: Fault) {
        let mut raised = self.lock();
        match raised.iter_mut().find(|(k, _)| k == key) {
            Some((_, f)) => *f = fault,
            None => raised.push((key.to_owned(), fault)),
        }
    }

    /// Clears the fault under `key`, if any.
    pub fn clear(&self, key: &str) {
        self.lock().retain(|(k, _)| k != key);
    }

    /// Every fault raised now, oldest first.
    pub fn current(&self) -> Vec<Fault> {
        self.lock().iter().map(|(_, f)| f.clone()).collect()
    }
}
