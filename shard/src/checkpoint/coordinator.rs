//! The checkpoint coordinator: a thread outside the shards that triggers checkpoints
//! (periodically, on demand, and a final one when the shards have quiesced), gathers
//! the shards' snapshots, writes the manifest, and commits sinks and sources after it.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, bounded};
use weir_config::{Config, Delivery, Sink as SinkSpec};
use weir_engine::chain::{Chain, Link, Plan};
use weir_engine::operator::SLICES;
use weir_storage::CheckpointStore;
use weir_storage::checkpoint::{BlobInfo, CheckpointId};

use super::{
    CheckpointMeta, FrozenShard, PipelineSnapshot, Restore, ShardAck, ShardSnapshot, blob_name,
};
use crate::control::Control;
use crate::message::ShardId;
use crate::metrics::{Counters, Fault};
use crate::sink::transaction;

/// A completed checkpoint, as reported by the admin API.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointInfo {
    /// Its id.
    pub id: u64,
    /// When it completed, ms since the epoch.
    pub completed_unix_ms: u64,
    /// From trigger to committed sinks.
    pub duration: Duration,
    /// Bytes of its snapshot blobs.
    pub bytes: u64,
    /// The longest time one shard's event processing stood still for it.
    pub max_pause: Duration,
}

/// Why an on-demand checkpoint did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The coordinator has ended (the engine is shutting down).
    #[error("the checkpoint coordinator is not running")]
    NotRunning,
    /// No checkpoint completed in time.
    #[error("no checkpoint completed within {waited_ms} ms")]
    Timeout {
        /// How long the caller waited.
        waited_ms: u64,
    },
    /// The checkpoint store could not hand out an id or write the checkpoint.
    #[error("checkpoint {checkpoint}: the checkpoint store: {reason}")]
    Store {
        /// The checkpoint (0 when no id could be had).
        checkpoint: u64,
        /// What the store said.
        reason: String,
    },
    /// A shard's control channel did not take the request in time.
    #[error("checkpoint {checkpoint}: shard {shard} does not take control requests")]
    ShardUnreachable {
        /// The checkpoint.
        checkpoint: u64,
        /// The shard.
        shard: ShardId,
    },
    /// Not every shard acknowledged the checkpoint in time.
    #[error("checkpoint {checkpoint}: not every shard acknowledged within {waited_ms} ms")]
    NotAcknowledged {
        /// The checkpoint.
        checkpoint: u64,
        /// How long the coordinator waited.
        waited_ms: u64,
    },
    /// A shard could not stage a sink's output for the checkpoint.
    #[error("checkpoint {checkpoint}: shard {shard}: staging {sink}: {reason}")]
    Staging {
        /// The checkpoint.
        checkpoint: u64,
        /// The shard.
        shard: ShardId,
        /// The sink.
        sink: String,
        /// What the OS said.
        reason: String,
    },
    /// A shard's snapshot could not be encoded.
    #[error("checkpoint {checkpoint}: shard {shard}: encoding its snapshot: {reason}")]
    Encoding {
        /// The checkpoint.
        checkpoint: u64,
        /// The shard.
        shard: ShardId,
        /// What the encoder said.
        reason: String,
    },
    /// Staged sink output could not be made durable before the manifest.
    #[error("checkpoint {checkpoint}: syncing {}: {reason}", file.display())]
    SyncingStaged {
        /// The checkpoint.
        checkpoint: u64,
        /// The sink file.
        file: PathBuf,
        /// What the OS said.
        reason: String,
    },
    /// The checkpoint is complete (its manifest is durable), but committing its sink
    /// output failed; the commit is retried, and the next start redoes it.
    #[error(
        "checkpoint {checkpoint} is complete, but committing its sink output failed: {reason}; \
         the commit is retried (and redone by the next start), no later output is committed before it"
    )]
    Uncommitted {
        /// The checkpoint.
        checkpoint: u64,
        /// The last error.
        reason: String,
    },
}

/// A checkpoint store error of checkpoint `checkpoint`.
fn store(checkpoint: u64) -> impl Fn(weir_storage::Error) -> CheckpointError {
    move |e| CheckpointError::Store {
        checkpoint,
        reason: e.to_string(),
    }
}

/// The key of the pending-commit fault in [`crate::metrics::Faults`].
const COMMIT_FAULT: &str = "commit";

enum Request {
    Checkpoint(Sender<Result<CheckpointInfo, CheckpointError>>),
}

