//! The producer registry: what each producer's last stored sequence number is across
//! every shard of a pipeline, and which connection may append for it right now.
//!
//! # Why this one structure is shared between shards
//!
//! Every shard accepts on the same port and the kernel picks the shard of each
//! connection, so a producer that reconnects usually lands on another shard than the
//! one holding its unacknowledged lines. Deduplicating its resend needs to know what
//! *every* shard stored for it. This is the one piece of the TCP source that is not
//! shard-local; it stays off the per-line path:
//!
//! * the map (producer id → [`Producer`]) is locked only when a connection says hello;
//! * a producer's own lock is taken once per appended batch and once per batch that
//!   becomes durable, by the connection that owns the producer and by the shard that
//!   stored the batch: it is uncontended except in the instant a producer reconnects.
//!
//! # Fencing
//!
//! A hello *fences* the producer (a new epoch) and waits until everything appended
//! for it under older epochs is durable ([`Producer::settled`]); only then does it know
//! the last stored sequence number and start appending. A connection appends a batch
//! only after [`Producer::claim`] accepts its epoch and records the batch's last
//! sequence number, and it does so without yielding in between, so a batch is either
//! counted by the fencing hello or refused. Two connections of one producer therefore
//! never interleave, and the sequence numbers stored for a producer always form one
//! gap-free prefix: exactly what a resend needs.
//!
//! The registry is rebuilt on every start from the shards' logs (each shard scans its
//! log and [`Registry::load`]s its table before any hello is answered).
//!
//! # Forgetting
//!
//! A producer that has no connection, nothing on its way to a log, and was last heard
//! of (hello, disconnect, or its newest batch in a log at start) more than
//! [`PRODUCER_RETENTION_MS`] ago is forgotten, as the logs' own tables forget it at
//! their next truncation: a process that runs for months with producers coming and
//! going keeps a bounded registry. The sweep runs when a new producer says hello and
//! the table has doubled since the last one, so it costs O(1) per hello on average.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::partition::PRODUCER_RETENTION_MS;

/// The table is swept no earlier than at this size.
const FIRST_SWEEP_AT: usize = 1024;

/// Registries alive in this process, by (log folder of the pipeline, runtime).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain numbers behind, which
    // are still consistent: take them.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The producers of one pipeline, shared by its shards.
/// The producers of one TCP pipeline, shared by its shards (see the module docs).
#[derive(Debug)]
pub struct Registry {
    nr_shards: usize,
    loaded: AtomicUsize,
    connections: AtomicUsize,
    max_connections: usize,
    producers: Mutex<Producers>,
}

/// The table, and the size at which it is swept next.
#[derive(Debug)]
struct Producers {
    by_id: HashMap<String, Arc<Producer>>,
    sweep_at: usize,
}

impl Default for Producers {
    fn default() -> Self {
        Producers {
            by_id: HashMap::new(),
            sweep_at: FIRST_SWEEP_AT,
        }
    }
}

/// One producer's state.
#[derive(Debug, Default)]
pub(crate) struct Producer {
    state: Mutex<ProducerState>,
}

#[derive(Debug, Default)]
struct ProducerState {
    /// Bumped by every hello; only the connection holding the current epoch appends.
    epoch: u64,
    /// The highest sequence number appended to any log (durable or not yet).
    appended: u64,
    /// The highest sequence number known durable.
    durable: u64,
    /// Wall-clock ms when it was last heard of: its last hello or disconnect, or the
    /// newest of its batches found in the logs at start.
    last_ms: i64,
}

/// A connection counted against `max_connections`; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct Admission(Arc<Registry>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Registry {
    /// The registry of one TCP pipeline over `nr_shards` shards, admitting at most
    /// `max_connections` connections over all of them. The runtime makes one per TCP
    /// pipeline when it starts and hands it to every shard's source.
    pub fn new(nr_shards: usize, max_connections: usize) -> Arc<Registry> {
        Arc::new(Registry {
            nr_shards,
            loaded: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            max_connections,
            producers: Mutex::new(Producers::default()),
        })
    }

    /// Adds one shard's table (producer, last sequence number stored in its logs, and
    /// when that batch was written); call once per shard, after its logs are recovered.
    pub(crate) fn load<'a>(&self, marks: impl IntoIterator<Item = (&'a str, u64, i64)>) {
        {
            let mut producers = lock(&self.producers);
            for (id, seq, ms) in marks {
                let p = producers.by_id.entry(id.to_owned()).or_default();
                let mut s = lock(&p.state);
                s.appended = s.appended.max(seq);
                s.durable = s.durable.max(seq);
                s.last_ms = s.last_ms.max(ms);
            }
        }
        self.loaded.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether every shard has loaded its table (hellos wait for it).
    pub(crate) fn loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire) >= self.nr_shards
    }

    /// The producer `id` saying hello at wall-clock `now_ms`, made on first use.
    pub(crate) fn producer(&self, id: &str, now_ms: i64) -> Arc<Producer> {
        let mut producers = lock(&self.producers);
        let p = match producers.by_id.get(id) {
            Some(p) => Arc::clone(p),
            None => {
                if producers.by_id.len() >= producers.sweep_at {
                    sweep(&mut producers.by_id, now_ms);
                    producers.sweep_at = (producers.by_id.len() * 2).max(FIRST_SWEEP_AT);
                }
                let p = Arc::new(Producer::default());
                producers.by_id.insert(id.to_owned(), Arc::clone(&p));
                p
            }
        };
        p.heard_of(now_ms);
        p
    }

    /// How many producers the registry holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.producers).by_id.len()
    }

    /// Counts a new connection, or `None` when `max_connections` are open.
    pub(crate) fn admit(self: &Arc<Self>) -> Option<Admission> {
        let before = self.connections.fetch_add(1, Ordering::AcqRel);
        if before >= self.max_connections {
            self.connections.fetch_sub(1, Ordering::AcqRel);
            None
        } else {
            Some(Admission(Arc::clone(self)))
        }
    }

    /// The connection limit.
    pub(crate) fn max_connections(&self) -> usize {
        self.max_connections
    }
}

