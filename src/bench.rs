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

/// Runs the benchmark and prints its line.
pub fn bench(
    shards: usize,
    keys: u64,
    events: u64,
    window: BenchWindow,
    pin: bool,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("cannot make a temporary folder")?;
    let window = match window {
        BenchWindow::Tumbling => r#"{ type = "tumbling", size_ms = 1000 }"#,
        BenchWindow::Sliding => r#"{ type = "sliding", size_ms = 10000, slide_ms = 1000 }"#,
        BenchWindow::Session => r#"{ type = "session", gap_ms = 500 }"#,
    };
    let text = format!(
        r#"
data_dir = {data:?}
{pin}
[processing]
parallelism = {shards}
checkpoint_interval = 0
[admin]
enabled = false
[[pipelines]]
id = "bench"
source = {{ type = "generator", keys = {keys}, rate = 0, total = {events}, disorder_ms = 100, partitions = {shards}, seed = 1, start_ms = 1700000000000 }}
window = {window}
watermark = {{ delay_ms = 200 }}
aggregates = ["count", "sum", "min", "max"]
sinks = [{{ type = "blackhole" }}]
"#,
        data = dir.path().display().to_string(),
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
    runtime.wait()?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "shards={shards} events={events} elapsed_s={elapsed:.3} events_per_s={:.0} peak_rss_mb={:.1}",
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
