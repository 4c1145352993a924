//! A shard's life, as one state with explicit transitions.
//!
//! ```text
//!  Running ──stop──▶ Draining ──every other shard drained──▶ Quiesced ──Shutdown──▶ Ended
//!     └────────── input finished ──────────────────────────────▲
//!  (any state) ──Shutdown──▶ Ended
//! ```
//!
//! - **Running**: sources are read.
//! - **Draining**: a stop was asked; sources are no longer read. The shard has sent (or
//!   must send) `Drained` to every other shard, after everything it routed, and waits
//!   until every other shard has sent it `Drained` and its own queues are empty.
//! - **Quiesced**: nothing more will happen on this shard; it waits for the
//!   coordinator's final checkpoint and then for `Shutdown`.
//! - **Ended**: the loop returns.

/// The lifecycle of one shard among `shards`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifecycle {
    /// Reading sources.
    Running,
    /// Stopped reading; draining what is in flight.
    Draining {
        /// Whether `Drained` went out to every other shard.
        sent: bool,
    },
    /// Done; waiting for the final checkpoint and `Shutdown`.
    Quiesced {
        /// Whether it got here by draining after a stop (then it sends nothing more:
        /// its `Drained` was its last message) rather than by finishing its input.
        drained: bool,
    },
    /// The loop ends.
    Ended,
}

/// A transition that the state it was asked of does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a shard cannot go from {from} to {to}")]
pub struct NotAllowed {
    /// The state it was in.
    pub from: &'static str,
    /// The state asked for.
    pub to: &'static str,
}

impl Lifecycle {
    /// The state's name.
    pub fn name(&self) -> &'static str {
        match self {
            Lifecycle::Running => "running",
            Lifecycle::Draining { .. } => "draining",
            Lifecycle::Quiesced { .. } => "quiesced",
            Lifecycle::Ended => "ended",
        }
    }

    /// Whether sources may be read.
    pub fn reads_sources(&self) -> bool {
        matches!(self, Lifecycle::Running)
    }

    /// Whether a stop was asked: sources stay still, partly filled batches go at once,
    /// and no watermark is sent any more (`Drained` is the last message).
    pub fn stopping(&self) -> bool {
        matches!(
            self,
            Lifecycle::Draining { .. } | Lifecycle::Quiesced { drained: true }
        )
    }

    /// Whether the shard has quiesced (or ended).
    pub fn quiesced(&self) -> bool {
        matches!(self, Lifecycle::Quiesced { .. } | Lifecycle::Ended)
    }

    /// A stop was asked (Running → Draining); any other state stays as it is.
    pub fn stop(&mut self) {
        if *self == Lifecycle::Running {
            *self = Lifecycle::Draining { sent: false };
        }
    }

    /// Whether `Drained` must be sent now (once, on entering Draining); marks it sent.
    pub fn take_drained_to_send(&mut self) -> bool {
        match self {
            Lifecycle::Draining { sent, .. } if !*sent => {
                *sent = true;
                true
            }
            _ => false,
        }
    }

    /// Whether a draining shard has everything in: `Drained` sent, and received from
    /// every other shard (`drained_from[i]`; this shard's own slot is ignored).
    pub fn all_drained(&self, me: usize, drained_from: &[bool]) -> bool {
        matches!(self, Lifecycle::Draining { sent: true })
            && drained_from.iter().enumerate().all(|(i, &d)| d || i == me)
    }

    /// Running or Draining → Quiesced (input finished, or drained).
    pub fn quiesce(&mut self) -> Result<(), NotAllowed> {
        match self {
            Lifecycle::Running => {
                *self = Lifecycle::Quiesced { drained: false };
                Ok(())
            }
            Lifecycle::Draining { .. } => {
                *self = Lifecycle::Quiesced { drained: true };
                Ok(())
            }
            other => Err(NotAllowed {
                from: other.name(),
                to: "quiesced",
            }),
        }
    }

    /// Any state → Ended (the coordinator's `Shutdown`).
    pub fn end(&mut self) {
        *self = Lifecycle::Ended;
    }

    /// Whether the state may follow `before` (the allowed edges of the diagram).
    pub fn may_follow(&self, before: &Lifecycle) -> bool {
        use Lifecycle::*;
        matches!(
            (before, self),
            (Running, Running)
                | (Running, Draining { .. })
                | (Running, Quiesced { drained: false })
                | (Draining { .. }, Draining { .. })
                | (Draining { .. }, Quiesced { drained: true })
                | (Quiesced { .. }, Quiesced { .. })
                | (_, Ended)
        )
    }
}
