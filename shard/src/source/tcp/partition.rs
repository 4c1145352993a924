//! One partition of the TCP source: one append log, read back in order.
//!
//! A shard *owns* the partition with its own index (connections it accepts append
//! there) and *adopts* the logs of partitions whose shard no longer exists after a
//! restart with fewer shards (partition `p` is read by shard `p mod shards`); an
//! adopted log is only read, never appended to by connections.
//!
//! # Emission
//!
//! Records are emitted in log order from [`PartitionLog::emit`]'s position, and only
//! once they are durable, so no event reaches an operator (and so a checkpoint, and so
//! a committed result) that a crash could still take out of the log. Records that were
//! in the log when it was opened (or that a seek went back to) are read from the log;
//! records appended since are also kept in memory (`tail`) until emitted, which saves
//! reading back what was just written. The tail is what bounds ingestion: connections
//! stop reading when it holds the backlog limit (see `state.rs`).
//!
//! # Event identity
//!
//! Entry `i` of the batch record at log offset `L` is the event with offset `L + i`.
//! A record takes more bytes of the log than it has entries, so these offsets grow
//! within the partition and never collide with the next record's.
//!
//! # Positions
//!
//! A poll gives at most its room of events ([`PartitionLog::emit`]), so it may stop
//! inside a record: the position ([`PartitionLog::position`]) is then the offset of the
//! next entry to emit, `L + i`, the same number as that event's identity. Seeking (and
//! opening at a commit marker) finds the record that holds a position and skips its
//! first `i` entries; truncation removes only segments wholly below a position, so the
//! record it falls in stays.
//!
//! # What "consumed" means
//!
//! A record is consumed once a completed checkpoint covers it: [`PartitionLog::commit`]
//! writes a commit marker with the checkpoint's position and, once that marker is
//! durable, truncates whole segments before the position. A restart that restores a
//! checkpoint seeks to the checkpoint's position; a restart without one starts at the
//! last commit marker (or the log's start), so every acknowledged record that no
//! completed checkpoint covers is emitted again: none is lost, and none a committed
//! checkpoint already counted is counted twice.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use weir_engine::{Event, EventTime, Invalid, Key, Offset, PartitionId};
use weir_storage::{Log, LogOffset, LogOptions};

use super::error::Error;
use super::record::{self, Entry, Mark, Record};
use crate::source::{SourceError, SourceOutput};

/// How long a producer that wrote nothing is remembered across truncations: 7 days
/// (Kafka's `transactional.id.expiration.ms` is of the same order).
pub(crate) const PRODUCER_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

/// A record appended by this process and not yet emitted.
#[derive(Debug)]
struct TailRecord {
    offset: LogOffset,
    next: LogOffset,
    payload: Vec<u8>,
}

/// One partition's log and read position.
#[derive(Debug)]
pub(crate) struct PartitionLog {
    /// The partition.
    pub id: PartitionId,
    /// Its log.
    pub log: Log,
    /// Whether connections of this shard append here.
    pub own: bool,
    /// The next record to emit.
    emit: LogOffset,
    /// Entries of the record at `emit` already emitted (a poll stopped inside it).
    skip: u64,
    /// Records at or after this offset are in `tail`; before it, in the log only.
    replay_until: LogOffset,
    tail: VecDeque<TailRecord>,
    tail_bytes: usize,
    /// The last sequence number of every producer with a batch in this log.
    pub producers: HashMap<String, Mark>,
    /// Truncate before `.0` once the log is durable past `.1` (a commit marker).
    pending_truncate: Option<(LogOffset, LogOffset)>,
    /// The position of the last commit marker written (none is written twice).
    last_commit: Option<LogOffset>,
    /// Held back by watermark alignment.
    pub paused: bool,
    /// An adopted log read to its end.
    pub finished: bool,
}

impl crate::source::partitions::PartitionSlot for PartitionLog {
    fn id(&self) -> PartitionId {
        self.id
    }

    fn position(&self) -> Offset {
        Offset(PartitionLog::position(self).get())
    }

    fn paused_mut(&mut self) -> &mut bool {
        &mut self.paused
    }
}

