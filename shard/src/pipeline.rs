//! One pipeline as one shard runs it: its sources' partitions on this shard, the window
//! operator for this shard's key groups, the watermark trackers, and the sinks.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hdrhistogram::Histogram;
use weir_config::{Delivery, Pipeline, Sink as SinkSpec};
use weir_engine::{
    AggSpec, Event, InputState, KeyGroupMap, Output, PartitionClock, PartitionId, ResultEncoder,
    Verdict, Watermark, WatermarkTracker, WindowOperator,
};

use crate::control::{PartitionReport, PipelineReport};
use crate::message::ShardId;
use crate::metrics::{Counters, ShardCounters, add};

use crate::sink::{BlackholeSink, ConsoleSink, FileSink, SinkWriter, StagedFileSink};
use crate::source::{Source, SourceOutput};

/// How long a group pipeline waits before it retries a failed restore from Kafka.
const RESTORE_RETRY: Duration = Duration::from_millis(100);

/// A source partition's watermark state on its reading shard.
#[derive(Debug)]
pub(crate) struct PartitionState {
    pub id: PartitionId,
    pub clock: PartitionClock,
    pub finished: bool,
    /// Since when (ms) its watermark has been the lowest.
    pub lowest_since: u64,
    /// Held back by watermark alignment.
    pub aligned_out: bool,
    /// Records read from the partition since its start (kept in checkpoints).
    pub records: u64,
    /// `records` when the partition was last cut.
    pub last_cut: u64,
}

impl PartitionState {
    /// A partition read from its start, as of `now` (ms).
    pub fn new(id: PartitionId, watermark: &weir_config::Watermarks, now: u64) -> Self {
        Self {
            id,
            clock: PartitionClock::new(watermark.delay_ms, watermark.idle_timeout_ms, now),
            finished: false,
            lowest_since: now,
            aligned_out: false,
            records: 0,
            last_cut: 0,
        }
    }

    /// How many records the partition may give before its next cut point.
    pub fn room(&self, batch: u64) -> usize {
        usize::try_from(batch - self.records % batch).unwrap_or(usize::MAX)
    }

    /// After a poll: a partition that reached a cut point (every `batch` records from
    /// its start) or was read to its end (`caught_up`) lets what it read count towards
    /// its watermark.
    pub fn after_poll(&mut self, batch: u64, caught_up: bool) {
        if self.records / batch != self.last_cut / batch || caught_up {
            self.clock.cut();
            self.last_cut = self.records;
        }
    }
}

/// A pipeline on one shard.
pub(crate) struct ShardPipeline {
    pub index: usize,
    pub spec: Pipeline,
    pub map: KeyGroupMap,
    pub shard: usize,
    pub source: Option<Box<dyn Source>>,
    pub source_out: SourceOutput,
    pub partitions: Vec<PartitionState>,
    /// Inputs: this shard's partitions of the pipeline.
    pub source_tracker: WatermarkTracker,
    /// The last source watermark (and idleness) sent to every shard.
    pub sent_watermark: (Watermark, bool),
    /// Events read, per destination shard, not yet sent.
    pub outgoing: Vec<Vec<Event>>,
    /// When the first event of each outgoing buffer was read (ns).
    pub outgoing_since: Vec<u64>,
    pub op: WindowOperator,
    /// Inputs: one per shard (their source watermark for this pipeline).
    pub op_tracker: WatermarkTracker,
    pub output: Output,
    pub encoder: ResultEncoder,
    pub sinks: Vec<SinkWriter>,
    pub late_sink: Option<SinkWriter>,
    pub dead_letter: SinkWriter,
    pub running: bool,
    pub latency_us: Histogram<u64>,
    pub counters: Arc<Counters>,
    /// For a Kafka source: the partition each key (by hash) was first seen on, to find
    /// input not keyed by the window key (see [`ShardPipeline::check_keys`]).
    pub key_partitions: Option<KeyPartitions>,
    /// With a Kafka source assigned by the consumer group: the per-partition operators
    /// and the transaction thread (`op` and `op_tracker` are then unused).
    pub group: Option<Group>,
}

/// Where a restore from Kafka answers.
pub(crate) type RestoreResult =
    crossbeam_channel::Receiver<Result<Vec<crate::kafka::group::Restored>, String>>;

