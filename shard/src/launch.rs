//! The steps of starting a runtime that need more than a line: restoring the latest
//! checkpoint (and repairing sinks to it), making the channel mesh and the TCP
//! producer registries, starting every shard all-or-nothing, starting the coordinator.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use glommio::LocalExecutorBuilder;
use weir_config::{Config, Source as SourceSpec};
use weir_storage::CheckpointStore;

use crate::checkpoint::{self, CoordinatorHandle, Restore, ShardAck};
use crate::control::Control;
use crate::error::{Error, Result};
use crate::extensions::Extensions;
use crate::message::ShardId;
use crate::metrics::Counters;
use crate::shard::{ShardSetup, now_ms, run_shard};
use crate::source::tcp::Registry;
use crate::{ShardHandle, build, placement, sink, start};

/// Opens the checkpoint store, loads the latest complete checkpoint, and repairs every
/// exactly-once sink file to exactly its output.
pub(crate) fn restore(config: &Config) -> Result<(CheckpointStore, Arc<Restore>)> {
    let checkpoints = config.data_dir.join("checkpoints");
    let store =
        CheckpointStore::open(&checkpoints, config.storage.retain_checkpoints).map_err(|e| {
            Error::Checkpoint {
                reason: format!("{}: {e}", checkpoints.display()),
            }
        })?;
    let loading = Instant::now();
    let restore = Arc::new(Restore::load(config, &store)?);
    if restore.id > 0 {
        tracing::info!(
            checkpoint = restore.id,
            ms = loading.elapsed().as_millis() as u64,
            "checkpoint loaded and decoded"
        );
    }
    for file in checkpoint::exactly_once_files(config) {
        sink::transaction::recover(&file, restore.id).map_err(|source| Error::Io {
            path: file.clone(),
            source,
        })?;
    }
    Ok((store, restore))
}

/// The event time of each generator's first event: configured, or kept by the
/// checkpoint, or now.
pub(crate) fn generator_starts(config: &Config, restore: &Restore) -> Vec<Option<i64>> {
    let now = now_ms() as i64;
    config
        .pipelines
        .iter()
        .map(|p| match &p.source {
            SourceSpec::Generator(g) => {
                Some(g.start_ms.or(restore.generator_start(&p.id)).unwrap_or(now))
            }
            _ => None,
        })
        .collect()
}

/// One producer registry per TCP pipeline, shared by all its shards.
pub(crate) fn registries(config: &Config) -> Arc<[Option<Arc<Registry>>]> {
    config
        .pipelines
        .iter()
        .map(|p| match &p.source {
            SourceSpec::Tcp(t) => Some(Registry::new(config.nr_shards(), t.max_connections)),
            _ => None,
        })
        .collect()
}

/// What every shard builds its pipelines from.
pub(crate) struct ShardInputs {
    pub files: Vec<Vec<PathBuf>>,
    pub generator_start: Vec<Option<i64>>,
    /// Per pipeline, its Kafka topic's watch.
    pub kafka: Vec<Option<Arc<crate::kafka::TopicWatch>>>,
    pub restore: Arc<Restore>,
    pub extensions: Arc<Extensions>,
}

/// What the shards share.
pub(crate) struct Mesh {
    pub config: Arc<Config>,
    pub counters: Arc<Counters>,
    pub stop: Arc<AtomicBool>,
    pub epoch: Instant,
    pub acks: Sender<ShardAck>,
    pub registries: Arc<[Option<Arc<Registry>>]>,
    pub inputs: Arc<ShardInputs>,
}

/// The running shards.
pub(crate) struct Shards {
    pub controls: Vec<Sender<Control>>,
    pub handles: Vec<ShardHandle>,
}

/// One bounded channel per (from, to) pair of shards, in batches: per shard, its
/// outboxes (by destination) and inboxes (by source).
type Channels = (
    Vec<Vec<Option<Sender<crate::message::Message>>>>,
    Vec<Vec<Option<Receiver<crate::message::Message>>>>,
);

