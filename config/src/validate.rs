//! Turns the document as written into a [`Config`], or the first precise [`Problem`].

use std::collections::HashSet;
use std::path::PathBuf;

use crate::error::Problem;
use crate::model::*;
use crate::raw::*;

type Checked<T> = std::result::Result<T, Problem>;

fn positive(key: &str, value: i64) -> Checked<u64> {
    if value > 0 {
        Ok(value as u64)
    } else {
        Err(Problem::new(key, format!("must be > 0 (got {value})")))
    }
}

fn non_negative(key: &str, value: i64) -> Checked<u64> {
    u64::try_from(value).map_err(|_| Problem::new(key, format!("must be >= 0 (got {value})")))
}

/// The largest event time, window length, gap, lateness or delay, in ms (2^53, about
/// 285,000 years): event times stay within `±MAX_MS` and every sum the engine forms of a
/// time and a few durations (a window's end plus its lateness, say) fits an `i64`.
pub const MAX_MS: i64 = 1 << 53;

/// A duration in ms: `0..=MAX_MS`.
fn duration(key: &str, value: i64) -> Checked<u64> {
    let ms = non_negative(key, value)?;
    if value > MAX_MS {
        return Err(Problem::new(
            key,
            format!("must be at most {MAX_MS} ms, 2^53 (got {value})"),
        ));
    }
    Ok(ms)
}

/// A duration in ms that must be > 0: `1..=MAX_MS`.
fn positive_duration(key: &str, value: i64) -> Checked<u64> {
    positive(key, value)?;
    duration(key, value)
}

/// At most `max` (a count that sizes memory).
fn at_most(key: &str, value: u64, max: u64) -> Checked<u64> {
    if value > max {
        return Err(Problem::new(
            key,
            format!("must be at most {max} (got {value})"),
        ));
    }
    Ok(value)
}

fn seconds_to_ms(key: &str, seconds: f64) -> Checked<u64> {
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(Problem::new(
            key,
            format!("must be a number >= 0 (got {seconds})"),
        ));
    }
    if seconds > 1e9 {
        return Err(Problem::new(key, "is too large"));
    }
    Ok((seconds * 1000.0).round() as u64)
}

fn not_allowed(key: String, kind: &str) -> Problem {
    Problem::new(key, format!("is not an option of a {kind}"))
}

/// Validates a whole document.
pub(crate) fn validate(raw: RawConfig) -> Checked<Config> {
    if raw.app_name.trim().is_empty() {
        return Err(Problem::new("app_name", "must not be empty"));
    }
    if raw.data_dir.is_empty() {
        return Err(Problem::new("data_dir", "must not be empty"));
    }
    let runtime = runtime(&raw.runtime)?;
    let processing = processing(&raw.processing)?;
    let watermarks = Watermarks {
        delay_ms: seconds_to_ms("watermarks.delay_seconds", raw.watermarks.delay_seconds)?,
        idle_timeout_ms: seconds_to_ms(
            "watermarks.idle_timeout_seconds",
            raw.watermarks.idle_timeout_seconds,
        )?,
        max_idle_lag_ms: raw
            .watermarks
            .max_idle_lag_seconds
            .map(|s| seconds_to_ms("watermarks.max_idle_lag_seconds", s))
            .transpose()?,
        max_drift_ms: seconds_to_ms(
            "watermarks.max_drift_seconds",
            raw.watermarks.max_drift_seconds,
        )?,
        max_future_ms: seconds_to_ms(
            "watermarks.max_future_seconds",
            raw.watermarks.max_future_seconds,
        )?,
    };
    let storage = storage(&raw.storage)?;
    let admin = admin(&raw.admin)?;
    if raw.pipelines.is_empty() {
        return Err(Problem::new(
            "pipelines",
            "at least one [[pipelines]] entry is needed",
        ));
    }
    let mut ids = HashSet::new();
    let mut pipelines = Vec::with_capacity(raw.pipelines.len());
    for (i, p) in raw.pipelines.into_iter().enumerate() {
        let at = format!("pipelines[{i}]");
        let pipeline = pipeline(&at, p, &watermarks)?;
        if !ids.insert(pipeline.id.clone()) {
            return Err(Problem::new(
                format!("{at}.id"),
                format!("duplicate pipeline id {:?}", pipeline.id),
            ));
        }
        pipelines.push(pipeline);
    }
    let mut binds = HashSet::new();
    for (i, p) in pipelines.iter().enumerate() {
        if let Source::Tcp(tcp) = &p.source
            && !binds.insert(tcp.bind.clone())
        {
            return Err(Problem::new(
                format!("pipelines[{i}].source.bind"),
                format!("{} is already bound by another pipeline", tcp.bind),
            ));
        }
    }
    for (i, p) in pipelines.iter().enumerate() {
        if let Source::Tcp(tcp) = &p.source {
            let same = |addr: &str| {
                admin.enabled
                    && addr.parse::<std::net::SocketAddr>().ok()
                        == tcp.bind.parse::<std::net::SocketAddr>().ok()
                    && !addr.ends_with(":0")
            };
            for (key, addr) in [
                ("admin.http", &admin.http),
                ("admin.metrics", &admin.metrics),
            ] {
                if same(addr) {
                    return Err(Problem::new(
                        format!("pipelines[{i}].source.bind"),
                        format!("{} is already {key}", tcp.bind),
                    ));
                }
            }
        }
    }
    kafka_defaults(&raw.app_name, &processing, &mut pipelines)?;
    let instance = match raw.instance {
        None => raw.app_name.clone(),
        Some(i) if i.trim().is_empty() => {
            return Err(Problem::new("instance", "must not be empty"));
        }
        Some(i) => i,
    };
    let data_dir = PathBuf::from(raw.data_dir);
    let cwd = std::env::current_dir().unwrap_or_default();
    crate::paths::check_distinct_files(&pipelines, &data_dir, &cwd)?;
    crate::paths::check_kinds(&pipelines, &data_dir, &cwd)?;
    Ok(Config {
        app_name: raw.app_name,
        instance,
        data_dir,
        debug: raw.debug,
        runtime,
        processing,
        watermarks,
        storage,
        admin,
        pipelines,
    })
}

