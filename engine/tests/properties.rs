//! Property tests of the window operators against the reference in `reference.rs`.

mod reference;

use proptest::prelude::*;
use reference::{Ev, Outcome, Row};
use weir_config::{Aggregate, Window, WindowKind};
use weir_engine::{
    AggSpec, Event, EventId, EventTime, Key, KeyGroupMap, Offset, Output, Watermark, WindowOperator,
};

fn spec() -> AggSpec {
    AggSpec::new(
        &[
            Aggregate::Count,
            Aggregate::Sum,
            Aggregate::Min,
            Aggregate::Max,
            Aggregate::Percentile(500),
        ],
        3,
    )
}

fn collect(out: &mut Output, outcome: &mut Outcome) {
    for r in out.results.drain(..) {
        outcome.rows.push(Row {
            key: r.key.as_str().to_owned(),
            start: r.start,
            end: r.end,
            count: r.count,
            sum: r.sum,
            min: r.min,
            max: r.max,
            p50: r.percentiles[0],
            revision: r.revision,
            late: r.late,
        });
    }
    for l in out.late.drain(..) {
        outcome.dropped.push((
            l.event.key.as_str().to_owned(),
            l.event.time.0,
            l.late_by_ms,
        ));
    }
}

/// Runs the engine over `events` split over `shards` operators by key group; every
/// operator sees the same watermark (`max ts - delay` after each event, +∞ at the end).
fn run_engine(window: &Window, delay: i64, events: &[Ev], shards: u32) -> Outcome {
    let map = KeyGroupMap::new(128, shards);
    let mut ops: Vec<WindowOperator> = (0..shards)
        .map(|_| WindowOperator::new(window, spec()))
        .collect();
    let mut out = Output::default();
    let mut outcome = Outcome::default();
    let mut max_ts = i64::MIN;
    for (i, e) in events.iter().enumerate() {
        let key = Key::new(&e.key);
        let shard = map.shard_of_hash(key.hash()) as usize;
        let id = EventId {
            offset: Offset(i as u64),
            ..EventId::default()
        };
        ops[shard].process(&Event::new(key, EventTime(e.ts), e.value, id), &mut out);
        max_ts = max_ts.max(e.ts);
        for op in &mut ops {
            op.advance_watermark(Watermark(max_ts - delay), &mut out);
        }
        collect(&mut out, &mut outcome);
    }
    for op in &mut ops {
        op.advance_watermark(Watermark::MAX, &mut out);
    }
    collect(&mut out, &mut outcome);
    outcome
}

fn window_strategy() -> impl Strategy<Value = Window> {
    let lateness = prop_oneof![Just(0u64), 1u64..60];
    (0..3u8, 1u64..40, 1u64..5, lateness).prop_map(|(kind, a, b, allowed_lateness_ms)| {
        let kind = match kind {
            0 => WindowKind::Tumbling { size_ms: a },
            1 => WindowKind::Sliding {
                size_ms: a * b,
                slide_ms: a,
            },
            _ => WindowKind::Session { gap_ms: a },
        };
        Window {
            kind,
            allowed_lateness_ms,
        }
    })
}

/// Events in time order: few keys, times advancing in small random steps, values that
/// are multiples of 1/4 so that every sum is exact in any order.
fn sorted_events(max_len: usize) -> impl Strategy<Value = Vec<Ev>> {
    prop::collection::vec((0u8..6, 0i64..8, -40i32..40), 1..max_len).prop_map(|steps| {
        let mut ts = 1_000;
        steps
            .into_iter()
            .map(|(k, step, v)| {
                ts += step;
                Ev {
                    key: format!("k{k}"),
                    ts,
                    value: f64::from(v) / 4.0,
                }
            })
            .collect()
    })
}

/// Reorders events so that each arrives at most `delay` behind the largest time before it.
fn bounded_shuffle(events: &[Ev], jitter: &[i64], delay: i64) -> Vec<Ev> {
    let mut keyed: Vec<(i64, usize)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.ts + jitter[i % jitter.len()].rem_euclid(delay + 1), i))
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, i)| events[i].clone()).collect()
}

fn cases() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(500);
    ProptestConfig::with_cases(cases)
}

