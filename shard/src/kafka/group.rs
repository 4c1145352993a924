//! Scale-out on a Kafka consumer group (`assignment = "group"`): the partitions of the
//! input topic are shared by every instance (and shard) of the group, and a partition's
//! window state moves with it through the application's compacted state topic.
//!
//! The unit of state is the input partition: a shard keeps one window operator per
//! partition it is assigned, fed only by that partition's records, with that partition's
//! watermark. At each checkpoint the shard's transaction thread writes, in one Kafka
//! transaction of the shard's producer:
//! - the result lines emitted since the previous checkpoint (output topic);
//! - for every partition whose position moved, its [`PartitionRecord`] (position,
//!   watermark clock, window state) to the same-numbered partition of the state topic,
//!   in chunks keyed `chunk-<i>`, so compaction keeps the latest of each;
//! - the partitions' next offsets to the source's consumer group
//!   (`send_offsets_to_transaction` with the consumer's group metadata: a member that
//!   has lost its partitions is fenced by its old generation, Kafka's exactly-once v2).
//!
//! All three commit together or not at all. An instance assigned a partition restores
//! it with [`restore_partitions`]: it asks the group for the committed offset (with
//! `read_committed` librdkafka asks for stable offsets, so this waits while the previous
//! owner's transaction is open), reads the state partition to its end, and checks that
//! the newest complete record is at that offset. An instance that loses a partition
//! drops its state; any rebalance aborts the shard's open transaction and restores every
//! partition it still holds from Kafka, so nothing uncommitted survives a move.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset as KafkaOffset, TopicPartitionList};
use rkyv::{Archive, Deserialize, Serialize};
use weir_config::{KafkaSink as SinkSpec, KafkaSource as SourceSpec, KafkaStart};
use weir_engine::FrozenState;
use weir_engine::snapshot::OperatorState;

use super::sink::{SinkStatus, key_of};
use super::{Logged, START_TIMEOUT, client_config, describe};
use crate::checkpoint::PositionEntry;
use crate::sink::Sink;
use crate::source::LocalFuture;

/// The layout of [`PartitionRecord`] chunks this build writes.
pub const STATE_FORMAT: u32 = 1;

/// Largest chunk of a partition record (Kafka's default `max.message.bytes` is 1 MiB).
const CHUNK: usize = 512 * 1024;

/// Bytes before a chunk's part of the record: checkpoint, index, count, format.
const HEADER: usize = 8 + 4 + 4 + 4;

/// Result-line buffers queued for the transaction thread before writers wait.
const QUEUED_LINES: usize = 64;

/// One input partition's state, as the state topic holds it.
#[derive(Debug, Clone, PartialEq, Archive, Serialize, Deserialize)]
pub struct PartitionRecord {
    /// The checkpoint that wrote it.
    pub checkpoint: u64,
    /// Where the partition's reading resumes, and its watermark clock.
    pub position: PositionEntry,
    /// The partition's window state.
    pub state: OperatorState,
}

/// A partition restored from Kafka: where to read from, and its state (`None`: the
/// state topic has none, the partition starts afresh).
#[derive(Debug)]
pub struct Restored {
    /// The input partition.
    pub partition: u32,
    /// The offset of the next record to read.
    pub offset: u64,
    /// Its state.
    pub record: Option<PartitionRecord>,
}

/// The chunks of one record, keyed for the state topic.
fn chunks(record: &PartitionRecord) -> Result<Vec<(String, Vec<u8>)>, String> {
    let bytes = weir_engine::snapshot::encode(record).map_err(|e| e.to_string())?;
    let count = bytes.len().div_ceil(CHUNK).max(1);
    let count32 = u32::try_from(count).map_err(|_| "a partition's state is too large")?;
    Ok((0..count)
        .map(|i| {
            let part = &bytes[(i * CHUNK).min(bytes.len())..((i + 1) * CHUNK).min(bytes.len())];
            let mut value = Vec::with_capacity(HEADER + part.len());
            value.extend_from_slice(&record.checkpoint.to_le_bytes());
            value.extend_from_slice(&(i as u32).to_le_bytes());
            value.extend_from_slice(&count32.to_le_bytes());
            value.extend_from_slice(&STATE_FORMAT.to_le_bytes());
            value.extend_from_slice(part);
            (format!("chunk-{i}"), value)
        })
        .collect())
}