fn core_id(key: &str, value: i64) -> Checked<usize> {
    usize::try_from(value)
        .ok()
        .filter(|&c| c < 4096)
        .ok_or_else(|| Problem::new(key, format!("{value} is not a CPU core number")))
}

/// The cores this process may run on (its affinity mask), if the system says.
fn host_cores() -> Option<Vec<usize>> {
    let mut cores: Vec<usize> = core_affinity::get_core_ids()?
        .into_iter()
        .map(|c| c.id)
        .collect();
    cores.sort_unstable();
    (!cores.is_empty()).then_some(cores)
}

/// What only the host that runs the config can tell: every core of the core map and
/// the admin core is one this process may run on.
pub(crate) fn check_host(config: &Config) -> Checked<()> {
    let Some(host) = host_cores() else {
        return Ok(());
    };
    let listed = config.runtime.cores.iter().flatten().enumerate();
    let keys = listed
        .map(|(i, &c)| (format!("runtime.cores[{i}]"), c))
        .chain(
            config
                .runtime
                .admin_core
                .map(|c| ("runtime.admin_core".to_owned(), c)),
        );
    for (key, core) in keys {
        if !host.contains(&core) {
            return Err(Problem::new(
                key,
                format!("core {core} is not one this process may run on (cores {host:?})"),
            ));
        }
    }
    Ok(())
}

fn runtime(raw: &RawRuntime) -> Checked<Runtime> {
    let cores = match &raw.cores {
        None => None,
        Some(list) => {
            if list.is_empty() {
                return Err(Problem::new("runtime.cores", "must list at least one core"));
            }
            let mut seen = HashSet::new();
            let mut cores = Vec::with_capacity(list.len());
            for (i, &c) in list.iter().enumerate() {
                let core = core_id(&format!("runtime.cores[{i}]"), c)?;
                if !seen.insert(core) {
                    return Err(Problem::new(
                        format!("runtime.cores[{i}]"),
                        format!("core {core} is listed twice: one shard per core"),
                    ));
                }
                cores.push(core);
            }
            Some(cores)
        }
    };
    let admin_core = raw
        .admin_core
        .map(|c| core_id("runtime.admin_core", c))
        .transpose()?;
    Ok(Runtime { cores, admin_core })
}

/// The largest `processing.batch_size`, in events.
pub(crate) const MAX_BATCH: u64 = 1 << 16;
/// The largest `processing.queue_size`, in events.
pub(crate) const MAX_QUEUE: u64 = 1 << 24;
/// The most batch slots of all cross-shard queues together.
pub(crate) const MAX_QUEUE_SLOTS: u64 = 1 << 24;

