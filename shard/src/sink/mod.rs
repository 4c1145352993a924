//! Sinks: where window results (and late events, and dead letters) go.
//!
//! A [`Sink`] takes whole JSON lines. The runtime wraps each in a [`SinkWriter`] that
//! buffers lines into large writes and, when a write fails (a full disk, a closed pipe),
//! retries it with exponential backoff. After [`CIRCUIT_OPEN_AFTER`] failures in a row the
//! circuit opens: `/health` reports it, and the shard keeps probing at the longest
//! backoff. While it retries, the shard writes nothing else and reads no more input, so
//! the pipeline backs up through backpressure and nothing is dropped; the circuit closes
//! when a probe write succeeds. See docs/EXTENDING.md for a custom sink.

mod console;
mod file;
pub mod transaction;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use console::ConsoleSink;
pub use file::FileSink;
pub use transaction::StagedFileSink;

use crate::message::ShardId;
use crate::metrics::Fault;
use crate::source::LocalFuture;

/// Failures in a row after which a sink's circuit opens.
pub const CIRCUIT_OPEN_AFTER: u32 = 5;

const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A destination for JSON lines.
pub trait Sink {
    /// A one-line description (`file out/clicks.jsonl`).
    fn describe(&self) -> String;

    /// Writes whole lines; on error nothing is assumed written and the same bytes are
    /// offered again (a sink that wrote part of them may repeat lines: at-least-once).
    fn write<'a>(&'a mut self, lines: &'a [u8]) -> LocalFuture<'a, std::io::Result<()>>;

    /// Seals what was written since the last checkpoint as checkpoint `checkpoint`'s
    /// output, to be committed once the checkpoint is complete (exactly-once sinks);
    /// at-least-once sinks have nothing to do.
    fn stage(&mut self, _checkpoint: u64) -> LocalFuture<'_, std::io::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Makes written lines durable, if the sink can.
    fn sync(&mut self) -> LocalFuture<'_, std::io::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Checkpoint `checkpoint` is complete (its manifest is durable): a sink that
    /// commits its own output (Kafka transactions) may commit what it staged up to it.
    /// Called on the shard; must not wait.
    fn committed(&mut self, _checkpoint: u64) {}

    /// Called on every turn of the shard: a sink with work of its own (a commit in
    /// flight) moves it on here, without waiting for the network.
    fn tick(&mut self) -> LocalFuture<'_, std::io::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// The shard ends: finish what was committed (bounded by the sink's own timeout).
    fn close(&mut self) -> LocalFuture<'_, std::io::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// Discards everything (benchmarks).
#[derive(Debug, Default)]
pub struct BlackholeSink;

impl Sink for BlackholeSink {
    fn describe(&self) -> String {
        "blackhole".into()
    }

    fn write<'a>(&'a mut self, _lines: &'a [u8]) -> LocalFuture<'a, std::io::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// Where a writer reports that its circuit is open: the shard's `sink_circuit_open`
/// counter and a [`Fault::Sink`] naming the sink and its last error, which `/health`
/// reads. It is set from inside the retry loop, while the shard stands still, so the
/// admin thread sees it at once.
#[derive(Debug, Clone)]
pub struct CircuitFlag {
    counters: Arc<crate::metrics::Counters>,
    shard: usize,
}

impl CircuitFlag {
    /// The flag of shard `shard`.
    pub fn new(counters: Arc<crate::metrics::Counters>, shard: usize) -> Self {
        Self { counters, shard }
    }

    fn key(&self, sink: &str) -> String {
        format!("sink/{}/{sink}", self.shard)
    }

    fn open(&self, sink: &str, error: &std::io::Error) {
        if let Some(c) = self.counters.shards.get(self.shard) {
            c.sink_circuit_open.store(true, Ordering::Relaxed);
        }
        self.counters.faults.raise(
            &self.key(sink),
            Fault::Sink {
                shard: ShardId(self.shard),
                sink: sink.to_owned(),
                reason: error.to_string(),
            },
        );
    }

