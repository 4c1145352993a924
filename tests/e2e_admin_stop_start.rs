//! `POST /pipelines/{id}/stop` pauses a real engine's pipeline: its `processed` count
//! stops growing while the other pipeline goes on; `POST …/start` resumes it.

mod admin_common;

use std::time::{Duration, Instant};

use admin_common::*;

/// Waits until `processed` of `id` has not moved for `quiet`, at most `timeout`.
fn wait_still(engine: &Engine, id: &str, quiet: Duration, timeout: Duration) -> Res<u64> {
    let deadline = Instant::now() + timeout;
    let mut last = processed(engine, id)?;
    let mut since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = processed(engine, id)?;
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= quiet {
            return Ok(now);
        }
        if Instant::now() > deadline {
            return Err(format!("{id} kept processing after stop ({last})").into());
        }
    }
}

#[test]
fn stopping_a_pipeline_halts_its_processing_and_starting_it_resumes() -> TestResult {
    let pipelines = generator_pipeline("clicks", 2000) + &generator_pipeline("orders", 1000);
    let engine = Engine::start(&pipelines, "")?;
    engine.wait_for("/pipelines/clicks/stats", Duration::from_secs(30), |s| {
        s["processed"].as_u64().is_some_and(|n| n > 500)
    })?;

    let stopped = engine.post("/pipelines/clicks/stop", None)?.expect(200)?;
    assert_eq!(stopped["id"], "clicks");
    assert_eq!(stopped["state"], "stopped");
    // Stopping twice is fine.
    let again = engine.post("/pipelines/clicks/stop", None)?.expect(200)?;
    assert_eq!(again["state"], "stopped");

    // Events already read drain; then nothing moves for a good while.
    let frozen = wait_still(
        &engine,
        "clicks",
        Duration::from_secs(1),
        Duration::from_secs(20),
    )?;
    let orders_before = processed(&engine, "orders")?;
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        processed(&engine, "clicks")?,
        frozen,
        "a stopped pipeline processes nothing"
    );
    assert!(
        processed(&engine, "orders")? > orders_before,
        "the other pipeline keeps going"
    );
    let stats = engine.json("/pipelines/clicks/stats", 200)?;
    assert_eq!(stats["state"], "stopped");
    let list = engine.json("/pipelines", 200)?;
    assert_eq!(list["pipelines"][0]["state"], "stopped", "{list}");
    assert_eq!(list["pipelines"][1]["state"], "running", "{list}");
    // A pause is never idleness: the stopped pipeline's partitions stay active.
    let marks = engine.json("/watermarks", 200)?;
    let parts = marks["pipelines"][0]["partitions"]
        .as_array()
        .ok_or("no partitions")?;
    assert!(parts.iter().all(|p| p["state"] == "active"), "{marks}");
    assert_eq!(
        engine.get("/health")?.status,
        200,
        "a stopped pipeline is healthy"
    );

    let started = engine.post("/pipelines/clicks/start", None)?.expect(200)?;
    assert_eq!(started["state"], "running");
    engine.wait_for("/pipelines/clicks/stats", Duration::from_secs(20), |s| {
        s["processed"].as_u64().is_some_and(|n| n > frozen + 500) && s["state"] == "running"
    })?;
    let status = engine.stop()?;
    assert!(status.success(), "weir run exits 0 on SIGTERM: {status}");
    Ok(())
}