fn processing(raw: &RawProcessing) -> Checked<Processing> {
    let parallelism = positive("processing.parallelism", raw.parallelism)?;
    if parallelism > 1024 {
        return Err(Problem::new(
            "processing.parallelism",
            "must be at most 1024",
        ));
    }
    let key_groups = positive("processing.key_groups", raw.key_groups)?;
    if key_groups > 1 << 20 {
        return Err(Problem::new(
            "processing.key_groups",
            "must be at most 1048576",
        ));
    }
    if key_groups < parallelism {
        return Err(Problem::new(
            "processing.key_groups",
            "must be at least processing.parallelism",
        ));
    }
    let batch_size = at_most(
        "processing.batch_size",
        positive("processing.batch_size", raw.batch_size)?,
        MAX_BATCH,
    )? as usize;
    let queue_size = at_most(
        "processing.queue_size",
        positive("processing.queue_size", raw.queue_size)?,
        MAX_QUEUE,
    )? as usize;
    if queue_size < batch_size {
        return Err(Problem::new(
            "processing.queue_size",
            format!("must be at least processing.batch_size ({batch_size})"),
        ));
    }
    // Each of the parallelism² queues holds queue_size / batch_size batch slots, made
    // when the queue is.
    let slots = parallelism * parallelism * (queue_size / batch_size).max(2) as u64;
    if slots > MAX_QUEUE_SLOTS {
        return Err(Problem::new(
            "processing.queue_size",
            format!(
                "parallelism² × queue_size / batch_size is {slots} batch slots, more than \
                 {MAX_QUEUE_SLOTS}: lower queue_size or raise batch_size"
            ),
        ));
    }
    Ok(Processing {
        parallelism: parallelism as usize,
        queue_size,
        batch_size,
        checkpoint_interval_secs: seconds_to_ms(
            "processing.checkpoint_interval",
            raw.checkpoint_interval,
        )? as f64
            / 1000.0,
        key_groups: key_groups as u32,
        batch_linger_ms: non_negative("processing.batch_linger_ms", raw.batch_linger_ms)?,
        shutdown_timeout: match seconds_to_ms("processing.shutdown_timeout", raw.shutdown_timeout)?
        {
            0 => return Err(Problem::new("processing.shutdown_timeout", "must be > 0")),
            ms => std::time::Duration::from_millis(ms),
        },
    })
}

fn storage(raw: &RawStorage) -> Checked<Storage> {
    let segment_bytes = positive("storage.segment_bytes", raw.segment_bytes)?;
    if segment_bytes < 64 * 1024 {
        return Err(Problem::new(
            "storage.segment_bytes",
            "must be at least 65536",
        ));
    }
    let fsync = match raw.fsync.as_str() {
        "never" => Fsync::Never,
        "group" => Fsync::Group,
        "always" => Fsync::Always,
        other => {
            return Err(Problem::new(
                "storage.fsync",
                format!("must be \"never\", \"group\" or \"always\" (got {other:?})"),
            ));
        }
    };
    Ok(Storage {
        segment_bytes,
        fsync,
        retain_checkpoints: positive("storage.retain_checkpoints", raw.retain_checkpoints)?
            as usize,
        spare_segments: usize::try_from(non_negative(
            "storage.spare_segments",
            raw.spare_segments,
        )?)
        .map_err(|_| Problem::new("storage.spare_segments", "is too large"))?,
    })
}

fn address(key: &str, value: &str) -> Checked<String> {
    value
        .parse::<std::net::SocketAddr>()
        .map(|_| value.to_owned())
        .map_err(|_| Problem::new(key, format!("{value:?} is not an IP:PORT address")))
}

fn admin(raw: &RawAdmin) -> Checked<Admin> {
    Ok(Admin {
        enabled: raw.enabled,
        http: address("admin.http", &raw.http)?,
        metrics: address("admin.metrics", &raw.metrics)?,
        token: (!raw.token.is_empty()).then(|| raw.token.clone()),
    })
}

