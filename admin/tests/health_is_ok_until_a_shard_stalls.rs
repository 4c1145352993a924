//! `GET /health`: 200 `{"status":"ok"}`, then 503 with the reason once a shard stalls.

mod common;

use common::{get, json, router};

#[test]
fn health_is_ok_until_a_shard_stalls_then_503_names_the_shard() {
    let (fixture, router) = router();
    let healthy = get(&router, "/health");
    assert_eq!(healthy.status(), 200);
    assert_eq!(healthy.content_type(), "application/json");
    assert_eq!(healthy.body_str(), r#"{"status":"ok"}"#);

    fixture.stall();
    let sick = get(&router, "/health");
    assert_eq!(sick.status(), 503);
    assert_eq!(sick.content_type(), "application/json");
    let body = json(&sick);
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(
        body["reasons"][0],
        "shard 1 has stalled: no progress for 12000 ms"
    );
    assert_eq!(body["error"], body["reasons"][0]);
    assert_eq!(body["problems"][0]["kind"], "shard_stalled");
    assert_eq!(body["problems"][0]["shard"], 1);
    assert_eq!(body["problems"][0]["silent_ms"], 12000);
}