/// A group pipeline's partitions on one shard (see [`crate::kafka::group`]): one window
/// operator per input partition, fed only by it and advanced by its own watermark, so a
/// partition's results depend on its records alone, wherever it is read.
pub(crate) struct Group {
    /// Per entry of `ShardPipeline::partitions`, that partition's operator.
    pub tasks: Vec<WindowOperator>,
    /// The transaction thread.
    pub link: crate::kafka::group::GroupLink,
    /// The source's spec (for restores).
    pub source: weir_config::KafkaSource,
    /// A restore from Kafka in progress: the partitions it restores.
    pub restoring: Option<(Vec<PartitionId>, RestoreResult)>,
    /// When the transaction thread last rolled back, for the log.
    pub rollbacks: u64,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("partitions", &self.tasks.len())
            .finish()
    }
}

/// The input partition of each key seen, and keys seen on a second one.
#[derive(Debug, Default)]
pub(crate) struct KeyPartitions {
    first: hashbrown::HashMap<u64, u32>,
    /// Keys already counted as on two partitions.
    counted: hashbrown::HashSet<u64>,
    logged: bool,
}

impl std::fmt::Debug for ShardPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardPipeline")
            .field("id", &self.spec.id)
            .field("shard", &self.shard)
            .finish()
    }
}

/// Opens a sink of a spec.
pub(crate) fn open_sink(
    spec: &SinkSpec,
    pipeline: &str,
    shard: usize,
    extensions: &crate::Extensions,
    circuit: crate::sink::CircuitFlag,
) -> std::io::Result<SinkWriter> {
    Ok(match spec {
        SinkSpec::Custom { name, options } => {
            let cx = crate::SinkContext {
                pipeline,
                shard: ShardId(shard),
                options,
            };
            let sink = extensions
                .make_sink(name, &cx)
                .map_err(std::io::Error::other)?;
            SinkWriter::new(sink, circuit)
        }
        SinkSpec::Console => SinkWriter::new(Box::new(ConsoleSink), circuit),
        SinkSpec::Blackhole => SinkWriter::new(Box::new(BlackholeSink), circuit).into_discarding(),
        SinkSpec::Kafka(_) => {
            // Opened with its transactional set-up in `build`.
            return Err(std::io::Error::other(
                "a kafka sink is opened by the shard's build",
            ));
        }
        SinkSpec::File {
            path,
            delivery: Delivery::AtLeastOnce,
            delay_ms,
        } => SinkWriter::new(Box::new(FileSink::open(path, *delay_ms)?), circuit),
        SinkSpec::File {
            path,
            delay_ms,
            delivery: Delivery::ExactlyOnce,
        } => SinkWriter::new(
            Box::new(StagedFileSink::open(path, shard, *delay_ms)?),
            circuit,
        ),
    })
}

impl ShardPipeline {
    /// Whether this shard reads partitions of the pipeline that have not ended.
    pub fn has_live_partitions(&self) -> bool {
        // A group member is always live: the group may give it partitions at any time.
        self.group.is_some() || self.partitions.iter().any(|p| !p.finished)
    }

    /// The source watermark of this shard for the pipeline, at `now_ms`.
    pub fn source_watermark(&mut self, now_ms: u64) -> (Watermark, bool) {
        let tracker = &mut self.source_tracker;
        for (i, p) in self.partitions.iter().enumerate() {
            let state = if p.finished {
                InputState::Finished
            } else {
                p.clock.state()
            };
            tracker.set(i, state);
        }
        if self.partitions.is_empty() {
            return (Watermark::MAX, false);
        }
        let idle = self.partitions.iter().any(|p| !p.finished)
            && self
                .partitions
                .iter()
                .all(|p| p.finished || p.clock.is_idle());
        (tracker.update(now_ms), idle)
    }

    /// Counts keys that arrive from two input partitions (logging the first with both
    /// partitions): with several instances on one Kafka topic each key must live in one
    /// partition, or its windows are split between instances.
    fn check_keys(&mut self, events: &[Event]) {
        let Some(kp) = self.key_partitions.as_mut() else {
            return;
        };
        let mut found = 0;
        for e in events {
            let hash = e.key.hash();
            let partition = e.id.partition.0;
            let first = *kp.first.entry(hash).or_insert(partition);
            if first != partition && kp.counted.insert(hash) {
                found += 1;
                if !kp.logged {
                    kp.logged = true;
                    tracing::warn!(
                        pipeline = %self.spec.id,
                        key = %e.key.as_str(),
                        partitions = ?[first, partition],
                        "a key arrives on two input partitions: results are right on one \
                         instance, but instances sharing the topic would split its windows \
                         (key the input by the window key)"
                    );
                }
            }
        }
        if found > 0 {
            add(
                &self.counters.pipelines[self.index][self.shard].keys_on_two_partitions,
                found,
            );
        }
    }

