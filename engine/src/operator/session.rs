//! Session windows: per key, `[first ts, last ts + gap)`, merged as events bridge them.
//!
//! An event at `ts` opens the window `[ts, ts + gap)`; every session of its key that this
//! window intersects or touches merges with it (Flink's rule: `a.start <= b.end &&
//! b.start <= a.end`), so an event at most `gap` after the previous one of its key joins
//! that session. Each key keeps its sessions ordered by start in a small vector.
//!
//! Timers are lazy: a key is registered once at the earliest time it needs attention
//! (a session to fire, or to delete after lateness). When that time comes the key's
//! sessions are checked, and the key is registered again for its next time. Extending a
//! session therefore costs no timer work.
//!
//! Completeness: an event at `ts = last + gap` still joins a session (the end is
//! inclusive for joining), so a session is complete only when the watermark has passed
//! its end: it fires when `watermark > end` (not `>=` as fixed windows do, whose end no
//! event can reach), and its state is kept while `watermark <= end + lateness`.
//! Otherwise an on-time event at exactly the watermark could re-open a fired session.
//!
//! Revisions: a merged session inherits the highest revision emitted by any of its parts;
//! its next emission is that + 1 (or 0 if no part was emitted). A late event emits at once
//! with `late: true`; a session that a late event pushes past the watermark is emitted when
//! the watermark reaches its new end.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use smallvec::SmallVec;

use super::sliced::{FrozenSlot, Hashed, Sliced};
use super::{LateEvent, OpenWindow, Output, StateStats, Verdict, WindowResult};
use crate::aggregate::{Accumulator, AggSpec};
use crate::event::Event;
use crate::key::Key;
use crate::snapshot::{AccState, OperatorState, SessionEntry};
use crate::time::Watermark;

#[derive(Debug, Clone)]
struct Session {
    start: i64,
    end: i64,
    acc: Accumulator,
    /// The last revision emitted, if any.
    emitted: Option<u32>,
    /// Holds events not yet in an emitted result.
    dirty: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct KeySessions {
    key: Key,
    /// Ordered by start; never overlapping or touching. Most keys have one open
    /// session at a time, held inline: no allocation per key.
    sessions: SmallVec<[Session; 1]>,
    /// When this key is registered in the timer queue (`i64::MAX` if not).
    timer: i64,
    /// Epoch of the last change to its sessions.
    stamp: u64,
}

impl Hashed for KeySessions {
    #[inline]
    fn key_hash(&self) -> u64 {
        self.key.hash()
    }
}

/// A session operator's state frozen at a checkpoint barrier.
#[derive(Debug, Clone)]
pub(crate) struct FrozenSessions {
    slots: Vec<FrozenSlot<KeySessions>>,
}

/// The session window operator.
#[derive(Debug)]
pub struct SessionOperator {
    gap: i64,
    lateness: i64,
    spec: AggSpec,
    keys: Sliced<KeySessions>,
    /// (due time, key), earliest first. A key may be in it more than once; only
    /// the entry at its `KeySessions::timer` counts, the others are skipped when due.
    timers: BinaryHeap<Reverse<(i64, Key)>>,
    watermark: i64,
    /// Open sessions over all keys.
    nr_sessions: usize,
    /// Stamp of changes made now: the first checkpoint that will hold them.
    epoch: u64,
}

impl SessionOperator {
    /// Sessions closed by `gap_ms` of inactivity (> 0), kept `lateness_ms` after firing.
    pub fn new(gap_ms: u64, lateness_ms: u64, spec: AggSpec) -> Self {
        Self {
            gap: i64::try_from(gap_ms.max(1)).unwrap_or(i64::MAX),
            lateness: i64::try_from(lateness_ms).unwrap_or(i64::MAX),
            spec,
            keys: Sliced::default(),
            timers: BinaryHeap::new(),
            watermark: i64::MIN,
            nr_sessions: 0,
            epoch: 1,
        }
    }

    /// The current watermark.
    pub fn watermark(&self) -> Watermark {
        Watermark(self.watermark)
    }

