//! The route table: which paths exist, with which methods, on which listener.
//!
//! [`ROUTES`] is the one list of routes; the router, the OpenAPI document and the docs
//! follow it (a test checks that `docs/openapi.yaml` names each one).

use std::fmt;

use crate::query::{BadInput, decode};
use crate::request::Method;

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listener {
    /// `[admin] http`: every route.
    Http,
    /// `[admin] metrics`: only `GET /metrics` and `GET /health`, so the scrape port can be
    /// exposed to a monitoring network without exposing the control API.
    Metrics,
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Listener::Http => "http",
            Listener::Metrics => "metrics",
        })
    }
}

/// One route of the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    /// `GET` or `POST` (every `GET` route also answers `HEAD`).
    pub method: Method,
    /// The path pattern, with `{name}` for a percent-encoded segment.
    pub path: &'static str,
    /// What it answers.
    pub summary: &'static str,
    /// Whether the metrics listener serves it too.
    pub on_metrics_listener: bool,
}

const fn route(method: Method, path: &'static str, summary: &'static str) -> RouteSpec {
    RouteSpec {
        method,
        path,
        summary,
        on_metrics_listener: false,
    }
}

const fn both(method: Method, path: &'static str, summary: &'static str) -> RouteSpec {
    RouteSpec {
        method,
        path,
        summary,
        on_metrics_listener: true,
    }
}

/// Every route, in the order of SPEC.md §8.
pub const ROUTES: &[RouteSpec] = &[
    both(Method::Get, "/health", "ok, or 503 with the reasons"),
    route(
        Method::Get,
        "/status",
        "version, uptime, shards, totals, last checkpoint",
    ),
    route(
        Method::Get,
        "/pipelines",
        "every pipeline: id, state, source, window",
    ),
    route(
        Method::Post,
        "/pipelines/{id}/start",
        "resume reading a pipeline's sources",
    ),
    route(
        Method::Post,
        "/pipelines/{id}/stop",
        "pause reading a pipeline's sources",
    ),
    route(
        Method::Get,
        "/pipelines/{id}/stats",
        "a pipeline's counters, rate, latency, watermark",
    ),
    route(
        Method::Get,
        "/watermarks",
        "partition and operator watermarks per pipeline",
    ),
    route(
        Method::Get,
        "/state",
        "state size per shard, or a key-prefix scan",
    ),
    route(
        Method::Get,
        "/state/{pipeline}/{key}",
        "one key's open windows",
    ),
    route(
        Method::Get,
        "/windows",
        "open windows per pipeline and shard, or a list",
    ),
    route(
        Method::Post,
        "/checkpoint",
        "take a checkpoint and answer when complete",
    ),
    route(Method::Get, "/checkpoints", "retained checkpoints"),
    both(Method::Get, "/metrics", "Prometheus text format"),
    route(Method::Get, "/openapi.yaml", "this API as OpenAPI 3"),
    route(Method::Get, "/", "the dashboard"),
];

/// A resolved route with its decoded path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Dashboard,
    OpenApi,
    Health,
    Status,
    Pipelines,
    Start(String),
    Stop(String),
    Stats(String),
    Watermarks,
    State,
    StateKey { pipeline: String, key: String },
    Windows,
    Checkpoint,
    Checkpoints,
    Metrics,
}

impl Route {
    /// The route of a (percent-encoded) path; `Ok(None)` when there is none.
    pub(crate) fn resolve(path: &str) -> Result<Option<Route>, BadInput> {
        let Some(rest) = path.strip_prefix('/') else {
            return Ok(None);
        };
        let segments: Vec<&str> = rest.split('/').collect();
        let param = |raw: &str, what: &str| decode(raw, false, what);
        let route = match segments.as_slice() {
            [""] => Route::Dashboard,
            ["openapi.yaml"] => Route::OpenApi,
            ["health"] => Route::Health,
            ["status"] => Route::Status,
            ["pipelines"] => Route::Pipelines,
            ["pipelines", id, action] if !id.is_empty() => {
                let id = param(id, "the pipeline id")?;
                match *action {
                    "start" => Route::Start(id),
                    "stop" => Route::Stop(id),
                    "stats" => Route::Stats(id),
                    _ => return Ok(None),
                }
            }
            ["watermarks"] => Route::Watermarks,
            ["state"] => Route::State,
            ["state", pipeline, key] if !pipeline.is_empty() && !key.is_empty() => {
                Route::StateKey {
                    pipeline: param(pipeline, "the pipeline id")?,
                    key: param(key, "the key")?,
                }
            }
            ["windows"] => Route::Windows,
            ["checkpoint"] => Route::Checkpoint,
            ["checkpoints"] => Route::Checkpoints,
            ["metrics"] => Route::Metrics,
            _ => return Ok(None),
        };
        Ok(Some(route))
    }

    /// The methods this route answers.
    pub(crate) fn methods(&self) -> &'static [Method] {
        match self {
            Route::Start(_) | Route::Stop(_) | Route::Checkpoint => &[Method::Post],
            _ => &[Method::Get, Method::Head],
        }
    }

    /// Whether `listener` serves this route.
    pub(crate) fn served_on(&self, listener: Listener) -> bool {
        match listener {
            Listener::Http => true,
            Listener::Metrics => matches!(self, Route::Metrics | Route::Health),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_every_pattern_and_decodes_segments() {
        let r = |p: &str| Route::resolve(p).ok().flatten();
        assert_eq!(r("/"), Some(Route::Dashboard));
        assert_eq!(
            r("/pipelines/clicks/stop"),
            Some(Route::Stop("clicks".into()))
        );
        assert_eq!(
            r("/state/clicks/user%2F42%20x+y"),
            Some(Route::StateKey {
                pipeline: "clicks".into(),
                key: "user/42 x+y".into()
            })
        );
        for none in [
            "",
            "/nope",
            "/pipelines/",
            "/pipelines//stats",
            "/pipelines/a/b",
            "/health/",
        ] {
            assert_eq!(r(none), None, "{none}");
        }
        assert!(Route::resolve("/state/clicks/%zz").is_err());
    }

    #[test]
    fn the_route_table_resolves_to_routes_with_its_methods() {
        for spec in ROUTES {
            let path = spec
                .path
                .replace("{id}", "p")
                .replace("{pipeline}", "p")
                .replace("{key}", "k");
            let route = Route::resolve(&path).ok().flatten();
            let methods = route.as_ref().map(Route::methods);
            assert!(
                methods.is_some_and(|m| m.contains(&spec.method)),
                "{}",
                spec.path
            );
            let on_metrics = route.is_some_and(|r| r.served_on(Listener::Metrics));
            assert_eq!(on_metrics, spec.on_metrics_listener, "{}", spec.path);
        }
    }
}