fn channels(config: &Config) -> Channels {
    let n = config.nr_shards();
    let capacity = (config.processing.queue_size / config.processing.batch_size).max(2);
    let mut senders: Vec<Vec<Option<Sender<_>>>> = vec![vec![None; n]; n];
    let mut receivers: Vec<Vec<Option<Receiver<_>>>> =
        (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
    for from in 0..n {
        for to in 0..n {
            if from != to {
                let (tx, rx) = bounded(capacity);
                senders[from][to] = Some(tx);
                receivers[to][from] = Some(rx);
            }
        }
    }
    (senders, receivers)
}

/// Starts one shard per core of the core map, all or nothing: each builds its
/// pipelines and starts its sources, then reports; only when every shard is ready do
/// they run. On any failure every shard ends without reading or writing, and the first
/// failure is returned.
pub(crate) fn start_shards(mesh: Mesh) -> Result<Shards> {
    let n = mesh.config.nr_shards();
    let (senders, receivers) = channels(&mesh.config);
    let gate = Arc::new(start::StartGate::new(n));
    let launch = Arc::new(start::Launch::new(n));
    let abort = |handles: Vec<ShardHandle>, error: Error| {
        gate.open();
        launch.decide(false);
        for h in handles {
            let _ = h.join();
        }
        Err(error)
    };
    let mut controls = Vec::with_capacity(n);
    let mut handles = Vec::with_capacity(n);
    for (shard, (outboxes, inboxes)) in senders.into_iter().zip(receivers).enumerate() {
        let (ctl_tx, ctl_rx) = bounded(64);
        controls.push(ctl_tx);
        let setup = ShardSetup {
            shard: ShardId(shard),
            config: Arc::clone(&mesh.config),
            inboxes,
            outboxes,
            control: ctl_rx,
            counters: Arc::clone(&mesh.counters),
            stop: Arc::clone(&mesh.stop),
            epoch: mesh.epoch,
            acks: mesh.acks.clone(),
            start: Arc::clone(&gate),
            registries: Arc::clone(&mesh.registries),
        };
        let placement = match placement::placement(mesh.config.runtime.cores.as_deref(), shard) {
            Ok(p) => p,
            Err(e) => return abort(handles, e),
        };
        let inputs = Arc::clone(&mesh.inputs);
        let launch = Arc::clone(&launch);
        let spawned = LocalExecutorBuilder::new(placement)
            .name(&format!("weir-shard-{shard}"))
            .io_memory(placement::IO_MEMORY_BYTES)
            .spawn(move || shard_main(setup, inputs, launch));
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                let error = Error::Executor {
                    shard: ShardId(shard),
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
    Ok(Shards { controls, handles })
}

/// One shard's thread: build, wait for every shard, start the sources, report, and run
/// only if every shard is ready.
async fn shard_main(
    setup: ShardSetup,
    inputs: Arc<ShardInputs>,
    launch: Arc<start::Launch>,
) -> Result<()> {
    let shard = setup.shard.index();
    let report = launch.report(shard);
    let gate = Arc::clone(&setup.start);
    let arrival = gate.arrival();
    let built = build::build_pipelines(
        &setup,
        &inputs.files,
        &inputs.generator_start,
        &inputs.kafka,
        &inputs.restore,
        &inputs.extensions,
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
                reason: e.to_string(),
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
}

/// The checkpoint coordinator's handle and thread. If the thread cannot start, the
/// shards (running already) are shut down, with no checkpoint.
pub(crate) fn start_coordinator(
    config: &Arc<Config>,
    store: CheckpointStore,
    shards: &Shards,
    acks: Receiver<ShardAck>,
    counters: &Arc<Counters>,
    generator_start: Vec<Option<i64>>,
    records: Vec<checkpoint::ShardRecords>,
) -> Result<(
    CoordinatorHandle,
    std::thread::JoinHandle<std::result::Result<(), checkpoint::CheckpointError>>,
)> {
    let (coordinator, handle) = checkpoint::Coordinator::new(
        Arc::clone(config),
        store,
        shards.controls.clone(),
        acks,
        Arc::clone(counters),
        generator_start,
        records,
    );
    let thread = std::thread::Builder::new()
        .name("weir-checkpoints".into())
        .spawn(move || coordinator.run());
    match thread {
        Ok(t) => Ok((handle, t)),
        Err(e) => {
            for c in &shards.controls {
                let _ = c.send_timeout(Control::Shutdown, Duration::from_secs(1));
            }
            Err(Error::Executor {
                shard: ShardId(shards.controls.len()),
                reason: format!("cannot start the checkpoint coordinator: {e}"),
            })
        }
    }
}
