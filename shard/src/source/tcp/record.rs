//! The records the TCP source writes to a shard's append log, and their decoding.
//!
//! Every log record is one of three kinds, told apart by its first byte. All integers
//! are little-endian.
//!
//! ```text
//! batch     [1][producer_len u8][producer][first_seq u64][written_ms i64][count u32] entry*
//!   event     [0][key_len u16][key][ts i64][value f64]
//!   rejected  [1][reason u8][message_len u16][message][line_len u32][line]
//! snapshot  [2][count u32] ([id_len u8][id][last_seq u64][last_ms i64])*
//! commit    [3][next u64]
//! ```
//!
//! A *batch* holds the lines one connection read in one go, already decoded with the
//! pipeline's decoder: entry `i` has sequence number `first_seq + i` (an anonymous
//! connection has an empty producer). A *snapshot* is the table of producers whose
//! batches this log held, written before older segments are truncated so that
//! deduplication survives truncation. A *commit* marker records that a checkpoint
//! covering everything before `next` completed: where emission starts again when the
//! engine restarts without restoring a checkpoint.
//!
//! The log's frames already carry a checksum, so a record that does not decode here is a
//! bug or a foreign file, never a torn write; decoding checks every bound anyway and
//! reports [`RecordError`] instead of trusting the bytes.

use weir_engine::InvalidReason;
use weir_storage::LogOffset;

const KIND_BATCH: u8 = 1;
const KIND_SNAPSHOT: u8 = 2;
const KIND_COMMIT: u8 = 3;
const ENTRY_EVENT: u8 = 0;
const ENTRY_REJECTED: u8 = 1;

/// Bytes of a batch header before the producer id and after it.
const BATCH_FIXED_BYTES: usize = 1 + 1 + 8 + 8 + 4;

/// A record that is not one the TCP source writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("log record is not a TCP-source record ({what} at byte {at})")]
pub struct RecordError {
    /// What was wrong.
    pub what: &'static str,
    /// Where in the payload.
    pub at: usize,
}

/// One producer's last sequence number in a log, and when it last wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Mark {
    /// The highest sequence number of the producer in the log.
    pub seq: u64,
    /// Wall-clock ms of its last batch.
    pub ms: i64,
}

impl Mark {
    /// Keeps the later of two marks.
    pub fn merge(&mut self, other: Mark) {
        self.seq = self.seq.max(other.seq);
        self.ms = self.ms.max(other.ms);
    }
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Record<'a> {
    /// Lines of one connection.
    Batch(Batch<'a>),
    /// The producer table.
    Snapshot(Vec<(&'a str, Mark)>),
    /// A completed checkpoint covers everything before this offset.
    Commit(LogOffset),
}

/// The lines of one connection read in one go.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Batch<'a> {
    /// The producer id, empty for an anonymous connection.
    pub producer: &'a str,
    /// Sequence number of the first entry.
    pub first_seq: u64,
    /// Wall-clock ms when it was written.
    pub written_ms: i64,
    /// Number of entries.
    pub count: u32,
    entries: &'a [u8],
}

impl Batch<'_> {
    /// Sequence number of the last entry.
    pub fn last_seq(&self) -> u64 {
        // A corrupt (or hostile) log may hold any first_seq: saturate, never wrap.
        self.first_seq
            .saturating_add(u64::from(self.count.saturating_sub(1)))
    }

    /// The entries, in order.
    pub fn entries(&self) -> Entries<'_> {
        Entries {
            cursor: Cursor {
                bytes: self.entries,
                at: 0,
            },
            left: self.count,
        }
    }
}

/// One line of a batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Entry<'a> {
    /// A decoded event.
    Event {
        /// Key text.
        key: &'a str,
        /// Event time, ms.
        ts: i64,
        /// Value.
        value: f64,
    },
    /// A line that is not an event, kept for the dead-letter file.
    Rejected {
        /// Why.
        reason: InvalidReason,
        /// The sentence for the dead-letter file.
        message: &'a str,
        /// The line (its head, if it was long).
        line: &'a [u8],
    },
}

/// Iterator over the entries of a batch.
#[derive(Debug)]
pub(crate) struct Entries<'a> {
    cursor: Cursor<'a>,
    left: u32,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let entry = self.cursor.entry();
        if entry.is_err() {
            self.left = 0;
        }
        Some(entry)
    }
}

