//! Sources: where a pipeline's events come from.
//!
//! A source is split into partitions (a file, a generator stream, later a Kafka
//! partition); each partition is read by exactly one shard, and within a partition
//! offsets grow. The runtime creates one [`Source`] per (pipeline, shard) holding the
//! partitions that shard owns, and polls it whenever the shard is not backpressured.
//!
//! The interface is the one a Kafka consumer needs: partitions, positions (offsets) to
//! store in a checkpoint, [`Source::seek`] to resume from them, and
//! [`Source::commit`] to tell the system of record what a completed checkpoint covers.
//! See docs/EXTENDING.md for a custom source written against it.

pub(crate) mod file;
pub use file::list_files as file_files;
mod generator;
pub mod partitions;
pub mod tcp;
pub use tcp::TcpSource;

use std::future::Future;
use std::pin::Pin;

pub use file::FileSource;
pub use generator::GeneratorSource;

use weir_engine::{Event, EventDecoder, EventId, Invalid, Offset, PartitionId, SourceId};

/// A boxed future that stays on the shard's thread.
pub type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// A source failure. The runtime logs it and retries the poll later; a source that can
/// never work again should mark its partitions finished instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// Reading the input failed (a file, a log).
    #[error("{what}: {reason}")]
    Read {
        /// What was read (`data/in/a.jsonl`, `tcp partition 1`).
        what: String,
        /// What the OS or the log said.
        reason: String,
    },
    /// A partition this source does not read was asked for (a seek on restore).
    #[error("no {source_kind} partition {partition}")]
    NoSuchPartition {
        /// The kind of source (`file`, `generator`, `tcp`).
        source_kind: &'static str,
        /// The partition.
        partition: u32,
    },
    /// The source cannot listen on its address.
    #[error("cannot listen on {bind}: {reason}")]
    Listen {
        /// The address.
        bind: String,
        /// What the OS said.
        reason: String,
    },
    /// The source can take no more input (its log failed), or anything else.
    #[error("{reason}")]
    Failed {
        /// A sentence for humans.
        reason: String,
    },
}

impl SourceError {
    /// A source-specific failure described by a sentence.
    pub fn failed(reason: impl std::fmt::Display) -> Self {
        SourceError::Failed {
            reason: reason.to_string(),
        }
    }
}

/// A source: some partitions of one pipeline's input, read by one shard.
pub trait Source {
    /// A one-line description (`file data/in/a.jsonl`, `generator seed=42`).
    fn describe(&self) -> String;

    /// Called once on the shard's executor after every shard has built its sources
    /// and before the first [`Source::poll`]: a source that takes connections binds
    /// its listener here, so that no shard accepts while another is still opening
    /// (clients that connect early would all land on the shards ready first). The
    /// default does nothing.
    fn start(&mut self) -> Result<(), SourceError> {
        Ok(())
    }

    /// The partitions this instance reads.
    fn partitions(&self) -> Vec<PartitionId>;

    /// Reads up to `max` records into `out`, and from each partition at most
    /// [`SourceOutput::room`] records, reporting partitions that had nothing
    /// ([`SourceOutput::empty`]) or ended ([`SourceOutput::finished`]).
    ///
    /// The room of a partition ends at its next cut point (every `batch_size` records
    /// from the partition's start): the runtime advances a partition's watermark only
    /// at cut points, so a source that stops there makes lateness a function of its
    /// records alone, the same after any crash and restart (docs/SEMANTICS.md). A record
    /// is whatever the source adds for one offset: an event or a bad record.
    fn poll<'a>(
        &'a mut self,
        max: usize,
        out: &'a mut SourceOutput,
    ) -> LocalFuture<'a, Result<(), SourceError>>;

    /// The position of each partition: the offset of the next record to read.
    fn positions(&self) -> Vec<(PartitionId, Offset)>;

    /// Moves a partition to a position (restoring a checkpoint).
    fn seek(&mut self, partition: PartitionId, next: Offset) -> Result<(), SourceError>;

    /// Stops (`true`) or resumes reading one partition, for watermark alignment: a
    /// paused partition is skipped by [`Source::poll`] and reported neither empty nor
    /// finished. The default reads every partition always.
    fn set_paused(&mut self, _partition: PartitionId, _paused: bool) {}

    /// Whether the source runs tasks of its own on the shard's executor (a TCP source's
    /// connections) that must go on while the shard loop waits. A shard whose sources
    /// run none sleeps its thread outright when long idle, which costs less than
    /// parking the executor. The default says yes.
    fn runs_tasks(&self) -> bool {
        true
    }

    /// The pipeline runs again after a pause through the admin API: a source paced on
    /// the wall clock goes on at its rate from here rather than catching up in a burst.
    fn resumed(&mut self) {}

    /// A checkpoint covering these positions is complete (a no-op for replayable files).
    fn commit(&mut self, _positions: &[(PartitionId, Offset)]) {}

    /// Records between a partition's position and its end as the system of record last
    /// said (Kafka's lag), where the source knows it.
    fn lag(&self, _partition: PartitionId) -> Option<u64> {
        None
    }

    /// A Kafka source assigned by its consumer group: what the runtime needs of it
    /// besides reading (weir's own sources only).
    #[doc(hidden)]
    fn as_group_member(&mut self) -> Option<&mut crate::kafka::KafkaSource> {
        None
    }
}

