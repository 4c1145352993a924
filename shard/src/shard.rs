//! The shard loop: one per core, on its own glommio executor.
//!
//! Each turn the shard (1) answers control requests, (2) drains its inboxes round-robin
//! and applies what they carry, (3) unless backpressured, polls its sources and routes
//! each event by key group — to its own operator directly, or into a batch for the
//! owning shard — (4) sends batches that are full or older than the linger time, and the
//! source watermark after them, (5) writes sink buffers. A turn that did nothing backs
//! off: a few yields, then sleeps growing to 1 ms, so an idle engine uses next to no CPU.
//!
//! Backpressure: each (from, to) channel holds `queue_size / batch_size` batches. A
//! message that does not fit waits in the sender's pending queue; while any is pending the
//! sender reads no sources (its partitions are "held back", never idle) but keeps draining
//! its own inboxes, so two shards sending to each other can never deadlock.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use weir_config::Config;
use weir_engine::{Event, Watermark};

use crate::checkpoint::{PipelineSnapshot, PositionEntry, ShardAck, ShardSnapshot};
use crate::control::{Control, ShardReport};
use crate::error::Result;
use crate::message::CheckpointId;
use crate::message::Message;
use crate::metrics::{Counters, add};
use crate::pipeline::ShardPipeline;
use weir_engine::{Offset, PartitionId};

/// Everything a shard is given when it starts.
pub(crate) struct ShardSetup {
    pub shard: usize,
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
}

/// A checkpoint this shard has started and not yet snapshotted.
struct InProgress {
    id: u64,
    /// Per pipeline, the source positions when the barrier was sent.
    positions: Vec<Vec<PositionEntry>>,
    /// Which shards' barriers have arrived (this shard's own included).
    barriers: Vec<bool>,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

struct Shard {
    id: usize,
    nr_shards: usize,
    batch_size: usize,
    linger_ns: u64,
    inboxes: Vec<Option<Receiver<Message>>>,
    outboxes: Vec<Option<Sender<Message>>>,
    pending: Vec<VecDeque<Message>>,
    control: Receiver<Control>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    epoch: Instant,
    pipelines: Vec<ShardPipeline>,
    pool: Vec<Vec<Event>>,
    stopping: bool,
    acks: Sender<ShardAck>,
    checkpoint: Option<InProgress>,
    /// Inboxes held until the checkpoint in progress is aligned.
    blocked: Vec<bool>,
    /// The last checkpoint this shard snapshotted.
    last_checkpoint: u64,
    /// Positions of snapshotted checkpoints, released to sources when committed.
    uncommitted: Vec<(u64, Vec<Vec<PositionEntry>>)>,
    quiesced: bool,
    shutdown: bool,
    drained_sent: bool,
    drained_from: Vec<bool>,
    next_inbox: usize,
    last_sink_flush: Instant,
    last_gauges: Instant,
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

    /// Moves pipeline `p`'s buffer for `dest` into the pending queue.
    fn seal(&mut self, p: usize, dest: usize) {
        if self.pipelines[p].outgoing[dest].is_empty() {
            return;
        }
        let fresh = self.take_buffer();
        let events = std::mem::replace(&mut self.pipelines[p].outgoing[dest], fresh);
        let ingest_ns = self.pipelines[p].outgoing_since[dest];
        self.pending[dest].push_back(Message::Batch {
            pipeline: p,
            events,
            ingest_ns,
        });
    }

    /// Sends pending messages until the channels are full; returns whether all went.
    fn send_pending(&mut self) -> Result<bool> {
        let mut all = true;
        for dest in 0..self.nr_shards {
            let Some(tx) = &self.outboxes[dest] else {
                continue;
            };
            while let Some(msg) = self.pending[dest].pop_front() {
                match tx.try_send(msg) {
                    Ok(()) => {}
                    Err(TrySendError::Full(msg)) => {
                        self.pending[dest].push_front(msg);
                        all = false;
                        break;
                    }
                    Err(TrySendError::Disconnected(_)) => {
                        // The receiver has ended: it only does so once it has every
                        // input's end, so nothing it still needed is lost here.
                        self.pending[dest].clear();
                        break;
                    }
                }
            }
        }
        Ok(all)
    }

    fn backpressured(&self) -> bool {
        self.pending.iter().any(|q| !q.is_empty())
    }

