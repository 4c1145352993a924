//! Tumbling and sliding windows, kept as panes.
//!
//! A pane is `[p, p + slide)` with `p` a multiple of `slide`; a window `[e - size, e)` is
//! the `size / slide` panes before its end. An event updates exactly one pane (one hash
//! probe with the key's precomputed hash), so a sliding window costs what a tumbling one
//! does on the update path; panes are combined only when a window fires. A tumbling
//! window is the case `slide == size`: one pane per window, emitted without combining.
//!
//! Panes live in a vector sorted by start. Events arrive near the newest pane, so the
//! lookup checks the last two panes before falling back to a binary search. Tables of
//! expired panes are kept for reuse, so a steady stream allocates no new table per
//! window; otherwise a new pane's tables are sized like the newest pane's.
//!
//! A pane's entries are [`Sliced`]: a checkpoint freezes them by pointer (copy-on-write),
//! and each entry records the epoch of its last change, for incremental snapshots.

use hashbrown::HashTable;

use super::sliced::{FrozenSlot, Hashed, Sliced};
use super::{LateEvent, OpenWindow, Output, StateStats, Verdict, WindowResult};
use crate::aggregate::{Accumulator, AggSpec};
use crate::event::Event;
use crate::key::Key;
use crate::snapshot::{AccState, OperatorState, PaneEntry, RevisionEntry};
use crate::time::Watermark;

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    key: Key,
    acc: Accumulator,
    /// Epoch of the last change.
    stamp: u64,
}

impl Hashed for Entry {
    #[inline]
    fn key_hash(&self) -> u64 {
        self.key.hash()
    }
}

#[derive(Debug)]
struct Pane {
    start: i64,
    table: Sliced<Entry>,
}

/// A time-window operator's state frozen at a checkpoint barrier.
#[derive(Debug, Clone)]
pub(crate) struct FrozenTime {
    panes: Vec<(i64, Vec<FrozenSlot<Entry>>)>,
    revisions: Vec<RevisionEntry>,
}

#[derive(Debug)]
struct Revision {
    key: Key,
    revision: u32,
}

/// The operator for tumbling (`slide == size`) and sliding windows.
#[derive(Debug)]
pub struct TimeWindowOperator {
    size: i64,
    slide: i64,
    lateness: i64,
    spec: AggSpec,
    panes: Vec<Pane>,
    watermark: i64,
    /// Per window end, the last revision emitted per key, recorded only once a window was
    /// re-emitted because of a late event (the common path never touches it).
    revisions: std::collections::BTreeMap<i64, HashTable<Revision>>,
    scratch: HashTable<Entry>,
    spare: Vec<Sliced<Entry>>,
    /// Stamp of changes made now: the first checkpoint that will hold them.
    epoch: u64,
}