/// Where a source puts what it read. Lines are decoded here, with the pipeline's decoder;
/// bad lines are kept with their reason for the dead-letter file.
#[derive(Debug)]
pub struct SourceOutput {
    decoder: EventDecoder,
    source: SourceId,
    /// Processing time of this poll, ms since the epoch.
    pub now_ms: i64,
    /// Decoded events, in the order read.
    pub events: Vec<Event>,
    /// Bad lines: identity, the line, and why.
    pub invalid: Vec<(EventId, Vec<u8>, Invalid)>,
    /// Partitions polled with nothing to give.
    pub empty: Vec<PartitionId>,
    /// Partitions that ended.
    pub finished: Vec<PartitionId>,
    /// Partitions the source took on since the last poll (a Kafka topic grew): the
    /// runtime starts tracking their watermarks.
    pub added: Vec<PartitionId>,
    /// The consumer group moved partitions: every partition the source now holds (each
    /// waits, unread, for [`crate::kafka::KafkaSource::resume_assigned`]). What this
    /// poll gave is void.
    pub rebalanced: Option<Vec<PartitionId>>,
    /// Records each partition may still give in this poll (set by the runtime before
    /// it polls); partitions not listed have no limit but `max`.
    rooms: Vec<(PartitionId, usize)>,
}

impl SourceOutput {
    /// An output decoding with `decoder` for source `source`.
    pub fn new(decoder: EventDecoder, source: SourceId) -> Self {
        Self {
            decoder,
            source,
            now_ms: 0,
            events: Vec::new(),
            invalid: Vec::new(),
            empty: Vec::new(),
            finished: Vec::new(),
            added: Vec::new(),
            rebalanced: None,
            rooms: Vec::new(),
        }
    }

    /// How many records partition `partition` may still give in this poll: up to its
    /// next cut point (see [`Source::poll`]).
    pub fn room(&self, partition: PartitionId) -> usize {
        self.rooms
            .iter()
            .find(|(p, _)| *p == partition)
            .map_or(usize::MAX, |&(_, room)| room)
    }

    /// Sets the room of each partition for the next poll (the runtime's job).
    pub fn set_rooms(&mut self, rooms: impl IntoIterator<Item = (PartitionId, usize)>) {
        self.rooms.clear();
        self.rooms.extend(rooms);
    }

    /// The identity of a record of this source.
    pub fn id(&self, partition: PartitionId, offset: Offset) -> EventId {
        EventId {
            source: self.source,
            partition,
            offset,
        }
    }

    /// Adds a ready event.
    #[inline]
    pub fn event(&mut self, event: Event) {
        self.events.push(event);
    }

    /// Decodes and adds a JSON line.
    pub fn json_line(&mut self, partition: PartitionId, offset: Offset, line: &[u8]) {
        let id = self.id(partition, offset);
        match self.decoder.decode_json(line, id, self.now_ms) {
            Ok(e) => self.events.push(e),
            Err(why) => self.invalid.push((id, line.to_vec(), why)),
        }
    }

    /// Decodes and adds a JSON line whose event time is `time_ms` (a Kafka record's
    /// timestamp), for a pipeline whose decoder reads no time field.
    pub fn json_line_at(
        &mut self,
        partition: PartitionId,
        offset: Offset,
        line: &[u8],
        time_ms: i64,
    ) {
        let id = self.id(partition, offset);
        match self.decoder.decode_json(line, id, time_ms) {
            Ok(e) => self.events.push(e),
            Err(why) => self.invalid.push((id, line.to_vec(), why)),
        }
    }

    /// Decodes and adds a record of named text fields (a CSV row).
    pub fn fields<'f>(
        &mut self,
        partition: PartitionId,
        offset: Offset,
        line: &[u8],
        get: impl Fn(&str) -> Option<&'f str>,
    ) {
        let id = self.id(partition, offset);
        match self.decoder.decode_fields(get, id, self.now_ms) {
            Ok(e) => self.events.push(e),
            Err(why) => self.invalid.push((id, line.to_vec(), why)),
        }
    }

    /// Reports a bad record found by the source itself (an over-long line, bad bytes).
    pub fn bad(&mut self, partition: PartitionId, offset: Offset, line: &[u8], why: Invalid) {
        let id = self.id(partition, offset);
        self.invalid.push((id, line.to_vec(), why));
    }

    /// A partition was polled and had nothing.
    pub fn empty(&mut self, partition: PartitionId) {
        self.empty.push(partition);
    }

    /// A partition has no more records.
    pub fn finished(&mut self, partition: PartitionId) {
        self.finished.push(partition);
    }

    /// Clears everything for the next poll.
    pub fn clear(&mut self) {
        self.events.clear();
        self.invalid.clear();
        self.empty.clear();
        self.finished.clear();
        self.added.clear();
        self.rebalanced = None;
    }
}
