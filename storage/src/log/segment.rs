//! `Segment`: one fixed-size, memory-mapped segment file.
//!
//! A segment is named by its base offset, zero-padded to 20 digits
//! (`00000000000000065536.seg`), and spans `[base, base + file length)` of the
//! log's offsets. The next segment's base is this one's end, so the names alone
//! say whether a segment is missing.
//!
//! A new segment is made under a temporary name (`<name>.tmp`), allocated to
//! full size with `fallocate` (so that a write into the mapping can never hit
//! a full disk and raise SIGBUS), given its header, synced, renamed into place
//! and its folder synced; only then is it mapped. A crash part-way leaves a
//! `.tmp` file that the next open deletes, never a half-made segment.
//!
//! Segments are recycled: one that `truncate_before` retires is renamed to a
//! spare name (`spare-<base>.seg.tmp`) and kept mapped (a log opened with
//! `preallocate_spares` also makes spares up front, `spare-new-<n>.seg.tmp`),
//! and the next segment is made from it by renaming it to the new temporary name, zeroing it through
//! the mapping and renaming it into place. Its pages are already in the page
//! cache and mapped, so neither the kernel's page allocation and zeroing nor
//! the unlink of a large file lands on anyone's path. Frames of the file's
//! previous life that have not been overwritten on disk cannot pass for records
//! at the new offsets: the checksum covers each frame's offset (`frame.rs`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rustix::fs::{FallocateFlags, fallocate};

use super::frame::SEGMENT_HEADER;
use super::mapping::Mapping;
use super::offset::LogOffset;
use crate::error::{Error, Result};
use crate::fsutil::sync_dir;

/// Extension of segment files.
pub(crate) const SEGMENT_EXT: &str = "seg";
/// Extension of a segment being made.
pub(crate) const TMP_EXT: &str = "tmp";
/// Start of the name of a spare segment file.
pub(crate) const SPARE_PREFIX: &str = "spare-";
/// Bytes a paced recycling zeroes between rests.
const ZERO_CHUNK: usize = 1 << 20;

/// A mapped segment file.
#[derive(Debug)]
pub(crate) struct Segment {
    base: LogOffset,
    path: PathBuf,
    map: Mapping,
}

impl Segment {
    /// The file name of the segment starting at `base`.
    pub(crate) fn file_name(base: LogOffset) -> String {
        format!("{:020}.{SEGMENT_EXT}", base.get())
    }

    /// The base offset a segment file name stands for, if it is one.
    pub(crate) fn parse_file_name(name: &str) -> Option<LogOffset> {
        let digits = name.strip_suffix(".seg")?;
        if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(LogOffset::new)
    }

    /// Makes, maps and pre-faults a new segment of `len` bytes at `base`.
    /// With `sync`, the file and its folder entry are durable before it is used.
    pub(crate) fn create(dir: &Path, base: LogOffset, len: u64, sync: bool) -> Result<Segment> {
        let path = dir.join(Segment::file_name(base));
        let tmp = path.with_extension(format!("{SEGMENT_EXT}.{TMP_EXT}"));
        let file = allocated_file(&tmp, len, sync)?;
        std::fs::rename(&tmp, &path).map_err(Error::io("rename", &tmp))?;
        if sync {
            sync_dir(dir)?;
        }
        let map = prefaulted_map(&file, &path, len)?;
        Ok(Segment { base, path, map })
    }

    /// Makes, maps and pre-faults a spare of `len` bytes: a segment file that
    /// is not part of the log (`spare-new-<n>.seg.tmp`, which recovery
    /// deletes), to be [recycled](Segment::recycle) into one. With `sync` its
    /// allocation is durable before it is used.
    pub(crate) fn create_spare(dir: &Path, n: usize, len: u64, sync: bool) -> Result<Segment> {
        let path = dir.join(format!("{SPARE_PREFIX}new-{n:020}.{SEGMENT_EXT}.{TMP_EXT}"));
        let file = allocated_file(&path, len, sync)?;
        let map = prefaulted_map(&file, &path, len)?;
        Ok(Segment {
            base: LogOffset::new(0),
            path,
            map,
        })
    }

    /// Takes a segment out of the log for later recycling: renames it to a
    /// spare name, which recovery deletes if the process dies first.
    pub(crate) fn retire(mut self) -> Result<Segment> {
        let spare = self.path.with_file_name(format!(
            "{SPARE_PREFIX}{:020}.{SEGMENT_EXT}.{TMP_EXT}",
            self.base.get()
        ));
        std::fs::rename(&self.path, &spare).map_err(Error::io("rename", &self.path))?;
        self.path = spare;
        Ok(self)
    }