    /// Applies the events of a batch to the operator.
    #[inline]
    pub fn apply(&mut self, events: &[Event], shard: &ShardCounters) {
        self.check_keys(events);
        let mut late = 0;
        let mut dropped = 0;
        if let Some(group) = self.group.as_mut() {
            // Each partition's events to its own operator (they come in runs).
            let mut at: Option<(PartitionId, usize)> = None;
            for e in events {
                let part = e.id.partition;
                let i = match at {
                    Some((p, i)) if p == part => i,
                    _ => match self.partitions.iter().position(|s| s.id == part) {
                        Some(i) => {
                            at = Some((part, i));
                            i
                        }
                        None => continue,
                    },
                };
                match group.tasks[i].process(e, &mut self.output) {
                    Verdict::OnTime => {}
                    Verdict::Late => late += 1,
                    Verdict::Dropped => dropped += 1,
                }
            }
        } else {
            for e in events {
                match self.op.process(e, &mut self.output) {
                    Verdict::OnTime => {}
                    Verdict::Late => late += 1,
                    Verdict::Dropped => dropped += 1,
                }
            }
        }
        let n = events.len() as u64;
        let pc = &self.counters.pipelines[self.index][self.shard];
        add(&pc.processed, n);
        add(&shard.events, n);
        if late > 0 {
            add(&pc.late, late);
        }
        if dropped > 0 {
            add(&pc.dropped_late, dropped);
        }
    }

    /// Sets shard `from`'s source watermark and advances the operator if the minimum moved.
    pub fn on_watermark(&mut self, from: usize, wm: Watermark, idle: bool, now_ms: u64) {
        let state = if wm == Watermark::MAX {
            InputState::Finished
        } else if idle {
            InputState::Idle(wm)
        } else {
            InputState::Active(wm)
        };
        self.op_tracker.set(from, state);
        let combined = self.op_tracker.update(now_ms);
        if combined > self.op.watermark() {
            self.op.advance_watermark(combined, &mut self.output);
            self.counters.pipelines[self.index][self.shard]
                .watermark
                .store(combined.0, Ordering::Relaxed);
        }
    }

    /// Watermark alignment: pauses partitions running more than the allowed drift ahead
    /// of the pipeline's watermark and resumes them when it catches up. Before the
    /// first watermark nothing is held.
    pub fn align(&mut self, now_ms: u64) {
        if self.group.is_some() {
            // Each partition has its own operator and watermark: none waits for another.
            return;
        }
        let wm = self.op.watermark();
        let drift = self
            .spec
            .watermark
            .max_drift_ms
            .max(self.spec.watermark.delay_ms + 1000) as i64;
        let Some(source) = self.source.as_mut() else {
            return;
        };
        for p in &mut self.partitions {
            let ahead = wm != Watermark::MIN
                && wm != Watermark::MAX
                && p.clock.max_time() > wm.0.saturating_add(drift);
            if ahead != p.aligned_out {
                p.aligned_out = ahead;
                source.set_paused(p.id, ahead);
            }
            if ahead {
                // Waiting for others is not silence: never let it look idle.
                p.clock.held_back(now_ms);
            }
        }
    }

    /// Whether the operator has seen the end of every input.
    pub fn operator_finished(&self) -> bool {
        self.group.is_none() && self.op.watermark() == Watermark::MAX
    }

    /// The operators' watermark: the lowest of a group pipeline's partitions.
    pub fn operator_watermark(&self) -> Watermark {
        match &self.group {
            Some(g) => g
                .tasks
                .iter()
                .map(WindowOperator::watermark)
                .min()
                .unwrap_or(Watermark::MIN),
            None => self.op.watermark(),
        }
    }

    /// The operators' state sizes.
    pub fn op_stats(&self) -> weir_engine::StateStats {
        match &self.group {
            Some(g) => g.tasks.iter().map(WindowOperator::stats).fold(
                weir_engine::StateStats::default(),
                |a, b| weir_engine::StateStats {
                    keys: a.keys + b.keys,
                    windows: a.windows + b.windows,
                    bytes: a.bytes + b.bytes,
                },
            ),
            None => self.op.stats(),
        }
    }

    /// Open windows, over every operator.
    pub fn window_count(&self) -> usize {
        match &self.group {
            Some(g) => g.tasks.iter().map(WindowOperator::window_count).sum(),
            None => self.op.window_count(),
        }
    }

