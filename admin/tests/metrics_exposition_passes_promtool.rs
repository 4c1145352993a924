//! The Prometheus exposition of a realistic snapshot names every metric of the contract
//! and passes `promtool check metrics`.
//!
//! promtool comes with Debian's `prometheus` package. Without it the promtool check is
//! skipped with a note, unless `WEIR_REQUIRE_PROMTOOL=1` (as in CI), where it fails.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use weir_admin::metrics::{FAMILIES, render};

#[test]
fn exposition_names_every_metric_with_its_labels() {
    let text = render(&common::realistic_snapshot());
    for name in FAMILIES {
        assert!(text.contains(&format!("# HELP {name} ")), "{name} has HELP");
    }
    let expected_lines = [
        "# TYPE stream_events_processed_total counter",
        "stream_events_processed_total{pipeline=\"orders\",shard=\"1\"} 1000017",
        "# TYPE stream_processing_duration_seconds histogram",
        "stream_processing_duration_seconds_bucket{le=\"0.0001\"} 25",
        "stream_processing_duration_seconds_bucket{le=\"+Inf\"} 2000",
        "stream_processing_duration_seconds_count 2000",
        "# TYPE stream_active_windows gauge",
        "stream_active_windows{pipeline=\"clicks\",shard=\"1\"} 601",
        "# TYPE stream_watermark_lag_seconds gauge",
        "stream_watermark_lag_seconds{pipeline=\"clicks\",partition=\"data/in/\\\"odd\\\" name\\\\with\\nnewline.jsonl\"} 90.25",
        "stream_watermark_lag_seconds{pipeline=\"orders\",partition=\"tcp/0\"} -0.5",
        "stream_events_late_total{pipeline=\"clicks\"} 12",
        "stream_events_dropped_late_total{pipeline=\"clicks\"} 3",
        "stream_events_invalid_total{pipeline=\"clicks\",reason=\"not_json\"} 4",
        "stream_events_deduplicated_total{pipeline=\"clicks\"} 40",
        "stream_results_emitted_total{pipeline=\"clicks\"} 41000",
        "stream_checkpoints_total{status=\"completed\"} 7",
        "stream_checkpoints_total{status=\"failed\"} 1",
        "# TYPE stream_checkpoint_duration_seconds histogram",
        "stream_checkpoint_duration_seconds_bucket{le=\"0.05\"} 3",
        "stream_checkpoint_duration_seconds_count 5",
        "stream_queue_depth{shard=\"0\"} 17",
        "stream_backpressure_seconds_total{shard=\"0\"} 100.5",
        "stream_log_bytes{shard=\"1\"} 40000000",
        "stream_shard_busy_seconds_total{shard=\"0\"} 2100",
        "stream_shard_idle_seconds_total{shard=\"1\"} 1800.5",
        "stream_shard_backpressured_seconds_total{shard=\"1\"} 0",
    ];
    for line in expected_lines {
        assert!(
            text.lines().any(|l| l == line),
            "missing line: {line}\n{text}"
        );
    }
}

#[test]
fn exposition_passes_promtool_check_metrics() -> Result<(), Box<dyn std::error::Error>> {
    let required = std::env::var("WEIR_REQUIRE_PROMTOOL").is_ok_and(|v| v == "1");
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            eprintln!(
                "promtool not on PATH: skipped (set WEIR_REQUIRE_PROMTOOL=1 to fail instead)"
            );
            return Ok(());
        }
        Err(e) => return Err(format!("cannot run promtool: {e}").into()),
    };
    let text = render(&common::realistic_snapshot());
    child
        .stdin
        .take()
        .ok_or("promtool has no stdin")?
        .write_all(text.as_bytes())?;
    let out = child.wait_with_output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{said}\n{text}"
    );
    assert!(
        said.trim().is_empty(),
        "promtool has lint findings:\n{said}"
    );
    Ok(())
}
