//! What every shard must agree on about a Kafka source's topic before it reads: how many
//! partitions it has, and (for `start = "latest"`) where each one ends at start. Asked
//! of the brokers once, on the starting thread, so that a missing topic or an
//! unreachable broker fails the start with the config key; then a thread asks again
//! every `discovery_interval_ms` and publishes a larger partition count, which each
//! shard's source picks up on its next poll.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use weir_config::{Config, KafkaSource as Spec, KafkaStart, Source as SourceSpec};

use super::{Logged, START_TIMEOUT, client_config, describe};
use crate::error::{Error, Result};

/// A Kafka source's topic as the shards share it.
#[derive(Debug)]
pub struct TopicWatch {
    /// The topic.
    pub topic: String,
    /// Partitions known so far (only ever grows).
    partitions: AtomicU32,
    /// Per partition known at start: its first offset for a source that starts at the
    /// latest records (the end of the partition at start), else 0.
    starts: Vec<u64>,
}

impl TopicWatch {
    /// Partitions known now.
    pub fn partitions(&self) -> u32 {
        self.partitions.load(Ordering::Acquire)
    }

    /// Where partition `p` starts when no checkpoint covers it: partitions that existed
    /// at start by the configured `start`; partitions added later from their first
    /// record, so that nothing written to them before weir noticed them is lost.
    pub fn start_of(&self, p: u32) -> u64 {
        self.starts.get(p as usize).copied().unwrap_or(0)
    }
}

/// The watch of every Kafka source pipeline (`None` for the others).
pub(crate) fn plan(config: &Config) -> Result<Vec<Option<Arc<TopicWatch>>>> {
    let kafka = config.pipelines.iter().any(|p| {
        matches!(p.source, SourceSpec::Kafka(_))
            || p.sinks
                .iter()
                .chain(p.late_sink.as_ref())
                .any(|s| matches!(s, weir_config::Sink::Kafka(_)))
    });
    if kafka {
        super::start_spawner();
    }
    config
        .pipelines
        .iter()
        .enumerate()
        .map(|(i, p)| match &p.source {
            SourceSpec::Kafka(k) => watch(k).map(Some).map_err(|reason| Error::Start {
                key: format!("pipelines[{i}].source"),
                reason,
            }),
            _ => Ok(None),
        })
        .collect()
}

fn consumer(spec: &Spec) -> std::result::Result<BaseConsumer<Logged>, String> {
    client_config(&spec.bootstrap, &spec.properties, &[])
        .set("group.id", &spec.group)
        .set("enable.auto.commit", "false")
        .create_with_context(Logged)
        .map_err(|e| format!("kafka client: {}", describe(&e)))
}

fn partition_count(
    consumer: &BaseConsumer<Logged>,
    spec: &Spec,
    timeout: Duration,
) -> std::result::Result<u32, String> {
    let metadata = consumer
        .fetch_metadata(Some(&spec.topic), timeout)
        .map_err(|e| match e {
            KafkaError::MetadataFetch(RDKafkaErrorCode::OperationTimedOut) => format!(
                "no Kafka broker answered at {} within {} s",
                spec.bootstrap,
                timeout.as_secs()
            ),
            other => format!(
                "asking {} about topic {:?}: {}",
                spec.bootstrap,
                spec.topic,
                describe(&other)
            ),
        })?;
    let Some(topic) = metadata.topics().iter().find(|t| t.name() == spec.topic) else {
        return Err(format!(
            "topic {:?} does not exist on {}",
            spec.topic, spec.bootstrap
        ));
    };
    if let Some(code) = topic.error() {
        let code = RDKafkaErrorCode::from(code);
        return Err(if code == RDKafkaErrorCode::UnknownTopicOrPartition {
            format!(
                "topic {:?} does not exist on {}",
                spec.topic, spec.bootstrap
            )
        } else {
            format!("topic {:?}: {code}", spec.topic)
        });
    }
    let n = topic.partitions().len();
    if n == 0 {
        return Err(format!(
            "topic {:?} does not exist on {}",
            spec.topic, spec.bootstrap
        ));
    }
    u32::try_from(n)
        .ok()
        .filter(|n| *n <= 65_536)
        .ok_or_else(|| {
            format!(
                "topic {:?} has {n} partitions; weir reads at most 65536",
                spec.topic
            )
        })
}

