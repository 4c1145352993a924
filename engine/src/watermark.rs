//! Watermark tracking: per-partition bounded out-of-orderness, and the minimum over
//! the active inputs of an operator.
//!
//! A [`PartitionClock`] follows one source partition: its watermark is the largest event
//! time seen minus the delay. It becomes idle only when it was *polled* and had nothing
//! for the idle timeout: a partition that is not read because of backpressure or a paused
//! pipeline is never polled empty, so it never goes idle and never lets the watermark run
//! ahead of events that are merely waiting (the stall that makes Flink drop good events).
//!
//! A [`WatermarkTracker`] combines inputs (partitions on a source shard, or upstream
//! shards at an operator): the minimum over active inputs, idle ones excluded, finished
//! ones counted as +∞. It never goes backwards.

use crate::time::Watermark;

/// The state of one input of a [`WatermarkTracker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputState {
    /// Holds the watermark at its value.
    Active(Watermark),
    /// Silent past the idle timeout: excluded from the minimum.
    Idle(Watermark),
    /// Finished: counts as +∞.
    Finished,
}

/// Bounded out-of-orderness and idleness of one source partition. Times are ms; `now` is
/// the processing-time clock of the caller.
///
/// Event times are observed as they are read but count towards the watermark only from
/// the next cut point on ([`PartitionClock::cut`]): the runtime cuts a partition every
/// `batch_size` records from its start (and where it has been read to its end), so
/// that the watermark, and with it every lateness decision, is a function of the
/// partition's records, not of how reads happened to fall.
#[derive(Debug, Clone)]
pub struct PartitionClock {
    delay: i64,
    idle_timeout: u64,
    /// The largest event time up to the last cut point: what the watermark covers.
    max_time: i64,
    /// The largest event time read since the last cut point.
    pending_max: i64,
    last_activity: u64,
    idle: bool,
    finished: bool,
}

impl PartitionClock {
    /// A clock for a partition first seen at `now`.
    pub fn new(delay_ms: u64, idle_timeout_ms: u64, now: u64) -> Self {
        Self {
            delay: i64::try_from(delay_ms).unwrap_or(i64::MAX),
            idle_timeout: idle_timeout_ms,
            max_time: i64::MIN,
            pending_max: i64::MIN,
            last_activity: now,
            idle: false,
            finished: false,
        }
    }

    /// An event with time `ts` was read at `now`; it counts from the next cut on.
    #[inline]
    pub fn observe(&mut self, ts: i64, now: u64) {
        if ts > self.pending_max {
            self.pending_max = ts;
        }
        self.last_activity = now;
        self.idle = false;
    }

    /// A cut point: every event read so far now counts towards the watermark.
    pub fn cut(&mut self) {
        self.max_time = self.max_time.max(self.pending_max);
    }

    /// The partition was polled at `now` and had nothing; it may become idle.
    pub fn polled_empty(&mut self, now: u64) {
        if now.saturating_sub(self.last_activity) >= self.idle_timeout {
            self.idle = true;
        }
    }

    /// The partition was not polled (backpressure, pause): activity is refreshed so
    /// that waiting is never mistaken for silence.
    pub fn held_back(&mut self, now: u64) {
        self.last_activity = now;
        self.idle = false;
    }

    /// The partition has no more events.
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// Restores the largest event times from a checkpoint: up to the last cut point,
    /// and read since it.
    pub fn restore(&mut self, max_time: i64, pending_max: i64) {
        self.max_time = self.max_time.max(max_time);
        self.pending_max = self.pending_max.max(pending_max);
    }

    /// The largest event time up to the last cut point (what the watermark covers).
    pub fn max_time(&self) -> i64 {
        self.max_time
    }

    /// The largest event time read since the last cut point.
    pub fn pending_max(&self) -> i64 {
        self.pending_max
    }

    /// The partition's watermark: `max time − delay`.
    pub fn watermark(&self) -> Watermark {
        if self.finished {
            return Watermark::MAX;
        }
        if self.max_time == i64::MIN {
            return Watermark::MIN;
        }
        Watermark(self.max_time.saturating_sub(self.delay))
    }

    /// The partition's state as an input of a tracker.
    pub fn state(&self) -> InputState {
        if self.finished {
            InputState::Finished
        } else if self.idle {
            InputState::Idle(self.watermark())
        } else {
            InputState::Active(self.watermark())
        }
    }

    /// Whether it is idle.
    pub fn is_idle(&self) -> bool {
        self.idle && !self.finished
    }
}

/// The watermark of an operator: the minimum over its inputs.
#[derive(Debug, Clone)]
pub struct WatermarkTracker {
    inputs: Vec<InputState>,
    current: Watermark,
    max_idle_lag: Option<u64>,
}

impl WatermarkTracker {
    /// A tracker of `nr_inputs` inputs, all active with no progress. With `max_idle_lag_ms`,
    /// when every unfinished input is idle the watermark follows `now − lag`.
    pub fn new(nr_inputs: usize, max_idle_lag_ms: Option<u64>) -> Self {
        Self {
            inputs: vec![InputState::Active(Watermark::MIN); nr_inputs],
            current: Watermark::MIN,
            max_idle_lag: max_idle_lag_ms,
        }
    }

