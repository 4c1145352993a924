//! Window state split into slices by key hash, each slice a hash table behind an `Arc`,
//! so that a checkpoint freezes the state by cloning pointers, not by copying entries.
//!
//! Freezing marks every slot shared and hands out a clone of its `Arc`; the snapshot is
//! read from those frozen tables on another thread. The shard copies a slot's table
//! only when it first changes it while a snapshot may still hold it (`Arc::make_mut`),
//! so the synchronous part of a checkpoint costs one pointer clone per non-empty slot,
//! whatever the size of the state, and a slot the snapshot has already let go of is not
//! copied at all.
//!
//! Entries carry the epoch of their last change (a stamp) and so does each slot, so that
//! an incremental snapshot writes only what changed since an earlier checkpoint, skipping
//! unchanged slots without reading them.
//!
//! The slice of a key is bits 16..26 of its hash: not the upper 32 bits that pick its key
//! group (so one shard's keys spread over every slice) and not the low bits its table
//! uses for buckets (so keys of one slice still spread over that table's buckets, up to
//! 65,536 buckets per slice: 64 M keys per shard).

use std::sync::Arc;

use hashbrown::HashTable;

/// Slices of an operator's state.
pub const SLICES: usize = 1024;

const SLICE_SHIFT: u32 = 16;

/// The slice of a key hash.
#[inline]
pub fn slice_of(hash: u64) -> usize {
    ((hash >> SLICE_SHIFT) as usize) & (SLICES - 1)
}

/// One slice of a [`Sliced`] table.
#[derive(Debug)]
struct Slot<T> {
    table: Arc<HashTable<T>>,
    /// Whether a frozen snapshot may hold a clone of `table`. While false, `table` is
    /// the only reference to its allocation.
    shared: bool,
    /// Epoch of the last change to the slot.
    stamp: u64,
}

/// A frozen slot: its index, the epoch of its last change, and its table as it was.
#[derive(Debug, Clone)]
pub(crate) struct FrozenSlot<T> {
    /// The slice.
    pub slice: usize,
    /// Epoch of the last change to it before it was frozen.
    pub stamp: u64,
    /// Its entries, as they were when frozen.
    pub table: Arc<HashTable<T>>,
}

/// A hash table split into [`SLICES`] copy-on-write slices.
#[derive(Debug)]
pub(crate) struct Sliced<T> {
    slots: Vec<Slot<T>>,
}

impl<T: Clone> Default for Sliced<T> {
    fn default() -> Self {
        Self::with_capacities(|_| 0)
    }
}

impl<T: Clone> Sliced<T> {
    /// Empty slices, slice `i` sized for `capacity(i)` entries.
    pub fn with_capacities(capacity: impl Fn(usize) -> usize) -> Self {
        Self {
            slots: (0..SLICES)
                .map(|i| Slot {
                    table: Arc::new(HashTable::with_capacity(capacity(i))),
                    shared: false,
                    stamp: 0,
                })
                .collect(),
        }
    }

    /// Entries in slice `i`.
    pub fn slice_len(&self, i: usize) -> usize {
        self.slots.get(i).map_or(0, |s| s.table.len())
    }

    /// The table of the slice of `hash`, to read.
    #[inline]
    pub fn table(&self, hash: u64) -> &HashTable<T> {
        &self.slots[slice_of(hash)].table
    }

    /// The table of the slice of `hash`, to change at `epoch`: copied first if a frozen
    /// snapshot still holds it.
    #[inline]
    pub fn table_mut(&mut self, hash: u64, epoch: u64) -> &mut HashTable<T> {
        let slot = &mut self.slots[slice_of(hash)];
        slot.stamp = epoch;
        if slot.shared {
            // Copies the table only if a snapshot still holds it; either way the slot's
            // Arc is unique afterwards.
            Arc::make_mut(&mut slot.table);
            slot.shared = false;
        }
        unique_mut(&mut slot.table)
    }

    /// Every entry, slice by slice.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flat_map(|s| s.table.iter())
    }

    /// Entries over all slices.
    pub fn len(&self) -> usize {
        self.slots.iter().map(|s| s.table.len()).sum()
    }

    /// Bytes allocated by the tables.
    pub fn allocation_size(&self) -> usize {
        self.slots.iter().map(|s| s.table.allocation_size()).sum()
    }

    /// Freezes the non-empty slices: one `Arc` clone each. Until a slice is next
    /// changed, it and the frozen copy share their entries.
    pub fn freeze(&mut self) -> Vec<FrozenSlot<T>> {
        let mut frozen = Vec::new();
        for (slice, slot) in self.slots.iter_mut().enumerate() {
            if slot.table.is_empty() {
                continue;
            }
            slot.shared = true;
            frozen.push(FrozenSlot {
                slice,
                stamp: slot.stamp,
                table: Arc::clone(&slot.table),
            });
        }
        frozen
    }
}

/// The table of a slot that no snapshot holds.
#[inline]
#[allow(unsafe_code)]
fn unique_mut<T>(table: &mut Arc<HashTable<T>>) -> &mut HashTable<T> {
    // SAFETY: called only on a slot whose `shared` is false. `shared` is set true by
    // `freeze`, the only place that clones a slot's Arc, and set false only right after
    // `Arc::make_mut`, which leaves the Arc unique (its Acquire ordering also makes the
    // last frozen clone's drop, on another thread, happen before). No `Weak` is ever made
    // of a slot's Arc, and the Arc is private to the slot. So while `shared` is false
    // this Arc is the only pointer to the allocation, and the `&mut` borrow of it rules
    // out any other borrow: handing out `&mut` to the contents is what `Arc::get_mut`
    // would do, without its two atomic operations on every event.
    unsafe { &mut *Arc::as_ptr(table).cast_mut() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_slice_keeps_its_entries_while_the_live_one_changes() {
        let mut s: Sliced<(u64, u32)> = Sliced::default();
        let hash = 7u64 << SLICE_SHIFT;
        s.table_mut(hash, 1).insert_unique(hash, (hash, 1), |e| e.0);
        let frozen = s.freeze();
        assert_eq!(frozen.len(), 1);
        assert_eq!(frozen[0].slice, 7);
        assert_eq!(frozen[0].stamp, 1);
        if let Some(e) = s.table_mut(hash, 2).find_mut(hash, |e| e.0 == hash) {
            e.1 = 2;
        }
        assert_eq!(
            frozen[0].table.find(hash, |e| e.0 == hash),
            Some(&(hash, 1))
        );
        assert_eq!(s.table(hash).find(hash, |e| e.0 == hash), Some(&(hash, 2)));
        // Once the snapshot lets go, changes need no copy and stay visible.
        drop(frozen);
        let again = s.freeze();
        assert_eq!(again[0].stamp, 2);
        drop(again);
        if let Some(e) = s.table_mut(hash, 3).find_mut(hash, |e| e.0 == hash) {
            e.1 = 3;
        }
        assert_eq!(s.table(hash).find(hash, |e| e.0 == hash), Some(&(hash, 3)));
        assert_eq!(s.len(), 1);
    }
}
