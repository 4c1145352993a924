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
pub mod fuzzing;
mod handle;
pub mod kafka;
mod launch;
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

use crossbeam_channel::{Sender, bounded};
use weir_config::Config;

pub use control::{Control, PartitionReport, PipelineReport, ShardReport};
pub use error::{Error, Result};
pub use extensions::{Extensions, SinkContext, SourceContext};
pub use handle::{KeyFilter, RuntimeHandle};
pub use lock::FolderLocks;
pub use message::{CheckpointId, ShardId};
pub use metrics::Counters;

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
        let kafka = kafka::plan(&config)?;
        let dead_letters = config.data_dir.join("dead-letter");
        std::fs::create_dir_all(&dead_letters).map_err(|source| Error::Io {
            path: dead_letters,
            source,
        })?;
        let (store, restore) = launch::restore(&config)?;
        let generator_start = launch::generator_starts(&config, &restore);
        let records = checkpoint::ShardRecords::resumed(&restore, nr_shards);
        let counters = Arc::new(Counters::new(nr_shards, config.pipelines.len()));
        let stop = Arc::new(AtomicBool::new(false));
        let epoch = Instant::now();
        let (acks, ack_rx) = bounded(nr_shards * 4);
        let inputs = Arc::new(launch::ShardInputs {
            files: files.clone(),
            generator_start: generator_start.clone(),
            kafka,
            restore,
            extensions,
        });
        let shards = launch::start_shards(launch::Mesh {
            config: Arc::clone(&config),
            counters: Arc::clone(&counters),
            stop: Arc::clone(&stop),
            epoch,
            acks,
            registries: launch::registries(&config),
            inputs,
        })?;
        let (coordinator, coordinator_thread) = launch::start_coordinator(
            &config,
            store,
            &shards,
            ack_rx,
            &counters,
            generator_start,
            records,
        )
        .inspect_err(|_| {
            // The shards run already: stop them as at a shutdown, with no checkpoint.
            stop.store(true, Ordering::Relaxed);
        })?;
        Ok(Self {
            config,
            counters,
            controls: shards.controls,
            stop,
            handles: shards.handles,
            started: epoch,
            coordinator,
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
                        shard: message::ShardId(shard),
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