impl PartitionLog {
    /// Opens (creating or recovering) the log in `dir` and scans it: the producer
    /// table, and where emission starts (the last commit marker).
    pub fn open(
        dir: &Path,
        id: PartitionId,
        options: LogOptions,
        own: bool,
    ) -> Result<Self, Error> {
        let (log, report) = Log::open(dir, options).map_err(|source| Error::Log {
            dir: dir.to_path_buf(),
            source,
        })?;
        if report.records > 0 {
            tracing::info!(log = %dir.display(), records = report.records, "TCP source log recovered");
        }
        let mut producers: HashMap<String, Mark> = HashMap::new();
        let mut committed = None;
        for rec in log.read_from(log.start_offset()) {
            let rec = rec.map_err(|source| Error::Log {
                dir: dir.to_path_buf(),
                source,
            })?;
            match record::decode(rec.payload) {
                Ok(Record::Batch(b)) if !b.producer.is_empty() && b.count > 0 => {
                    let mark = Mark {
                        seq: b.last_seq(),
                        ms: b.written_ms,
                    };
                    producers
                        .entry(b.producer.to_owned())
                        .or_default()
                        .merge(mark);
                }
                Ok(Record::Batch(_)) => {}
                Ok(Record::Snapshot(marks)) => {
                    for (p, mark) in marks {
                        producers.entry(p.to_owned()).or_default().merge(mark);
                    }
                }
                Ok(Record::Commit(next)) => committed = Some(next),
                Err(e) => {
                    tracing::warn!(log = %dir.display(), offset = %rec.offset, error = %e, "skipping a record");
                }
            }
        }
        let start = log.start_offset();
        let end = log.end_offset();
        let (emit, skip) = match committed.filter(|&c| c >= start && c <= end) {
            Some(c) => locate(&log, c).map_err(|source| Error::Log {
                dir: dir.to_path_buf(),
                source,
            })?,
            None => (start, 0),
        };
        Ok(Self {
            id,
            own,
            emit,
            skip,
            replay_until: end,
            tail: VecDeque::new(),
            tail_bytes: 0,
            producers,
            pending_truncate: None,
            last_commit: committed,
            paused: false,
            finished: false,
            log,
        })
    }

    /// The position of the next entry to emit (see [Positions](self#positions)).
    pub fn position(&self) -> LogOffset {
        LogOffset::new(self.emit.get() + self.skip)
    }

    /// Payload bytes appended and not yet emitted.
    pub fn backlog_bytes(&self) -> usize {
        self.tail_bytes
    }

    /// Whether everything in the log has been emitted.
    pub fn drained(&self) -> bool {
        self.tail.is_empty() && self.emit >= self.log.end_offset()
    }

    /// Appends a batch record; returns its offset.
    pub fn append(&mut self, payload: Vec<u8>) -> weir_storage::Result<LogOffset> {
        let offset = self.log.append(&payload)?;
        let next = self.log.end_offset();
        self.tail_bytes += payload.len();
        self.tail.push_back(TailRecord {
            offset,
            next,
            payload,
        });
        Ok(offset)
    }

    /// Emits the entries of durable records from the position, at most `max` of them
    /// (stopping inside a record if need be); returns how many went out. Spent tail
    /// buffers go back to `pool`.
    pub fn emit(
        &mut self,
        max: usize,
        out: &mut SourceOutput,
        pool: &mut Vec<Vec<u8>>,
    ) -> Result<usize, SourceError> {
        let durable = self.log.durable_offset();
        let mut n = 0;
        if self.emit < self.replay_until {
            let mut reached_tail = true;
            for rec in self.log.read_from(self.emit) {
                let rec = rec.map_err(|e| SourceError::Read {
                    what: format!("tcp partition {}", self.id.0),
                    reason: e.to_string(),
                })?;
                if rec.offset >= self.replay_until {
                    break;
                }
                if rec.offset >= durable || n >= max {
                    reached_tail = false;
                    break;
                }
                let (given, done) =
                    emit_record(self.id, rec.offset, rec.payload, out, self.skip, max - n);
                n += given;
                if !done {
                    self.skip += given as u64;
                    reached_tail = false;
                    break;
                }
                self.emit = rec.next_offset();
                self.skip = 0;
            }
            if !reached_tail {
                return Ok(n);
            }
            // Nothing before the tail is left: what remains comes from memory.
            self.replay_until = self.emit;
        }
        while n < max {
            let Some(front) = self.tail.front() else {
                break;
            };
            if front.offset >= durable {
                break;
            }
            if front.offset >= self.emit {
                let skip = if front.offset == self.emit {
                    self.skip
                } else {
                    0
                };
                let (given, done) =
                    emit_record(self.id, front.offset, &front.payload, out, skip, max - n);
                n += given;
                if !done {
                    self.emit = front.offset;
                    self.skip = skip + given as u64;
                    break;
                }
                self.emit = front.next;
                self.skip = 0;
            }
            if let Some(done) = self.tail.pop_front() {
                self.tail_bytes -= done.payload.len();
                if pool.len() < 16 {
                    pool.push(done.payload);
                }
            }
        }
        Ok(n)
    }