    /// Adds an input (a partition discovered later) and returns its index.
    pub fn add_input(&mut self) -> usize {
        self.inputs.push(InputState::Active(Watermark::MIN));
        self.inputs.len() - 1
    }

    /// Number of inputs.
    pub fn nr_inputs(&self) -> usize {
        self.inputs.len()
    }

    /// Sets an input's state. Out-of-range inputs are ignored.
    pub fn set(&mut self, input: usize, state: InputState) {
        if let Some(slot) = self.inputs.get_mut(input) {
            *slot = state;
        }
    }

    /// An input's state.
    pub fn input(&self, input: usize) -> Option<InputState> {
        self.inputs.get(input).copied()
    }

    /// Recomputes and returns the combined watermark at processing time `now` (ms since
    /// the epoch); it never decreases.
    pub fn update(&mut self, now: u64) -> Watermark {
        let mut min_active: Option<Watermark> = None;
        let mut any_idle = false;
        for state in &self.inputs {
            match *state {
                InputState::Active(w) => min_active = Some(min_active.map_or(w, |m| m.min(w))),
                InputState::Idle(_) => any_idle = true,
                InputState::Finished => {}
            }
        }
        let candidate = match min_active {
            Some(w) => w,
            None if any_idle => match self.max_idle_lag {
                Some(lag) => Watermark(i64::try_from(now.saturating_sub(lag)).unwrap_or(i64::MAX)),
                None => self.current,
            },
            // No inputs at all, or all finished.
            None if self.inputs.is_empty() => self.current,
            None => Watermark::MAX,
        };
        if candidate > self.current {
            self.current = candidate;
        }
        self.current
    }

    /// The combined watermark as last computed.
    pub fn current(&self) -> Watermark {
        self.current
    }

    /// The active input holding the watermark back, if any.
    pub fn holding_back(&self) -> Option<usize> {
        self.inputs
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                InputState::Active(w) => Some((i, *w)),
                _ => None,
            })
            .min_by_key(|&(_, w)| w)
            .map(|(i, _)| i)
    }

    /// Restores the combined watermark (from a checkpoint).
    pub fn restore(&mut self, watermark: Watermark) {
        self.current = self.current.max(watermark);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_over_active_inputs_holds_the_watermark() {
        let mut t = WatermarkTracker::new(3, None);
        t.set(0, InputState::Active(Watermark(100)));
        t.set(1, InputState::Active(Watermark(50)));
        t.set(2, InputState::Idle(Watermark(10)));
        assert_eq!(t.update(0), Watermark(50));
        assert_eq!(t.holding_back(), Some(1));
        t.set(1, InputState::Finished);
        assert_eq!(t.update(0), Watermark(100));
        t.set(0, InputState::Active(Watermark(20)));
        assert_eq!(t.update(0), Watermark(100), "never goes back");
        t.set(0, InputState::Finished);
        t.set(2, InputState::Finished);
        assert_eq!(t.update(0), Watermark::MAX);
    }

    #[test]
    fn all_idle_inputs_hold_unless_a_max_idle_lag_is_set() {
        let mut t = WatermarkTracker::new(1, None);
        t.set(0, InputState::Idle(Watermark(5)));
        assert_eq!(t.update(10_000), Watermark::MIN);
        let mut t = WatermarkTracker::new(1, Some(1000));
        t.set(0, InputState::Idle(Watermark(5)));
        assert_eq!(t.update(10_000), Watermark(9_000));
    }

    #[test]
    fn a_partition_goes_idle_only_when_polled_empty_long_enough() {
        let mut c = PartitionClock::new(100, 1000, 0);
        c.observe(5000, 0);
        c.cut();
        assert_eq!(c.watermark(), Watermark(4900));
        c.held_back(2000);
        assert!(!c.is_idle());
        c.polled_empty(2500);
        assert!(!c.is_idle());
        c.polled_empty(3000);
        assert!(c.is_idle());
        c.observe(5001, 3001);
        assert!(!c.is_idle());
    }

    #[test]
    fn events_count_towards_the_watermark_from_the_next_cut_on() {
        let mut c = PartitionClock::new(0, 1000, 0);
        assert_eq!(c.watermark(), Watermark::MIN);
        c.observe(70, 0);
        c.observe(90, 0);
        assert_eq!(c.watermark(), Watermark::MIN, "not before the cut");
        c.cut();
        assert_eq!(c.watermark(), Watermark(90));
        c.observe(200, 0);
        assert_eq!((c.max_time(), c.pending_max()), (90, 200));
        let mut restored = PartitionClock::new(0, 1000, 0);
        restored.restore(c.max_time(), c.pending_max());
        assert_eq!(restored.watermark(), Watermark(90));
        restored.cut();
        assert_eq!(restored.watermark(), Watermark(200));
    }
}
