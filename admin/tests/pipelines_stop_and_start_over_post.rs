//! `POST /pipelines/{id}/stop` and `/start` change the state the API reports.

mod common;

use common::{assert_error, get, json, post, router};

#[test]
fn pipelines_stop_and_start_over_post_and_the_listing_follows() {
    let (_, router) = router();
    let stopped = post(&router, "/pipelines/clicks/stop");
    assert_eq!(stopped.status(), 200, "{}", stopped.body_str());
    assert_eq!(json(&stopped)["state"], "stopped");
    assert_eq!(json(&stopped)["id"], "clicks");
    assert_eq!(
        json(&get(&router, "/pipelines"))["pipelines"][0]["state"],
        "stopped"
    );
    assert_eq!(
        json(&get(&router, "/pipelines/clicks/stats"))["state"],
        "stopped"
    );

    // Idempotent.
    assert_eq!(
        json(&post(&router, "/pipelines/clicks/stop"))["state"],
        "stopped"
    );

    let started = post(&router, "/pipelines/clicks/start");
    assert_eq!(started.status(), 200);
    assert_eq!(json(&started)["state"], "running");
    assert_eq!(
        json(&get(&router, "/pipelines"))["pipelines"][0]["state"],
        "running"
    );
}

#[test]
fn starting_a_finished_pipeline_is_a_conflict() {
    let (_, router) = router();
    assert_error(&post(&router, "/pipelines/replay/start"), 409, "finished");
}