    /// Moves the position to `to` (a position from a checkpoint: a record boundary, or
    /// an entry inside a record).
    ///
    /// A position past the log's end (records a checkpoint covered were lost: possible
    /// only with `fsync = "never"` and a power loss) resumes at the end; one before the
    /// log's start (a fallback to an older checkpoint after a newer one truncated the
    /// log) resumes at the start. Both are logged as errors: the engine goes on, but
    /// exactly-once does not hold for what is missing.
    pub fn seek(&mut self, to: LogOffset) -> Result<(), SourceError> {
        let (start, end) = (self.log.start_offset(), self.log.end_offset());
        let to = if to > end {
            tracing::error!(partition = self.id.0, position = %to, end = %end, "checkpoint position past the end of the log; resuming at its end");
            end
        } else if to < start {
            tracing::error!(partition = self.id.0, position = %to, start = %start, "checkpoint position before the start of the log; resuming at its start");
            start
        } else {
            to
        };
        let (at, skip) = locate(&self.log, to).map_err(|e| SourceError::Read {
            what: format!("tcp partition {} at {to}", self.id.0),
            reason: e.to_string(),
        })?;
        self.emit = at;
        self.skip = skip;
        while self.tail.front().is_some_and(|t| t.offset < at) {
            if let Some(t) = self.tail.pop_front() {
                self.tail_bytes -= t.payload.len();
            }
        }
        self.replay_until = self
            .tail
            .front()
            .map_or(self.log.end_offset(), |t| t.offset);
        self.finished = false;
        Ok(())
    }

    /// A checkpoint covering everything before `next` is complete: writes a commit
    /// marker and the producer table, and truncates before `next` once both are
    /// durable ([`PartitionLog::after_durable`]).
    pub fn commit(&mut self, next: LogOffset, now_ms: i64) -> weir_storage::Result<()> {
        if next < self.log.start_offset() || next > self.log.end_offset() {
            tracing::warn!(partition = self.id.0, offset = %next, "commit of a position outside the log ignored");
            return Ok(());
        }
        if self.last_commit == Some(next) {
            return Ok(());
        }
        self.last_commit = Some(next);
        self.producers
            .retain(|_, m| m.ms >= now_ms.saturating_sub(PRODUCER_RETENTION_MS));
        self.log.append(&record::commit(next))?;
        let table = record::snapshot(self.producers.iter().map(|(p, m)| (p.as_str(), *m)));
        let at = self.log.append(&table)?;
        self.pending_truncate = Some((next, at));
        Ok(())
    }

    /// Runs a pending truncation whose commit marker is durable.
    pub fn after_durable(&mut self) -> weir_storage::Result<()> {
        if let Some((before, marker)) = self.pending_truncate
            && self.log.is_durable(marker)
        {
            self.pending_truncate = None;
            let removed = self.log.truncate_before_in_background(before)?;
            if removed > 0 {
                tracing::debug!(partition = self.id.0, removed, "truncated TCP source log");
            }
        }
        Ok(())
    }
}

/// The record holding position `to` and how many of its entries lie before it: `to`
/// itself and 0 at a record boundary (or the log's end), else the record found by
/// reading the log from its start.
fn locate(log: &Log, to: LogOffset) -> weir_storage::Result<(LogOffset, u64)> {
    if to >= log.end_offset() {
        return Ok((to, 0));
    }
    if let Some(rec) = log.read_from(to).next()
        && let Ok(rec) = rec
        && rec.offset == to
    {
        return Ok((to, 0));
    }
    for rec in log.read_from(log.start_offset()) {
        let rec = rec?;
        if rec.offset <= to && to < rec.next_offset() {
            return Ok((rec.offset, to.get() - rec.offset.get()));
        }
        if rec.offset > to {
            break;
        }
    }
    // Not inside any record: resume at it as it is (the log's own reads will say).
    Ok((to, 0))
}