/// Chunk header of a state-topic value: (checkpoint, index, count), or why not.
fn header(value: &[u8]) -> Result<(u64, u32, u32), String> {
    let h = value
        .get(..HEADER)
        .ok_or("a state record shorter than its header")?;
    let word = |at: usize| u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    let checkpoint = u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
    let (index, count, format) = (word(8), word(12), word(16));
    if format != STATE_FORMAT {
        return Err(format!(
            "a state record of format {format} (this build reads {STATE_FORMAT})"
        ));
    }
    if count == 0 || index >= count {
        return Err(format!("a state chunk {index} of {count}"));
    }
    Ok((checkpoint, index, count))
}

/// Reassembles the last complete record of one state partition from its records in
/// log order. A record's chunks are written in one transaction by one producer, so they
/// follow each other; a record left incomplete (compaction removed an older chunk that a
/// newer record replaced) is skipped.
#[derive(Debug, Default)]
struct Assembly {
    complete: Option<(u64, Vec<u8>)>,
    building: Option<(u64, u32, Vec<u8>)>,
    bad: u64,
}

impl Assembly {
    fn add(&mut self, value: &[u8]) {
        let Ok((checkpoint, index, count)) = header(value) else {
            self.bad += 1;
            return;
        };
        let data = &value[HEADER..];
        if index == 0 {
            self.building = Some((checkpoint, 0, Vec::new()));
        }
        let Some((c, next, bytes)) = self.building.as_mut() else {
            return;
        };
        if *c != checkpoint || *next != index {
            self.building = None;
            return;
        }
        bytes.extend_from_slice(data);
        *next += 1;
        // The log's order is the truth: checkpoint ids are each instance's own (a
        // partition's next owner may count lower), they only tie chunks together.
        if *next == count
            && let Some((c, _, bytes)) = self.building.take()
        {
            self.complete = Some((c, bytes));
        }
    }

    fn record(self) -> Result<Option<PartitionRecord>, String> {
        match self.complete {
            None => Ok(None),
            Some((_, bytes)) => weir_engine::snapshot::decode::<PartitionRecord>(&bytes)
                .map(Some)
                .map_err(|e| e.to_string()),
        }
    }
}

/// How long a restore waits for the state topic to reach the group's committed offset.
const CONSISTENT_WITHIN: Duration = Duration::from_secs(20);

/// Restores `partitions` of the source's topic from Kafka (blocking: runs on its own
/// thread). See the module documentation.
pub fn restore_partitions(
    source: &SourceSpec,
    partitions: &[u32],
) -> Result<Vec<Restored>, String> {
    let started = Instant::now();
    let group: BaseConsumer<Logged> = client_config(&source.bootstrap, &source.properties, &[])
        .set("group.id", &source.group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create_with_context(Logged)
        .map_err(|e| format!("kafka consumer: {}", describe(&e)))?;
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition(&source.topic, *p as i32);
    }
    // Stable offsets: waits while another member's transaction holds pending ones.
    let committed: HashMap<u32, u64> = group
        .committed_offsets(tpl, START_TIMEOUT)
        .map_err(|e| {
            format!(
                "the committed offsets of {}: {}",
                source.group,
                describe(&e)
            )
        })?
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            KafkaOffset::Offset(n) => Some((e.partition() as u32, u64::try_from(n).ok()?)),
            _ => None,
        })
        .collect();
    let mut records = read_state(source, partitions)?;
    // The offsets commit with the state's last records; their markers reach the two
    // topics' partitions separately, so the state may trail for a moment.
    let behind = |records: &HashMap<u32, PartitionRecord>| -> Vec<u32> {
        partitions
            .iter()
            .copied()
            .filter(|p| {
                committed
                    .get(p)
                    .is_some_and(|c| records.get(p).is_none_or(|r| r.position.offset < *c))
            })
            .collect()
    };
    while !behind(&records).is_empty() && started.elapsed() < CONSISTENT_WITHIN {
        std::thread::sleep(Duration::from_millis(200));
        records = read_state(source, partitions)?;
    }
    for p in behind(&records) {
        tracing::error!(
            topic = %source.topic,
            partition = p,
            committed = committed.get(&p).copied(),
            state = records.get(&p).map(|r| r.position.offset),
            state_topic = %source.state_topic,
            "the state topic is behind the group's committed offset (was it deleted, or \
             the group's offsets set by hand?): resuming from the state, output from there \
             on may repeat"
        );
    }
    let ends = if records.len() < partitions.len() {
        watermarks(&group, &source.topic, partitions)?
    } else {
        HashMap::new()
    };
    let mut out = Vec::with_capacity(partitions.len());
    for &p in partitions {
        let record = records.remove(&p);
        let offset = match &record {
            Some(r) => r.position.offset,
            None => {
                let (low, high) = ends.get(&p).copied().unwrap_or((0, 0));
                match (committed.get(&p), source.start) {
                    (Some(c), _) => *c,
                    (None, KafkaStart::Earliest) => low,
                    (None, KafkaStart::Latest) => high,
                }
            }
        };
        out.push(Restored {
            partition: p,
            offset,
            record,
        });
    }
    tracing::info!(
        topic = %source.topic,
        partitions = ?partitions,
        with_state = out.iter().filter(|r| r.record.is_some()).count(),
        ms = started.elapsed().as_millis() as u64,
        "restored partitions from kafka"
    );
    Ok(out)
}