fn pipeline(at: &str, raw: RawPipeline, defaults: &Watermarks) -> Checked<Pipeline> {
    let id = raw.id;
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    {
        return Err(Problem::new(
            format!("{at}.id"),
            "must be 1 to 64 characters of letters, digits, '_', '-' or '.'",
        ));
    }
    let source = source(&format!("{at}.source"), &raw.source)?;
    let event = event(&format!("{at}.event"), raw.event.unwrap_or_default())?;
    let window = window(&format!("{at}.window"), &raw.window)?;
    if raw.aggregates.is_empty() {
        return Err(Problem::new(
            format!("{at}.aggregates"),
            "must name at least one aggregate",
        ));
    }
    let mut aggregates = Vec::with_capacity(raw.aggregates.len());
    for (i, name) in raw.aggregates.iter().enumerate() {
        let agg = Aggregate::parse(name).ok_or_else(|| {
            Problem::new(
                format!("{at}.aggregates[{i}]"),
                format!(
                    "unknown aggregate {name:?} (expected count, sum, min, max, avg, p50, p90, p95, p99 or p999)"
                ),
            )
        })?;
        if aggregates.contains(&agg) {
            return Err(Problem::new(
                format!("{at}.aggregates[{i}]"),
                format!("{name:?} is listed twice"),
            ));
        }
        aggregates.push(agg);
    }
    if raw.sinks.is_empty() {
        return Err(Problem::new(
            format!("{at}.sinks"),
            "must list at least one sink",
        ));
    }
    let sinks = raw
        .sinks
        .iter()
        .enumerate()
        .map(|(i, s)| sink(&format!("{at}.sinks[{i}]"), s))
        .collect::<Checked<Vec<_>>>()?;
    let late_sink = raw
        .late_sink
        .as_ref()
        .map(|s| sink(&format!("{at}.late_sink"), s))
        .transpose()?;
    let mut watermark = defaults.clone();
    if let Some(w) = &raw.watermark {
        if let Some(d) = w.delay_ms {
            watermark.delay_ms = duration(&format!("{at}.watermark.delay_ms"), d)?;
        }
        if let Some(t) = w.idle_timeout_ms {
            watermark.idle_timeout_ms = duration(&format!("{at}.watermark.idle_timeout_ms"), t)?;
        }
        if let Some(d) = w.max_drift_ms {
            watermark.max_drift_ms = duration(&format!("{at}.watermark.max_drift_ms"), d)?;
        }
        if let Some(f) = w.max_future_ms {
            watermark.max_future_ms = duration(&format!("{at}.watermark.max_future_ms"), f)?;
        }
        if let Some(l) = w.max_idle_lag_ms {
            watermark.max_idle_lag_ms =
                Some(duration(&format!("{at}.watermark.max_idle_lag_ms"), l)?);
        }
    }
    let percentile_precision = match raw.percentile_precision {
        None => 3,
        Some(p @ 1..=5) => p as u8,
        Some(p) => {
            return Err(Problem::new(
                format!("{at}.percentile_precision"),
                format!("must be 1 to 5 significant digits (got {p})"),
            ));
        }
    };
    Ok(Pipeline {
        id,
        source,
        event,
        window,
        aggregates,
        sinks,
        late_sink,
        watermark,
        percentile_precision,
    })
}

fn event(at: &str, raw: RawEvent) -> Checked<EventFields> {
    for (name, value) in [
        ("key", &raw.key),
        ("time", &raw.time),
        ("value", &raw.value),
    ] {
        if value.is_empty() || value.split('.').any(str::is_empty) {
            return Err(Problem::new(
                format!("{at}.{name}"),
                format!("{value:?} is not a field name or dotted path"),
            ));
        }
    }
    Ok(EventFields {
        key: raw.key,
        time: if raw.time == "processing" {
            TimeField::Processing
        } else {
            TimeField::Field(raw.time)
        },
        value: raw.value,
    })
}

fn window(at: &str, raw: &RawWindow) -> Checked<Window> {
    let allowed_lateness_ms = duration(
        &format!("{at}.allowed_lateness_ms"),
        raw.allowed_lateness_ms,
    )?;
    let required = |name: &str, v: Option<i64>| -> Checked<u64> {
        let key = format!("{at}.{name}");
        match v {
            None => Err(Problem::new(
                key,
                format!("is required for a {} window", raw.kind),
            )),
            Some(v) => positive_duration(&key, v),
        }
    };
    let forbid = |name: &str, v: Option<i64>| -> Checked<()> {
        match v {
            Some(_) => Err(not_allowed(
                format!("{at}.{name}"),
                &format!("{} window", raw.kind),
            )),
            None => Ok(()),
        }
    };
    let kind = match raw.kind.as_str() {
        "tumbling" => {
            forbid("slide_ms", raw.slide_ms)?;
            forbid("gap_ms", raw.gap_ms)?;
            WindowKind::Tumbling {
                size_ms: required("size_ms", raw.size_ms)?,
            }
        }
        "sliding" => {
            forbid("gap_ms", raw.gap_ms)?;
            let size_ms = required("size_ms", raw.size_ms)?;
            let slide_ms = required("slide_ms", raw.slide_ms)?;
            if slide_ms > size_ms {
                return Err(Problem::new(
                    format!("{at}.slide_ms"),
                    format!("must be <= size_ms ({size_ms})"),
                ));
            }
            if size_ms % slide_ms != 0 {
                return Err(Problem::new(
                    format!("{at}.slide_ms"),
                    format!("must divide size_ms ({size_ms})"),
                ));
            }
            WindowKind::Sliding { size_ms, slide_ms }
        }
        "session" => {
            forbid("size_ms", raw.size_ms)?;
            forbid("slide_ms", raw.slide_ms)?;
            WindowKind::Session {
                gap_ms: required("gap_ms", raw.gap_ms)?,
            }
        }
        other => {
            return Err(Problem::new(
                format!("{at}.type"),
                format!("unknown window type {other:?} (expected tumbling, sliding or session)"),
            ));
        }
    };
    Ok(Window {
        kind,
        allowed_lateness_ms,
    })
}

