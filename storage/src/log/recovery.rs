//! Recovery: what `Log::open` does to a folder that may have seen a crash.
//!
//! 1. List the folder. Delete `.seg.tmp` files (segments whose preparation a
//!    crash interrupted). Every `.seg` name must be a 20-digit base offset,
//!    every length one the log makes, and each segment must start where the
//!    previous one ends; anything else is an error, never a guess.
//! 2. Walk the frames of every segment from the first, verifying each
//!    checksum. A segment's data continues into the next segment only if that
//!    one has data. The walk stops at the first frame whose length is
//!    impossible or whose checksum is wrong, or at the end of the last segment
//!    with data. Every segment is walked, not only the last: after a power loss
//!    the kernel may have written a later segment back and not an earlier one.
//! 3. Cut there: zero every non-zero byte after the stopping point in its
//!    segment, delete the segments after it, and (unless the policy is
//!    `never`) sync all of that, so that garbage can never reappear behind
//!    records appended later.
//!
//! A completed sync covers a prefix of the log, and everything in it carries a
//! valid checksum, so the cut never falls inside it: no record that a completed
//! flush covered is lost, and a crash at any byte leaves a valid log.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use super::frame::{self, SEGMENT_HEADER, SEGMENT_HEADER_LEN, SegmentHeader, WalkEnd};
use super::offset::LogOffset;
use super::options::{LogOptions, valid_segment_len};
use super::segment::{SEGMENT_EXT, Segment, TMP_EXT};
use crate::error::{Error, Result};
use crate::fsutil::sync_dir;

/// What recovery found and did when a log was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Segments kept.
    pub segments: usize,
    /// Whole records in the log.
    pub records: u64,
    /// The end of the valid data: where the next record goes.
    pub valid_end: LogOffset,
    /// Bytes cut off after `valid_end`: from it to the last non-zero byte of
    /// its segment, plus the data of deleted later segments. Zero after a clean
    /// shutdown.
    pub truncated_bytes: u64,
    /// Segments deleted because they lay wholly after the cut.
    pub deleted_segments: usize,
}

/// A segment file found in a log folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListedSegment {
    pub(crate) base: LogOffset,
    pub(crate) path: PathBuf,
    pub(crate) len: u64,
}

/// The segment files and leftover temporary files of a log folder.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Segments in base order.
    pub(crate) segments: Vec<ListedSegment>,
    /// Leftovers of interrupted segment preparation.
    pub(crate) leftovers: Vec<PathBuf>,
}

/// Lists `dir`, checking segment names. Other files are ignored.
pub(crate) fn list(dir: &Path) -> Result<Listing> {
    let mut listing = Listing::default();
    let tmp_suffix = format!(".{SEGMENT_EXT}.{TMP_EXT}");
    let seg_suffix = format!(".{SEGMENT_EXT}");
    for entry in std::fs::read_dir(dir).map_err(Error::io("list", dir))? {
        let entry = entry.map_err(Error::io("list", dir))?;
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if name.ends_with(&tmp_suffix) {
            listing.leftovers.push(path);
        } else if name.ends_with(&seg_suffix) {
            let base =
                Segment::parse_file_name(name).ok_or(Error::SegmentName { path: path.clone() })?;
            let len = entry.metadata().map_err(Error::io("stat", &path))?.len();
            listing.segments.push(ListedSegment { base, path, len });
        }
    }
    listing.segments.sort_by_key(|s| s.base);
    Ok(listing)
}

/// Checks that listed segments have lengths the log makes and follow one
/// another without gaps.
pub(crate) fn check_sequence(segments: &[ListedSegment]) -> Result<()> {
    let mut expected: Option<LogOffset> = None;
    for s in segments {
        if !valid_segment_len(s.len) {
            return Err(Error::SegmentLength {
                path: s.path.clone(),
                len: s.len,
            });
        }
        if let Some(expected) = expected.filter(|&e| e != s.base) {
            return Err(Error::SegmentGap {
                path: s.path.clone(),
                expected,
                found: s.base,
            });
        }
        expected = Some(s.base.add(s.len));
    }
    Ok(())
}

/// The state of a log after recovery.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// Full segments before the active one.
    pub(crate) sealed: VecDeque<Segment>,
    /// The segment appends go to.
    pub(crate) active: Segment,
    /// Where in `active` the next frame goes.
    pub(crate) write_pos: usize,
    /// What was found and done.
    pub(crate) report: RecoveryReport,
}

