//! Every read route of the admin API, asked of a real `weir run` with two generator
//! pipelines on two shards, answers its JSON fields with live numbers from the engine.

mod admin_common;

use std::time::Duration;

use admin_common::*;
use serde_json::Value;

fn u64_of(v: &Value, field: &str) -> Res<u64> {
    v[field]
        .as_u64()
        .ok_or_else(|| format!("{field} is not a count in {v}").into())
}

fn f64_of(v: &Value, field: &str) -> Res<f64> {
    v[field]
        .as_f64()
        .ok_or_else(|| format!("{field} is not a number in {v}").into())
}

fn array<'a>(v: &'a Value, field: &str) -> Res<&'a Vec<Value>> {
    v[field]
        .as_array()
        .ok_or_else(|| format!("{field} is not a list in {v}").into())
}

/// Checks one open window of `pipeline` and returns its (key, start).
fn check_window(w: &Value, pipeline: &str) -> Res<(String, i64)> {
    assert_eq!(w["pipeline"], pipeline, "{w}");
    assert!(u64_of(w, "shard")? < 2, "{w}");
    let key = w["key"].as_str().ok_or("no key")?.to_owned();
    let start = w["window_start"].as_i64().ok_or("no window_start")?;
    let end = w["window_end"].as_i64().ok_or("no window_end")?;
    assert!(start < end, "{w}");
    assert!(u64_of(w, "count")? > 0, "{w}");
    for field in ["sum", "min", "max"] {
        f64_of(w, field)?;
    }
    assert!(w["fired"].is_boolean(), "{w}");
    Ok((key, start))
}

