//! Entry points for the fuzz targets (`fuzz/` in the repository): the parsers that
//! bytes from outside reach, run as the engine runs them. Each returns what it made of
//! its input, so a target can check it against a simple model; none may panic on any
//! input. Not an API to build on.

use weir_engine::InvalidReason;

use crate::source::file::{csv_row, record_end};
use crate::source::tcp::lines::{Line, LineSplitter};
use crate::source::tcp::protocol::{FirstLine, first_line};
use crate::source::tcp::record::{Entry, Record, decode};

/// What the first line of a TCP connection is.
#[derive(Debug, PartialEq, Eq)]
pub enum TcpFirstLine {
    /// A hello: the producer id and the `seq` it gave.
    Hello(String, Option<u64>),
    /// A malformed hello, and why.
    BadHello(String),
    /// Not a hello: an event of an anonymous connection.
    Event,
}

/// Reads the first line of a TCP connection as the engine does.
pub fn tcp_first_line(line: &[u8]) -> TcpFirstLine {
    match first_line(line) {
        FirstLine::Hello(h) => TcpFirstLine::Hello(h.producer, h.seq),
        FirstLine::BadHello(why) => TcpFirstLine::BadHello(why),
        FirstLine::Event => TcpFirstLine::Event,
    }
}

/// A line of a TCP byte stream: whole (its bytes) or over-long (its length).
#[derive(Debug, PartialEq, Eq)]
pub enum TcpLine {
    /// A whole line, without its newline.
    Complete(Vec<u8>),
    /// A line over the limit, with its length.
    TooLong(u64),
}

/// Splits `chunks` of a TCP stream into lines of at most `max` bytes, as a connection
/// does; also returns the bytes still held for an unfinished line.
pub fn tcp_lines(max: usize, chunks: &[&[u8]]) -> (Vec<TcpLine>, usize) {
    let mut splitter = LineSplitter::new(max);
    let mut lines = Vec::new();
    for chunk in chunks {
        splitter.feed(chunk, |line| {
            lines.push(match line {
                Line::Complete(l) => TcpLine::Complete(l.to_vec()),
                Line::TooLong { len, .. } => TcpLine::TooLong(len),
            })
        });
    }
    (lines, splitter.held())
}

/// What a TCP source's log record holds, as replay reads it.
#[derive(Debug, PartialEq)]
pub enum TcpLogRecord {
    /// A batch: producer, first and last sequence numbers, and its entries (events as
    /// key, time, value; rejected lines as their reason).
    Batch {
        /// The producer id (empty: anonymous).
        producer: String,
        /// Sequence number of the first entry.
        first_seq: u64,
        /// Sequence number of the last entry.
        last_seq: u64,
        /// The entries read before the first bad one.
        events: Vec<(String, i64, f64)>,
        /// Rejected lines' reasons.
        rejected: Vec<InvalidReason>,
        /// Whether an entry was malformed.
        bad_entry: bool,
    },
    /// The producer table.
    Snapshot(Vec<(String, u64)>),
    /// A commit marker.
    Commit(u64),
}

/// Decodes a TCP source's log record payload, entries included.
pub fn tcp_log_record(payload: &[u8]) -> Result<TcpLogRecord, String> {
    match decode(payload).map_err(|e| e.to_string())? {
        Record::Batch(b) => {
            let mut events = Vec::new();
            let mut rejected = Vec::new();
            let mut bad_entry = false;
            for entry in b.entries() {
                match entry {
                    Ok(Entry::Event { key, ts, value }) => events.push((key.to_owned(), ts, value)),
                    Ok(Entry::Rejected { reason, .. }) => rejected.push(reason),
                    Err(_) => bad_entry = true,
                }
            }
            Ok(TcpLogRecord::Batch {
                producer: b.producer.to_owned(),
                first_seq: b.first_seq,
                last_seq: b.last_seq(),
                events,
                rejected,
                bad_entry,
            })
        }
        Record::Snapshot(marks) => Ok(TcpLogRecord::Snapshot(
            marks
                .into_iter()
                .map(|(p, m)| (p.to_owned(), m.seq))
                .collect(),
        )),
        Record::Commit(offset) => Ok(TcpLogRecord::Commit(offset.get())),
    }
}

/// Splits the bytes of a file into records as the file source does (without its line
/// limit): each record's bytes, without the newline that ends it, and the unfinished
/// rest. `csv`: a newline inside quotes belongs to its record.
pub fn file_records(bytes: &[u8], csv: bool) -> (Vec<&[u8]>, &[u8]) {
    let mut records = Vec::new();
    let mut at = 0;
    while let Some(nl) = record_end(&bytes[at..], csv) {
        records.push(&bytes[at..at + nl]);
        at += nl + 1;
    }
    (records, &bytes[at..])
}

/// The fields of one CSV record (a line of a CSV file source, newlines inside quotes
/// included), or why it is not one.
pub fn csv_record(line: &[u8]) -> Result<Vec<String>, String> {
    csv_row(line)
}
