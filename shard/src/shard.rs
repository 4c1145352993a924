//! The shard loop: one per core, on its own glommio executor.
//!
//! Each turn the shard (1) answers control requests, (2) drains its inboxes round-robin
//! and applies what they carry, (3) unless backpressured, polls its sources and routes
//! each event by key group — to its own operator directly, or into a batch for the
//! owning shard — (4) sends batches that are full or older than the linger time, and the
//! source watermark after them, (5) writes sink buffers. A turn that did nothing backs
//! off: a few yields, then sleeps growing to 1 ms, 10 ms once idle for about a second
//! and 50 ms ten seconds later, so an idle engine uses next to no CPU.
//!
//! This is the driver: the decisions are the pure core's (`crate::core`): which inbox
//! to hold and when to snapshot ([`Alignment`]), the lifecycle ([`Lifecycle`]), what
//! waits for which shard and so whether to read sources ([`Outbox`]), where each event
//! goes (`route`). Here they are carried out: channels, sources, sinks, sleeps,
//! counters. The checkpoint steps are in `shard/checkpoint.rs`.

mod checkpoint;
mod control;
mod inbox;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use weir_config::Config;
use weir_engine::{Event, Watermark};

use crate::checkpoint::{PositionEntry, ShardAck};
use crate::control::Control;
use crate::core::route::route;
use crate::core::{Alignment, Lifecycle, Offer, Outbox, batching};
use crate::error::Result;
use crate::message::Message;
use crate::message::ShardId;
use crate::metrics::{Counters, add};
use crate::pipeline::{PartitionState, ShardPipeline};

/// Everything a shard is given when it starts.
pub(crate) struct ShardSetup {
    pub shard: ShardId,
    pub config: Arc<Config>,
    pub inboxes: Vec<Option<Receiver<Message>>>,
    pub outboxes: Vec<Option<Sender<Message>>>,
    pub control: Receiver<Control>,
    pub counters: Arc<Counters>,
    pub stop: Arc<AtomicBool>,
    pub epoch: Instant,
    pub acks: Sender<ShardAck>,
    /// Passed once every shard has built its pipelines; sources start after it.
    pub start: Arc<crate::start::StartGate>,
    /// Per pipeline, the TCP source's producer registry (shared by every shard).
    pub registries: Arc<[Option<Arc<crate::source::tcp::Registry>>]>,
}

pub(crate) use crate::clock::unix_ms as now_ms;

struct Shard {
    id: usize,
    nr_shards: usize,
    batch_size: usize,
    linger_ns: u64,
    inboxes: Vec<Option<Receiver<Message>>>,
    outboxes: Vec<Option<Sender<Message>>>,
    /// Messages waiting for each destination (backpressure).
    outbox: Outbox,
    control: Receiver<Control>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    epoch: Instant,
    pipelines: Vec<ShardPipeline>,
    pool: Vec<Vec<Event>>,
    acks: Sender<ShardAck>,
    /// Barrier alignment: the checkpoint in progress, the inboxes it holds.
    align: Alignment,
    /// Per pipeline, the source positions when the checkpoint in progress started.
    started_positions: Vec<Vec<PositionEntry>>,
    /// Positions of snapshotted checkpoints, released to sources when committed.
    uncommitted: Vec<(u64, Vec<Vec<PositionEntry>>)>,
    life: Lifecycle,
    /// Per shard: its `Drained` has arrived.
    drained_from: Vec<bool>,
    next_inbox: usize,
    last_sink_flush: Instant,
    last_gauges: Instant,
    /// Whether a source runs tasks on this executor besides the loop (then a long
    /// idle wait parks the executor rather than sleeping the thread).
    tasks_run_beside: bool,
}

