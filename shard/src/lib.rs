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

pub mod checkpoint;
pub mod control;
pub mod error;
pub mod extensions;
mod handle;
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
use hdrhistogram::Histogram;
use weir_config::{Config, Source as SourceSpec};
use weir_engine::{
    EventDecoder, KeyGroupMap, Output, PartitionClock, PartitionId, ResultEncoder, SourceId,
    WatermarkTracker, WindowOperator,
};

pub use control::{Control, PartitionReport, PipelineReport, ShardReport};
pub use error::{Error, Result};
pub use extensions::{Extensions, SinkContext, SourceContext};
pub use handle::{KeyFilter, RuntimeHandle};
pub use metrics::Counters;

use pipeline::{PartitionState, ShardPipeline, agg_spec, open_sink};
use shard::{ShardSetup, now_ms, run_shard};
use source::{FileSource, GeneratorSource, Source, SourceOutput};

/// A running engine.
pub struct Runtime {
    config: Arc<Config>,
    counters: Arc<Counters>,
    controls: Vec<Sender<Control>>,
    stop: Arc<AtomicBool>,
    handles: Vec<glommio::ExecutorJoinHandle<Result<()>>>,
    started: Instant,
    coordinator: checkpoint::CoordinatorHandle,
    coordinator_thread: Option<std::thread::JoinHandle<()>>,
    files: Arc<[Vec<PathBuf>]>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("shards", &self.controls.len())
            .finish()
    }
}

/// Files of each file-source pipeline, listed once so every shard agrees on partitions.
fn plan_files(config: &Config) -> Result<Vec<Vec<PathBuf>>> {
    config
        .pipelines
        .iter()
        .map(|p| match &p.source {
            SourceSpec::File(f) => {
                let files = source::file_files(&f.path).map_err(|reason| Error::Source {
                    pipeline: p.id.clone(),
                    reason,
                })?;
                if files.is_empty() && !f.follow {
                    tracing::warn!(pipeline = %p.id, path = %f.path, "no input files");
                }
                Ok(files)
            }
            _ => Ok(Vec::new()),
        })
        .collect()
}

impl Runtime {
    /// Starts one shard per core of the core map (or `parallelism` unpinned ones).
    pub fn start(config: Config) -> Result<Self> {
        Self::start_with(config, Extensions::default())
    }

