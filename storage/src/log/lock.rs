//! `DirLock`: one `Log` per folder.
//!
//! Two logs appending to the same segments would corrupt each other, and two
//! mappings of one file would break the aliasing argument of `mapping.rs`. An
//! exclusive `flock` on `LOCK` in the log folder rules both out. `flock` locks
//! belong to an open file description, so a second `Log::open` of the same
//! folder fails even within one process; the lock goes away with the process,
//! so a crash never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::path::Path;

use rustix::fs::{FlockOperation, flock};

use crate::error::{Error, Result};

/// Name of the lock file inside a log folder.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// Holds the exclusive lock on a log folder until dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock on `dir`, or fails at once if someone holds it.
    pub(crate) fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(Error::io("open", &path))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(Error::Locked {
                dir: dir.to_path_buf(),
            }),
            Err(e) => Err(Error::Io {
                op: "lock",
                path,
                source: e.into(),
            }),
        }
    }
}
