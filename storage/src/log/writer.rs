//! `Log`: opening a log and appending to it.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::frame::{self, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN};
use super::lock::DirLock;
use super::offset::LogOffset;
use super::options::LogOptions;
use super::prepare::Prepared;
use super::recovery::{self, RecoveryReport};
use super::retire::{self, Leaving, Retiring};
use super::segment::Segment;
use super::sync::Poison;
use crate::error::{Error, Result};
use crate::fsutil::sync_dir;

/// A memory-mapped append log in one folder. See the [module docs](super) for
/// the format and the durability contract.
///
/// A `Log` belongs to one thread (a shard); it is `Send` so that it can be
/// created elsewhere and moved there. Reading borrows it, appending borrows it
/// mutably, and the borrow checker keeps the two apart.
#[derive(Debug)]
pub struct Log {
    pub(super) dir: PathBuf,
    pub(super) options: LogOptions,
    /// Full segments, oldest first.
    pub(super) sealed: VecDeque<Segment>,
    /// The segment appends go to.
    pub(super) active: Segment,
    /// Where in `active` the next frame goes. Everything from here to the end
    /// of `active` is zero.
    pub(super) write_pos: usize,
    /// Everything before this offset is on disk (unused with `Never`).
    pub(super) durable: LogOffset,
    /// Shared with sync jobs, which set it when a sync fails.
    pub(super) poison: Arc<Poison>,
    /// The next segment, being made on a helper thread.
    prepared: Option<Prepared>,
    /// Segments retired by `truncate_before`, kept to be recycled.
    spares: Vec<Segment>,
    /// Truncated segments being taken off the disk on a helper thread.
    retiring: Option<Retiring>,
    /// Files of truncated segments that could not be removed yet, oldest
    /// first; the next truncation removes them before any newer one.
    stranded: Vec<PathBuf>,
    _lock: DirLock,
}

