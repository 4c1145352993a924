//! Window operators: the semantics of SPEC.md §4 as pure functions of
//! (events in arrival order, watermarks) → results.
//!
//! An operator owns the window state of the keys routed to it. [`WindowOperator::process`]
//! applies one event; [`WindowOperator::advance_watermark`] fires every window whose end
//! the watermark reached and deletes state past its allowed lateness. Results and dropped
//! late events are appended to an [`Output`] the caller drains.
//!
//! The rules, for a window `[start, end)` with allowed lateness `L` and watermark `W`:
//! - it fires once, with revision 0 and `late: false`, when `W >= end`;
//! - while `W < end + L` its state is kept; an event for it updates it and re-emits it at
//!   once with the next revision and `late: true` (revision 0 if that key had no result
//!   for the window yet);
//! - when `W >= end + L` its state is deleted; an event all of whose windows are in that
//!   state is dropped and reported as a [`LateEvent`].

mod session;
mod sliced;
mod time_window;

pub use session::SessionOperator;
pub use sliced::{SLICES, slice_of};
pub use time_window::TimeWindowOperator;

use weir_config::{Window, WindowKind};

use crate::aggregate::{Accumulator, AggSpec, MAX_PERCENTILES};
use crate::event::Event;
use crate::key::Key;
use crate::time::Watermark;

/// One window result for one key.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowResult {
    /// The key.
    pub key: Key,
    /// Window start (inclusive), ms.
    pub start: i64,
    /// Window end (exclusive), ms.
    pub end: i64,
    /// Events in the window.
    pub count: u64,
    /// Sum of values.
    pub sum: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// The configured percentiles, in the order of [`AggSpec::percentiles`].
    pub percentiles: [f64; MAX_PERCENTILES],
    /// 0 for the first emission of this key's window, then +1 per re-emission.
    pub revision: u32,
    /// Whether a late event caused this emission.
    pub late: bool,
}

impl WindowResult {
    pub(crate) fn new(
        key: &Key,
        start: i64,
        end: i64,
        acc: &Accumulator,
        spec: &AggSpec,
        revision: u32,
        late: bool,
    ) -> Self {
        let mut percentiles = [0.0; MAX_PERCENTILES];
        for (slot, &q) in percentiles.iter_mut().zip(spec.percentiles()) {
            *slot = acc.percentile(q);
        }
        Self {
            key: key.clone(),
            start,
            end,
            count: acc.count,
            sum: acc.sum,
            min: acc.min,
            max: acc.max,
            percentiles,
            revision,
            late,
        }
    }

    /// The mean value.
    pub fn avg(&self) -> f64 {
        self.sum / self.count as f64
    }
}

/// An event dropped because every window it belongs to is past its allowed lateness.
#[derive(Debug, Clone, PartialEq)]
pub struct LateEvent {
    /// The event.
    pub event: Event,
    /// How far behind the watermark its time was, ms.
    pub late_by_ms: i64,
}

/// What an operator produced; the caller drains it.
#[derive(Debug, Default)]
pub struct Output {
    /// Window results, in emission order.
    pub results: Vec<WindowResult>,
    /// Dropped late events.
    pub late: Vec<LateEvent>,
}

impl Output {
    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.results.is_empty() && self.late.is_empty()
    }

    /// Removes everything pending.
    pub fn clear(&mut self) {
        self.results.clear();
        self.late.clear();
    }
}

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Applied to windows that have not fired yet.
    OnTime,
    /// Applied to at least one window that had fired; re-emitted with `late: true`.
    Late,
    /// Past allowed lateness: dropped and reported in [`Output::late`].
    Dropped,
}

/// Sizes of an operator's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateStats {
    /// Distinct keys with state.
    pub keys: usize,
    /// Open (key, window) states: panes of time windows, sessions.
    pub windows: usize,
    /// Approximate bytes of memory held.
    pub bytes: usize,
}

/// The state of one key's window, as listed by state queries.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenWindow {
    /// The key.
    pub key: Key,
    /// Start of the window (or pane), ms.
    pub start: i64,
    /// End of the window (or pane), ms.
    pub end: i64,
    /// Events so far.
    pub count: u64,
    /// Sum so far.
    pub sum: f64,
    /// Minimum so far.
    pub min: f64,
    /// Maximum so far.
    pub max: f64,
}

/// A window operator of any kind.
#[derive(Debug)]
pub enum WindowOperator {
    /// Tumbling and sliding windows.
    Time(TimeWindowOperator),
    /// Session windows.
    Session(SessionOperator),
}

impl WindowOperator {
    /// An operator for a window spec.
    pub fn new(window: &Window, spec: AggSpec) -> Self {
        let lateness = window.allowed_lateness_ms;
        match window.kind {
            WindowKind::Tumbling { size_ms } => {
                WindowOperator::Time(TimeWindowOperator::new(size_ms, size_ms, lateness, spec))
            }
            WindowKind::Sliding { size_ms, slide_ms } => {
                WindowOperator::Time(TimeWindowOperator::new(size_ms, slide_ms, lateness, spec))
            }
            WindowKind::Session { gap_ms } => {
                WindowOperator::Session(SessionOperator::new(gap_ms, lateness, spec))
            }
        }
    }

    /// Applies one event.
    #[inline]
    pub fn process(&mut self, event: &Event, out: &mut Output) -> Verdict {
        match self {
            WindowOperator::Time(op) => op.process(event, out),
            WindowOperator::Session(op) => op.process(event, out),
        }
    }

    /// Advances the watermark: fires reached windows, deletes expired state.
    pub fn advance_watermark(&mut self, watermark: Watermark, out: &mut Output) {
        match self {
            WindowOperator::Time(op) => op.advance_watermark(watermark, out),
            WindowOperator::Session(op) => op.advance_watermark(watermark, out),
        }
    }