fn source(at: &str, raw: &RawSource) -> Checked<Source> {
    let kind = raw.kind.as_str();
    let generator_keys = [
        ("keys", raw.keys.is_some()),
        ("rate", raw.rate.is_some()),
        ("total", raw.total.is_some()),
        ("disorder_ms", raw.disorder_ms.is_some()),
        ("partitions", raw.partitions.is_some()),
        ("seed", raw.seed.is_some()),
        ("start_ms", raw.start_ms.is_some()),
        ("step_ms", raw.step_ms.is_some()),
    ];
    let file_keys = [
        ("path", raw.path.is_some()),
        ("format", raw.format.is_some()),
        ("follow", raw.follow.is_some()),
    ];
    let tcp_keys = [
        ("bind", raw.bind.is_some()),
        ("max_line_bytes", raw.max_line_bytes.is_some()),
        ("max_connections", raw.max_connections.is_some()),
    ];
    let kafka_keys = [
        ("bootstrap", raw.bootstrap.is_some()),
        ("topic", raw.topic.is_some()),
        ("group", raw.group.is_some()),
        ("start", raw.start.is_some()),
        ("event_time", raw.event_time.is_some()),
        ("bounded", raw.bounded.is_some()),
        ("discovery_interval_ms", raw.discovery_interval_ms.is_some()),
        ("assignment", raw.assignment.is_some()),
        ("state_topic", raw.state_topic.is_some()),
        ("properties", raw.properties.is_some()),
    ];
    let custom_keys = [
        ("name", raw.name.is_some()),
        ("options", raw.options.is_some()),
    ];
    let forbid = |groups: &[&[(&str, bool)]]| -> Checked<()> {
        for group in groups {
            if let Some((name, _)) = group.iter().find(|(_, set)| *set) {
                return Err(not_allowed(
                    format!("{at}.{name}"),
                    &format!("{kind} source"),
                ));
            }
        }
        Ok(())
    };
    match kind {
        "generator" => {
            forbid(&[&file_keys, &tcp_keys, &kafka_keys, &custom_keys])?;
            let rate = raw.rate.unwrap_or(0.0);
            if !rate.is_finite() || rate < 0.0 {
                return Err(Problem::new(format!("{at}.rate"), "must be a number >= 0"));
            }
            let partitions = positive(&format!("{at}.partitions"), raw.partitions.unwrap_or(1))?;
            if partitions > 65_536 {
                return Err(Problem::new(
                    format!("{at}.partitions"),
                    "must be at most 65536",
                ));
            }
            Ok(Source::Generator(GeneratorSource {
                keys: positive(&format!("{at}.keys"), raw.keys.unwrap_or(1000))?,
                rate,
                total: non_negative(&format!("{at}.total"), raw.total.unwrap_or(0))?,
                disorder_ms: duration(&format!("{at}.disorder_ms"), raw.disorder_ms.unwrap_or(0))?,
                partitions: partitions as u32,
                seed: raw.seed.unwrap_or(42) as u64,
                start_ms: match raw.start_ms {
                    Some(t) if !(-MAX_MS..=MAX_MS).contains(&t) => {
                        return Err(Problem::new(
                            format!("{at}.start_ms"),
                            format!("must be within ±{MAX_MS} ms, ±2^53 (got {t})"),
                        ));
                    }
                    t => t,
                },
                step_ms: raw
                    .step_ms
                    .map(|s| duration(&format!("{at}.step_ms"), s))
                    .transpose()?,
            }))
        }
        "file" => {
            forbid(&[&generator_keys, &tcp_keys, &kafka_keys, &custom_keys])?;
            let path = raw.path.clone().filter(|p| !p.is_empty()).ok_or_else(|| {
                Problem::new(format!("{at}.path"), "is required for a file source")
            })?;
            let format = match raw.format.as_deref() {
                None | Some("jsonl") | Some("json") => FileFormat::Jsonl,
                Some("csv") => FileFormat::Csv,
                Some(other) => {
                    return Err(Problem::new(
                        format!("{at}.format"),
                        format!("must be \"jsonl\" or \"csv\" (got {other:?})"),
                    ));
                }
            };
            Ok(Source::File(FileSource {
                path,
                format,
                follow: raw.follow.unwrap_or(false),
            }))
        }
        "tcp" => {
            forbid(&[&generator_keys, &file_keys, &kafka_keys, &custom_keys])?;
            let bind = raw.bind.as_deref().ok_or_else(|| {
                Problem::new(format!("{at}.bind"), "is required for a tcp source")
            })?;
            Ok(Source::Tcp(TcpSource {
                bind: address(&format!("{at}.bind"), bind)?,
                max_line_bytes: positive(
                    &format!("{at}.max_line_bytes"),
                    raw.max_line_bytes.unwrap_or(1 << 20),
                )? as usize,
                max_connections: positive(
                    &format!("{at}.max_connections"),
                    raw.max_connections.unwrap_or(1024),
                )? as usize,
            }))
        }
        "kafka" => {
            forbid(&[&generator_keys, &file_keys, &tcp_keys, &custom_keys])?;
            let start = match raw.start.as_deref() {
                None | Some("earliest") => KafkaStart::Earliest,
                Some("latest") => KafkaStart::Latest,
                Some(other) => {
                    return Err(Problem::new(
                        format!("{at}.start"),
                        format!("must be \"earliest\" or \"latest\" (got {other:?})"),
                    ));
                }
            };
            let event_time = match raw.event_time.as_deref() {
                None | Some("field") => KafkaEventTime::Field,
                Some("kafka") => KafkaEventTime::Record,
                Some(other) => {
                    return Err(Problem::new(
                        format!("{at}.event_time"),
                        format!("must be \"field\" or \"kafka\" (got {other:?})"),
                    ));
                }
            };
            let assignment = match raw.assignment.as_deref() {
                None | Some("manual") => KafkaAssignment::Manual,
                Some("group") => KafkaAssignment::Group,
                Some(other) => {
                    return Err(Problem::new(
                        format!("{at}.assignment"),
                        format!("must be \"manual\" or \"group\" (got {other:?})"),
                    ));
                }
            };
            let state_topic = match raw.state_topic.as_deref() {
                None => String::new(),
                Some(_) if assignment == KafkaAssignment::Manual => {
                    return Err(Problem::new(
                        format!("{at}.state_topic"),
                        "is only for assignment = \"group\" (manual assignment keeps state in data_dir)",
                    ));
                }
                Some(t) => kafka_topic(&format!("{at}.state_topic"), Some(t))
                    .map_err(|p| Problem::new(format!("{at}.state_topic"), p.message))?,
            };
            if assignment == KafkaAssignment::Group && raw.bounded == Some(true) {
                return Err(Problem::new(
                    format!("{at}.bounded"),
                    "cannot be true with assignment = \"group\": the group moves partitions \
                     between instances, so no instance knows when the topic is read to its end",
                ));
            }
            Ok(Source::Kafka(KafkaSource {
                assignment,
                state_topic,
                bootstrap: kafka_bootstrap(at, raw.bootstrap.as_deref())?,
                topic: kafka_topic(at, raw.topic.as_deref())?,
                group: match raw.group.as_deref() {
                    None => String::new(),
                    Some(g) if g.trim().is_empty() => {
                        return Err(Problem::new(format!("{at}.group"), "must not be empty"));
                    }
                    Some(g) => g.to_owned(),
                },
                start,
                event_time,
                bounded: raw.bounded.unwrap_or(false),
                discovery_interval_ms: non_negative(
                    &format!("{at}.discovery_interval_ms"),
                    raw.discovery_interval_ms.unwrap_or(10_000),
                )?,
                properties: kafka_properties(at, raw.properties.as_ref(), KAFKA_SOURCE_OWNED)?,
            }))
        }
        "custom" => {
            let only_partitions: Vec<(&str, bool)> = generator_keys
                .iter()
                .copied()
                .filter(|(k, _)| *k != "partitions")
                .collect();
            forbid(&[&only_partitions, &file_keys, &tcp_keys, &kafka_keys])?;
            let name = raw.name.clone().filter(|n| !n.is_empty()).ok_or_else(|| {
                Problem::new(format!("{at}.name"), "is required for a custom source")
            })?;
            let partitions = positive(&format!("{at}.partitions"), raw.partitions.unwrap_or(1))?;
            if partitions > 65_536 {
                return Err(Problem::new(
                    format!("{at}.partitions"),
                    "must be at most 65536",
                ));
            }
            Ok(Source::Custom(CustomSource {
                name,
                partitions: partitions as u32,
                options: raw.options.clone().unwrap_or_default(),
            }))
        }
        other => Err(Problem::new(
            format!("{at}.type"),
            format!(
                "unknown source type {other:?} (expected generator, file, tcp, kafka or custom)"
            ),
        )),
    }
}

