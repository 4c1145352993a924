//! The Kafka sink: one record per result line, keyed by the window key.
//!
//! Exactly-once (the default) uses one transactional producer per (sink, shard), with
//! `transactional.id` `<app_name>-<pipeline>-<sink>-<shard>`, stable across restarts,
//! so that a restarted weir fences its previous incarnation (and Kafka aborts whatever
//! that one left open). The lines of checkpoint `n` (those emitted between barriers
//! `n-1` and `n`) are sent inside one transaction, which is committed only once `n`'s
//! manifest is durable (the coordinator says so). Lines emitted while a transaction
//! waits for its commit are held on the shard and sent into the next one.
//!
//! The crash between a manifest and its transaction commit: librdkafka cannot resume
//! an open transaction after a restart, so the previous incarnation's transaction is
//! aborted and its lines would be lost. Two things make the restored checkpoint's
//! output reach Kafka exactly once:
//! - every line is also appended to a local file, sealed (fsynced, renamed to
//!   `<n>.staged`) when the shard snapshots checkpoint `n`, so before its manifest is
//!   written; it is deleted once `n`'s transaction is committed;
//! - each transaction also commits, through `send_offsets_to_transaction`, an "offset"
//!   of a weir-owned consumer group `<transactional.id>.commits`: the id of the
//!   checkpoint it carries. That offset commits atomically with the records.
//!
//! On start (restoring checkpoint `r`), after fencing, weir reads that offset `c`: the
//! staged files of checkpoints in `(c, r]` were never committed, so they are sent again
//! in one transaction that commits `r`; staged files past `r` and the pending file are
//! dropped (replay produces them again). When the shard count changed, each shard also
//! recovers the transactional ids of the old shards that map onto it.
//!
//! At-least-once: an idempotent producer; a checkpoint completes only once everything
//! sent before its barrier is acknowledged by the brokers.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset as KafkaOffset, TopicPartitionList};
use weir_config::{Delivery, KafkaSink as Spec};

use super::{Logged, START_TIMEOUT, client_config, describe};
use crate::sink::Sink;
use crate::source::LocalFuture;

/// Environment variable holding a number `n`: the process aborts just before its `n`th
/// commit of a Kafka transaction that carries records (counted over every Kafka sink of
/// the process), when that commit's checkpoint manifest is durable and its records are
/// on the brokers but not committed: the crash tests' way into the window between the
/// two.
pub const FAULT_ENV: &str = "WEIR_FAULT_ABORT_BEFORE_KAFKA_COMMIT";

/// Transaction commits of this process, for [`FAULT_ENV`].
static COMMITS: AtomicU64 = AtomicU64::new(0);

/// What a shard's Kafka sink is opened with.
#[derive(Debug, Clone)]
pub(crate) struct SinkSetup {
    pub spec: Spec,
    pub app_name: String,
    pub pipeline: String,
    /// `sink0`, `sink1`, …, or `late`.
    pub role: String,
    pub shard: usize,
    pub nr_shards: usize,
    pub data_dir: PathBuf,
    /// The checkpoint restored (0 when starting fresh).
    pub restored: u64,
    /// Shards of the restored checkpoint.
    pub old_shards: usize,
}

impl SinkSetup {
    fn transactional_id(&self, shard: usize) -> String {
        format!("{}-{}-{}-{shard}", self.app_name, self.pipeline, self.role)
    }

    fn staging(&self, shard: usize) -> PathBuf {
        self.data_dir
            .join("kafka-sink")
            .join(&self.pipeline)
            .join(&self.role)
            .join(format!("shard-{shard:04}"))
    }
}

fn staged_name(dir: &Path, checkpoint: u64) -> PathBuf {
    dir.join(format!("{checkpoint:020}.staged"))
}

/// Staged files in `dir`, by checkpoint.
fn staged_files(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let id = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".staged"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(id) = id {
            out.push((id, path));
        }
    }
    out.sort();
    Ok(out)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The window key of a result line (`None` for a line without one). Result lines begin
