//! weir-shard: the thread-per-core runtime of weir.
//!
//! One glommio executor per shard, each pinned to a core of the core map (or unpinned),
//! each owning a range of key groups with their window state, the source partitions
//! assigned to it and its sinks. Events cross shards in batches over bounded crossbeam
//! channels, one per (from, to) pair; watermarks travel in-band behind the events they
//! cover. Nothing on the data path is shared between cores: shards publish counters in
//! padded atomics and answer questions over control channels.
//!
//! It is not the semantics (that is weir-engine) nor the admin API (weir-admin).
//!
//! ```no_run
//! let config = weir_config::load("config/weir.toml").unwrap();
//! let runtime = weir_shard::Runtime::start(config).unwrap();
//! runtime.request_stop();
//! runtime.wait().unwrap();
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod build;
pub mod checkpoint;
pub mod clock;
pub mod control;
pub mod core;
pub mod error;
pub mod extensions;
mod handle;
mod lock;
pub mod message;
pub mod metrics;
mod pipeline;
pub mod placement;
mod shard;
pub mod sink;
pub mod source;
mod start;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use glommio::LocalExecutorBuilder;
use weir_config::{Config, Source as SourceSpec};

pub use control::{Control, PartitionReport, PipelineReport, ShardReport};
pub use error::{Error, Result};
pub use extensions::{Extensions, SinkContext, SourceContext};
pub use handle::{KeyFilter, RuntimeHandle};
pub use lock::FolderLocks;
pub use metrics::Counters;

use shard::{ShardSetup, now_ms, run_shard};

/// A running engine.
pub struct Runtime {
    config: Arc<Config>,
    counters: Arc<Counters>,
    controls: Vec<Sender<Control>>,
    stop: Arc<AtomicBool>,
    handles: Vec<ShardHandle>,
    started: Instant,
    coordinator: checkpoint::CoordinatorHandle,
    coordinator_thread:
        Option<std::thread::JoinHandle<std::result::Result<(), checkpoint::CheckpointError>>>,
    files: Arc<[Vec<PathBuf>]>,
    /// Held for the life of the runtime: no other engine may use these folders.
    _locks: FolderLocks,
}

type ShardHandle = glommio::ExecutorJoinHandle<Result<()>>;

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("shards", &self.controls.len())
            .finish()
    }
}

impl Runtime {
    /// Starts one shard per core of the core map (or `parallelism` unpinned ones).
    pub fn start(config: Config) -> Result<Self> {
        Self::start_with(config, Extensions::default())
    }

    /// Starts the runtime with custom sources and sinks registered by name.
    ///
    /// First locks `data_dir` and the staging folder of every exactly-once sink file
    /// ([`FolderLocks`]): a second engine on them fails here, before reading anything.
    pub fn start_with(config: Config, extensions: Extensions) -> Result<Self> {
        let locks = FolderLocks::acquire(&config)?;
        Self::start_locked(config, extensions, locks)
    }