/// Talks to the coordinator thread.
#[derive(Debug, Clone)]
pub struct CoordinatorHandle {
    requests: Sender<Request>,
    history: Arc<Mutex<VecDeque<CheckpointInfo>>>,
}

/// How long the coordinator waits for a request before it looks at the shards again.
const POLL: Duration = Duration::from_millis(100);

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Request::Checkpoint")
    }
}

impl CoordinatorHandle {
    /// Takes a checkpoint now and waits for it to complete.
    pub fn checkpoint(&self, timeout: Duration) -> Result<CheckpointInfo, CheckpointError> {
        let (tx, rx) = bounded(1);
        self.requests
            .send_timeout(Request::Checkpoint(tx), timeout)
            .map_err(|e| match e {
                crossbeam_channel::SendTimeoutError::Timeout(_) => CheckpointError::Timeout {
                    waited_ms: timeout.as_millis() as u64,
                },
                crossbeam_channel::SendTimeoutError::Disconnected(_) => CheckpointError::NotRunning,
            })?;
        match rx.recv_timeout(timeout) {
            Ok(result) => result,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Err(CheckpointError::Timeout {
                waited_ms: timeout.as_millis() as u64,
            }),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                Err(CheckpointError::NotRunning)
            }
        }
    }

    /// The most recent completed checkpoints, newest last.
    pub fn history(&self) -> Vec<CheckpointInfo> {
        self.history
            .lock()
            .map(|h| h.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The coordinator's state, moved into its thread.
pub struct Coordinator {
    config: Arc<Config>,
    store: CheckpointStore,
    controls: Vec<Sender<Control>>,
    acks: Receiver<ShardAck>,
    counters: Arc<Counters>,
    requests: Receiver<Request>,
    history: Arc<Mutex<VecDeque<CheckpointInfo>>>,
    generator_start_ms: Vec<Option<i64>>,
    /// Exactly-once sink files, with their identity as last committed.
    exactly_once_files: Vec<(PathBuf, Option<transaction::FileId>)>,
    /// A complete checkpoint whose sink output is not committed yet: its commit is
    /// retried with backoff, and every later commit redoes it first.
    uncommitted: Option<Uncommitted>,
    /// Per shard, the committed records its next record may build on.
    records: Vec<ShardRecords>,
}

/// One shard's chain of committed records, and the blobs that hold them.
#[derive(Debug, Default)]
pub struct ShardRecords {
    chain: Chain,
    blobs: BTreeMap<u64, BlobInfo>,
}

impl ShardRecords {
    /// The records of each shard of a restored checkpoint, to build on when the shard
    /// count is the same (each shard then holds exactly what its old self recorded);
    /// otherwise every shard's next record is written in full.
    pub fn resumed(restore: &Restore, nr_shards: usize) -> Vec<ShardRecords> {
        let same = restore
            .meta
            .as_ref()
            .is_some_and(|m| m.nr_shards == nr_shards && restore.shards.len() == nr_shards);
        if restore.id == 0 || !same {
            return (0..nr_shards).map(|_| ShardRecords::default()).collect();
        }
        restore
            .shards
            .iter()
            .map(|old| {
                let links = old
                    .earlier
                    .iter()
                    .map(|(id, s)| Link {
                        id: *id,
                        entries: s.entries as usize,
                    })
                    .collect();
                let head = Link {
                    id: restore.id,
                    entries: old.head.entries as usize,
                };
                let full_at = if old.head.full_at.is_empty() {
                    vec![restore.id; SLICES]
                } else {
                    old.head.full_at.clone()
                };
                ShardRecords {
                    chain: Chain::resume(head, links, full_at),
                    blobs: old.blobs.iter().cloned().collect(),
                }
            })
            .collect()
    }

    /// Writes the shard's record of checkpoint `id` from its frozen state.
    fn record(&self, id: u64, frozen: &FrozenShard) -> (ShardSnapshot, Plan) {
        let ops: Vec<_> = frozen.pipelines.iter().map(|p| &p.operator).collect();
        let plan = self.chain.plan(id, &ops);
        let snapshot = ShardSnapshot {
            shard: frozen.shard,
            pipelines: frozen
                .pipelines
                .iter()
                .map(|p| PipelineSnapshot {
                    id: p.id.clone(),
                    positions: p.positions.clone(),
                    operator: plan.write(&p.operator),
                })
                .collect(),
            chain: plan.chain.clone(),
            full_at: if plan.is_full() {
                Vec::new()
            } else {
                plan.full_at.clone()
            },
            entries: plan.entries as u64,
        };
        (snapshot, plan)
    }

    /// The record of `plan` is committed, in `blob`.
    fn committed(&mut self, plan: Plan, blob: BlobInfo) {
        let id = plan.id;
        let chain = plan.chain.clone();
        self.chain.committed(plan);
        self.blobs.retain(|x, _| chain.contains(x));
        self.blobs.insert(id, blob);
    }
}

/// A complete checkpoint whose commit failed.
#[derive(Debug)]
struct Uncommitted {
    info: CheckpointInfo,
    retry_at: Instant,
    backoff: Duration,
    reason: String,
}

const FIRST_COMMIT_BACKOFF: Duration = Duration::from_millis(100);
const MAX_COMMIT_BACKOFF: Duration = Duration::from_secs(5);

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator").finish_non_exhaustive()
    }
}

