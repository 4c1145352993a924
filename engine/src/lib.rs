//! weir-engine: the semantics of weir — events, key groups, window assigners, aggregates,
//! the window operator and watermark tracking.
//!
//! It is pure: no I/O, no threads, no clocks (the caller passes processing time in). Every
//! rule of the windowing contract is a function of (events in arrival order, watermarks)
//! → results, so it can be tested against a brute-force reference to exhaustion. The
//! runtime (weir-shard) moves events between cores and calls into it.
//!
//! ```
//! use weir_config::{Aggregate, Window, WindowKind};
//! use weir_engine::{AggSpec, Event, EventId, EventTime, Key, Output, Watermark, WindowOperator};
//!
//! let window = Window { kind: WindowKind::Tumbling { size_ms: 1000 }, allowed_lateness_ms: 0 };
//! let mut op = WindowOperator::new(&window, AggSpec::new(&[Aggregate::Count, Aggregate::Sum], 3));
//! let mut out = Output::default();
//! for (ts, v) in [(10, 1.0), (990, 2.0), (1500, 4.0)] {
//!     op.process(&Event::new(Key::new("u1"), EventTime(ts), v, EventId::default()), &mut out);
//! }
//! op.advance_watermark(Watermark(1000), &mut out);
//! assert_eq!(out.results.len(), 1);
//! assert_eq!((out.results[0].count, out.results[0].sum), (2, 3.0));
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod aggregate;
pub mod chain;
pub mod decode;
pub mod event;
pub mod key;
pub mod operator;
pub mod result;
// rkyv's derive makes archived twins of the snapshot types, which carry no docs.
#[allow(missing_docs)]
pub mod snapshot;
pub mod time;
pub mod watermark;

pub use aggregate::{Accumulator, AggSpec};
pub use decode::{EventDecoder, Invalid, InvalidReason};
pub use event::{Event, EventId, Offset, PartitionId, SourceId};
pub use key::{Key, KeyGroup, KeyGroupMap, KeyGroupRange};
pub use operator::{
    FrozenState, LateEvent, OpenWindow, Output, StateStats, Verdict, WindowOperator, WindowResult,
};
pub use result::ResultEncoder;
pub use time::{EventTime, Watermark};
pub use watermark::{InputState, PartitionClock, WatermarkTracker};