fn sink(at: &str, raw: &RawSink) -> Checked<Sink> {
    let kind = raw.kind.as_str();
    let forbid_kafka = |kind: &str| -> Checked<()> {
        for (name, set) in [
            ("bootstrap", raw.bootstrap.is_some()),
            ("topic", raw.topic.is_some()),
            (
                "transaction_timeout_ms",
                raw.transaction_timeout_ms.is_some(),
            ),
            ("properties", raw.properties.is_some()),
        ] {
            if set {
                return Err(not_allowed(format!("{at}.{name}"), &format!("{kind} sink")));
            }
        }
        Ok(())
    };
    let forbid_all = || -> Checked<()> {
        for (name, set) in [
            ("path", raw.path.is_some()),
            ("delivery", raw.delivery.is_some()),
            ("delay_ms", raw.delay_ms.is_some()),
            ("name", raw.name.is_some()),
            ("options", raw.options.is_some()),
        ] {
            if set {
                return Err(not_allowed(format!("{at}.{name}"), &format!("{kind} sink")));
            }
        }
        forbid_kafka(kind)
    };
    let delivery = || -> Checked<Delivery> {
        match raw.delivery.as_deref() {
            None | Some("exactly_once") => Ok(Delivery::ExactlyOnce),
            Some("at_least_once") => Ok(Delivery::AtLeastOnce),
            Some(other) => Err(Problem::new(
                format!("{at}.delivery"),
                format!("must be \"exactly_once\" or \"at_least_once\" (got {other:?})"),
            )),
        }
    };
    match kind {
        "console" => forbid_all().map(|()| Sink::Console),
        "blackhole" => forbid_all().map(|()| Sink::Blackhole),
        "file" => {
            for (name, set) in [
                ("name", raw.name.is_some()),
                ("options", raw.options.is_some()),
            ] {
                if set {
                    return Err(not_allowed(format!("{at}.{name}"), "file sink"));
                }
            }
            forbid_kafka("file")?;
            let path =
                raw.path.clone().filter(|p| !p.is_empty()).ok_or_else(|| {
                    Problem::new(format!("{at}.path"), "is required for a file sink")
                })?;
            Ok(Sink::File {
                path,
                delivery: delivery()?,
                delay_ms: non_negative(&format!("{at}.delay_ms"), raw.delay_ms.unwrap_or(0))?,
            })
        }
        "custom" => {
            for (name, set) in [
                ("path", raw.path.is_some()),
                ("delivery", raw.delivery.is_some()),
                ("delay_ms", raw.delay_ms.is_some()),
            ] {
                if set {
                    return Err(not_allowed(format!("{at}.{name}"), "custom sink"));
                }
            }
            forbid_kafka("custom")?;
            let name = raw.name.clone().filter(|n| !n.is_empty()).ok_or_else(|| {
                Problem::new(format!("{at}.name"), "is required for a custom sink")
            })?;
            Ok(Sink::Custom {
                name,
                options: raw.options.clone().unwrap_or_default(),
            })
        }
        "kafka" => {
            for (name, set) in [
                ("path", raw.path.is_some()),
                ("delay_ms", raw.delay_ms.is_some()),
                ("name", raw.name.is_some()),
                ("options", raw.options.is_some()),
            ] {
                if set {
                    return Err(not_allowed(format!("{at}.{name}"), "kafka sink"));
                }
            }
            Ok(Sink::Kafka(KafkaSink {
                bootstrap: kafka_bootstrap(at, raw.bootstrap.as_deref())?,
                topic: kafka_topic(at, raw.topic.as_deref())?,
                delivery: delivery()?,
                // 0 = derived from the checkpoint interval in `validate`.
                transaction_timeout_ms: match raw.transaction_timeout_ms {
                    None => 0,
                    Some(t) => positive(&format!("{at}.transaction_timeout_ms"), t)?,
                },
                properties: kafka_properties(at, raw.properties.as_ref(), KAFKA_SINK_OWNED)?,
            }))
        }
        other => Err(Problem::new(
            format!("{at}.type"),
            format!(
                "unknown sink type {other:?} (expected console, file, kafka, blackhole or custom)"
            ),
        )),
    }
}

