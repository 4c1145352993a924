//! `POST /checkpoint` on a real `weir run` takes a checkpoint and answers once it is
//! complete; `/checkpoints` lists the retained ones, `/status` the last, and `/metrics`
//! counts them.

mod admin_common;

use std::time::Duration;

use admin_common::*;

const TOKEN: &str = "cp-token";

#[test]
fn a_checkpoint_asked_over_http_completes_and_shows_in_list_status_and_metrics() -> TestResult {
    let rest = format!(
        "[storage]\nretain_checkpoints = 2\n{}",
        generator_pipeline("clicks", 2000)
    );
    let engine = Engine::start_with(
        "checkpoint_interval = 0",
        &format!("token = \"{TOKEN}\""),
        &rest,
    )?;
    engine.wait_for("/pipelines/clicks/stats", Duration::from_secs(30), |s| {
        s["active_windows"].as_u64().is_some_and(|n| n > 0)
    })?;
    assert_eq!(
        engine.json("/checkpoints", 200)?["checkpoints"],
        serde_json::json!([])
    );
    assert!(engine.json("/status", 200)?["last_checkpoint"].is_null());

    engine.post("/checkpoint", None)?.error(401)?;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let info = engine.post("/checkpoint", Some(TOKEN))?.expect(200)?;
        let id = info["id"]
            .as_u64()
            .ok_or_else(|| format!("no id in {info}"))?;
        assert!(
            info["completed_at_ms"]
                .as_i64()
                .is_some_and(|t| t > 1_600_000_000_000),
            "{info}"
        );
        assert!(info["duration_ms"].is_u64(), "{info}");
        assert!(
            info["bytes"].as_u64().is_some_and(|b| b > 0),
            "open windows are in it: {info}"
        );
        ids.push(id);
    }
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "ids grow by one: {ids:?}"
    );

    // Only the retained ones (retain_checkpoints = 2), oldest first.
    let list = engine.json("/checkpoints", 200)?;
    let listed: Vec<u64> = list["checkpoints"]
        .as_array()
        .ok_or("no list")?
        .iter()
        .filter_map(|c| c["id"].as_u64())
        .collect();
    assert_eq!(listed, ids[1..], "{list}");
    let status = engine.json("/status", 200)?;
    assert_eq!(
        status["last_checkpoint"]["id"].as_u64(),
        ids.last().copied(),
        "{status}"
    );

    let metrics = get(engine.metrics, "/metrics")?;
    assert_eq!(metrics.status, 200);
    let value = |prefix: &str| {
        metrics
            .body
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert_eq!(
        value(r#"stream_checkpoints_total{status="completed"}"#),
        Some(3.0)
    );
    assert_eq!(
        value(r#"stream_checkpoints_total{status="failed"}"#),
        Some(0.0)
    );
    assert_eq!(value("stream_checkpoint_duration_seconds_count"), Some(3.0));
    assert_eq!(
        value(r#"stream_checkpoint_duration_seconds_bucket{le="+Inf"}"#),
        Some(3.0)
    );

    let status = engine.stop()?;
    assert!(
        status.success(),
        "weir run exits 0 after its final checkpoint: {status}"
    );
    Ok(())
}