    /// The open windows of the keys that `select` accepts, at most `limit`.
    pub fn open_windows(
        &self,
        select: &mut dyn FnMut(&weir_engine::Key) -> bool,
        limit: usize,
    ) -> Vec<weir_engine::OpenWindow> {
        match &self.group {
            Some(g) => {
                let mut out = Vec::new();
                for op in &g.tasks {
                    if out.len() >= limit {
                        break;
                    }
                    out.extend(op.open_windows(select, limit - out.len()));
                }
                out
            }
            None => self.op.open_windows(select, limit),
        }
    }

    /// A group pipeline after a poll: each partition's operator follows its own
    /// watermark.
    pub fn advance_partitions(&mut self) {
        let Some(group) = self.group.as_mut() else {
            return;
        };
        let mut lowest = Watermark::MAX;
        for (p, op) in self.partitions.iter().zip(group.tasks.iter_mut()) {
            let wm = if p.finished {
                Watermark::MAX
            } else {
                p.clock.watermark()
            };
            if wm > op.watermark() {
                op.advance_watermark(wm, &mut self.output);
            }
            lowest = lowest.min(op.watermark());
        }
        if !group.tasks.is_empty() {
            self.counters.pipelines[self.index][self.shard]
                .watermark
                .store(lowest.0, Ordering::Relaxed);
        }
    }

    /// The group moved partitions (or a transaction failed): everything not committed
    /// is dropped — operators, partitions, pending output, the open transaction — and
    /// the partitions held now are restored from Kafka.
    pub fn rebalanced(&mut self, held: Vec<PartitionId>) {
        let Some(group) = self.group.as_mut() else {
            return;
        };
        group.tasks.clear();
        self.partitions.clear();
        self.source_tracker = WatermarkTracker::new(0, self.spec.watermark.max_idle_lag_ms);
        self.output.clear();
        for s in &mut self.sinks {
            s.buf.clear();
        }
        if group
            .link
            .jobs
            .send(crate::kafka::group::Job::Abort)
            .is_err()
        {
            tracing::error!(pipeline = %self.spec.id, "the kafka transaction thread ended");
        }
        self.start_restore(held);
    }

    fn start_restore(&mut self, held: Vec<PartitionId>) {
        self.start_restore_after(held, Duration::ZERO);
    }

    /// Restores `held` on a side thread that first waits `delay` (the back-off after a
    /// failed restore), so the shard's executor never waits for it.
    fn start_restore_after(&mut self, held: Vec<PartitionId>, delay: Duration) {
        let Some(group) = self.group.as_mut() else {
            return;
        };
        group.restoring = None;
        if held.is_empty() {
            return;
        }
        let spec = group.source.clone();
        let ids: Vec<u32> = held.iter().map(|p| p.0).collect();
        match crate::kafka::spawn_unpinned(move || {
            std::thread::sleep(delay);
            crate::kafka::group::restore_partitions(&spec, &ids)
        }) {
            Ok(rx) => group.restoring = Some((held, rx)),
            Err(e) => {
                tracing::error!(pipeline = %self.spec.id, error = %e, "cannot restore partitions")
            }
        }
    }

