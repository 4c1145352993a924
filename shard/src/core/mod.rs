//! The shard's decisions, apart from its I/O: a pure core.
//!
//! Nothing here touches glommio, channels, clocks or files. Each part takes what
//! happened (a message from inbox `i`, a poll's events, a stop request, "now" as a
//! number) and returns what to do (messages to queue, inboxes to hold or release,
//! "snapshot now", "stop reading sources"). The driver (`shard.rs`) carries the
//! decisions out; the parts are tested alone, the alignment against a model.
//!
//! - [`alignment`]: which checkpoint to start, which inbox to hold, when to snapshot.
//! - [`lifecycle`]: running, draining, quiesced, ended, as one state.
//! - [`batching`]: when a batch goes (full, lingering, all at a stop) and when a
//!   watermark goes after it.
//! - [`outbox`]: messages waiting for each destination; backpressure.
//! - [`route`]: each polled event to the shard that owns its key group.

pub mod alignment;
pub mod batching;
pub mod lifecycle;
pub mod outbox;
pub mod route;

#[cfg(test)]
mod tests;

pub use alignment::Alignment;
pub use lifecycle::Lifecycle;
pub use outbox::{Offer, Outbox};
