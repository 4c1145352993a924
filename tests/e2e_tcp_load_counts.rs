//! `weir load` against a TCP pipeline on two shards: every event it sends is counted in
//! the window results exactly once, and a graceful stop keeps it that way.

mod tcp_common;

use std::time::Duration;

use tcp_common::*;

#[test]
fn events_sent_by_weir_load_equal_the_events_counted_after_a_graceful_stop() -> TestResult {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let engine = Engine::start(dir.path(), &config(port, 2, 500, ""), port)?;
    let total = 60_000u64;
    let out = load(
        port,
        &[
            "--connections",
            "4",
            "--total",
            &total.to_string(),
            "--keys",
            "50",
            "--disorder-ms",
            "100",
        ],
    )?;
    assert!(
        out.status.success(),
        "weir load failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(summary_value(&out.stdout, "events"), Some(total as f64));
    assert_eq!(summary_value(&out.stdout, "acked"), Some(total as f64));
    assert_eq!(summary_value(&out.stdout, "errors"), Some(0.0));
    for key in ["events_per_s", "p50_ms", "p99_ms", "p999_ms"] {
        assert!(summary_value(&out.stdout, key).is_some(), "{key} missing");
    }
    let seen = wait_for_count(&out_file(dir.path()), total, Duration::from_secs(20))?;
    assert_eq!(seen, total, "results before the stop");
    let status = engine.terminate()?;
    assert!(status.success(), "weir exited with {status}");
    assert_eq!(
        counted(&out_file(dir.path()))?,
        total,
        "results after the stop"
    );
    Ok(())
}