    fn handle_control(&mut self, c: Control) {
        match c {
            Control::SetRunning { pipeline, running } => {
                if let Some(p) = self.pipelines.get_mut(pipeline) {
                    p.running = running;
                }
            }
            Control::Inspect { reply } => {
                let report = ShardReport {
                    shard: self.id,
                    pipelines: self.pipelines.iter().map(|p| p.report()).collect(),
                };
                let _ = reply.try_send(report);
            }
            Control::Checkpoint { id } => self.begin_checkpoint(id),
            Control::Committed { id } => {
                let (done, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.uncommitted)
                    .into_iter()
                    .partition(|(c, _)| *c <= id);
                self.uncommitted = rest;
                if let Some((_, positions)) = done.into_iter().max_by_key(|(c, _)| *c) {
                    for (pl, pos) in self.pipelines.iter_mut().zip(positions) {
                        if let Some(source) = pl.source.as_mut() {
                            let pos: Vec<_> = pos
                                .iter()
                                .map(|p| (PartitionId(p.partition), Offset(p.offset)))
                                .collect();
                            source.commit(&pos);
                        }
                    }
                }
            }
            Control::Shutdown => self.shutdown = true,
            Control::Windows {
                pipeline,
                key,
                prefix,
                limit,
                reply,
            } => {
                let found = match self.pipelines.get(pipeline) {
                    None => Vec::new(),
                    Some(p) => {
                        let mut select = |k: &weir_engine::Key| {
                            key.as_deref().is_none_or(|want| k.as_str() == want)
                                && prefix
                                    .as_deref()
                                    .is_none_or(|pre| k.as_str().starts_with(pre))
                        };
                        p.op.open_windows(&mut select, limit)
                    }
                };
                let _ = reply.try_send(found);
            }
        }
    }

    fn handle_message(&mut self, from: usize, msg: Message) {
        let now = now_ms();
        match msg {
            Message::Batch {
                pipeline,
                mut events,
                ingest_ns,
            } => {
                let now_ns = self.now_ns();
                if let Some(p) = self.pipelines.get_mut(pipeline) {
                    p.apply(&events, &self.counters.shards[self.id]);
                    let _ = p
                        .latency_us
                        .record_n(now_ns.saturating_sub(ingest_ns) / 1000, events.len() as u64);
                }
                events.clear();
                if self.pool.len() < 64 {
                    self.pool.push(events);
                }
            }
            Message::Watermark {
                pipeline,
                watermark,
                idle,
            } => {
                if let Some(p) = self.pipelines.get_mut(pipeline) {
                    p.on_watermark(from, watermark, idle, now);
                }
            }
            Message::Barrier(id) => {
                if id.0 <= self.last_checkpoint {
                    return;
                }
                if self.checkpoint.as_ref().is_none_or(|c| c.id < id.0) {
                    self.begin_checkpoint(id.0);
                }
                if let Some(c) = self.checkpoint.as_mut().filter(|c| c.id == id.0) {
                    c.barriers[from] = true;
                    self.blocked[from] = true;
                }
            }
            Message::Drained => self.drained_from[from] = true,
        }
    }

    /// Drains up to a bounded number of messages from every inbox; returns how many.
    fn drain_inboxes(&mut self) -> usize {
        let mut handled = 0;
        let n = self.inboxes.len();
        let mut depth = 0;
        for i in 0..n {
            let from = (self.next_inbox + i) % n;
            for _ in 0..16 {
                if self.blocked[from] {
                    break;
                }
                let Some(rx) = &self.inboxes[from] else { break };
                match rx.try_recv() {
                    Ok(msg) => {
                        self.handle_message(from, msg);
                        handled += 1;
                    }
                    Err(_) => break,
                }
            }
            if let Some(rx) = &self.inboxes[from] {
                depth += rx.len() * self.batch_size;
            }
        }
        self.next_inbox = (self.next_inbox + 1) % n.max(1);
        self.counters.shards[self.id]
            .queue_depth
            .store(depth as u64, Ordering::Relaxed);
        handled
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
        let n = pl.source_out.events.len();
        let own = self.id;
        {
            let pl = &mut self.pipelines[p];
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
            for (id, line, why) in &invalid {
                pc.count_invalid(why.reason);
                dead_letter_line(&mut pl.dead_letter.buf, &pl.spec.id, id, line, why);
            }
            // This shard's own share goes straight to its operator.
            let mut local = std::mem::take(&mut pl.outgoing[own]);
            if !local.is_empty() {
                pl.apply(&local, &self.counters.shards[self.id]);
                let _ = pl.latency_us.record_n(0, local.len() as u64);
                local.clear();
            }
            pl.outgoing[own] = local;
        }
        for dest in 0..self.nr_shards {
            if dest != own && self.pipelines[p].outgoing[dest].len() >= batch {
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
                if !pl.outgoing[dest].is_empty()
                    && (all || now_ns.saturating_sub(pl.outgoing_since[dest]) >= self.linger_ns)
                {
                    self.seal(p, dest);
                }
            }
        }
    }

