//! `GET /state`, `GET /state/{pipeline}/{key}` and `GET /windows` in each of their forms.

mod common;

use std::time::Duration;

use common::{get, json, router};
use weir_admin::{DEFAULT_SHARD_TIMEOUT, Listener, Router};

#[test]
fn state_without_parameters_sums_every_shard() {
    let (fixture, router) = router();
    let s = json(&get(&router, "/state"));
    assert_eq!(s["shards"][0]["keys"], 600);
    assert_eq!(s["shards"][1]["log_segments"], 1);
    assert_eq!(s["totals"]["shard"], 2);
    assert_eq!(s["totals"]["keys"], 1000);
    assert_eq!(s["totals"]["windows"], 1234);
    assert_eq!(s["totals"]["bytes"], 300_000);
    assert_eq!(s["totals"]["log_bytes"], 140_000_000);
    let timeout = fixture.last_timeout.lock().ok().and_then(|t| *t);
    assert_eq!(timeout, Some(DEFAULT_SHARD_TIMEOUT));
}

#[test]
fn state_scan_lists_matching_keys_and_says_when_it_was_cut() {
    let (fixture, router) = router();
    let s = json(&get(&router, "/state?pipeline=clicks&prefix=u&limit=2"));
    assert_eq!(s["pipeline"], "clicks");
    assert_eq!(s["prefix"], "u");
    assert_eq!(s["limit"], 2);
    assert_eq!(s["truncated"], true);
    let keys: Vec<_> = s["windows"]
        .as_array()
        .map(|w| w.iter().map(|w| w["key"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(keys, ["u1", "u10"]);
    let w = &s["windows"][0];
    for field in [
        "pipeline",
        "shard",
        "key",
        "window_start",
        "window_end",
        "count",
        "sum",
        "min",
        "max",
        "fired",
    ] {
        assert!(!w[field].is_null(), "windows[0].{field}");
    }
    let asked = fixture.last_scan.lock().ok().and_then(|q| q.clone());
    assert_eq!(asked.map(|q| (q.prefix, q.limit)), Some(("u".into(), 3)));

    // A percent-encoded prefix, and the default limit when none is given.
    let s = json(&get(&router, "/state?pipeline=clicks&prefix=user%2F4"));
    assert_eq!(s["truncated"], false);
    assert_eq!(s["limit"], 100);
    assert_eq!(s["windows"][0]["key"], "user/42 x");
}

#[test]
fn state_of_one_key_is_url_decoded() {
    let (_, router) = router();
    let s = json(&get(&router, "/state/clicks/user%2F42%20x"));
    assert_eq!(s["pipeline"], "clicks");
    assert_eq!(s["key"], "user/42 x");
    assert_eq!(s["windows"][0]["count"], 2);
    assert_eq!(s["windows"][0]["shard"], 0);
    let unknown_key = json(&get(&router, "/state/clicks/nobody"));
    assert_eq!(unknown_key["windows"], serde_json::json!([]));
}

#[test]
fn windows_counts_per_pipeline_and_shard_and_lists_on_request() {
    let (fixture, router) = router();
    let counts = json(&get(&router, "/windows"));
    assert_eq!(
        counts["open"][0],
        serde_json::json!({"pipeline": "clicks", "shard": 0, "open": 2})
    );
    assert_eq!(counts["windows"], serde_json::json!([]));
    let asked = fixture.last_windows.lock().ok().and_then(|w| w.clone());
    assert_eq!(asked, Some((None, 0)));

    let listed = json(&get(&router, "/windows?pipeline=orders&limit=10"));
    assert_eq!(listed["open"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed["windows"][0]["key"], "o1");
    assert_eq!(listed["truncated"], false);

    let cut = json(&get(&router, "/windows?limit=1"));
    assert_eq!(cut["windows"].as_array().map(Vec::len), Some(1));
    assert_eq!(cut["truncated"], true);
    let asked = fixture.last_windows.lock().ok().and_then(|w| w.clone());
    assert_eq!(asked, Some((None, 1)));
}

#[test]
fn the_configured_shard_timeout_is_passed_to_the_backend() {
    let fixture = common::Fixture::new();
    let router =
        Router::new(fixture.clone(), Listener::Http).with_shard_timeout(Duration::from_millis(250));
    assert_eq!(get(&router, "/windows").status(), 200);
    let timeout = fixture.last_timeout.lock().ok().and_then(|t| *t);
    assert_eq!(timeout, Some(Duration::from_millis(250)));
}
