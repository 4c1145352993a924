//! Group commit: `SyncJob`, `mark_durable` and poisoning.
//!
//! The log never syncs on the caller's thread by itself. [`Log::sync_job`]
//! packages "make `[durable_offset, end_offset)` durable" as a [`SyncJob`]:
//! shared handles on the dirty mappings plus the ranges. The job is `Send +
//! 'static`; the caller runs it on a blocking pool (`spawn_blocking`), keeps
//! appending meanwhile, and reports the result with [`Log::mark_durable`].
//! Every record appended before the job was taken is covered by it, so one
//! flush serves every append in between: that is group commit.
//!
//! Each job covers everything from the durable offset on, so jobs may overlap
//! and may finish in any order: `mark_durable` keeps the maximum, and a job
//! only reports an offset whose whole prefix it flushed.
//!
//! A failed sync poisons the log. After a failed `msync`/`fsync` the kernel may
//! have dropped the dirty pages or marked them clean, so a retry can succeed
//! without the data being on disk (the "fsyncgate" problem PostgreSQL hit in
//! 2018). Rather than pretend, every later call fails with
//! [`Error::Poisoned`]; reopening the log runs recovery, which finds out what
//! really is on disk.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::mapping::Flusher;
use super::offset::LogOffset;
use super::writer::Log;
use crate::error::{Error, Result};

/// Set once a sync fails; shared by a log and its sync jobs.
#[derive(Debug, Default)]
pub(crate) struct Poison {
    poisoned: AtomicBool,
    /// Test hook: the next sync job fails.
    #[cfg(feature = "fault-injection")]
    fail_next: AtomicBool,
}

impl Poison {
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    fn set(&self) {
        self.poisoned.store(true, Ordering::Release);
    }

    #[cfg(feature = "fault-injection")]
    fn take_injected_failure(&self) -> Option<std::io::Error> {
        self.fail_next
            .swap(false, Ordering::AcqRel)
            .then(|| std::io::Error::other("injected sync failure"))
    }

    #[cfg(not(feature = "fault-injection"))]
    fn take_injected_failure(&self) -> Option<std::io::Error> {
        None
    }
}

/// One part of a sync job: a range of one segment.
#[derive(Debug)]
struct Part {
    flusher: Flusher,
    path: PathBuf,
    range: Range<usize>,
}

/// A flush of the log up to [`target`](SyncJob::target), to run on a blocking
/// thread. See "Durability" in the [`log` module docs](crate::log#durability).
#[derive(Debug)]
#[must_use = "a sync job does nothing until it is run"]
pub struct SyncJob {
    parts: Vec<Part>,
    target: LogOffset,
    poison: Arc<Poison>,
}

impl SyncJob {
    /// The offset this job makes durable: every record below it.
    #[must_use]
    pub fn target(&self) -> LogOffset {
        self.target
    }

    /// Bytes of the log this job covers.
    #[must_use]
    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.range.len()).sum()
    }

    /// Whether the job covers no bytes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `msync(MS_SYNC)` over the dirty ranges (on Linux the equivalent of
    /// `fdatasync` for them) and returns the offset now durable, to hand to
    /// [`Log::mark_durable`]. Blocks: call it on a blocking thread.
    ///
    /// On failure the log is poisoned and the I/O error returned.
    pub fn run(self) -> Result<LogOffset> {
        if self.poison.is_poisoned() {
            return Err(Error::Poisoned);
        }
        for part in &self.parts {
            let result = match self.poison.take_injected_failure() {
                Some(injected) => Err(injected),
                None => part.flusher.flush_range(part.range.start, part.range.len()),
            };
            if let Err(source) = result {
                self.poison.set();
                tracing::error!(path = %part.path.display(), error = %source, "log sync failed; the log is poisoned");
                return Err(Error::Io {
                    op: "msync",
                    path: part.path.clone(),
                    source,
                });
            }
        }
        Ok(self.target)
    }
}

impl Log {
    /// A job that makes everything appended so far durable, or `None` if there
    /// is nothing to sync (or the policy is `never`).
    ///
    /// With `group`, take a job whenever none is running and records are
    /// waiting; with `always`, take and run one after each append and wait for
    /// it before acknowledging the record.
    pub fn sync_job(&self) -> Result<Option<SyncJob>> {
        self.check_poison()?;
        let end = self.end_offset();
        if !self.options.fsync.syncs() || self.durable >= end {
            return Ok(None);
        }
        let from = self.durable;
        let parts = self
            .segments()
            .filter(|s| s.end() > from)
            .filter_map(|s| {
                let start = s.position(from.max(s.base())).unwrap_or(0);
                let stop = if s.end() <= end {
                    s.len()
                } else {
                    s.position(end).unwrap_or(0)
                };
                (stop > start).then(|| Part {
                    flusher: s.map().flusher(),
                    path: s.path().to_path_buf(),
                    range: start..stop,
                })
            })
            .collect();
        Ok(Some(SyncJob {
            parts,
            target: end,
            poison: Arc::clone(&self.poison),
        }))
    }

    /// Records that a sync job finished: everything below `offset` is durable.
    pub fn mark_durable(&mut self, offset: LogOffset) -> Result<()> {
        self.check_poison()?;
        let end = self.end_offset();
        if offset > end {
            return Err(Error::DurableBeyondEnd { offset, end });
        }
        self.durable = self.durable.max(offset);
        Ok(())
    }

    /// Everything below this offset is on disk: a record is durable iff its
    /// offset is below it. With `never` this is `end_offset()`: the log then
    /// promises no more than the page cache does.
    #[must_use]
    pub fn durable_offset(&self) -> LogOffset {
        if self.options.fsync.syncs() {
            self.durable
        } else {
            self.end_offset()
        }
    }

    /// Whether the record at `offset` is durable.
    #[must_use]
    pub fn is_durable(&self, offset: LogOffset) -> bool {
        offset < self.durable_offset()
    }

    /// Syncs on this thread and returns the durable offset: for tests, tools
    /// and shutdown, not for a shard's event loop. Does nothing with `never`.
    pub fn flush_now(&mut self) -> Result<LogOffset> {
        if let Some(job) = self.sync_job()? {
            let durable = job.run()?;
            self.mark_durable(durable)?;
        }
        Ok(self.durable_offset())
    }

    /// Whether a sync failed and the log refuses further work.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.poison.is_poisoned()
    }

    /// Makes the next sync job fail as if `msync` had returned an I/O error.
    /// Only in builds with the `fault-injection` feature, for tests.
    #[cfg(feature = "fault-injection")]
    pub fn inject_sync_failure(&mut self) {
        self.poison.fail_next.store(true, Ordering::Release);
    }
}