    /// Applies one event.
    pub fn process(&mut self, event: &Event, out: &mut Output) -> Verdict {
        let ts = event.time.0;
        let key = &event.key;
        let wm = self.watermark;
        let mut start = ts;
        let mut end = ts.saturating_add(self.gap);
        let lateness = self.lateness;
        let epoch = self.epoch;
        let keys = self.keys.table_mut(key.hash(), epoch);
        let mut inserted = false;
        let ks = match keys.entry(key.hash(), |k| k.key == *key, |k| k.key.hash()) {
            hashbrown::hash_table::Entry::Occupied(o) => o.into_mut(),
            hashbrown::hash_table::Entry::Vacant(v) => {
                inserted = true;
                if wm != i64::MIN && end.saturating_add(lateness) < wm {
                    out.late.push(LateEvent {
                        event: event.clone(),
                        late_by_ms: wm.saturating_sub(ts),
                    });
                    return Verdict::Dropped;
                }
                v.insert(KeySessions {
                    key: key.clone(),
                    sessions: SmallVec::new(),
                    timer: i64::MAX,
                    stamp: epoch,
                })
                .into_mut()
            }
        };
        // Sessions intersecting or touching [start, end): a contiguous run.
        let first = ks.sessions.partition_point(|s| s.end < start);
        let mut last = first;
        while last < ks.sessions.len() && ks.sessions[last].start <= end {
            last += 1;
        }
        if first == last && wm != i64::MIN && end.saturating_add(lateness) < wm {
            out.late.push(LateEvent {
                event: event.clone(),
                late_by_ms: wm.saturating_sub(ts),
            });
            if ks.sessions.is_empty() {
                keys.find_entry(key.hash(), |k| k.key == *key)
                    .map(|e| e.remove())
                    .ok();
            }
            return Verdict::Dropped;
        }
        ks.stamp = epoch;
        let mut acc = Accumulator::new();
        acc.add(event.value, &self.spec);
        let mut emitted: Option<u32> = None;
        self.nr_sessions = self.nr_sessions + 1 - (last - first);
        for s in ks.sessions.drain(first..last) {
            start = start.min(s.start);
            end = end.max(s.end);
            acc.merge(&s.acc, &self.spec);
            emitted = emitted.max(s.emitted);
        }
        let mut session = Session {
            start,
            end,
            acc,
            emitted,
            dirty: true,
        };
        let verdict = if end < wm {
            // Behind the watermark but within lateness: emit at once.
            let revision = emitted.map_or(0, |r| r + 1);
            out.results.push(WindowResult::new(
                key,
                start,
                end,
                &session.acc,
                &self.spec,
                revision,
                true,
            ));
            session.emitted = Some(revision);
            session.dirty = false;
            Verdict::Late
        } else {
            Verdict::OnTime
        };
        let due = if session.dirty {
            end.saturating_add(1)
        } else {
            end.saturating_add(lateness).saturating_add(1)
        };
        ks.sessions.insert(first, session);
        if due < ks.timer {
            ks.timer = due;
            self.timers.push(Reverse((due, key.clone())));
        }
        if inserted {
            self.keys.inserted(key.hash());
        }
        verdict
    }

    /// Advances the watermark: fires sessions whose end it reached, deletes expired ones.
    pub fn advance_watermark(&mut self, watermark: Watermark, out: &mut Output) {
        let wm = watermark.0;
        if wm <= self.watermark {
            return;
        }
        self.watermark = wm;
        while self.timers.peek().is_some_and(|Reverse((at, _))| *at <= wm) {
            let Some(Reverse((at, key))) = self.timers.pop() else {
                break;
            };
            self.check_key(&key, at, wm, out);
        }
    }

    fn check_key(&mut self, key: &Key, at: i64, wm: i64, out: &mut Output) {
        if self
            .keys
            .table(key.hash())
            .find(key.hash(), |k| k.key == *key && k.timer == at)
            .is_none()
        {
            // Gone, or a stale registration: the key is registered at another time too.
            return;
        }
        let epoch = self.epoch;
        let keys = self.keys.table_mut(key.hash(), epoch);
        let Ok(mut entry) = keys.find_entry(key.hash(), |k| k.key == *key) else {
            return;
        };
        let ks = entry.get_mut();
        ks.stamp = epoch;
        let lateness = self.lateness;
        let mut next = i64::MAX;
        let before = ks.sessions.len();
        ks.sessions.retain(|s| {
            if s.dirty && s.end < wm {
                let revision = s.emitted.map_or(0, |r| r + 1);
                out.results.push(WindowResult::new(
                    key, s.start, s.end, &s.acc, &self.spec, revision, false,
                ));
                s.emitted = Some(revision);
                s.dirty = false;
            }
            let expires = s.end.saturating_add(lateness);
            if expires < wm {
                return false;
            }
            next = next.min(if s.dirty { s.end } else { expires }.saturating_add(1));
            true
        });
        self.nr_sessions -= before - ks.sessions.len();
        if ks.sessions.is_empty() {
            entry.remove();
            return;
        }
        ks.timer = next;
        self.timers.push(Reverse((next, key.clone())));
    }

    /// The whole state, for a checkpoint.
    pub fn snapshot(&self) -> OperatorState {
        let mut state = OperatorState {
            watermark: self.watermark,
            ..OperatorState::default()
        };
        for ks in self.keys.iter() {
            push_sessions(ks, &mut state);
        }
        state
    }

    /// Freezes the state for checkpoint `id` (copy-on-write, see [`Sliced`]): changes
    /// from now on are stamped for the checkpoint after it.
    pub(crate) fn freeze(&mut self, id: u64) -> FrozenSessions {
        self.epoch = self.epoch.max(id.saturating_add(1));
        FrozenSessions {
            slots: self.keys.freeze(),
        }
    }

