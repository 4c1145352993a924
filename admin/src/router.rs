//! The router: a pure function from a [`Request`] to a [`Response`].
//!
//! Checks run in a fixed order, so each failure has one answer: the target's length (400),
//! the route (404), the method (405 with `Allow`), the body's size (400), the token on a
//! `POST` (401), the query values (400); only then is the backend asked, and its errors
//! become 404 (unknown pipeline), 503 (a shard timed out, or the engine is unavailable),
//! 400 or 409. Every error body is `{"error": "..."}` as `application/json`.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::auth::authorize;
use crate::backend::{Backend, BackendError};
use crate::metrics;
use crate::model::{StateQuery, WindowState};
use crate::query::{BadInput, DEFAULT_LIMIT, MAX_TARGET_BYTES, Query};
use crate::request::{MAX_BODY_BYTES, Method, Request};
use crate::response::{HTML, PROMETHEUS, Response, YAML};
use crate::route::{Listener, Route};

/// How long a request that asks the shards waits for them, unless configured otherwise.
pub const DEFAULT_SHARD_TIMEOUT: Duration = Duration::from_secs(2);

/// Routes requests of one listener to a [`Backend`].
#[derive(Clone)]
pub struct Router {
    backend: Arc<dyn Backend>,
    listener: Listener,
    token: Option<String>,
    shard_timeout: Duration,
}

impl Router {
    /// A router for `listener` with no token and [`DEFAULT_SHARD_TIMEOUT`].
    pub fn new(backend: Arc<dyn Backend>, listener: Listener) -> Self {
        Self {
            backend,
            listener,
            token: None,
            shard_timeout: DEFAULT_SHARD_TIMEOUT,
        }
    }

