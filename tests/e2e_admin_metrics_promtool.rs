//! `/metrics` of a real `weir run`, on the REST and on the metrics port, names every
//! metric of the contract with the engine's live counts and passes
//! `promtool check metrics`.
//!
//! promtool comes with Debian's `prometheus` package. Without it the promtool check is
//! skipped with a note, unless `WEIR_REQUIRE_PROMTOOL=1` (as in CI), where it fails.

mod admin_common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use admin_common::*;

/// The value of the first sample line that starts with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn promtool(text: &str) -> Res<Option<String>> {
    let required = std::env::var("WEIR_REQUIRE_PROMTOOL").is_ok_and(|v| v == "1");
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if !required => {
            eprintln!("note: promtool not found ({e}); skipping the promtool check");
            return Ok(None);
        }
        Err(e) => return Err(format!("promtool is required but cannot run: {e}").into()),
    };
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(text.as_bytes())?;
    let out = child.wait_with_output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(format!("promtool check metrics failed: {said}\n{text}").into());
    }
    Ok(Some(said))
}

#[test]
fn metrics_on_both_ports_pass_promtool_and_count_the_running_engine() -> TestResult {
    let engine = Engine::start(&generator_pipeline("clicks", 2000), "")?;
    engine.wait_for("/pipelines/clicks/stats", Duration::from_secs(30), |s| {
        s["processed"].as_u64().is_some_and(|n| n > 1000)
            && s["results"].as_u64().is_some_and(|n| n > 0)
    })?;
    for addr in [engine.http, engine.metrics] {
        let reply = get(addr, "/metrics")?;
        assert_eq!(reply.status, 200, "{addr}: {}", reply.body);
        let ct = reply.header("Content-Type").unwrap_or_default();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        let text = &reply.body;
        for name in weir_admin::metrics::FAMILIES {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{addr}: {name} in\n{text}"
            );
        }
        let shard0 = sample(
            text,
            r#"stream_events_processed_total{pipeline="clicks",shard="0"}"#,
        );
        let shard1 = sample(
            text,
            r#"stream_events_processed_total{pipeline="clicks",shard="1"}"#,
        );
        let (shard0, shard1) = (shard0.ok_or("no shard 0")?, shard1.ok_or("no shard 1")?);
        assert!(
            shard0 > 0.0 && shard1 > 0.0,
            "both shards process: {shard0} {shard1}"
        );
        let count = sample(text, "stream_processing_duration_seconds_count").ok_or("no count")?;
        assert!(count > 0.0, "latency observed");
        let inf = sample(
            text,
            r#"stream_processing_duration_seconds_bucket{le="+Inf"}"#,
        );
        assert_eq!(inf, Some(count));
        assert!(
            sample(text, r#"stream_results_emitted_total{pipeline="clicks"}"#)
                .is_some_and(|n| n > 0.0)
        );
        assert!(
            sample(
                text,
                r#"stream_active_windows{pipeline="clicks",shard="0"}"#
            )
            .is_some()
        );
        assert!(
            sample(
                text,
                r#"stream_watermark_lag_seconds{pipeline="clicks",partition="generator/0"}"#
            )
            .is_some(),
            "{text}"
        );
        assert_eq!(
            sample(
                text,
                r#"stream_events_invalid_total{pipeline="clicks",reason="not_json"}"#
            ),
            Some(0.0)
        );
        for shard in ["0", "1"] {
            let busy = sample(
                text,
                &format!("stream_shard_busy_seconds_total{{shard=\"{shard}\"}}"),
            );
            let idle = sample(
                text,
                &format!("stream_shard_idle_seconds_total{{shard=\"{shard}\"}}"),
            );
            assert!(
                busy.is_some_and(|b| b > 0.0) && idle.is_some_and(|i| i > 0.0),
                "{text}"
            );
            assert!(sample(text, &format!("stream_queue_depth{{shard=\"{shard}\"}}")).is_some());
        }
        if let Some(said) = promtool(text)? {
            assert!(!said.contains("error"), "{said}");
        }
    }
    Ok(())
}