    /// Restores an old shard's state from its chain of checkpoint records, oldest first
    /// (see [`super::WindowOperator::restore_chain`]), keeping the keys `keep` accepts.
    /// A record holds every session of each key it names, so a key's sessions in a
    /// record replace those of earlier records.
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
        let lateness = self.lateness;
        for &(id, state) in records {
            // A key's sessions are consecutive in a record.
            let mut current: Option<(Key, bool)> = None;
            for e in &state.sessions {
                let fresh = current.as_ref().is_none_or(|(k, _)| k.as_str() != e.key);
                if fresh {
                    let key = Key::new(&e.key);
                    let wanted = super::applies(full_at, id, key.hash()) && keep(&key);
                    if wanted {
                        self.remove_key(&key);
                    }
                    current = Some((key, wanted));
                }
                let Some((key, true)) = &current else {
                    continue;
                };
                // What the old shard had deleted by its watermark stays deleted.
                if wm != i64::MIN && e.end.saturating_add(lateness) < wm {
                    continue;
                }
                let session = Session {
                    start: e.start,
                    end: e.end,
                    acc: e.acc.restore(&self.spec),
                    emitted: e.emitted,
                    dirty: e.dirty,
                };
                let key = key.clone();
                self.insert_restored(key, session);
            }
        }
    }

    fn remove_key(&mut self, key: &Key) {
        let keys = self.keys.table_mut(key.hash(), 0);
        if let Ok(entry) = keys.find_entry(key.hash(), |k| k.key == *key) {
            let (ks, _) = entry.remove();
            self.nr_sessions -= ks.sessions.len();
        }
    }

    fn insert_restored(&mut self, key: Key, session: Session) {
        let due = if session.dirty {
            session.end.saturating_add(1)
        } else {
            session.end.saturating_add(self.lateness).saturating_add(1)
        };
        let hash = key.hash();
        let keys = self.keys.table_mut(hash, 0);
        let mut inserted = false;
        let ks = match keys.entry(hash, |k| k.key == key, |k| k.key.hash()) {
            hashbrown::hash_table::Entry::Occupied(o) => o.into_mut(),
            hashbrown::hash_table::Entry::Vacant(v) => {
                inserted = true;
                v.insert(KeySessions {
                    key: key.clone(),
                    sessions: SmallVec::new(),
                    timer: i64::MAX,
                    stamp: 0,
                })
                .into_mut()
            }
        };
        let at = ks.sessions.partition_point(|s| s.start < session.start);
        ks.sessions.insert(at, session);
        self.nr_sessions += 1;
        if due < ks.timer {
            ks.timer = due;
            self.timers.push(Reverse((due, key)));
        }
        if inserted {
            self.keys.inserted(hash);
        }
    }

    /// Open sessions.
    pub fn window_count(&self) -> usize {
        self.nr_sessions
    }

    /// State sizes.
    pub fn stats(&self) -> StateStats {
        let mut windows = 0;
        let mut bytes = self.keys.allocation_size();
        for ks in self.keys.iter() {
            windows += ks.sessions.len();
            bytes += ks.sessions.capacity() * std::mem::size_of::<Session>();
            bytes += ks
                .sessions
                .iter()
                .map(|s| s.acc.heap_bytes())
                .sum::<usize>();
        }
        StateStats {
            keys: self.keys.len(),
            windows,
            bytes,
        }
    }

    /// The open sessions of selected keys.
    pub fn open_windows(
        &self,
        select: &mut dyn FnMut(&Key) -> bool,
        limit: usize,
    ) -> Vec<OpenWindow> {
        let mut found = Vec::new();
        for ks in self.keys.iter() {
            if !select(&ks.key) {
                continue;
            }
            for s in &ks.sessions {
                if found.len() >= limit {
                    return found;
                }
                found.push(OpenWindow {
                    key: ks.key.clone(),
                    start: s.start,
                    end: s.end,
                    count: s.acc.count,
                    sum: s.acc.sum,
                    min: s.acc.min,
                    max: s.acc.max,
                });
            }
        }
        found
    }
}

fn push_sessions(ks: &KeySessions, state: &mut OperatorState) {
    for s in &ks.sessions {
        state.sessions.push(SessionEntry {
            key: ks.key.as_str().to_owned(),
            start: s.start,
            end: s.end,
            acc: AccState::of(&s.acc),
            emitted: s.emitted,
            dirty: s.dirty,
        });
    }
}

impl FrozenSessions {
    /// Entries (keys) in the frozen state, and those [`Self::write`] would write.
    pub(crate) fn count(&self, since: u64, full: &dyn Fn(usize) -> bool) -> (usize, usize) {
        let (mut total, mut selected) = (0, 0);
        for slot in &self.slots {
            total += slot.table.len();
            selected += slot.selected(since, full, |k| k.stamp).count();
        }
        (total, selected)
    }

    /// Writes into `state` the sessions of keys changed after epoch `since` and of every
    /// key of the slices `full` names.
    pub(crate) fn write(
        &self,
        since: u64,
        full: &dyn Fn(usize) -> bool,
        state: &mut OperatorState,
    ) {
        for slot in &self.slots {
            for ks in slot.selected(since, full, |k| k.stamp) {
                push_sessions(ks, state);
            }
        }
    }
}
