//! A shard that does not answer in time turns every shard query into a 503, never a hang.

mod common;

use common::{assert_error, get, post, router};

#[test]
fn shard_timeout_answers_503_on_every_route_that_asks_the_shards() {
    let (fixture, router) = router();
    fixture.stall();
    for target in [
        "/state",
        "/state?pipeline=clicks",
        "/state/clicks/u1",
        "/windows",
        "/windows?pipeline=clicks",
    ] {
        assert_error(
            &get(&router, target),
            503,
            "shard 1 did not answer within 2000 ms",
        );
    }
    assert_error(&post(&router, "/checkpoint"), 503, "did not answer");
    // Counters are read without asking the shards, so these still answer.
    for target in [
        "/status",
        "/pipelines",
        "/pipelines/clicks/stats",
        "/watermarks",
        "/checkpoints",
        "/metrics",
    ] {
        assert_eq!(get(&router, target).status(), 200, "{target}");
    }
}