/// The first and next offsets of each partition.
fn watermarks(
    consumer: &BaseConsumer<Logged>,
    topic: &str,
    partitions: &[u32],
) -> Result<HashMap<u32, (u64, u64)>, String> {
    partitions
        .iter()
        .map(|&p| {
            consumer
                .fetch_watermarks(topic, p as i32, START_TIMEOUT)
                .map(|(l, h)| (p, (l.max(0) as u64, h.max(0) as u64)))
                .map_err(|e| format!("the offsets of {topic} {p}: {}", describe(&e)))
        })
        .collect()
}

/// Reads the state topic's partitions `partitions` to their (committed) end; the newest
/// complete record of each.
fn read_state(
    source: &SourceSpec,
    partitions: &[u32],
) -> Result<HashMap<u32, PartitionRecord>, String> {
    let consumer: BaseConsumer<Logged> = client_config(&source.bootstrap, &source.properties, &[])
        .set("group.id", format!("{}-restore", source.group))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create_with_context(Logged)
        .map_err(|e| format!("kafka consumer: {}", describe(&e)))?;
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition_offset(&source.state_topic, *p as i32, KafkaOffset::Beginning)
            .map_err(|e| describe(&e))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| format!("reading {}: {}", source.state_topic, describe(&e)))?;
    let mut assembly: HashMap<u32, Assembly> = HashMap::new();
    let mut open: std::collections::HashSet<u32> = partitions.iter().copied().collect();
    let deadline = Instant::now() + START_TIMEOUT;
    while !open.is_empty() {
        if Instant::now() >= deadline {
            return Err(format!(
                "reading {} timed out (partitions {open:?} not read to their end)",
                source.state_topic
            ));
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                open.remove(&(p as u32));
            }
            Some(Err(e)) => {
                tracing::debug!(error = %describe(&e), "reading the state topic; librdkafka retries");
            }
            Some(Ok(m)) => {
                let p = m.partition() as u32;
                if let Some(value) = m.payload() {
                    assembly.entry(p).or_default().add(value);
                }
            }
        }
    }
    let mut out = HashMap::new();
    for (p, a) in assembly {
        if a.bad > 0 {
            tracing::warn!(state_topic = %source.state_topic, partition = p, records = a.bad, "skipped state records weir cannot read");
        }
        match a.record() {
            Ok(Some(r)) => {
                out.insert(p, r);
            }
            Ok(None) => {}
            Err(e) => {
                return Err(format!(
                    "the state of partition {p} in {}: {e}",
                    source.state_topic
                ));
            }
        }
    }
    Ok(out)
}

/// What a checkpoint commits for a shard's group pipeline.
pub struct StatePayload {
    /// The checkpoint.
    pub checkpoint: u64,
    /// Every partition the shard holds: its position and frozen state.
    pub partitions: Vec<(PositionEntry, FrozenState)>,
    /// The source consumer's group metadata (member and generation) at the barrier.
    pub metadata: ConsumerGroupMetadata,
}

/// A request to a group pipeline's transaction thread, carried out in order.
pub enum Job {
    /// Result lines, into the open transaction.
    Lines(Vec<u8>),
    /// Commit the open transaction with this checkpoint's state and offsets.
    Commit(Box<StatePayload>),
    /// Abort the open transaction (a rebalance, or after a failure) and begin afresh.
    Abort,
}