    /// Sends each pipeline's source watermark if it changed, after sealing its buffers.
    fn publish_watermarks(&mut self) {
        let now = now_ms();
        for p in 0..self.pipelines.len() {
            let (wm, idle) = self.pipelines[p].source_watermark(now);
            if (wm, idle) == self.pipelines[p].sent_watermark {
                continue;
            }
            if wm < self.pipelines[p].sent_watermark.0 {
                continue;
            }
            // Everything routed before the watermark must travel before it.
            for dest in 0..self.nr_shards {
                self.seal(p, dest);
            }
            for dest in 0..self.nr_shards {
                if dest != self.id {
                    self.pending[dest].push_back(Message::Watermark {
                        pipeline: p,
                        watermark: wm,
                        idle,
                    });
                }
            }
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
        !self.backpressured()
            && self
                .pipelines
                .iter()
                .all(|p| !p.has_live_partitions() && p.operator_finished())
    }

    fn drained(&self) -> bool {
        self.drained_sent
            && !self.backpressured()
            && self
                .drained_from
                .iter()
                .enumerate()
                .all(|(i, &d)| d || i == self.id)
    }

    /// Starts checkpoint `id` on this shard: records source positions, sends the
    /// current watermarks and then the barrier behind every event routed so far.
    fn begin_checkpoint(&mut self, id: u64) {
        if id <= self.last_checkpoint || self.checkpoint.as_ref().is_some_and(|c| c.id >= id) {
            return;
        }
        let positions = self
            .pipelines
            .iter()
            .map(|pl| {
                let clock = |p: PartitionId| {
                    pl.partitions
                        .iter()
                        .find(|s| s.id == p)
                        .map_or((i64::MIN, 0, i64::MIN), |s| {
                            (s.clock.max_time(), s.records, s.clock.pending_max())
                        })
                };
                pl.source
                    .as_ref()
                    .map(|s| s.positions())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(p, o)| {
                        let (max_time, records, pending_max) = clock(p);
                        PositionEntry {
                            partition: p.0,
                            offset: o.0,
                            max_time,
                            records,
                            pending_max,
                        }
                    })
                    .collect()
            })
            .collect();
        if !self.stopping {
            self.publish_watermarks();
        }
        for p in 0..self.pipelines.len() {
            for dest in 0..self.nr_shards {
                self.seal(p, dest);
            }
        }
        for dest in 0..self.nr_shards {
            if dest != self.id {
                self.pending[dest].push_back(Message::Barrier(CheckpointId(id)));
            }
        }
        let mut barriers = vec![false; self.nr_shards];
        barriers[self.id] = true;
        self.checkpoint = Some(InProgress {
            id,
            positions,
            barriers,
        });
    }

