//! Window state split into slots by key hash, so that a checkpoint freezes the state by
//! moving tables, not by copying entries.
//!
//! Freezing moves each non-empty slot's table into an `Arc` (the slot keeps it as its
//! frozen base) and hands out a clone; the snapshot is read from those frozen tables on
//! another thread. Reads of a frozen slot read its base. The first change to it takes the
//! table back: moved, if the snapshot has let go of it, or else copied (copy-on-write). So
//! the synchronous part of a checkpoint costs one small allocation per non-empty slot,
//! whatever the size of the state, and the hot path reads a table held in the slot itself
//! behind one test of the base.
//!
//! A key belongs to one of [`SLICES`] slices: bits 16..26 of its hash, not the upper 32
//! bits that pick its key group (so one shard's keys spread over every slice) and not the
//! low bits its table uses for buckets. Incremental checkpoints and their compaction work
//! on slices. A table holds the slices congruent to its index modulo the number of slots,
//! a power of two that grows with the state (a slot is split when it holds more than
//! [`MAX_SLOT_LEN`] entries) up to one slot per slice: a small state (a short window's
//! pane) is one table, as fast as a plain hash table, and copying a slot costs at most
//! about [`MAX_SLOT_LEN`] entries until the state is a thousand times larger.
//!
//! Entries carry the epoch of their last change (a stamp) and so does each slot, so that
//! an incremental snapshot writes only what changed since an earlier checkpoint, skipping
//! unchanged slots without reading them.

use std::sync::Arc;

use hashbrown::HashTable;

/// Slices of an operator's state.
pub const SLICES: usize = 1024;

/// A slot holding more entries than this is split in two (while there are fewer slots
/// than slices).
pub const MAX_SLOT_LEN: usize = 2048;

const SLICE_SHIFT: u32 = 16;

/// The slice of a key hash.
#[inline]
pub fn slice_of(hash: u64) -> usize {
    ((hash >> SLICE_SHIFT) as usize) & (SLICES - 1)
}

/// An entry of a sliced table: it knows its key's hash.
pub(crate) trait Hashed {
    /// The stable hash of the entry's key.
    fn key_hash(&self) -> u64;
}

/// One slot of a [`Sliced`] table.
#[derive(Debug)]
struct Slot<T> {
    /// The slot's entries, unless it is frozen.
    table: HashTable<T>,
    /// When frozen: its entries (and `table` is empty), shared with a snapshot.
    base: Option<Arc<HashTable<T>>>,
    /// Epoch of the last change to the slot.
    stamp: u64,
}

impl<T: Clone> Slot<T> {
    fn with_capacity(capacity: usize, stamp: u64) -> Self {
        Slot {
            table: HashTable::with_capacity(capacity),
            base: None,
            stamp,
        }
    }

    #[inline]
    fn entries(&self) -> &HashTable<T> {
        match &self.base {
            Some(base) => base,
            None => &self.table,
        }
    }

    /// Takes a frozen slot's table back: moved if no snapshot holds it, else copied.
    #[cold]
    #[inline(never)]
    fn thaw(&mut self) {
        if let Some(base) = self.base.take() {
            self.table = Arc::try_unwrap(base).unwrap_or_else(|shared| (*shared).clone());
        }
    }
}

/// A frozen slot: which slices it holds, the epoch of its last change, and its table
/// as it was.
#[derive(Debug, Clone)]
pub(crate) struct FrozenSlot<T> {
    /// Its index: it holds the slices `index + k * slots`.
    pub index: usize,
    /// How many slots the table had.
    pub slots: usize,
    /// Epoch of the last change to it before it was frozen.
    pub stamp: u64,
    /// Its entries, as they were when frozen.
    pub table: Arc<HashTable<T>>,
}

impl<T: Hashed> FrozenSlot<T> {
    /// Whether `full` names a slice the slot holds.
    fn holds_any(&self, full: &dyn Fn(usize) -> bool) -> bool {
        (self.index..SLICES).step_by(self.slots.max(1)).any(full)
    }