/// What the transaction thread answers.
#[derive(Debug)]
pub enum Done {
    /// A checkpoint committed.
    Committed(u64),
    /// A transaction failed and was rolled back; later lines and commits are dropped
    /// until the pipeline asks for [`Job::Abort`].
    RolledBack(String),
    /// The abort asked for is done.
    Aborted,
}

/// The pipeline's end of its transaction thread.
pub struct GroupLink {
    /// Jobs, in order.
    pub jobs: Sender<Job>,
    /// Answers.
    pub done: Receiver<Done>,
    /// For the admin.
    pub status: Arc<SinkStatus>,
}

impl std::fmt::Debug for GroupLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupLink").finish()
    }
}

impl GroupLink {
    /// The next answer, if any.
    pub fn try_done(&self) -> Option<Done> {
        match self.done.try_recv() {
            Ok(d) => Some(d),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Done::RolledBack(
                "the kafka transaction thread ended".into(),
            )),
        }
    }
}

/// What a group pipeline's sink and transaction thread are opened with.
#[derive(Debug, Clone)]
pub struct GroupSetup {
    /// The pipeline's Kafka source.
    pub source: SourceSpec,
    /// Its one Kafka sink.
    pub sink: SinkSpec,
    /// `app_name`.
    pub app_name: String,
    /// The pipeline id.
    pub pipeline: String,
    /// This instance's name (unique among the live instances of the application).
    pub instance: String,
    /// The shard.
    pub shard: usize,
}

impl GroupSetup {
    fn transactional_id(&self) -> String {
        format!(
            "{}-{}-{}-{}",
            self.app_name, self.pipeline, self.instance, self.shard
        )
    }
}

/// The producer of a group pipeline's shard, owned by its transaction thread.
struct GroupTxn {
    setup: GroupSetup,
    producer: BaseProducer<Logged>,
    /// Per partition, the position (offset and watermark clock) of its last committed
    /// record: a partition whose position is the same has the same state (its operator
    /// changes only with its records and its watermark, which follows its clock).
    written: HashMap<u32, PositionEntry>,
    /// Records sent into the open transaction.
    open: u64,
}

impl GroupTxn {
    fn open(setup: &GroupSetup) -> Result<Self, String> {
        let spec = &setup.sink;
        let defaults = [("partitioner", "murmur2_random"), ("linger.ms", "5")];
        let txid = setup.transactional_id();
        let producer: BaseProducer<Logged> =
            client_config(&spec.bootstrap, &spec.properties, &defaults)
                .set("enable.idempotence", "true")
                .set("transactional.id", &txid)
                .set(
                    "transaction.timeout.ms",
                    spec.transaction_timeout_ms.to_string(),
                )
                .create_with_context(Logged)
                .map_err(|e| format!("kafka producer: {}", describe(&e)))?;
        producer.init_transactions(START_TIMEOUT).map_err(|e| {
            format!(
                "cannot start transactions as {txid:?} on {}: {}",
                spec.bootstrap,
                describe(&e)
            )
        })?;
        producer
            .begin_transaction()
            .map_err(|e| format!("kafka: {}", describe(&e)))?;
        Ok(Self {
            setup: setup.clone(),
            producer,
            written: HashMap::new(),
            open: 0,
        })
    }