/// `{"pipeline":…,"key":"…"`: the key is taken from there when it has no escapes, else
/// the line is parsed.
pub(super) fn key_of(line: &[u8]) -> Option<Cow<'_, str>> {
    const FIELD: &[u8] = b",\"key\":\"";
    if let Some(at) = memchr::memmem::find(line, FIELD) {
        let rest = &line[at + FIELD.len()..];
        if let Some(end) = memchr::memchr2(b'"', b'\\', rest)
            && rest[end] == b'"'
            && let Ok(key) = std::str::from_utf8(&rest[..end])
        {
            return Some(Cow::Borrowed(key));
        }
    }
    #[derive(serde::Deserialize)]
    struct Keyed<'a> {
        #[serde(borrow)]
        key: Option<Cow<'a, str>>,
    }
    serde_json::from_slice::<Keyed<'_>>(line).ok()?.key
}

#[cfg(test)]
mod tests {
    use super::key_of;

    #[test]
    fn the_key_of_a_result_line_is_its_window_key() {
        let plain = br#"{"pipeline":"p","key":"u1","window_start":0,"count":1}"#;
        assert_eq!(key_of(plain).as_deref(), Some("u1"));
        let escaped = br#"{"pipeline":"p","key":"a\"b","window_start":0}"#;
        assert_eq!(key_of(escaped).as_deref(), Some("a\"b"));
        let pipeline_named_key = br#"{"pipeline":",\"key\":\"x","key":"real"}"#;
        assert_eq!(key_of(pipeline_named_key).as_deref(), Some("real"));
        assert_eq!(key_of(br#"{"pipeline":"p"}"#), None);
    }
}

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// The producer and what a transaction commits besides records.
struct Txn {
    producer: BaseProducer<Logged>,
    topic: String,
    /// The weir-owned group whose offset records the committed checkpoint.
    marker: ConsumerGroupMetadata,
    timeout: Duration,
}

impl Txn {
    fn marker_list(&self, checkpoint: u64) -> Result<TopicPartitionList, String> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, 0, KafkaOffset::Offset(checkpoint as i64))
            .map_err(|e| describe(&e))?;
        Ok(tpl)
    }

    /// Sends one line, waiting (on this thread) while librdkafka's queue is full.
    fn send_blocking(&self, line: &[u8]) -> Result<(), String> {
        let key = key_of(line);
        loop {
            let mut record = BaseRecord::to(&self.topic).payload(line);
            if let Some(k) = key.as_deref() {
                record = record.key(k);
            }
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(describe(&e)),
            }
        }
    }

    /// Commits the open transaction, which carries `records` records, with checkpoint
    /// `n` as its marker, and begins the next. Retriable errors are retried; an error
    /// that needs an abort aborts.
    fn commit(&self, n: u64, records: u64) -> Result<(), TxnFailure> {
        if records > 0 {
            self.fault(n);
        }
        let marker = self.marker_list(n).map_err(TxnFailure::Fatal)?;
        let mut attempt = 0;
        loop {
            let result = self
                .producer
                .send_offsets_to_transaction(&marker, &self.marker, self.timeout)
                .and_then(|()| self.producer.commit_transaction(self.timeout));
            match result {
                Ok(()) => break,
                Err(KafkaError::Transaction(e)) if e.is_retriable() && attempt < 5 => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(100 << attempt));
                }
                Err(KafkaError::Transaction(e)) if e.txn_requires_abort() => {
                    return Err(TxnFailure::Abort(e.to_string()));
                }
                Err(e) => return Err(TxnFailure::Fatal(describe(&e))),
            }
        }
        self.producer
            .begin_transaction()
            .map_err(|e| TxnFailure::Fatal(describe(&e)))
    }

    /// [`FAULT_ENV`]: aborts the process at the chosen commit, once the transaction's
    /// records are on the brokers.
    fn fault(&self, n: u64) {
        let nth = COMMITS.fetch_add(1, Ordering::Relaxed) + 1;
        if let Ok(Some(at)) = std::env::var(FAULT_ENV).map(|v| v.parse::<u64>().ok())
            && nth == at
        {
            let flushed = self.producer.flush(self.timeout).map_err(|e| describe(&e));
            tracing::error!(
                checkpoint = n,
                ?flushed,
                "{FAULT_ENV}: aborting before the kafka commit"
            );
            std::process::abort();
        }
    }

    /// After an abortable failure: aborts, and begins a fresh transaction.
    fn abort(&self) -> Result<(), String> {
        self.producer
            .abort_transaction(self.timeout)
            .and_then(|()| self.producer.begin_transaction())
            .map_err(|e| describe(&e))
    }
}

