//! The admin API over the running engine: [`weir_admin::Backend`] for a [`RuntimeHandle`],
//! and [`start`], which starts the admin server for `weir run`.
//!
//! Where each answer comes from:
//!
//! - Counters (processed, late, invalid, results, per-shard time split, queue depth,
//!   heartbeats, sink circuits, operator watermarks, open-window gauges) are the shards'
//!   padded atomics, summed over shards on each request.
//! - Partition watermarks and processing latency are only known inside the shards; they
//!   come from `Control::Inspect` reports. The requests that have no timeout (stats,
//!   watermarks, metrics) share the last reports while they are younger than
//!   [`REPORT_MAX_AGE`], and refresh them waiting at most [`REPORT_WAIT`]; a shard that
//!   does not answer keeps its previous report, so a scrape never hangs and histograms
//!   never go backwards.
//! - State sizes, state scans, key lookups and window listings ask the shards afresh
//!   (`Control::Inspect`, `Control::Windows`) with the request's timeout; a key is asked
//!   of the one shard that owns its key group.
//! - Checkpoints are the coordinator's: `POST /checkpoint` asks it for one and waits,
//!   `/checkpoints` lists the retained ones of its recent history.
//! - Rates and recent latency are differences against samples this backend keeps
//!   ([`history`]): admin-side state, behind a mutex only the admin threads touch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use weir_admin::model::{
    CheckpointCounts, CheckpointInfo, Health, Histogram, HoldBack, Latency, MetricsSnapshot,
    OperatorWatermark, PartitionLag, PartitionState, PartitionWatermark, PipelineCounters,
    PipelineInfo, PipelineShardMetrics, PipelineState, PipelineStats, PipelineWatermarks, Problem,
    ReasonCount, ShardMetrics, ShardState, ShardStatus, StateQuery, StateSummary, Status, Totals,
    WatermarkReport, WindowCount, WindowState, WindowsReport,
};
use weir_admin::{AdminServer, AdminSockets, Backend, BackendError};
use weir_config::{FileFormat, Source};
use weir_engine::{InvalidReason, OpenWindow, Watermark};
use weir_shard::checkpoint::CoordinatorHandle;
use weir_shard::metrics::Fault;
use weir_shard::{KeyFilter, Runtime, RuntimeHandle, ShardReport};

use history::{CheckpointDurations, History};

mod history;

/// Inspect reports younger than this answer requests that have no timeout.
pub const REPORT_MAX_AGE: Duration = Duration::from_millis(200);
/// How long a request without a timeout waits for fresh inspect reports.
pub const REPORT_WAIT: Duration = Duration::from_millis(250);
/// A running shard whose loop has not turned for this long has stalled (`/health` 503).
pub const STALL_AFTER: Duration = Duration::from_secs(5);
/// Most windows `GET /state/{pipeline}/{key}` lists for one key.
const MAX_KEY_WINDOWS: usize = 10_000;

/// Starts the admin server of `[admin]` over `runtime` on the sockets bound for it;
/// with `enabled = false`, none.
pub fn start(runtime: &Runtime, sockets: AdminSockets) -> anyhow::Result<Option<AdminServer>> {
    let config = runtime.config();
    if !config.admin.enabled {
        return Ok(None);
    }
    let backend = Arc::new(RuntimeBackend::new(runtime.handle(), runtime.coordinator()));
    let server = AdminServer::builder(&config.admin, backend)
        .core(config.runtime.admin_core)
        .sockets(sockets)
        .start()
        .context("cannot start the admin server")?;
    tracing::info!(
        http = ?server.http_addr(),
        metrics = ?server.metrics_addr(),
        "admin listening"
    );
    Ok(Some(server))
}

/// The engine as the admin API sees it.
pub struct RuntimeBackend {
    runtime: RuntimeHandle,
    coordinator: CoordinatorHandle,
    /// Per pipeline: whether an operator stopped it (`POST /pipelines/{id}/stop`).
    paused: Vec<AtomicBool>,
    /// Wall clock at start, ms: a shard that has not turned yet is silent since then.
    started_ms: u64,
    reports: Mutex<Reports>,
    history: Mutex<History>,
    checkpoint_durations: Mutex<CheckpointDurations>,
}

/// The last inspect report of every shard.
struct Reports {
    shards: Vec<Option<ShardReport>>,
    asked: Option<Instant>,
}