    fn send(&self, record: BaseRecord<'_, str, [u8]>) -> Result<(), String> {
        let mut record = record;
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(describe(&e)),
            }
        }
    }

    fn lines(&mut self, lines: &[u8]) -> Result<(), String> {
        let topic = self.setup.sink.topic.clone();
        for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let key = key_of(line);
            let mut record = BaseRecord::to(&topic).payload(line);
            if let Some(k) = key.as_deref() {
                record = record.key(k);
            }
            self.send(record)?;
            self.open += 1;
        }
        self.producer.poll(Duration::ZERO);
        Ok(())
    }

    /// Commits: the state of every partition that moved, the offsets, the lines sent.
    /// Returns the state bytes written.
    fn commit(&mut self, payload: &StatePayload) -> Result<u64, String> {
        let state_topic = self.setup.source.state_topic.clone();
        let mut offsets = TopicPartitionList::new();
        let mut bytes = 0u64;
        let mut moved = Vec::new();
        for (position, frozen) in &payload.partitions {
            if self.written.get(&position.partition) == Some(position) {
                continue;
            }
            let record = PartitionRecord {
                checkpoint: payload.checkpoint,
                position: position.clone(),
                state: frozen.write(0, &|_| true),
            };
            for (key, value) in chunks(&record)? {
                bytes += value.len() as u64;
                self.send(
                    BaseRecord::to(&state_topic)
                        .partition(position.partition as i32)
                        .key(key.as_str())
                        .payload(value.as_slice()),
                )?;
            }
            offsets
                .add_partition_offset(
                    &self.setup.source.topic,
                    position.partition as i32,
                    KafkaOffset::Offset(position.offset as i64),
                )
                .map_err(|e| describe(&e))?;
            moved.push((position.partition, position.clone()));
        }
        if moved.is_empty() && self.open == 0 {
            return Ok(0);
        }
        let timeout = START_TIMEOUT;
        if offsets.count() > 0 {
            self.producer
                .send_offsets_to_transaction(&offsets, &payload.metadata, timeout)
                .map_err(|e| format!("sending offsets to the transaction: {}", describe(&e)))?;
        }
        self.producer
            .commit_transaction(timeout)
            .map_err(|e| format!("committing the transaction: {}", describe(&e)))?;
        self.open = 0;
        self.written.extend(moved);
        self.producer
            .begin_transaction()
            .map_err(|e| format!("kafka: {}", describe(&e)))?;
        Ok(bytes)
    }

    /// Aborts the open transaction and begins a fresh one; a producer that cannot (it
    /// was fenced, say) is made anew.
    fn reset(&mut self) -> Result<(), String> {
        self.written.clear();
        self.open = 0;
        let aborted = self
            .producer
            .abort_transaction(START_TIMEOUT)
            .and_then(|()| self.producer.begin_transaction());
        if let Err(e) = aborted {
            tracing::info!(error = %describe(&e), "kafka producer made anew after a failed abort");
            *self = Self::open(&self.setup)?;
        }
        Ok(())
    }
}

/// Opens a group pipeline's producer (fencing the previous one of its transactional id)
/// and starts its transaction thread (blocking: start-up only).
pub fn open_link(setup: &GroupSetup) -> Result<(GroupLink, GroupSink), String> {
    let owned = setup.clone();
    let txn = super::unpinned(move || GroupTxn::open(&owned))??;
    let (job_tx, job_rx) = crossbeam_channel::unbounded();
    let (done_tx, done_rx) = crossbeam_channel::unbounded();
    let status = Arc::new(SinkStatus::default());
    let s = Arc::clone(&status);
    super::spawn_unpinned(move || {
        let spawned = std::thread::Builder::new()
            .name("weir-kafka-txn".into())
            .spawn(move || transaction_thread(txn, job_rx, done_tx, s));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a kafka transaction thread");
        }
    })
    .map_err(|e| format!("kafka transaction thread: {e}"))?;
    let sink = GroupSink {
        jobs: job_tx.clone(),
        status: Arc::clone(&status),
        describe: format!(
            "kafka {} at {} (group, exactly once)",
            setup.sink.topic, setup.sink.bootstrap
        ),
    };
    Ok((
        GroupLink {
            jobs: job_tx,
            done: done_rx,
            status,
        },
        sink,
    ))
}

