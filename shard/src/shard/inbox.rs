//! Inboxes: batches, watermarks, barriers and `Drained` from the other shards, drained
//! round-robin, a bounded number per inbox and turn; an inbox the alignment holds is
//! left alone.

use std::sync::atomic::Ordering;

use super::{Shard, now_ms};
use crate::message::Message;

impl Shard {
    /// Applies one message from shard `from`.
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
                if self.align.barrier(from, id.get()) {
                    self.begin_checkpoint(id.get());
                }
            }
            Message::Drained => self.drained_from[from] = true,
        }
    }

    /// Drains up to a bounded number of messages from every inbox; returns how many.
    pub(super) fn drain_inboxes(&mut self) -> usize {
        let mut handled = 0;
        let n = self.inboxes.len();
        let mut depth = 0;
        for i in 0..n {
            let from = (self.next_inbox + i) % n;
            for _ in 0..16 {
                if self.align.is_held(from) {
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
}