    /// When barriers from every shard are in: snapshot, stage sinks, acknowledge.
    async fn complete_checkpoint_if_aligned(&mut self) {
        if !self
            .checkpoint
            .as_ref()
            .is_some_and(|c| c.barriers.iter().all(|&b| b))
        {
            return;
        }
        let Some(ckpt) = self.checkpoint.take() else {
            return;
        };
        let paused = Instant::now();
        let mut pipelines = Vec::with_capacity(self.pipelines.len());
        for (pl, positions) in self.pipelines.iter_mut().zip(&ckpt.positions) {
            pl.encode_output();
            pipelines.push(PipelineSnapshot {
                id: pl.spec.id.clone(),
                positions: positions.clone(),
                operator: pl.op.snapshot(),
            });
        }
        let snapshot = ShardSnapshot {
            shard: self.id as u32,
            pipelines,
        };
        let stop = Arc::clone(&self.stop);
        let mut staged = Ok(());
        for pl in &mut self.pipelines {
            for s in pl.sinks.iter_mut().chain(pl.late_sink.as_mut()) {
                if let Err(e) = s.stage(ckpt.id, &stop).await {
                    staged = Err(format!("{}: {e}", s.describe()));
                }
            }
        }
        let pause_us = paused.elapsed().as_micros() as u64;
        let snapshot = staged.map(|()| snapshot);
        let _ = self.acks.try_send(ShardAck {
            id: ckpt.id,
            shard: self.id,
            snapshot,
            pause_us,
        });
        self.last_checkpoint = ckpt.id;
        self.uncommitted.push((ckpt.id, ckpt.positions));
        if self.uncommitted.len() > 8 {
            self.uncommitted.remove(0);
        }
        self.blocked.iter_mut().for_each(|b| *b = false);
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
            self.complete_checkpoint_if_aligned().await;
            if self.shutdown {
                self.flush_sinks(true).await;
                me.stopped.store(true, Ordering::Relaxed);
                return Ok(());
            }
            if self.stop.load(Ordering::Relaxed) && !self.stopping {
                self.stopping = true;
            }
            let backpressured = self.backpressured();
            // While a checkpoint waits for alignment, sources stand still: nothing read
            // after the recorded positions may reach this shard's operators before its
            // snapshot. Inboxes keep flowing.
            if !self.stopping && !backpressured && self.checkpoint.is_none() {
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
            } else if self.checkpoint.is_none() {
                let now = now_ms();
                for pl in &mut self.pipelines {
                    for s in &mut pl.partitions {
                        s.clock.held_back(now);
                    }
                }
            }
            // A checkpoint's brief pause leaves the clocks alone: counting it as "held
            // back" would restart every idle timer at each checkpoint, and with
            // checkpoints more frequent than the idle timeout a quiet partition would
            // never go idle.
            self.seal_old(self.stopping);
            if !self.stopping {
                self.publish_watermarks();
            } else if !self.drained_sent {
                for dest in 0..self.nr_shards {
                    if dest != self.id {
                        self.pending[dest].push_back(Message::Drained);
                    }
                }
                self.drained_sent = true;
            }
            self.send_pending()?;
            self.flush_sinks(false).await;
            if self.last_gauges.elapsed() >= Duration::from_millis(100) {
                self.last_gauges = Instant::now();
                for pl in &self.pipelines {
                    pl.counters.pipelines[pl.index][pl.shard]
                        .active_windows
                        .store(pl.op.window_count() as u64, Ordering::Relaxed);
                }
            }
            if !self.quiesced
                && self.checkpoint.is_none()
                && (self.finished() || (self.stopping && self.drained()))
            {
                // Everything this shard will ever do is done; the coordinator takes the
                // final checkpoint and then shuts it down.
                self.flush_sinks(true).await;
                for pl in &mut self.pipelines {
                    for s in &mut pl.sinks {
                        let _ = s.sync().await;
                    }
                }
                self.quiesced = true;
                me.quiesced.store(true, Ordering::Relaxed);
            }
            if work > 0 {
                idle_turns = 0;
                glommio::yield_if_needed().await;
                // Other tasks that ran in the yield (connections, sinks) are this
                // shard's work too.
                add(&me.busy_ns, turn.elapsed().as_nanos() as u64);
            } else {
                let spent = turn.elapsed().as_nanos() as u64;
                if self.backpressured() {
                    add(&me.backpressured_ns, spent);
                } else {
                    add(&me.busy_ns, spent);
                }
                idle_turns = idle_turns.saturating_add(1);
                // The executor's task runtime is read (and reset) around the pause:
                // what other tasks of this shard ran meanwhile (a TCP source's
                // connections decode and append while this loop sleeps) is busy time,
                // only the rest is idle.
                let _ = glommio::executor().executor_stats();
                let pause = Instant::now();
                if idle_turns < 16 {
                    glommio::yield_if_needed().await;
                    std::hint::spin_loop();
                } else {
                    let micros = (u64::from(idle_turns - 16) * 50).min(1000);
                    glommio::timer::sleep(Duration::from_micros(micros.max(50))).await;
                }
                let waited = pause.elapsed();
                let others = glommio::executor()
                    .executor_stats()
                    .executor_runtime()
                    .min(waited);
                add(&me.busy_ns, others.as_nanos() as u64);
                let rest = (waited - others).as_nanos() as u64;
                if self.backpressured() {
                    add(&me.backpressured_ns, rest);
                } else {
                    add(&me.idle_ns, rest);
                }
            }
        }
    }
}