/// Recovers the log in `dir` (which the caller has locked).
pub(crate) fn recover(dir: &Path, options: &LogOptions) -> Result<Recovered> {
    let sync = options.fsync.syncs();
    let listing = list(dir)?;
    let mut dir_changed = false;
    for leftover in &listing.leftovers {
        tracing::info!(path = %leftover.display(), "deleting an unfinished segment");
        std::fs::remove_file(leftover).map_err(Error::io("delete", leftover))?;
        dir_changed = true;
    }
    check_sequence(&listing.segments)?;

    if listing.segments.is_empty() {
        if dir_changed && sync {
            sync_dir(dir)?;
        }
        let active = Segment::create(dir, LogOffset::ZERO, options.segment_bytes, sync)?;
        let valid_end = active.offset_at(SEGMENT_HEADER_LEN);
        return Ok(Recovered {
            sealed: VecDeque::new(),
            active,
            write_pos: SEGMENT_HEADER_LEN,
            report: RecoveryReport {
                segments: 1,
                records: 0,
                valid_end,
                truncated_bytes: 0,
                deleted_segments: 0,
            },
        });
    }

    let mut segments = listing
        .segments
        .into_iter()
        .map(|s| Segment::open(s.path, s.base, s.len))
        .collect::<Result<VecDeque<_>>>()?;

    // Walk forward until the data ends.
    let mut records = 0;
    let mut stop = (0, SEGMENT_HEADER_LEN);
    for (i, segment) in segments.iter().enumerate() {
        let bytes = segment.bytes();
        if frame::segment_header(bytes) == SegmentHeader::Invalid {
            return Err(Error::SegmentHeader {
                path: segment.path().to_path_buf(),
            });
        }
        let walk = frame::walk(bytes, segment.base().get());
        records += walk.records;
        stop = (i, walk.end);
        let next_has_data = segments
            .get(i + 1)
            .and_then(|next| next.bytes().get(SEGMENT_HEADER_LEN..SEGMENT_HEADER_LEN + 8))
            .is_some_and(|head| head.iter().any(|&b| b != 0));
        if walk.stop != WalkEnd::Clean || !next_has_data {
            break;
        }
    }
    let (active_index, write_pos) = stop;

    // Cut: delete the segments after the stopping point...
    let mut truncated_bytes = 0;
    let mut deleted_segments = 0;
    while segments.len() > active_index + 1 {
        let Some(later) = segments.pop_back() else {
            break;
        };
        if let Some(extent) = frame::nonzero_extent(later.bytes(), SEGMENT_HEADER_LEN) {
            truncated_bytes += (extent - SEGMENT_HEADER_LEN) as u64;
        }
        tracing::info!(path = %later.path().display(), "deleting a segment after the end of the log");
        let path = later.path().to_path_buf();
        drop(later);
        std::fs::remove_file(&path).map_err(Error::io("delete", &path))?;
        deleted_segments += 1;
        dir_changed = true;
    }
    let Some(mut active) = segments.pop_back() else {
        return Err(Error::SegmentHeader {
            path: dir.to_path_buf(),
        });
    };

    // ... and zero what follows it in its own segment.
    let bytes = active.map_mut().bytes_mut();
    if let Some(extent) = frame::nonzero_extent(bytes, write_pos) {
        truncated_bytes += (extent - write_pos) as u64;
        bytes[write_pos..extent].fill(0);
    }
    if truncated_bytes > 0 {
        tracing::warn!(
            path = %active.path().display(),
            valid_end = %active.offset_at(write_pos),
            truncated_bytes,
            "cut a torn tail off the log"
        );
    }
    for segment in segments.iter_mut().chain(std::iter::once(&mut active)) {
        let bytes = segment.map_mut().bytes_mut();
        if frame::segment_header(bytes) == SegmentHeader::Blank {
            bytes[..SEGMENT_HEADER_LEN].copy_from_slice(&SEGMENT_HEADER);
        }
    }

    if sync {
        // Also writes back whatever the crashed process left dirty in the page
        // cache, so that `durable_offset` can start at `valid_end` honestly.
        for segment in segments.iter().chain(std::iter::once(&active)) {
            let flusher = segment.map().flusher();
            flusher
                .flush_range(0, flusher.len())
                .map_err(Error::io("msync", segment.path()))?;
        }
        if dir_changed {
            sync_dir(dir)?;
        }
    }
    active.map_mut().prefault_writable(write_pos);

    let report = RecoveryReport {
        segments: segments.len() + 1,
        records,
        valid_end: active.offset_at(write_pos),
        truncated_bytes,
        deleted_segments,
    };
    Ok(Recovered {
        sealed: segments,
        active,
        write_pos,
        report,
    })
}