#[derive(Debug)]
enum TxnFailure {
    /// The transaction was aborted; its records must be sent again.
    Abort(String),
    /// The producer cannot go on (fenced by another instance, say).
    Fatal(String),
}

/// Sends the lines of staged files into the open transaction.
fn send_files(txn: &Txn, files: &[PathBuf]) -> Result<u64, String> {
    let mut sent = 0;
    for path in files {
        let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for line in std::io::BufReader::new(file).split(b'\n') {
            let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
            if !line.is_empty() {
                txn.send_blocking(&line)?;
                sent += 1;
            }
        }
    }
    Ok(sent)
}

fn producer(setup: &SinkSetup, shard: usize) -> Result<Txn, String> {
    let spec = &setup.spec;
    let defaults = [("partitioner", "murmur2_random"), ("linger.ms", "5")];
    let mut config = client_config(&spec.bootstrap, &spec.properties, &defaults);
    config.set("enable.idempotence", "true");
    let exactly_once = spec.delivery == Delivery::ExactlyOnce;
    let txid = setup.transactional_id(shard);
    if exactly_once {
        config.set("transactional.id", &txid).set(
            "transaction.timeout.ms",
            spec.transaction_timeout_ms.to_string(),
        );
    }
    let producer: BaseProducer<Logged> = config
        .create_with_context(Logged)
        .map_err(|e| format!("kafka producer: {}", describe(&e)))?;
    let group: BaseConsumer<Logged> = client_config(&spec.bootstrap, &spec.properties, &[])
        .set("group.id", format!("{txid}.commits"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create_with_context(Logged)
        .map_err(|e| format!("kafka consumer: {}", describe(&e)))?;
    let marker = group
        .group_metadata()
        .ok_or_else(|| "kafka: no consumer group metadata".to_owned())?;
    let txn = Txn {
        producer,
        topic: spec.topic.clone(),
        marker,
        timeout: START_TIMEOUT,
    };
    if !exactly_once {
        return Ok(txn);
    }
    txn.producer.init_transactions(START_TIMEOUT).map_err(|e| {
        format!(
            "cannot start transactions as {txid:?} on {}: {}",
            spec.bootstrap,
            describe(&e)
        )
    })?;
    // The checkpoint the last committed transaction of this id carried.
    let committed = group
        .committed_offsets(txn.marker_list(0)?, START_TIMEOUT)
        .map_err(|e| format!("reading the commit marker of {txid:?}: {}", describe(&e)))?
        .elements()
        .first()
        .and_then(|e| match e.offset() {
            KafkaOffset::Offset(n) => u64::try_from(n).ok(),
            _ => None,
        })
        .unwrap_or(0);
    recover(setup, shard, &txn, committed)?;
    Ok(txn)
}

/// Commits the staged output of the restored checkpoint that Kafka lacks, and clears
/// the staging folder of transactional id `shard`.
fn recover(setup: &SinkSetup, shard: usize, txn: &Txn, committed: u64) -> Result<(), String> {
    let dir = setup.staging(shard);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let staged = staged_files(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let r = setup.restored;
    if committed > r {
        tracing::warn!(
            transactional_id = %setup.transactional_id(shard),
            committed,
            restored = r,
            "kafka holds output of a checkpoint newer than the one restored (was data_dir replaced?): \
             that output may appear twice"
        );
    }
    let resend: Vec<PathBuf> = staged
        .iter()
        .filter(|(id, _)| *id > committed && *id <= r)
        .map(|(_, p)| p.clone())
        .collect();
    txn.producer
        .begin_transaction()
        .map_err(|e| format!("kafka: {}", describe(&e)))?;
    if !resend.is_empty() {
        let sent = send_files(txn, &resend)?;
        txn.commit(r, sent)
            .map_err(|e| format!("committing the restored output: {e:?}"))?;
        tracing::info!(
            transactional_id = %setup.transactional_id(shard),
            checkpoint = r,
            records = sent,
            "sent the restored checkpoint's output that kafka had not committed"
        );
    }
    for (_, p) in &staged {
        std::fs::remove_file(p).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    let _ = std::fs::remove_file(dir.join("pending"));
    sync_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// A request to the transaction thread.
enum Job {
    /// Commit the open transaction, which carries `records` records, as checkpoint
    /// `n`'s.
    Commit { n: u64, records: u64 },
}

/// What the transaction thread answers.
enum Done {
    Committed(u64),
    Failed(String),
}

/// The transaction thread: the blocking calls (commit, abort, begin) and deleting the
/// staged files they release.
fn transaction_thread(txn: Arc<Txn>, dir: PathBuf, jobs: Receiver<Job>, done: Sender<Done>) {
    let mut committed_files = 0u64;
    for job in jobs {
        let Job::Commit { n, records } = job;
        let answer = match txn.commit(n, records) {
            Ok(()) => Done::Committed(n),
            Err(TxnFailure::Abort(reason)) => {
                // Aborted: send the staged lines again, from the files, and commit them.
                tracing::warn!(checkpoint = n, %reason, "kafka transaction aborted; sending its output again");
                let files = staged_files(&dir)
                    .map(|f| {
                        f.into_iter()
                            .filter(|(id, _)| *id > committed_files && *id <= n)
                            .map(|(_, p)| p)
                            .collect::<Vec<_>>()
                    })
                    .map_err(|e| e.to_string());
                match txn
                    .abort()
                    .and(files)
                    .and_then(|files| send_files(&txn, &files))
                    .and_then(|sent| txn.commit(n, sent).map_err(|e| format!("{e:?}")))
                {
                    Ok(()) => Done::Committed(n),
                    Err(e) => Done::Failed(e),
                }
            }
            Err(TxnFailure::Fatal(reason)) => Done::Failed(reason),
        };
        if let Done::Committed(n) = answer {
            committed_files = n;
            if let Ok(files) = staged_files(&dir) {
                for (_, p) in files.iter().filter(|(id, _)| *id <= n) {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
        if done.send(answer).is_err() {
            return;
        }
    }
}

/// What the admin shows of a Kafka sink on one shard.
#[derive(Debug, Default)]
pub struct SinkStatus {
    /// The last checkpoint whose transaction committed (0: none yet).
    pub committed: AtomicU64,
    /// Records sent into the open transaction (or, at-least-once, not yet acknowledged).
    pub open_records: AtomicU64,
}

/// A Kafka topic as a sink of one shard.
pub struct KafkaSink {
    txn: Arc<Txn>,
    exactly_once: bool,
    describe: String,
    dir: PathBuf,
    pending: File,
    pending_len: u64,
    /// Lines not yet sent (while a transaction waits for its commit), and the
    /// checkpoints sealed in them: `(checkpoint, end of its lines in held)`.
    held: Vec<u8>,
    marks: std::collections::VecDeque<(u64, usize)>,
    /// The open transaction holds everything up to this checkpoint's barrier.
    sealed: Option<u64>,
    /// The highest checkpoint whose manifest is durable.
    durable: u64,
    /// A commit in flight on the transaction thread.
    in_flight: Option<u64>,
    jobs: Option<Sender<Job>>,
    done: Option<Receiver<Done>>,
    /// Why the sink cannot go on.
    failed: Option<String>,
    status: Arc<SinkStatus>,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("sink", &self.describe)
            .finish()
    }
}

impl KafkaSink {
    /// Opens the sink of one shard: fences the previous producers of its transactional
    /// ids and commits what the restored checkpoint promised (blocking: start-up only).
    pub(crate) fn open(setup: &SinkSetup) -> Result<Self, String> {
        let owned = setup.clone();
        super::unpinned(move || Self::open_here(&owned))?
    }

    fn open_here(setup: &SinkSetup) -> Result<Self, String> {
        let exactly_once = setup.spec.delivery == Delivery::ExactlyOnce;
        // Old shards that map onto this one (the shard count changed) first.
        if exactly_once {
            let mut old = setup.shard + setup.nr_shards;
            while old < setup.old_shards {
                drop(producer(setup, old)?);
                let _ = std::fs::remove_dir(setup.staging(old));
                old += setup.nr_shards;
            }
        }
        let txn = Arc::new(producer(setup, setup.shard)?);
        let dir = setup.staging(setup.shard);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let pending = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(dir.join("pending"))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let (jobs, done) = if exactly_once {
            let (job_tx, job_rx) = crossbeam_channel::unbounded();
            let (done_tx, done_rx) = crossbeam_channel::unbounded();
            let (t, d) = (Arc::clone(&txn), dir.clone());
            std::thread::Builder::new()
                .name(format!("weir-kafka-txn-{}", setup.shard))
                .spawn(move || transaction_thread(t, d, job_rx, done_tx))
                .map_err(|e| format!("cannot start the kafka transaction thread: {e}"))?;
            (Some(job_tx), Some(done_rx))
        } else {
            (None, None)
        };
        let status = Arc::new(SinkStatus::default());
        status.committed.store(setup.restored, Ordering::Relaxed);
        Ok(Self {
            txn,
            exactly_once,
            describe: format!(
                "kafka {} at {}{}",
                setup.spec.topic,
                setup.spec.bootstrap,
                if exactly_once { "" } else { " (at least once)" }
            ),
            dir,
            pending,
            pending_len: 0,
            held: Vec::new(),
            marks: std::collections::VecDeque::new(),
            sealed: None,
            durable: setup.restored,
            in_flight: None,
            jobs,
            done,
            failed: None,
            status,
        })
    }

    /// The admin's view of this sink.
    pub fn status(&self) -> Arc<SinkStatus> {
        Arc::clone(&self.status)
    }

    fn check(&self) -> std::io::Result<()> {
        match &self.failed {
            Some(reason) => Err(io(format!("kafka sink {}: {reason}", self.describe))),
            None => Ok(()),
        }
    }

    /// Sends lines into the open transaction, yielding while librdkafka's queue is full.
    async fn send(&mut self, lines: &[u8]) -> std::io::Result<()> {
        for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let key = key_of(line);
            loop {
                let mut record = BaseRecord::to(&self.txn.topic).payload(line);
                if let Some(k) = key.as_deref() {
                    record = record.key(k);
                }
                match self.txn.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        self.txn.producer.poll(Duration::ZERO);
                        glommio::timer::sleep(Duration::from_millis(1)).await;
                    }
                    Err((e, _)) => {
                        // A record Kafka refuses (too large, say) cannot be skipped without
                        // losing it: the sink stops, loudly; its lines stay staged.
                        self.failed = Some(format!("producing a record: {}", describe(&e)));
                        return self.check();
                    }
                }
            }
            self.status.open_records.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Moves the transaction machinery on: takes a finished commit, sends held lines
    /// into a fresh transaction, and starts the commit of a sealed one whose manifest
    /// is durable. Never waits for the network.
    async fn pump(&mut self) -> std::io::Result<()> {
        self.txn.producer.poll(Duration::ZERO);
        if !self.exactly_once {
            return Ok(());
        }
        if self.in_flight.is_some() {
            let Some(done) = &self.done else {
                return Ok(());
            };
            match done.try_recv() {
                Ok(Done::Committed(n)) => {
                    self.in_flight = None;
                    self.sealed = None;
                    self.status.committed.store(n, Ordering::Relaxed);
                    self.status.open_records.store(0, Ordering::Relaxed);
                }
                Ok(Done::Failed(reason)) => {
                    tracing::error!(sink = %self.describe, %reason, "kafka transaction failed; the sink stops (a restart sends the staged output again)");
                    self.in_flight = None;
                    self.failed = Some(reason);
                    return self.check();
                }
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => {
                    self.failed = Some("the transaction thread ended".into());
                    return self.check();
                }
            }
        }
        if self.sealed.is_none() {
            match self.marks.pop_front() {
                Some((n, end)) => {
                    self.send_held(end).await?;
                    self.sealed = Some(n);
                }
                None => {
                    let all = self.held.len();
                    return self.send_held(all).await;
                }
            }
        }
        let Some(n) = self.sealed else {
            return Ok(());
        };
        if n > self.durable {
            return Ok(());
        }
        // Later sealed checkpoints that are durable too join this transaction.
        let mut upto = n;
        while let Some(&(m, end)) = self.marks.front() {
            if m > self.durable {
                break;
            }
            self.marks.pop_front();
            self.send_held(end).await?;
            upto = m;
        }
        self.sealed = Some(upto);
        let Some(jobs) = &self.jobs else {
            return Ok(());
        };
        let records = self.status.open_records.load(Ordering::Relaxed);
        if jobs.send(Job::Commit { n: upto, records }).is_err() {
            self.failed = Some("the transaction thread ended".into());
            return self.check();
        }
        self.in_flight = Some(upto);
        Ok(())
    }

    /// Sends the first `end` bytes of the held lines into the open transaction.
    async fn send_held(&mut self, end: usize) -> std::io::Result<()> {
        if end == 0 {
            return Ok(());
        }
        let lines: Vec<u8> = self.held.drain(..end).collect();
        for m in &mut self.marks {
            m.1 -= end;
        }
        self.send(&lines).await
    }
}

impl Sink for KafkaSink {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn write<'a>(&'a mut self, lines: &'a [u8]) -> LocalFuture<'a, std::io::Result<()>> {
        Box::pin(async move {
            self.check()?;
            if !self.exactly_once {
                return self.send(lines).await;
            }
            // The local copy first: a restart may need it.
            if let Err(e) = self.pending.write_all(lines) {
                let _ = self.pending.set_len(self.pending_len);
                return Err(e);
            }
            self.pending_len += lines.len() as u64;
            if self.sealed.is_none() && self.in_flight.is_none() && self.held.is_empty() {
                self.send(lines).await
            } else {
                self.held.extend_from_slice(lines);
                Ok(())
            }
        })
    }

    fn stage(&mut self, checkpoint: u64) -> LocalFuture<'_, std::io::Result<()>> {
        Box::pin(async move {
            self.check()?;
            if !self.exactly_once {
                // At-least-once: the checkpoint covers only what the brokers have.
                while self.txn.producer.in_flight_count() > 0 {
                    self.txn.producer.poll(Duration::ZERO);
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                }
                self.status.open_records.store(0, Ordering::Relaxed);
                return Ok(());
            }
            self.pending.sync_data()?;
            std::fs::rename(self.dir.join("pending"), staged_name(&self.dir, checkpoint))?;
            self.pending = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(self.dir.join("pending"))?;
            sync_dir(&self.dir)?;
            self.pending_len = 0;
            if self.sealed.is_none() && self.in_flight.is_none() && self.held.is_empty() {
                self.sealed = Some(checkpoint);
            } else {
                self.marks.push_back((checkpoint, self.held.len()));
            }
            self.pump().await
        })
    }

    fn committed(&mut self, checkpoint: u64) {
        self.durable = self.durable.max(checkpoint);
    }

    fn tick(&mut self) -> LocalFuture<'_, std::io::Result<()>> {
        Box::pin(async move {
            self.check()?;
            self.pump().await
        })
    }

    fn close(&mut self) -> LocalFuture<'_, std::io::Result<()>> {
        Box::pin(async move {
            // Everything durable reaches Kafka before the shard ends.
            let deadline = std::time::Instant::now() + self.txn.timeout;
            loop {
                self.pump().await?;
                let waiting = self.in_flight.is_some()
                    || self.sealed.is_some_and(|n| n <= self.durable)
                    || self.marks.front().is_some_and(|(n, _)| *n <= self.durable);
                if !waiting {
                    break;
                }
                if std::time::Instant::now() >= deadline {
                    return Err(io("timed out committing the last kafka transaction"));
                }
                glommio::timer::sleep(Duration::from_millis(2)).await;
            }
            if !self.exactly_once {
                self.txn
                    .producer
                    .flush(self.txn.timeout)
                    .map_err(|e| io(describe(&e)))?;
            }
            Ok(())
        })
    }
}
