//! Taking truncated segments off the disk: renaming them to spares or deleting
//! them, then syncing the folder.
//!
//! [`Log::truncate_before`](super::Log::truncate_before) does this on the
//! caller's thread. [`Log::truncate_before_in_background`](super::Log::truncate_before_in_background)
//! hands it to a short-lived helper thread ([`Retiring`]), because the folder
//! sync waits for the device and, on a busy disk, takes tens of milliseconds
//! that must not land on a shard's thread.
//!
//! Files are handled oldest first, and the first failure stops the rest: the
//! segments not handled keep their names, so what is left on disk is always a
//! contiguous run of segments ending at the log's start, and the log removes
//! them ([`Retired::stranded`]) before any newer segment at its next
//! truncation: a newer one removed first would leave a gap, which recovery
//! refuses. A crash before the
//! folder sync may bring back segments the log had already dropped; they lie
//! before every offset the log still holds, so recovery simply finds an older
//! start, and nothing that was read from them is read again unless asked for.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use super::segment::Segment;
use crate::error::{Error, Result};
use crate::fsutil::sync_dir;

/// A segment leaving the log, and whether to keep it as a spare.
#[derive(Debug)]
pub(crate) struct Leaving {
    pub segment: Segment,
    pub keep: bool,
}

/// What a retirement did.
#[derive(Debug, Default)]
pub(crate) struct Retired {
    /// The segments renamed to spares.
    pub spares: Vec<Segment>,
    /// Files not removed, oldest first: the one that failed and all after it.
    /// The log removes them before any newer segment at its next truncation.
    pub stranded: Vec<PathBuf>,
}

/// One file to take off the disk.
enum Item {
    /// Left behind by an earlier failure: to delete.
    Stranded(PathBuf),
    Leaving(Leaving),
}

/// Deletes the `stranded` files, then renames the segments to keep to spare
/// names and deletes the others, oldest first, then syncs the folder if
/// `sync`. Returns what it did and the first error, after which nothing more
/// was touched.
pub(crate) fn retire(
    dir: &Path,
    stranded: Vec<PathBuf>,
    leaving: Vec<Leaving>,
    sync: bool,
) -> (Retired, Result<()>) {
    let mut out = Retired::default();
    let mut touched = false;
    let mut error = None;
    let items = stranded
        .into_iter()
        .map(Item::Stranded)
        .chain(leaving.into_iter().map(Item::Leaving));
    for item in items {
        let path = match &item {
            Item::Stranded(path) => path.clone(),
            Item::Leaving(l) => l.segment.path().to_path_buf(),
        };
        if error.is_some() {
            out.stranded.push(path);
            continue;
        }
        let done = match item {
            Item::Leaving(Leaving {
                segment,
                keep: true,
            }) => segment.retire().map(|spare| out.spares.push(spare)),
            Item::Leaving(Leaving { segment, .. }) => {
                drop(segment);
                delete(&path)
            }
            Item::Stranded(_) => delete(&path),
        };
        match done {
            Ok(()) => touched = true,
            Err(e) => {
                out.stranded.push(path);
                error = Some(e);
            }
        }
    }
    let synced = if touched && sync {
        sync_dir(dir)
    } else {
        Ok(())
    };
    match (error, synced) {
        (Some(e), Err(sync_error)) => {
            tracing::warn!(error = %sync_error, "after a failed segment removal");
            (out, Err(e))
        }
        (Some(e), Ok(())) | (None, Err(e)) => (out, Err(e)),
        (None, Ok(())) => (out, Ok(())),
    }
}

/// Deletes a segment file; one already gone counts as deleted.
fn delete(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("delete", path)(e)),
        _ => Ok(()),
    }
}

/// Segments being retired on a helper thread.
#[derive(Debug)]
pub(crate) struct Retiring {
    handle: JoinHandle<Retired>,
    /// Bytes of the segment files it handles.
    bytes: u64,
    /// Bytes of those it keeps as spares.
    kept_bytes: u64,
}

impl Retiring {
    /// Starts removing `stranded` and retiring `leaving` on a new thread. If no
    /// thread can be started they are dropped unretired, and their files stay
    /// as after a failed removal (the caller keeps their paths as stranded).
    pub(crate) fn spawn(
        dir: PathBuf,
        stranded: Vec<PathBuf>,
        leaving: Vec<Leaving>,
        sync: bool,
    ) -> std::io::Result<Self> {
        let bytes = leaving.iter().map(|l| l.segment.len() as u64).sum();
        let kept_bytes = leaving
            .iter()
            .filter(|l| l.keep)
            .map(|l| l.segment.len() as u64)
            .sum();
        let handle = std::thread::Builder::new()
            .name("weir-log-retire".into())
            .spawn(move || {
                let (retired, result) = retire(&dir, stranded, leaving, sync);
                if let Err(e) = result {
                    tracing::warn!(error = %e, "retiring truncated log segments failed; the files left are removed at the next truncation");
                }
                retired
            })?;
        Ok(Retiring {
            handle,
            bytes,
            kept_bytes,
        })
    }

    /// Bytes of the segment files it handles that are on disk now: all of
    /// them while it runs, the spares once it is done.
    pub(crate) fn disk_bytes(&self) -> u64 {
        if self.is_finished() {
            self.kept_bytes
        } else {
            self.bytes
        }
    }

    /// Whether the thread is done (so that [`wait`](Retiring::wait) does not block).
    pub(crate) fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for the thread and returns what it did.
    pub(crate) fn wait(self) -> Result<Retired> {
        self.handle.join().map_err(|_| Error::RetireThread)
    }
}
