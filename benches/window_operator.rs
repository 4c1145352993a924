//! The window operator alone: pre-built events through `process`, with the watermark
//! advanced every 1024 events (as a shard does per batch) so that windows fire and their
//! results are built. Results are dropped after each batch.
//!
//! Workloads: tumbling 1 s windows, count/sum/min/max, 10,000 uniform keys, event time
//! advancing 1 ms per event with up to 100 ms of disorder, watermark delay 200 ms
//! ("sparse": about one result per event), and the same at 100 events per ms ("dense":
//! about ten events per key and window). A naive baseline keeps the same state in a
//! std HashMap keyed by (String, window start), hashing the key string on every event.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_config::{Aggregate, Window, WindowKind};
use weir_engine::{
    AggSpec, Event, EventId, EventTime, Key, Offset, Output, Watermark, WindowOperator,
};

const EVENTS: usize = 1 << 20;
const KEYS: u64 = 10_000;
const BATCH: usize = 1024;
const DELAY: i64 = 200;

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn events(per_ms: u64) -> Vec<Event> {
    let keys: Vec<Key> = (0..KEYS).map(|k| Key::new(&format!("user-{k}"))).collect();
    let mut rng = 7;
    (0..EVENTS as u64)
        .map(|i| {
            let r = splitmix(&mut rng);
            let ts = 1_700_000_000_000 + (i / per_ms) as i64 - (r >> 40) as i64 % 101;
            let key = keys[(r % KEYS) as usize].clone();
            let id = EventId {
                offset: Offset(i),
                ..EventId::default()
            };
            Event::new(key, EventTime(ts), (r >> 20) as f64 % 1000.0, id)
        })
        .collect()
}

fn run_operator(events: &[Event], window: &Window, spec: &AggSpec) -> usize {
    let mut op = WindowOperator::new(window, spec.clone());
    let mut out = Output::default();
    let mut max_ts = i64::MIN;
    let mut emitted = 0;
    for batch in events.chunks(BATCH) {
        for e in batch {
            op.process(e, &mut out);
            max_ts = max_ts.max(e.time.0);
        }
        op.advance_watermark(Watermark(max_ts - DELAY), &mut out);
        emitted += out.results.len();
        out.clear();
    }
    op.advance_watermark(Watermark::MAX, &mut out);
    emitted + out.results.len()
}

#[derive(Default)]
struct NaiveAcc {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

fn run_naive(events: &[Event], size: i64) -> usize {
    let mut state: HashMap<(String, i64), NaiveAcc> = HashMap::new();
    let mut max_ts = i64::MIN;
    let mut emitted = 0;
    for batch in events.chunks(BATCH) {
        for e in batch {
            let start = e.time.0.div_euclid(size) * size;
            let acc = state
                .entry((e.key.as_str().to_owned(), start))
                .or_insert(NaiveAcc {
                    min: f64::INFINITY,
                    max: f64::NEG_INFINITY,
                    ..NaiveAcc::default()
                });
            acc.count += 1;
            acc.sum += e.value;
            acc.min = acc.min.min(e.value);
            acc.max = acc.max.max(e.value);
            max_ts = max_ts.max(e.time.0);
        }
        let wm = max_ts - DELAY;
        state.retain(|(_, start), acc| {
            if start + size <= wm {
                emitted += black_box(acc.count) as usize;
                false
            } else {
                true
            }
        });
    }
    emitted + state.len()
}

fn bench(c: &mut Criterion) {
    let spec = AggSpec::new(
        &[
            Aggregate::Count,
            Aggregate::Sum,
            Aggregate::Min,
            Aggregate::Max,
        ],
        3,
    );
    let tumbling = Window {
        kind: WindowKind::Tumbling { size_ms: 1000 },
        allowed_lateness_ms: 0,
    };
    let sliding = Window {
        kind: WindowKind::Sliding {
            size_ms: 10_000,
            slide_ms: 1000,
        },
        allowed_lateness_ms: 0,
    };
    let session = Window {
        kind: WindowKind::Session { gap_ms: 500 },
        allowed_lateness_ms: 0,
    };
    let mut group = c.benchmark_group("window_operator");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    for (name, per_ms) in [("sparse", 1), ("dense", 100)] {
        let input = events(per_ms);
        group.bench_function(format!("tumbling_1s/{name}"), |b| {
            b.iter(|| run_operator(black_box(&input), &tumbling, &spec))
        });
        group.bench_function(format!("naive_hashmap_tumbling_1s/{name}"), |b| {
            b.iter(|| run_naive(black_box(&input), 1000))
        });
        group.bench_function(format!("sliding_10s_1s/{name}"), |b| {
            b.iter(|| run_operator(black_box(&input), &sliding, &spec))
        });
        group.bench_function(format!("session_500ms/{name}"), |b| {
            b.iter(|| run_operator(black_box(&input), &session, &spec))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
