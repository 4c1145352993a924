//! Building a shard's pipelines: its share of each pipeline's source partitions, its
//! sinks, and its share of the restored checkpoint (source positions, window state).
//!
//! Errors name the config key they come from (`pipelines[0].sinks[1]: …`), so that a
//! start-up that fails tells the user what to change.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;
use weir_config::{Config, Source as SourceSpec};
use weir_engine::{
    EventDecoder, KeyGroupMap, Output, PartitionClock, PartitionId, ResultEncoder, SourceId,
    WatermarkTracker, WindowOperator,
};

use crate::error::{Error, Result};
use crate::extensions::{Extensions, SourceContext};
use crate::message::ShardId;
use crate::pipeline::{PartitionState, ShardPipeline, agg_spec, open_sink};
use crate::shard::{ShardSetup, now_ms};
use crate::source::{self, FileSource, GeneratorSource, Source, SourceOutput};
use crate::{checkpoint, shard, sink};

/// Builds shard `setup.shard`'s part of every pipeline.
pub(crate) fn build_pipelines(
    setup: &ShardSetup,
    files: &[Vec<PathBuf>],
    generator_start: &[Option<i64>],
    kafka: &[Option<Arc<crate::kafka::TopicWatch>>],
    restore: &checkpoint::Restore,
    extensions: &Extensions,
) -> Result<Vec<ShardPipeline>> {
    let config = &setup.config;
    let nr_shards = setup.outboxes.len();
    let shard = setup.shard.index();
    let now = now_ms();
    let mut out = Vec::with_capacity(config.pipelines.len());
    for (index, spec) in config.pipelines.iter().enumerate() {
        let agg = agg_spec(spec);
        let needs_value = spec.aggregates.iter().any(|a| a.needs_value());
        let decoder = match &spec.source {
            // The event time is the record's timestamp: no field is read for it.
            SourceSpec::Kafka(k) if k.event_time == weir_config::KafkaEventTime::Record => {
                let mut fields = spec.event.clone();
                fields.time = weir_config::TimeField::Processing;
                EventDecoder::new(&fields, needs_value)
            }
            _ => EventDecoder::new(&spec.event, needs_value)
                .with_max_future(spec.watermark.max_future_ms),
        };
        let decoder = if agg.keeps_values() {
            decoder.with_max_abs_value(weir_engine::aggregate::PERCENTILE_MAX_ABS)
        } else {
            decoder
        };
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
            SourceSpec::Kafka(k) => {
                let watch = kafka
                    .get(index)
                    .cloned()
                    .flatten()
                    .ok_or_else(|| Error::Start {
                        key: format!("pipelines[{index}].source"),
                        reason: "the kafka topic was not planned".into(),
                    })?;
                Some(Box::new(
                    crate::kafka::KafkaSource::open(k, watch, shard, nr_shards).map_err(|e| {
                        Error::Start {
                            key: format!("pipelines[{index}].source"),
                            reason: e.to_string(),
                        }
                    })?,
                ))
            }
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
                    registry: setup
                        .registries
                        .get(index)
                        .cloned()
                        .flatten()
                        .unwrap_or_else(|| {
                            source::tcp::Registry::new(nr_shards, t.max_connections)
                        }),
                })
                .map_err(|e| Error::Start {
                    key: format!("pipelines[{index}].source"),
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
                    shard: ShardId(shard),
                    partitions: &owned,
                    options: &c.options,
                };
                Some(
                    extensions
                        .make_source(&c.name, &cx)
                        .map_err(|reason| Error::Start {
                            key: format!("pipelines[{index}].source"),
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
                records: 0,
                last_cut: 0,
            })
            .collect();
        let counters = &setup.counters;
        let circuit = sink::CircuitFlag::new(Arc::clone(counters), shard);
        let start_error = |key: String, sink: &weir_config::Sink| {
            let sink = sink.to_string();
            move |e: std::io::Error| Error::Start {
                key,
                reason: format!("{sink}: {e}"),
            }
        };
        let setup_counters = &setup.counters;
        let open = |s: &weir_config::Sink, key: String, role: String| -> Result<sink::SinkWriter> {
            match s {
                weir_config::Sink::Kafka(k) => {
                    let setup = crate::kafka::SinkSetup {
                        spec: k.clone(),
                        app_name: config.app_name.clone(),
                        pipeline: spec.id.clone(),
                        role,
                        shard,
                        nr_shards,
                        data_dir: config.data_dir.clone(),
                        restored: restore.id,
                        old_shards: restore.shards.len(),
                    };
                    let sink = crate::kafka::KafkaSink::open(&setup)
                        .map_err(|reason| Error::Start { key, reason })?;
                    if let Ok(mut all) = setup_counters.kafka_sinks.lock() {
                        all.push(crate::metrics::KafkaSinkEntry {
                            pipeline: index,
                            sink: setup.role.clone(),
                            shard,
                            status: sink.status(),
                        });
                    }
                    Ok(sink::SinkWriter::new(Box::new(sink), circuit.clone()))
                }
                _ => open_sink(s, &spec.id, shard, extensions, circuit.clone())
                    .map_err(start_error(key, s)),
            }
        };
        let group_setup = match (&spec.source, spec.sinks.as_slice()) {
            (SourceSpec::Kafka(k), [weir_config::Sink::Kafka(out)])
                if k.assignment == weir_config::KafkaAssignment::Group =>
            {
                Some(crate::kafka::group::GroupSetup {
                    source: k.clone(),
                    sink: out.clone(),
                    app_name: config.app_name.clone(),
                    pipeline: spec.id.clone(),
                    instance: config.instance.clone(),
                    shard,
                })
            }
            _ => None,
        };
        let mut group = None;
        let sinks = match &group_setup {
            Some(g) => {
                let (link, sink) =
                    crate::kafka::group::open_link(g).map_err(|reason| Error::Start {
                        key: format!("pipelines[{index}].sinks[0]"),
                        reason,
                    })?;
                if let Ok(mut all) = setup_counters.kafka_sinks.lock() {
                    all.push(crate::metrics::KafkaSinkEntry {
                        pipeline: index,
                        sink: "sink0".into(),
                        shard,
                        status: sink.status(),
                    });
                }
                group = Some(crate::pipeline::Group {
                    tasks: Vec::new(),
                    link,
                    source: g.source.clone(),
                    restoring: None,
                    rollbacks: 0,
                });
                vec![sink::SinkWriter::new(Box::new(sink), circuit.clone())]
            }
            None => spec
                .sinks
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    open(
                        s,
                        format!("pipelines[{index}].sinks[{i}]"),
                        format!("sink{i}"),
                    )
                })
                .collect::<Result<Vec<_>>>()?,
        };
        let late_sink = spec
            .late_sink
            .as_ref()
            .map(|s| open(s, format!("pipelines[{index}].late_sink"), "late".into()))
            .transpose()?;
        let dl_path = config
            .data_dir
            .join("dead-letter")
            .join(format!("{}.jsonl", spec.id));
        let dead_letter = sink::SinkWriter::new(
            Box::new(
                sink::FileSink::open(&dl_path, 0).map_err(|source| Error::Io {
                    path: dl_path.clone(),
                    source,
                })?,
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
            if let Some(pos) = positions.get(&part.id.0) {
                if let Some(s) = source.as_mut() {
                    s.seek(part.id, weir_engine::Offset(pos.offset))
                        .map_err(|e| Error::Start {
                            key: format!("pipelines[{index}].source"),
                            reason: format!("cannot resume partition {}: {e}", part.id.0),
                        })?;
                }
                part.clock.restore(pos.max_time, pos.pending_max);
                part.records = pos.records;
                part.last_cut = pos.records;
            }
        }
        let restoring = Instant::now();
        let mut op = WindowOperator::new(&spec.window, agg.clone());
        let map = KeyGroupMap::new(config.processing.key_groups, nr_shards as u32);
        let mut mine = |k: &weir_engine::Key| map.shard_of_hash(k.hash()) as usize == shard;
        for old in &restore.shards {
            let records = old.records(restore.id, &spec.id);
            op.restore_chain(&records, &old.head.full_at, &mut mine);
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
                shard: ShardId(shard),
                reason: e.to_string(),
            })?,
            counters: Arc::clone(counters),
            key_partitions: matches!(spec.source, SourceSpec::Kafka(_))
                .then(crate::pipeline::KeyPartitions::default),
            group,
        });
    }
    Ok(out)
}

