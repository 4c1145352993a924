//! `CheckpointStore`: the folder of checkpoints.
//!
//! ```text
//! checkpoints/
//!   00000000000000000006/  MANIFEST.json  shard-0.groups-0-2047  shard-1.groups-2048-4095
//!   00000000000000000007/  MANIFEST.json  ...
//!   00000000000000000008/  shard-0.groups-0-2047        <- no manifest: crashed mid-checkpoint
//! ```
//!
//! A checkpoint folder is complete when it holds `MANIFEST.json`. Folders
//! without one are leftovers of a crash (or an abort) and are deleted when the
//! store is opened and when a new checkpoint begins. One writer at a time: the
//! checkpoint coordinator owns the store.

use std::path::{Path, PathBuf};

use super::id::CheckpointId;
use super::loaded::{self, LoadedCheckpoint};
use super::manifest::{MANIFEST_FILE, Manifest};
use super::writer::CheckpointWriter;
use crate::error::{Error, Result};
use crate::fsutil::sync_dir;

/// The checkpoints of one engine, in one folder.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    dir: PathBuf,
    retain: usize,
}

/// A checkpoint folder.
#[derive(Debug)]
struct Entry {
    id: CheckpointId,
    path: PathBuf,
    complete: bool,
}

impl CheckpointStore {
    /// Opens (creating if needed) the store in `dir`, keeping the newest
    /// `retain` (at least 1) complete checkpoints, and deletes the folders of
    /// unfinished checkpoints.
    pub fn open(dir: impl AsRef<Path>, retain: usize) -> Result<Self> {
        if retain == 0 {
            return Err(Error::InvalidRetain { retain });
        }
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(Error::io("create folder", &dir))?;
        let store = CheckpointStore { dir, retain };
        store.remove_incomplete()?;
        Ok(store)
    }

    /// The store's folder.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many complete checkpoints are kept.
    #[must_use]
    pub fn retain(&self) -> usize {
        self.retain
    }

    /// The id to give the next checkpoint: one past the newest complete one.
    pub fn next_id(&self) -> Result<CheckpointId> {
        Ok(self.latest_id()?.unwrap_or(CheckpointId::ZERO).next())
    }

    /// Starts checkpoint `id`, which must be newer than every complete one.
    pub fn begin(&self, id: CheckpointId) -> Result<CheckpointWriter> {
        if let Some(latest) = self.latest_id()?.filter(|&latest| id <= latest) {
            return Err(Error::CheckpointNotMonotonic { id, latest });
        }
        self.remove_incomplete()?;
        let path = self.dir.join(id.folder_name());
        std::fs::create_dir(&path).map_err(Error::io("create folder", &path))?;
        Ok(CheckpointWriter::new(
            self.dir.clone(),
            path,
            id,
            self.retain,
        ))
    }

    /// The manifests of the complete checkpoints, oldest first. Blobs are not
    /// verified here; a manifest that cannot be read is skipped with a warning.
    pub fn list(&self) -> Result<Vec<Manifest>> {
        Ok(scan(&self.dir)?
            .into_iter()
            .filter(|e| e.complete)
            .filter_map(|e| read_manifest(&e))
            .collect())
    }

    /// The newest complete checkpoint whose blobs all verify, read into
    /// memory. A checkpoint with a missing or corrupt blob (or manifest) is
    /// skipped with a warning naming it and the blob, and the previous one is
    /// tried; `None` if no checkpoint survives.
    pub fn latest_complete(&self) -> Result<Option<LoadedCheckpoint>> {
        let mut entries = scan(&self.dir)?;
        entries.retain(|e| e.complete);
        for entry in entries.iter().rev() {
            let Some(manifest) = read_manifest(entry) else {
                continue;
            };
            match loaded::load(&entry.path, manifest) {
                Ok(checkpoint) => return Ok(Some(checkpoint)),
                Err((blob, defect)) => {
                    tracing::warn!(
                        checkpoint = %entry.id,
                        blob = %blob,
                        "checkpoint {} is unusable: blob {blob:?} {defect}; falling back to the previous checkpoint",
                        entry.id
                    );
                }
            }
        }
        Ok(None)
    }

    /// The id of the newest complete checkpoint.
    fn latest_id(&self) -> Result<Option<CheckpointId>> {
        Ok(scan(&self.dir)?
            .into_iter()
            .filter(|e| e.complete)
            .map(|e| e.id)
            .max())
    }

    /// Deletes every checkpoint folder without a manifest.
    fn remove_incomplete(&self) -> Result<()> {
        let mut removed = false;
        for entry in scan(&self.dir)?.into_iter().filter(|e| !e.complete) {
            tracing::info!(checkpoint = %entry.id, "deleting an unfinished checkpoint");
            std::fs::remove_dir_all(&entry.path).map_err(Error::io("delete", &entry.path))?;
            removed = true;
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

/// Reads the manifest of a complete checkpoint, or warns and gives `None`.
fn read_manifest(entry: &Entry) -> Option<Manifest> {
    match Manifest::read(&entry.path) {
        Ok(manifest) if manifest.id == entry.id => Some(manifest),
        Ok(manifest) => {
            tracing::warn!(
                checkpoint = %entry.id,
                "checkpoint {} is unusable: its manifest names checkpoint {}; skipping it",
                entry.id,
                manifest.id
            );
            None
        }
        Err(e) => {
            tracing::warn!(
                checkpoint = %entry.id,
                "checkpoint {} is unusable: {e}; skipping it",
                entry.id
            );
            None
        }
    }
}

/// The checkpoint folders of `dir`, oldest first. Other entries are ignored.
fn scan(dir: &Path) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for item in std::fs::read_dir(dir).map_err(Error::io("list", dir))? {
        let item = item.map_err(Error::io("list", dir))?;
        let Some(id) = item
            .file_name()
            .to_str()
            .and_then(CheckpointId::parse_folder_name)
        else {
            continue;
        };
        let path = item.path();
        if !path.is_dir() {
            continue;
        }
        let complete = path.join(MANIFEST_FILE).is_file();
        entries.push(Entry { id, path, complete });
    }
    entries.sort_by_key(|e| e.id);
    Ok(entries)
}

/// Deletes all but the newest `retain` complete checkpoints and those they build on.
pub(crate) fn prune(dir: &Path, retain: usize) -> Result<()> {
    let complete: Vec<Entry> = scan(dir)?.into_iter().filter(|e| e.complete).collect();
    let excess = complete.len().saturating_sub(retain);
    let mut needed = std::collections::BTreeSet::new();
    for entry in &complete[excess..] {
        match Manifest::read(&entry.path) {
            Ok(m) => needed.extend(m.refs.iter().map(|r| r.checkpoint)),
            // Unreadable: what it needs is unknown, so nothing older is deleted.
            Err(_) => return Ok(()),
        }
    }
    let mut deleted = false;
    for entry in complete[..excess]
        .iter()
        .filter(|e| !needed.contains(&e.id))
    {
        deleted = true;
        // The manifest goes first: a deletion cut short by a crash then leaves
        // an unfinished checkpoint, which is cleaned up, not a complete one
        // with blobs missing.
        let manifest = entry.path.join(MANIFEST_FILE);
        std::fs::remove_file(&manifest).map_err(Error::io("delete", &manifest))?;
        std::fs::remove_dir_all(&entry.path).map_err(Error::io("delete", &entry.path))?;
        tracing::debug!(checkpoint = %entry.id, "deleted an old checkpoint");
    }
    if deleted {
        sync_dir(dir)?;
    }
    Ok(())
}