fn watch(spec: &Spec) -> std::result::Result<Arc<TopicWatch>, String> {
    let consumer = consumer(spec)?;
    let n = partition_count(&consumer, spec, START_TIMEOUT)?;
    let starts = match spec.start {
        KafkaStart::Earliest => vec![0; n as usize],
        KafkaStart::Latest => (0..n)
            .map(|p| {
                consumer
                    .fetch_watermarks(&spec.topic, p as i32, START_TIMEOUT)
                    .map(|(_, high)| u64::try_from(high).unwrap_or(0))
                    .map_err(|e| {
                        format!("the end of {} partition {p}: {}", spec.topic, describe(&e))
                    })
            })
            .collect::<std::result::Result<_, _>>()?,
    };
    if spec.assignment == weir_config::KafkaAssignment::Group {
        state_topic(&consumer, spec, n)?;
    }
    let watch = Arc::new(TopicWatch {
        topic: spec.topic.clone(),
        partitions: AtomicU32::new(n),
        starts,
    });
    if spec.discovery_interval_ms > 0 && !spec.bounded {
        let weak = Arc::downgrade(&watch);
        let spec = spec.clone();
        std::thread::Builder::new()
            .name("weir-kafka-watch".into())
            .spawn(move || discover(consumer, &spec, &weak))
            .map_err(|e| format!("cannot start the partition discovery thread: {e}"))?;
    }
    Ok(watch)
}

/// Asks for the topic's partitions every interval until the runtime drops the watch.
fn discover(consumer: BaseConsumer<Logged>, spec: &Spec, watch: &Weak<TopicWatch>) {
    let interval = Duration::from_millis(spec.discovery_interval_ms);
    let step = Duration::from_millis(100).min(interval);
    loop {
        let mut waited = Duration::ZERO;
        while waited < interval {
            std::thread::sleep(step);
            waited += step;
            if watch.strong_count() == 0 {
                return;
            }
        }
        let Some(w) = watch.upgrade() else {
            return;
        };
        match partition_count(&consumer, spec, Duration::from_secs(10)) {
            Ok(n) if n > w.partitions() => {
                tracing::info!(topic = %spec.topic, partitions = n, "kafka topic has new partitions");
                w.partitions.store(n, Ordering::Release);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(topic = %spec.topic, error = %e, "partition discovery failed")
            }
        }
    }
}

/// A group source's state topic: made (compacted, as many partitions as the input) when
/// it does not exist; refused when it has fewer partitions than the input.
fn state_topic(
    consumer: &BaseConsumer<Logged>,
    spec: &Spec,
    input_partitions: u32,
) -> std::result::Result<(), String> {
    let mut state = spec.clone();
    state.topic = spec.state_topic.clone();
    match partition_count(consumer, &state, START_TIMEOUT) {
        Ok(n) if n >= input_partitions => return Ok(()),
        Ok(n) => {
            return Err(format!(
                "state topic {:?} has {n} partitions but {:?} has {input_partitions}: a \
                 partition's state lives in the state partition of the same number",
                spec.state_topic, spec.topic
            ));
        }
        Err(e) if !e.contains("does not exist") => return Err(e),
        Err(_) => {}
    }
    let admin: rdkafka::admin::AdminClient<Logged> =
        client_config(&spec.bootstrap, &spec.properties, &[])
            .create_with_context(Logged)
            .map_err(|e| format!("kafka admin client: {}", describe(&e)))?;
    let partitions = i32::try_from(input_partitions).map_err(|e| e.to_string())?;
    let topic = rdkafka::admin::NewTopic::new(
        &spec.state_topic,
        partitions,
        rdkafka::admin::TopicReplication::Fixed(-1),
    )
    .set("cleanup.policy", "compact");
    let options = rdkafka::admin::AdminOptions::new().operation_timeout(Some(START_TIMEOUT));
    let results =
        futures_lite::future::block_on(admin.create_topics([&topic], &options)).map_err(|e| {
            format!(
                "creating state topic {:?}: {}",
                spec.state_topic,
                describe(&e)
            )
        })?;
    for r in results {
        match r {
            Ok(_) => {
                tracing::info!(topic = %spec.state_topic, partitions, "created the state topic");
            }
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(format!("creating state topic {name:?}: {code}")),
        }
    }
    Ok(())
}