fn assert_sorted(windows: &[Value]) -> Res<()> {
    let order: Vec<(String, i64)> = windows
        .iter()
        .map(|w| {
            (
                w["key"].as_str().unwrap_or_default().to_owned(),
                w["window_start"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "windows are ordered by key, then start");
    Ok(())
}

#[test]
fn every_read_route_answers_live_numbers_from_the_running_engine() -> TestResult {
    let pipelines = generator_pipeline("clicks", 2000) + &generator_pipeline("orders", 500);
    let engine = Engine::start(&pipelines, "")?;
    engine.wait_for("/pipelines/clicks/stats", Duration::from_secs(30), |s| {
        s["processed"].as_u64().is_some_and(|n| n > 1000)
            && s["results"].as_u64().is_some_and(|n| n > 0)
            && s["watermark_ms"].is_i64()
            && s["active_windows"].as_u64().is_some_and(|n| n > 0)
    })?;

    // GET /health, on both listeners.
    for addr in [engine.http, engine.metrics] {
        let health = get(addr, "/health")?;
        assert_eq!(
            (health.status, health.body.as_str()),
            (200, r#"{"status":"ok"}"#)
        );
    }

    // GET /status.
    let status = engine.json("/status", 200)?;
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["app_name"], "e2e-admin");
    assert!(f64_of(&status, "uptime_s")? > 0.0);
    let shards = array(&status, "shards")?;
    assert_eq!(shards.len(), 2, "{status}");
    let mut shard_events = 0;
    for (i, s) in shards.iter().enumerate() {
        assert_eq!(u64_of(s, "shard")?, i as u64);
        assert!(s["core"].is_null(), "unpinned shards have no core: {s}");
        shard_events += u64_of(s, "events")?;
        u64_of(s, "queue_depth")?;
        let busy = f64_of(s, "busy_s")?;
        let idle = f64_of(s, "idle_s")?;
        f64_of(s, "backpressured_s")?;
        assert!(
            busy > 0.0 && idle > 0.0,
            "a shard at 2500 events/s is partly busy: {s}"
        );
    }
    let totals = &status["totals"];
    assert_eq!(u64_of(totals, "pipelines")?, 2);
    let processed_total = u64_of(totals, "events_processed")?;
    assert!(processed_total > 1000, "{totals}");
    assert!(
        processed_total.abs_diff(shard_events) < 5000,
        "totals agree with the shards ({processed_total} vs {shard_events})"
    );
    for field in [
        "results_emitted",
        "events_late",
        "events_dropped_late",
        "events_invalid",
        "events_deduplicated",
        "queue_depth",
    ] {
        u64_of(totals, field)?;
    }
    assert!(
        u64_of(totals, "results_emitted")? > 0,
        "1 s windows have fired: {totals}"
    );
    assert!(status.get("last_checkpoint").is_some(), "{status}");

    // GET /pipelines.
    let list = engine.json("/pipelines", 200)?;
    let list = array(&list, "pipelines")?;
    let ids: Vec<&str> = list.iter().filter_map(|p| p["id"].as_str()).collect();
    assert_eq!(ids, ["clicks", "orders"]);
    for p in list {
        assert_eq!(p["state"], "running", "{p}");
        let source = p["source"].as_str().ok_or("no source")?;
        assert!(source.starts_with("generator 200 keys"), "{source}");
        let window = p["window"].as_str().ok_or("no window")?;
        assert!(window.starts_with("tumbling 1000 ms"), "{window}");
        assert_eq!(p["aggregates"], serde_json::json!(["count", "sum", "p99"]));
    }

    // GET /pipelines/{id}/stats.
    let stats = engine.json("/pipelines/clicks/stats", 200)?;
    assert_eq!(stats["pipeline"], "clicks");
    assert_eq!(stats["state"], "running");
    assert!(u64_of(&stats, "processed")? > 1000);
    for field in ["late", "dropped_late", "invalid", "deduplicated", "results"] {
        u64_of(&stats, field)?;
    }
    assert_eq!(
        u64_of(&stats, "invalid")?,
        0,
        "a generator makes no bad lines"
    );
    let rate = f64_of(&stats, "events_per_s")?;
    assert!(
        rate > 200.0 && rate < 20_000.0,
        "about 2000 events/s: {rate}"
    );
    let latency = &stats["latency_ms"];
    let (p50, p99, p999, max) = (
        f64_of(latency, "p50")?,
        f64_of(latency, "p99")?,
        f64_of(latency, "p999")?,
        f64_of(latency, "max")?,
    );
    assert!(p50 <= p99 && p99 <= p999 && p999 <= max, "{latency}");
    assert!(
        max > 0.0,
        "events that crossed shards took some time: {latency}"
    );
    assert!(u64_of(&stats, "active_windows")? > 0);
    let watermark = stats["watermark_ms"].as_i64().ok_or("no watermark")?;
    assert!(
        watermark > 1_600_000_000_000,
        "a wall-clock watermark: {watermark}"
    );
    assert!(stats["watermark_lag_ms"].is_i64(), "{stats}");

    // GET /watermarks.
    let marks = engine.json("/watermarks", 200)?;
    let marks = array(&marks, "pipelines")?;
    assert_eq!(marks.len(), 2);
    let clicks = &marks[0];
    assert_eq!(clicks["pipeline"], "clicks");
    assert!(clicks["watermark_ms"].is_i64(), "{clicks}");
    let partitions = array(clicks, "partitions")?;
    let mut names: Vec<&str> = partitions
        .iter()
        .filter_map(|p| p["partition"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["generator/0", "generator/1"], "{clicks}");
    for p in partitions {
        assert!(u64_of(p, "shard")? < 2, "{p}");
        assert!(p["watermark_ms"].is_i64() && p["lag_ms"].is_i64(), "{p}");
        assert_eq!(p["state"], "active", "{p}");
    }
    let operators = array(clicks, "shards")?;
    assert_eq!(operators.len(), 2);
    assert!(
        operators.iter().all(|o| o["watermark_ms"].is_i64()),
        "{clicks}"
    );
    let held = &clicks["held_back_by"];
    let held_by = held["partition"]
        .as_str()
        .ok_or_else(|| format!("no held_back_by in {clicks}"))?;
    assert!(names.contains(&held_by), "{held}");
    assert!(
        held["since_ms"]
            .as_i64()
            .is_some_and(|t| t > 1_600_000_000_000),
        "{held}"
    );

    // GET /state: per shard sizes and totals.
    let state = engine.json("/state", 200)?;
    let shards = array(&state, "shards")?;
    assert_eq!(shards.len(), 2);
    let totals = &state["totals"];
    assert_eq!(u64_of(totals, "shard")?, 2);
    let mut keys = 0;
    for s in shards {
        keys += u64_of(s, "keys")?;
        assert!(u64_of(s, "windows")? > 0 && u64_of(s, "bytes")? > 0, "{s}");
        u64_of(s, "log_segments")?;
        u64_of(s, "log_bytes")?;
    }
    assert_eq!(u64_of(totals, "keys")?, keys);
    assert!(keys > 0 && keys <= 400, "200 keys per pipeline: {state}");

    // GET /state?pipeline=…&limit=…: a scan, ordered, cut at the limit.
    let scan = engine.json("/state?pipeline=clicks&limit=5", 200)?;
    assert_eq!(
        (scan["pipeline"].as_str(), scan["limit"].as_u64()),
        (Some("clicks"), Some(5))
    );
    assert_eq!(scan["truncated"], true, "200 keys have more than 5 windows");
    let windows = array(&scan, "windows")?;
    assert_eq!(windows.len(), 5);
    for w in windows {
        check_window(w, "clicks")?;
    }
    assert_sorted(windows)?;
    let (key, _) = check_window(&windows[0], "clicks")?;
    let owner = u64_of(&windows[0], "shard")?;

    // … with a prefix: only matching keys.
    let scan = engine.json(
        &format!("/state?pipeline=clicks&prefix={key}&limit=100"),
        200,
    )?;
    let windows = array(&scan, "windows")?;
    assert!(!windows.is_empty(), "{scan}");
    for w in windows {
        let (k, _) = check_window(w, "clicks")?;
        assert!(k.starts_with(&key), "{k} starts with {key}");
    }

    // GET /state/{pipeline}/{key}: that key's windows, from the shard that owns it.
    let one = engine.json(&format!("/state/clicks/{key}"), 200)?;
    assert_eq!(
        (one["pipeline"].as_str(), one["key"].as_str()),
        (Some("clicks"), Some(key.as_str()))
    );
    let windows = array(&one, "windows")?;
    assert!(!windows.is_empty(), "{one}");
    for w in windows {
        let (k, _) = check_window(w, "clicks")?;
        assert_eq!(k, key);
        assert_eq!(u64_of(w, "shard")?, owner, "the owning shard answers");
    }
    let nobody = engine.json("/state/clicks/no%20such%20key", 200)?;
    assert_eq!(nobody["key"], "no such key");
    assert_eq!(nobody["windows"], serde_json::json!([]));

    // GET /windows: counts per pipeline and shard only.
    let counts = engine.json("/windows", 200)?;
    let open = array(&counts, "open")?;
    let pairs: Vec<(String, u64)> = open
        .iter()
        .map(|o| {
            (
                o["pipeline"].as_str().unwrap_or_default().to_owned(),
                o["shard"].as_u64().unwrap_or(9),
            )
        })
        .collect();
    let expected: Vec<(String, u64)> = [("clicks", 0), ("clicks", 1), ("orders", 0), ("orders", 1)]
        .iter()
        .map(|(p, s)| ((*p).to_owned(), *s))
        .collect();
    assert_eq!(pairs, expected);
    assert!(
        open.iter()
            .all(|o| o["open"].as_u64().is_some_and(|n| n > 0)),
        "{counts}"
    );
    assert_eq!(counts["windows"], serde_json::json!([]));
    assert_eq!(counts["truncated"], false);

    // GET /windows?pipeline=…&limit=…: that pipeline's windows, listed.
    let listed = engine.json("/windows?pipeline=orders&limit=3", 200)?;
    let open = array(&listed, "open")?;
    assert_eq!(open.len(), 2);
    assert!(open.iter().all(|o| o["pipeline"] == "orders"), "{listed}");
    let windows = array(&listed, "windows")?;
    assert_eq!(windows.len(), 3);
    for w in windows {
        check_window(w, "orders")?;
    }
    assert_sorted(windows)?;
    assert_eq!(listed["truncated"], true);

    // GET /checkpoints.
    let checkpoints = engine.json("/checkpoints", 200)?;
    for c in array(&checkpoints, "checkpoints")? {
        for field in ["id", "completed_at_ms", "duration_ms", "bytes"] {
            u64_of(c, field)?;
        }
    }

    // GET / (the dashboard) and GET /openapi.yaml.
    let page = engine.get("/")?;
    assert_eq!(page.status, 200);
    assert!(
        page.header("Content-Type")
            .is_some_and(|t| t.starts_with("text/html"))
    );
    assert!(page.body.contains("rate-"), "the dashboard page");
    let api = engine.get("/openapi.yaml")?;
    assert_eq!(api.status, 200);
    assert!(api.body.contains("/pipelines/{id}/stats"));

    // HEAD answers like GET, without a body.
    let head = request(engine.http, "HEAD", "/status", "")?;
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    Ok(())
}
