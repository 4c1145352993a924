//! The validated configuration: typed, with every default resolved.

use std::fmt;
use std::path::PathBuf;

/// A whole validated weir configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Name shown by the admin API.
    pub app_name: String,
    /// This process among the instances of the application (`--instance`; default the
    /// app name), shown by `/status`.
    pub instance: String,
    /// Where logs, checkpoints and dead letters live.
    pub data_dir: PathBuf,
    /// Verbose logging.
    pub debug: bool,
    /// The core map.
    pub runtime: Runtime,
    /// Parallelism, queues and checkpoints.
    pub processing: Processing,
    /// Default watermark behaviour of every pipeline.
    pub watermarks: Watermarks,
    /// The append log and checkpoint store.
    pub storage: Storage,
    /// The admin endpoints.
    pub admin: Admin,
    /// The pipelines, in the order written.
    pub pipelines: Vec<Pipeline>,
}

impl Config {
    /// The number of shards: one per listed core, or `processing.parallelism`.
    pub fn nr_shards(&self) -> usize {
        self.runtime
            .cores
            .as_ref()
            .map_or(self.processing.parallelism, Vec::len)
    }

    /// The core a shard is pinned to, if the core map pins it.
    pub fn shard_core(&self, shard: usize) -> Option<usize> {
        self.runtime
            .cores
            .as_ref()
            .and_then(|cores| cores.get(shard).copied())
    }

    /// Finds a pipeline by id.
    pub fn pipeline(&self, id: &str) -> Option<&Pipeline> {
        self.pipelines.iter().find(|p| p.id == id)
    }
}

/// `[runtime]`: where shards run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Runtime {
    /// One shard pinned to each listed core; `None` runs `parallelism` unpinned shards.
    pub cores: Option<Vec<usize>>,
    /// The core the admin thread is pinned to, if any.
    pub admin_core: Option<usize>,
}

/// `[processing]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Processing {
    /// Shards when no core map is given.
    pub parallelism: usize,
    /// Bound of each cross-shard queue, in events.
    pub queue_size: usize,
    /// Events per cross-shard batch.
    pub batch_size: usize,
    /// Seconds between periodic checkpoints; 0 disables them.
    pub checkpoint_interval_secs: f64,
    /// Number of key groups (the unit of state placement); fixed for the life of the state.
    pub key_groups: u32,
    /// A partly filled batch is sent after this many milliseconds.
    pub batch_linger_ms: u64,
    /// After SIGINT/SIGTERM, how long the shards may take to drain and take the final
    /// checkpoint before they are abandoned (exit status 1, the last complete checkpoint
    /// intact).
    pub shutdown_timeout: std::time::Duration,
}

/// `[watermarks]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermarks {
    /// Default bounded out-of-orderness, in ms.
    pub delay_ms: u64,
    /// A partition polled and silent this long is idle, in ms.
    pub idle_timeout_ms: u64,
    /// When every input is idle, let the watermark follow the wall clock minus this lag.
    pub max_idle_lag_ms: Option<u64>,
    /// Watermark alignment: a partition whose event time runs this far ahead of its
    /// pipeline's watermark is not read until the others catch up (at least
    /// `delay_ms + 1000`, so the slowest partition is never held).
    pub max_drift_ms: u64,
    /// Events whose time is more than this ahead of the wall clock when they are read
    /// are dead-lettered (`future_time`) and move no watermark; 0: no bound.
    pub max_future_ms: u64,
}

/// How the append log is flushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Never flush explicitly; the OS writes back.
    Never,
    /// Many appends share one flush.
    Group,
    /// Every append is flushed before it is acknowledged.
    Always,
}

impl fmt::Display for Fsync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fsync::Never => "never",
            Fsync::Group => "group",
            Fsync::Always => "always",
        })
    }
}

/// `[storage]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// Size of one append-log segment file.
    pub segment_bytes: u64,
    /// Flush policy.
    pub fsync: Fsync,
    /// Complete checkpoints kept.
    pub retain_checkpoints: usize,
    /// Spare segments each TCP-source append log keeps ready for reuse.
    pub spare_segments: usize,
}

/// `[admin]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// Whether the admin thread runs at all.
    pub enabled: bool,
    /// REST API address.
    pub http: String,
    /// Prometheus `/metrics` address.
    pub metrics: String,
    /// When set, POST endpoints need `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

/// One `[[pipelines]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// Unique id.
    pub id: String,
    /// Where events come from.
    pub source: Source,
    /// Which JSON fields hold key, time and value.
    pub event: EventFields,
    /// The window assigner.
    pub window: Window,
    /// Aggregates computed per window, in the order written.
    pub aggregates: Vec<Aggregate>,
    /// Result sinks.
    pub sinks: Vec<Sink>,
    /// Side output for events dropped as too late.
    pub late_sink: Option<Sink>,
    /// The watermark of this pipeline (defaults from `[watermarks]`).
    pub watermark: Watermarks,
    /// Significant digits of percentile histograms (1..=5).
    pub percentile_precision: u8,
}

