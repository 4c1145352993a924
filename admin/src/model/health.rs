//! Whether the engine is healthy, and if not, why.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The health of the engine: healthy when there is no problem.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Every current problem; empty when healthy.
    pub problems: Vec<Problem>,
}

impl Health {
    /// A healthy engine.
    pub fn ok() -> Self {
        Self::default()
    }

    /// Whether there is no problem.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One reason the engine is unhealthy. `GET /health` answers 503 while any exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Problem {
    /// A shard has not made progress (nor answered its control channel) for a while.
    ShardStalled {
        /// The shard.
        shard: usize,
        /// How long it has been silent, in ms.
        silent_ms: u64,
    },
    /// A sink keeps failing and its circuit breaker is open: results wait.
    SinkCircuitOpen {
        /// The pipeline of the sink.
        pipeline: String,
        /// The sink, as described by the runtime (e.g. `file out/clicks.jsonl`).
        sink: String,
    },
    /// A shard's append log failed to sync and was poisoned; the engine is stopping.
    LogPoisoned {
        /// The shard.
        shard: usize,
        /// What the operating system said.
        reason: String,
    },
    /// Anything else the runtime wants an operator to see.
    Other {
        /// A sentence for humans.
        reason: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::ShardStalled { shard, silent_ms } => {
                write!(
                    f,
                    "shard {shard} has stalled: no progress for {silent_ms} ms"
                )
            }
            Problem::SinkCircuitOpen { pipeline, sink } => {
                write!(
                    f,
                    "pipeline {pipeline}: sink {sink} is failing (circuit open)"
                )
            }
            Problem::LogPoisoned { shard, reason } => {
                write!(f, "shard {shard}: append log poisoned: {reason}")
            }
            Problem::Other { reason } => f.write_str(reason),
        }
    }
}