    /// A group pipeline's turn outside reading: the transaction thread's answers, and a
    /// restore that finished. Whether anything happened.
    pub fn group_turn(&mut self, now_ms: u64) -> bool {
        let Some(group) = self.group.as_mut() else {
            return false;
        };
        let mut work = false;
        while let Some(done) = group.link.try_done() {
            work = true;
            if let crate::kafka::group::Done::RolledBack(reason) = done {
                group.rollbacks += 1;
                tracing::warn!(pipeline = %self.spec.id, shard = self.shard, %reason, "restoring this shard's partitions from kafka after a failed transaction");
                let held = self
                    .source
                    .as_mut()
                    .and_then(|s| s.as_group_member())
                    .map(|s| crate::source::Source::partitions(s))
                    .unwrap_or_default();
                self.rebalanced(held);
                return true;
            }
        }
        let Some(group) = self.group.as_mut() else {
            return work;
        };
        let Some((held, rx)) = &group.restoring else {
            return work;
        };
        let restored = match rx.try_recv() {
            Err(crossbeam_channel::TryRecvError::Empty) => return work,
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::warn!(pipeline = %self.spec.id, error = %e, "restoring partitions from kafka failed; retrying");
                let held = held.clone();
                self.start_restore_after(held, RESTORE_RETRY);
                return true;
            }
            Err(crossbeam_channel::TryRecvError::Disconnected) => {
                let held = held.clone();
                self.start_restore_after(held, RESTORE_RETRY);
                return true;
            }
        };
        group.restoring = None;
        let agg = agg_spec(&self.spec);
        let mut positions = Vec::with_capacity(restored.len());
        for r in restored {
            let id = PartitionId(r.partition);
            let mut op = WindowOperator::new(&self.spec.window, agg.clone());
            let mut part = PartitionState::new(id, &self.spec.watermark, now_ms);
            if let Some(record) = &r.record {
                op.restore(&record.state, &mut |_| true);
                part.clock
                    .restore(record.position.max_time, record.position.pending_max);
                part.records = record.position.records;
                part.last_cut = record.position.records;
            }
            group.tasks.push(op);
            self.partitions.push(part);
            self.source_tracker.add_input();
            positions.push((id, weir_engine::Offset(r.offset)));
        }
        if let Some(source) = self.source.as_mut().and_then(|s| s.as_group_member()) {
            source.resume_assigned(&positions);
        }
        true
    }

    /// What checkpoint `id` commits for a group pipeline: each partition's position and
    /// frozen state, with the consumer's group metadata. `None` while partitions are
    /// being restored (nothing of them is to commit) or without metadata.
    pub fn group_payload(
        &mut self,
        id: u64,
        positions: &[crate::checkpoint::PositionEntry],
    ) -> Option<crate::kafka::group::StatePayload> {
        let group = self.group.as_mut()?;
        if group.restoring.is_some() {
            return None;
        }
        let metadata = self
            .source
            .as_mut()
            .and_then(|s| s.as_group_member())
            .and_then(|s| s.group_metadata())?;
        let mut partitions = Vec::with_capacity(group.tasks.len());
        for (part, op) in self.partitions.iter().zip(group.tasks.iter_mut()) {
            let Some(pos) = positions.iter().find(|p| p.partition == part.id.0) else {
                continue;
            };
            partitions.push((pos.clone(), op.freeze(id)));
        }
        Some(crate::kafka::group::StatePayload {
            checkpoint: id,
            partitions,
            metadata,
        })
    }

    /// Encodes pending results and late events into the sinks' buffers.
    pub fn encode_output(&mut self) {
        if self.output.is_empty() {
            return;
        }
        add(
            &self.counters.pipelines[self.index][self.shard].results,
            self.output.results.len() as u64,
        );
        for sink in &mut self.sinks {
            if sink.discards() {
                continue;
            }
            for r in &self.output.results {
                self.encoder.encode(r, &mut sink.buf);
            }
        }
        if let Some(late) = &mut self.late_sink
            && !late.discards()
        {
            for l in &self.output.late {
                self.encoder.encode_late(l, &mut late.buf);
            }
        }
        self.output.clear();
    }

    /// Buffered sink bytes.
    pub fn buffered_bytes(&self) -> usize {
        self.sinks.iter().map(|s| s.buf.len()).sum::<usize>()
            + self.late_sink.as_ref().map_or(0, |s| s.buf.len())
            + self.dead_letter.buf.len()
    }

    /// This pipeline's report for the admin.
    pub fn report(&self) -> PipelineReport {
        let holding = self
            .source_tracker
            .holding_back()
            .and_then(|i| self.partitions.get(i));
        let positions = self
            .source
            .as_ref()
            .map(|s| s.positions())
            .unwrap_or_default();
        let offset = |id: PartitionId| positions.iter().find(|(p, _)| *p == id).map(|(_, o)| o.0);
        let behind = |id: PartitionId| self.source.as_ref().and_then(|s| s.lag(id));
        PipelineReport {
            running: self.running,
            sources_finished: !self.has_live_partitions(),
            operator_watermark: self.operator_watermark(),
            partitions: self
                .partitions
                .iter()
                .map(|p| PartitionReport {
                    partition: p.id,
                    watermark: if p.finished {
                        Watermark::MAX
                    } else {
                        p.clock.watermark()
                    },
                    max_time: p.clock.max_time(),
                    idle: p.clock.is_idle(),
                    finished: p.finished,
                    offset: offset(p.id),
                    behind: behind(p.id),
                })
                .collect(),
            holding_back: holding.map(|p| (p.id, p.lowest_since)),
            state: self.op_stats(),
            latency_us: self.latency_us.clone(),
        }
    }
}

/// The aggregate spec of a pipeline.
pub(crate) fn agg_spec(p: &Pipeline) -> AggSpec {
    AggSpec::new(&p.aggregates, p.percentile_precision)
}