/// Bounds-checked reading of a payload.
#[derive(Debug)]
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RecordError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(RecordError { what, at: self.at })?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], RecordError> {
        let at = self.at;
        self.take(N, what)?
            .try_into()
            .map_err(|_| RecordError { what, at })
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, RecordError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, RecordError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, RecordError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, RecordError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn i64(&mut self, what: &'static str) -> Result<i64, RecordError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    fn str(&mut self, n: usize, what: &'static str) -> Result<&'a str, RecordError> {
        let at = self.at;
        std::str::from_utf8(self.take(n, what)?).map_err(|_| RecordError { what, at })
    }

    fn entry(&mut self) -> Result<Entry<'a>, RecordError> {
        match self.u8("entry tag")? {
            ENTRY_EVENT => {
                let len = self.u16("key length")?;
                let key = self.str(usize::from(len), "key")?;
                let ts = self.i64("time")?;
                let value = f64::from_le_bytes(self.array("value")?);
                Ok(Entry::Event { key, ts, value })
            }
            ENTRY_REJECTED => {
                let at = self.at;
                let code = self.u8("reason")?;
                let reason = *InvalidReason::ALL
                    .get(usize::from(code))
                    .ok_or(RecordError { what: "reason", at })?;
                let len = self.u16("message length")?;
                let message = self.str(usize::from(len), "message")?;
                let len = self.u32("line length")?;
                let line = self.take(len as usize, "line")?;
                Ok(Entry::Rejected {
                    reason,
                    message,
                    line,
                })
            }
            _ => Err(RecordError {
                what: "entry tag",
                at: self.at - 1,
            }),
        }
    }
}

/// Decodes a record payload.
pub(crate) fn decode(payload: &[u8]) -> Result<Record<'_>, RecordError> {
    let mut c = Cursor {
        bytes: payload,
        at: 0,
    };
    match c.u8("kind")? {
        KIND_BATCH => {
            let len = c.u8("producer length")?;
            let producer = c.str(usize::from(len), "producer")?;
            let first_seq = c.u64("first sequence number")?;
            let written_ms = c.i64("write time")?;
            let count = c.u32("entry count")?;
            // Every entry takes at least 8 bytes: a count beyond that is a lie.
            if count as usize > payload.len() / 8 {
                return Err(RecordError {
                    what: "entry count",
                    at: c.at - 4,
                });
            }
            Ok(Record::Batch(Batch {
                producer,
                first_seq,
                written_ms,
                count,
                entries: &payload[c.at..],
            }))
        }
        KIND_SNAPSHOT => {
            let n = c.u32("producer count")?;
            if n as usize > payload.len() / 17 {
                return Err(RecordError {
                    what: "producer count",
                    at: 1,
                });
            }
            let mut out = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let len = c.u8("producer length")?;
                let id = c.str(usize::from(len), "producer")?;
                let seq = c.u64("sequence number")?;
                let ms = c.i64("time")?;
                out.push((id, Mark { seq, ms }));
            }
            Ok(Record::Snapshot(out))
        }
        KIND_COMMIT => Ok(Record::Commit(LogOffset::new(c.u64("offset")?))),
        _ => Err(RecordError {
            what: "kind",
            at: 0,
        }),
    }
}

/// Builds batch payloads. One writer per connection; its buffer is reused.
#[derive(Debug, Default)]
pub(crate) struct BatchWriter {
    buf: Vec<u8>,
    count: u32,
    first_seq: u64,
}

