//! The Kafka source: one consumer per shard, assigned (not subscribed) the partitions
//! this shard owns, at the offsets weir's checkpoint holds.
//!
//! A Kafka partition is a weir partition with the same number; its position is the
//! offset of the next record to read. Records come from the consumer's one queue in
//! whatever order the brokers' fetches give; a record of a partition that has no room
//! left in this poll (it reached a cut point) or is paused waits in a small per-
//! partition buffer, and a partition whose buffer fills is paused in the consumer too,
//! so memory stays bounded. A partition is "read to its end" once librdkafka reports
//! end-of-partition and no record arrived since: that is what makes a silent partition
//! go idle, and what finishes a bounded source.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset as KafkaOffset, TopicPartitionList};
use weir_config::{KafkaEventTime, KafkaSource as Spec};
use weir_engine::{Invalid, InvalidReason, Offset, PartitionId};

use super::{Logged, TopicWatch, client_config, describe};
use crate::source::partitions::{self, PartitionSlot};
use crate::source::{LocalFuture, Source, SourceError, SourceOutput};

/// Records a partition may hold back before the consumer is told to pause it.
const HELD_LIMIT: usize = 4096;

/// The consumer's context: logs, and the partitions' last stable offsets from
/// librdkafka's statistics (for lag), which arrive on the polling thread.
#[derive(Debug, Default)]
pub struct Stats {
    ends: Mutex<HashMap<i32, i64>>,
    /// After a rebalance of a group member: every partition it now holds.
    rebalanced: Mutex<Option<Vec<i32>>>,
}

impl ClientContext for Stats {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        Logged.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        Logged.error(error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        let Ok(mut ends) = self.ends.lock() else {
            return;
        };
        for topic in statistics.topics.values() {
            for (p, s) in &topic.partitions {
                // read_committed reads up to the last stable offset.
                let end = if s.ls_offset >= 0 {
                    s.ls_offset
                } else {
                    s.hi_offset
                };
                if *p >= 0 && end >= 0 {
                    ends.insert(*p, end);
                }
            }
        }
    }
}

impl ConsumerContext for Stats {
    fn post_rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        rebalance: &rdkafka::consumer::Rebalance<'_>,
    ) {
        if matches!(rebalance, rdkafka::consumer::Rebalance::Error(_)) {
            return;
        }
        let assignment = match consumer.assignment() {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %describe(&e), "reading the kafka assignment failed");
                TopicPartitionList::new()
            }
        };
        // Nothing is read until the partitions' state is restored from Kafka.
        if assignment.count() > 0
            && let Err(e) = consumer.pause(&assignment)
        {
            tracing::warn!(error = %describe(&e), "pausing newly assigned kafka partitions failed");
        }
        let mut held: Vec<i32> = assignment
            .elements()
            .iter()
            .map(|e| e.partition())
            .collect();
        held.sort_unstable();
        held.dedup();
        tracing::info!(kind = ?std::mem::discriminant(rebalance), partitions = ?held, "kafka group rebalanced");
        if let Ok(mut r) = self.rebalanced.lock() {
            *r = Some(held);
        }
    }

    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, _: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::debug!(error = %e, "committing offsets to the kafka group failed");
        }
    }
}

#[derive(Debug)]
struct Held {
    offset: u64,
    timestamp: Option<i64>,
    value: Option<Vec<u8>>,
}

#[derive(Debug)]
struct Part {
    id: PartitionId,
    /// The offset of the next record to read.
    next: u64,
    /// Held back by watermark alignment.
    paused: bool,
    /// Paused in the consumer (alignment, or a full buffer).
    consumer_paused: bool,
    /// End of partition reported and no record fetched since (a partition is read to
    /// its end when this holds and nothing is held back).
    eof: bool,
    finished: bool,
    /// Assigned by the group, waiting for its state to be restored: not read.
    restoring: bool,
    held: VecDeque<Held>,
}

impl PartitionSlot for Part {
    fn id(&self) -> PartitionId {
        self.id
    }
    fn position(&self) -> Offset {
        Offset(self.next)
    }
    fn paused_mut(&mut self) -> &mut bool {
        &mut self.paused
    }
}

/// The partitions of a Kafka topic that one shard reads.
pub struct KafkaSource {
    consumer: BaseConsumer<Stats>,
    topic: String,
    watch: Arc<TopicWatch>,
    shard: usize,
    nr_shards: usize,
    bounded: bool,
    /// Assigned by the consumer group (`assignment = "group"`).
    group: bool,
    record_time: bool,
    /// Partitions of the topic seen so far.
    known: u32,
    parts: Vec<Part>,
    /// The consumer's assignment must be redone (after a seek or a new partition).
    reassign: bool,
    started: bool,
    describe: String,
    /// When a consumer error was last logged (they repeat while a broker is away).
    error_logged: Option<std::time::Instant>,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("topic", &self.topic)
            .field("partitions", &self.parts.len())
            .finish()
    }
}