impl Shard {
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn take_buffer(&mut self) -> Vec<Event> {
        self.pool
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.batch_size))
    }

    /// Moves pipeline `p`'s buffer for `dest` into the outbox. (This shard's own
    /// buffer is applied as it is filled, never sealed.)
    fn seal(&mut self, p: usize, dest: usize) {
        if dest == self.id || self.pipelines[p].outgoing[dest].is_empty() {
            return;
        }
        let fresh = self.take_buffer();
        let events = std::mem::replace(&mut self.pipelines[p].outgoing[dest], fresh);
        let ingest_ns = self.pipelines[p].outgoing_since[dest];
        self.outbox.push(
            dest,
            Message::Batch {
                pipeline: p,
                events,
                ingest_ns,
            },
        );
    }

    /// Sends waiting messages until the channels are full.
    fn send_pending(&mut self) {
        let outboxes = &self.outboxes;
        self.outbox.send(|dest, msg| {
            let Some(tx) = outboxes.get(dest).and_then(Option::as_ref) else {
                return Offer::Gone;
            };
            match tx.try_send(msg) {
                Ok(()) => Offer::Sent,
                Err(TrySendError::Full(msg)) => Offer::Full(msg),
                Err(TrySendError::Disconnected(_)) => Offer::Gone,
            }
        });
    }

    /// Polls the sources of pipeline `p` once and routes what they gave.
    async fn poll_source(&mut self, p: usize) -> usize {
        let now = now_ms();
        let now_ns = self.now_ns();
        let batch = self.batch_size;
        let pl = &mut self.pipelines[p];
        let Some(source) = pl.source.as_mut() else {
            return 0;
        };
        pl.source_out.clear();
        pl.source_out.now_ms = now as i64;
        let cut_every = batch as u64;
        pl.source_out
            .set_rooms(pl.partitions.iter().map(|s| (s.id, s.room(cut_every))));
        if let Err(e) = source.poll(batch, &mut pl.source_out).await {
            tracing::warn!(pipeline = %pl.spec.id, error = %e, "source poll failed; retrying");
        }
        if let Some(held) = pl.source_out.rebalanced.take() {
            pl.source_out.clear();
            pl.rebalanced(held);
            return 1;
        }
        let n = pl.source_out.events.len();
        let own = self.id;
        {
            let pl = &mut self.pipelines[p];
            // A source that took on new partitions (a Kafka topic grew): track them.
            for id in std::mem::take(&mut pl.source_out.added) {
                if pl.partitions.iter().all(|s| s.id != id) {
                    pl.partitions
                        .push(PartitionState::new(id, &pl.spec.watermark, now));
                    pl.source_tracker.add_input();
                }
            }
            route(
                &mut pl.source_out.events,
                &mut pl.partitions,
                &pl.map,
                &mut pl.outgoing,
                &mut pl.outgoing_since,
                now,
                now_ns,
            );
            for (id, _, _) in &pl.source_out.invalid {
                if let Some(s) = pl.partitions.iter_mut().find(|s| s.id == id.partition) {
                    s.records += 1;
                }
            }
            // Cut points: every `batch` records of a partition, and where a partition
            // has been read to its current end.
            for s in &mut pl.partitions {
                let caught_up = pl.source_out.empty.contains(&s.id);
                s.after_poll(cut_every, caught_up);
            }
            for part in pl.source_out.empty.drain(..) {
                if let Some(s) = pl.partitions.iter_mut().find(|s| s.id == part) {
                    s.clock.polled_empty(now);
                }
            }
            for part in pl.source_out.finished.drain(..) {
                if let Some(s) = pl.partitions.iter_mut().find(|s| s.id == part) {
                    s.finished = true;
                    s.clock.cut();
                    s.clock.finish();
                }
            }
            let pc = &pl.counters.pipelines[pl.index][pl.shard];
            add(&pc.ingested, n as u64);
            let invalid = std::mem::take(&mut pl.source_out.invalid);
            let topic = match &pl.spec.source {
                weir_config::Source::Kafka(k) => Some(k.topic.as_str()),
                _ => None,
            };
            for (id, line, why) in &invalid {
                pc.count_invalid(why.reason);
                weir_engine::result::dead_letter_line(
                    &mut pl.dead_letter.buf,
                    &pl.spec.id,
                    topic,
                    id,
                    line,
                    why,
                );
            }
            if pl.group.is_some() {
                // A group pipeline's keys live in their partition: all stay here.
                let mut local = std::mem::take(&mut pl.outgoing[own]);
                for dest in (0..pl.outgoing.len()).filter(|d| *d != own) {
                    local.append(&mut pl.outgoing[dest]);
                }
                pl.outgoing[own] = local;
            }
            // This shard's own share goes straight to its operator.
            let mut local = std::mem::take(&mut pl.outgoing[own]);
            if !local.is_empty() {
                pl.apply(&local, &self.counters.shards[self.id]);
                let _ = pl.latency_us.record_n(0, local.len() as u64);
                local.clear();
            }
            pl.outgoing[own] = local;
            pl.advance_partitions();
        }
        for dest in 0..self.nr_shards {
            if dest != own && batching::full(self.pipelines[p].outgoing[dest].len(), batch) {
                self.seal(p, dest);
            }
        }
        n
    }

    /// Seals buffers older than the linger time (or all, when `all`).
    fn seal_old(&mut self, all: bool) {
        let now_ns = self.now_ns();
        for p in 0..self.pipelines.len() {
            for dest in 0..self.nr_shards {
                let pl = &self.pipelines[p];
                let (len, since) = (pl.outgoing[dest].len(), pl.outgoing_since[dest]);
                if batching::due(len, since, now_ns, self.linger_ns, all) {
                    self.seal(p, dest);
                }
            }
        }
    }

    /// Sends each pipeline's source watermark if it changed, after sealing its buffers.
    fn publish_watermarks(&mut self) {
        let now = now_ms();
        for p in 0..self.pipelines.len() {
            if self.pipelines[p].group.is_some() {
                // Its partitions' operators follow their own watermarks.
                continue;
            }
            let (wm, idle) = self.pipelines[p].source_watermark(now);
            if !batching::publish((wm, idle), self.pipelines[p].sent_watermark) {
                continue;
            }
            // Everything routed before the watermark must travel before it.
            for dest in 0..self.nr_shards {
                self.seal(p, dest);
            }
            self.outbox.broadcast(|| Message::Watermark {
                pipeline: p,
                watermark: wm,
                idle,
            });
            self.pipelines[p].sent_watermark = (wm, idle);
            let id = self.id;
            self.pipelines[p].on_watermark(id, wm, idle, now);
        }
    }

    async fn flush_sinks(&mut self, force: bool) {
        let stop = Arc::clone(&self.stop);
        let due = force || self.last_sink_flush.elapsed() >= Duration::from_millis(50);
        for pl in &mut self.pipelines {
            pl.encode_output();
            for s in pl.sinks.iter_mut().chain(pl.late_sink.as_mut()) {
                s.tick().await;
            }
            if !due && pl.buffered_bytes() < crate::sink::FLUSH_BYTES {
                continue;
            }
            for s in &mut pl.sinks {
                s.flush(&stop).await;
            }
            if let Some(s) = &mut pl.late_sink {
                s.flush(&stop).await;
            }
            pl.dead_letter.flush(&stop).await;
        }
        if due {
            self.last_sink_flush = Instant::now();
        }
    }

    fn finished(&self) -> bool {
        !self.outbox.backpressured()
            && self
                .pipelines
                .iter()
                .all(|p| !p.has_live_partitions() && p.operator_finished())
    }

    fn drained(&self) -> bool {
        !self.outbox.backpressured() && self.life.all_drained(self.id, &self.drained_from)
    }

    /// Reads every pipeline's sources once, unless the lifecycle, backpressure or a
    /// checkpoint in progress says not to; returns the events read.
    async fn read_sources(&mut self) -> usize {
        let mut work = 0;
        let aligning = self.align.in_progress().is_some();
        // While a checkpoint waits for alignment, sources stand still: nothing read
        // after the recorded positions may reach this shard's operators before its
        // snapshot. Inboxes keep flowing.
        if self.life.reads_sources() && !self.outbox.backpressured() && !aligning {
            for p in 0..self.pipelines.len() {
                if self.pipelines[p].running && self.pipelines[p].has_live_partitions() {
                    self.pipelines[p].align(now_ms());
                    work += self.poll_source(p).await;
                } else {
                    let now = now_ms();
                    for s in &mut self.pipelines[p].partitions {
                        s.clock.held_back(now);
                    }
                }
            }
        } else if !aligning {
            // A checkpoint's brief pause leaves the clocks alone: counting it as "held
            // back" would restart every idle timer at each checkpoint, and with
            // checkpoints more frequent than the idle timeout a quiet partition would
            // never go idle.
            let now = now_ms();
            for pl in &mut self.pipelines {
                for s in &mut pl.partitions {
                    s.clock.held_back(now);
                }
            }
        }
        work
    }

    /// Once everything this shard will ever do is done (its input finished, or drained
    /// after a stop, with no checkpoint aligning): flush and sync the sinks and say so;
    /// the coordinator takes the final checkpoint and then shuts it down.
    async fn quiesce_if_done(&mut self) {
        let done = matches!(self.life, Lifecycle::Running | Lifecycle::Draining { .. })
            && self.align.in_progress().is_none()
            && (self.finished() || (self.life.stopping() && self.drained()));
        if !done {
            return;
        }
        self.flush_sinks(true).await;
        for pl in &mut self.pipelines {
            for s in &mut pl.sinks {
                let _ = s.sync().await;
            }
        }
        if self.life.quiesce().is_ok() {
            self.counters.shards[self.id]
                .quiesced
                .store(true, Ordering::Relaxed);
        }
    }

    async fn run(&mut self) -> Result<()> {
        let counters = Arc::clone(&self.counters);
        let me = &counters.shards[self.id];
        let mut idle_turns: u32 = 0;
        loop {
            let turn = Instant::now();
            me.heartbeat_ms.store(now_ms(), Ordering::Relaxed);
            while let Ok(c) = self.control.try_recv() {
                self.handle_control(c);
            }
            let mut work = self.drain_inboxes();
            if self.align.in_progress().is_none() {
                // Not while a checkpoint aligns: its positions are recorded.
                let now = now_ms();
                for pl in &mut self.pipelines {
                    work += usize::from(pl.group_turn(now));
                }
            }
            self.complete_checkpoint_if_aligned().await;
            if self.life == Lifecycle::Ended {
                self.flush_sinks(true).await;
                for pl in &mut self.pipelines {
                    for s in pl.sinks.iter_mut().chain(pl.late_sink.as_mut()) {
                        s.close().await;
                    }
                }
                me.stopped.store(true, Ordering::Relaxed);
                return Ok(());
            }
            if self.stop.load(Ordering::Relaxed) {
                self.life.stop();
            }
            // What a control request or the inboxes put in the outbox (a checkpoint's
            // barrier and watermarks) goes now: left waiting, it would look like
            // backpressure to `read_sources`, which then restarts every idle timer.
            self.send_pending();
            work += self.read_sources().await;
            self.seal_old(self.life.stopping());
            if !self.life.stopping() {
                self.publish_watermarks();
            } else if self.life.take_drained_to_send() {
                // The last message to every other shard: nothing follows it.
                self.outbox.broadcast(|| Message::Drained);
            }
            self.send_pending();
            self.flush_sinks(false).await;
            if self.last_gauges.elapsed() >= Duration::from_millis(100) {
                self.last_gauges = Instant::now();
                for pl in &self.pipelines {
                    pl.counters.pipelines[pl.index][pl.shard]
                        .active_windows
                        .store(pl.window_count() as u64, Ordering::Relaxed);
                }
            }
            self.quiesce_if_done().await;
            if work > 0 {
                idle_turns = 0;
                glommio::yield_if_needed().await;
                // Other tasks that ran in the yield (connections, sinks) are this
                // shard's work too.
                add(&me.busy_ns, turn.elapsed().as_nanos() as u64);
            } else {
                idle_turns = idle_turns.saturating_add(1);
                self.pause(idle_turns, turn).await;
            }
        }
    }

    /// A turn that did nothing: a few yields, then sleeps growing to 1 ms, and after
    /// about a second of nothing [`LONG_IDLE_SLEEP`], then [`LONGER_IDLE_SLEEP`]. The
    /// executor's task runtime is read (and reset) around the pause: what other tasks
    /// of this shard ran meanwhile (a TCP source's connections decode and append while
    /// this loop sleeps) is busy time, only the rest is idle.
    async fn pause(&self, idle_turns: u32, turn: Instant) {
        let me = &self.counters.shards[self.id];
        let spent = turn.elapsed().as_nanos() as u64;
        if self.outbox.backpressured() {
            add(&me.backpressured_ns, spent);
        } else {
            add(&me.busy_ns, spent);
        }
        let _ = glommio::executor().executor_stats();
        let pause = Instant::now();
        if idle_turns < 16 {
            glommio::yield_if_needed().await;
            std::hint::spin_loop();
        } else if idle_turns < LONG_IDLE_TURNS {
            let micros = (u64::from(idle_turns - 16) * 50).min(1000);
            glommio::timer::sleep(Duration::from_micros(micros.max(50))).await;
        } else {
            // Idle for about a second: a turn's wake-up costs a few io_uring_enter and a
            // membarrier call (glommio parking), so 1000 a second were 6% of a core per
            // shard. 10 ms, and 50 ms after ten seconds more.
            let sleep = if idle_turns < LONG_IDLE_TURNS + 1_000 {
                LONG_IDLE_SLEEP
            } else {
                LONGER_IDLE_SLEEP
            };
            if self.tasks_run_beside {
                glommio::timer::sleep(sleep).await;
            } else {
                // Nothing else runs on this executor: block the thread, no parking.
                std::thread::sleep(sleep);
            }
        }
        let waited = pause.elapsed();
        let others = glommio::executor()
            .executor_stats()
            .executor_runtime()
            .min(waited);
        add(&me.busy_ns, others.as_nanos() as u64);
        let rest = (waited - others).as_nanos() as u64;
        if self.outbox.backpressured() {
            add(&me.backpressured_ns, rest);
        } else {
            add(&me.idle_ns, rest);
        }
    }
}

