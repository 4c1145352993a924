//! Deduplication by event identity.
//!
//! Offsets grow within a partition, so the highest offset applied per (source, partition)
//! is all that needs remembering: an event at or below it was applied already (a replay
//! after recovery, a producer's resend) and is skipped. The positions are part of every
//! checkpoint.

use std::collections::HashMap;

use crate::event::{EventId, Offset, PartitionId, SourceId};

/// Remembers the highest offset applied per (source, partition).
#[derive(Debug, Clone, Default)]
pub struct DedupTracker {
    applied: HashMap<(SourceId, PartitionId), Offset>,
    duplicates: u64,
}

impl DedupTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the event is new; if so it is recorded as applied.
    #[inline]
    pub fn admit(&mut self, id: EventId) -> bool {
        match self.applied.entry((id.source, id.partition)) {
            std::collections::hash_map::Entry::Occupied(mut o) => {
                if id.offset <= *o.get() {
                    self.duplicates += 1;
                    false
                } else {
                    o.insert(id.offset);
                    true
                }
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(id.offset);
                true
            }
        }
    }

    /// Events rejected as duplicates so far.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// The applied positions, for a checkpoint.
    pub fn positions(&self) -> impl Iterator<Item = (SourceId, PartitionId, Offset)> + '_ {
        self.applied.iter().map(|(&(s, p), &o)| (s, p, o))
    }

    /// Restores a position from a checkpoint (keeps the higher of the two).
    pub fn restore(&mut self, source: SourceId, partition: PartitionId, offset: Offset) {
        let slot = self.applied.entry((source, partition)).or_insert(offset);
        *slot = (*slot).max(offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(p: u32, o: u64) -> EventId {
        EventId {
            source: SourceId(0),
            partition: PartitionId(p),
            offset: Offset(o),
        }
    }

    #[test]
    fn replayed_offsets_are_rejected_per_partition() {
        let mut d = DedupTracker::new();
        assert!(d.admit(id(0, 1)));
        assert!(d.admit(id(0, 2)));
        assert!(d.admit(id(1, 1)));
        assert!(!d.admit(id(0, 2)));
        assert!(!d.admit(id(0, 0)));
        assert!(d.admit(id(0, 3)));
        assert_eq!(d.duplicates(), 2);
    }
}