impl KafkaSource {
    /// The source of shard `shard` of `nr_shards`, over the partitions the watch knows.
    pub fn open(
        spec: &Spec,
        watch: Arc<TopicWatch>,
        shard: usize,
        nr_shards: usize,
    ) -> Result<Self, SourceError> {
        let spec = spec.clone();
        super::unpinned(move || Self::open_here(&spec, watch, shard, nr_shards))
            .map_err(SourceError::failed)?
    }

    fn open_here(
        spec: &Spec,
        watch: Arc<TopicWatch>,
        shard: usize,
        nr_shards: usize,
    ) -> Result<Self, SourceError> {
        // librdkafka postpones a partition's next fetch by `fetch.queue.backoff.ms` (1 s)
        // once its prefetch queue is full: a shard that drains it faster would then sit
        // idle most of that second.
        let defaults = [
            ("statistics.interval.ms", "1000"),
            ("fetch.wait.max.ms", "100"),
            ("fetch.queue.backoff.ms", "5"),
        ];
        let consumer: BaseConsumer<Stats> =
            client_config(&spec.bootstrap, &spec.properties, &defaults)
                .set("group.id", &spec.group)
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("enable.partition.eof", "true")
                .set("isolation.level", "read_committed")
                .set("auto.offset.reset", "earliest")
                .create_with_context(Stats::default())
                .map_err(|e| SourceError::failed(format!("kafka consumer: {}", describe(&e))))?;
        let mut source = Self {
            consumer,
            topic: spec.topic.clone(),
            watch,
            shard,
            nr_shards,
            bounded: spec.bounded,
            group: spec.assignment == weir_config::KafkaAssignment::Group,
            record_time: spec.event_time == KafkaEventTime::Record,
            known: 0,
            parts: Vec::new(),
            reassign: spec.assignment != weir_config::KafkaAssignment::Group,
            started: false,
            error_logged: None,
            describe: format!(
                "kafka {} at {} (group {})",
                spec.topic, spec.bootstrap, spec.group
            ),
        };
        source.discover();
        Ok(source)
    }

    /// Takes on the partitions of the topic that appeared since the last look and
    /// belong to this shard; returns them.
    fn discover(&mut self) -> Vec<PartitionId> {
        if self.group {
            // The group assigns partitions, new ones too.
            return Vec::new();
        }
        let now = self.watch.partitions();
        let mut added = Vec::new();
        for p in self.known..now {
            if p as usize % self.nr_shards == self.shard {
                let id = PartitionId(p);
                self.parts.push(Part {
                    id,
                    next: self.watch.start_of(p),
                    paused: false,
                    consumer_paused: false,
                    eof: false,
                    finished: false,
                    restoring: false,
                    held: VecDeque::new(),
                });
                added.push(id);
            }
        }
        if !added.is_empty() {
            self.reassign = true;
        }
        self.known = now;
        added
    }

