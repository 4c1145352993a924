//! With `[admin] token` set, every POST needs `Authorization: Bearer <token>`; reads don't.

mod common;

use common::{Fixture, assert_error, json};
use weir_admin::{Listener, Method, Request, Router};

fn guarded() -> Router {
    Router::new(Fixture::new(), Listener::Http).with_token(Some("s3cret".into()))
}

#[test]
fn every_post_needs_the_bearer_token_when_one_is_set() {
    let router = guarded();
    for target in [
        "/checkpoint",
        "/pipelines/clicks/stop",
        "/pipelines/clicks/start",
        "/pipelines/ghost/stop",
    ] {
        let missing = router.handle(&Request::new(Method::Post, target));
        assert_error(&missing, 401, "Authorization: Bearer");
        assert_eq!(missing.header("WWW-Authenticate"), Some("Bearer"));
        let wrong =
            Request::new(Method::Post, target).with_header("Authorization", "Bearer s3creT");
        assert_error(&router.handle(&wrong), 401, "wrong token");
        let basic = Request::new(Method::Post, target).with_header("Authorization", "Basic s3cret");
        assert_error(&router.handle(&basic), 401, "Authorization: Bearer");
    }
    let right = Request::new(Method::Post, "/pipelines/clicks/stop")
        .with_header("authorization", "Bearer s3cret");
    let answer = router.handle(&right);
    assert_eq!(answer.status(), 200, "{}", answer.body_str());
    assert_eq!(json(&answer)["state"], "stopped");
}

#[test]
fn reads_need_no_token() {
    let router = guarded();
    for target in ["/health", "/status", "/pipelines", "/metrics", "/"] {
        assert_eq!(
            router.handle(&Request::new(Method::Get, target)).status(),
            200,
            "{target}"
        );
    }
}

#[test]
fn an_empty_token_guards_nothing() {
    let router = Router::new(Fixture::new(), Listener::Http).with_token(Some(String::new()));
    assert_eq!(
        router
            .handle(&Request::new(Method::Post, "/checkpoint"))
            .status(),
        200
    );
}
