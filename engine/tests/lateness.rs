//! 4. Late events: the exact revisions and drops of SPEC.md §4, scenario by scenario.

mod reference;

use weir_config::{Aggregate, Window, WindowKind};
use weir_engine::{
    AggSpec, Event, EventId, EventTime, Key, Output, Verdict, Watermark, WindowOperator,
};

struct Harness {
    op: WindowOperator,
    out: Output,
}

impl Harness {
    fn new(kind: WindowKind, allowed_lateness_ms: u64) -> Self {
        let window = Window {
            kind,
            allowed_lateness_ms,
        };
        Self {
            op: WindowOperator::new(
                &window,
                AggSpec::new(&[Aggregate::Count, Aggregate::Sum], 3),
            ),
            out: Output::default(),
        }
    }

    fn event(&mut self, key: &str, ts: i64, value: f64) -> Verdict {
        self.op.process(
            &Event::new(Key::new(key), EventTime(ts), value, EventId::default()),
            &mut self.out,
        )
    }

    fn watermark(&mut self, wm: i64) {
        self.op.advance_watermark(Watermark(wm), &mut self.out);
    }

    /// (key, start, end, count, sum, revision, late) of results since the last call.
    fn results(&mut self) -> Vec<(String, i64, i64, u64, f64, u32, bool)> {
        let mut rows: Vec<_> = self
            .out
            .results
            .drain(..)
            .map(|r| {
                (
                    r.key.to_string(),
                    r.start,
                    r.end,
                    r.count,
                    r.sum,
                    r.revision,
                    r.late,
                )
            })
            .collect();
        rows.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        rows
    }

    fn dropped(&mut self) -> Vec<(String, i64, i64)> {
        self.out
            .late
            .drain(..)
            .map(|l| (l.event.key.to_string(), l.event.time.0, l.late_by_ms))
            .collect()
    }
}

#[test]
fn late_event_within_lateness_refires_with_next_revision() {
    let mut h = Harness::new(WindowKind::Tumbling { size_ms: 10 }, 5);
    assert_eq!(h.event("a", 1, 1.0), Verdict::OnTime);
    h.watermark(12);
    assert_eq!(h.results(), vec![("a".into(), 0, 10, 1, 1.0, 0, false)]);
    assert_eq!(h.event("a", 3, 2.0), Verdict::Late);
    assert_eq!(h.results(), vec![("a".into(), 0, 10, 2, 3.0, 1, true)]);
    assert_eq!(h.event("a", 4, 4.0), Verdict::Late);
    assert_eq!(h.results(), vec![("a".into(), 0, 10, 3, 7.0, 2, true)]);
    // A key with no result for the window yet gets its first emission, revision 0.
    assert_eq!(h.event("b", 5, 1.0), Verdict::Late);
    assert_eq!(h.results(), vec![("b".into(), 0, 10, 1, 1.0, 0, true)]);
}

#[test]
fn event_past_allowed_lateness_is_dropped_with_how_late_it_was() {
    let mut h = Harness::new(WindowKind::Tumbling { size_ms: 10 }, 5);
    h.event("a", 1, 1.0);
    h.watermark(15);
    assert_eq!(h.results().len(), 1);
    assert_eq!(h.event("a", 2, 1.0), Verdict::Dropped);
    assert_eq!(h.dropped(), vec![("a".into(), 2, 13)]);
    assert!(h.results().is_empty());
}

#[test]
fn without_lateness_a_fired_window_drops_its_late_events() {
    let mut h = Harness::new(WindowKind::Tumbling { size_ms: 10 }, 0);
    h.event("a", 1, 1.0);
    h.watermark(10);
    assert_eq!(h.results().len(), 1);
    assert_eq!(h.event("a", 9, 1.0), Verdict::Dropped);
    assert_eq!(h.dropped(), vec![("a".into(), 9, 1)]);
}

#[test]
fn a_sliding_late_event_refires_only_its_unexpired_windows() {
    // Windows of 20 every 10: an event at 15 is in [0,20) and [10,30).
    let mut h = Harness::new(
        WindowKind::Sliding {
            size_ms: 20,
            slide_ms: 10,
        },
        5,
    );
    h.event("a", 12, 1.0);
    h.watermark(31);
    assert_eq!(
        h.results(),
        vec![
            ("a".into(), 0, 20, 1, 1.0, 0, false),
            ("a".into(), 10, 30, 1, 1.0, 0, false)
        ]
    );
    // [0,20) expired at 25; [10,30) is kept until 35.
    assert_eq!(h.event("a", 15, 2.0), Verdict::Late);
    assert_eq!(h.results(), vec![("a".into(), 10, 30, 2, 3.0, 1, true)]);
    h.watermark(35);
    assert_eq!(h.event("a", 16, 2.0), Verdict::Dropped);
}

