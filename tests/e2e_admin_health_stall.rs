//! A shard that stops making progress turns `/health` into a 503 with the reason on both
//! listeners, and questions that need that shard answer 503 within the shard timeout
//! instead of hanging. The stall is real: a file sink on `/dev/full` fails every write,
//! and the shard retries it (never dropping results) instead of turning its loop.

mod admin_common;

use std::time::{Duration, Instant};

use admin_common::*;

#[test]
fn a_shard_stuck_on_a_failing_sink_turns_health_503_with_the_reason() -> TestResult {
    if !std::path::Path::new("/dev/full").exists() {
        eprintln!("note: no /dev/full here; skipping");
        return Ok(());
    }
    let pipeline = r#"
[[pipelines]]
id = "clicks"
source = { type = "generator", keys = 50, rate = 1000, total = 0, partitions = 2 }
event = { key = "user", time = "ts", value = "amount" }
window = { type = "tumbling", size_ms = 500 }
watermark = { delay_ms = 100 }
aggregates = ["count"]
sinks = [{ type = "file", path = "/dev/full", delivery = "at_least_once" }]
"#;
    let engine = Engine::start(pipeline, "")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    // First the sink's circuit opens (after a few failed retries), then the shard,
    // still retrying, stops turning for long enough to count as stalled.
    let mut circuit_seen = false;
    let sick = loop {
        let reply = engine.get("/health")?;
        if reply.status == 503 {
            let body: serde_json::Value = serde_json::from_str(&reply.body)?;
            let kinds: Vec<String> = body["problems"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter_map(|p| p["kind"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            circuit_seen |= kinds.iter().any(|k| k == "sink_circuit_open");
            if kinds.iter().any(|k| k == "shard_stalled") {
                break reply;
            }
        } else {
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
        if Instant::now() > deadline {
            return Err(format!("/health stayed 200: {}", engine.log()).into());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        circuit_seen,
        "the open sink circuit was reported before the stall"
    );
    let body = sick.expect(503)?;
    assert_eq!(body["status"], "unhealthy");
    let problems = body["problems"].as_array().ok_or("no problems")?;
    let stalled: Vec<_> = problems
        .iter()
        .filter(|p| p["kind"] == "shard_stalled")
        .collect();
    assert!(!stalled.is_empty(), "{body}");
    assert!(
        stalled
            .iter()
            .all(|p| p["silent_ms"].as_u64().is_some_and(|ms| ms >= 5000)),
        "{body}"
    );
    let reasons = body["reasons"].as_array().ok_or("no reasons")?;
    assert!(
        reasons
            .iter()
            .any(|r| r.as_str().is_some_and(|r| r.contains("has stalled"))),
        "{body}"
    );
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("stalled")),
        "{body}"
    );
    assert_eq!(
        get(engine.metrics, "/health")?.status,
        503,
        "the scrape port says so too"
    );

    // Asking the stalled shard costs at most the shard timeout (2 s), then a 503.
    let asked = Instant::now();
    let message = engine.get("/state")?.error(503)?;
    assert!(
        message.contains("did not answer within 2000 ms"),
        "{message}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    // Counters and cached reports still answer at once.
    let asked = Instant::now();
    engine.json("/status", 200)?;
    engine.json("/pipelines/clicks/stats", 200)?;
    assert_eq!(get(engine.metrics, "/metrics")?.status, 200);
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    Ok(())
}