/// librdkafka settings a Kafka source sets itself: a `properties` entry may not change them.
const KAFKA_SOURCE_OWNED: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.partition.eof",
    "isolation.level",
];

/// librdkafka settings a Kafka sink sets itself.
const KAFKA_SINK_OWNED: &[&str] = &[
    "bootstrap.servers",
    "transactional.id",
    "enable.idempotence",
    "transaction.timeout.ms",
];

fn kafka_bootstrap(at: &str, raw: Option<&str>) -> Checked<String> {
    let key = format!("{at}.bootstrap");
    let text = raw
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .ok_or_else(|| Problem::new(&key, "is required for kafka (host:port of a broker)"))?;
    for broker in text.split(',').map(str::trim) {
        let port = broker
            .rsplit_once(':')
            .map(|(host, port)| (host, port.parse::<u16>()));
        match port {
            Some((host, Ok(p))) if !host.is_empty() && p > 0 => {}
            _ => {
                return Err(Problem::new(
                    &key,
                    format!("{broker:?} is not host:port (a list is comma-separated)"),
                ));
            }
        }
    }
    Ok(text.to_owned())
}

/// Kafka's own rule for topic names: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn kafka_topic(at: &str, raw: Option<&str>) -> Checked<String> {
    let key = format!("{at}.topic");
    let topic = raw.ok_or_else(|| Problem::new(&key, "is required for kafka"))?;
    let legal = topic
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if topic.is_empty() || topic.len() > 249 || !legal || topic == "." || topic == ".." {
        return Err(Problem::new(
            &key,
            format!(
                "{topic:?} is not a Kafka topic name (1 to 249 letters, digits, '.', '_' or '-')"
            ),
        ));
    }
    Ok(topic.to_owned())
}

