//! `weir bench`: generator → pipeline → blackhole, in process, on the real runtime.
//!
//! The workload is the one weir is compared on: uniform keys, event time advancing 1 ms
//! per event with up to 100 ms of disorder, watermark delay 200 ms, count/sum/min/max.
//! Events come from the deterministic generator, whose keys are pre-built, so making an
//! event costs one random number and a key copy: well below the operator's cost.

use std::time::Instant;

use anyhow::Context;

/// Window kinds of the benchmark.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum BenchWindow {
    /// Tumbling 1 s.
    Tumbling,
    /// Sliding 10 s every 1 s.
    Sliding,
    /// Session, 500 ms gap.
    Session,
}

/// The options of `weir bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Shards.
    #[arg(long, default_value_t = 1)]
    shards: usize,
    /// Distinct keys.
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    /// Events to process.
    #[arg(long, default_value_t = 20_000_000)]
    events: u64,
    /// Window kind: tumbling 1 s, sliding 10 s every 1 s, session with a 500 ms gap.
    #[arg(long, value_enum, default_value = "tumbling")]
    window: BenchWindow,
    /// Override the window size (tumbling, sliding) or gap (session), in ms.
    #[arg(long)]
    window_ms: Option<u64>,
    /// Pin shard i to core i (when there are enough cores).
    #[arg(long)]
    pin: bool,
    /// Take a checkpoint every this many seconds (0 = only the final one).
    #[arg(long, default_value_t = 0.0)]
    checkpoint_interval: f64,
    /// Keep the data folder here (for a recovery measurement) instead of a temporary one.
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// Events per second (0 = as fast as possible). Event time still advances 1 ms per
    /// event; with `--data-dir` a paced run after a fast one changes few keys between
    /// checkpoints (incremental checkpoints).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
}

/// Runs the benchmark and prints its line.
pub fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    let (shards, keys, events, pin) = (args.shards, args.keys, args.events, args.pin);
    let tmp = tempfile::tempdir().context("cannot make a temporary folder")?;
    let data = args
        .data_dir
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let window = match (args.window, args.window_ms) {
        (BenchWindow::Tumbling, size) => {
            format!(
                r#"{{ type = "tumbling", size_ms = {} }}"#,
                size.unwrap_or(1000)
            )
        }
        (BenchWindow::Sliding, size) => format!(
            r#"{{ type = "sliding", size_ms = {}, slide_ms = {} }}"#,
            size.unwrap_or(10_000),
            size.unwrap_or(10_000) / 10
        ),
        (BenchWindow::Session, gap) => {
            format!(r#"{{ type = "session", gap_ms = {} }}"#, gap.unwrap_or(500))
        }
    };
    let text = format!(
        r#"
data_dir = {data:?}
{pin}
[processing]
parallelism = {shards}
checkpoint_interval = {interval}
[admin]
enabled = false
[[pipelines]]
id = "bench"
source = {{ type = "generator", keys = {keys}, rate = {rate}, total = {events}, disorder_ms = 100, partitions = {shards}, seed = 1, start_ms = 1700000000000 }}
window = {window}
watermark = {{ delay_ms = 200 }}
aggregates = ["count", "sum", "min", "max"]
sinks = [{{ type = "blackhole" }}]
"#,
        data = data.display().to_string(),
        interval = args.checkpoint_interval,
        rate = args.rate,
        pin = if pin {
            let cores: Vec<String> = (0..shards).map(|c| c.to_string()).collect();
            format!("[runtime]\ncores = [{}]", cores.join(", "))
        } else {
            String::new()
        },
    );
    let config = weir_config::from_str(&text, "weir bench")?;
    let started = Instant::now();
    let runtime = weir_shard::Runtime::start(config)?;
    let coordinator = runtime.coordinator();
    runtime.wait()?;
    let elapsed = started.elapsed().as_secs_f64();
    let checkpoints = coordinator.history();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    let periodic: Vec<_> = checkpoints
        .iter()
        .take(checkpoints.len().saturating_sub(1))
        .collect();
    let ckpt = if periodic.is_empty() {
        String::new()
    } else {
        format!(
            " checkpoints={} ckpt_ms_max={:.1} ckpt_bytes_max={} pause_ms_max={:.2}",
            periodic.len(),
            periodic.iter().map(|c| ms(c.duration)).fold(0.0, f64::max),
            periodic.iter().map(|c| c.bytes).max().unwrap_or(0),
            periodic.iter().map(|c| ms(c.max_pause)).fold(0.0, f64::max),
        )
    };
    println!(
        "shards={shards} events={events} elapsed_s={elapsed:.3} events_per_s={:.0} peak_rss_mb={:.1}{ckpt}",
        events as f64 / elapsed,
        peak_rss_mb()
    );
    Ok(())
}

/// Peak resident memory of this process, from /proc.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}
