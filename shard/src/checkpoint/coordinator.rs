//! The checkpoint coordinator: a thread outside the shards that triggers checkpoints
//! (periodically, on demand, and a final one when the shards have quiesced), gathers
//! the shards' snapshots, writes the manifest, and commits sinks and sources after it.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, bounded};
use weir_config::{Config, Delivery, Sink as SinkSpec};
use weir_storage::CheckpointStore;

use super::{CheckpointMeta, ShardAck, blob_name};
use crate::control::Control;
use crate::metrics::Counters;
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
    /// The checkpoint failed (a shard did not acknowledge, a write failed).
    #[error("{0}")]
    Failed(String),
}

enum Request {
    Checkpoint(Sender<Result<CheckpointInfo, String>>),
}

/// Talks to the coordinator thread.
#[derive(Debug, Clone)]
pub struct CoordinatorHandle {
    requests: Sender<Request>,
    history: Arc<Mutex<VecDeque<CheckpointInfo>>>,
}

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
            Ok(result) => result.map_err(CheckpointError::Failed),
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
    exactly_once_files: Vec<PathBuf>,
}

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
    ) -> (Self, CoordinatorHandle) {
        let (tx, rx) = bounded(16);
        let history = Arc::new(Mutex::new(VecDeque::new()));
        let exactly_once_files = exactly_once_files(&config);
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
    /// every shard to shut down.
    pub fn run(mut self) {
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
                return;
            }
            if self.all_quiesced() {
                match self.take() {
                    Ok(info) => tracing::info!(checkpoint = info.id, "final checkpoint complete"),
                    Err(e) => tracing::error!(error = %e, "final checkpoint failed"),
                }
                for c in &self.controls {
                    let _ = c.send_timeout(Control::Shutdown, Duration::from_secs(5));
                }
                return;
            }
            let wait = next.map_or(Duration::from_millis(20), |t| {
                t.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(20))
            });
            match self.requests.recv_timeout(wait) {
                Ok(Request::Checkpoint(reply)) => {
                    let result = self.take();
                    let _ = reply.try_send(result);
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {}
            }
            if let Some(t) = next {
                if Instant::now() >= t {
                    if let Err(e) = self.take() {
                        tracing::warn!(error = %e, "periodic checkpoint failed");
                    }
                    next = Some(Instant::now() + Duration::from_secs_f64(interval));
                }
            }
        }
    }

    fn take(&mut self) -> Result<CheckpointInfo, String> {
        let result = self.try_take();
        let status = if result.is_ok() {
            &self.counters.checkpoints_ok
        } else {
            &self.counters.checkpoints_failed
        };
        status.fetch_add(1, Ordering::Relaxed);
        result
    }

    fn try_take(&mut self) -> Result<CheckpointInfo, String> {
        let started = Instant::now();
        let id = self.store.next_id().map_err(|e| e.to_string())?;
        let n = self.controls.len();
        for c in &self.controls {
            c.send_timeout(Control::Checkpoint { id: id.get() }, Duration::from_secs(5))
                .map_err(|_| "a shard does not take control requests".to_owned())?;
        }
        let mut snapshots: Vec<Option<Vec<u8>>> = vec![None; n];
        let mut max_pause = 0;
        let deadline = started + Duration::from_secs(120);
        while snapshots.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            let ack = self.acks.recv_timeout(left).map_err(|_| {
                format!(
                    "checkpoint {}: not every shard acknowledged in time",
                    id.get()
                )
            })?;
            if ack.id != id.get() {
                continue;
            }
            let snapshot = ack
                .snapshot
                .map_err(|e| format!("checkpoint {}: shard {}: {e}", id.get(), ack.shard))?;
            let bytes = weir_engine::snapshot::encode(&snapshot)
                .map_err(|e| format!("checkpoint {}: shard {}: {e}", id.get(), ack.shard))?;
            max_pause = max_pause.max(ack.pause_us);
            if let Some(slot) = snapshots.get_mut(ack.shard) {
                *slot = Some(bytes);
            }
        }
        // Staged sink output must be durable before the manifest says it exists.
        for file in &self.exactly_once_files {
            transaction::sync_staged(file, id.get())
                .map_err(|e| format!("checkpoint {}: syncing {}: {e}", id.get(), file.display()))?;
        }
        let mut writer = self.store.begin(id).map_err(|e| e.to_string())?;
        let mut bytes = 0;
        for (shard, blob) in snapshots.iter().enumerate() {
            let blob = blob.as_deref().unwrap_or_default();
            bytes += blob.len() as u64;
            writer
                .put_blob(&blob_name(shard), blob)
                .map_err(|e| e.to_string())?;
        }
        let meta = CheckpointMeta {
            nr_shards: n,
            key_groups: self.config.processing.key_groups,
            pipelines: self.config.pipelines.iter().map(|p| p.id.clone()).collect(),
            generator_start_ms: self.generator_start_ms.clone(),
        };
        writer.commit(&meta).map_err(|e| e.to_string())?;
        // The checkpoint is complete: only now may its output become visible.
        for file in &self.exactly_once_files {
            transaction::commit(file, id.get()).map_err(|e| {
                format!(
                    "checkpoint {}: committing {}: {e}",
                    id.get(),
                    file.display()
                )
            })?;
        }
        for c in &self.controls {
            let _ = c.try_send(Control::Committed { id: id.get() });
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
        tracing::debug!(
            checkpoint = info.id,
            bytes,
            duration_ms = info.duration.as_millis() as u64,
            "checkpoint complete"
        );
        if let Ok(mut h) = self.history.lock() {
            h.push_back(info.clone());
            while h.len() > 32 {
                h.pop_front();
            }
        }
        Ok(info)
    }
}
