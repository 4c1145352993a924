//! What a starting runtime restores from the latest complete checkpoint.

use std::collections::HashMap;

use weir_config::Config;
use weir_storage::{CheckpointStore, LoadedCheckpoint};

use super::{CheckpointMeta, PositionEntry, SNAPSHOT_FORMAT, ShardSnapshot, blob_name};
use crate::error::{Error, Result};

/// The decoded latest checkpoint, shared by every shard while it builds its pipelines.
#[derive(Debug, Default)]
pub struct Restore {
    /// The checkpoint's id (0 when starting fresh).
    pub id: u64,
    /// Its metadata, if there was one.
    pub meta: Option<CheckpointMeta>,
    /// Every old shard's snapshot.
    pub shards: Vec<ShardSnapshot>,
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
        if meta.snapshot_format != SNAPSHOT_FORMAT {
            return Err(Error::Checkpoint {
                reason: format!(
                    "checkpoint {id} has snapshot format {} but this weir reads format {SNAPSHOT_FORMAT}: \
                     finish the input with the weir that wrote it, or remove {} to start afresh",
                    meta.snapshot_format,
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
            let name = blob_name(shard);
            let bytes = loaded.blob(&name).ok_or_else(|| Error::Checkpoint {
                reason: format!("checkpoint {id}: blob {name} is missing"),
            })?;
            let snapshot: ShardSnapshot =
                weir_engine::snapshot::decode(bytes).map_err(|e| Error::Checkpoint {
                    reason: format!("checkpoint {id}: blob {name}: {e}"),
                })?;
            shards.push(snapshot);
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
            for p in s.pipelines.iter().filter(|p| p.id == pipeline) {
                for pos in &p.positions {
                    out.insert(pos.partition, pos.clone());
                }
            }
        }
        out
    }
}
