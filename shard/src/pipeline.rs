//! One pipeline as one shard runs it: its sources' partitions on this shard, the window
//! operator for this shard's key groups, the watermark trackers, and the sinks.

use std::sync::Arc;
use std::sync::atomic::Ordering;

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
        self.partitions.iter().any(|p| !p.finished)
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
        for e in events {
            match self.op.process(e, &mut self.output) {
                Verdict::OnTime => {}
                Verdict::Late => late += 1,
                Verdict::Dropped => dropped += 1,
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
        self.op.watermark() == Watermark::MAX
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
            operator_watermark: self.op.watermark(),
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
            state: self.op.stats(),
            latency_us: self.latency_us.clone(),
        }
    }
}

/// The aggregate spec of a pipeline.
pub(crate) fn agg_spec(p: &Pipeline) -> AggSpec {
    AggSpec::new(&p.aggregates, p.percentile_precision)
}