    fn list(&self, parts: impl Iterator<Item = PartitionId>) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for p in parts {
            tpl.add_partition(&self.topic, p.0 as i32);
        }
        tpl
    }

    /// (Re)assigns every unfinished partition at its position.
    fn assign(&mut self) -> Result<(), SourceError> {
        let mut tpl = TopicPartitionList::new();
        for p in self.parts.iter().filter(|p| !p.finished) {
            tpl.add_partition_offset(
                &self.topic,
                p.id.0 as i32,
                KafkaOffset::Offset(p.next as i64),
            )
            .map_err(|e| SourceError::failed(describe(&e)))?;
        }
        self.consumer.assign(&tpl).map_err(|e| {
            SourceError::failed(format!("assigning {}: {}", self.topic, describe(&e)))
        })?;
        // A new assignment fetches afresh: what was held would come again.
        for p in &mut self.parts {
            p.held.clear();
            p.eof = false;
            p.consumer_paused = false;
        }
        let paused: Vec<PartitionId> = self
            .parts
            .iter()
            .filter(|p| p.paused && !p.finished)
            .map(|p| p.id)
            .collect();
        if !paused.is_empty() {
            let _ = self.consumer.pause(&self.list(paused.iter().copied()));
            for p in self.parts.iter_mut().filter(|p| p.paused) {
                p.consumer_paused = true;
            }
        }
        self.reassign = false;
        Ok(())
    }

    fn set_consumer_paused(&mut self, index: usize, paused: bool) {
        let part = &self.parts[index];
        if part.consumer_paused == paused || part.finished {
            return;
        }
        let tpl = self.list(std::iter::once(part.id));
        let result = if paused {
            self.consumer.pause(&tpl)
        } else {
            self.consumer.resume(&tpl)
        };
        match result {
            Ok(()) => self.parts[index].consumer_paused = paused,
            Err(e) => tracing::debug!(error = %e, "pausing a kafka partition failed"),
        }
    }

    fn emit(out: &mut SourceOutput, part: &mut Part, record_time: bool, h: &Held) {
        part.next = h.offset + 1;
        let offset = Offset(h.offset);
        let Some(value) = h.value.as_deref() else {
            out.bad(
                part.id,
                offset,
                b"",
                Invalid::new(InvalidReason::NotJson, "a Kafka record without a value"),
            );
            return;
        };
        let line = value.strip_suffix(b"\n").unwrap_or(value);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match (record_time, h.timestamp) {
            (true, Some(ts)) => out.json_line_at(part.id, offset, line, ts),
            (true, None) => out.bad(
                part.id,
                offset,
                line,
                Invalid::new(
                    InvalidReason::MissingTime,
                    "the Kafka record has no timestamp",
                ),
            ),
            (false, _) => out.json_line(part.id, offset, line),
        }
    }

    /// This partition's lag: records between its position and the end librdkafka last
    /// reported (for read_committed, the last stable offset).
    pub fn lag(&self, partition: PartitionId) -> Option<u64> {
        let next = self.parts.iter().find(|p| p.id == partition)?.next;
        let ends = self.consumer.context().ends.lock().ok()?;
        let end = *ends.get(&(partition.0 as i32))?;
        Some(u64::try_from(end).unwrap_or(0).saturating_sub(next))
    }

    /// After a rebalance: holds exactly the partitions the group now gives this member,
    /// each waiting for its state, and says so in `out`. Whether there was one.
    fn take_rebalance(&mut self, out: &mut SourceOutput) -> bool {
        let Some(held) = self
            .consumer
            .context()
            .rebalanced
            .lock()
            .ok()
            .and_then(|mut r| r.take())
        else {
            return false;
        };
        self.parts = held
            .iter()
            .filter_map(|p| u32::try_from(*p).ok())
            .map(|p| Part {
                id: PartitionId(p),
                next: 0,
                paused: false,
                consumer_paused: true,
                eof: false,
                finished: false,
                restoring: true,
                held: VecDeque::new(),
            })
            .collect();
        out.events.clear();
        out.invalid.clear();
        out.empty.clear();
        out.rebalanced = Some(self.parts.iter().map(|p| p.id).collect());
        true
    }

    /// A group member's partitions are restored: reading resumes at these offsets.
    /// Partitions the group took away meanwhile are left alone.
    pub fn resume_assigned(&mut self, positions: &[(PartitionId, Offset)]) {
        let mut tpl = TopicPartitionList::new();
        for (id, next) in positions {
            let Some(part) = self.parts.iter_mut().find(|p| p.id == *id) else {
                continue;
            };
            part.next = next.0;
            part.restoring = false;
            part.consumer_paused = false;
            part.eof = false;
            part.held.clear();
            if tpl
                .add_partition_offset(&self.topic, id.0 as i32, KafkaOffset::Offset(next.0 as i64))
                .is_err()
            {
                continue;
            }
        }
        if tpl.count() == 0 {
            return;
        }
        // Zero timeout: the seek is asynchronous; librdkafka drops what was fetched
        // before it.
        if let Err(e) = self.consumer.seek_partitions(tpl.clone(), Duration::ZERO) {
            tracing::warn!(error = %describe(&e), topic = %self.topic, "seeking restored kafka partitions failed");
        }
        if let Err(e) = self.consumer.resume(&tpl) {
            tracing::warn!(error = %describe(&e), topic = %self.topic, "resuming restored kafka partitions failed");
        }
    }

    /// The consumer's group metadata (member and generation), for a transaction's
    /// offsets.
    pub fn group_metadata(&self) -> Option<rdkafka::consumer::ConsumerGroupMetadata> {
        self.consumer.group_metadata()
    }

    /// The source's spec name for logs.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    fn read(&mut self, max: usize, out: &mut SourceOutput) -> Result<(), SourceError> {
        let added = self.discover();
        out.added.extend(added);
        if self.reassign {
            self.assign()?;
        }
        let mut rooms: Vec<usize> = self.parts.iter().map(|p| out.room(p.id)).collect();
        let mut total = 0;
        let record_time = self.record_time;
        // What was held back goes first, in order.
        for (i, part) in self.parts.iter_mut().enumerate() {
            while rooms[i] > 0 && total < max && !part.paused {
                let Some(h) = part.held.pop_front() else {
                    break;
                };
                Self::emit(out, part, record_time, &h);
                rooms[i] -= 1;
                total += 1;
            }
        }
        for i in 0..self.parts.len() {
            if self.parts[i].consumer_paused
                && !self.parts[i].paused
                && self.parts[i].held.len() < HELD_LIMIT / 2
            {
                self.set_consumer_paused(i, false);
            }
        }
        while total < max {
            // A rebalance is served inside `poll`: what the poll after it gave is void.
            if self.group && self.take_rebalance(out) {
                return Ok(());
            }
            let Some(polled) = self.consumer.poll(Duration::ZERO) else {
                if self.group && self.take_rebalance(out) {
                    return Ok(());
                }
                break;
            };
            let message = match polled {
                Ok(m) => m,
                Err(KafkaError::PartitionEOF(p)) => {
                    tracing::debug!(topic = %self.topic, partition = p, "end of kafka partition");
                    if let Some(part) = self.parts.iter_mut().find(|x| x.id.0 as i32 == p) {
                        part.eof = true;
                    }
                    continue;
                }
                Err(e) => {
                    // librdkafka retries by itself (a broker away, a leader moving):
                    // say so now and then, and keep polling.
                    let due = self
                        .error_logged
                        .is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
                    if due {
                        self.error_logged = Some(std::time::Instant::now());
                        tracing::warn!(topic = %self.topic, error = %describe(&e), "kafka consumer error; librdkafka retries");
                    }
                    break;
                }
            };
            let Some(i) = self
                .parts
                .iter()
                .position(|x| x.id.0 as i32 == message.partition())
            else {
                continue;
            };
            let Ok(offset) = u64::try_from(message.offset()) else {
                continue;
            };
            let part = &mut self.parts[i];
            if part.restoring {
                // Fetched before the pause took hold: read again once restored.
                continue;
            }
            part.eof = false;
            if offset < part.next {
                // Fetched before a seek moved the partition on.
                continue;
            }
            let held = Held {
                offset,
                timestamp: message.timestamp().to_millis(),
                value: message.payload().map(<[u8]>::to_vec),
            };
            if rooms[i] > 0 && part.held.is_empty() && !part.paused {
                Self::emit(out, part, record_time, &held);
                rooms[i] -= 1;
                total += 1;
            } else {
                part.held.push_back(held);
                if part.held.len() >= HELD_LIMIT {
                    self.set_consumer_paused(i, true);
                }
            }
        }
        for part in &mut self.parts {
            if part.finished || part.paused || part.restoring || !part.eof || !part.held.is_empty()
            {
                continue;
            }
            if self.bounded {
                part.finished = true;
                out.finished(part.id);
            } else {
                out.empty(part.id);
            }
        }
        Ok(())
    }
}

