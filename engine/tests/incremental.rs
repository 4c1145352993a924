//! Property tests of asynchronous, incremental snapshots against a model: the state an
//! operator held at each checkpoint's barrier (its full snapshot, taken then).
//!
//! An operator runs random events, firings and expirations. At a checkpoint it is
//! frozen; more events, firings and expirations follow before the frozen state is
//! written, as the coordinator writes it on another thread while the shard goes on. The
//! record written follows the shard's chain (in full, or what changed plus a compaction
//! slice); some checkpoints fail and are not committed; old records that no retained
//! checkpoint needs are deleted. After every commit, restoring the latest checkpoint
//! from its chain onto 1 to 4 operators must give exactly the state at its barrier.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use weir_config::{Aggregate, Window, WindowKind};
use weir_engine::chain::{Chain, Plan};
use weir_engine::snapshot::{OperatorState, decode, encode};
use weir_engine::{
    AggSpec, Event, EventId, EventTime, FrozenState, Key, KeyGroupMap, Output, Watermark,
    WindowOperator,
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

#[derive(Debug, Clone)]
enum Step {
    /// `n` events on keys `first..first + n`, at times advancing from the latest by
    /// `advance` ms, up to `disorder` ms behind it.
    Events {
        first: u32,
        n: u32,
        advance: i64,
        disorder: i64,
    },
    /// The watermark moves to the latest event time minus this.
    Watermark(i64),
    /// A checkpoint's barrier: the operator is frozen.
    Barrier,
    /// The oldest frozen checkpoint is written; committed unless `fails`.
    Write { fails: bool },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        // Few keys changed (a hot set), or many.
        4 => (0u32..8, 1u32..6, 0i64..6, 0i64..30).prop_map(|(first, n, advance, disorder)| {
            Step::Events { first, n, advance, disorder }
        }),
        1 => (0u32..2000, 50u32..800, 0i64..6, 0i64..30).prop_map(|(first, n, advance, disorder)| {
            Step::Events { first, n, advance, disorder }
        }),
        2 => (0i64..60).prop_map(Step::Watermark),
        2 => Just(Step::Barrier),
        2 => (prop::bool::weighted(0.15)).prop_map(|fails| Step::Write { fails }),
    ]
}