/// The source of a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A deterministic event generator.
    Generator(GeneratorSource),
    /// JSON-lines or CSV files.
    File(FileSource),
    /// Newline-delimited JSON over TCP.
    Tcp(TcpSource),
    /// The partitions of a Kafka topic.
    Kafka(KafkaSource),
    /// A source registered by the program that embeds weir (see docs/EXTENDING.md).
    Custom(CustomSource),
}

/// Free-form options of a custom source or sink.
pub type Options = toml::Table;

/// `source = { type = "custom", name, partitions, options }`.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomSource {
    /// The name it was registered under.
    pub name: String,
    /// Partitions (partition `i` is read by shard `i mod shards`).
    pub partitions: u32,
    /// Its own options, passed through.
    pub options: Options,
}

impl Source {
    /// The `type` string of this source.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Generator(_) => "generator",
            Source::File(_) => "file",
            Source::Tcp(_) => "tcp",
            Source::Kafka(_) => "kafka",
            Source::Custom(_) => "custom",
        }
    }
}

/// `source = { type = "generator", ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorSource {
    /// Distinct keys.
    pub keys: u64,
    /// Events per second over all partitions; 0 = as fast as possible.
    pub rate: f64,
    /// Events over all partitions; 0 = endless.
    pub total: u64,
    /// Largest backwards jump of event time, in ms.
    pub disorder_ms: u64,
    /// Source partitions.
    pub partitions: u32,
    /// Seed of the deterministic sequence.
    pub seed: u64,
    /// Event time of the first event, ms since the epoch; `None` = the wall clock at start.
    pub start_ms: Option<i64>,
    /// Event time advance per event, in ms, counting the events of every partition
    /// (event `i` of partition `p` of `P` is number `i·P + p`); `None`: `1000 / rate`
    /// when `rate > 0` and `start_ms` is `None`, so that event time follows the wall
    /// clock, else 1.
    pub step_ms: Option<u64>,
}

/// Input format of a file source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header line.
    Csv,
}

/// `source = { type = "file", ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSource {
    /// A file, a glob or a folder.
    pub path: String,
    /// Line format.
    pub format: FileFormat,
    /// Keep reading lines appended later (never finishes).
    pub follow: bool,
}

/// `source = { type = "tcp", ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpSource {
    /// Address to listen on.
    pub bind: String,
    /// Longest accepted line.
    pub max_line_bytes: usize,
    /// Most concurrent connections.
    pub max_connections: usize,
}

/// Where a Kafka source starts reading a partition that no checkpoint covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaStart {
    /// The oldest record Kafka still holds.
    Earliest,
    /// The end of the partition when weir starts (partitions added later are read from
    /// their start, so nothing written to them is missed).
    Latest,
}

/// Who decides which partitions of a Kafka topic this instance reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaAssignment {
    /// This instance reads every partition (shard `p mod shards` reads partition `p`);
    /// offsets and window state live in weir's own checkpoints.
    Manual,
    /// Kafka's consumer-group protocol shares the partitions among every instance (and
    /// shard) of the group; a partition's state moves with it through the state topic,
    /// committed in the same transaction as its output and offsets (docs/SCALE_OUT.md).
    Group,
}

/// Where a Kafka source takes an event's time from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaEventTime {
    /// The `event.time` field of the record's JSON value.
    Field,
    /// The record's Kafka timestamp (create or log-append time, as the topic says).
    Record,
}

/// Settings passed through to librdkafka (`security.protocol`, `sasl.mechanisms`, …).
pub type KafkaProperties = std::collections::BTreeMap<String, String>;

/// `source = { type = "kafka", ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaSource {
    /// `host:port[,host:port…]` of the brokers.
    pub bootstrap: String,
    /// The topic read.
    pub topic: String,
    /// The consumer group that completed checkpoints' offsets are committed to (for
    /// monitoring: weir resumes from its own checkpoints); default `<app_name>-<id>`.
    pub group: String,
    /// Where partitions no checkpoint covers start.
    pub start: KafkaStart,
    /// Where event time comes from.
    pub event_time: KafkaEventTime,
    /// Read each partition to its end, then finish (a backfill); otherwise read forever.
    pub bounded: bool,
    /// How often the topic is asked for new partitions, in ms (0 = never).
    pub discovery_interval_ms: u64,
    /// Who assigns the partitions: weir (every one to this instance) or the group.
    pub assignment: KafkaAssignment,
    /// With group assignment: the compacted topic of the partitions' window state;
    /// default `<app_name>-<pipeline>-state`.
    pub state_topic: String,
    /// Passed through to librdkafka as they are.
    pub properties: KafkaProperties,
}

/// Where an event's time comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeField {
    /// A JSON field (dotted path) with integer ms or an RFC 3339 string.
    Field(String),
    /// The wall clock when the event is read.
    Processing,
}