fn transaction_thread(
    mut txn: GroupTxn,
    jobs: Receiver<Job>,
    done: Sender<Done>,
    status: Arc<SinkStatus>,
) {
    let mut rolled_back = false;
    for job in jobs {
        let answer = match job {
            Job::Lines(_) | Job::Commit(_) if rolled_back => None,
            Job::Lines(lines) => match txn.lines(&lines) {
                Ok(()) => {
                    status.open_records.store(txn.open, Ordering::Relaxed);
                    None
                }
                Err(e) => Some(Done::RolledBack(format!("producing a result: {e}"))),
            },
            Job::Commit(payload) => match txn.commit(&payload) {
                Ok(bytes) => {
                    tracing::debug!(
                        checkpoint = payload.checkpoint,
                        partitions = payload.partitions.len(),
                        state_bytes = bytes,
                        "kafka transaction committed"
                    );
                    status
                        .committed
                        .fetch_max(payload.checkpoint, Ordering::Relaxed);
                    status.open_records.store(0, Ordering::Relaxed);
                    Some(Done::Committed(payload.checkpoint))
                }
                Err(e) => Some(Done::RolledBack(e)),
            },
            Job::Abort => {
                let mut backoff = Duration::from_millis(100);
                while let Err(e) = txn.reset() {
                    tracing::warn!(error = %e, "cannot begin a fresh kafka transaction; retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                rolled_back = false;
                status.open_records.store(0, Ordering::Relaxed);
                Some(Done::Aborted)
            }
        };
        if let Some(answer) = answer {
            if let Done::RolledBack(reason) = &answer {
                // Nothing of the failed transaction may commit with a later one.
                rolled_back = true;
                tracing::warn!(%reason, "kafka transaction failed; its partitions restore from kafka");
            }
            if done.send(answer).is_err() {
                return;
            }
        }
    }
    // The pipeline is gone: whatever is open is aborted by the broker, or fenced by the
    // next start.
    let _ = txn.producer.abort_transaction(Duration::from_secs(5));
}

/// The sink of a group pipeline: result lines go to the transaction thread in order,
/// between the checkpoints' commits.
pub struct GroupSink {
    jobs: Sender<Job>,
    status: Arc<SinkStatus>,
    describe: String,
}

impl GroupSink {
    /// The admin's view of this sink.
    pub fn status(&self) -> Arc<SinkStatus> {
        Arc::clone(&self.status)
    }
}

impl Sink for GroupSink {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn write<'a>(&'a mut self, lines: &'a [u8]) -> LocalFuture<'a, std::io::Result<()>> {
        Box::pin(async move {
            while self.jobs.len() >= QUEUED_LINES {
                glommio::timer::sleep(Duration::from_millis(1)).await;
            }
            self.jobs
                .send(Job::Lines(lines.to_vec()))
                .map_err(|_| std::io::Error::other("the kafka transaction thread ended"))
        })
    }

    fn close(&mut self) -> LocalFuture<'_, std::io::Result<()>> {
        Box::pin(async move {
            // The last checkpoint's commit is queued: wait for the thread to get to it.
            let deadline = Instant::now() + START_TIMEOUT;
            while !self.jobs.is_empty() && Instant::now() < deadline {
                glommio::timer::sleep(Duration::from_millis(2)).await;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(checkpoint: u64, entries: usize) -> PartitionRecord {
        PartitionRecord {
            checkpoint,
            position: PositionEntry {
                partition: 3,
                offset: checkpoint * 10,
                max_time: 7,
                records: 70,
                pending_max: 9,
            },
            state: OperatorState {
                watermark: checkpoint as i64,
                panes: (0..entries)
                    .map(|i| weir_engine::snapshot::PaneEntry {
                        pane: i as i64,
                        key: format!("key-{i}"),
                        acc: weir_engine::snapshot::AccState {
                            count: 1,
                            sum: 2.0,
                            min: 2.0,
                            max: 2.0,
                            values: None,
                        },
                    })
                    .collect(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn the_newest_complete_record_is_reassembled_from_its_chunks() -> Result<(), String> {
        let big = record(5, 40_000);
        let big_chunks = chunks(&big)?;
        assert!(
            big_chunks.len() > 1,
            "the test needs a record of several chunks"
        );
        let small = record(4, 3);
        let mut a = Assembly::default();
        for (_, v) in chunks(&small)? {
            a.add(&v);
        }
        // A newer record cut short (its later chunks compacted away) does not count.
        a.add(&big_chunks[0].1);
        let mut later = chunks(&record(6, 40_000))?;
        later.truncate(1);
        for (_, v) in big_chunks.iter().skip(1) {
            a.add(v);
        }
        a.add(&later[0].1);
        a.add(b"garbage");
        assert_eq!(a.bad, 1);
        assert_eq!(a.record()?, Some(big));
        // A later record of a lower checkpoint (another instance's count) wins.
        let mut a = Assembly::default();
        for r in [record(9, 2), record(2, 5)] {
            for (_, v) in chunks(&r)? {
                a.add(&v);
            }
        }
        assert_eq!(a.record()?, Some(record(2, 5)));
        Ok(())
    }

    #[test]
    fn a_chunk_of_another_format_or_count_is_refused() -> Result<(), String> {
        let mut v = chunks(&record(1, 1))?.remove(0).1;
        v[16] = 9;
        assert!(header(&v).is_err());
        let mut v = chunks(&record(1, 1))?.remove(0).1;
        v[12..16].copy_from_slice(&0u32.to_le_bytes());
        assert!(header(&v).is_err());
        Ok(())
    }
}