    /// The entries an incremental record takes from this slot: those changed after
    /// `since`, and all of those in a slice that `full` names.
    pub fn selected<'a>(
        &'a self,
        since: u64,
        full: &'a dyn Fn(usize) -> bool,
        stamp: impl Fn(&T) -> u64 + 'a,
    ) -> impl Iterator<Item = &'a T> + 'a {
        let any_full = self.holds_any(full);
        let skip = !any_full && self.stamp <= since;
        self.table
            .iter()
            .take(if skip { 0 } else { usize::MAX })
            .filter(move |e| stamp(e) > since || (any_full && full(slice_of(e.key_hash()))))
    }
}

/// A hash table split into copy-on-write slots.
#[derive(Debug)]
pub(crate) struct Sliced<T> {
    /// A power of two, at most [`SLICES`].
    slots: Vec<Slot<T>>,
}

impl<T: Clone + Hashed> Default for Sliced<T> {
    fn default() -> Self {
        Self {
            slots: vec![Slot::with_capacity(0, 0)],
        }
    }
}

impl<T: Clone + Hashed> Sliced<T> {
    /// Empty, with as many slots as `other` and each sized for what the same slot of
    /// `other` holds (a new pane like the newest one).
    pub fn shaped_like(other: &Sliced<T>) -> Self {
        Self {
            slots: other
                .slots
                .iter()
                .map(|s| Slot::with_capacity(s.table.len(), 0))
                .collect(),
        }
    }

    #[inline]
    fn slot_of(&self, hash: u64) -> usize {
        slice_of(hash) & (self.slots.len() - 1)
    }

    /// The table of the slot of `hash`, to read.
    #[inline]
    pub fn table(&self, hash: u64) -> &HashTable<T> {
        self.slots[self.slot_of(hash)].entries()
    }

    /// The table of the slot of `hash`, to change at `epoch`: taken back first if it is
    /// frozen (copied if a snapshot still holds it). After inserting into it, call
    /// [`Self::inserted`].
    #[inline]
    pub fn table_mut(&mut self, hash: u64, epoch: u64) -> &mut HashTable<T> {
        let i = self.slot_of(hash);
        let slot = &mut self.slots[i];
        slot.stamp = epoch;
        if slot.base.is_some() {
            slot.thaw();
        }
        &mut slot.table
    }

    /// An entry with `hash` was inserted: splits the slots if its slot is too full.
    #[inline]
    pub fn inserted(&mut self, hash: u64) {
        if self.slots.len() < SLICES && self.table(hash).len() > MAX_SLOT_LEN {
            self.split();
        }
    }

    /// Doubles the slots, moving (or, from a slot a snapshot holds, copying) the entries.
    #[cold]
    fn split(&mut self) {
        let n = self.slots.len() * 2;
        let old = std::mem::take(&mut self.slots);
        let mut slots: Vec<Slot<T>> = (0..n)
            .map(|i| {
                let from = &old[i % old.len()];
                Slot::with_capacity(from.table.len() / 2 + 1, from.stamp)
            })
            .collect();
        for mut slot in old {
            slot.thaw();
            for e in slot.table {
                let h = e.key_hash();
                slots[slice_of(h) & (n - 1)]
                    .table
                    .insert_unique(h, e, |x| x.key_hash());
            }
        }
        self.slots = slots;
    }

    /// Empties the table for reuse, keeping its slots and their capacity (a frozen slot's
    /// entries stay with the snapshot).
    pub fn clear(&mut self) {
        for slot in &mut self.slots {
            slot.base = None;
            slot.table.clear();
            slot.stamp = 0;
        }
    }

    /// The slots' tables (loop over these on hot paths: a nested loop compiles better
    /// than [`Self::iter`]'s flattening).
    pub fn tables(&self) -> impl Iterator<Item = &HashTable<T>> {
        self.slots.iter().map(Slot::entries)
    }

