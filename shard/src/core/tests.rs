//! Barrier alignment and the lifecycle against a simple model.
//!
//! One shard (`me`) of `n` (1 to 4) receives, on one FIFO inbox per other shard, a
//! random sequence of batches of several pipelines, watermarks, barriers `1..=k` in
//! order and, when that shard stops, `Drained`. It also reads its own source, and the
//! coordinator asks it for checkpoints at random moments. A random schedule picks what
//! happens next; the shard obeys only the core's decisions (a held inbox is not read,
//! sources stand still while a checkpoint is in progress or after a stop). The model:
//! snapshot `c` must hold exactly the events sent before barrier `c` on every inbox and
//! the own events read before the shard started `c`; no inbox is held once a checkpoint
//! is snapshotted; every lifecycle step is an allowed one.

use std::collections::{BTreeSet, VecDeque};

use proptest::prelude::*;

use super::{Alignment, Lifecycle};

/// What an upstream shard sends, as the model sees it.
#[derive(Debug, Clone, PartialEq)]
enum Sent {
    /// An event `(from, sequence number)` of a pipeline.
    Event(usize, u32, u8),
    Watermark,
    Barrier(u64),
    Drained,
}

/// The upstream channels: per inbox, the events with barriers `1..=k` spread among them
/// at the positions `cuts` (sorted), then `Drained` if that shard stops.
fn channels(n: usize, k: u64, lens: &[(u32, Vec<u32>, bool)]) -> Vec<VecDeque<Sent>> {
    (0..n)
        .map(|from| {
            let mut q = VecDeque::new();
            if from == 0 {
                return q;
            }
            let (len, cuts, stops) = &lens[from % lens.len()];
            let mut cuts: Vec<u32> = cuts.iter().map(|c| c % (len + 1)).collect();
            cuts.resize(k as usize, *len);
            cuts.sort_unstable();
            let mut barrier = 1;
            for seq in 0..=*len {
                while barrier <= k && cuts[(barrier - 1) as usize] == seq {
                    q.push_back(Sent::Barrier(barrier));
                    barrier += 1;
                }
                if seq < *len {
                    if seq % 5 == 4 {
                        q.push_back(Sent::Watermark);
                    }
                    q.push_back(Sent::Event(from, seq, (seq % 3) as u8));
                }
            }
            if *stops {
                q.push_back(Sent::Drained);
            }
            q
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Step {
    Deliver(usize),
    ReadOwn,
    Request,
    Stop,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0usize..4).prop_map(Step::Deliver),
        2 => Just(Step::ReadOwn),
        1 => Just(Step::Request),
        1 => Just(Step::Stop),
    ]
}

/// The shard under test, driven by the core's decisions.
struct Sim {
    me: usize,
    n: usize,
    align: Alignment,
    life: Lifecycle,
    drained_from: Vec<bool>,
    inboxes: Vec<VecDeque<Sent>>,
    /// Everything applied so far (events of other shards and own reads).
    applied: BTreeSet<(usize, u32)>,
    own_read: u32,
    /// Per checkpoint: the events the model says it must hold (own part at its start).
    expected: Vec<(u64, BTreeSet<(usize, u32)>)>,
    snapshots: Vec<(u64, BTreeSet<(usize, u32)>)>,
    requested: u64,
    k: u64,
}

impl Sim {
    /// The model's cut of checkpoint `c`: every event before barrier `c` on each inbox
    /// (from the original channels) and own events read so far.
    fn begin(&mut self, c: u64, original: &[VecDeque<Sent>]) {
        let mut cut: BTreeSet<(usize, u32)> = (0..self.own_read).map(|s| (self.me, s)).collect();
        for q in original {
            for m in q {
                match m {
                    Sent::Barrier(b) if *b == c => break,
                    Sent::Event(from, seq, _) => {
                        cut.insert((*from, *seq));
                    }
                    _ => {}
                }
            }
        }
        self.expected.push((c, cut));
    }

    fn after_step(&mut self) -> Result<(), TestCaseError> {
        if let Some(c) = self.align.aligned() {
            self.snapshots.push((c, self.applied.clone()));
            self.align.completed(c);
            for i in 0..self.n {
                prop_assert!(!self.align.is_held(i), "inbox {i} held after snapshot {c}");
            }
        }
        let before = self.life.clone();
        // Drained goes out behind everything: nothing to model downstream.
        let _ = self.life.take_drained_to_send();
        if self.align.in_progress().is_none()
            && self.life.all_drained(self.me, &self.drained_from)
            && self.inboxes.iter().all(VecDeque::is_empty)
        {
            self.life
                .quiesce()
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        prop_assert!(
            self.life.may_follow(&before),
            "{before:?} -> {:?}",
            self.life
        );
        Ok(())
    }

    fn deliver(&mut self, from: usize, original: &[VecDeque<Sent>]) -> Result<bool, TestCaseError> {
        if from >= self.n || from == self.me || self.align.is_held(from) {
            return Ok(false);
        }
        let Some(msg) = self.inboxes[from].pop_front() else {
            return Ok(false);
        };
        match msg {
            Sent::Event(f, seq, _) => {
                self.applied.insert((f, seq));
            }
            Sent::Watermark => {}
            Sent::Barrier(c) => {
                if self.align.barrier(from, c) {
                    self.begin(c, original);
                }
                prop_assert!(
                    self.align.in_progress() != Some(c) || self.align.is_held(from),
                    "barrier {c} from {from} does not hold its inbox"
                );
            }
            Sent::Drained => self.drained_from[from] = true,
        }
        Ok(true)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_snapshot_holds_exactly_what_came_before_its_barriers_on_every_inbox(
        n in 1usize..=4,
        k in 1u64..=4,
        lens in proptest::collection::vec(
            (0u32..60, proptest::collection::vec(0u32..61, 0..4), any::<bool>()),
            1..4,
        ),
        steps in proptest::collection::vec(step(), 0..400),
    ) {
        let original = channels(n, k, &lens);
        let mut sim = Sim {
            me: 0,
            n,
            align: Alignment::new(0, n),
            life: Lifecycle::Running,
            drained_from: vec![false; n],
            inboxes: original.clone(),
            applied: BTreeSet::new(),
            own_read: 0,
            expected: Vec::new(),
            snapshots: Vec::new(),
            requested: 0,
            k,
        };
        for s in steps {
            match s {
                Step::Deliver(i) => {
                    sim.deliver(i, &original)?;
                }
                Step::ReadOwn => {
                    if sim.life.reads_sources() && sim.align.in_progress().is_none() {
                        sim.applied.insert((sim.me, sim.own_read));
                        sim.own_read += 1;
                    }
                }
                Step::Request => {
                    // The coordinator asks for the next checkpoint once every shard
                    // acknowledged the last one (this one included).
                    if sim.requested < sim.k && sim.align.last() >= sim.requested {
                        sim.requested += 1;
                        let c = sim.requested;
                        if sim.align.start(c) {
                            sim.begin(c, &original);
                        }
                    }
                }
                Step::Stop => sim.life.stop(),
            }
            sim.after_step()?;
        }
        // Then everything that can arrive arrives: no inbox may stay held for good.
        loop {
            let mut moved = false;
            for i in 0..n {
                while sim.deliver(i, &original)? {
                    moved = true;
                    sim.after_step()?;
                }
            }
            if !moved {
                break;
            }
        }
        prop_assert!(sim.align.in_progress().is_none(), "stuck aligning {:?}", sim.align.in_progress());
        for (c, got) in &sim.snapshots {
            let want = sim.expected.iter().find(|(e, _)| e == c).map(|(_, w)| w);
            prop_assert_eq!(Some(got), want, "snapshot {}", c);
        }
        // Every checkpoint any barrier or request started was snapshotted, once, in order.
        let ids: Vec<u64> = sim.snapshots.iter().map(|(c, _)| *c).collect();
        prop_assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        let begun: Vec<u64> = sim.expected.iter().map(|(c, _)| *c).collect();
        prop_assert_eq!(ids, begun);
    }
}

#[test]
fn a_newer_checkpoint_supersedes_one_still_aligning_and_releases_its_inboxes() {
    let mut a = Alignment::new(0, 3);
    assert!(a.start(1));
    assert!(!a.barrier(1, 1), "already started");
    assert!(a.is_held(1));
    // The coordinator gave up on 1 and asks for 2: inbox 1 is released at once.
    assert!(a.start(2));
    assert!(!a.is_held(1));
    assert!(!a.barrier(2, 1), "an old barrier is ignored");
    assert!(!a.is_held(2));
    assert!(!a.barrier(1, 2));
    assert!(!a.barrier(2, 2));
    assert_eq!(a.aligned(), Some(2));
    a.completed(2);
    assert_eq!((a.in_progress(), a.last()), (None, 2));
    assert!(!a.start(2) && !a.start(1), "nothing old starts again");
}

#[test]
fn only_the_allowed_lifecycle_steps_are_taken() {
    let mut l = Lifecycle::Running;
    assert!(l.reads_sources());
    l.stop();
    assert_eq!(l, Lifecycle::Draining { sent: false });
    assert!(!l.reads_sources());
    assert!(l.take_drained_to_send());
    assert!(!l.take_drained_to_send(), "Drained goes out once");
    assert!(!l.all_drained(0, &[true, false]));
    assert!(l.all_drained(0, &[false, true]), "its own slot is ignored");
    assert_eq!(l.quiesce(), Ok(()));
    assert!(l.quiesce().is_err(), "quiesced twice");
    l.stop();
    assert_eq!(
        l,
        Lifecycle::Quiesced { drained: true },
        "a stop after quiescing changes nothing"
    );
    assert!(l.stopping());
    l.end();
    assert!(l.may_follow(&Lifecycle::Quiesced { drained: true }));
    assert!(!Lifecycle::Running.may_follow(&Lifecycle::Quiesced { drained: false }));
    let mut finished = Lifecycle::Running;
    assert_eq!(finished.quiesce(), Ok(()));
    assert!(
        !finished.stopping(),
        "a shard that finished its input still sends watermarks"
    );
}
