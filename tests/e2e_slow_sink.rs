//! A slow sink backs the pipeline up through backpressure: memory stays bounded by the
//! queues (not by the input), and no result is lost.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn a_slow_sink_keeps_memory_bounded_and_loses_nothing() -> TestResult {
    const TOTAL: u64 = 2_000_000;
    let dir = tempfile::tempdir()?;
    let config = format!(
        r#"
data_dir = "data"
[processing]
parallelism = 2
batch_size = 256
queue_size = 1024
[admin]
enabled = false
[[pipelines]]
id = "slow"
source = {{ type = "generator", keys = 20, rate = 0, total = {TOTAL}, partitions = 2, start_ms = 1700000000000 }}
window = {{ type = "tumbling", size_ms = 1000 }}
watermark = {{ delay_ms = 10 }}
aggregates = ["count", "sum", "min", "max"]
sinks = [{{ type = "file", path = "out/r.jsonl", delivery = "at_least_once", delay_ms = 25 }}]
"#
    );
    std::fs::write(dir.path().join("weir.toml"), config)?;
    let mut child = weir()
        .args(["run", "--config", "weir.toml"])
        .current_dir(dir.path())
        .env("WEIR_LOG", "warn")
        .spawn()?;
    let started = Instant::now();
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = peak_rss_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > Duration::from_secs(240) {
            child.kill()?;
            return Err("weir did not finish in time".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    let rows = read_rows(&out_file(dir.path(), "r.jsonl"))?;
    let counted: u64 = rows.iter().map(|r| r.3).sum();
    assert_eq!(counted, TOTAL, "every event is in exactly one result");
    // The input held in memory would be TOTAL × 64 bytes = 128 MB; the queues hold
    // 2 × 1024 events. Peak RSS includes the binary and both executors.
    eprintln!("peak RSS {peak} KiB");
    assert!(peak > 0 && peak < 96 * 1024, "peak RSS {peak} KiB");
    Ok(())
}