fn dead_letter_line(
    out: &mut Vec<u8>,
    pipeline: &str,
    id: &weir_engine::EventId,
    line: &[u8],
    why: &weir_engine::Invalid,
) {
    use weir_engine::result::write_json_str;
    out.extend_from_slice(b"{\"pipeline\":");
    write_json_str(out, pipeline);
    out.extend_from_slice(
        format!(
            ",\"source\":{},\"partition\":{},\"offset\":{},\"reason\":",
            id.source.0, id.partition.0, id.offset.0
        )
        .as_bytes(),
    );
    write_json_str(out, why.reason.label());
    out.extend_from_slice(b",\"error\":");
    write_json_str(out, &why.message);
    out.extend_from_slice(b",\"line\":");
    let shown = &line[..line.len().min(64 * 1024)];
    write_json_str(out, &String::from_utf8_lossy(shown));
    out.extend_from_slice(b"}\n");
}

/// Runs one shard to completion.
pub(crate) async fn run_shard(setup: ShardSetup, pipelines: Vec<ShardPipeline>) -> Result<()> {
    let nr_shards = setup.outboxes.len();
    let mut shard = Shard {
        id: setup.shard,
        nr_shards,
        batch_size: setup.config.processing.batch_size,
        linger_ns: setup.config.processing.batch_linger_ms * 1_000_000,
        inboxes: setup.inboxes,
        outboxes: setup.outboxes,
        pending: (0..nr_shards).map(|_| VecDeque::new()).collect(),
        control: setup.control,
        counters: setup.counters,
        stop: setup.stop,
        epoch: setup.epoch,
        pipelines,
        pool: Vec::new(),
        stopping: false,
        acks: setup.acks,
        checkpoint: None,
        blocked: vec![false; nr_shards],
        last_checkpoint: 0,
        uncommitted: Vec::new(),
        quiesced: false,
        shutdown: false,
        drained_sent: false,
        drained_from: vec![false; nr_shards],
        next_inbox: 0,
        last_sink_flush: Instant::now(),
        last_gauges: Instant::now(),
    };
    let result = shard.run().await;
    if let Err(e) = &result {
        tracing::error!(shard = shard.id, error = %e, "shard stopped");
    }
    shard.counters.shards[shard.id]
        .stopped
        .store(true, Ordering::Relaxed);
    result
}

/// Routes a polled batch: each event moves to the buffer of the shard that owns its key
/// (`bufs[own]` is this shard's own), and each partition's clock observes the newest
/// time it read and its record count grows by what it gave.
///
/// The loop has no branch that depends on an event: with keys spread over shards the
/// destination is a coin toss, and a mispredicted branch per event cost more than the
/// copy itself. Buffers that are empty start their linger clock at `now_ns` up front.
#[inline(never)]
fn route(
    events: &mut Vec<Event>,
    partitions: &mut [crate::pipeline::PartitionState],
    map: &weir_engine::KeyGroupMap,
    bufs: &mut [Vec<Event>],
    since: &mut [u64],
    now_ms: u64,
    now_ns: u64,
) {
    for (buf, since) in bufs.iter_mut().zip(since.iter_mut()) {
        if buf.is_empty() {
            *since = now_ns;
        }
    }
    // Partitions come in runs (a source polls one partition at a time): keep the run's
    // newest time in a register and hand it to the partition's clock when the run ends.
    let mut run: Option<(PartitionId, Option<usize>)> = None;
    let mut newest = i64::MIN;
    let mut count = 0u64;
    let nr = bufs.len();
    for e in events.drain(..) {
        let part = e.id.partition;
        if run.is_none_or(|(id, _)| id != part) {
            if let Some((_, Some(i))) = run {
                partitions[i].clock.observe(newest, now_ms);
                partitions[i].records += count;
            }
            run = Some((part, partitions.iter().position(|s| s.id == part)));
            newest = i64::MIN;
            count = 0;
        }
        newest = newest.max(e.time.0);
        count += 1;
        // `min` keeps the index in bounds without a branch (shards own every group).
        let dest = (map.shard_of_hash(e.key.hash()) as usize).min(nr - 1);
        bufs[dest].push(e);
    }
    if let Some((_, Some(i))) = run {
        partitions[i].clock.observe(newest, now_ms);
        partitions[i].records += count;
    }
}

/// The pending-watermark value a pipeline starts with.
pub(crate) const NOTHING_SENT: (Watermark, bool) = (Watermark::MIN, false);