#[test]
fn a_late_event_that_bridges_two_fired_sessions_merges_them_into_a_new_revision() {
    let mut h = Harness::new(WindowKind::Session { gap_ms: 5 }, 100);
    h.event("a", 0, 1.0);
    h.event("a", 3, 1.0); // [0, 8)
    h.event("a", 12, 1.0); // [12, 17)
    h.watermark(20);
    assert_eq!(
        h.results(),
        vec![
            ("a".into(), 0, 8, 2, 2.0, 0, false),
            ("a".into(), 12, 17, 1, 1.0, 0, false)
        ]
    );
    // 7 joins [0,8) (7 <= 3 + 5) and its window [7,12) touches [12,17): one session.
    assert_eq!(h.event("a", 7, 10.0), Verdict::Late);
    assert_eq!(h.results(), vec![("a".into(), 0, 17, 4, 13.0, 1, true)]);
    // Another late event joins the merged session.
    assert_eq!(h.event("a", 14, 1.0), Verdict::Late);
    assert_eq!(h.results(), vec![("a".into(), 0, 19, 5, 14.0, 2, true)]);
}

#[test]
fn a_late_event_can_extend_a_fired_session_past_the_watermark() {
    let mut h = Harness::new(WindowKind::Session { gap_ms: 5 }, 100);
    h.event("a", 0, 1.0); // [0, 5)
    h.watermark(6);
    assert_eq!(h.results(), vec![("a".into(), 0, 5, 1, 1.0, 0, false)]);
    // 4 is behind the watermark but extends the session to [0, 9), which has not ended.
    assert_eq!(h.event("a", 4, 1.0), Verdict::OnTime);
    assert!(h.results().is_empty());
    h.watermark(9);
    assert!(
        h.results().is_empty(),
        "a session fires only once the watermark passes its end"
    );
    h.watermark(10);
    assert_eq!(h.results(), vec![("a".into(), 0, 9, 2, 2.0, 1, false)]);
}

#[test]
fn a_session_past_lateness_is_dropped_and_its_state_deleted() {
    let mut h = Harness::new(WindowKind::Session { gap_ms: 5 }, 10);
    h.event("a", 0, 1.0);
    h.watermark(16);
    assert_eq!(h.results().len(), 1);
    assert_eq!(h.op.stats().windows, 0);
    // [0, 5) ends at 5 and 5 + 10 < 16: past lateness.
    assert_eq!(h.event("a", 0, 1.0), Verdict::Dropped);
    assert_eq!(h.dropped(), vec![("a".into(), 0, 16)]);
    // [2, 7) is within lateness (7 + 10 >= 16): a new session, emitted at once as late.
    assert_eq!(h.event("a", 2, 1.0), Verdict::Late);
    assert_eq!(h.results(), vec![("a".into(), 2, 7, 1, 1.0, 0, true)]);
}

#[test]
fn end_of_input_fires_every_remaining_window() {
    for kind in [
        WindowKind::Tumbling { size_ms: 10 },
        WindowKind::Sliding {
            size_ms: 30,
            slide_ms: 10,
        },
        WindowKind::Session { gap_ms: 7 },
    ] {
        let mut h = Harness::new(kind, 0);
        h.event("a", 1_000_000, 1.0);
        h.watermark(i64::MAX);
        assert!(!h.results().is_empty(), "{kind:?}");
        assert_eq!(h.op.stats().windows, 0, "{kind:?}");
    }
}

#[test]
fn the_cheap_window_count_agrees_with_the_full_stats() {
    for kind in [
        WindowKind::Tumbling { size_ms: 10 },
        WindowKind::Sliding {
            size_ms: 30,
            slide_ms: 10,
        },
        WindowKind::Session { gap_ms: 7 },
    ] {
        let mut h = Harness::new(kind, 20);
        for (i, ts) in [1, 5, 9, 14, 30, 31, 50, 3, 70].into_iter().enumerate() {
            h.event(["a", "b", "c"][i % 3], ts, 1.0);
            h.watermark(ts - 5);
            assert_eq!(h.op.window_count(), h.op.stats().windows, "{kind:?}");
        }
    }
}
