//! Incremental checkpoints: how one shard's snapshot records build on each other.
//!
//! A record holds, for some slices of the state (see [`crate::operator::slice_of`]),
//! every entry (the slice is written *in full*), and for the others only the entries
//! changed since the previous committed checkpoint. `full_at[s]` names the checkpoint
//! whose record holds slice `s` in full; restoring reads that record and every later one
//! of the chain, a later entry replacing an earlier one
//! ([`crate::WindowOperator::restore_chain`]).
//!
//! Compaction is continuous: each checkpoint also writes in full the next
//! [`SLICES`]` / `[`COMPACTION_ROUNDS`] slices, round robin, so that every slice is
//! written in full at least once every [`COMPACTION_ROUNDS`] committed checkpoints and a
//! restore reads at most that many records plus one. A checkpoint is written in full
//! (starting a new chain) when there is no chain to build on, when half the state
//! changed (a delta would save little), or when the chain would hold more than three
//! times the state's entries (restoring it would read too much). With 1% of the entries
//! changing between checkpoints, a record holds about 4% of the state (1% changed, 3.1%
//! compaction) and the chain about 2.3 times the state.

use crate::FrozenState;
use crate::operator::SLICES;

/// Committed checkpoints after which every slice has been written in full again.
pub const COMPACTION_ROUNDS: usize = 32;

const STEP: usize = SLICES / COMPACTION_ROUNDS;

/// A committed record the chain's head needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// Its checkpoint.
    pub id: u64,
    /// Entries it holds.
    pub entries: usize,
}

/// The chain of one shard's committed records.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chain {
    /// The committed records the next checkpoint may build on, oldest first; the last
    /// one is the latest committed checkpoint. Empty: nothing to build on.
    links: Vec<Link>,
    /// Per slice, the checkpoint whose record holds it in full.
    full_at: Vec<u64>,
    /// The first slice the next checkpoint writes in full.
    cursor: usize,
}

/// What one checkpoint's record of a shard holds, decided by [`Chain::plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The checkpoint.
    pub id: u64,
    /// Entries changed after this checkpoint are written (0: all of them).
    pub since: u64,
    /// Per slice, the checkpoint whose record holds it in full after this one.
    pub full_at: Vec<u64>,
    /// The earlier records this one builds on, oldest first.
    pub chain: Vec<u64>,
    /// Entries the record holds.
    pub entries: usize,
    /// Entries of the state.
    pub total: usize,
    cursor: usize,
}

impl Plan {
    /// Whether the record holds slice `s` in full.
    pub fn writes_in_full(&self, s: usize) -> bool {
        self.full_at.get(s).is_none_or(|&f| f == self.id)
    }

    /// Whether the record holds the whole state (it builds on nothing).
    pub fn is_full(&self) -> bool {
        self.chain.is_empty()
    }

    /// The record of one operator's frozen state.
    pub fn write(&self, frozen: &FrozenState) -> crate::snapshot::OperatorState {
        frozen.write(self.since, &|s| self.writes_in_full(s))
    }
}

impl Chain {
    /// A chain that continues from a restored checkpoint `head` whose record held
    /// `head_entries` entries and built on `links` (oldest first), with `full_at` as that
    /// record said. The operator must hold exactly the state restored from it.
    pub fn resume(head: Link, mut links: Vec<Link>, full_at: Vec<u64>) -> Self {
        if full_at.len() != SLICES || full_at.iter().any(|&f| f > head.id) {
            return Self::default();
        }
        links.push(head);
        let oldest = full_at.iter().copied().min().unwrap_or(head.id);
        // Carry on compacting with the slices written in full longest ago.
        let cursor = full_at.iter().position(|&f| f == oldest).unwrap_or(0);
        Self {
            links,
            full_at,
            cursor,
        }
    }

    /// The latest committed checkpoint, if any.
    pub fn head(&self) -> Option<u64> {
        self.links.last().map(|l| l.id)
    }

    /// Decides what checkpoint `id` (newer than the head) records of `frozen`, the shard's
    /// operators frozen at its barrier.
    pub fn plan(&self, id: u64, frozen: &[&FrozenState]) -> Plan {
        let count = |since: u64, full: &dyn Fn(usize) -> bool| {
            frozen
                .iter()
                .map(|f| f.count(since, full))
                .fold((0, 0), |(t, s), (a, b)| (t + a, s + b))
        };
        let whole = |total: usize| Plan {
            id,
            since: 0,
            full_at: vec![id; SLICES],
            chain: Vec::new(),
            entries: total,
            total,
            cursor: 0,
        };
        let Some(head) = self.head().filter(|&h| h < id) else {
            let (total, _) = count(0, &|_| true);
            return whole(total);
        };
        let mut full_at = self.full_at.clone();
        for s in (self.cursor..self.cursor + STEP).map(|s| s % SLICES) {
            full_at[s] = id;
        }
        let (total, entries) = count(head, &|s| full_at[s] == id);
        let oldest = full_at.iter().copied().min().unwrap_or(id);
        let kept: Vec<Link> = self
            .links
            .iter()
            .copied()
            .filter(|l| l.id >= oldest)
            .collect();
        let chained: usize = kept.iter().map(|l| l.entries).sum();
        if entries.saturating_mul(2) > total || chained + entries > total.saturating_mul(3) {
            return whole(total);
        }
        Plan {
            id,
            since: head,
            full_at,
            chain: kept.iter().map(|l| l.id).collect(),
            entries,
            total,
            cursor: (self.cursor + STEP) % SLICES,
        }
    }

    /// The checkpoint of `plan` is committed: it is the new head.
    pub fn committed(&mut self, plan: Plan) {
        let mut links: Vec<Link> = self
            .links
            .iter()
            .copied()
            .filter(|l| plan.chain.contains(&l.id))
            .collect();
        links.push(Link {
            id: plan.id,
            entries: plan.entries,
        });
        *self = Self {
            links,
            full_at: plan.full_at,
            cursor: plan.cursor,
        };
    }

    /// Forgets the chain: the next checkpoint is written in full.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}
