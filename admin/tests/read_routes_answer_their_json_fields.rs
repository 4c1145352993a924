//! Every read-only JSON route answers 200 with the fields the contract names.

mod common;

use common::{NOW_MS, get, json, router};

#[test]
fn status_has_version_uptime_shards_totals_and_last_checkpoint() {
    let (_, router) = router();
    let answer = get(&router, "/status");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.content_type(), "application/json");
    let s = json(&answer);
    assert_eq!(s["version"], "0.1.0");
    assert_eq!(s["app_name"], "weir-test");
    assert_eq!(s["instance"], "weir-test-1");
    assert_eq!(s["uptime_s"], 3600.5);
    let shard = &s["shards"][0];
    for field in [
        "shard",
        "core",
        "events",
        "queue_depth",
        "busy_s",
        "idle_s",
        "backpressured_s",
    ] {
        assert!(!shard[field].is_null(), "shards[0].{field}");
    }
    assert_eq!(shard["core"], 2);
    assert_eq!(s["shards"][1]["events"], 1_100_000);
    assert_eq!(s["totals"]["events_processed"], 2_300_000);
    assert_eq!(s["totals"]["queue_depth"], 17);
    assert_eq!(s["last_checkpoint"]["id"], 7);
}

#[test]
fn pipelines_lists_id_state_source_and_window() {
    let (_, router) = router();
    let p = json(&get(&router, "/pipelines"));
    let list = p["pipelines"].as_array().cloned().unwrap_or_default();
    let states: Vec<_> = list
        .iter()
        .map(|p| (p["id"].clone(), p["state"].clone()))
        .collect();
    assert_eq!(
        states,
        [
            ("clicks", "running"),
            ("orders", "stopped"),
            ("replay", "finished")
        ]
        .map(|(id, s)| (id.into(), s.into()))
    );
    assert_eq!(list[0]["source"], "file data/in/*.jsonl (jsonl)");
    assert_eq!(list[0]["window"], "tumbling 60000 ms, lateness 5000 ms");
    assert_eq!(list[0]["aggregates"][2], "p99");
}

#[test]
fn pipeline_stats_has_counters_rate_latency_windows_and_watermark() {
    let (_, router) = router();
    let answer = get(&router, "/pipelines/clicks/stats");
    assert_eq!(answer.status(), 200);
    let s = json(&answer);
    assert_eq!(s["pipeline"], "clicks");
    for (field, value) in [
        ("processed", 2_000_000),
        ("late", 12),
        ("dropped_late", 3),
        ("invalid", 5),
        ("deduplicated", 40),
        ("results", 41_000),
        ("active_windows", 1234),
    ] {
        assert_eq!(s[field], value, "{field}");
    }
    assert_eq!(s["events_per_s"], 52_500.5);
    assert_eq!(s["latency_ms"]["p50"], 0.4);
    assert_eq!(s["latency_ms"]["p99"], 2.5);
    assert_eq!(s["latency_ms"]["p999"], 9.75);
    assert_eq!(s["watermark_ms"], NOW_MS - 2500);
    assert_eq!(s["watermark_lag_ms"], 2500);
}

#[test]
fn watermarks_show_partitions_shards_and_what_holds_them_back() {
    let (_, router) = router();
    let w = json(&get(&router, "/watermarks"));
    let clicks = &w["pipelines"][0];
    assert_eq!(clicks["pipeline"], "clicks");
    assert_eq!(clicks["watermark_ms"], NOW_MS - 4000);
    assert_eq!(clicks["partitions"][0]["partition"], "data/in/a.jsonl");
    assert_eq!(clicks["partitions"][0]["lag_ms"], 4000);
    assert_eq!(clicks["partitions"][0]["state"], "active");
    assert_eq!(clicks["partitions"][1]["state"], "idle");
    assert_eq!(clicks["shards"][1]["watermark_ms"], NOW_MS - 3000);
    assert_eq!(clicks["held_back_by"]["partition"], "data/in/a.jsonl");
    assert_eq!(clicks["held_back_by"]["since_ms"], NOW_MS - 60_000);
}

#[test]
fn checkpoints_lists_the_retained_ones_and_post_takes_one() {
    let (_, router) = router();
    let list = json(&get(&router, "/checkpoints"));
    let ids: Vec<_> = list["checkpoints"]
        .as_array()
        .map(|c| c.iter().map(|c| c["id"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(ids, [5, 6, 7]);
    assert_eq!(list["checkpoints"][2]["duration_ms"], 37);
    assert_eq!(list["checkpoints"][2]["bytes"], 1_007_000);

    let taken = common::post(&router, "/checkpoint");
    assert_eq!(taken.status(), 200, "{}", taken.body_str());
    let c = json(&taken);
    assert_eq!(
        (
            c["id"].clone(),
            c["duration_ms"].clone(),
            c["bytes"].clone()
        ),
        (8.into(), 42.into(), 1_048_576.into())
    );
    assert_eq!(c["completed_at_ms"], NOW_MS);
}
