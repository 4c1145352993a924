//! Unknown routes and unknown pipelines answer 404 with a JSON error.

mod common;

use common::{assert_error, get, post, router};

#[test]
fn unknown_routes_answer_404_with_a_json_error() {
    let (_, router) = router();
    for target in [
        "/nope",
        "/pipelines/clicks",
        "/pipelines/clicks/restart",
        "/state/clicks",
        "/health/",
        "/metrics/x",
    ] {
        assert_error(&get(&router, target), 404, "no route");
    }
    assert_error(&post(&router, "/nope"), 404, "no route POST /nope");
}

#[test]
fn unknown_pipelines_answer_404_on_every_pipeline_route() {
    let (_, router) = router();
    assert_error(
        &get(&router, "/pipelines/ghost/stats"),
        404,
        "unknown pipeline \"ghost\"",
    );
    assert_error(
        &post(&router, "/pipelines/ghost/start"),
        404,
        "unknown pipeline",
    );
    assert_error(
        &post(&router, "/pipelines/ghost/stop"),
        404,
        "unknown pipeline",
    );
    assert_error(&get(&router, "/state/ghost/u1"), 404, "unknown pipeline");
    assert_error(
        &get(&router, "/state?pipeline=ghost"),
        404,
        "unknown pipeline",
    );
    assert_error(
        &get(&router, "/windows?pipeline=ghost"),
        404,
        "unknown pipeline",
    );
}
