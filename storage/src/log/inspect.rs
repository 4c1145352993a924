//! `inspect`: a read-only report on a log folder, for `weir log inspect DIR`.
//!
//! It reads the segment files with `read(2)` (no mapping, no lock, no change
//! to anything), so it can look at the log of a running engine, and applies
//! the same rules as recovery to say where the log ends and what recovery
//! would cut off.

use std::fmt;
use std::path::{Path, PathBuf};

use super::frame::{self, Defect, SEGMENT_HEADER_LEN, SegmentHeader, WalkEnd};
use super::offset::LogOffset;
use super::options::valid_segment_len;
use super::recovery;
use super::segment::SPARE_PREFIX;
use crate::error::{Error, Result};

/// What `inspect` found in one segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentInspection {
    /// The file name.
    pub file: String,
    /// The base offset its name gives.
    pub base: LogOffset,
    /// The file's length.
    pub size: u64,
    /// Whole records, from the first frame to the first bad one.
    pub records: u64,
    /// Bytes of their payloads.
    pub payload_bytes: u64,
    /// The end of the valid data in this segment.
    pub valid_end: LogOffset,
    /// A frame with a wrong length or checksum, or non-zero bytes after the
    /// end of the valid data, was found.
    pub torn_tail: bool,
    /// Whether this segment lies after the log's end, so that recovery would
    /// delete it.
    pub after_end: bool,
    /// Everything unusual, in order.
    pub issues: Vec<SegmentIssue>,
}

/// Something unusual about a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SegmentIssue {
    /// The header is not the log's magic (the file is not a segment).
    BadHeader,
    /// The header is all zeros (the segment was allocated but its header did
    /// not reach the disk); recovery rewrites it.
    BlankHeader,
    /// The length is not one the log makes.
    BadLength,
    /// The segment does not start where the previous one ends.
    Gap {
        /// Where the previous segment ends.
        expected: LogOffset,
    },
    /// A frame whose length runs past the segment.
    BadFrameLength {
        /// The frame's offset.
        at: LogOffset,
    },
    /// A frame whose checksum is wrong.
    BadChecksum {
        /// The frame's offset.
        at: LogOffset,
    },
    /// Non-zero bytes after the end of the valid data.
    TrailingBytes {
        /// Where the valid data ends.
        from: LogOffset,
        /// Bytes from there to the last non-zero byte.
        len: u64,
    },
}

impl fmt::Display for SegmentIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentIssue::BadHeader => f.write_str("bad header: not a weir log segment"),
            SegmentIssue::BlankHeader => f.write_str("blank header (rewritten on open)"),
            SegmentIssue::BadLength => {
                f.write_str("length is not a multiple of 4096 of at least 4096")
            }
            SegmentIssue::Gap { expected } => {
                write!(f, "gap: previous segment ends at {expected}")
            }
            SegmentIssue::BadFrameLength { at } => {
                write!(f, "frame at {at}: length runs past the segment")
            }
            SegmentIssue::BadChecksum { at } => write!(f, "frame at {at}: bad checksum"),
            SegmentIssue::TrailingBytes { from, len } => {
                write!(f, "{len} non-zero bytes after the valid end {from}")
            }
        }
    }
}

/// What `inspect` found in a log folder.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogInspection {
    /// The folder.
    pub dir: PathBuf,
    /// Each segment, in offset order.
    pub segments: Vec<SegmentInspection>,
    /// Records in the segments up to the log's end.
    pub records: u64,
    /// Bytes of their payloads.
    pub payload_bytes: u64,
    /// Where the log ends (where recovery would cut), if it has segments.
    pub end: Option<LogOffset>,
    /// Leftover `.seg.tmp` files of interrupted segment preparation.
    pub leftovers: usize,
    /// Spare segment files kept for reuse (`spare-*.seg.tmp`): normal in a log
    /// that recycles; an open deletes them and makes its spares again.
    pub spares: usize,
}

impl LogInspection {
    /// Whether recovery would cut anything off or refuse the folder.
    #[must_use]
    pub fn needs_repair(&self) -> bool {
        self.leftovers > 0
            || self
                .segments
                .iter()
                .any(|s| s.torn_tail || s.after_end || !s.issues.is_empty())
    }
}