/// Emits the entries of one record from entry `skip` on, at most `room` of them;
/// returns how many, and whether the record is done (nothing of it left to emit).
fn emit_record(
    partition: PartitionId,
    offset: LogOffset,
    payload: &[u8],
    out: &mut SourceOutput,
    skip: u64,
    room: usize,
) -> (usize, bool) {
    let batch = match record::decode(payload) {
        Ok(Record::Batch(b)) => b,
        Ok(_) => return (0, true),
        Err(e) => {
            tracing::warn!(partition = partition.0, offset = %offset, error = %e, "skipping a record");
            return (0, true);
        }
    };
    let mut n = 0;
    for (i, entry) in batch.entries().enumerate().skip(skip as usize) {
        if n >= room {
            return (n, false);
        }
        let at = Offset(offset.get() + i as u64);
        match entry {
            Ok(Entry::Event { key, ts, value }) => {
                let id = out.id(partition, at);
                out.event(Event::new(Key::new(key), EventTime(ts), value, id));
            }
            Ok(Entry::Rejected {
                reason,
                message,
                line,
            }) => out.bad(
                partition,
                at,
                line,
                Invalid {
                    reason,
                    message: message.to_owned(),
                },
            ),
            Err(e) => {
                tracing::warn!(partition = partition.0, offset = %offset, error = %e, "skipping the rest of a record");
                break;
            }
        }
        n += 1;
    }
    (n, true)
}

#[cfg(test)]
mod tests {
    use weir_config::{EventFields, TimeField};
    use weir_engine::{EventDecoder, SourceId};
    use weir_storage::FsyncPolicy;

    use super::*;
    use crate::source::tcp::record::BatchWriter;

    fn output() -> SourceOutput {
        let fields = EventFields {
            key: "key".into(),
            time: TimeField::Field("ts".into()),
            value: "value".into(),
        };
        SourceOutput::new(EventDecoder::new(&fields, true), SourceId(0))
    }

    fn batch(producer: &str, first_seq: u64, keys: &[&str]) -> Vec<u8> {
        let mut w = BatchWriter::default();
        w.begin(producer, first_seq, 1);
        for k in keys {
            w.event(k, 100, 1.0);
        }
        w.finish(Vec::new())
    }

    fn keys(out: &SourceOutput) -> Vec<String> {
        out.events
            .iter()
            .map(|e| e.key.as_str().to_owned())
            .collect()
    }

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn records_are_emitted_once_durable_in_order_and_a_seek_replays_from_a_position() -> TestResult
    {
        let dir = tempfile::tempdir()?;
        let options = LogOptions::new(1 << 20, FsyncPolicy::Group);
        let mut p = PartitionLog::open(dir.path(), PartitionId(0), options, true)?;
        let mut pool = Vec::new();
        p.append(batch("p", 1, &["a", "b"]))?;
        let mut out = output();
        assert_eq!(p.emit(100, &mut out, &mut pool)?, 0, "nothing durable yet");
        p.log.flush_now()?;
        p.append(batch("p", 3, &["c"]))?;
        assert_eq!(p.emit(100, &mut out, &mut pool)?, 2);
        let after_first = p.position();
        p.log.flush_now()?;
        assert_eq!(p.emit(100, &mut out, &mut pool)?, 1);
        assert_eq!(keys(&out), ["a", "b", "c"]);
        let offsets: Vec<u64> = out.events.iter().map(|e| e.id.offset.0).collect();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
        assert!(p.drained());

        let mut again = output();
        p.seek(after_first)?;
        assert_eq!(p.emit(100, &mut again, &mut pool)?, 1);
        assert_eq!(keys(&again), ["c"]);
        Ok(())
    }

