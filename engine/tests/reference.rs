//! A deliberately simple reference of SPEC.md §4, written from the text of the spec and
//! sharing no code with the engine's operators: it keeps every accepted event in plain
//! vectors and recomputes aggregates from scratch at each emission.

#![allow(dead_code, missing_docs)]

use weir_config::{Window, WindowKind};

/// A result as a comparable tuple.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub struct Row {
    pub key: String,
    pub start: i64,
    pub end: i64,
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub p50: f64,
    pub revision: u32,
    pub late: bool,
}

/// One step of an input: an event (key, ts, value) or nothing else; the watermark after
/// each event is `max ts seen - delay`.
#[derive(Debug, Clone)]
pub struct Ev {
    pub key: String,
    pub ts: i64,
    pub value: f64,
}

pub fn row(key: &str, start: i64, end: i64, values: &[f64], revision: u32, late: bool) -> Row {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let rank = (500 * n).div_ceil(1000).max(1);
    Row {
        key: key.to_owned(),
        start,
        end,
        count: n as u64,
        sum: values.iter().sum(),
        min: sorted[0],
        max: sorted[n - 1],
        p50: sorted[rank - 1],
        revision,
        late,
    }
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub rows: Vec<Row>,
    /// (key, ts, late_by)
    pub dropped: Vec<(String, i64, i64)>,
}

impl Outcome {
    pub fn sorted(mut self) -> Self {
        self.rows
            .sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        self.dropped.sort();
        self
    }
}

/// Runs the reference over events in arrival order, the watermark following
/// `max ts - delay` after each event, and +∞ at the end.
pub fn run(window: &Window, delay: i64, events: &[Ev]) -> Outcome {
    match window.kind {
        WindowKind::Session { gap_ms } => sessions(
            gap_ms as i64,
            window.allowed_lateness_ms as i64,
            delay,
            events,
        ),
        WindowKind::Tumbling { size_ms } => {
            fixed(size_ms as i64, size_ms as i64, window, delay, events)
        }
        WindowKind::Sliding { size_ms, slide_ms } => {
            fixed(size_ms as i64, slide_ms as i64, window, delay, events)
        }
    }
}

struct Inst {
    key: String,
    start: i64,
    end: i64,
    values: Vec<f64>,
    last_revision: Option<u32>,
}

fn fixed(size: i64, slide: i64, window: &Window, delay: i64, events: &[Ev]) -> Outcome {
    let lateness = window.allowed_lateness_ms as i64;
    let mut out = Outcome::default();
    let mut state: Vec<Inst> = Vec::new();
    let mut wm = i64::MIN;
    let mut max_ts = i64::MIN;
    for e in events {
        // Windows of the event: every start s (multiple of slide) with s <= ts < s + size.
        let mut starts = Vec::new();
        let mut s = e.ts.div_euclid(slide) * slide;
        while s > e.ts - size {
            starts.push(s);
            s -= slide;
        }
        let alive: Vec<i64> = starts
            .into_iter()
            .filter(|&s| wm == i64::MIN || s + size + lateness > wm)
            .collect();
        if alive.is_empty() {
            out.dropped.push((e.key.clone(), e.ts, wm - e.ts));
        }
        for s in alive {
            let idx = match state.iter().position(|i| i.key == e.key && i.start == s) {
                Some(i) => i,
                None => {
                    state.push(Inst {
                        key: e.key.clone(),
                        start: s,
                        end: s + size,
                        values: Vec::new(),
                        last_revision: None,
                    });
                    state.len() - 1
                }
            };
            let inst = &mut state[idx];
            inst.values.push(e.value);
            if inst.end <= wm {
                let revision = inst.last_revision.map_or(0, |r| r + 1);
                inst.last_revision = Some(revision);
                out.rows.push(row(
                    &inst.key,
                    inst.start,
                    inst.end,
                    &inst.values,
                    revision,
                    true,
                ));
            }
        }
        max_ts = max_ts.max(e.ts);
        advance_fixed(&mut state, &mut wm, max_ts - delay, lateness, &mut out);
    }
    advance_fixed(&mut state, &mut wm, i64::MAX, lateness, &mut out);
    out
}

fn advance_fixed(state: &mut Vec<Inst>, wm: &mut i64, new: i64, lateness: i64, out: &mut Outcome) {
    if new <= *wm {
        return;
    }
    for inst in state.iter_mut() {
        if inst.end > *wm && inst.end <= new {
            let revision = inst.last_revision.map_or(0, |r| r + 1);
            inst.last_revision = Some(revision);
            out.rows.push(row(
                &inst.key,
                inst.start,
                inst.end,
                &inst.values,
                revision,
                false,
            ));
        }
    }
    *wm = new;
    state.retain(|i| i.end.saturating_add(lateness) > new);
}

struct Sess {
    key: String,
    start: i64,
    end: i64,
    values: Vec<f64>,
    last_revision: Option<u32>,
    pending: bool,
}

fn sessions(gap: i64, lateness: i64, delay: i64, events: &[Ev]) -> Outcome {
    let mut out = Outcome::default();
    let mut live: Vec<Sess> = Vec::new();
    let mut wm = i64::MIN;
    let mut max_ts = i64::MIN;
    for e in events {
        let (mut start, mut end) = (e.ts, e.ts + gap);
        let touching: Vec<usize> = (0..live.len())
            .filter(|&i| live[i].key == e.key && live[i].start <= end && start <= live[i].end)
            .collect();
        if touching.is_empty() && wm != i64::MIN && end + lateness < wm {
            out.dropped.push((e.key.clone(), e.ts, wm - e.ts));
        } else {
            let mut values = vec![e.value];
            let mut last_revision = None;
            for &i in touching.iter().rev() {
                let s = live.remove(i);
                start = start.min(s.start);
                end = end.max(s.end);
                values.extend(s.values);
                last_revision = last_revision.max(s.last_revision);
            }
            let mut s = Sess {
                key: e.key.clone(),
                start,
                end,
                values,
                last_revision,
                pending: true,
            };
            if end < wm {
                let revision = s.last_revision.map_or(0, |r| r + 1);
                out.rows
                    .push(row(&s.key, start, end, &s.values, revision, true));
                s.last_revision = Some(revision);
                s.pending = false;
            }
            live.push(s);
        }
        max_ts = max_ts.max(e.ts);
        advance_sessions(&mut live, &mut wm, max_ts - delay, lateness, &mut out);
    }
    advance_sessions(&mut live, &mut wm, i64::MAX, lateness, &mut out);
    out
}

fn advance_sessions(
    live: &mut Vec<Sess>,
    wm: &mut i64,
    new: i64,
    lateness: i64,
    out: &mut Outcome,
) {
    if new <= *wm {
        return;
    }
    *wm = new;
    for s in live.iter_mut() {
        if s.pending && s.end < new {
            let revision = s.last_revision.map_or(0, |r| r + 1);
            out.rows
                .push(row(&s.key, s.start, s.end, &s.values, revision, false));
            s.last_revision = Some(revision);
            s.pending = false;
        }
    }
    live.retain(|s| s.end.saturating_add(lateness) >= new);
}