fn to_i64(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

impl TimeWindowOperator {
    /// Windows of `size_ms` starting every `slide_ms` (which divides `size_ms`; both > 0),
    /// keeping fired state `lateness_ms` longer.
    pub fn new(size_ms: u64, slide_ms: u64, lateness_ms: u64, spec: AggSpec) -> Self {
        let size = to_i64(size_ms.max(1));
        let mut slide = to_i64(slide_ms.clamp(1, size_ms.max(1)));
        if size % slide != 0 {
            // Validation guarantees divisibility; fall back to tumbling rather than misfire.
            slide = size;
        }
        Self {
            size,
            slide,
            lateness: to_i64(lateness_ms),
            spec,
            panes: Vec::new(),
            watermark: i64::MIN,
            revisions: std::collections::BTreeMap::new(),
            scratch: HashTable::new(),
            spare: Vec::new(),
            epoch: 1,
        }
    }

    /// The current watermark.
    pub fn watermark(&self) -> Watermark {
        Watermark(self.watermark)
    }

    #[inline]
    fn pane_start(&self, ts: i64) -> i64 {
        ts.div_euclid(self.slide) * self.slide
    }

    /// Index of the pane starting at `start`, made if absent.
    #[inline]
    fn pane_index(&mut self, start: i64) -> usize {
        let n = self.panes.len();
        if n > 0 && self.panes[n - 1].start == start {
            return n - 1;
        }
        if n > 1 && self.panes[n - 2].start == start {
            return n - 2;
        }
        match self.panes.binary_search_by_key(&start, |p| p.start) {
            Ok(i) => i,
            Err(i) => {
                let table = match (self.spare.pop(), self.panes.last()) {
                    (Some(spare), _) => spare,
                    (None, Some(last)) => Sliced::shaped_like(&last.table),
                    (None, None) => Sliced::default(),
                };
                self.panes.insert(i, Pane { start, table });
                i
            }
        }
    }

    /// Panes in `[from, to)` as an index range.
    fn pane_range(&self, from: i64, to: i64) -> std::ops::Range<usize> {
        let lo = self.panes.partition_point(|p| p.start < from);
        let hi = self.panes.partition_point(|p| p.start < to);
        lo..hi
    }

    /// Applies one event.
    #[inline]
    pub fn process(&mut self, event: &Event, out: &mut Output) -> Verdict {
        let ts = event.time.0;
        let pane = self.pane_start(ts);
        let first_end = pane.saturating_add(self.slide);
        let last_end = pane.saturating_add(self.size);
        if self.watermark != i64::MIN && last_end.saturating_add(self.lateness) <= self.watermark {
            out.late.push(LateEvent {
                event: event.clone(),
                late_by_ms: self.watermark.saturating_sub(ts),
            });
            return Verdict::Dropped;
        }
        if first_end > self.watermark {
            self.update(pane, &event.key, event.value);
            return Verdict::OnTime;
        }
        self.process_late(pane, event, out);
        Verdict::Late
    }

    #[inline]
    fn update(&mut self, pane: i64, key: &Key, value: f64) {
        let i = self.pane_index(pane);
        let spec = &self.spec;
        let epoch = self.epoch;
        let table = self.panes[i].table.table_mut(key.hash(), epoch);
        match table.entry(key.hash(), |e| e.key == *key, |e| e.key.hash()) {
            hashbrown::hash_table::Entry::Occupied(mut o) => {
                let e = o.get_mut();
                e.acc.add(value, spec);
                e.stamp = epoch;
            }
            hashbrown::hash_table::Entry::Vacant(v) => {
                let mut acc = Accumulator::new();
                acc.add(value, spec);
                v.insert(Entry {
                    key: key.clone(),
                    acc,
                    stamp: epoch,
                });
                self.panes[i].table.inserted(key.hash());
            }
        }
    }

    /// An event whose pane belongs to at least one fired, unexpired window.
    #[cold]
    fn process_late(&mut self, pane: i64, event: &Event, out: &mut Output) {
        let key = &event.key;
        let wm = self.watermark;
        // Fired windows of this pane that are still within lateness, with their revisions.
        let mut refire: Vec<(i64, u32)> = Vec::new();
        let mut end = pane + self.slide;
        while end <= pane + self.size && end <= wm {
            if end.saturating_add(self.lateness) > wm {
                let revision = match self
                    .revisions
                    .get(&end)
                    .and_then(|t| t.find(key.hash(), |r| r.key == *key))
                {
                    Some(r) => r.revision + 1,
                    None => {
                        let range = self.pane_range(end - self.size, end);
                        let emitted = self.panes[range].iter().any(|p| {
                            p.table
                                .table(key.hash())
                                .find(key.hash(), |e| e.key == *key)
                                .is_some()
                        });
                        u32::from(emitted)
                    }
                };
                refire.push((end, revision));
            }
            end += self.slide;
        }
        self.update(pane, key, event.value);
        for (end, revision) in refire {
            let mut acc = Accumulator::new();
            let range = self.pane_range(end - self.size, end);
            for p in &self.panes[range] {
                if let Some(e) = p
                    .table
                    .table(key.hash())
                    .find(key.hash(), |e| e.key == *key)
                {
                    acc.merge(&e.acc, &self.spec);
                }
            }
            out.results.push(WindowResult::new(
                key,
                end - self.size,
                end,
                &acc,
                &self.spec,
                revision,
                true,
            ));
            let table = self.revisions.entry(end).or_default();
            match table.find_mut(key.hash(), |r| r.key == *key) {
                Some(r) => r.revision = revision,
                None => {
                    table.insert_unique(
                        key.hash(),
                        Revision {
                            key: key.clone(),
                            revision,
                        },
                        |r| r.key.hash(),
                    );
                }
            }
        }
    }

    /// Advances the watermark: fires every window whose end it reached, then deletes
    /// panes and revision records past allowed lateness.
    pub fn advance_watermark(&mut self, watermark: Watermark, out: &mut Output) {
        let new = watermark.0;
        let old = self.watermark;
        if new <= old {
            return;
        }
        self.watermark = new;
        // Window ends are multiples of `slide`; fire each end in (old, new] that some
        // pane contributes to, in increasing order, each once.
        let mut next = self.first_end_after(old);
        let size = self.size;
        let mut i = self
            .panes
            .partition_point(|p| p.start.saturating_add(size) <= old);
        while i < self.panes.len() {
            let p = self.panes[i].start;
            let mut end = (p + self.slide).max(next);
            let last = (p + self.size).min(new);
            while end <= last {
                if end > old {
                    self.fire(end, out);
                }
                end += self.slide;
            }
            next = next.max(end);
            i += 1;
        }
        self.expire(new);
    }

    /// The smallest window end (a multiple of `slide`) above `old`.
    fn first_end_after(&self, old: i64) -> i64 {
        if old == i64::MIN {
            return i64::MIN;
        }
        let slide = i128::from(self.slide);
        let end = (i128::from(old).div_euclid(slide) + 1) * slide;
        i64::try_from(end).unwrap_or(i64::MAX)
    }

    fn fire(&mut self, end: i64, out: &mut Output) {
        let start = end - self.size;
        let range = self.pane_range(start, end);
        if self.size == self.slide {
            if let Some(pane) = self.panes[range].first() {
                for table in pane.table.tables() {
                    for e in table.iter() {
                        out.results.push(WindowResult::new(
                            &e.key, start, end, &e.acc, &self.spec, 0, false,
                        ));
                    }
                }
            }
            return;
        }
        let spec = &self.spec;
        let scratch = &mut self.scratch;
        for e in self.panes[range]
            .iter()
            .flat_map(|p| p.table.tables())
            .flat_map(|t| t.iter())
        {
            {
                let key = &e.key;
                match scratch.entry(key.hash(), |s| s.key == *key, |s| s.key.hash()) {
                    hashbrown::hash_table::Entry::Occupied(mut o) => {
                        o.get_mut().acc.merge(&e.acc, spec)
                    }
                    hashbrown::hash_table::Entry::Vacant(v) => {
                        v.insert(Entry {
                            key: key.clone(),
                            acc: e.acc.clone(),
                            stamp: 0,
                        });
                    }
                }
            }
        }
        for e in scratch.drain() {
            out.results.push(WindowResult::new(
                &e.key, start, end, &e.acc, spec, 0, false,
            ));
        }
    }

    fn expire(&mut self, wm: i64) {
        let size = self.size;
        let lateness = self.lateness;
        let expired = self
            .panes
            .partition_point(|p| p.start.saturating_add(size).saturating_add(lateness) <= wm);
        for mut pane in self.panes.drain(..expired) {
            if self.spare.len() < 4 {
                pane.table.clear();
                self.spare.push(pane.table);
            }
        }
        while let Some(entry) = self.revisions.first_entry() {
            if entry.key().saturating_add(lateness) <= wm {
                entry.remove();
            } else {
                break;
            }
        }
    }

    /// The whole state, for a checkpoint.
    pub fn snapshot(&self) -> OperatorState {
        let mut state = OperatorState {
            watermark: self.watermark,
            ..OperatorState::default()
        };
        for pane in &self.panes {
            for e in pane.table.iter() {
                state.panes.push(pane_entry(pane.start, e));
            }
        }
        state.revisions = self.revision_entries();
        state
    }

    fn revision_entries(&self) -> Vec<RevisionEntry> {
        let mut out = Vec::new();
        for (&end, table) in &self.revisions {
            for r in table.iter() {
                out.push(RevisionEntry {
                    end,
                    key: r.key.as_str().to_owned(),
                    revision: r.revision,
                });
            }
        }
        out
    }

    /// Freezes the state for checkpoint `id` (copy-on-write, see [`Sliced`]): changes
    /// from now on are stamped for the checkpoint after it.
    pub(crate) fn freeze(&mut self, id: u64) -> FrozenTime {
        self.epoch = self.epoch.max(id.saturating_add(1));
        FrozenTime {
            panes: self
                .panes
                .iter_mut()
                .map(|p| (p.start, p.table.freeze()))
                .collect(),
            revisions: self.revision_entries(),
        }
    }

    /// Restores an old shard's state from its chain of checkpoint records, oldest first
    /// (see [`super::WindowOperator::restore_chain`]), keeping the keys `keep` accepts.
    pub fn restore_chain(
        &mut self,
        records: &[(u64, &OperatorState)],
        full_at: &[u64],
        keep: &mut dyn FnMut(&Key) -> bool,
    ) {
        let Some(&(head, last)) = records.last() else {
            return;
        };
        let wm = last.watermark;
        super::adopt_head(&mut self.watermark, &mut self.epoch, head, wm);
        let (size, lateness) = (self.size, self.lateness);
        // What the old shard had deleted by its watermark stays deleted.
        let gone = |end: i64| wm != i64::MIN && end.saturating_add(lateness) <= wm;
        for &(id, state) in records {
            for e in &state.panes {
                if gone(e.pane.saturating_add(size)) {
                    continue;
                }
                let key = Key::new(&e.key);
                if !super::applies(full_at, id, key.hash()) || !keep(&key) {
                    continue;
                }
                let i = self.pane_index(e.pane);
                let acc = e.acc.restore(&self.spec);
                let hash = key.hash();
                let table = self.panes[i].table.table_mut(hash, 0);
                match table.entry(hash, |x| x.key == key, |x| x.key.hash()) {
                    hashbrown::hash_table::Entry::Occupied(mut o) => o.get_mut().acc = acc,
                    hashbrown::hash_table::Entry::Vacant(v) => {
                        v.insert(Entry { key, acc, stamp: 0 });
                        self.panes[i].table.inserted(hash);
                    }
                }
            }
        }
        for r in &last.revisions {
            if gone(r.end) {
                continue;
            }
            let key = Key::new(&r.key);
            if !keep(&key) {
                continue;
            }
            let table = self.revisions.entry(r.end).or_default();
            match table.find_mut(key.hash(), |x| x.key == key) {
                Some(x) => x.revision = r.revision,
                None => {
                    table.insert_unique(
                        key.hash(),
                        Revision {
                            key,
                            revision: r.revision,
                        },
                        |x| x.key.hash(),
                    );
                }
            }
        }
    }

    /// Open (key, pane) states.
    pub fn window_count(&self) -> usize {
        self.panes.iter().map(|p| p.table.len()).sum()
    }

    /// State sizes.
    pub fn stats(&self) -> StateStats {
        let mut keys = hashbrown::HashSet::new();
        let mut windows = 0;
        let mut bytes = 0;
        for pane in &self.panes {
            windows += pane.table.len();
            bytes += pane.table.allocation_size();
            for e in pane.table.iter() {
                keys.insert(e.key.hash());
                bytes += e.acc.heap_bytes();
            }
        }
        StateStats {
            keys: keys.len(),
            windows,
            bytes,
        }
    }

    /// The open panes of selected keys (a tumbling window is its one pane).
    pub fn open_windows(
        &self,
        select: &mut dyn FnMut(&Key) -> bool,
        limit: usize,
    ) -> Vec<OpenWindow> {
        let mut found = Vec::new();
        for pane in &self.panes {
            for e in pane.table.iter() {
                if found.len() >= limit {
                    return found;
                }
                if select(&e.key) {
                    found.push(OpenWindow {
                        key: e.key.clone(),
                        start: pane.start,
                        end: pane.start + self.slide,
                        count: e.acc.count,
                        sum: e.acc.sum,
                        min: e.acc.min,
                        max: e.acc.max,
                    });
                }
            }
        }
        found
    }
}

fn pane_entry(pane: i64, e: &Entry) -> PaneEntry {
    PaneEntry {
        pane,
        key: e.key.as_str().to_owned(),
        acc: AccState::of(&e.acc),
    }
}

impl FrozenTime {
    /// Entries in the frozen state, and those [`Self::write`] would write.
    pub(crate) fn count(&self, since: u64, full: &dyn Fn(usize) -> bool) -> (usize, usize) {
        let (mut total, mut selected) = (0, 0);
        for (_, slots) in &self.panes {
            for slot in slots {
                total += slot.table.len();
                selected += slot.selected(since, full, |e| e.stamp).count();
            }
        }
        (
            total + self.revisions.len(),
            selected + self.revisions.len(),
        )
    }

    /// Writes into `state` the entries changed after epoch `since` and every entry of
    /// the slices `full` names, and all revision records (there are few).
    pub(crate) fn write(
        &self,
        since: u64,
        full: &dyn Fn(usize) -> bool,
        state: &mut OperatorState,
    ) {
        for (start, slots) in &self.panes {
            for slot in slots {
                for e in slot.selected(since, full, |e| e.stamp) {
                    state.panes.push(pane_entry(*start, e));
                }
            }
        }
        state.revisions.extend(self.revisions.iter().cloned());
    }
}
