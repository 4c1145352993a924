//! The shard's side of a checkpoint, carrying out what [`Alignment`] decides: start
//! (record positions, send the barrier behind everything routed), snapshot once
//! aligned, and hand committed positions back to the sources.
//!
//! [`Alignment`]: crate::core::Alignment

use std::sync::Arc;
use std::time::Instant;

use weir_engine::{Offset, PartitionId};

use super::Shard;
use crate::checkpoint::{FrozenPipeline, FrozenShard, PositionEntry, ShardAck, StageError};
use crate::message::ShardId;
use crate::message::{CheckpointId, Message};

impl Shard {
    /// Starts checkpoint `id` (the alignment said so): records source positions, sends
    /// the current watermarks and then the barrier behind every event routed so far.
    pub(super) fn begin_checkpoint(&mut self, id: u64) {
        self.started_positions = self
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
        if !self.life.stopping() {
            self.publish_watermarks();
        }
        for p in 0..self.pipelines.len() {
            for dest in 0..self.nr_shards {
                self.seal(p, dest);
            }
        }
        self.outbox
            .broadcast(|| Message::Barrier(CheckpointId::new(id)));
    }

    /// When barriers from every shard are in: freeze the operators, stage sinks,
    /// acknowledge, release every inbox.
    pub(super) async fn complete_checkpoint_if_aligned(&mut self) {
        let Some(id) = self.align.aligned() else {
            return;
        };
        let positions = std::mem::take(&mut self.started_positions);
        let paused = Instant::now();
        let mut pipelines = Vec::with_capacity(self.pipelines.len());
        let mut group_commits = Vec::new();
        for (i, (pl, positions)) in self.pipelines.iter_mut().zip(&positions).enumerate() {
            pl.encode_output();
            if pl.group.is_some() {
                // Its state and offsets commit in its own Kafka transaction, not here.
                if let Some(payload) = pl.group_payload(id, positions) {
                    group_commits.push((i, payload));
                }
                pipelines.push(FrozenPipeline {
                    id: pl.spec.id.clone(),
                    positions: Vec::new(),
                    operator: pl.op.freeze(id),
                });
                continue;
            }
            pipelines.push(FrozenPipeline {
                id: pl.spec.id.clone(),
                positions: positions.clone(),
                operator: pl.op.freeze(id),
            });
        }
        let snapshot = FrozenShard {
            shard: self.id as u32,
            pipelines,
        };
        let stop = Arc::clone(&self.stop);
        let mut staged = Ok(());
        for pl in &mut self.pipelines {
            for s in pl.sinks.iter_mut().chain(pl.late_sink.as_mut()) {
                if let Err(source) = s.stage(id, &stop).await {
                    staged = Err(StageError {
                        sink: s.describe(),
                        source,
                    });
                }
            }
        }
        // After the sinks handed their lines to the transaction thread: the commit.
        for (i, payload) in group_commits {
            if let Some(g) = &self.pipelines[i].group
                && g.link
                    .jobs
                    .send(crate::kafka::group::Job::Commit(Box::new(payload)))
                    .is_err()
            {
                tracing::error!(pipeline = %self.pipelines[i].spec.id, "the kafka transaction thread ended");
            }
        }
        let pause_us = paused.elapsed().as_micros() as u64;
        let snapshot = staged.map(|()| snapshot);
        let _ = self.acks.try_send(ShardAck {
            id,
            shard: ShardId(self.id),
            snapshot,
            pause_us,
        });
        self.uncommitted.push((id, positions));
        if self.uncommitted.len() > 8 {
            self.uncommitted.remove(0);
        }
        self.align.completed(id);
    }

    /// Checkpoint `id` is committed: sources may let go of what it covers.
    pub(super) fn committed(&mut self, id: u64) {
        for pl in &mut self.pipelines {
            for s in pl.sinks.iter_mut().chain(pl.late_sink.as_mut()) {
                s.committed(id);
            }
        }
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
}