/// `event = { key, time, value }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFields {
    /// Dotted path of the key.
    pub key: String,
    /// Event time.
    pub time: TimeField,
    /// Dotted path of the value.
    pub value: String,
}

/// Window kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// `[k·size, (k+1)·size)`.
    Tumbling {
        /// Window length in ms.
        size_ms: u64,
    },
    /// Length `size_ms`, a new one every `slide_ms`.
    Sliding {
        /// Window length in ms.
        size_ms: u64,
        /// Distance between window starts in ms.
        slide_ms: u64,
    },
    /// Per-key activity sessions closed by a gap.
    Session {
        /// Inactivity gap in ms.
        gap_ms: u64,
    },
}

/// A window spec with its allowed lateness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The assigner.
    pub kind: WindowKind,
    /// How long a fired window keeps its state for late events, in ms.
    pub allowed_lateness_ms: u64,
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            WindowKind::Tumbling { size_ms } => write!(f, "tumbling {size_ms} ms")?,
            WindowKind::Sliding { size_ms, slide_ms } => {
                write!(f, "sliding {size_ms} ms every {slide_ms} ms")?
            }
            WindowKind::Session { gap_ms } => write!(f, "session gap {gap_ms} ms")?,
        }
        write!(f, ", allowed lateness {} ms", self.allowed_lateness_ms)
    }
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregate {
    /// Number of events.
    Count,
    /// Sum of values.
    Sum,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Mean value.
    Avg,
    /// A percentile, in thousandths (p50 = 500, p999 = 999).
    Percentile(u16),
}

impl Aggregate {
    /// The name used in config and in results.
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Count => "count",
            Aggregate::Sum => "sum",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::Avg => "avg",
            Aggregate::Percentile(500) => "p50",
            Aggregate::Percentile(900) => "p90",
            Aggregate::Percentile(950) => "p95",
            Aggregate::Percentile(990) => "p99",
            Aggregate::Percentile(_) => "p999",
        }
    }

    /// Parses a config name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "count" => Aggregate::Count,
            "sum" => Aggregate::Sum,
            "min" => Aggregate::Min,
            "max" => Aggregate::Max,
            "avg" => Aggregate::Avg,
            "p50" => Aggregate::Percentile(500),
            "p90" => Aggregate::Percentile(900),
            "p95" => Aggregate::Percentile(950),
            "p99" => Aggregate::Percentile(990),
            "p999" => Aggregate::Percentile(999),
            _ => return None,
        })
    }

    /// Whether the aggregate reads the event value.
    pub fn needs_value(self) -> bool {
        self != Aggregate::Count
    }
}

/// Delivery guarantee of a file sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Only results of completed checkpoints ever reach the file.
    ExactlyOnce,
    /// Results are written at once; a restart may repeat some.
    AtLeastOnce,
}

/// A result sink.
#[derive(Debug, Clone, PartialEq)]
pub enum Sink {
    /// Standard output, at-least-once.
    Console,
    /// A JSON-lines file.
    File {
        /// Output file.
        path: String,
        /// Delivery guarantee.
        delivery: Delivery,
        /// Testing aid: pause this long after each write, to simulate a slow disk.
        delay_ms: u64,
    },
    /// Discards everything (benchmarks).
    Blackhole,
    /// A sink registered by the program that embeds weir (see docs/EXTENDING.md).
    Custom {
        /// The name it was registered under.
        name: String,
        /// Its own options, passed through.
        options: Options,
    },
    /// A Kafka topic: one record per result, keyed by the window key.
    Kafka(KafkaSink),
}

/// `{ type = "kafka", ... }` as a sink.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaSink {
    /// `host:port[,host:port…]` of the brokers.
    pub bootstrap: String,
    /// The topic written.
    pub topic: String,
    /// Exactly-once through Kafka transactions, or at-least-once.
    pub delivery: Delivery,
    /// `transaction.timeout.ms` of the transactional producers: longer than the
    /// checkpoint interval, or the broker aborts transactions before weir commits them.
    pub transaction_timeout_ms: u64,
    /// Passed through to librdkafka as they are.
    pub properties: KafkaProperties,
}

impl fmt::Display for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sink::Console => f.write_str("console"),
            Sink::Blackhole => f.write_str("blackhole"),
            Sink::Custom { name, .. } => write!(f, "custom {name}"),
            Sink::Kafka(k) => write!(
                f,
                "kafka {} at {} ({})",
                k.topic,
                k.bootstrap,
                match k.delivery {
                    Delivery::ExactlyOnce => "exactly once",
                    Delivery::AtLeastOnce => "at least once",
                }
            ),
            Sink::File { path, delivery, .. } => write!(
                f,
                "file {path} ({})",
                match delivery {
                    Delivery::ExactlyOnce => "exactly once",
                    Delivery::AtLeastOnce => "at least once",
                }
            ),
        }
    }
}
