//! Kafka in and out, through librdkafka (the `rdkafka` crate, bundled, without tokio).
//!
//! - [`KafkaSource`]: one consumer per shard, manually assigned the topic's partitions
//!   `p` with `p mod shards == shard`, polled with a zero timeout from the shard's loop.
//!   Positions are Kafka offsets kept in weir's checkpoints; the group only hears of
//!   them after each completed checkpoint, for monitoring.
//! - [`KafkaSink`]: one transactional producer per shard; a checkpoint's results are
//!   committed in a Kafka transaction once the checkpoint's manifest is durable.
//! - [`TopicWatch`]: per Kafka source, the topic's partitions as planned at start, and
//!   a thread that asks the brokers for new ones.
//!
//! Threads: librdkafka runs its own threads for every client (a main thread, one per
//! broker connection, and a few internal ones); they do the network I/O and never
//! touch weir's state. The shard threads only enqueue and dequeue, never wait on the
//! network, except at start-up (metadata, fencing the previous producer). The blocking
//! calls of a transaction (commit, begin) run on one small thread per sink and shard.

pub mod group;
mod sink;
mod source;
mod watch;

pub(crate) use sink::SinkSetup;
pub use sink::{KafkaSink, SinkStatus};
pub use source::KafkaSource;
pub use watch::TopicWatch;
pub(crate) use watch::plan;

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::ProducerContext;
use weir_config::KafkaProperties;

/// Jobs for [`unpinned`].
type Job = Box<dyn FnOnce() + Send>;

/// A thread started by the runtime's starting thread, outside every shard's core.
static SPAWNER: std::sync::OnceLock<std::sync::Mutex<crossbeam_channel::Sender<Job>>> =
    std::sync::OnceLock::new();

/// Starts the thread that [`unpinned`] runs jobs from; called on the thread that starts
/// the runtime, whose CPU affinity is the process's.
pub(crate) fn start_spawner() {
    SPAWNER.get_or_init(|| {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let spawned = std::thread::Builder::new()
            .name("weir-kafka-spawn".into())
            .spawn(move || {
                for job in rx {
                    // One thread per job, so that shards opening clients do not wait
                    // for each other; it inherits this thread's affinity.
                    let _ = std::thread::Builder::new()
                        .name("weir-kafka-open".into())
                        .spawn(job);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no kafka spawner thread; kafka clients share their shard's core");
        }
        std::sync::Mutex::new(tx)
    });
}

/// Runs `f` on a thread with the process's CPU affinity, not the calling shard's, and
/// waits for it. librdkafka starts its threads (and the sink its transaction thread) on
/// the thread that creates a client, and Linux gives a new thread its creator's
/// affinity: created on a pinned shard, they would all compete for that one core.
/// Without a spawner (no Kafka pipeline planned) `f` runs here.
pub(crate) fn unpinned<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let Some(spawner) = SPAWNER.get() else {
        return Ok(f());
    };
    let _ = spawner;
    let rx = spawn_unpinned(f)?;
    rx.recv()
        .map_err(|_| "opening the kafka client failed on its thread".to_owned())
}

/// Runs `f` on a thread with the process's CPU affinity (see [`unpinned`]) without
/// waiting: its result arrives on the returned channel. Without a spawner, on a plain
/// thread.
pub(crate) fn spawn_unpinned<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<crossbeam_channel::Receiver<T>, String> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    match SPAWNER.get() {
        Some(spawner) => spawner
            .lock()
            .map_err(|_| "the kafka spawner is poisoned".to_owned())?
            .send(job)
            .map_err(|_| "the kafka spawner thread ended".to_owned())?,
        None => {
            std::thread::Builder::new()
                .name("weir-kafka-open".into())
                .spawn(job)
                .map_err(|e| format!("cannot start a thread: {e}"))?;
        }
    }
    Ok(rx)
}

/// How long a start-up call to the brokers may take.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A client configuration: the brokers, weir's `defaults`, then the user's pass-through
/// properties (which may override those defaults, never the settings weir sets after).
pub(crate) fn client_config(
    bootstrap: &str,
    properties: &KafkaProperties,
    defaults: &[(&str, &str)],
) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c.set("client.id", "weir");
    c.set_log_level(RDKafkaLogLevel::Warning);
    for (k, v) in defaults {
        c.set(*k, *v);
    }
    for (k, v) in properties {
        c.set(k, v);
    }
    c
}

/// librdkafka's logs and errors, into weir's log.
#[derive(Debug, Default)]
pub struct Logged;

impl ClientContext for Logged {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", "{fac}: {message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", "{fac}: {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", "{fac}: {message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", "{fac}: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // End of partition is news the source polls for, not an error.
        if error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::PartitionEOF) {
            return;
        }
        tracing::warn!(target: "librdkafka", %error, "{reason}");
    }
}

impl ConsumerContext for Logged {}
impl ProducerContext for Logged {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

/// A Kafka error as one line for humans.
pub(crate) fn describe(e: &KafkaError) -> String {
    match e {
        KafkaError::Transaction(t) => t.to_string(),
        other => other.to_string(),
    }
}
