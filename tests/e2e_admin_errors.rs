//! A real `weir run` with `[admin] token` set answers every kind of bad request with its
//! status and a JSON `{"error": …}`: unknown route and pipeline 404, wrong method 405,
//! bad query values 400, a missing or wrong token 401; reads stay open without a token.

mod admin_common;

use admin_common::*;

const TOKEN: &str = "s3cret-token";

#[test]
fn bad_requests_answer_404_405_400_and_401_with_a_json_error() -> TestResult {
    let engine = Engine::start(
        &generator_pipeline("clicks", 1000),
        &format!("token = \"{TOKEN}\""),
    )?;

    // Unknown routes: 404, on both listeners; the metrics listener serves only
    // /metrics and /health.
    let message = engine.get("/nope")?.error(404)?;
    assert!(message.contains("/nope"), "{message}");
    engine.get("/pipelines/clicks/nope")?.error(404)?;
    let message = get(engine.metrics, "/status")?.error(404)?;
    assert!(message.contains("metrics listener"), "{message}");
    assert_eq!(get(engine.metrics, "/metrics")?.status, 200);

    // Unknown pipelines: 404 on every route that names one.
    for path in [
        "/pipelines/ghost/stats",
        "/state/ghost/some-key",
        "/state?pipeline=ghost",
        "/windows?pipeline=ghost",
    ] {
        let message = engine.get(path)?.error(404)?;
        assert!(message.contains("ghost"), "{path}: {message}");
    }
    for path in ["/pipelines/ghost/stop", "/pipelines/ghost/start"] {
        let message = engine.post(path, Some(TOKEN))?.error(404)?;
        assert!(message.contains("ghost"), "{path}: {message}");
    }

    // Wrong methods: 405 with the allowed ones, checked before the token.
    for (method, path, allowed) in [
        ("DELETE", "/status", "GET"),
        ("POST", "/health", "GET"),
        ("PUT", "/pipelines/clicks/stats", "GET"),
        ("GET", "/checkpoint", "POST"),
        ("GET", "/pipelines/clicks/stop", "POST"),
    ] {
        let reply = request(engine.http, method, path, "")?;
        reply.error(405)?;
        let allow = reply.header("Allow").unwrap_or_default();
        assert!(allow.contains(allowed), "{method} {path}: Allow {allow:?}");
    }

    // Bad query values: 400.
    for path in [
        "/state?pipeline=clicks&limit=0",
        "/state?pipeline=clicks&limit=10001",
        "/state?pipeline=clicks&limit=ten",
        "/state?prefix=u1",
        "/state?pipeline=",
        "/state?pipeline=clicks&colour=red",
        "/windows?limit=-1",
        "/windows?pipeline=clicks&pipeline=clicks",
        "/status?verbose=1",
        "/state?pipeline=clicks&prefix=%zz",
    ] {
        let message = engine.get(path)?.error(400)?;
        assert!(!message.is_empty(), "{path}");
    }

    // POSTs need the token: 401 without it or with a wrong one, and the engine is
    // untouched.
    for token in [None, Some("wrong"), Some("")] {
        for path in ["/pipelines/clicks/stop", "/checkpoint"] {
            let reply = engine.post(path, token)?;
            reply.error(401)?;
            assert_eq!(reply.header("WWW-Authenticate"), Some("Bearer"), "{path}");
        }
    }
    let basic = request(
        engine.http,
        "POST",
        "/pipelines/clicks/stop",
        &format!("Authorization: Basic {TOKEN}\r\n"),
    )?;
    basic.error(401)?;
    let pipelines = engine.json("/pipelines", 200)?;
    assert_eq!(pipelines["pipelines"][0]["state"], "running", "{pipelines}");

    // With the token it works; reads never need it.
    let stopped = engine
        .post("/pipelines/clicks/stop", Some(TOKEN))?
        .expect(200)?;
    assert_eq!(stopped["state"], "stopped");
    let started = engine
        .post("/pipelines/clicks/start", Some(TOKEN))?
        .expect(200)?;
    assert_eq!(started["state"], "running");
    engine.json("/status", 200)?;
    Ok(())
}
