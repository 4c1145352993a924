//! What a starting runtime restores from the latest complete checkpoint.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use weir_config::Config;
use weir_engine::snapshot::{OperatorState, PaneEntry, RevisionEntry, SessionEntry};
use weir_storage::checkpoint::BlobInfo;
use weir_storage::{CheckpointStore, LoadedCheckpoint};

use super::{
    CheckpointMeta, PipelineSnapshot, PositionEntry, ShardSnapshot, ShardSnapshotV2, blob_name,
};
use crate::error::{Error, Result};

/// The decoded latest checkpoint, shared by every shard while it builds its pipelines.
#[derive(Debug, Default)]
pub struct Restore {
    /// The checkpoint's id (0 when starting fresh).
    pub id: u64,
    /// Its metadata, if there was one.
    pub meta: Option<CheckpointMeta>,
    /// Every old shard's records.
    pub shards: Vec<ShardChain>,
}

/// One old shard's record of the restored checkpoint and the earlier records it builds
/// on.
#[derive(Debug)]
pub struct ShardChain {
    /// Its record of the restored checkpoint.
    pub head: ShardSnapshot,
    /// The earlier records, oldest first, by checkpoint.
    pub earlier: Vec<(u64, ShardSnapshot)>,
    /// The blobs of the records, oldest first, the head's last.
    pub blobs: Vec<(u64, BlobInfo)>,
}

impl ShardChain {
    /// A pipeline's state records, oldest first, for
    /// [`weir_engine::WindowOperator::restore_chain`].
    pub fn records(&self, head: u64, pipeline: &str) -> Vec<(u64, &OperatorState)> {
        self.earlier
            .iter()
            .map(|(id, s)| (*id, s))
            .chain([(head, &self.head)])
            .filter_map(|(id, s)| {
                s.pipelines
                    .iter()
                    .find(|p| p.id == pipeline)
                    .map(|p| (id, &p.operator))
            })
            .collect()
    }
}

impl Restore {
    /// Loads and decodes the latest complete checkpoint, checking that it fits `config`.
    pub fn load(config: &Config, store: &CheckpointStore) -> Result<Self> {
        let loaded: Option<LoadedCheckpoint> =
            store.latest_complete().map_err(|e| Error::Checkpoint {
                reason: e.to_string(),
            })?;
        let Some(loaded) = loaded else {
            return Ok(Self::default());
        };
        let manifest = loaded.manifest();
        let id = manifest.id.get();
        let meta: CheckpointMeta = manifest.meta_as().map_err(|e| Error::Checkpoint {
            reason: format!("checkpoint {id}: bad metadata: {e}"),
        })?;
        if !(2..=super::SNAPSHOT_FORMAT).contains(&meta.snapshot_format) {
            return Err(Error::Checkpoint {
                reason: format!(
                    "checkpoint {id} has snapshot format {} but this weir reads formats 2 to {}: \
                     finish the input with the weir that wrote it, or remove {} to start afresh",
                    meta.snapshot_format,
                    super::SNAPSHOT_FORMAT,
                    config.data_dir.join("checkpoints").display()
                ),
            });
        }
        if meta.key_groups != config.processing.key_groups {
            return Err(Error::Checkpoint {
                reason: format!(
                    "checkpoint {id} was taken with {} key groups but processing.key_groups is {}; \
                     key groups are fixed for the life of the state",
                    meta.key_groups, config.processing.key_groups
                ),
            });
        }
        let shards = load_chains(&loaded, id, meta.snapshot_format, meta.nr_shards)?;
        tracing::info!(
            checkpoint = id,
            shards = meta.nr_shards,
            "restoring from checkpoint"
        );
        Ok(Self {
            id,
            meta: Some(meta),
            shards,
        })
    }

    /// The generator start of a pipeline, if the checkpoint fixed one.
    pub fn generator_start(&self, pipeline: &str) -> Option<i64> {
        let meta = self.meta.as_ref()?;
        let i = meta.pipelines.iter().position(|p| p == pipeline)?;
        meta.generator_start_ms.get(i).copied().flatten()
    }

    /// Positions of a pipeline's partitions over all old shards, by partition.
    pub fn positions(&self, pipeline: &str) -> HashMap<u32, PositionEntry> {
        let mut out = HashMap::new();
        for s in &self.shards {
            for p in s.head.pipelines.iter().filter(|p| p.id == pipeline) {
                for pos in &p.positions {
                    out.insert(pos.partition, pos.clone());
                }
            }
        }
        out
    }
}