impl Log {
    /// Opens the log in `dir`, creating the folder if needed and recovering it
    /// if it holds segments (see the [`recovery`](super#recovery) section).
    ///
    /// This blocks (file creation, recovery, syncs): call it at start-up or on
    /// a blocking thread, not from inside a shard's event loop.
    pub fn open(dir: impl AsRef<Path>, options: LogOptions) -> Result<(Log, RecoveryReport)> {
        let dir = dir.as_ref();
        options.validate()?;
        let existed = dir.is_dir();
        std::fs::create_dir_all(dir).map_err(Error::io("create folder", dir))?;
        if !existed
            && options.fsync.syncs()
            && let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty())
        {
            sync_dir(parent)?;
        }
        let lock = DirLock::acquire(dir)?;
        let recovered = recovery::recover(dir, &options)?;
        let mut log = Log {
            dir: dir.to_path_buf(),
            options,
            sealed: recovered.sealed,
            active: recovered.active,
            write_pos: recovered.write_pos,
            durable: recovered.report.valid_end,
            poison: Arc::new(Poison::default()),
            prepared: None,
            spares: Vec::new(),
            retiring: None,
            stranded: Vec::new(),
            _lock: lock,
        };
        if options.preallocate_spares {
            let sync = options.fsync.syncs();
            for n in 0..options.recycle_segments {
                let spare = Segment::create_spare(dir, n, options.segment_bytes, sync)?;
                log.spares.push(spare);
            }
        }
        log.prepare_next();
        Ok((log, recovered.report))
    }

    /// Appends a record and returns its offset. The payload is copied into the
    /// mapping; nothing is synced (see [`sync_job`](Log::sync_job)).
    pub fn append(&mut self, payload: &[u8]) -> Result<LogOffset> {
        self.append_with(payload.len(), |buf| buf.copy_from_slice(payload))
    }

    /// Appends a record of `len` bytes that `fill` writes in place: `fill` gets
    /// the record's bytes in the mapping (16-byte aligned, zeroed) and must
    /// fill them. This is how a caller serialises without an extra copy.
    pub fn append_with<F>(&mut self, len: usize, fill: F) -> Result<LogOffset>
    where
        F: FnOnce(&mut [u8]),
    {
        self.check_poison()?;
        let max = self.max_record_len();
        if len > max {
            return Err(Error::RecordTooLarge { len, max });
        }
        let frame_len = frame::frame_len(len);
        if self.write_pos + frame_len > self.active.len() {
            self.roll()?;
        }
        let pos = self.write_pos;
        let offset = self.active.offset_at(pos);
        let bytes = self.active.map_mut().bytes_mut();
        let (head, rest) = bytes[pos..pos + FRAME_HEADER_LEN + len].split_at_mut(FRAME_HEADER_LEN);
        fill(rest);
        // The header goes last: until it is written, a reader or recovery sees
        // the end marker here, not a half-filled record.
        head.copy_from_slice(&frame::header(offset.get(), rest));
        self.write_pos = pos + frame_len;
        Ok(offset)
    }

    /// The largest payload [`append`](Log::append) accepts.
    #[must_use]
    pub fn max_record_len(&self) -> usize {
        usize::try_from(self.options.segment_bytes).map_or(0, frame::max_payload)
    }

    /// Where the next record goes: every record appended so far lies below it,
    /// and `read_from(end_offset())` yields nothing.
    #[must_use]
    pub fn end_offset(&self) -> LogOffset {
        self.active.offset_at(self.write_pos)
    }

    /// The first offset still held (the base of the oldest segment).
    #[must_use]
    pub fn start_offset(&self) -> LogOffset {
        self.sealed.front().unwrap_or(&self.active).base()
    }

    /// The folder of the log.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the log was opened with.
    #[must_use]
    pub fn options(&self) -> &LogOptions {
        &self.options
    }

    /// Number of segment files.
    #[must_use]
    pub fn segment_count(&self) -> usize {
        self.sealed.len() + 1
    }

    /// Bytes of segment files on disk, spares kept for recycling included
    /// (segments are allocated at full size).
    #[must_use]
    pub fn disk_bytes(&self) -> u64 {
        let retiring = self.retiring.as_ref().map_or(0, Retiring::disk_bytes);
        self.segments()
            .chain(&self.spares)
            .map(|s| s.len() as u64)
            .sum::<u64>()
            + retiring
    }

    /// Removes every segment that lies wholly below `offset` from the log and
    /// returns how many were removed. The active segment is never removed.
    /// Call it with the oldest offset any retained checkpoint still needs.
    ///
    /// Up to `recycle_segments` removed segments are renamed and kept for
    /// recycling; the others are deleted. Unless the policy is `never`, the
    /// folder is synced. Deleting large files takes milliseconds, and syncing
    /// the folder waits for the device: a shard's event loop should call
    /// [`truncate_before_in_background`](Log::truncate_before_in_background).
    pub fn truncate_before(&mut self, offset: LogOffset) -> Result<usize> {
        self.check_poison()?;
        self.reap_retiring(true)?;
        let leaving = self.take_below(offset);
        let removed = leaving.len();
        let stranded = std::mem::take(&mut self.stranded);
        let (retired, result) =
            retire::retire(&self.dir, stranded, leaving, self.options.fsync.syncs());
        self.keep(retired);
        result.map(|()| removed)
    }

    /// Like [`truncate_before`](Log::truncate_before), but the segments'
    /// files are renamed or deleted, and the folder synced, on a helper
    /// thread: the log drops the segments at once (its start offset moves and
    /// reads below it fail), and their files go shortly after. A file that
    /// cannot be removed is logged and left behind; it lies before the log's
    /// start, and the next [`open`](Log::open) finds it as part of the log.
    ///
    /// Only one such thread runs at a time: if the previous one is still
    /// busy, this waits for it.
    pub fn truncate_before_in_background(&mut self, offset: LogOffset) -> Result<usize> {
        self.check_poison()?;
        self.reap_retiring(true)?;
        let leaving = self.take_below(offset);
        let removed = leaving.len();
        if removed == 0 && self.stranded.is_empty() {
            return Ok(0);
        }
        let stranded = std::mem::take(&mut self.stranded);
        let paths: Vec<PathBuf> = stranded
            .iter()
            .cloned()
            .chain(leaving.iter().map(|l| l.segment.path().to_path_buf()))
            .collect();
        let sync = self.options.fsync.syncs();
        match Retiring::spawn(self.dir.clone(), stranded, leaving, sync) {
            Ok(retiring) => self.retiring = Some(retiring),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a thread to retire truncated segments; the next truncation removes their files");
                self.stranded = paths;
            }
        }
        Ok(removed)
    }

    /// Takes the sealed segments wholly below `offset` out of the log, marking
    /// which to keep as spares.
    fn take_below(&mut self, offset: LogOffset) -> Vec<Leaving> {
        let mut leaving = Vec::new();
        let mut spares = self.spares.len();
        while let Some(oldest) = self.sealed.pop_front() {
            if oldest.end() > offset {
                self.sealed.push_front(oldest);
                break;
            }
            let keep = spares < self.options.recycle_segments
                && oldest.len() as u64 == self.options.segment_bytes;
            spares += usize::from(keep);
            leaving.push(Leaving {
                segment: oldest,
                keep,
            });
        }
        leaving
    }

    /// Collects the spares of a finished background truncation; with `block`,
    /// waits for one still running.
    fn reap_retiring(&mut self, block: bool) -> Result<()> {
        if self
            .retiring
            .as_ref()
            .is_some_and(|r| block || r.is_finished())
            && let Some(retiring) = self.retiring.take()
        {
            let retired = retiring.wait()?;
            self.keep(retired);
        }
        Ok(())
    }

    /// Takes in what a retirement did: its spares, and the files it left.
    fn keep(&mut self, retired: retire::Retired) {
        self.spares.extend(retired.spares);
        let newer = std::mem::replace(&mut self.stranded, retired.stranded);
        self.stranded.extend(newer);
    }

    /// Segments in offset order, the active one last.
    pub(super) fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.sealed.iter().chain(std::iter::once(&self.active))
    }

    /// The segment at `index` in offset order.
    pub(super) fn segment(&self, index: usize) -> Option<&Segment> {
        match index.cmp(&self.sealed.len()) {
            std::cmp::Ordering::Less => self.sealed.get(index),
            std::cmp::Ordering::Equal => Some(&self.active),
            std::cmp::Ordering::Greater => None,
        }
    }

    /// The written bytes of the segment at `index`: the whole segment if it is
    /// sealed, up to the write position if it is the active one.
    pub(super) fn written(&self, index: usize) -> Option<(&Segment, &[u8])> {
        let segment = self.segment(index)?;
        let bytes = segment.bytes();
        if index == self.sealed.len() {
            Some((segment, &bytes[..self.write_pos]))
        } else {
            Some((segment, bytes))
        }
    }

    /// Fails if a sync failed.
    pub(super) fn check_poison(&self) -> Result<()> {
        if self.poison.is_poisoned() {
            Err(Error::Poisoned)
        } else {
            Ok(())
        }
    }

    /// Moves to a new segment: the prepared one if it is ready, else one made
    /// here and now.
    fn roll(&mut self) -> Result<()> {
        let base = self.active.end();
        let next = match self.prepared.take() {
            Some(prepared) if prepared.base() == base => prepared.wait()?,
            stale => {
                if let Some(stale) = stale {
                    // Cannot happen (segments only grow at the end), but a
                    // wrong segment must never be used.
                    drop(stale.wait());
                }
                let sync = self.options.fsync.syncs();
                self.reap_retiring(false)?;
                match self.spares.pop() {
                    Some(spare) => spare.recycle(&self.dir, base, sync, false)?,
                    None => Segment::create(&self.dir, base, self.options.segment_bytes, sync)?,
                }
            }
        };
        let full = std::mem::replace(&mut self.active, next);
        self.sealed.push_back(full);
        self.write_pos = SEGMENT_HEADER_LEN;
        self.prepare_next();
        Ok(())
    }

    /// Starts preparing the segment after the active one, if enabled.
    fn prepare_next(&mut self) {
        if !self.options.prepare_ahead || self.prepared.is_some() {
            return;
        }
        if let Err(e) = self.reap_retiring(false) {
            tracing::warn!(error = %e, "collecting retired segments failed");
        }
        match Prepared::spawn(
            self.dir.clone(),
            self.active.end(),
            self.options.segment_bytes,
            self.options.fsync.syncs(),
            self.spares.pop(),
        ) {
            Ok(prepared) => self.prepared = Some(prepared),
            Err(e) => {
                tracing::warn!(error = %e, "cannot prepare the next segment ahead; will make it at rollover");
            }
        }
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        // The helper thread must not outlive the log: it would race a reopen
        // of the same folder. What it made is an empty segment, which the next
        // open deletes.
        if let Some(prepared) = self.prepared.take()
            && let Err(e) = prepared.wait()
        {
            tracing::debug!(error = %e, "preparing the next segment failed at close");
        }
        if let Some(retiring) = self.retiring.take()
            && let Err(e) = retiring.wait()
        {
            tracing::debug!(error = %e, "retiring truncated segments failed at close");
        }
    }
}
