//! `LoadedCheckpoint`: a complete checkpoint read back and verified.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use super::id::CheckpointId;
use super::manifest::Manifest;
use super::writer::valid_blob_name;

/// A checkpoint whose every blob was read and matched its manifest's length
/// and checksum.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedCheckpoint {
    manifest: Manifest,
    blobs: BTreeMap<String, Vec<u8>>,
    /// Blobs of earlier checkpoints it builds on, by checkpoint and name.
    referenced: BTreeMap<(CheckpointId, String), Vec<u8>>,
}

impl LoadedCheckpoint {
    /// The manifest.
    #[must_use]
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The checkpoint's id.
    #[must_use]
    pub fn id(&self) -> CheckpointId {
        self.manifest.id
    }

    /// The bytes of the blob called `name`.
    #[must_use]
    pub fn blob(&self, name: &str) -> Option<&[u8]> {
        self.blobs.get(name).map(Vec::as_slice)
    }

    /// The bytes of the blob `name` of the earlier checkpoint `checkpoint`, if this
    /// checkpoint builds on it (its manifest's `refs`).
    #[must_use]
    pub fn referenced_blob(&self, checkpoint: CheckpointId, name: &str) -> Option<&[u8]> {
        self.referenced
            .get(&(checkpoint, name.to_owned()))
            .map(Vec::as_slice)
    }

    /// Every blob, by name.
    pub fn blobs(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.blobs.iter().map(|(n, b)| (n.as_str(), b.as_slice()))
    }

    /// The manifest and the blobs, by name.
    #[must_use]
    pub fn into_parts(self) -> (Manifest, BTreeMap<String, Vec<u8>>) {
        (self.manifest, self.blobs)
    }
}

/// Why a blob did not verify.
#[derive(Debug)]
pub(crate) enum BlobDefect {
    Missing,
    Unreadable(std::io::Error),
    Length { expected: u64, found: u64 },
    Checksum { expected: u32, found: u32 },
}

impl fmt::Display for BlobDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobDefect::Missing => f.write_str("is missing"),
            BlobDefect::Unreadable(e) => write!(f, "cannot be read: {e}"),
            BlobDefect::Length { expected, found } => {
                write!(f, "has {found} bytes, the manifest says {expected}")
            }
            BlobDefect::Checksum { expected, found } => write!(
                f,
                "has crc32c {found:#010x}, the manifest says {expected:#010x}"
            ),
        }
    }
}

/// Reads and verifies every blob `manifest` lists in the folder `dir`, and every blob
/// of earlier checkpoints (sibling folders) it refers to.
pub(crate) fn load(
    dir: &Path,
    manifest: Manifest,
) -> Result<LoadedCheckpoint, (String, BlobDefect)> {
    let mut blobs = BTreeMap::new();
    for info in &manifest.blobs {
        let bytes = read_verified(&dir.join(&info.name), info.len, info.crc32c)
            .map_err(|d| (info.name.clone(), d))?;
        blobs.insert(info.name.clone(), bytes);
    }
    let mut referenced = BTreeMap::new();
    let store = dir.parent().unwrap_or(dir);
    for r in &manifest.refs {
        let name = format!("{}/{}", r.checkpoint.folder_name(), r.name);
        if r.checkpoint >= manifest.id || !valid_blob_name(&r.name) {
            return Err((name, BlobDefect::Missing));
        }
        let bytes = read_verified(&store.join(&name), r.len, r.crc32c).map_err(|d| (name, d))?;
        referenced.insert((r.checkpoint, r.name.clone()), bytes);
    }
    Ok(LoadedCheckpoint {
        manifest,
        blobs,
        referenced,
    })
}

fn read_verified(path: &Path, len: u64, crc32c: u32) -> Result<Vec<u8>, BlobDefect> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BlobDefect::Missing),
        Err(e) => return Err(BlobDefect::Unreadable(e)),
    };
    if bytes.len() as u64 != len {
        return Err(BlobDefect::Length {
            expected: len,
            found: bytes.len() as u64,
        });
    }
    let crc = crc32c::crc32c(&bytes);
    if crc != crc32c {
        return Err(BlobDefect::Checksum {
            expected: crc32c,
            found: crc,
        });
    }
    Ok(bytes)
}
