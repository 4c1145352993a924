//! The start gate: no shard starts its sources until every shard has built them.
//!
//! Building a shard's pipelines can take a while (a TCP source opens and recovers its
//! append log and makes its spare segments). Sources that take connections bind their
//! listeners in [`Source::start`](crate::source::Source::start), after this gate, so
//! that the kernel spreads the first connections over every shard instead of handing
//! them all to the shard that happened to be ready first.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Counts shards that finished building (successfully or not) and lets them on when all
/// have.
#[derive(Debug)]
pub(crate) struct StartGate {
    waiting_for: Mutex<usize>,
    all_arrived: Condvar,
}

impl StartGate {
    /// A gate for `shards` shards.
    pub fn new(shards: usize) -> Self {
        StartGate {
            waiting_for: Mutex::new(shards),
            all_arrived: Condvar::new(),
        }
    }

    /// An arrival that counts when it is waited on or dropped, so that a shard whose
    /// build fails or panics never holds the others at the gate.
    pub fn arrival(&self) -> Arrival<'_> {
        Arrival {
            gate: self,
            arrived: false,
        }
    }

    /// Lets every shard through now: for a start-up that fails before all shards
    /// exist, so that the ones already running do not wait forever.
    pub fn open(&self) {
        *self.left() = 0;
        self.all_arrived.notify_all();
    }

    fn arrive(&self) {
        let mut left = self.left();
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.all_arrived.notify_all();
        }
    }

    fn wait(&self) {
        let left = self.left();
        drop(
            self.all_arrived
                .wait_while(left, |left| *left > 0)
                .unwrap_or_else(PoisonError::into_inner),
        );
    }

    /// The count of shards still to arrive. A panic while holding the lock leaves
    /// a plain number behind, still consistent: take it.
    fn left(&self) -> MutexGuard<'_, usize> {
        self.waiting_for
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// One shard's arrival at the gate.
#[derive(Debug)]
pub(crate) struct Arrival<'a> {
    gate: &'a StartGate,
    arrived: bool,
}

impl Arrival<'_> {
    /// Arrives and waits until every shard has.
    pub fn wait(mut self) {
        self.arrived = true;
        self.gate.arrive();
        self.gate.wait();
    }
}

impl Drop for Arrival<'_> {
    fn drop(&mut self) {
        if !self.arrived {
            self.gate.arrive();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn nobody_passes_until_everyone_arrived_and_a_dropped_arrival_counts() {
        let gate = Arc::new(StartGate::new(3));
        let passed = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let gate = Arc::clone(&gate);
                let passed = Arc::clone(&passed);
                std::thread::spawn(move || {
                    gate.arrival().wait();
                    passed.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(passed.load(Ordering::SeqCst), 0, "two of three arrived");
        // The third shard fails its build: its arrival is dropped, not waited on.
        drop(gate.arrival());
        for w in waiters {
            w.join().expect("waiter");
        }
        assert_eq!(passed.load(Ordering::SeqCst), 2);
    }
}