/// Decodes every old shard's record of checkpoint `id` and the records each builds on,
/// on as many threads as there are cores (the largest blobs first).
fn load_chains(
    loaded: &LoadedCheckpoint,
    id: u64,
    format: u32,
    nr_shards: usize,
) -> Result<Vec<ShardChain>> {
    let bad = |what: String| Error::Checkpoint {
        reason: format!("checkpoint {id}: {what}"),
    };
    if format == 2 {
        return (0..nr_shards)
            .map(|shard| load_v2(loaded, id, shard))
            .collect();
    }
    // The shards' records of this checkpoint first: they say what the earlier ones hold
    // that still counts.
    let mut heads = Vec::with_capacity(nr_shards);
    let mut head_jobs = Vec::with_capacity(nr_shards);
    for shard in 0..nr_shards {
        let name = blob_name(shard);
        let missing = || bad(format!("blob {name} is missing"));
        let bytes = loaded.blob(&name).ok_or_else(missing)?;
        let info = loaded.manifest().blob(&name).cloned().ok_or_else(missing)?;
        heads.push(info);
        head_jobs.push((bytes, id, None));
    }
    let mut decoded_heads = Vec::with_capacity(nr_shards);
    for (record, info) in decode_in_parallel(&head_jobs).into_iter().zip(&heads) {
        decoded_heads.push(record.map_err(|e| bad(format!("blob {}: {e}", info.name)))?);
    }
    // Every earlier blob to decode: (shard, checkpoint, bytes, its info).
    let mut jobs: Vec<(usize, u64, &[u8], BlobInfo)> = Vec::new();
    for shard in 0..nr_shards {
        let name = blob_name(shard);
        for r in loaded.manifest().refs.iter().filter(|r| r.name == name) {
            let bytes = loaded.referenced_blob(r.checkpoint, &name).ok_or_else(|| {
                bad(format!(
                    "blob {name} of checkpoint {} is missing",
                    r.checkpoint
                ))
            })?;
            let info = BlobInfo {
                name: r.name.clone(),
                len: r.len,
                crc32c: r.crc32c,
            };
            jobs.push((shard, r.checkpoint.get(), bytes, info));
        }
    }
    let work: Vec<Job<'_>> = jobs
        .iter()
        .map(|(shard, checkpoint, bytes, _)| {
            let full_at = decoded_heads[*shard].full_at.as_slice();
            (*bytes, *checkpoint, Some(full_at))
        })
        .collect();
    let decoded = decode_in_parallel(&work);
    let mut records: Vec<BTreeMap<u64, (ShardSnapshot, BlobInfo)>> =
        (0..nr_shards).map(|_| BTreeMap::new()).collect();
    for ((shard, head), info) in decoded_heads.into_iter().enumerate().zip(heads) {
        records[shard].insert(id, (head, info));
    }
    for ((shard, checkpoint, _, info), record) in jobs.into_iter().zip(decoded) {
        let record = record.map_err(|e| {
            bad(format!(
                "blob {} of checkpoint {checkpoint}: {e}",
                info.name
            ))
        })?;
        records[shard].insert(checkpoint, (record, info));
    }
    let mut chains = Vec::with_capacity(nr_shards);
    for (shard, mut records) in records.into_iter().enumerate() {
        let name = blob_name(shard);
        let (head, head_info) = records
            .remove(&id)
            .ok_or_else(|| bad(format!("blob {name} is missing")))?;
        let mut earlier = Vec::with_capacity(head.chain.len());
        let mut blobs = Vec::with_capacity(head.chain.len() + 1);
        for &x in &head.chain {
            let (record, info) = records.remove(&x).ok_or_else(|| {
                bad(format!(
                    "blob {name} builds on checkpoint {x}, whose blob is not referenced"
                ))
            })?;
            blobs.push((x, info));
            earlier.push((x, record));
        }
        blobs.push((id, head_info));
        chains.push(ShardChain {
            head,
            earlier,
            blobs,
        });
    }
    Ok(chains)
}

