//! A known route with the wrong method answers 405 and says which methods it takes.

mod common;

use common::{assert_error, router};
use weir_admin::{Method, Request};

#[test]
fn wrong_method_answers_405_with_an_allow_header() {
    let (_, router) = router();
    let cases = [
        (Method::Post, "/status", "GET, HEAD"),
        (Method::Delete, "/pipelines", "GET, HEAD"),
        (Method::Get, "/pipelines/clicks/start", "POST"),
        (Method::Get, "/pipelines/ghost/stop", "POST"),
        (Method::Put, "/checkpoint", "POST"),
        (Method::Get, "/checkpoint", "POST"),
        (Method::Post, "/metrics", "GET, HEAD"),
        (Method::Options, "/health", "GET, HEAD"),
    ];
    for (method, target, allow) in cases {
        let answer = router.handle(&Request::new(method, target));
        assert_error(&answer, 405, "not allowed");
        assert_eq!(answer.header("Allow"), Some(allow), "{method} {target}");
    }
}

#[test]
fn head_is_answered_like_get() {
    let (_, router) = router();
    let answer = router.handle(&Request::new(Method::Head, "/status"));
    assert_eq!(answer.status(), 200);
}
