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
//! contiguous run of segments ending at the log's start. A crash before the
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

/// Renames the segments to keep to spare names and deletes the others, oldest
/// first, then syncs the folder if `sync`. Returns the spares made, and the
/// first error, after which nothing more was touched.
pub(crate) fn retire(dir: &Path, leaving: Vec<Leaving>, sync: bool) -> (Vec<Segment>, Result<()>) {
    let mut spares = Vec::new();
    let mut touched = false;
    for Leaving { segment, keep } in leaving {
        let done = if keep {
            segment.retire().map(|spare| spares.push(spare))
        } else {
            let path = segment.path().to_path_buf();
            drop(segment);
            std::fs::remove_file(&path).map_err(Error::io("delete", &path))
        };
        if let Err(e) = done {
            if touched && sync {
                if let Err(sync_error) = sync_dir(dir) {
                    tracing::warn!(error = %sync_error, "after a failed segment removal");
                }
            }
            return (spares, Err(e));
        }
        touched = true;
    }
    let synced = if touched && sync {
        sync_dir(dir)
    } else {
        Ok(())
    };
    (spares, synced)
}

/// Segments being retired on a helper thread.
#[derive(Debug)]
pub(crate) struct Retiring {
    handle: JoinHandle<Vec<Segment>>,
    /// Bytes of the segment files it handles.
    bytes: u64,
    /// Bytes of those it keeps as spares.
    kept_bytes: u64,
}

impl Retiring {
    /// Starts retiring `leaving` on a new thread. If no thread can be started
    /// the segments are dropped unretired: their files stay, before the log's
    /// start, until the next open finds them (as after a failed removal).
    pub(crate) fn spawn(dir: PathBuf, leaving: Vec<Leaving>, sync: bool) -> std::io::Result<Self> {
        let bytes = leaving.iter().map(|l| l.segment.len() as u64).sum();
        let kept_bytes = leaving
            .iter()
            .filter(|l| l.keep)
            .map(|l| l.segment.len() as u64)
            .sum();
        let handle = std::thread::Builder::new()
            .name("weir-log-retire".into())
            .spawn(move || {
                let (spares, result) = retire(&dir, leaving, sync);
                if let Err(e) = result {
                    tracing::warn!(error = %e, "retiring truncated log segments failed; the files left are older than the log's start and are found again by the next open");
                }
                spares
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

    /// Waits for the thread and returns the spares it made.
    pub(crate) fn wait(self) -> Result<Vec<Segment>> {
        self.handle.join().map_err(|_| Error::RetireThread)
    }
}