    fn close(&self, sink: &str) {
        self.counters.faults.clear(&self.key(sink));
        let others = self
            .counters
            .faults
            .current()
            .iter()
            .any(|f| matches!(f, Fault::Sink { shard, .. } if shard.index() == self.shard));
        if !others && let Some(c) = self.counters.shards.get(self.shard) {
            c.sink_circuit_open.store(false, Ordering::Relaxed);
        }
    }
}

/// A sink with a buffer, retries and a circuit breaker.
pub struct SinkWriter {
    sink: Box<dyn Sink>,
    /// Lines not yet written.
    pub buf: Vec<u8>,
    failures: u32,
    circuit: CircuitFlag,
    discard: bool,
}

impl std::fmt::Debug for SinkWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkWriter")
            .field("sink", &self.sink.describe())
            .field("buffered", &self.buf.len())
            .field("failures", &self.failures)
            .finish()
    }
}

/// Buffered bytes past which a writer should be flushed.
pub const FLUSH_BYTES: usize = 256 * 1024;

impl SinkWriter {
    /// Wraps a sink; `circuit` is raised while its circuit is open.
    pub fn new(sink: Box<dyn Sink>, circuit: CircuitFlag) -> Self {
        Self {
            sink,
            buf: Vec::with_capacity(FLUSH_BYTES),
            failures: 0,
            circuit,
            discard: false,
        }
    }

    /// A writer whose sink discards: encoding is skipped entirely.
    pub fn discards(&self) -> bool {
        self.discard
    }

    /// Marks this writer as a blackhole.
    pub fn into_discarding(mut self) -> Self {
        self.discard = true;
        self
    }

    /// The sink's description.
    pub fn describe(&self) -> String {
        self.sink.describe()
    }

    /// Writes the buffer, retrying with backoff until it succeeds or `give_up` is raised
    /// (at shutdown); returns whether everything was written.
    pub async fn flush(&mut self, give_up: &AtomicBool) -> bool {
        if self.buf.is_empty() {
            return true;
        }
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.sink.write(&self.buf).await {
                Ok(()) => {
                    self.buf.clear();
                    if self.failures >= CIRCUIT_OPEN_AFTER {
                        tracing::info!(sink = %self.sink.describe(), "sink recovered; circuit closed");
                        self.circuit.close(&self.sink.describe());
                    }
                    self.failures = 0;
                    return true;
                }
                Err(e) => {
                    self.failures += 1;
                    if self.failures == CIRCUIT_OPEN_AFTER {
                        tracing::error!(sink = %self.sink.describe(), error = %e, "sink keeps failing; circuit open");
                        self.circuit.open(&self.sink.describe(), &e);
                    } else if self.failures > CIRCUIT_OPEN_AFTER {
                        // Still open: keep the reason current (the disk may fill anew).
                        self.circuit.open(&self.sink.describe(), &e);
                    } else {
                        tracing::warn!(sink = %self.sink.describe(), error = %e, attempt = self.failures, "sink write failed; retrying");
                    }
                    if give_up.load(Ordering::Relaxed) && self.failures >= CIRCUIT_OPEN_AFTER {
                        tracing::error!(sink = %self.sink.describe(), bytes = self.buf.len(), "giving up on the sink at shutdown");
                        return false;
                    }
                    glommio::timer::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Writes the buffer and stages the output of a checkpoint.
    pub async fn stage(&mut self, checkpoint: u64, give_up: &AtomicBool) -> std::io::Result<()> {
        if !self.flush(give_up).await {
            return Err(std::io::Error::other("the sink could not be written"));
        }
        self.sink.stage(checkpoint).await
    }

    /// Makes written lines durable.
    pub async fn sync(&mut self) -> std::io::Result<()> {
        self.sink.sync().await
    }

    /// Checkpoint `checkpoint` is complete.
    pub fn committed(&mut self, checkpoint: u64) {
        self.sink.committed(checkpoint);
    }

    /// The sink's own work of a shard turn; a failure opens the circuit.
    pub async fn tick(&mut self) {
        if let Err(e) = self.sink.tick().await {
            self.failures = self.failures.max(CIRCUIT_OPEN_AFTER);
            self.circuit.open(&self.sink.describe(), &e);
        }
    }

    /// The shard ends.
    pub async fn close(&mut self) {
        if let Err(e) = self.sink.close().await {
            tracing::error!(sink = %self.sink.describe(), error = %e, "closing the sink failed; the next start finishes its commit");
        }
    }
}