impl BatchWriter {
    /// Whether a batch has been started.
    pub fn is_open(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Bytes of the open batch.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Sequence number of the last entry of the open batch.
    pub fn last_seq(&self) -> u64 {
        self.first_seq + u64::from(self.count.saturating_sub(1))
    }

    /// Starts a batch (the producer id is at most 255 bytes: see the protocol).
    pub fn begin(&mut self, producer: &str, first_seq: u64, now_ms: i64) {
        let id = &producer.as_bytes()[..producer.len().min(255)];
        self.buf.clear();
        self.buf.push(KIND_BATCH);
        self.buf.push(id.len() as u8);
        self.buf.extend_from_slice(id);
        self.buf.extend_from_slice(&first_seq.to_le_bytes());
        self.buf.extend_from_slice(&now_ms.to_le_bytes());
        self.buf.extend_from_slice(&0u32.to_le_bytes());
        self.count = 0;
        self.first_seq = first_seq;
    }

    /// Bytes an event entry with this key takes.
    pub fn event_len(key: &str) -> usize {
        1 + 2 + key.len() + 16
    }

    /// Adds an event (the key is at most 65535 bytes; the decoder's limit is far lower).
    pub fn event(&mut self, key: &str, ts: i64, value: f64) {
        let key = &key.as_bytes()[..key.len().min(u16::MAX as usize)];
        self.buf.push(ENTRY_EVENT);
        self.buf
            .extend_from_slice(&(key.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(&ts.to_le_bytes());
        self.buf.extend_from_slice(&value.to_le_bytes());
        self.count += 1;
    }

    /// Adds a rejected line.
    pub fn rejected(&mut self, reason: InvalidReason, message: &str, line: &[u8]) {
        let code = InvalidReason::ALL
            .iter()
            .position(|&r| r == reason)
            .unwrap_or(0) as u8;
        let mut cut = message.len().min(u16::MAX as usize);
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        let message = &message.as_bytes()[..cut];
        let line = &line[..line.len().min(u32::MAX as usize)];
        self.buf.push(ENTRY_REJECTED);
        self.buf.push(code);
        self.buf
            .extend_from_slice(&(message.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(message);
        self.buf
            .extend_from_slice(&(line.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(line);
        self.count += 1;
    }

    /// Closes the batch and hands over its payload (the writer starts empty again).
    pub fn finish(&mut self, spare: Vec<u8>) -> Vec<u8> {
        let id_len = self.buf.get(1).copied().map_or(0, usize::from);
        let at = BATCH_FIXED_BYTES - 4 + id_len;
        if let Some(slot) = self.buf.get_mut(at..at + 4) {
            slot.copy_from_slice(&self.count.to_le_bytes());
        }
        self.count = 0;
        let mut spare = spare;
        spare.clear();
        std::mem::replace(&mut self.buf, spare)
    }
}

/// Encodes a producer-table snapshot.
pub(crate) fn snapshot<'a>(marks: impl Iterator<Item = (&'a str, Mark)>) -> Vec<u8> {
    let mut buf = vec![KIND_SNAPSHOT, 0, 0, 0, 0];
    let mut n: u32 = 0;
    for (id, mark) in marks {
        let id = &id.as_bytes()[..id.len().min(255)];
        buf.push(id.len() as u8);
        buf.extend_from_slice(id);
        buf.extend_from_slice(&mark.seq.to_le_bytes());
        buf.extend_from_slice(&mark.ms.to_le_bytes());
        n += 1;
    }
    buf[1..5].copy_from_slice(&n.to_le_bytes());
    buf
}

/// Encodes a commit marker.
pub(crate) fn commit(next: LogOffset) -> Vec<u8> {
    let mut buf = vec![KIND_COMMIT];
    buf.extend_from_slice(&next.get().to_le_bytes());
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_decodes_to_the_entries_written_with_their_sequence_numbers() {
        let mut w = BatchWriter::default();
        w.begin("p-1", 41, 1_700_000_000_000);
        w.event("u1", 1_700_000_000_001, 2.5);
        w.rejected(InvalidReason::NotJson, "not JSON: eof", b"{\"a");
        w.event("", -5, f64::MAX);
        assert_eq!(w.last_seq(), 43);
        let payload = w.finish(Vec::new());
        assert!(!w.is_open());
        let Ok(Record::Batch(b)) = decode(&payload) else {
            panic!("not a batch");
        };
        assert_eq!(
            (b.producer, b.first_seq, b.count, b.last_seq()),
            ("p-1", 41, 3, 43)
        );
        let entries: Vec<_> = b.entries().collect::<Result<_, _>>().unwrap_or_default();
        assert_eq!(
            entries,
            vec![
                Entry::Event {
                    key: "u1",
                    ts: 1_700_000_000_001,
                    value: 2.5
                },
                Entry::Rejected {
                    reason: InvalidReason::NotJson,
                    message: "not JSON: eof",
                    line: b"{\"a"
                },
                Entry::Event {
                    key: "",
                    ts: -5,
                    value: f64::MAX
                },
            ]
        );
    }

    #[test]
    fn snapshots_and_commit_markers_round_trip() {
        let marks = [
            ("a", Mark { seq: 7, ms: 9 }),
            ("bb", Mark { seq: 1, ms: -1 }),
        ];
        let payload = snapshot(marks.iter().copied());
        assert_eq!(decode(&payload), Ok(Record::Snapshot(marks.to_vec())));
        let payload = commit(LogOffset::new(4096));
        assert_eq!(decode(&payload), Ok(Record::Commit(LogOffset::new(4096))));
    }

    #[test]
    fn every_truncation_of_a_record_is_an_error_not_a_panic() {
        let mut w = BatchWriter::default();
        w.begin("p", 1, 0);
        w.event("key", 1, 1.0);
        w.rejected(InvalidReason::TooLong, "long", &[0xff; 40]);
        let payload = w.finish(Vec::new());
        for cut in 0..payload.len() {
            let short = &payload[..cut];
            let ok = match decode(short) {
                Err(_) => true,
                Ok(Record::Batch(b)) => b.entries().any(|e| e.is_err()),
                Ok(_) => false,
            };
            assert!(ok, "a record cut at {cut} bytes decoded cleanly");
        }
        assert!(decode(&[9, 1, 2]).is_err());
        assert!(decode(&[]).is_err());
    }
}