    /// Makes a retired segment the new, empty segment at `base`. With `sync`,
    /// its new name is durable before it is used.
    ///
    /// With `pace` (on a helper thread, not when a shard waits for it), the
    /// zeroing rests as long as it works. A segment written before has clean,
    /// write-protected pages (its last sync cleaned them), so zeroing it takes
    /// a page fault per page: 80–110 ms for 64 MiB on a 2-vCPU VM, and two
    /// shards doing that at once left their group commits waiting for a CPU
    /// (ack p99 at half rate 8.9 ms unpaced, 5.9 ms paced; BENCHMARKS.md).
    pub(crate) fn recycle(
        mut self,
        dir: &Path,
        base: LogOffset,
        sync: bool,
        pace: bool,
    ) -> Result<Segment> {
        let path = dir.join(Segment::file_name(base));
        let tmp = path.with_extension(format!("{SEGMENT_EXT}.{TMP_EXT}"));
        std::fs::rename(&self.path, &tmp).map_err(Error::io("rename", &self.path))?;
        let bytes = self.map.bytes_mut();
        for chunk in bytes.chunks_mut(ZERO_CHUNK) {
            let started = Instant::now();
            chunk.fill(0);
            if pace {
                std::thread::sleep(started.elapsed());
            }
        }
        bytes[..SEGMENT_HEADER.len()].copy_from_slice(&SEGMENT_HEADER);
        std::fs::rename(&tmp, &path).map_err(Error::io("rename", &tmp))?;
        if sync {
            sync_dir(dir)?;
        }
        self.base = base;
        self.path = path;
        Ok(self)
    }

    /// Maps an existing segment file of `len` bytes (already validated).
    pub(crate) fn open(path: PathBuf, base: LogOffset, len: u64) -> Result<Segment> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(Error::io("open", &path))?;
        let len = usize::try_from(len).map_err(|_| Error::SegmentLength {
            path: path.clone(),
            len,
        })?;
        let map = Mapping::map(&file, len, false).map_err(Error::io("mmap", &path))?;
        Ok(Segment { base, path, map })
    }

    /// First offset of the segment (its header).
    pub(crate) fn base(&self) -> LogOffset {
        self.base
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// One past the last offset: the next segment's base.
    pub(crate) fn end(&self) -> LogOffset {
        self.base.add(self.len() as u64)
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The mapping.
    pub(crate) fn map(&self) -> &Mapping {
        &self.map
    }

    /// The mapping, for writing.
    pub(crate) fn map_mut(&mut self) -> &mut Mapping {
        &mut self.map
    }

    /// The bytes of the segment.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.map.bytes()
    }

    /// Position of `offset` within this segment, if it falls in it.
    pub(crate) fn position(&self, offset: LogOffset) -> Option<usize> {
        if offset < self.base || offset >= self.end() {
            return None;
        }
        usize::try_from(offset.get() - self.base.get()).ok()
    }

    /// The offset of position `pos`.
    pub(crate) fn offset_at(&self, pos: usize) -> LogOffset {
        self.base.add(pos as u64)
    }
}

/// Creates (or empties) the file at `path`, allocates it to `len` bytes and
/// writes the segment header; with `sync`, all of that is durable.
fn allocated_file(path: &Path, len: u64, sync: bool) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(Error::io("create", path))?;
    allocate(&file, len).map_err(Error::io("allocate", path))?;
    file.write_all_at(&SEGMENT_HEADER, 0)
        .map_err(Error::io("write", path))?;
    if sync {
        file.sync_all().map_err(Error::io("fsync", path))?;
    }
    Ok(file)
}

/// Maps `len` bytes of `file` with its pages read in and pre-faulted writable.
fn prefaulted_map(file: &File, path: &Path, len: u64) -> Result<Mapping> {
    let len = usize::try_from(len).map_err(|_| Error::SegmentLength {
        path: path.to_path_buf(),
        len,
    })?;
    let mut map = Mapping::map(file, len, true).map_err(Error::io("mmap", path))?;
    map.prefault_writable(0);
    Ok(map)
}

/// Gives `file` `len` bytes of real blocks. Falls back to a sparse `set_len`
/// on file systems without `fallocate` (tmpfs has it; some overlays do not).
fn allocate(file: &File, len: u64) -> io::Result<()> {
    match fallocate(file, FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::NOSYS => {
            tracing::debug!("fallocate unsupported ({e}); segment file will be sparse");
            file.set_len(len)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        let base = LogOffset::new(65536);
        let name = Segment::file_name(base);
        assert_eq!(name, "00000000000000065536.seg");
        assert_eq!(Segment::parse_file_name(&name), Some(base));
        assert_eq!(Segment::parse_file_name("65536.seg"), None);
        assert_eq!(Segment::parse_file_name("0000000000000006553x.seg"), None);
    }
}