impl Source for KafkaSource {
    fn runs_tasks(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn start(&mut self) -> Result<(), SourceError> {
        self.started = true;
        if self.group {
            return self.consumer.subscribe(&[&self.topic]).map_err(|e| {
                SourceError::failed(format!("subscribing to {}: {}", self.topic, describe(&e)))
            });
        }
        self.assign()
    }

    fn partitions(&self) -> Vec<PartitionId> {
        self.parts.iter().map(|p| p.id).collect()
    }

    fn poll<'a>(
        &'a mut self,
        max: usize,
        out: &'a mut SourceOutput,
    ) -> LocalFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            if !self.started {
                return Ok(());
            }
            self.read(max, out)
        })
    }

    fn positions(&self) -> Vec<(PartitionId, Offset)> {
        partitions::positions(&self.parts)
    }

    fn seek(&mut self, partition: PartitionId, next: Offset) -> Result<(), SourceError> {
        let part = partitions::find_mut(&mut self.parts, partition, "kafka")?;
        part.next = next.0;
        part.held.clear();
        self.reassign = true;
        Ok(())
    }

    fn set_paused(&mut self, partition: PartitionId, paused: bool) {
        partitions::set_paused(&mut self.parts, partition, paused);
        if let Some(i) = self.parts.iter().position(|p| p.id == partition) {
            self.set_consumer_paused(i, paused);
        }
    }

    fn commit(&mut self, positions: &[(PartitionId, Offset)]) {
        if self.group {
            // The group's offsets commit in the checkpoint's Kafka transaction.
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (p, o) in positions {
            if tpl
                .add_partition_offset(&self.topic, p.0 as i32, KafkaOffset::Offset(o.0 as i64))
                .is_err()
            {
                return;
            }
        }
        if tpl.count() == 0 {
            return;
        }
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
            tracing::debug!(error = %e, topic = %self.topic, "committing offsets to the kafka group failed");
        }
    }

    fn lag(&self, partition: PartitionId) -> Option<u64> {
        KafkaSource::lag(self, partition)
    }

    fn as_group_member(&mut self) -> Option<&mut KafkaSource> {
        self.group.then_some(self)
    }
}