/// Sink files written exactly once, each once.
pub fn exactly_once_files(config: &Config) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = config
        .pipelines
        .iter()
        .flat_map(|p| p.sinks.iter().chain(p.late_sink.as_ref()))
        .filter_map(|s| match s {
            SinkSpec::File {
                path,
                delivery: Delivery::ExactlyOnce,
                ..
            } => Some(PathBuf::from(path)),
            _ => None,
        })
        .collect();
    files.sort();
    files.dedup();
    files
}

impl Coordinator {
    /// A coordinator over the shards' control channels and their acknowledgements.
    pub fn new(
        config: Arc<Config>,
        store: CheckpointStore,
        controls: Vec<Sender<Control>>,
        acks: Receiver<ShardAck>,
        counters: Arc<Counters>,
        generator_start_ms: Vec<Option<i64>>,
        records: Vec<ShardRecords>,
    ) -> (Self, CoordinatorHandle) {
        let (tx, rx) = bounded(16);
        let history = Arc::new(Mutex::new(VecDeque::new()));
        let exactly_once_files = exactly_once_files(&config)
            .into_iter()
            .map(|f| (f, None))
            .collect();
        (
            Self {
                config,
                store,
                controls,
                acks,
                counters,
                requests: rx,
                history: Arc::clone(&history),
                generator_start_ms,
                exactly_once_files,
                uncommitted: None,
                records,
            },
            CoordinatorHandle {
                requests: tx,
                history,
            },
        )
    }

    fn all_quiesced(&self) -> bool {
        self.counters
            .shards
            .iter()
            .all(|s| s.quiesced.load(Ordering::Relaxed) || s.stopped.load(Ordering::Relaxed))
    }