    /// Every entry, slot by slot.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flat_map(|s| s.entries().iter())
    }

    /// Entries over all slots.
    pub fn len(&self) -> usize {
        self.slots.iter().map(|s| s.entries().len()).sum()
    }

    /// Bytes allocated by the tables.
    pub fn allocation_size(&self) -> usize {
        self.slots
            .iter()
            .map(|s| s.entries().allocation_size())
            .sum()
    }

    /// Freezes the non-empty slots: each one's table moves into an `Arc` shared with the
    /// frozen copy (a slot still frozen from an earlier checkpoint is shared as it is).
    pub fn freeze(&mut self) -> Vec<FrozenSlot<T>> {
        let slots = self.slots.len();
        let mut frozen = Vec::new();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let base = match &slot.base {
                Some(base) => Arc::clone(base),
                None if slot.table.is_empty() => continue,
                None => {
                    let base = Arc::new(std::mem::take(&mut slot.table));
                    slot.base = Some(Arc::clone(&base));
                    base
                }
            };
            frozen.push(FrozenSlot {
                index,
                slots,
                stamp: slot.stamp,
                table: base,
            });
        }
        frozen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Hashed for (u64, u32) {
        fn key_hash(&self) -> u64 {
            self.0
        }
    }

    fn set(s: &mut Sliced<(u64, u32)>, hash: u64, v: u32, epoch: u64) {
        let t = s.table_mut(hash, epoch);
        match t.find_mut(hash, |e| e.0 == hash) {
            Some(e) => e.1 = v,
            None => {
                t.insert_unique(hash, (hash, v), |e| e.0);
                s.inserted(hash);
            }
        }
    }

    fn get(s: &Sliced<(u64, u32)>, hash: u64) -> Option<u32> {
        s.table(hash).find(hash, |e| e.0 == hash).map(|e| e.1)
    }

    #[test]
    fn a_frozen_slot_keeps_its_entries_while_the_live_one_changes() {
        let mut s: Sliced<(u64, u32)> = Sliced::default();
        let hash = 7u64 << SLICE_SHIFT;
        set(&mut s, hash, 1, 1);
        let frozen = s.freeze();
        assert_eq!(frozen.len(), 1);
        assert_eq!(frozen[0].stamp, 1);
        set(&mut s, hash, 2, 2);
        assert_eq!(
            frozen[0].table.find(hash, |e| e.0 == hash),
            Some(&(hash, 1))
        );
        assert_eq!(get(&s, hash), Some(2));
        // Once the snapshot lets go, changes need no copy and stay visible.
        drop(frozen);
        let again = s.freeze();
        assert_eq!(again[0].stamp, 2);
        drop(again);
        set(&mut s, hash, 3, 3);
        assert_eq!(get(&s, hash), Some(3));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn slots_split_as_the_state_grows_and_frozen_copies_stay_whole() {
        let mut s: Sliced<(u64, u32)> = Sliced::default();
        let hash = |k: u64| k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for k in 0..3_000 {
            set(&mut s, hash(k), 1, 1);
        }
        assert!(s.slots.len() >= 2);
        let frozen = s.freeze();
        for k in 3_000..40_000 {
            set(&mut s, hash(k), 2, 2);
        }
        assert!(s.slots.len() >= 16, "{} slots", s.slots.len());
        assert!(s.slots.iter().all(|x| x.entries().len() <= MAX_SLOT_LEN));
        assert_eq!(s.len(), 40_000);
        assert!((0..40_000).all(|k| get(&s, hash(k)).is_some()));
        let held: usize = frozen.iter().map(|f| f.table.len()).sum();
        assert_eq!(held, 3_000);
        // Every entry is in the slot of its slice.
        for f in s.freeze() {
            assert!(f.table.iter().all(|e| slice_of(e.0) % f.slots == f.index));
        }
    }
}