proptest! {
    #![proptest_config(cases())]

    /// 1. Disorder within the watermark delay never changes the results.
    #[test]
    fn reordering_within_the_delay_gives_the_results_of_the_sorted_input(
        window in window_strategy(),
        events in sorted_events(150),
        jitter in prop::collection::vec(any::<i64>(), 1..50),
        delay in 0i64..30,
    ) {
        let shuffled = bounded_shuffle(&events, &jitter, delay);
        let sorted = run_engine(&window, delay, &events, 1).sorted();
        let reordered = run_engine(&window, delay, &shuffled, 1).sorted();
        prop_assert!(sorted.dropped.is_empty() && reordered.dropped.is_empty());
        prop_assert!(sorted.rows.iter().all(|r| r.revision == 0 && !r.late));
        prop_assert_eq!(sorted.rows, reordered.rows);
    }

    /// 2. The engine equals the brute-force reference, late events included.
    #[test]
    fn results_equal_the_brute_force_reference(
        window in window_strategy(),
        events in sorted_events(150),
        jitter in prop::collection::vec(any::<i64>(), 1..50),
        disorder in 0i64..60,
        delay in 0i64..20,
    ) {
        let input = bounded_shuffle(&events, &jitter, disorder);
        let expected = reference::run(&window, delay, &input).sorted();
        let got = run_engine(&window, delay, &input, 1).sorted();
        prop_assert_eq!(got.rows, expected.rows);
        prop_assert_eq!(got.dropped, expected.dropped);
    }

    /// 3. Splitting keys over operator instances by key group changes nothing.
    #[test]
    fn splitting_keys_by_key_group_equals_one_instance(
        window in window_strategy(),
        events in sorted_events(150),
        jitter in prop::collection::vec(any::<i64>(), 1..50),
        disorder in 0i64..60,
        delay in 0i64..20,
        shards in 2u32..6,
    ) {
        let input = bounded_shuffle(&events, &jitter, disorder);
        let one = run_engine(&window, delay, &input, 1).sorted();
        let many = run_engine(&window, delay, &input, shards).sorted();
        prop_assert_eq!(one.rows, many.rows);
        prop_assert_eq!(one.dropped, many.dropped);
    }
}

/// Runs the engine, taking a snapshot after `cut` events, encoding and decoding it, and
/// restoring it onto `shards_after` fresh operators (by key group) for the rest.
fn run_with_restore(
    window: &Window,
    delay: i64,
    events: &[Ev],
    cut: usize,
    shards_after: u32,
) -> Outcome {
    let mut op = WindowOperator::new(window, spec());
    let mut out = Output::default();
    let mut outcome = Outcome::default();
    let mut max_ts = i64::MIN;
    let step = |op: &mut WindowOperator, e: &Ev, i: usize, max_ts: &mut i64, out: &mut Output| {
        let id = EventId {
            offset: Offset(i as u64),
            ..EventId::default()
        };
        op.process(
            &Event::new(Key::new(&e.key), EventTime(e.ts), e.value, id),
            out,
        );
        *max_ts = (*max_ts).max(e.ts);
    };
    for (i, e) in events[..cut].iter().enumerate() {
        step(&mut op, e, i, &mut max_ts, &mut out);
        op.advance_watermark(Watermark(max_ts - delay), &mut out);
    }
    collect(&mut out, &mut outcome);
    let bytes = weir_engine::snapshot::encode(&op.snapshot()).unwrap_or_default();
    let state: weir_engine::snapshot::OperatorState =
        weir_engine::snapshot::decode(&bytes).unwrap_or_default();
    let map = KeyGroupMap::new(128, shards_after);
    let mut ops: Vec<WindowOperator> = (0..shards_after)
        .map(|s| {
            let mut op = WindowOperator::new(window, spec());
            op.restore(&state, &mut |k: &Key| map.shard_of_hash(k.hash()) == s);
            op
        })
        .collect();
    for (i, e) in events[cut..].iter().enumerate() {
        let shard = map.shard_of_hash(Key::new(&e.key).hash()) as usize;
        step(&mut ops[shard], e, cut + i, &mut max_ts, &mut out);
        for op in &mut ops {
            op.advance_watermark(Watermark(max_ts - delay), &mut out);
        }
        collect(&mut out, &mut outcome);
    }
    for op in &mut ops {
        op.advance_watermark(Watermark::MAX, &mut out);
    }
    collect(&mut out, &mut outcome);
    outcome
}

proptest! {
    #![proptest_config(cases())]

    /// 5. A snapshot restored mid-stream, onto any number of operators, changes nothing.
    #[test]
    fn restoring_a_snapshot_mid_stream_onto_any_shard_count_changes_nothing(
        window in window_strategy(),
        events in sorted_events(150),
        jitter in prop::collection::vec(any::<i64>(), 1..50),
        disorder in 0i64..60,
        delay in 0i64..20,
        cut_at in 0.0f64..1.0,
        shards_after in 1u32..4,
    ) {
        let input = bounded_shuffle(&events, &jitter, disorder);
        let cut = ((input.len() as f64) * cut_at) as usize;
        let straight = run_engine(&window, delay, &input, 1).sorted();
        let restored = run_with_restore(&window, delay, &input, cut, shards_after).sorted();
        prop_assert_eq!(straight.rows, restored.rows);
        prop_assert_eq!(straight.dropped, restored.dropped);
    }
}