/// Forgets the producers that nothing refers to but the table, that have nothing on
/// its way to a log, and that were last heard of more than the retention ago.
fn sweep(by_id: &mut HashMap<String, Arc<Producer>>, now_ms: i64) {
    let before = by_id.len();
    by_id.retain(|_, p| {
        // Only the table holds it: no connection, no batch waiting to be durable. No
        // one can take a new reference meanwhile: that goes through the table's lock,
        // which the caller holds.
        if Arc::strong_count(p) > 1 {
            return true;
        }
        let s = lock(&p.state);
        s.durable < s.appended || s.last_ms >= now_ms.saturating_sub(PRODUCER_RETENTION_MS)
    });
    if by_id.len() < before {
        tracing::debug!(
            forgotten = before - by_id.len(),
            kept = by_id.len(),
            "producer registry swept"
        );
    }
}

impl Producer {
    /// Records that the producer was heard of (a hello, a disconnect) at `now_ms`.
    pub fn heard_of(&self, now_ms: i64) {
        let mut s = lock(&self.state);
        s.last_ms = s.last_ms.max(now_ms);
    }

    /// Starts a new epoch: connections of older epochs can append no more.
    pub fn fence(&self) -> u64 {
        let mut s = lock(&self.state);
        s.epoch += 1;
        s.epoch
    }

    /// The last stored sequence number, once everything appended is durable;
    /// `None` while older batches are still on their way to the disk.
    pub fn settled(&self) -> Option<u64> {
        let s = lock(&self.state);
        (s.durable >= s.appended).then_some(s.durable)
    }

    /// Claims the right to append a batch ending at `last_seq` under `epoch`;
    /// `false` if a newer hello fenced this epoch. Append right after, without
    /// yielding.
    pub fn claim(&self, epoch: u64, last_seq: u64) -> bool {
        let mut s = lock(&self.state);
        if s.epoch != epoch {
            return false;
        }
        s.appended = s.appended.max(last_seq);
        true
    }

    /// Undoes a claim whose append failed: `appended` goes back to `previous`.
    pub fn unclaim(&self, epoch: u64, previous: u64) {
        let mut s = lock(&self.state);
        if s.epoch == epoch {
            s.appended = previous.max(s.durable);
        }
    }

    /// Records that a batch ending at `seq` is durable.
    pub fn durable(&self, seq: u64) {
        let mut s = lock(&self.state);
        s.durable = s.durable.max(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fenced_connection_can_append_no_more_and_the_hello_waits_for_its_batches() {
        let r = Registry::new(1, 10);
        r.load([("p", 10, 0)]);
        assert!(r.loaded());
        let p = r.producer("p", 0);
        let old = p.fence();
        assert_eq!(p.settled(), Some(10));
        assert!(p.claim(old, 20));
        let new = p.fence();
        assert!(!p.claim(old, 30), "the old connection is fenced");
        assert_eq!(p.settled(), None, "seq 11..=20 are not durable yet");
        p.durable(20);
        assert_eq!(p.settled(), Some(20));
        assert!(p.claim(new, 25));
    }

    #[test]
    fn a_failed_append_gives_its_claim_back() {
        let r = Registry::new(1, 10);
        let p = r.producer("p", 0);
        let e = p.fence();
        assert!(p.claim(e, 5));
        p.unclaim(e, 0);
        assert_eq!(p.settled(), Some(0));
    }

    #[test]
    fn shards_of_one_runtime_share_a_registry_and_its_connection_limit() {
        let a = Registry::new(2, 2);
        let b = Arc::clone(&a);
        a.load([]);
        assert!(!b.loaded(), "one of two shards has loaded");
        b.load([("x", 3, 0)]);
        assert!(a.loaded());
        let one = a.admit();
        let two = b.admit();
        assert!(one.is_some() && two.is_some());
        assert!(a.admit().is_none());
        drop(one);
        assert!(b.admit().is_some());
    }

    #[test]
    fn only_producers_gone_and_idle_past_the_retention_are_forgotten() {
        let day = 24 * 3600 * 1000;
        let r = Registry::new(1, 10);
        // From the logs at start: one producer last wrote 8 days ago, one 1 day ago.
        r.load([("old", 5, 0), ("recent", 7, 7 * day)]);
        let now = 8 * day + 1;
        // A connected producer idle for ages, and one with a batch not yet durable.
        let connected = r.producer("connected", 0);
        let pending = r.producer("pending", 0);
        let e = pending.fence();
        assert!(pending.claim(e, 3));
        drop(pending);
        // New producers fill the table past its first sweep.
        for i in 0..FIRST_SWEEP_AT {
            drop(r.producer(&format!("fresh-{i}"), now));
        }
        assert_eq!(
            r.len(),
            FIRST_SWEEP_AT + 3,
            "only \"old\" went: recent, connected, pending and the new ones stay"
        );
        let p = r.producer("old", now);
        assert_eq!(p.settled(), Some(0), "forgotten: it starts anew");
        let p = r.producer("recent", now);
        assert_eq!(p.settled(), Some(7), "within the retention: kept");
        assert!(Arc::ptr_eq(&r.producer("connected", now), &connected));
        let p = r.producer("pending", now);
        assert_eq!(p.settled(), None, "its batch is still on its way: kept");
    }
}