fn kafka_properties(
    at: &str,
    raw: Option<&toml::Table>,
    owned: &[&str],
) -> Checked<KafkaProperties> {
    let mut out = KafkaProperties::new();
    for (name, value) in raw.into_iter().flatten() {
        let key = format!("{at}.properties.{name}");
        if owned.contains(&name.as_str()) {
            return Err(Problem::new(
                key,
                "is set by weir itself (use the kafka source or sink keys instead)",
            ));
        }
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            _ => {
                return Err(Problem::new(
                    key,
                    "must be a string, number or boolean (librdkafka settings are text)",
                ));
            }
        };
        out.insert(name.clone(), text);
    }
    Ok(out)
}

/// A pipeline whose Kafka source is assigned by the group commits its state, offsets and
/// output in one Kafka transaction: its one sink must be an exactly-once Kafka sink on
/// the source's cluster, and it may have no late-events sink (which could not be part of
/// that transaction).
fn group_sinks(i: usize, p: &Pipeline) -> Checked<()> {
    let Source::Kafka(source) = &p.source else {
        return Ok(());
    };
    let why = "a pipeline with assignment = \"group\" writes its results, state and offsets in \
               one Kafka transaction: it needs exactly one sink, of type kafka, exactly once, on \
               the source's bootstrap";
    match p.sinks.as_slice() {
        [Sink::Kafka(k)]
            if k.delivery == Delivery::ExactlyOnce && k.bootstrap == source.bootstrap => {}
        [Sink::Kafka(_)] => return Err(Problem::new(format!("pipelines[{i}].sinks[0]"), why)),
        _ => return Err(Problem::new(format!("pipelines[{i}].sinks"), why)),
    }
    if p.late_sink.is_some() {
        return Err(Problem::new(
            format!("pipelines[{i}].late_sink"),
            "is not possible with assignment = \"group\" (late events are counted, and \
             dropped unless allowed lateness keeps their window)",
        ));
    }
    Ok(())
}

/// The Kafka keys that depend on the rest of the config: a source's default group, and
/// a sink's transaction timeout, which must outlast a checkpoint interval (a
/// transaction stays open from one checkpoint to the commit after the next).
fn kafka_defaults(
    app_name: &str,
    processing: &Processing,
    pipelines: &mut [Pipeline],
) -> Checked<()> {
    let interval_ms = (processing.checkpoint_interval_secs * 1000.0).ceil() as u64;
    for (i, p) in pipelines.iter_mut().enumerate() {
        if let Source::Kafka(k) = &mut p.source {
            if k.group.is_empty() {
                k.group = format!("{app_name}-{}", p.id);
            }
            if k.assignment == KafkaAssignment::Group {
                if k.state_topic.is_empty() {
                    k.state_topic = format!("{app_name}-{}-state", p.id);
                }
                group_sinks(i, p)?;
            }
        }
        let sinks = p
            .sinks
            .iter_mut()
            .enumerate()
            .map(|(j, s)| (format!("pipelines[{i}].sinks[{j}]"), s))
            .chain(
                p.late_sink
                    .as_mut()
                    .map(|s| (format!("pipelines[{i}].late_sink"), s)),
            );
        for (at, sink) in sinks {
            let Sink::Kafka(k) = sink else {
                continue;
            };
            if k.delivery == Delivery::AtLeastOnce {
                if k.transaction_timeout_ms == 0 {
                    k.transaction_timeout_ms = 60_000;
                }
                continue;
            }
            if interval_ms == 0 {
                return Err(Problem::new(
                    format!("{at}.delivery"),
                    "an exactly-once kafka sink commits at checkpoints: set \
                     processing.checkpoint_interval above 0",
                ));
            }
            if k.transaction_timeout_ms == 0 {
                k.transaction_timeout_ms = (4 * interval_ms).clamp(60_000, 900_000);
            }
            if k.transaction_timeout_ms <= interval_ms {
                return Err(Problem::new(
                    format!("{at}.transaction_timeout_ms"),
                    format!(
                        "must exceed the checkpoint interval ({interval_ms} ms): the broker \
                         aborts a transaction open longer than this, before weir commits it"
                    ),
                ));
            }
        }
    }
    Ok(())
}
