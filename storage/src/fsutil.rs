//! Small file-system helpers shared by the log and the checkpoint store.

use std::fs::File;
use std::path::Path;

use crate::error::{Error, Result};

/// fsyncs a folder, so that the files created, renamed or deleted in it stay
/// that way after a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("fsync folder", dir))
}
