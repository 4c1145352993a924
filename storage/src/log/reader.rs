//! Reading: `Log::read_from`, `LogReader` and `Record`.

use super::frame::{self, Frame, SEGMENT_HEADER_LEN};
use super::offset::LogOffset;
use super::writer::Log;
use crate::error::{Error, Result};

/// A record read in place from the log's mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Where the record starts; give it to `read_from` to read from here.
    pub offset: LogOffset,
    /// The payload, borrowed from the mapping, starting at a 16-byte aligned
    /// address (so an rkyv archive can be accessed in place).
    pub payload: &'a [u8],
}

impl Record<'_> {
    /// The offset just past this record: where a reader that has applied this
    /// record resumes. It is a record boundary for `read_from`.
    #[must_use]
    pub fn next_offset(&self) -> LogOffset {
        self.offset.add(frame::frame_len(self.payload.len()) as u64)
    }
}

/// Iterator over the records of a log from some offset to the end the log had
/// when the iterator was made. Yields each record's checksum-verified payload,
/// or one error and then nothing.
#[derive(Debug)]
pub struct LogReader<'a> {
    log: &'a Log,
    /// Index of the current segment in offset order.
    segment: usize,
    /// Position of the next frame in it.
    pos: usize,
    /// An error to yield before stopping.
    error: Option<Error>,
    done: bool,
}

impl Log {
    /// Reads the records from `offset` (a record's offset, a record's
    /// [`next_offset`](Record::next_offset), a segment base, or
    /// [`end_offset`](Log::end_offset)) to the end, crossing segments.
    /// Nothing is copied. An offset that is not a record boundary, was
    /// truncated or lies past the end makes the first item an error.
    pub fn read_from(&self, offset: LogOffset) -> LogReader<'_> {
        match self.locate(offset) {
            Ok((segment, pos)) => LogReader {
                log: self,
                segment,
                pos,
                error: None,
                done: false,
            },
            Err(error) => LogReader {
                log: self,
                segment: 0,
                pos: 0,
                error: Some(error),
                done: false,
            },
        }
    }

    /// The segment index and position of the record boundary `offset`.
    fn locate(&self, offset: LogOffset) -> Result<(usize, usize)> {
        self.check_poison()?;
        let end = self.end_offset();
        if offset > end {
            return Err(Error::OffsetBeyondEnd { offset, end });
        }
        let start = self.start_offset();
        if offset < start {
            return Err(Error::OffsetTruncated { offset, start });
        }
        let not_boundary = || Error::NotRecordBoundary { offset };
        let (index, segment, pos) = self
            .segments()
            .enumerate()
            .find_map(|(i, s)| s.position(offset).map(|pos| (i, s, pos)))
            .ok_or_else(not_boundary)?;
        let pos = if pos == 0 { SEGMENT_HEADER_LEN } else { pos };
        if !frame::is_frame_position(pos) {
            return Err(not_boundary());
        }
        // Only a walk from the start of the segment proves that `pos` is where
        // a frame starts and not a lookalike inside a payload. The walk reads
        // only headers.
        let bytes = self.written(index).map_or(segment.bytes(), |(_, b)| b);
        let mut at = SEGMENT_HEADER_LEN;
        while at < pos {
            match frame::decode(bytes, segment.base().get(), at, false) {
                Frame::Record { next, .. } => at = next,
                Frame::End | Frame::Torn(_) => return Err(not_boundary()),
            }
        }
        if at == pos {
            Ok((index, pos))
        } else {
            Err(not_boundary())
        }
    }
}

impl<'a> Iterator for LogReader<'a> {
    type Item = Result<Record<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Some(error) = self.error.take() {
            self.done = true;
            return Some(Err(error));
        }
        let log: &'a Log = self.log;
        loop {
            let Some((segment, bytes)) = log.written(self.segment) else {
                self.done = true;
                return None;
            };
            match frame::decode(bytes, segment.base().get(), self.pos, true) {
                Frame::Record { payload, next } => {
                    let offset = segment.offset_at(self.pos);
                    self.pos = next;
                    return Some(Ok(Record {
                        offset,
                        payload: &bytes[payload],
                    }));
                }
                Frame::End => {
                    self.segment += 1;
                    self.pos = SEGMENT_HEADER_LEN;
                }
                Frame::Torn(_) => {
                    self.done = true;
                    return Some(Err(Error::CorruptRecord {
                        path: segment.path().to_path_buf(),
                        offset: segment.offset_at(self.pos),
                    }));
                }
            }
        }
    }
}

impl std::iter::FusedIterator for LogReader<'_> {}