    /// The operator's current watermark.
    pub fn watermark(&self) -> Watermark {
        match self {
            WindowOperator::Time(op) => op.watermark(),
            WindowOperator::Session(op) => op.watermark(),
        }
    }

    /// State sizes.
    pub fn stats(&self) -> StateStats {
        match self {
            WindowOperator::Time(op) => op.stats(),
            WindowOperator::Session(op) => op.stats(),
        }
    }

    /// The whole state, for a checkpoint.
    pub fn snapshot(&self) -> crate::snapshot::OperatorState {
        match self {
            WindowOperator::Time(op) => op.snapshot(),
            WindowOperator::Session(op) => op.snapshot(),
        }
    }

    /// Freezes the state at the barrier of checkpoint `id`, in time independent of its
    /// size: one pointer per non-empty slice is cloned, and a slice is copied only when
    /// the operator changes it while the frozen state still holds it. Changes from now
    /// on are stamped for the checkpoint after `id`; the frozen state can be written, in
    /// full or only what changed since an earlier checkpoint, on another thread.
    pub fn freeze(&mut self, id: u64) -> FrozenState {
        match self {
            WindowOperator::Time(op) => FrozenState {
                watermark: op.watermark().0,
                kind: FrozenKind::Time(op.freeze(id)),
            },
            WindowOperator::Session(op) => FrozenState {
                watermark: op.watermark().0,
                kind: FrozenKind::Session(op.freeze(id)),
            },
        }
    }

    /// Adds the state of a full snapshot, keeping only keys that `keep` accepts.
    pub fn restore(
        &mut self,
        state: &crate::snapshot::OperatorState,
        keep: &mut dyn FnMut(&Key) -> bool,
    ) {
        self.restore_chain(&[(0, state)], &[], keep);
    }

    /// Adds the state one old shard had at its latest checkpoint, from that checkpoint's
    /// record and the earlier ones it builds on: `records` are `(checkpoint, state)`,
    /// oldest first, the last one the checkpoint restored. `full_at[s]` is the
    /// checkpoint whose record holds slice `s` (see [`slice_of`]) in full; a record
    /// counts for a slice from that one on, each later one holding what changed (an
    /// empty `full_at`: every record counts). A later record's entry replaces an earlier
    /// one's; what the old shard's watermark had deleted stays deleted. Only keys that
    /// `keep` accepts are kept; the watermark becomes the lowest seen.
    pub fn restore_chain(
        &mut self,
        records: &[(u64, &crate::snapshot::OperatorState)],
        full_at: &[u64],
        keep: &mut dyn FnMut(&Key) -> bool,
    ) {
        match self {
            WindowOperator::Time(op) => op.restore_chain(records, full_at, keep),
            WindowOperator::Session(op) => op.restore_chain(records, full_at, keep),
        }
    }

    /// Open (key, window) states — panes of time windows, sessions — counted cheaply.
    pub fn window_count(&self) -> usize {
        match self {
            WindowOperator::Time(op) => op.window_count(),
            WindowOperator::Session(op) => op.window_count(),
        }
    }

    /// The open windows of the keys that `select` accepts, at most `limit` of them.
    pub fn open_windows(
        &self,
        select: &mut dyn FnMut(&Key) -> bool,
        limit: usize,
    ) -> Vec<OpenWindow> {
        match self {
            WindowOperator::Time(op) => op.open_windows(select, limit),
            WindowOperator::Session(op) => op.open_windows(select, limit),
        }
    }
}

/// Restoring an old shard's chain whose latest record is checkpoint `head` with watermark
/// `wm`: the watermark becomes the lowest seen, and changes from now on are stamped for
/// the checkpoint after `head`.
fn adopt_head(watermark: &mut i64, epoch: &mut u64, head: u64, wm: i64) {
    if *watermark == i64::MIN || wm < *watermark {
        *watermark = wm;
    }
    *epoch = (*epoch).max(head.saturating_add(1));
}

/// Whether the record of checkpoint `id` counts for the slice of `hash`.
#[inline]
fn applies(full_at: &[u64], id: u64, hash: u64) -> bool {
    full_at.get(slice_of(hash)).is_none_or(|&f| id >= f)
}

/// An operator's state frozen at a checkpoint barrier ([`WindowOperator::freeze`]): it
/// shares unchanged slices with the live operator and can be sent to another thread.
#[derive(Debug, Clone)]
pub struct FrozenState {
    watermark: i64,
    kind: FrozenKind,
}

#[derive(Debug, Clone)]
enum FrozenKind {
    Time(time_window::FrozenTime),
    Session(session::FrozenSessions),
}

impl FrozenState {
    /// Entries (key states: a key's pane of a time window, a key's sessions) in the
    /// frozen state, and how many of them [`Self::write`] with the same arguments writes.
    pub fn count(&self, since: u64, full: &dyn Fn(usize) -> bool) -> (usize, usize) {
        match &self.kind {
            FrozenKind::Time(t) => t.count(since, full),
            FrozenKind::Session(s) => s.count(since, full),
        }
    }

    /// The state to record: every entry of the slices that `full` names, and in the
    /// others the entries changed after checkpoint `since` (0: none is left out).
    pub fn write(
        &self,
        since: u64,
        full: &dyn Fn(usize) -> bool,
    ) -> crate::snapshot::OperatorState {
        let mut state = crate::snapshot::OperatorState {
            watermark: self.watermark,
            ..Default::default()
        };
        match &self.kind {
            FrozenKind::Time(t) => t.write(since, full, &mut state),
            FrozenKind::Session(s) => s.write(since, full, &mut state),
        }
        state
    }
}