impl RuntimeBackend {
    /// Every Kafka sink's transactions, per shard.
    fn kafka_sinks(&self) -> Vec<weir_admin::model::KafkaSinkMetrics> {
        let config = self.runtime.config();
        let counters = self.runtime.counters();
        let Ok(all) = counters.kafka_sinks.lock() else {
            return Vec::new();
        };
        all.iter()
            .map(|e| weir_admin::model::KafkaSinkMetrics {
                pipeline: config
                    .pipelines
                    .get(e.pipeline)
                    .map(|p| p.id.clone())
                    .unwrap_or_default(),
                sink: e.sink.clone(),
                shard: e.shard,
                committed_checkpoint: e.status.committed.load(Ordering::Relaxed),
                transaction_records: e.status.open_records.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// A backend over `runtime`, with every pipeline running.
    pub fn new(runtime: RuntimeHandle, coordinator: CoordinatorHandle) -> Self {
        let nr_pipelines = runtime.config().pipelines.len();
        let nr_shards = runtime.nr_shards();
        let start = Instant::now()
            .checked_sub(runtime.uptime())
            .unwrap_or_else(Instant::now);
        let started_ms = now_ms().saturating_sub(runtime.uptime().as_millis() as u64);
        Self {
            runtime,
            coordinator,
            paused: (0..nr_pipelines).map(|_| AtomicBool::new(false)).collect(),
            started_ms,
            reports: Mutex::new(Reports {
                shards: vec![None; nr_shards],
                asked: None,
            }),
            history: Mutex::new(History::new(start, nr_pipelines)),
            checkpoint_durations: Mutex::new(CheckpointDurations::new()),
        }
    }

    fn index(&self, id: &str) -> Result<usize, BackendError> {
        self.runtime
            .config()
            .pipelines
            .iter()
            .position(|p| p.id == id)
            .ok_or_else(|| BackendError::UnknownPipeline { id: id.to_owned() })
    }

    /// The operator watermark of `pipeline` on `shard` (`Watermark::MIN` before any).
    fn operator_watermark(&self, pipeline: usize, shard: usize) -> Watermark {
        self.runtime.counters().pipelines[pipeline]
            .get(shard)
            .map_or(Watermark::MIN, |c| {
                Watermark(c.watermark.load(Ordering::Relaxed))
            })
    }

    /// The pipeline's watermark: the minimum of its operators' watermarks.
    fn pipeline_watermark(&self, pipeline: usize) -> Watermark {
        (0..self.runtime.nr_shards())
            .map(|shard| self.operator_watermark(pipeline, shard))
            .min()
            .unwrap_or(Watermark::MAX)
    }

    /// Finished: every shard's operator has seen the end of every input, which happens
    /// only once every source partition of the pipeline, on every shard, has finished.
    fn is_finished(&self, pipeline: usize) -> bool {
        self.pipeline_watermark(pipeline) == Watermark::MAX
    }

    fn state(&self, pipeline: usize) -> PipelineState {
        if self.is_finished(pipeline) {
            PipelineState::Finished
        } else if self.paused[pipeline].load(Ordering::Relaxed) {
            PipelineState::Stopped
        } else {
            PipelineState::Running
        }
    }

    fn info(&self, pipeline: usize) -> PipelineInfo {
        let spec = &self.runtime.config().pipelines[pipeline];
        PipelineInfo {
            id: spec.id.clone(),
            state: self.state(pipeline),
            source: describe_source(&spec.source),
            window: spec.window.to_string(),
            aggregates: spec
                .aggregates
                .iter()
                .map(|a| a.name().to_owned())
                .collect(),
        }
    }

    fn sum(
        &self,
        pipeline: usize,
        f: impl Fn(&weir_shard::metrics::PipelineCounters) -> u64,
    ) -> u64 {
        self.runtime.counters().pipeline_sum(pipeline, f)
    }

    fn processed(&self, pipeline: usize) -> u64 {
        self.sum(pipeline, |c| c.processed.load(Ordering::Relaxed))
    }

    /// Runs `f` over the shards' reports, refreshing them when older than
    /// [`REPORT_MAX_AGE`].
    fn with_reports<T>(&self, f: impl FnOnce(&[Option<ShardReport>]) -> T) -> T {
        let mut cache = lock(&self.reports);
        if cache.asked.is_none_or(|t| t.elapsed() >= REPORT_MAX_AGE) {
            let fresh = self.runtime.inspect(REPORT_WAIT);
            keep(&mut cache, fresh.iter().cloned());
        }
        f(&cache.shards)
    }

    /// Every shard's report, asked afresh with `timeout`.
    fn inspect(&self, timeout: Duration) -> Result<Vec<ShardReport>, BackendError> {
        let fresh = self.runtime.inspect(timeout);
        keep(&mut lock(&self.reports), fresh.iter().cloned());
        fresh
            .into_iter()
            .enumerate()
            .map(|(shard, report)| report.ok_or_else(|| self.no_answer(shard, timeout)))
            .collect()
    }

    fn no_answer(&self, shard: usize, timeout: Duration) -> BackendError {
        let ended = self
            .runtime
            .counters()
            .shards
            .get(shard)
            .is_some_and(|s| s.stopped.load(Ordering::Relaxed));
        if ended {
            BackendError::Unavailable {
                reason: format!("shard {shard} has ended"),
            }
        } else {
            BackendError::Timeout {
                shard: Some(shard),
                waited_ms: timeout.as_millis() as u64,
            }
        }
    }

    /// Open windows of `pipeline` from the shards `keys` selects, at most `limit` per shard.
    fn open_windows(
        &self,
        pipeline: usize,
        keys: KeyFilter<'_>,
        limit: usize,
        timeout: Duration,
    ) -> Result<Vec<WindowState>, BackendError> {
        let id = &self.runtime.config().pipelines[pipeline].id;
        let mut out = Vec::new();
        for (shard, answer) in self.runtime.open_windows(pipeline, keys, limit, timeout) {
            let windows = answer.ok_or_else(|| self.no_answer(shard, timeout))?;
            let watermark = self.operator_watermark(pipeline, shard);
            out.extend(
                windows
                    .into_iter()
                    .map(|w| window_state(id, shard, w, watermark)),
            );
        }
        out.sort_by(|a, b| (&a.key, a.window_start).cmp(&(&b.key, b.window_start)));
        Ok(out)
    }

    /// Events per second and latency of every pipeline over the last few seconds.
    fn recent(&self) -> Vec<(f64, Latency)> {
        let nr_pipelines = self.runtime.config().pipelines.len();
        let processed: Vec<u64> = (0..nr_pipelines).map(|p| self.processed(p)).collect();
        let latency = self.with_reports(|reports| {
            (0..nr_pipelines)
                .map(|p| history::merge(latency_of(reports, Some(p))))
                .collect()
        });
        lock(&self.history).recent(Instant::now(), processed, latency)
    }
}

impl Backend for RuntimeBackend {
    fn status(&self) -> Status {
        let config = self.runtime.config();
        let counters = self.runtime.counters();
        let shards: Vec<ShardStatus> = counters
            .shards
            .iter()
            .enumerate()
            .map(|(shard, c)| ShardStatus {
                shard,
                core: config.shard_core(shard),
                events: c.events.load(Ordering::Relaxed),
                queue_depth: c.queue_depth.load(Ordering::Relaxed),
                busy_s: seconds(c.busy_ns.load(Ordering::Relaxed)),
                idle_s: seconds(c.idle_ns.load(Ordering::Relaxed)),
                backpressured_s: seconds(c.backpressured_ns.load(Ordering::Relaxed)),
            })
            .collect();
        let all = |f: fn(&weir_shard::metrics::PipelineCounters) -> u64| {
            (0..config.pipelines.len())
                .map(|p| self.sum(p, f))
                .sum::<u64>()
        };
        let totals = Totals {
            pipelines: config.pipelines.len(),
            events_processed: all(|c| c.processed.load(Ordering::Relaxed)),
            results_emitted: all(|c| c.results.load(Ordering::Relaxed)),
            events_late: all(|c| c.late.load(Ordering::Relaxed)),
            events_dropped_late: all(|c| c.dropped_late.load(Ordering::Relaxed)),
            events_invalid: all(|c| c.invalid_total()),
            events_deduplicated: all(|c| c.deduplicated.load(Ordering::Relaxed)),
            queue_depth: shards.iter().map(|s| s.queue_depth).sum(),
        };
        Status {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            app_name: config.app_name.clone(),
            instance: config.instance.clone(),
            uptime_s: self.runtime.uptime().as_secs_f64(),
            shards,
            totals,
            last_checkpoint: self.checkpoints().pop(),
        }
    }

    fn health(&self) -> Health {
        let now = now_ms();
        let stopping = self.runtime.is_stopping();
        let nr_pipelines = self.runtime.config().pipelines.len();
        let mut problems = Vec::new();
        for (shard, c) in self.runtime.counters().shards.iter().enumerate() {
            if c.stopped.load(Ordering::Relaxed) {
                // A shard ends on its own only once all its inputs have; otherwise it failed.
                let done =
                    (0..nr_pipelines).all(|p| self.operator_watermark(p, shard) == Watermark::MAX);
                if !stopping && !done {
                    problems.push(Problem::ShardStopped { shard });
                }
                continue;
            }
            let beat = c.heartbeat_ms.load(Ordering::Relaxed).max(self.started_ms);
            let silent_ms = now.saturating_sub(beat);
            if silent_ms >= STALL_AFTER.as_millis() as u64 {
                problems.push(Problem::ShardStalled { shard, silent_ms });
            }
        }
        for fault in self.runtime.counters().faults.current() {
            problems.push(match fault {
                Fault::Source {
                    pipeline,
                    shard,
                    reason,
                } => Problem::SourceFailing {
                    pipeline,
                    shard: shard.index(),
                    reason,
                },
                Fault::Sink {
                    shard,
                    sink,
                    reason,
                } => Problem::SinkCircuitOpen {
                    shard: shard.index(),
                    sink: Some(sink),
                    reason: Some(reason),
                },
                Fault::Commit { checkpoint, reason } => {
                    Problem::CommitPending { checkpoint, reason }
                }
                other => Problem::Other {
                    reason: format!("{other:?}"),
                },
            });
        }
        Health { problems }
    }

    fn pipelines(&self) -> Vec<PipelineInfo> {
        (0..self.runtime.config().pipelines.len())
            .map(|p| self.info(p))
            .collect()
    }

    fn set_running(&self, id: &str, running: bool) -> Result<PipelineInfo, BackendError> {
        let pipeline = self.index(id)?;
        if self.is_finished(pipeline) {
            if running {
                return Err(BackendError::Conflict {
                    reason: format!("pipeline {id:?} has finished; it cannot be started"),
                });
            }
            return Ok(self.info(pipeline));
        }
        if !self.runtime.set_running(pipeline, running) {
            return Err(BackendError::Unavailable {
                reason: "the shards are not taking requests (the engine is stopping)".into(),
            });
        }
        self.paused[pipeline].store(!running, Ordering::Relaxed);
        Ok(self.info(pipeline))
    }

    fn pipeline_stats(&self, id: &str) -> Result<PipelineStats, BackendError> {
        let pipeline = self.index(id)?;
        let load = |f: fn(&weir_shard::metrics::PipelineCounters) -> u64| self.sum(pipeline, f);
        let (events_per_s, latency_ms) = self.recent()[pipeline];
        let watermark_ms = finite(self.pipeline_watermark(pipeline));
        Ok(PipelineStats {
            pipeline: id.to_owned(),
            state: self.state(pipeline),
            processed: load(|c| c.processed.load(Ordering::Relaxed)),
            late: load(|c| c.late.load(Ordering::Relaxed)),
            dropped_late: load(|c| c.dropped_late.load(Ordering::Relaxed)),
            invalid: load(|c| c.invalid_total()),
            deduplicated: load(|c| c.deduplicated.load(Ordering::Relaxed)),
            results: load(|c| c.results.load(Ordering::Relaxed)),
            events_per_s,
            latency_ms,
            active_windows: load(|c| c.active_windows.load(Ordering::Relaxed)),
            watermark_ms,
            watermark_lag_ms: watermark_ms.map(|w| now_ms() as i64 - w),
            kafka_sinks: self
                .kafka_sinks()
                .into_iter()
                .filter(|s| s.pipeline == id)
                .collect(),
            keys_on_two_partitions: matches!(
                self.runtime.config().pipelines[pipeline].source,
                weir_config::Source::Kafka(_)
            )
            .then(|| load(|c| c.keys_on_two_partitions.load(Ordering::Relaxed))),
        })
    }

    fn watermarks(&self) -> WatermarkReport {
        let config = self.runtime.config();
        let now = now_ms() as i64;
        let pipelines = self.with_reports(|reports| {
            (0..config.pipelines.len())
                .map(|p| self.pipeline_watermarks(p, reports, now))
                .collect()
        });
        WatermarkReport { pipelines }
    }

    fn state_summary(&self, timeout: Duration) -> Result<StateSummary, BackendError> {
        let counters = self.runtime.counters();
        let shards = self
            .inspect(timeout)?
            .into_iter()
            .map(|r| {
                let mut s = ShardState {
                    shard: r.shard.index(),
                    log_bytes: counters
                        .shards
                        .get(r.shard.index())
                        .map_or(0, |c| c.log_bytes.load(Ordering::Relaxed)),
                    ..ShardState::default()
                };
                for p in &r.pipelines {
                    s.keys += p.state.keys as u64;
                    s.windows += p.state.windows as u64;
                    s.bytes += p.state.bytes as u64;
                }
                s
            })
            .collect();
        Ok(StateSummary::from_shards(shards))
    }

    fn state_scan(
        &self,
        query: &StateQuery,
        timeout: Duration,
    ) -> Result<Vec<WindowState>, BackendError> {
        let pipeline = self.index(&query.pipeline)?;
        let keys = if query.prefix.is_empty() {
            KeyFilter::All
        } else {
            KeyFilter::Prefix(&query.prefix)
        };
        let mut windows = self.open_windows(pipeline, keys, query.limit, timeout)?;
        windows.truncate(query.limit);
        Ok(windows)
    }

    fn state_key(
        &self,
        pipeline: &str,
        key: &str,
        timeout: Duration,
    ) -> Result<Vec<WindowState>, BackendError> {
        let pipeline = self.index(pipeline)?;
        self.open_windows(pipeline, KeyFilter::Key(key), MAX_KEY_WINDOWS, timeout)
    }

    fn windows(
        &self,
        pipeline: Option<&str>,
        limit: usize,
        timeout: Duration,
    ) -> Result<WindowsReport, BackendError> {
        let config = self.runtime.config();
        let pipelines: Vec<usize> = match pipeline {
            Some(id) => vec![self.index(id)?],
            None => (0..config.pipelines.len()).collect(),
        };
        let deadline = Instant::now() + timeout;
        let reports = self.inspect(timeout)?;
        let mut open = Vec::new();
        for &p in &pipelines {
            for r in &reports {
                open.push(WindowCount {
                    pipeline: config.pipelines[p].id.clone(),
                    shard: r.shard.index(),
                    open: r.pipelines.get(p).map_or(0, |p| p.state.windows as u64),
                });
            }
        }
        let mut windows = Vec::new();
        if limit > 0 {
            for &p in &pipelines {
                let left = deadline.saturating_duration_since(Instant::now());
                windows.extend(self.open_windows(p, KeyFilter::All, limit + 1, left)?);
            }
        }
        let truncated = windows.len() > limit;
        windows.truncate(limit);
        Ok(WindowsReport {
            open,
            windows,
            truncated,
        })
    }

    fn checkpoint(&self, timeout: Duration) -> Result<CheckpointInfo, BackendError> {
        if self.runtime.is_stopping() {
            return Err(BackendError::Unavailable {
                reason: "the engine is stopping; its final checkpoint is on its way".into(),
            });
        }
        self.coordinator
            .checkpoint(timeout)
            .map(|info| checkpoint_info(&info))
            .map_err(|e| match e {
                weir_shard::checkpoint::CheckpointError::Timeout { waited_ms } => {
                    BackendError::Timeout {
                        shard: None,
                        waited_ms,
                    }
                }
                other => BackendError::Unavailable {
                    reason: other.to_string(),
                },
            })
    }

    fn checkpoints(&self) -> Vec<CheckpointInfo> {
        // The store keeps the latest `retain_checkpoints` complete ones on disk.
        let history = self.coordinator.history();
        let retained = self.runtime.config().storage.retain_checkpoints;
        let skip = history.len().saturating_sub(retained);
        history[skip..].iter().map(checkpoint_info).collect()
    }

    fn metrics(&self) -> MetricsSnapshot {
        let config = self.runtime.config();
        let counters = self.runtime.counters();
        let now = now_ms() as i64;
        let mut snapshot = MetricsSnapshot::default();
        for (p, spec) in config.pipelines.iter().enumerate() {
            for (shard, c) in counters.pipelines[p].iter().enumerate() {
                snapshot.pipeline_shards.push(PipelineShardMetrics {
                    pipeline: spec.id.clone(),
                    shard,
                    processed: c.processed.load(Ordering::Relaxed),
                    active_windows: c.active_windows.load(Ordering::Relaxed),
                });
            }
            let load = |f: fn(&weir_shard::metrics::PipelineCounters) -> u64| self.sum(p, f);
            snapshot.pipelines.push(PipelineCounters {
                pipeline: spec.id.clone(),
                late: load(|c| c.late.load(Ordering::Relaxed)),
                dropped_late: load(|c| c.dropped_late.load(Ordering::Relaxed)),
                invalid: InvalidReason::ALL
                    .iter()
                    .enumerate()
                    .map(|(i, reason)| ReasonCount {
                        reason: reason.label().to_owned(),
                        count: counters.pipelines[p]
                            .iter()
                            .map(|c| c.invalid[i].load(Ordering::Relaxed))
                            .sum(),
                    })
                    .collect(),
                deduplicated: load(|c| c.deduplicated.load(Ordering::Relaxed)),
                results: load(|c| c.results.load(Ordering::Relaxed)),
                keys_on_two_partitions: matches!(spec.source, weir_config::Source::Kafka(_))
                    .then(|| load(|c| c.keys_on_two_partitions.load(Ordering::Relaxed))),
            });
        }
        for (shard, c) in counters.shards.iter().enumerate() {
            let backpressured_s = seconds(c.backpressured_ns.load(Ordering::Relaxed));
            snapshot.shards.push(ShardMetrics {
                shard,
                queue_depth: c.queue_depth.load(Ordering::Relaxed),
                // A shard reads no source while it waits on a full queue: the same time.
                backpressure_s: backpressured_s,
                log_bytes: c.log_bytes.load(Ordering::Relaxed),
                busy_s: seconds(c.busy_ns.load(Ordering::Relaxed)),
                idle_s: seconds(c.idle_ns.load(Ordering::Relaxed)),
                backpressured_s,
            });
        }
        let (partitions, positions, latency) = self.with_reports(|reports| {
            let mut lags = Vec::new();
            let mut positions = Vec::new();
            for (p, spec) in config.pipelines.iter().enumerate() {
                for w in self.pipeline_watermarks(p, reports, now).partitions {
                    if let (Some(offset), Some(behind)) = (w.offset, w.records_behind) {
                        positions.push(weir_admin::model::SourcePosition {
                            pipeline: spec.id.clone(),
                            partition: w.partition.clone(),
                            offset,
                            records_behind: behind,
                        });
                    }
                    if let Some(lag_ms) = w.lag_ms {
                        lags.push(PartitionLag {
                            pipeline: spec.id.clone(),
                            partition: w.partition,
                            lag_s: lag_ms as f64 / 1000.0,
                        });
                    }
                }
            }
            (lags, positions, history::merge(latency_of(reports, None)))
        });
        snapshot.partitions = partitions;
        snapshot.source_positions = positions;
        snapshot.kafka_sinks = self.kafka_sinks();
        snapshot.processing_duration = history::buckets(latency.as_ref());
        snapshot.checkpoints = CheckpointCounts {
            completed: counters.checkpoints_ok.load(Ordering::Relaxed),
            failed: counters.checkpoints_failed.load(Ordering::Relaxed),
        };
        snapshot.checkpoint_duration = self.checkpoint_durations();
        snapshot
    }
}

impl RuntimeBackend {
    /// Checkpoint durations so far, including those completed since the last scrape.
    fn checkpoint_durations(&self) -> Histogram {
        let recent = self.coordinator.history();
        lock(&self.checkpoint_durations).observe(recent.iter().map(|c| (c.id, c.duration)))
    }

    fn pipeline_watermarks(
        &self,
        pipeline: usize,
        reports: &[Option<ShardReport>],
        now: i64,
    ) -> PipelineWatermarks {
        let mut partitions = Vec::new();
        // The active partition with the lowest watermark among those holding a shard back.
        let mut lowest: Option<(Watermark, HoldBack)> = None;
        for report in reports.iter().flatten() {
            let Some(p) = report.pipelines.get(pipeline) else {
                continue;
            };
            for part in &p.partitions {
                let state = if part.finished {
                    PartitionState::Finished
                } else if part.idle {
                    PartitionState::Idle
                } else {
                    PartitionState::Active
                };
                let watermark_ms = finite(part.watermark);
                let name = self.runtime.partition_name(pipeline, part.partition);
                let holds = p.holding_back.filter(|(id, _)| *id == part.partition);
                if let (Some((_, since)), PartitionState::Active) = (holds, state)
                    && lowest.as_ref().is_none_or(|(w, _)| part.watermark < *w)
                {
                    let hold = HoldBack {
                        partition: name.clone(),
                        since_ms: since as i64,
                    };
                    lowest = Some((part.watermark, hold));
                }
                partitions.push(PartitionWatermark {
                    partition: name,
                    shard: report.shard.index(),
                    watermark_ms,
                    lag_ms: watermark_ms.map(|w| now - w),
                    state,
                    offset: part.offset,
                    records_behind: part.behind,
                });
            }
        }
        let shards = (0..self.runtime.nr_shards())
            .map(|shard| OperatorWatermark {
                shard,
                watermark_ms: finite(self.operator_watermark(pipeline, shard)),
            })
            .collect();
        PipelineWatermarks {
            pipeline: self.runtime.config().pipelines[pipeline].id.clone(),
            watermark_ms: finite(self.pipeline_watermark(pipeline)),
            partitions,
            shards,
            held_back_by: lowest.map(|(_, hold)| hold),
        }
    }
}

/// Stores the answers of `fresh`; a shard that did not answer keeps its last report.
fn keep(cache: &mut Reports, fresh: impl Iterator<Item = Option<ShardReport>>) {
    for (slot, report) in cache.shards.iter_mut().zip(fresh) {
        if report.is_some() {
            *slot = report;
        }
    }
    cache.asked = Some(Instant::now());
}

/// The latency histograms (µs) of one pipeline, or of all, in every shard's report.
fn latency_of(
    reports: &[Option<ShardReport>],
    pipeline: Option<usize>,
) -> impl Iterator<Item = &hdrhistogram::Histogram<u64>> {
    reports.iter().flatten().flat_map(move |r| {
        r.pipelines
            .iter()
            .enumerate()
            .filter(move |(p, _)| pipeline.is_none_or(|want| want == *p))
            .map(|(_, p)| &p.latency_us)
    })
}

fn checkpoint_info(info: &weir_shard::checkpoint::CheckpointInfo) -> CheckpointInfo {
    CheckpointInfo {
        id: info.id,
        completed_at_ms: info.completed_unix_ms as i64,
        duration_ms: info.duration.as_millis() as u64,
        bytes: info.bytes,
    }
}

fn window_state(pipeline: &str, shard: usize, w: OpenWindow, watermark: Watermark) -> WindowState {
    WindowState {
        pipeline: pipeline.to_owned(),
        shard,
        key: w.key.as_str().to_owned(),
        window_start: w.start,
        window_end: w.end,
        count: w.count,
        sum: w.sum,
        min: w.min,
        max: w.max,
        fired: watermark != Watermark::MIN && w.end <= watermark.0,
    }
}

/// The source for humans.
fn describe_source(source: &Source) -> String {
    match source {
        Source::Generator(g) => {
            let total = match g.total {
                0 => "endless".to_owned(),
                n => format!("{n} events"),
            };
            let rate = if g.rate > 0.0 {
                format!("{} events/s", g.rate)
            } else {
                "as fast as possible".to_owned()
            };
            format!(
                "generator {} keys, {total}, {rate}, {} partitions",
                g.keys, g.partitions
            )
        }
        Source::File(f) => {
            let format = match f.format {
                FileFormat::Jsonl => "jsonl",
                FileFormat::Csv => "csv",
            };
            let follow = if f.follow { ", follow" } else { "" };
            format!("file {} ({format}{follow})", f.path)
        }
        Source::Tcp(t) => format!("tcp {}", t.bind),
        Source::Custom(c) => format!("custom {} ({} partitions)", c.name, c.partitions),
        Source::Kafka(k) => format!("kafka {} at {} (group {})", k.topic, k.bootstrap, k.group),
    }
}

/// A watermark as ms, or `None` before any and once finished.
fn finite(w: Watermark) -> Option<i64> {
    (w != Watermark::MIN && w != Watermark::MAX).then_some(w.0)
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

use weir_shard::clock::unix_ms as now_ms;

/// The admin threads share these only among themselves; a panic in one must not
/// silence the API, so a poisoned lock is used as it is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
