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
    /// A shard's loop has ended while the engine is still running.
    ShardStopped {
        /// The shard.
        shard: usize,
    },
    /// A sink keeps failing and its circuit breaker is open: results wait.
    SinkCircuitOpen {
        /// The shard whose sink it is.
        shard: usize,
        /// The sink, as described by the runtime (e.g. `clicks: file out/clicks.jsonl`),
        /// when it knows which.
        sink: Option<String>,
        /// The sink's last error, when known (`No space left on device`, or that its
        /// file was removed or replaced under it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A source cannot accept or store input (a TCP source whose append log cannot be
    /// written: clients are refused).
    SourceFailing {
        /// The pipeline.
        pipeline: String,
        /// The shard.
        shard: usize,
        /// What went wrong.
        reason: String,
    },
    /// A complete checkpoint's sink output is not committed yet: the commit is retried
    /// with backoff, and no later checkpoint's output is committed before it.
    CommitPending {
        /// The checkpoint.
        checkpoint: u64,
        /// The last error.
        reason: String,
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
            Problem::ShardStopped { shard } => write!(f, "shard {shard} has stopped"),
            Problem::SinkCircuitOpen {
                shard,
                sink,
                reason,
            } => {
                match sink {
                    Some(sink) => {
                        write!(f, "shard {shard}: sink {sink} is failing (circuit open)")?
                    }
                    None => write!(f, "shard {shard}: a sink is failing (circuit open)")?,
                }
                match reason {
                    Some(reason) => write!(f, ": {reason}"),
                    None => Ok(()),
                }
            }
            Problem::SourceFailing {
                pipeline,
                shard,
                reason,
            } => write!(f, "pipeline {pipeline}, shard {shard}: {reason}"),
            Problem::CommitPending { checkpoint, reason } => write!(
                f,
                "checkpoint {checkpoint}'s sink output is not committed (retrying): {reason}"
            ),
            Problem::LogPoisoned { shard, reason } => {
                write!(f, "shard {shard}: append log poisoned: {reason}")
            }
            Problem::Other { reason } => f.write_str(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_read_as_sentences_and_serialise_with_their_kind() {
        let problems = [
            Problem::ShardStopped { shard: 2 },
            Problem::SinkCircuitOpen {
                shard: 0,
                sink: Some("clicks: file out/clicks.jsonl".into()),
                reason: None,
            },
            Problem::SinkCircuitOpen {
                shard: 1,
                sink: None,
                reason: Some("No space left on device (os error 28)".into()),
            },
            Problem::CommitPending {
                checkpoint: 7,
                reason: "committing out/r.jsonl: No space left on device (os error 28)".into(),
            },
        ];
        let sentences: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            sentences,
            [
                "shard 2 has stopped",
                "shard 0: sink clicks: file out/clicks.jsonl is failing (circuit open)",
                "shard 1: a sink is failing (circuit open): No space left on device (os error 28)",
                "checkpoint 7's sink output is not committed (retrying): committing out/r.jsonl: \
                 No space left on device (os error 28)",
            ]
        );
        let json = serde_json::to_string(&problems[0]).unwrap_or_default();
        assert_eq!(json, r#"{"kind":"shard_stopped","shard":2}"#);
    }
}