fn window() -> impl Strategy<Value = Window> {
    let lateness = prop_oneof![Just(0u64), 1u64..80];
    (0..3u8, 1u64..200, 1u64..4, lateness).prop_map(|(kind, a, b, allowed_lateness_ms)| {
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

/// A state with its entries in a canonical order, to compare.
fn canonical(mut s: OperatorState) -> OperatorState {
    s.panes
        .sort_by(|a, b| (a.pane, &a.key).cmp(&(b.pane, &b.key)));
    s.revisions
        .sort_by(|a, b| (a.end, &a.key).cmp(&(b.end, &b.key)));
    s.sessions
        .sort_by(|a, b| (&a.key, a.start).cmp(&(&b.key, b.start)));
    s
}

/// The union of several operators' states (disjoint keys), with the lowest watermark.
fn union(states: Vec<OperatorState>) -> OperatorState {
    let mut all = OperatorState {
        watermark: i64::MAX,
        ..OperatorState::default()
    };
    for s in states {
        all.watermark = all.watermark.min(s.watermark);
        all.panes.extend(s.panes);
        all.revisions.extend(s.revisions);
        all.sessions.extend(s.sessions);
    }
    canonical(all)
}

/// What the checkpoint store holds of one shard: records by checkpoint, and for each
/// its full_at and chain.
/// One stored record: its bytes, full_at and chain.
type Record = (Vec<u8>, Vec<u64>, Vec<u64>);

#[derive(Default)]
struct Store {
    records: BTreeMap<u64, Record>,
    committed: Vec<u64>,
}

impl Store {
    /// Deletes every record that none of the newest `retain` committed checkpoints needs.
    fn prune(&mut self, retain: usize) {
        let kept: Vec<u64> = self.committed.iter().rev().take(retain).copied().collect();
        let mut needed: Vec<u64> = kept.clone();
        for id in &kept {
            if let Some((_, _, chain)) = self.records.get(id) {
                needed.extend(chain);
            }
        }
        self.records.retain(|id, _| needed.contains(id));
        self.committed.retain(|id| kept.contains(id));
    }

    /// Restores the latest committed checkpoint onto `shards` operators.
    fn restore(&self, window: &Window, shards: u32) -> Result<OperatorState, String> {
        let head = *self.committed.last().ok_or("nothing committed")?;
        let (_, full_at, chain) = &self.records[&head];
        let mut states = Vec::new();
        for id in chain.iter().chain([&head]) {
            let (bytes, _, _) = self
                .records
                .get(id)
                .ok_or(format!("record {id} of the chain of {head} is gone"))?;
            let state: OperatorState = decode(bytes).map_err(|e| e.to_string())?;
            states.push((*id, state));
        }
        let records: Vec<(u64, &OperatorState)> = states.iter().map(|(i, s)| (*i, s)).collect();
        let map = KeyGroupMap::new(128, shards);
        let restored = (0..shards)
            .map(|s| {
                let mut op = WindowOperator::new(window, spec());
                op.restore_chain(&records, full_at, &mut |k: &Key| {
                    map.shard_of_hash(k.hash()) == s
                });
                op.snapshot()
            })
            .collect();
        Ok(union(restored))
    }
}

struct Run {
    op: WindowOperator,
    out: Output,
    latest: i64,
    next_id: u64,
    chain: Chain,
    /// Frozen, not yet written: (checkpoint, frozen state, the model at its barrier).
    frozen: Vec<(u64, FrozenState, OperatorState)>,
    store: Store,
    models: HashMap<u64, OperatorState>,
    deltas: usize,
}

impl Run {
    fn apply(&mut self, step: &Step) {
        match *step {
            Step::Events {
                first,
                n,
                advance,
                disorder,
            } => {
                self.latest += advance;
                for k in first..first + n {
                    let ts = self.latest - (i64::from(k) * 7919) % (disorder + 1);
                    let key = Key::new(&format!("key-{k}"));
                    let value = f64::from(k % 13) / 4.0;
                    let event = Event::new(key, EventTime(ts), value, EventId::default());
                    self.op.process(&event, &mut self.out);
                }
            }
            Step::Watermark(delay) => {
                self.op
                    .advance_watermark(Watermark(self.latest - delay), &mut self.out);
            }
            Step::Barrier => {
                let id = self.next_id;
                self.next_id += 1;
                let model = canonical(self.op.snapshot());
                let frozen = self.op.freeze(id);
                self.frozen.push((id, frozen, model));
            }
            Step::Write { fails } => {
                if self.frozen.is_empty() {
                    return;
                }
                let (id, frozen, model) = self.frozen.remove(0);
                let plan: Plan = self.chain.plan(id, &[&frozen]);
                let record = plan.write(&frozen);
                if !plan.is_full() {
                    self.deltas += 1;
                }
                if fails {
                    return;
                }
                let bytes = encode(&record).unwrap_or_default();
                self.store
                    .records
                    .insert(id, (bytes, plan.full_at.clone(), plan.chain.clone()));
                self.store.committed.push(id);
                self.models.insert(id, model);
                self.chain.committed(plan);
                self.store.prune(2);
            }
        }
        self.out.clear();
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_latest_checkpoint_restores_exactly_the_state_at_its_barrier(
        window in window(),
        steps in prop::collection::vec(step(), 1..120),
        shards in 1u32..5,
    ) {
        let mut run = Run {
            op: WindowOperator::new(&window, spec()),
            out: Output::default(),
            latest: 10_000,
            next_id: 1,
            chain: Chain::default(),
            frozen: Vec::new(),
            store: Store::default(),
            models: HashMap::new(),
            deltas: 0,
        };
        for step in &steps {
            run.apply(step);
            if matches!(step, Step::Write { fails: false }) && !run.store.committed.is_empty() {
                let head = *run.store.committed.last().unwrap_or(&0);
                let restored = run.store.restore(&window, shards);
                prop_assert!(restored.is_ok(), "{:?}", restored.err());
                let restored = restored.unwrap_or_default();
                prop_assert_eq!(&restored, &run.models[&head], "checkpoint {}", head);
            }
        }
    }
}

/// The chain is exercised as intended: with few changed keys on a large state, most
/// checkpoints are deltas, and a delta holds a small share of the state.
#[test]
fn few_changes_on_a_large_state_make_small_deltas() {
    let window = Window {
        kind: WindowKind::Tumbling { size_ms: 3_600_000 },
        allowed_lateness_ms: 0,
    };
    let mut op = WindowOperator::new(&window, spec());
    let mut out = Output::default();
    let event = |k: u32| {
        Event::new(
            Key::new(&format!("key-{k}")),
            EventTime(1_000),
            1.0,
            EventId::default(),
        )
    };
    for k in 0..100_000 {
        op.process(&event(k), &mut out);
    }
    let mut chain = Chain::default();
    let mut sizes = Vec::new();
    for id in 1..=40u64 {
        // 1% of the keys change between checkpoints.
        for k in 0..1_000 {
            op.process(&event((k * 97 + id as u32 * 1_013) % 100_000), &mut out);
        }
        let frozen = op.freeze(id);
        let plan = chain.plan(id, &[&frozen]);
        sizes.push((plan.is_full(), plan.entries, plan.chain.len()));
        chain.committed(plan);
    }
    assert!(sizes[0].0, "the first checkpoint is written in full");
    for &(full, entries, links) in &sizes[1..] {
        assert!(!full, "{sizes:?}");
        assert!(
            entries <= 5_000,
            "a delta holds {entries} of 100,000 entries"
        );
        assert!(
            links <= weir_engine::chain::COMPACTION_ROUNDS,
            "{links} links"
        );
    }
}