/// Reports on the log in `dir` without changing anything.
pub fn inspect(dir: impl AsRef<Path>) -> Result<LogInspection> {
    let dir = dir.as_ref();
    let listing = recovery::list(dir)?;
    let mut report = LogInspection {
        dir: dir.to_path_buf(),
        segments: Vec::with_capacity(listing.segments.len()),
        records: 0,
        payload_bytes: 0,
        end: None,
        leftovers: 0,
        spares: 0,
    };
    for path in &listing.leftovers {
        let spare = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(SPARE_PREFIX));
        if spare {
            report.spares += 1;
        } else {
            report.leftovers += 1;
        }
    }
    let mut expected: Option<LogOffset> = None;
    let mut next_has_data = Vec::with_capacity(listing.segments.len());
    for listed in &listing.segments {
        let bytes = std::fs::read(&listed.path).map_err(Error::io("read", &listed.path))?;
        let mut issues = Vec::new();
        match frame::segment_header(&bytes) {
            SegmentHeader::Valid => {}
            SegmentHeader::Blank => issues.push(SegmentIssue::BlankHeader),
            SegmentHeader::Invalid => issues.push(SegmentIssue::BadHeader),
        }
        if !valid_segment_len(listed.len) {
            issues.push(SegmentIssue::BadLength);
        }
        if let Some(expected) = expected.filter(|&e| e != listed.base) {
            issues.push(SegmentIssue::Gap { expected });
        }
        expected = Some(listed.base.add(listed.len));
        let walk = frame::walk(&bytes, listed.base.get());
        let at = listed.base.add(walk.end as u64);
        match walk.stop {
            WalkEnd::Clean => {}
            WalkEnd::Torn(Defect::Length) => issues.push(SegmentIssue::BadFrameLength { at }),
            WalkEnd::Torn(Defect::Checksum) => issues.push(SegmentIssue::BadChecksum { at }),
        }
        let trailing = frame::nonzero_extent(&bytes, walk.end).map(|x| (x - walk.end) as u64);
        if let (WalkEnd::Clean, Some(len)) = (walk.stop, trailing) {
            issues.push(SegmentIssue::TrailingBytes { from: at, len });
        }
        next_has_data.push(
            bytes
                .get(SEGMENT_HEADER_LEN..SEGMENT_HEADER_LEN + 8)
                .is_some_and(|h| h.iter().any(|&b| b != 0)),
        );
        report.segments.push(SegmentInspection {
            file: listed
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            base: listed.base,
            size: listed.len,
            records: walk.records,
            payload_bytes: walk.payload_bytes,
            valid_end: at,
            torn_tail: walk.stop != WalkEnd::Clean || trailing.is_some(),
            after_end: false,
            issues,
        });
    }

    // The same rule as recovery: data goes on into the next segment only if
    // this one ends cleanly and the next one has data.
    let mut ended = false;
    for (i, segment) in report.segments.iter_mut().enumerate() {
        if ended {
            segment.after_end = true;
            continue;
        }
        report.records += segment.records;
        report.payload_bytes += segment.payload_bytes;
        report.end = Some(segment.valid_end);
        let clean = !segment.issues.iter().any(|issue| {
            matches!(
                issue,
                SegmentIssue::BadFrameLength { .. } | SegmentIssue::BadChecksum { .. }
            )
        });
        ended = !clean || !next_has_data.get(i + 1).copied().unwrap_or(false);
    }
    Ok(report)
}

impl fmt::Display for LogInspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "log {}", self.dir.display())?;
        writeln!(
            f,
            "{:<26} {:>20} {:>12} {:>10} {:>14} {:>20}  torn tail",
            "segment", "base offset", "size", "records", "payload bytes", "valid end"
        )?;
        for s in &self.segments {
            let torn = match (s.torn_tail, s.after_end) {
                (_, true) => "after end",
                (true, false) => "yes",
                (false, false) => "no",
            };
            writeln!(
                f,
                "{:<26} {:>20} {:>12} {:>10} {:>14} {:>20}  {}",
                s.file, s.base, s.size, s.records, s.payload_bytes, s.valid_end, torn
            )?;
        }
        let end = self
            .end
            .map_or_else(|| "-".to_owned(), |end| end.to_string());
        writeln!(
            f,
            "total: {} segments, {} records, {} payload bytes; log ends at offset {}",
            self.segments.len(),
            self.records,
            self.payload_bytes,
            end
        )?;
        if self.leftovers > 0 {
            writeln!(
                f,
                "{} unfinished segment file(s) (.seg.tmp) would be deleted on open",
                self.leftovers
            )?;
        }
        if self.spares > 0 {
            writeln!(
                f,
                "{} spare segment file(s) kept for reuse (spare-*.seg.tmp)",
                self.spares
            )?;
        }
        for s in &self.segments {
            for issue in &s.issues {
                writeln!(f, "{}: {issue}", s.file)?;
            }
        }
        Ok(())
    }
}