    /// Starts the runtime with custom sources and sinks registered by name.
    pub fn start_with(config: Config, extensions: Extensions) -> Result<Self> {
        for p in &config.pipelines {
            if let SourceSpec::Custom(c) = &p.source {
                if !extensions.has_source(&c.name) {
                    return Err(Error::Source {
                        pipeline: p.id.clone(),
                        reason: format!(
                            "no custom source named {:?} is registered in this program",
                            c.name
                        ),
                    });
                }
            }
            for s in p.sinks.iter().chain(p.late_sink.as_ref()) {
                if let weir_config::Sink::Custom { name, .. } = s {
                    if !extensions.has_sink(name) {
                        return Err(Error::Source {
                            pipeline: p.id.clone(),
                            reason: format!(
                                "no custom sink named {name:?} is registered in this program"
                            ),
                        });
                    }
                }
            }
        }
        let extensions = Arc::new(extensions);
        let config = Arc::new(config);
        let nr_shards = config.nr_shards();
        placement::ensure_memlock(nr_shards)?;
        let files = plan_files(&config)?;
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
            };
            let files = files.clone();
            let restore = Arc::clone(&restore);
            let extensions = Arc::clone(&extensions);
            let generator_start = generator_start.clone();
            let placement =
                placement::placement(cores.as_deref(), shard).inspect_err(|_| start_gate.open())?;
            let handle = LocalExecutorBuilder::new(placement)
                .name(&format!("weir-shard-{shard}"))
                .io_memory(placement::IO_MEMORY_BYTES)
                .spawn(move || async move {
                    let start = Arc::clone(&setup.start);
                    let arrival = start.arrival();
                    let built =
                        build_pipelines(&setup, &files, &generator_start, &restore, &extensions);
                    arrival.wait();
                    let mut pipelines = built?;
                    for pl in &mut pipelines {
                        if let Some(source) = pl.source.as_mut() {
                            source.start().map_err(|e| Error::Source {
                                pipeline: pl.spec.id.clone(),
                                reason: e.0,
                            })?;
                        }
                    }
                    run_shard(setup, pipelines).await
                })
                .map_err(|e| {
                    start_gate.open();
                    Error::Executor {
                        shard,
                        reason: e.to_string(),
                    }
                })?;
            handles.push(handle);
        }
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
            .spawn(move || coordinator.run())
            .map_err(|e| Error::Executor {
                shard: nr_shards,
                reason: format!("cannot start the checkpoint coordinator: {e}"),
            })?;
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
        if let Some(c) = coordinator {
            let _ = c.join();
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn build_pipelines(
    setup: &ShardSetup,
    files: &[Vec<PathBuf>],
    generator_start: &[Option<i64>],
    restore: &checkpoint::Restore,
    extensions: &Extensions,
) -> Result<Vec<ShardPipeline>> {
    let config = &setup.config;
    let nr_shards = setup.outboxes.len();
    let shard = setup.shard;
    let now = now_ms();
    let mut out = Vec::with_capacity(config.pipelines.len());
    for (index, spec) in config.pipelines.iter().enumerate() {
        let agg = agg_spec(spec);
        let needs_value = spec.aggregates.iter().any(|a| a.needs_value());
        let decoder = EventDecoder::new(&spec.event, needs_value);
        let source: Option<Box<dyn Source>> = match &spec.source {
            SourceSpec::Generator(g) => {
                let owned: Vec<PartitionId> = (0..g.partitions)
                    .filter(|p| *p as usize % nr_shards == shard)
                    .map(PartitionId)
                    .collect();
                let start = generator_start
                    .get(index)
                    .copied()
                    .flatten()
                    .unwrap_or(now as i64);
                Some(Box::new(GeneratorSource::new(g, &owned, start)))
            }
            SourceSpec::File(f) => {
                let owned = files[index]
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % nr_shards == shard)
                    .map(|(i, path)| (PartitionId(i as u32), path.clone()))
                    .collect();
                Some(Box::new(FileSource::new(f, owned)))
            }
            SourceSpec::Custom(_) => None,
            SourceSpec::Tcp(t) => Some(Box::new(
                source::TcpSource::open(source::tcp::TcpSourceConfig {
                    pipeline: &spec.id,
                    pipeline_index: index,
                    spec: t,
                    storage: &config.storage,
                    data_dir: &config.data_dir,
                    shard,
                    nr_shards,
                    decoder: decoder.clone(),
                    counters: Arc::clone(&setup.counters),
                })
                .map_err(|e| Error::Source {
                    pipeline: spec.id.clone(),
                    reason: e.to_string(),
                })?,
            )),
        };
        let source = match (&spec.source, source) {
            (SourceSpec::Custom(c), _) => {
                let owned: Vec<PartitionId> = (0..c.partitions)
                    .filter(|p| *p as usize % nr_shards == shard)
                    .map(PartitionId)
                    .collect();
                let cx = SourceContext {
                    pipeline: &spec.id,
                    shard,
                    partitions: &owned,
                    options: &c.options,
                };
                Some(
                    extensions
                        .make_source(&c.name, &cx)
                        .map_err(|reason| Error::Source {
                            pipeline: spec.id.clone(),
                            reason,
                        })?,
                )
            }
            (_, source) => source,
        };
        let partitions: Vec<PartitionState> = source
            .as_ref()
            .map(|s| s.partitions())
            .unwrap_or_default()
            .into_iter()
            .map(|id| PartitionState {
                id,
                clock: PartitionClock::new(
                    spec.watermark.delay_ms,
                    spec.watermark.idle_timeout_ms,
                    now,
                ),
                finished: false,
                lowest_since: now,
                aligned_out: false,
            })
            .collect();
        let counters = &setup.counters;
        let circuit = sink::CircuitFlag::new(Arc::clone(counters), shard);
        let io = |path: &str| {
            let path = path.to_owned();
            move |source| Error::Io {
                path: PathBuf::from(path),
                source,
            }
        };
        let sinks = spec
            .sinks
            .iter()
            .map(|s| {
                open_sink(s, &spec.id, shard, extensions, circuit.clone())
                    .map_err(io(&s.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let late_sink = spec
            .late_sink
            .as_ref()
            .map(|s| {
                open_sink(s, &spec.id, shard, extensions, circuit.clone())
                    .map_err(io(&s.to_string()))
            })
            .transpose()?;
        let dl_path = config
            .data_dir
            .join("dead-letter")
            .join(format!("{}.jsonl", spec.id));
        let dead_letter = sink::SinkWriter::new(
            Box::new(
                sink::FileSink::open(&dl_path, 0).map_err(io(&dl_path.display().to_string()))?,
            ),
            circuit,
        );
        let nr_parts = partitions.len();
        // Restore: seek owned partitions, resume their clocks, and take the window
        // state of the key groups this shard owns from every old shard's snapshot.
        let mut source = source;
        let mut partitions = partitions;
        let positions = restore.positions(&spec.id);
        for part in &mut partitions {
            if let Some(&(offset, max_time)) = positions.get(&part.id.0) {
                if let Some(s) = source.as_mut() {
                    s.seek(part.id, weir_engine::Offset(offset))
                        .map_err(|e| Error::Source {
                            pipeline: spec.id.clone(),
                            reason: e.to_string(),
                        })?;
                }
                part.clock.restore_max_time(max_time);
            }
        }
        let restoring = Instant::now();
        let mut op = WindowOperator::new(&spec.window, agg.clone());
        let map = KeyGroupMap::new(config.processing.key_groups, nr_shards as u32);
        let mut mine = |k: &weir_engine::Key| map.shard_of_hash(k.hash()) as usize == shard;
        for old in &restore.shards {
            for p in old.pipelines.iter().filter(|p| p.id == spec.id) {
                op.restore(&p.operator, &mut mine);
            }
        }
        if restore.id > 0 {
            tracing::info!(
                shard,
                pipeline = %spec.id,
                windows = op.window_count(),
                ms = restoring.elapsed().as_millis() as u64,
                "window state restored"
            );
        }
        out.push(ShardPipeline {
            index,
            spec: spec.clone(),
            map: KeyGroupMap::new(config.processing.key_groups, nr_shards as u32),
            shard,
            source,
            source_out: SourceOutput::new(decoder, SourceId(index as u32)),
            partitions,
            source_tracker: WatermarkTracker::new(nr_parts, spec.watermark.max_idle_lag_ms),
            sent_watermark: shard::NOTHING_SENT,
            outgoing: (0..nr_shards).map(|_| Vec::new()).collect(),
            outgoing_since: vec![0; nr_shards],
            op,
            op_tracker: WatermarkTracker::new(nr_shards, spec.watermark.max_idle_lag_ms),
            output: Output::default(),
            encoder: ResultEncoder::new(&spec.id, agg),
            sinks,
            late_sink,
            dead_letter,
            running: true,
            latency_us: Histogram::new(3).map_err(|e| Error::Shard {
                shard,
                reason: e.to_string(),
            })?,
            counters: Arc::clone(counters),
        });
    }
    Ok(out)
}