/// Idle turns after which a shard sleeps [`LONG_IDLE_SLEEP`] (about a second of
/// 1 ms sleeps).
const LONG_IDLE_TURNS: u32 = 1_000;

/// How long a long-idle shard sleeps between turns: the most it adds to the first
/// event's way after a quiet spell (TCP connections are read and acknowledged by their
/// own tasks meanwhile), and an idle engine uses under 1% of a core per shard.
const LONG_IDLE_SLEEP: Duration = Duration::from_millis(10);

/// How long a shard idle for about ten seconds more sleeps between turns (a tenth of
/// Flink's default buffer timeout): an idle engine uses well under 2% of a core.
const LONGER_IDLE_SLEEP: Duration = Duration::from_millis(50);

/// Runs one shard to completion.
pub(crate) async fn run_shard(setup: ShardSetup, pipelines: Vec<ShardPipeline>) -> Result<()> {
    let nr_shards = setup.outboxes.len();
    let mut shard = Shard {
        id: setup.shard.index(),
        nr_shards,
        batch_size: setup.config.processing.batch_size,
        linger_ns: setup.config.processing.batch_linger_ms * 1_000_000,
        inboxes: setup.inboxes,
        outboxes: setup.outboxes,
        outbox: Outbox::new(setup.shard.index(), nr_shards),
        control: setup.control,
        counters: setup.counters,
        stop: setup.stop,
        epoch: setup.epoch,
        pipelines,
        pool: Vec::new(),
        acks: setup.acks,
        align: Alignment::new(setup.shard.index(), nr_shards),
        started_positions: Vec::new(),
        uncommitted: Vec::new(),
        life: Lifecycle::Running,
        drained_from: vec![false; nr_shards],
        next_inbox: 0,
        last_sink_flush: Instant::now(),
        last_gauges: Instant::now(),
        tasks_run_beside: false,
    };
    shard.tasks_run_beside = shard
        .pipelines
        .iter()
        .any(|p| p.source.as_ref().is_some_and(|s| s.runs_tasks()));
    let result = shard.run().await;
    if let Err(e) = &result {
        tracing::error!(shard = shard.id, error = %e, "shard stopped");
    }
    shard.counters.shards[shard.id]
        .stopped
        .store(true, Ordering::Relaxed);
    result
}

/// The pending-watermark value a pipeline starts with.
pub(crate) const NOTHING_SENT: (Watermark, bool) = (Watermark::MIN, false);
