//! weir-admin: the admin thread of weir — its REST API, the Prometheus exposition and the
//! dashboard page, served by tiny_http outside the shards.
//!
//! It is the edge where operators look in: it answers HTTP, checks tokens, validates query
//! values and turns numbers into JSON and Prometheus text. It is not the runtime: it owns
//! no state, counts nothing and never touches a shard directly. What it needs from the
//! engine is the [`Backend`] trait, which the `weir` binary implements over the runtime's
//! control handle (per-shard counters, control channels with reply timeouts); everything
//! the backend answers is a plain serde type from [`model`].
//!
//! Routing is a pure function from a [`Request`] to a [`Response`] ([`Router::handle`]), so
//! every route, status code and JSON field is unit-tested without sockets; [`AdminServer`]
//! is the thin tiny_http loop around it.
//!
//! ```
//! use std::sync::Arc;
//! use weir_admin::model::*;
//! use weir_admin::{Backend, BackendError, Listener, Method, Request, Router};
//!
//! struct Idle;
//! impl Backend for Idle {
//!     fn status(&self) -> Status { Status::default() }
//!     fn health(&self) -> Health { Health::ok() }
//!     fn pipelines(&self) -> Vec<PipelineInfo> { Vec::new() }
//!     fn set_running(&self, id: &str, _: bool) -> Result<PipelineInfo, BackendError> {
//!         Err(BackendError::UnknownPipeline { id: id.to_owned() })
//!     }
//!     fn pipeline_stats(&self, id: &str) -> Result<PipelineStats, BackendError> {
//!         Err(BackendError::UnknownPipeline { id: id.to_owned() })
//!     }
//!     fn watermarks(&self) -> WatermarkReport { WatermarkReport::default() }
//!     fn state_summary(&self, _: std::time::Duration) -> Result<StateSummary, BackendError> {
//!         Ok(StateSummary::from_shards(Vec::new()))
//!     }
//!     fn state_scan(&self, _: &StateQuery, _: std::time::Duration)
//!         -> Result<Vec<WindowState>, BackendError> { Ok(Vec::new()) }
//!     fn state_key(&self, _: &str, _: &str, _: std::time::Duration)
//!         -> Result<Vec<WindowState>, BackendError> { Ok(Vec::new()) }
//!     fn windows(&self, _: Option<&str>, _: usize, _: std::time::Duration)
//!         -> Result<WindowsReport, BackendError> { Ok(WindowsReport::default()) }
//!     fn checkpoint(&self, _: std::time::Duration) -> Result<CheckpointInfo, BackendError> {
//!         Err(BackendError::Unavailable { reason: "no shards".into() })
//!     }
//!     fn checkpoints(&self) -> Vec<CheckpointInfo> { Vec::new() }
//!     fn metrics(&self) -> MetricsSnapshot { MetricsSnapshot::default() }
//! }
//!
//! let router = Router::new(Arc::new(Idle), Listener::Http);
//! let answer = router.handle(&Request::new(Method::Get, "/health"));
//! assert_eq!((answer.status(), answer.body_str()), (200, r#"{"status":"ok"}"#));
//! assert_eq!(router.handle(&Request::new(Method::Get, "/nope")).status(), 404);
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod auth;
pub mod backend;
mod error;
pub mod metrics;
pub mod model;
mod query;
mod request;
mod response;
mod route;
mod router;
mod server;

pub use backend::{Backend, BackendError};
pub use error::{Error, Result};
pub use request::{MAX_BODY_BYTES, Method, Request};
pub use response::Response;
pub use route::{Listener, ROUTES, RouteSpec};
pub use router::{DEFAULT_SHARD_TIMEOUT, Router};
pub use server::{
    AdminServer, AdminServerBuilder, AdminSockets, ConnectionTimeouts, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_WRITE_TIMEOUT,
};

/// The OpenAPI 3 description of every route, as served at `GET /openapi.yaml`.
pub const OPENAPI_YAML: &str = include_str!("../../docs/openapi.yaml");

/// The dashboard page, as served at `GET /`.
pub const DASHBOARD_HTML: &str = include_str!("dashboard.html");