    /// [`Runtime::start_with`] with the folders already locked (`weir run` locks them
    /// before it binds the admin ports, so that a second engine on the same config is
    /// told of the lock, not of a port). Start-up is all-or-nothing: when a source, a
    /// sink or a listener cannot start, every shard ends without reading or writing and
    /// the error names the config key.
    pub fn start_locked(
        config: Config,
        extensions: Extensions,
        locks: FolderLocks,
    ) -> Result<Self> {
        build::check_extensions(&config, &extensions)?;
        let extensions = Arc::new(extensions);
        let config = Arc::new(config);
        let nr_shards = config.nr_shards();
        placement::ensure_memlock(nr_shards)?;
        build::probe_tcp_ports(&config)?;
        let files = build::plan_files(&config)?;
        std::fs::create_dir_all(config.data_dir.join("dead-letter")).map_err(|source| {
            Error::Io {
                path: config.data_dir.join("dead-letter"),
                source,
            }
        })?;
        let counters = Arc::new(Counters::new(nr_shards, config.pipelines.len()));
        let stop = Arc::new(AtomicBool::new(false));
        let epoch = Instant::now();

        // Restore: the latest complete checkpoint, and sinks repaired to exactly its output.
        let checkpoints = config.data_dir.join("checkpoints");
        let store =
            weir_storage::CheckpointStore::open(&checkpoints, config.storage.retain_checkpoints)
                .map_err(|e| Error::Checkpoint {
                    reason: format!("{}: {e}", checkpoints.display()),
                })?;
        let loading = Instant::now();
        let restore = Arc::new(checkpoint::Restore::load(&config, &store)?);
        if restore.id > 0 {
            tracing::info!(
                checkpoint = restore.id,
                ms = loading.elapsed().as_millis() as u64,
                "checkpoint loaded and decoded"
            );
        }
        for file in checkpoint::exactly_once_files(&config) {
            sink::transaction::recover(&file, restore.id).map_err(|source| Error::Io {
                path: file.clone(),
                source,
            })?;
        }
        let now = now_ms() as i64;
        let generator_start: Vec<Option<i64>> = config
            .pipelines
            .iter()
            .map(|p| match &p.source {
                SourceSpec::Generator(g) => {
                    Some(g.start_ms.or(restore.generator_start(&p.id)).unwrap_or(now))
                }
                _ => None,
            })
            .collect();
        let (ack_tx, ack_rx) = bounded(nr_shards * 4);
        // One producer registry per TCP pipeline, shared by its shards.
        let registries: Arc<[Option<Arc<source::tcp::Registry>>]> = config
            .pipelines
            .iter()
            .map(|p| match &p.source {
                SourceSpec::Tcp(t) => {
                    Some(source::tcp::Registry::new(nr_shards, t.max_connections))
                }
                _ => None,
            })
            .collect();

        // One bounded channel per (from, to) pair, in batches.
        let capacity = (config.processing.queue_size / config.processing.batch_size).max(2);
        let mut senders: Vec<Vec<Option<Sender<_>>>> = vec![vec![None; nr_shards]; nr_shards];
        let mut receivers: Vec<Vec<Option<Receiver<_>>>> = (0..nr_shards)
            .map(|_| (0..nr_shards).map(|_| None).collect())
            .collect();
        for from in 0..nr_shards {
            for to in 0..nr_shards {
                if from != to {
                    let (tx, rx) = bounded(capacity);
                    senders[from][to] = Some(tx);
                    receivers[to][from] = Some(rx);
                }
            }
        }

        let mut controls = Vec::with_capacity(nr_shards);
        let mut handles = Vec::with_capacity(nr_shards);
        let start_gate = Arc::new(start::StartGate::new(nr_shards));
        let launch = Arc::new(start::Launch::new(nr_shards));
        // A start-up that fails after some shards exist: let them through the gate, tell
        // them to abort, and wait for them to end.
        let abort = |handles: Vec<ShardHandle>, error: Error| {
            start_gate.open();
            launch.decide(false);
            for h in handles {
                let _ = h.join();
            }
            Err(error)
        };
        let cores = config.runtime.cores.clone();
        for (shard, (outboxes, inboxes)) in senders.into_iter().zip(receivers).enumerate() {
            let (ctl_tx, ctl_rx) = bounded(64);
            controls.push(ctl_tx);
            let setup = ShardSetup {
                shard,
                config: Arc::clone(&config),
                inboxes,
                outboxes,
                control: ctl_rx,
                counters: Arc::clone(&counters),
                stop: Arc::clone(&stop),
                epoch,
                acks: ack_tx.clone(),
                start: Arc::clone(&start_gate),
                registries: Arc::clone(&registries),
            };
            let files = files.clone();
            let restore = Arc::clone(&restore);
            let extensions = Arc::clone(&extensions);
            let generator_start = generator_start.clone();
            let launch = Arc::clone(&launch);
            let placement = match placement::placement(cores.as_deref(), shard) {
                Ok(p) => p,
                Err(e) => return abort(handles, e),
            };
            let spawned = LocalExecutorBuilder::new(placement)
                .name(&format!("weir-shard-{shard}"))
                .io_memory(placement::IO_MEMORY_BYTES)
                .spawn(move || async move {
                    let report = launch.report(shard);
                    let start = Arc::clone(&setup.start);
                    let arrival = start.arrival();
                    let built = build::build_pipelines(
                        &setup,
                        &files,
                        &generator_start,
                        &restore,
                        &extensions,
                    );
                    arrival.wait();
                    let stopped = &setup.counters.shards[shard].stopped;
                    let mut pipelines = match built {
                        Ok(p) => p,
                        Err(e) => {
                            report.fail(e);
                            stopped.store(true, Ordering::Relaxed);
                            return Ok(());
                        }
                    };
                    for pl in &mut pipelines {
                        if let Some(source) = pl.source.as_mut()
                            && let Err(e) = source.start()
                        {
                            let key = match &pl.spec.source {
                                SourceSpec::Tcp(_) => "source.bind",
                                _ => "source",
                            };
                            report.fail(Error::Start {
                                key: format!("pipelines[{}].{key}", pl.index),
                                reason: e.0,
                            });
                            stopped.store(true, Ordering::Relaxed);
                            return Ok(());
                        }
                    }
                    if !report.ready() {
                        stopped.store(true, Ordering::Relaxed);
                        return Ok(());
                    }
                    run_shard(setup, pipelines).await
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    let error = Error::Executor {
                        shard,
                        reason: e.to_string(),
                    };
                    return abort(handles, error);
                }
            }
        }
        if let Err(e) = launch.wait_for_reports() {
            return abort(handles, e);
        }
        launch.decide(true);
        let (coordinator, coordinator_handle) = checkpoint::Coordinator::new(
            Arc::clone(&config),
            store,
            controls.clone(),
            ack_rx,
            Arc::clone(&counters),
            generator_start,
        );
        let coordinator_thread = std::thread::Builder::new()
            .name("weir-checkpoints".into())
            .spawn(move || coordinator.run());
        let coordinator_thread = match coordinator_thread {
            Ok(t) => t,
            Err(e) => {
                // The shards run already: stop them as at a shutdown, with no checkpoint.
                stop.store(true, Ordering::Relaxed);
                for c in &controls {
                    let _ = c.send_timeout(Control::Shutdown, Duration::from_secs(1));
                }
                for h in handles {
                    let _ = h.join();
                }
                return Err(Error::Executor {
                    shard: nr_shards,
                    reason: format!("cannot start the checkpoint coordinator: {e}"),
                });
            }
        };
        Ok(Self {
            config,
            counters,
            controls,
            stop,
            handles,
            started: epoch,
            coordinator: coordinator_handle,
            coordinator_thread: Some(coordinator_thread),
            files: files.into(),
            _locks: locks,
        })
    }