    #[test]
    fn a_poll_stops_inside_a_record_and_its_position_resumes_there() -> TestResult {
        let dir = tempfile::tempdir()?;
        let options = LogOptions::new(1 << 20, FsyncPolicy::Group);
        let mut pool = Vec::new();
        let (mid, committed) = {
            let mut p = PartitionLog::open(dir.path(), PartitionId(0), options, true)?;
            p.append(batch("p", 1, &["a", "b", "c", "d", "e"]))?;
            p.append(batch("p", 6, &["f", "g"]))?;
            p.log.flush_now()?;
            let mut out = output();
            assert_eq!(
                p.emit(2, &mut out, &mut pool)?,
                2,
                "at most max, inside a record"
            );
            let mid = p.position();
            assert_eq!(p.emit(2, &mut out, &mut pool)?, 2);
            let committed = p.position();
            assert_eq!(
                p.emit(2, &mut out, &mut pool)?,
                2,
                "the rest, and the next one"
            );
            assert_eq!(p.emit(10, &mut out, &mut pool)?, 1);
            assert_eq!(keys(&out), ["a", "b", "c", "d", "e", "f", "g"]);
            let offsets: Vec<u64> = out.events.iter().map(|e| e.id.offset.0).collect();
            assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
            assert_eq!(
                offsets[2],
                mid.get(),
                "a position is the next entry's identity"
            );
            // A checkpoint covering up to inside the first record completes.
            p.commit(committed, 0)?;
            p.log.flush_now()?;
            p.after_durable()?;
            (mid, committed)
        };
        // Reopened at the commit marker: the first four entries are not replayed.
        let mut p = PartitionLog::open(dir.path(), PartitionId(0), options, true)?;
        assert_eq!(p.position(), committed);
        let mut out = output();
        p.emit(100, &mut out, &mut pool)?;
        assert_eq!(keys(&out), ["e", "f", "g"]);
        // And a checkpoint's position inside a record is sought exactly.
        p.seek(mid)?;
        let mut again = output();
        p.emit(100, &mut again, &mut pool)?;
        assert_eq!(keys(&again), ["c", "d", "e", "f", "g"]);
        Ok(())
    }

    #[test]
    fn a_reopened_log_resumes_at_the_last_commit_and_remembers_its_producers() -> TestResult {
        let dir = tempfile::tempdir()?;
        let options = LogOptions::new(1 << 20, FsyncPolicy::Group);
        let committed = {
            let mut p = PartitionLog::open(dir.path(), PartitionId(3), options, true)?;
            let mut pool = Vec::new();
            p.append(batch("p", 1, &["a"]))?;
            p.append(batch("q", 7, &["b", "c"]))?;
            p.log.flush_now()?;
            let mut out = output();
            p.emit(1, &mut out, &mut pool)?;
            let at = p.position();
            p.commit(at, 0)?;
            p.log.flush_now()?;
            p.after_durable()?;
            p.append(batch("p", 2, &["d"]))?;
            p.log.flush_now()?;
            at
        };
        let mut p = PartitionLog::open(dir.path(), PartitionId(3), options, true)?;
        assert_eq!(p.position(), committed);
        assert_eq!(p.producers.get("p").map(|m| m.seq), Some(2));
        assert_eq!(p.producers.get("q").map(|m| m.seq), Some(8));
        let mut out = output();
        p.emit(100, &mut out, &mut Vec::new())?;
        assert_eq!(
            keys(&out),
            ["b", "c", "d"],
            "what the commit covered is not replayed"
        );
        Ok(())
    }

    #[test]
    fn producers_whose_batches_were_truncated_are_still_known_after_a_reopen() -> TestResult {
        let dir = tempfile::tempdir()?;
        let mut options = LogOptions::new(4096, FsyncPolicy::Group);
        options.prepare_ahead = false;
        {
            let mut p = PartitionLog::open(dir.path(), PartitionId(0), options, true)?;
            let long = "k".repeat(900);
            for seq in 1..=12 {
                p.append(batch("old", seq, &[long.as_str()]))?;
            }
            p.log.flush_now()?;
            let mut out = output();
            p.emit(100, &mut out, &mut Vec::new())?;
            assert!(p.log.segment_count() > 2);
            let at = p.position();
            p.commit(at, 0)?;
            p.log.flush_now()?;
            p.after_durable()?;
            assert_eq!(
                p.log.segment_count(),
                1,
                "everything before the commit is gone"
            );
        }
        let p = PartitionLog::open(dir.path(), PartitionId(0), options, true)?;
        assert_eq!(p.producers.get("old").map(|m| m.seq), Some(12));
        Ok(())
    }

    #[test]
    fn a_seek_outside_the_log_resumes_at_its_nearest_end_instead_of_failing() -> TestResult {
        let dir = tempfile::tempdir()?;
        let options = LogOptions::new(1 << 20, FsyncPolicy::Never);
        let mut p = PartitionLog::open(dir.path(), PartitionId(0), options, true)?;
        p.append(batch("", 1, &["a"]))?;
        let end = p.log.end_offset();
        p.seek(LogOffset::new(end.get() + 4096))?;
        assert_eq!(p.position(), end);
        Ok(())
    }
}