/// Files of each file-source pipeline, listed once so every shard agrees on partitions.
pub(crate) fn plan_files(config: &Config) -> Result<Vec<Vec<PathBuf>>> {
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

/// Every custom source and sink the config names must be registered.
pub(crate) fn check_extensions(config: &Config, extensions: &Extensions) -> Result<()> {
    for (i, p) in config.pipelines.iter().enumerate() {
        if let SourceSpec::Custom(c) = &p.source
            && !extensions.has_source(&c.name)
        {
            return Err(Error::Start {
                key: format!("pipelines[{i}].source.name"),
                reason: format!(
                    "no custom source named {:?} is registered in this program",
                    c.name
                ),
            });
        }
        for s in p.sinks.iter().chain(p.late_sink.as_ref()) {
            if let weir_config::Sink::Custom { name, .. } = s
                && !extensions.has_sink(name)
            {
                return Err(Error::Start {
                    key: format!("pipelines[{i}].sinks"),
                    reason: format!("no custom sink named {name:?} is registered in this program"),
                });
            }
        }
    }
    Ok(())
}

/// Refuses a TCP source whose address another socket listens on already (see
/// [`source::tcp::port`]): with `SO_REUSEPORT` the shards could bind it anyway and
/// silently share its connections with the other process.
pub(crate) fn probe_tcp_ports(config: &Config) -> Result<()> {
    for (i, p) in config.pipelines.iter().enumerate() {
        let SourceSpec::Tcp(t) = &p.source else {
            continue;
        };
        let Ok(addr) = t.bind.parse::<std::net::SocketAddr>() else {
            continue;
        };
        if addr.port() == 0 {
            continue;
        }
        let error = |reason: String| Error::Start {
            key: format!("pipelines[{i}].source.bind"),
            reason: format!("{}: {reason}", t.bind),
        };
        match source::tcp::port::someone_listens(addr) {
            Ok(false) => {}
            Ok(true) => {
                return Err(error(
                    "address in use (another process listens on it)".into(),
                ));
            }
            Err(e) => {
                return Err(error(format!(
                    "cannot read the kernel's socket tables: {e}"
                )));
            }
        }
    }
    Ok(())
}
