//! What a starting runtime restores from the latest complete checkpoint.

use std::collections::HashMap;

use weir_config::Config;
use weir_engine::snapshot::OperatorState;
use weir_storage::checkpoint::{BlobInfo, CheckpointId};
use weir_storage::{CheckpointStore, LoadedCheckpoint};

use super::{CheckpointMeta, PositionEntry, ShardSnapshot, ShardSnapshotV2, blob_name};
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
        let mut shards = Vec::with_capacity(meta.nr_shards);
        for shard in 0..meta.nr_shards {
            shards.push(load_chain(&loaded, id, meta.snapshot_format, shard)?);
        }
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

/// Decodes old shard `shard`'s record of checkpoint `id` and the records it builds on.
fn load_chain(loaded: &LoadedCheckpoint, id: u64, format: u32, shard: usize) -> Result<ShardChain> {
    let name = blob_name(shard);
    let bad = |what: String| Error::Checkpoint {
        reason: format!("checkpoint {id}: {what}"),
    };
    let bytes = loaded
        .blob(&name)
        .ok_or_else(|| bad(format!("blob {name} is missing")))?;
    let info = loaded
        .manifest()
        .blob(&name)
        .cloned()
        .ok_or_else(|| bad(format!("blob {name} is missing")))?;
    if format == 2 {
        let old: ShardSnapshotV2 =
            weir_engine::snapshot::decode(bytes).map_err(|e| bad(format!("blob {name}: {e}")))?;
        let entries = old
            .pipelines
            .iter()
            .map(|p| (p.operator.panes.len() + p.operator.sessions.len()) as u64)
            .sum();
        return Ok(ShardChain {
            head: ShardSnapshot {
                shard: old.shard,
                pipelines: old.pipelines,
                chain: Vec::new(),
                full_at: Vec::new(),
                entries,
            },
            earlier: Vec::new(),
            blobs: vec![(id, info)],
        });
    }
    let head: ShardSnapshot =
        weir_engine::snapshot::decode(bytes).map_err(|e| bad(format!("blob {name}: {e}")))?;
    let mut earlier = Vec::with_capacity(head.chain.len());
    let mut blobs = Vec::with_capacity(head.chain.len() + 1);
    for &x in &head.chain {
        let at = CheckpointId::new(x);
        let missing = || {
            bad(format!(
                "blob {name} builds on checkpoint {x}, whose blob is not referenced"
            ))
        };
        let bytes = loaded.referenced_blob(at, &name).ok_or_else(missing)?;
        let r = loaded
            .manifest()
            .refs
            .iter()
            .find(|r| r.checkpoint == at && r.name == name)
            .ok_or_else(missing)?;
        let record: ShardSnapshot = weir_engine::snapshot::decode(bytes)
            .map_err(|e| bad(format!("blob {name} of checkpoint {x}: {e}")))?;
        blobs.push((
            x,
            BlobInfo {
                name: r.name.clone(),
                len: r.len,
                crc32c: r.crc32c,
            },
        ));
        earlier.push((x, record));
    }
    blobs.push((id, info));
    Ok(ShardChain {
        head,
        earlier,
        blobs,
    })
}