/// Old shard `shard`'s record of a format 2 checkpoint: the whole state.
fn load_v2(loaded: &LoadedCheckpoint, id: u64, shard: usize) -> Result<ShardChain> {
    let name = blob_name(shard);
    let bad = |what: String| Error::Checkpoint {
        reason: format!("checkpoint {id}: {what}"),
    };
    let missing = || bad(format!("blob {name} is missing"));
    let bytes = loaded.blob(&name).ok_or_else(missing)?;
    let info = loaded.manifest().blob(&name).cloned().ok_or_else(missing)?;
    let old: ShardSnapshotV2 =
        weir_engine::snapshot::decode(bytes).map_err(|e| bad(format!("blob {name}: {e}")))?;
    let entries = old
        .pipelines
        .iter()
        .map(|p| (p.operator.panes.len() + p.operator.sessions.len()) as u64)
        .sum();
    Ok(ShardChain {
        head: ShardSnapshot {
            shard: old.shard,
            pipelines: old.pipelines,
            chain: Vec::new(),
            full_at: Vec::new(),
            entries,
        },
        earlier: Vec::new(),
        blobs: vec![(id, info)],
    })
}

/// A shard record `(bytes, checkpoint, full_at)` to decode: with the `full_at` of the
/// record restored, only the entries that still count (in slices that the record's
/// checkpoint holds from its full write on) are decoded.
type Job<'a> = (&'a [u8], u64, Option<&'a [u64]>);

/// Decodes shard records, the largest first, on this thread and one more per core.
fn decode_in_parallel(blobs: &[Job<'_>]) -> Vec<std::result::Result<ShardSnapshot, String>> {
    let mut order: Vec<usize> = (0..blobs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(blobs[i].0.len()));
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<std::result::Result<ShardSnapshot, String>>>> =
        blobs.iter().map(|_| Mutex::new(None)).collect();
    let work = || {
        while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            let (bytes, checkpoint, full_at) = blobs[i];
            let record = decode_counting(bytes, checkpoint, full_at);
            if let Ok(mut slot) = results[i].lock() {
                *slot = Some(record);
            }
        }
    };
    let helpers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(blobs.len())
        .saturating_sub(1);
    std::thread::scope(|scope| {
        for _ in 0..helpers {
            // A helper that cannot start leaves its share to the others.
            let _ = std::thread::Builder::new()
                .name("weir-restore".into())
                .spawn_scoped(scope, work);
        }
        work();
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err("not decoded".into()))
        })
        .collect()
}

/// Validates a shard record and deserializes it, leaving out the entries of slices for
/// which a later record holds the slice in full (by `full_at`, if given).
fn decode_counting(
    bytes: &[u8],
    checkpoint: u64,
    full_at: Option<&[u64]>,
) -> std::result::Result<ShardSnapshot, String> {
    use rkyv::rancor::Error as Rancor;
    let Some(full_at) = full_at.filter(|f| !f.is_empty()) else {
        return weir_engine::snapshot::decode(bytes).map_err(|e| e.to_string());
    };
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    let archived = rkyv::access::<rkyv::Archived<ShardSnapshot>, Rancor>(&aligned)
        .map_err(|e| e.to_string())?;
    let counts = |key: &str| {
        let slice = weir_engine::operator::slice_of(weir_engine::key::stable_hash(key.as_bytes()));
        full_at.get(slice).is_none_or(|&f| checkpoint >= f)
    };
    let mut pipelines = Vec::with_capacity(archived.pipelines.len());
    for p in archived.pipelines.iter() {
        let op = &p.operator;
        let panes = op
            .panes
            .iter()
            .filter(|e| counts(e.key.as_str()))
            .map(rkyv::deserialize::<PaneEntry, Rancor>)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let sessions = op
            .sessions
            .iter()
            .filter(|e| counts(e.key.as_str()))
            .map(rkyv::deserialize::<SessionEntry, Rancor>)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        pipelines.push(PipelineSnapshot {
            id: p.id.as_str().to_owned(),
            positions: rkyv::deserialize::<Vec<PositionEntry>, Rancor>(&p.positions)
                .map_err(|e| e.to_string())?,
            operator: OperatorState {
                watermark: op.watermark.to_native(),
                panes,
                revisions: rkyv::deserialize::<Vec<RevisionEntry>, Rancor>(&op.revisions)
                    .map_err(|e| e.to_string())?,
                sessions,
            },
        });
    }
    Ok(ShardSnapshot {
        shard: archived.shard.to_native(),
        pipelines,
        chain: archived.chain.iter().map(|x| x.to_native()).collect(),
        full_at: archived.full_at.iter().map(|x| x.to_native()).collect(),
        entries: archived.entries.to_native(),
    })
}