    /// The configuration it runs.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The shared counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Time since start.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The control channel of each shard.
    pub fn controls(&self) -> &[Sender<Control>] {
        &self.controls
    }

    /// A cloneable view for observers (the admin thread): counters, questions to the
    /// shards, pausing pipelines; see [`RuntimeHandle`].
    pub fn handle(&self) -> RuntimeHandle {
        RuntimeHandle {
            config: Arc::clone(&self.config),
            counters: Arc::clone(&self.counters),
            controls: self.controls.clone().into(),
            stop: Arc::clone(&self.stop),
            files: Arc::clone(&self.files),
            started: self.started,
        }
    }

    /// The flag that asks every shard to stop (a signal handler may raise it).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Asks every shard to stop its sources, drain and finish.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether every shard has ended.
    pub fn is_finished(&self) -> bool {
        self.counters
            .shards
            .iter()
            .all(|s| s.stopped.load(Ordering::Relaxed))
    }

    /// Asks every shard for its report, waiting at most `timeout` for each.
    pub fn inspect(&self, timeout: Duration) -> Vec<Option<ShardReport>> {
        handle::inspect(&self.controls, timeout)
    }

    /// Pauses or resumes reading a pipeline's sources on every shard.
    pub fn set_running(&self, pipeline: usize, running: bool) -> bool {
        handle::set_running(&self.controls, pipeline, running)
    }

    /// Takes a checkpoint now and waits (at most `timeout`) until it is complete.
    pub fn checkpoint(
        &self,
        timeout: Duration,
    ) -> std::result::Result<checkpoint::CheckpointInfo, checkpoint::CheckpointError> {
        self.coordinator.checkpoint(timeout)
    }

    /// Recent completed checkpoints, oldest first.
    pub fn checkpoints(&self) -> Vec<checkpoint::CheckpointInfo> {
        self.coordinator.history()
    }

    /// A cloneable handle on the checkpoint coordinator.
    pub fn coordinator(&self) -> checkpoint::CoordinatorHandle {
        self.coordinator.clone()
    }

    /// Waits for every shard to end.
    pub fn wait(mut self) -> Result<()> {
        let mut first_error = None;
        let coordinator = self.coordinator_thread.take();
        for (shard, h) in self.handles.into_iter().enumerate() {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(Error::Shard {
                        shard,
                        reason: e.to_string(),
                    });
                }
            }
        }
        if let Some(Ok(Err(e))) = coordinator.map(std::thread::JoinHandle::join) {
            first_error.get_or_insert(Error::Checkpoint {
                reason: e.to_string(),
            });
        }
        first_error.map_or(Ok(()), Err)
    }
}
