//! The metrics listener serves `/metrics` and `/health` and nothing else; the REST listener
//! serves `/metrics` too.

mod common;

use common::{Fixture, assert_error};
use weir_admin::{Listener, Method, Request, Router};

#[test]
fn metrics_listener_serves_only_metrics_and_health() {
    let router = Router::new(Fixture::new(), Listener::Metrics);
    let metrics = router.handle(&Request::new(Method::Get, "/metrics"));
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics
            .content_type()
            .starts_with("text/plain; version=0.0.4")
    );
    assert_eq!(
        router
            .handle(&Request::new(Method::Get, "/health"))
            .status(),
        200
    );
    for target in ["/", "/status", "/pipelines", "/openapi.yaml"] {
        assert_error(
            &router.handle(&Request::new(Method::Get, target)),
            404,
            "metrics listener",
        );
    }
    assert_error(
        &router.handle(&Request::new(Method::Post, "/checkpoint")),
        404,
        "metrics listener",
    );
}

#[test]
fn rest_listener_serves_metrics_too() {
    let router = Router::new(Fixture::new(), Listener::Http);
    let metrics = router.handle(&Request::new(Method::Get, "/metrics"));
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics
            .body_str()
            .contains("stream_events_processed_total{pipeline=\"clicks\",shard=\"0\"} 1000000")
    );
}