    /// Runs until the shards have quiesced; then takes the final checkpoint and tells
    /// every shard to shut down. Fails when the final checkpoint's output could not be
    /// committed (the next start commits it: its manifest is durable).
    pub fn run(mut self) -> Result<(), CheckpointError> {
        let interval = self.config.processing.checkpoint_interval_secs;
        let mut next = (interval > 0.0).then(|| Instant::now() + Duration::from_secs_f64(interval));
        loop {
            let failed =
                self.counters.shards.iter().any(|s| {
                    s.stopped.load(Ordering::Relaxed) && !s.quiesced.load(Ordering::Relaxed)
                });
            if failed {
                // A shard died: no checkpoint can complete; let the others end.
                tracing::error!("a shard failed; no final checkpoint");
                for c in &self.controls {
                    let _ = c.send_timeout(Control::Shutdown, Duration::from_secs(1));
                }
                return Ok(());
            }
            if self.all_quiesced() {
                let result = self.final_checkpoint();
                for c in &self.controls {
                    let _ = c.send_timeout(Control::Shutdown, Duration::from_secs(5));
                }
                return result;
            }
            if self
                .uncommitted
                .as_ref()
                .is_some_and(|u| Instant::now() >= u.retry_at)
            {
                self.retry_commit();
            }
            // Requests wake it at once; the rest (a failed or quiesced shard, a
            // commit to retry) is noticed within POLL.
            let wait = next.map_or(POLL, |t| {
                t.saturating_duration_since(Instant::now()).min(POLL)
            });
            match self.requests.recv_timeout(wait) {
                Ok(Request::Checkpoint(reply)) => {
                    let result = self.take();
                    let _ = reply.try_send(result);
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {}
            }
            if let Some(t) = next
                && Instant::now() >= t
            {
                if let Err(e) = self.take() {
                    tracing::warn!(error = %e, "periodic checkpoint failed");
                }
                next = Some(Instant::now() + Duration::from_secs_f64(interval));
            }
        }
    }

    /// The checkpoint after the shards quiesced, and its commit, retried for up to half
    /// of `processing.shutdown_timeout` (the rest is the shards' to stop in).
    fn final_checkpoint(&mut self) -> Result<(), CheckpointError> {
        let deadline = Instant::now() + self.config.processing.shutdown_timeout / 2;
        match self.take() {
            Ok(info) => {
                tracing::info!(checkpoint = info.id, "final checkpoint complete");
                return Ok(());
            }
            Err(e) if self.uncommitted.is_none() => {
                tracing::error!(error = %e, "final checkpoint failed");
                return Err(e);
            }
            Err(_) => {}
        }
        while let Some(u) = &self.uncommitted {
            if Instant::now() >= deadline {
                let e = CheckpointError::Uncommitted {
                    checkpoint: u.info.id,
                    reason: u.reason.clone(),
                };
                tracing::error!(error = %e, "giving up on the final commit; the next start redoes it");
                self.counters
                    .checkpoints_failed
                    .fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
            std::thread::sleep(
                u.retry_at
                    .saturating_duration_since(Instant::now())
                    .min(deadline.saturating_duration_since(Instant::now())),
            );
            self.retry_commit();
        }
        tracing::info!("final checkpoint complete");
        Ok(())
    }

    fn take(&mut self) -> Result<CheckpointInfo, CheckpointError> {
        let result = self.try_take();
        match &result {
            Ok(_) => self.counters.checkpoints_ok.fetch_add(1, Ordering::Relaxed),
            // A checkpoint whose commit is pending is complete; it counts when committed.
            Err(CheckpointError::Uncommitted { .. }) => 0,
            Err(_) => self
                .counters
                .checkpoints_failed
                .fetch_add(1, Ordering::Relaxed),
        };
        result
    }

    /// Commits the sink output of every complete checkpoint up to `id`, oldest first.
    fn commit_sinks(&mut self, id: u64) -> Result<(), String> {
        for (file, identity) in &mut self.exactly_once_files {
            transaction::commit(file, id, identity)
                .map_err(|e| format!("committing {}: {e}", file.display()))?;
        }
        Ok(())
    }

    /// After the sinks are committed up to `info`: sources may let go of what they
    /// no longer need, and the checkpoint is history.
    fn committed(&mut self, info: &CheckpointInfo) {
        for c in &self.controls {
            let _ = c.try_send(Control::Committed { id: info.id });
        }
        if self.uncommitted.take().is_some() {
            self.counters.faults.clear(COMMIT_FAULT);
            tracing::info!(checkpoint = info.id, "sink output committed after retrying");
        }
        tracing::debug!(
            checkpoint = info.id,
            bytes = info.bytes,
            duration_ms = info.duration.as_millis() as u64,
            "checkpoint complete"
        );
        if let Ok(mut h) = self.history.lock() {
            h.push_back(info.clone());
            while h.len() > 32 {
                h.pop_front();
            }
        }
    }

    /// Records that the commit of the complete checkpoint `info` failed: `/health`
    /// reports it and it is retried with backoff.
    fn commit_failed(&mut self, info: CheckpointInfo, reason: String) -> CheckpointError {
        let backoff = self.uncommitted.as_ref().map_or(FIRST_COMMIT_BACKOFF, |u| {
            (u.backoff * 2).min(MAX_COMMIT_BACKOFF)
        });
        if self.uncommitted.is_none() {
            tracing::error!(checkpoint = info.id, error = %reason, "committing sink output failed; retrying");
        }
        self.counters.faults.raise(
            COMMIT_FAULT,
            Fault::Commit {
                checkpoint: info.id,
                reason: reason.clone(),
            },
        );
        let error = CheckpointError::Uncommitted {
            checkpoint: info.id,
            reason: reason.clone(),
        };
        self.uncommitted = Some(Uncommitted {
            info,
            retry_at: Instant::now() + backoff,
            backoff,
            reason,
        });
        error
    }

    fn retry_commit(&mut self) {
        let Some(u) = self.uncommitted.take() else {
            return;
        };
        let info = u.info.clone();
        // Put it back first, so that a failure doubles its backoff.
        self.uncommitted = Some(u);
        match self.commit_sinks(info.id) {
            Ok(()) => {
                self.counters.checkpoints_ok.fetch_add(1, Ordering::Relaxed);
                self.committed(&info);
            }
            Err(reason) => {
                let _ = self.commit_failed(info, reason);
            }
        }
    }

    fn try_take(&mut self) -> Result<CheckpointInfo, CheckpointError> {
        let started = Instant::now();
        let id = self.store.next_id().map_err(store(0))?;
        let checkpoint = id.get();
        let n = self.controls.len();
        for (shard, c) in self.controls.iter().enumerate() {
            c.send_timeout(
                Control::Checkpoint { id: checkpoint },
                Duration::from_secs(5),
            )
            .map_err(|_| CheckpointError::ShardUnreachable {
                checkpoint,
                shard: ShardId(shard),
            })?;
        }
        let mut snapshots: Vec<Option<(Vec<u8>, Plan)>> = (0..n).map(|_| None).collect();
        let mut max_pause = 0;
        let deadline = started + Duration::from_secs(120);
        while snapshots.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            let ack =
                self.acks
                    .recv_timeout(left)
                    .map_err(|_| CheckpointError::NotAcknowledged {
                        checkpoint,
                        waited_ms: started.elapsed().as_millis() as u64,
                    })?;
            if ack.id != checkpoint {
                continue;
            }
            let shard = ack.shard;
            let frozen = ack.snapshot.map_err(|e| CheckpointError::Staging {
                checkpoint,
                shard,
                sink: e.sink,
                reason: e.source.to_string(),
            })?;
            let Some(records) = self.records.get(shard.index()) else {
                continue;
            };
            let (snapshot, plan) = records.record(checkpoint, &frozen);
            // Let go of the frozen state at once: the shard copies what it changes only
            // while this holds it.
            drop(frozen);
            let bytes = weir_engine::snapshot::encode(&snapshot).map_err(|e| {
                CheckpointError::Encoding {
                    checkpoint,
                    shard,
                    reason: e.to_string(),
                }
            })?;
            max_pause = max_pause.max(ack.pause_us);
            if let Some(slot) = snapshots.get_mut(shard.index()) {
                *slot = Some((bytes, plan));
            }
        }
        // Staged sink output must be durable before the manifest says it exists.
        for (file, _) in &self.exactly_once_files {
            transaction::sync_staged(file, checkpoint).map_err(|e| {
                CheckpointError::SyncingStaged {
                    checkpoint,
                    file: file.clone(),
                    reason: e.to_string(),
                }
            })?;
        }
        let mut writer = self.store.begin(id).map_err(store(checkpoint))?;
        let mut bytes = 0;
        let mut written = Vec::with_capacity(n);
        for (shard, slot) in snapshots.into_iter().enumerate() {
            let Some((blob, plan)) = slot else {
                continue;
            };
            bytes += blob.len() as u64;
            let info = writer
                .put_blob(&blob_name(shard), &blob)
                .map_err(store(checkpoint))?;
            for x in &plan.chain {
                let earlier = self.records[shard].blobs.get(x).ok_or_else(|| {
                    CheckpointError::Store {
                        checkpoint,
                        reason: format!(
                            "shard {shard}'s record builds on checkpoint {x}, whose blob is unknown"
                        ),
                    }
                })?;
                writer
                    .refer(CheckpointId::new(*x), earlier)
                    .map_err(store(checkpoint))?;
            }
            written.push((shard, plan, info));
        }
        let meta = CheckpointMeta {
            nr_shards: n,
            key_groups: self.config.processing.key_groups,
            pipelines: self.config.pipelines.iter().map(|p| p.id.clone()).collect(),
            generator_start_ms: self.generator_start_ms.clone(),
            snapshot_format: super::SNAPSHOT_FORMAT,
        };
        writer.commit(&meta).map_err(store(checkpoint))?;
        for (shard, plan, info) in written {
            self.records[shard].committed(plan, info);
        }
        let info = CheckpointInfo {
            id: id.get(),
            completed_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            duration: started.elapsed(),
            bytes,
            max_pause: Duration::from_micros(max_pause),
        };
        // The checkpoint is complete: only now may its output become visible, after
        // that of every earlier one.
        if let Err(reason) = self.commit_sinks(id.get()) {
            return Err(self.commit_failed(info, reason));
        }
        self.committed(&info);
        Ok(info)
    }
}
