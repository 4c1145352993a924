//! `CheckpointWriter`: writing the blobs and the manifest of one checkpoint.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use super::id::CheckpointId;
use super::manifest::{BlobInfo, BlobRef, MANIFEST_FILE, MANIFEST_TMP, Manifest};
use super::store;
use crate::error::{Error, Result};
use crate::fsutil::sync_dir;

/// A checkpoint being written. Nothing of it counts until
/// [`commit`](CheckpointWriter::commit) returns; dropping the writer (or a
/// crash) leaves a folder without manifest, which the store ignores and
/// deletes.
///
/// The writer owns its paths and files, so it can be moved to a blocking
/// thread to do its I/O there.
#[derive(Debug)]
pub struct CheckpointWriter {
    store_dir: PathBuf,
    dir: PathBuf,
    id: CheckpointId,
    retain: usize,
    blobs: Vec<BlobInfo>,
    refs: Vec<BlobRef>,
    /// Written blobs, synced at commit.
    files: Vec<(PathBuf, File)>,
}

impl CheckpointWriter {
    pub(crate) fn new(store_dir: PathBuf, dir: PathBuf, id: CheckpointId, retain: usize) -> Self {
        CheckpointWriter {
            store_dir,
            dir,
            id,
            retain,
            blobs: Vec::new(),
            refs: Vec::new(),
            files: Vec::new(),
        }
    }

    /// The checkpoint's id.
    #[must_use]
    pub fn id(&self) -> CheckpointId {
        self.id
    }

    /// Writes a blob (one per shard and key-group range, say) and records its
    /// length and crc32c. `name` is a plain file name: 1 to 200 characters of
    /// `A-Z a-z 0-9 . _ -`, not starting with a dot. The blob is synced at
    /// commit.
    pub fn put_blob(&mut self, name: &str, bytes: &[u8]) -> Result<BlobInfo> {
        if !valid_blob_name(name) {
            return Err(Error::BlobName {
                name: name.to_owned(),
            });
        }
        if self.blobs.iter().any(|b| b.name == name) {
            return Err(Error::DuplicateBlob {
                name: name.to_owned(),
            });
        }
        let path = self.dir.join(name);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(Error::io("create", &path))?;
        file.write_all(bytes).map_err(Error::io("write", &path))?;
        let info = BlobInfo {
            name: name.to_owned(),
            len: bytes.len() as u64,
            crc32c: crc32c::crc32c(bytes),
        };
        self.blobs.push(info.clone());
        self.files.push((path, file));
        Ok(info)
    }

    /// Records that this checkpoint builds on `blob` of the earlier checkpoint
    /// `checkpoint` (written there by `put_blob`): loading this checkpoint loads and
    /// verifies it too, and pruning keeps it while this checkpoint is kept.
    pub fn refer(&mut self, checkpoint: CheckpointId, blob: &BlobInfo) -> Result<()> {
        if !valid_blob_name(&blob.name) {
            return Err(Error::BlobName {
                name: blob.name.clone(),
            });
        }
        if checkpoint >= self.id {
            return Err(Error::RefNotEarlier {
                id: self.id,
                referenced: checkpoint,
            });
        }
        if !self
            .refs
            .iter()
            .any(|r| r.checkpoint == checkpoint && r.name == blob.name)
        {
            self.refs.push(BlobRef {
                checkpoint,
                name: blob.name.clone(),
                len: blob.len,
                crc32c: blob.crc32c,
            });
        }
        Ok(())
    }

    /// Makes the checkpoint complete: syncs every blob, writes the manifest
    /// with `meta` atomically (temporary file, fsync, rename, fsync of the
    /// folder and of the store), then deletes all but the newest `retain`
    /// complete checkpoints. Returns the manifest written.
    ///
    /// Blocks on several syncs: run it on a blocking thread.
    pub fn commit<M: Serialize + ?Sized>(self, meta: &M) -> Result<Manifest> {
        let meta = serde_json::to_value(meta).map_err(|source| Error::Meta { source })?;
        for (path, file) in &self.files {
            file.sync_all().map_err(Error::io("fsync", path))?;
        }
        let manifest = Manifest::new(self.id, self.blobs, self.refs, meta);
        let json = serde_json::to_vec_pretty(&manifest).map_err(|source| Error::Manifest {
            path: self.dir.join(MANIFEST_FILE),
            source,
        })?;
        let tmp = self.dir.join(MANIFEST_TMP);
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(Error::io("create", &tmp))?;
        file.write_all(&json).map_err(Error::io("write", &tmp))?;
        file.write_all(b"\n").map_err(Error::io("write", &tmp))?;
        file.sync_all().map_err(Error::io("fsync", &tmp))?;
        drop(file);
        std::fs::rename(&tmp, self.dir.join(MANIFEST_FILE)).map_err(Error::io("rename", &tmp))?;
        sync_dir(&self.dir)?;
        sync_dir(&self.store_dir)?;
        tracing::debug!(id = %manifest.id, blobs = manifest.blobs.len(), "checkpoint committed");
        if let Err(e) = store::prune(&self.store_dir, self.retain) {
            // The checkpoint is complete and durable; a failed deletion of old
            // ones only costs disk space and is retried at the next commit.
            tracing::warn!(error = %e, "cannot delete old checkpoints");
        }
        Ok(manifest)
    }

    /// Gives up on this checkpoint and deletes what was written of it.
    pub fn abort(self) -> Result<()> {
        drop(self.files);
        std::fs::remove_dir_all(&self.dir).map_err(Error::io("delete", &self.dir))
    }
}

/// Whether `name` is a safe, plain file name for a blob.
pub(crate) fn valid_blob_name(name: &str) -> bool {
    (1..=200).contains(&name.len())
        && !name.starts_with('.')
        && name != MANIFEST_FILE
        && name != MANIFEST_TMP
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::valid_blob_name;

    #[test]
    fn blob_names_are_plain_file_names() {
        assert!(valid_blob_name("shard-0.groups-0-2047"));
        assert!(!valid_blob_name(""));
        assert!(!valid_blob_name(".."));
        assert!(!valid_blob_name("a/b"));
        assert!(!valid_blob_name("MANIFEST.json"));
    }
}