    /// Requires `Authorization: Bearer <token>` on every `POST` when `token` is set.
    #[must_use]
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.is_empty());
        self
    }

    /// How long requests that ask the shards wait for them.
    #[must_use]
    pub fn with_shard_timeout(mut self, timeout: Duration) -> Self {
        self.shard_timeout = timeout;
        self
    }

    /// Answers one request.
    pub fn handle(&self, request: &Request) -> Response {
        self.route(request).unwrap_or_else(|answer| answer)
    }

    fn route(&self, request: &Request) -> Result<Response, Response> {
        if request.target().len() > MAX_TARGET_BYTES {
            return Err(bad_request(&BadInput::TargetTooLong));
        }
        let method = request.method();
        let route = Route::resolve(request.path())
            .map_err(|e| bad_request(&e))?
            .filter(|route| route.served_on(self.listener))
            .ok_or_else(|| self.not_found(method, request.path()))?;
        let allowed = route.methods();
        if !allowed.contains(&method) {
            let allow: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
            let message = format!("{method} is not allowed here; use {}", allow.join(" or "));
            return Err(Response::error(405, &message).with_header("Allow", allow.join(", ")));
        }
        let declared = request
            .header("Content-Length")
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if request.body().len() > MAX_BODY_BYTES || declared > MAX_BODY_BYTES as u64 {
            let message = format!("the body is larger than {MAX_BODY_BYTES} bytes");
            return Err(Response::error(400, &message));
        }
        if method == Method::Post {
            authorize(self.token.as_deref(), request).map_err(|e| {
                Response::error(401, &e.to_string()).with_header("WWW-Authenticate", "Bearer")
            })?;
        }
        self.dispatch(route, request.query())
    }

    fn not_found(&self, method: Method, path: &str) -> Response {
        let path: String = path.chars().take(200).collect();
        let message = match self.listener {
            Listener::Http => format!("no route {method} {path}"),
            Listener::Metrics => format!(
                "no route {method} {path} on the metrics listener (it serves /metrics and /health)"
            ),
        };
        Response::error(404, &message)
    }

    fn dispatch(&self, route: Route, query: Option<&str>) -> Result<Response, Response> {
        let backend = self.backend.as_ref();
        let timeout = self.shard_timeout;
        let no_params = || Query::parse(query, &[]).map_err(|e| bad_request(&e));
        match route {
            Route::Dashboard => {
                no_params().map(|_| Response::new(200, HTML, crate::DASHBOARD_HTML))
            }
            Route::OpenApi => no_params().map(|_| Response::new(200, YAML, crate::OPENAPI_YAML)),
            Route::Health => no_params().map(|_| self.health()),
            Route::Status => no_params().map(|_| ok(&backend.status())),
            Route::Pipelines => no_params().map(|_| {
                ok(&Pipelines {
                    pipelines: backend.pipelines(),
                })
            }),
            Route::Start(id) => {
                no_params()?;
                answer(backend.set_running(&id, true))
            }
            Route::Stop(id) => {
                no_params()?;
                answer(backend.set_running(&id, false))
            }
            Route::Stats(id) => {
                no_params()?;
                answer(backend.pipeline_stats(&id))
            }
            Route::Watermarks => no_params().map(|_| ok(&backend.watermarks())),
            Route::State => self.state(query),
            Route::StateKey { pipeline, key } => {
                no_params()?;
                let windows = backend.state_key(&pipeline, &key, timeout);
                answer(windows.map(|windows| KeyState {
                    pipeline,
                    key,
                    windows,
                }))
            }
            Route::Windows => {
                let q = Query::parse(query, &["pipeline", "limit"]).map_err(|e| bad_request(&e))?;
                let pipeline = q.non_empty("pipeline").map_err(|e| bad_request(&e))?;
                let limit = q.limit().map_err(|e| bad_request(&e))?;
                // Without parameters only the counts are asked for (limit 0).
                let limit = match (pipeline, limit) {
                    (None, None) => 0,
                    (_, limit) => limit.unwrap_or(DEFAULT_LIMIT),
                };
                answer(backend.windows(pipeline, limit, timeout))
            }
            Route::Checkpoint => {
                no_params()?;
                answer(backend.checkpoint(timeout))
            }
            Route::Checkpoints => no_params().map(|_| {
                ok(&Checkpoints {
                    checkpoints: backend.checkpoints(),
                })
            }),
            Route::Metrics => no_params()
                .map(|_| Response::new(200, PROMETHEUS, metrics::render(&backend.metrics()))),
        }
    }

    fn health(&self) -> Response {
        let health = self.backend.health();
        if health.is_ok() {
            return ok(&serde_json::json!({ "status": "ok" }));
        }
        let reasons: Vec<String> = health.problems.iter().map(ToString::to_string).collect();
        let body = serde_json::json!({
            "status": "unhealthy",
            "error": reasons.join("; "),
            "reasons": reasons,
            "problems": health.problems,
        });
        Response::json(503, &body)
    }

    fn state(&self, query: Option<&str>) -> Result<Response, Response> {
        let q =
            Query::parse(query, &["pipeline", "prefix", "limit"]).map_err(|e| bad_request(&e))?;
        let pipeline = q.non_empty("pipeline").map_err(|e| bad_request(&e))?;
        let limit = q.limit().map_err(|e| bad_request(&e))?;
        // An empty parameter is a 400, as everywhere: leave `prefix` out to list all keys.
        let prefix = q.non_empty("prefix").map_err(|e| bad_request(&e))?;
        let Some(pipeline) = pipeline else {
            if prefix.is_some() || limit.is_some() {
                let needs = if prefix.is_some() { "prefix" } else { "limit" };
                return Err(bad_request(&BadInput::Missing {
                    needs,
                    missing: "pipeline",
                }));
            }
            return answer(self.backend.state_summary(self.shard_timeout));
        };
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        // One more than asked tells whether the list was cut.
        let scan = StateQuery {
            pipeline: pipeline.to_owned(),
            prefix: prefix.unwrap_or_default().to_owned(),
            limit: limit + 1,
        };
        let windows = self.backend.state_scan(&scan, self.shard_timeout);
        answer(windows.map(|mut windows| {
            let truncated = windows.len() > limit;
            windows.truncate(limit);
            Scan {
                pipeline: scan.pipeline,
                prefix: scan.prefix,
                limit,
                windows,
                truncated,
            }
        }))
    }
}

/// `GET /pipelines`.
#[derive(Serialize)]
struct Pipelines {
    pipelines: Vec<crate::model::PipelineInfo>,
}

/// `GET /checkpoints`.
#[derive(Serialize)]
struct Checkpoints {
    checkpoints: Vec<crate::model::CheckpointInfo>,
}

/// `GET /state?pipeline=…`.
#[derive(Serialize)]
struct Scan {
    pipeline: String,
    prefix: String,
    limit: usize,
    windows: Vec<WindowState>,
    truncated: bool,
}

/// `GET /state/{pipeline}/{key}`.
#[derive(Serialize)]
struct KeyState {
    pipeline: String,
    key: String,
    windows: Vec<WindowState>,
}

fn ok(value: &impl Serialize) -> Response {
    Response::json(200, value)
}

fn bad_request(e: &BadInput) -> Response {
    Response::error(400, &e.to_string())
}

fn answer<T: Serialize>(result: Result<T, BackendError>) -> Result<Response, Response> {
    result.map(|value| ok(&value)).map_err(|e| {
        let status = match e {
            BackendError::UnknownPipeline { .. } => 404,
            BackendError::Timeout { .. } | BackendError::Unavailable { .. } => 503,
            BackendError::Invalid { .. } => 400,
            BackendError::Conflict { .. } => 409,
        };
        Response::error(status, &e.to_string())
    })
}
