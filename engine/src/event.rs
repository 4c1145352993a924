//! The event model: a keyed, timed value with an identity.

use crate::key::Key;
use crate::time::EventTime;

/// Which source of the configuration an event came from (its index among all sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SourceId(pub u32);

/// A partition of a source: a file, a generator stream, a producer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PartitionId(pub u32);

/// A position within a partition; offsets grow within a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset(pub u64);

/// The identity of an event: (source, partition, offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventId {
    /// The source.
    pub source: SourceId,
    /// The partition within the source.
    pub partition: PartitionId,
    /// The position within the partition.
    pub offset: Offset,
}

/// One event, decoded and keyed.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The grouping key (hashed once).
    pub key: Key,
    /// Event time.
    pub time: EventTime,
    /// The value aggregated (0 for count-only pipelines without a value field).
    pub value: f64,
    /// Where the event came from.
    pub id: EventId,
}

impl Event {
    /// Makes an event.
    pub fn new(key: Key, time: EventTime, value: f64, id: EventId) -> Self {
        Self {
            key,
            time,
            value,
            id,
        }
    }
}
