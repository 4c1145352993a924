//! `Prepared`: the next segment, made on a helper thread while the current
//! one fills.
//!
//! Making a segment means creating a file, allocating it, syncing it and its
//! folder, mapping it and pre-faulting every page: milliseconds of blocking
//! work that must not land on a shard's thread in the middle of an append.
//! As soon as the writer starts a segment, it starts a short-lived thread that
//! prepares the following one (its base offset is known: the current segment's
//! end). At rollover the writer takes it; it only waits if the segment filled
//! faster than the thread could prepare the next one. When a retired segment
//! is available, the thread recycles it instead of making a new file.

use std::path::PathBuf;
use std::thread::JoinHandle;

use super::offset::LogOffset;
use super::segment::Segment;
use crate::error::{Error, Result};

/// A segment being prepared in the background.
#[derive(Debug)]
pub(crate) struct Prepared {
    base: LogOffset,
    handle: JoinHandle<Result<Segment>>,
}

impl Prepared {
    /// Starts preparing the segment at `base`, from `spare` if there is one.
    pub(crate) fn spawn(
        dir: PathBuf,
        base: LogOffset,
        len: u64,
        sync: bool,
        spare: Option<Segment>,
    ) -> Result<Self> {
        let handle = std::thread::Builder::new()
            .name("weir-log-prepare".into())
            .spawn(move || match spare {
                Some(spare) => spare.recycle(&dir, base, sync, true),
                None => Segment::create(&dir, base, len, sync),
            })
            .map_err(Error::io("spawn a thread for", Segment::file_name(base)))?;
        Ok(Prepared { base, handle })
    }

    /// The base offset of the segment being prepared.
    pub(crate) fn base(&self) -> LogOffset {
        self.base
    }

    /// Waits for the segment.
    pub(crate) fn wait(self) -> Result<Segment> {
        let base = self.base;
        self.handle
            .join()
            .map_err(|_| Error::PrepareThread { base })?
    }
}
