//! What the admin thread needs from the engine: the [`Backend`] trait.
//!
//! The `weir` binary implements it over the runtime's control handle. The contract:
//!
//! - Methods without a `timeout` read published counters and gauges (per-shard relaxed
//!   atomics, the checkpoint registry) and answer at once; they never wait on a shard.
//! - Methods with a `timeout` ask shards over their control channels and wait at most
//!   `timeout` for all replies; a shard that did not answer in time is a
//!   [`BackendError::Timeout`] (the API answers 503), never a hang of the admin thread.
//! - An id that names no configured pipeline is a [`BackendError::UnknownPipeline`] (404).
//!
//! Every method is called from the admin thread(s), possibly two at once (the REST and the
//! metrics listener each have one), hence `Send + Sync`.

use std::time::Duration;

use crate::model::{
    CheckpointInfo, Health, MetricsSnapshot, PipelineInfo, PipelineStats, StateQuery, StateSummary,
    Status, WatermarkReport, WindowState, WindowsReport,
};

/// The engine as the admin API sees it.
pub trait Backend: Send + Sync + 'static {
    /// Version, uptime, shards, totals and the last checkpoint (`GET /status`).
    fn status(&self) -> Status;

    /// Healthy, or every current problem (`GET /health`): a shard that stopped making
    /// progress, a sink whose circuit is open, a poisoned log.
    fn health(&self) -> Health;

    /// Every configured pipeline, in config order (`GET /pipelines`).
    fn pipelines(&self) -> Vec<PipelineInfo>;

    /// Resumes (`running = true`) or pauses reading a pipeline's sources, and answers the
    /// pipeline afterwards (`POST /pipelines/{id}/start|stop`). Idempotent: stopping a
    /// stopped pipeline succeeds. Pausing keeps all state and never makes a partition idle.
    /// Starting a finished pipeline is a [`BackendError::Conflict`].
    fn set_running(&self, id: &str, running: bool) -> Result<PipelineInfo, BackendError>;

    /// One pipeline's counters, rate, latency, open windows and watermark
    /// (`GET /pipelines/{id}/stats`).
    fn pipeline_stats(&self, id: &str) -> Result<PipelineStats, BackendError>;

    /// Every pipeline's partition and operator watermarks (`GET /watermarks`).
    fn watermarks(&self) -> WatermarkReport;

    /// Every shard's state and log size (`GET /state`), asked of the shards.
    fn state_summary(&self, timeout: Duration) -> Result<StateSummary, BackendError>;

    /// At most `query.limit` open windows of the keys of `query.pipeline` that start with
    /// `query.prefix`, ordered by key then window start (`GET /state?pipeline=…`), asked of
    /// every shard.
    fn state_scan(
        &self,
        query: &StateQuery,
        timeout: Duration,
    ) -> Result<Vec<WindowState>, BackendError>;

    /// Every open window of one key (`GET /state/{pipeline}/{key}`), asked of the one shard
    /// that owns the key's group. An unknown key is an empty list, not an error.
    fn state_key(
        &self,
        pipeline: &str,
        key: &str,
        timeout: Duration,
    ) -> Result<Vec<WindowState>, BackendError>;

    /// Open windows per pipeline and shard (of `pipeline` only, when given), and at most
    /// `limit` of the windows themselves; `limit = 0` asks for the counts only
    /// (`GET /windows`).
    fn windows(
        &self,
        pipeline: Option<&str>,
        limit: usize,
        timeout: Duration,
    ) -> Result<WindowsReport, BackendError>;

    /// Takes a checkpoint and answers once its manifest is written (`POST /checkpoint`);
    /// if it is not complete within `timeout`, a [`BackendError::Timeout`] (the checkpoint
    /// may still complete later and then shows in [`Backend::checkpoints`]).
    fn checkpoint(&self, timeout: Duration) -> Result<CheckpointInfo, BackendError>;

    /// The retained complete checkpoints, oldest first (`GET /checkpoints`).
    fn checkpoints(&self) -> Vec<CheckpointInfo>;

    /// Every number `GET /metrics` exposes.
    fn metrics(&self) -> MetricsSnapshot;
}

/// Why the backend could not answer a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// No configured pipeline has this id (HTTP 404).
    #[error("unknown pipeline {id:?}")]
    UnknownPipeline {
        /// The id asked for.
        id: String,
    },
    /// A shard did not answer its control channel in time (HTTP 503).
    #[error("{}", timeout_message(*.shard, *.waited_ms))]
    Timeout {
        /// The shard that did not answer, if one is known.
        shard: Option<usize>,
        /// How long the backend waited, in ms.
        waited_ms: u64,
    },
    /// The engine cannot answer now: starting up, shutting down, poisoned (HTTP 503).
    #[error("unavailable: {reason}")]
    Unavailable {
        /// A sentence for humans.
        reason: String,
    },
    /// The request is well-formed but makes no sense to the engine (HTTP 400).
    #[error("{reason}")]
    Invalid {
        /// A sentence for humans.
        reason: String,
    },
    /// The request conflicts with the pipeline's state, e.g. starting a finished pipeline
    /// or a checkpoint while one is in progress (HTTP 409).
    #[error("{reason}")]
    Conflict {
        /// A sentence for humans.
        reason: String,
    },
}

fn timeout_message(shard: Option<usize>, waited_ms: u64) -> String {
    match shard {
        Some(shard) => format!("shard {shard} did not answer within {waited_ms} ms"),
        None => format!("the shards did not answer within {waited_ms} ms"),
    }
}
