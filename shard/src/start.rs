//! The start gate: no shard starts its sources until every shard has built them.
//!
//! Building a shard's pipelines can take a while (a TCP source opens and recovers its
//! append log and makes its spare segments). Sources that take connections bind their
//! listeners in [`Source::start`](crate::source::Source::start), after this gate, so
//! that the kernel spreads the first connections over every shard instead of handing
//! them all to the shard that happened to be ready first.
//!
//! Start-up is all-or-nothing: after starting its sources each shard reports to the
//! [`Launch`] whether it is ready, then waits for the runtime's decision. Only when every
//! shard is ready does the runtime let them run (and only then does `weir run` say
//! "weir running"); if one failed (a port taken, a disk full when making spare
//! segments), every shard is told to abort, ends without reading or writing anything,
//! and the runtime returns the first failure.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use crate::error::{Error, Result};
use crate::message::ShardId;

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

/// Where shards report that they are ready, and learn whether to run.
#[derive(Debug)]
pub(crate) struct Launch {
    state: Mutex<LaunchState>,
    changed: Condvar,
}

#[derive(Debug)]
struct LaunchState {
    reports: Vec<Option<Result<()>>>,
    /// `Some(true)`: run; `Some(false)`: abort.
    decision: Option<bool>,
}

impl Launch {
    /// A launch of `shards` shards.
    pub fn new(shards: usize) -> Self {
        Self {
            state: Mutex::new(LaunchState {
                reports: (0..shards).map(|_| None).collect(),
                decision: None,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LaunchState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The report of shard `shard`: ready, or why not. A report dropped without a
    /// word (the shard panicked) counts as a failure.
    pub fn report(&self, shard: usize) -> Report<'_> {
        Report {
            launch: self,
            shard,
            sent: false,
        }
    }

    fn put(&self, shard: usize, report: Result<()>) {
        let mut st = self.lock();
        if let Some(slot) = st.reports.get_mut(shard) {
            slot.get_or_insert(report);
        }
        self.changed.notify_all();
    }

    /// Waits for every shard's report; returns the first failure, if any.
    pub fn wait_for_reports(&self) -> Result<()> {
        let st = self.lock();
        let mut st = self
            .changed
            .wait_while(st, |st| st.reports.iter().any(Option::is_none))
            .unwrap_or_else(PoisonError::into_inner);
        for slot in &mut st.reports {
            if let Some(Err(_)) = slot
                && let Some(Err(e)) = slot.take()
            {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Lets every shard run (`true`) or tells them to abort (`false`); shards that have
    /// not reported yet learn it when they do.
    pub fn decide(&self, run: bool) {
        self.lock().decision.get_or_insert(run);
        self.changed.notify_all();
    }
}

/// One shard's report to the [`Launch`].
#[derive(Debug)]
pub(crate) struct Report<'a> {
    launch: &'a Launch,
    shard: usize,
    sent: bool,
}

impl Report<'_> {
    /// Reports that the shard cannot start.
    pub fn fail(mut self, error: Error) {
        self.sent = true;
        self.launch.put(self.shard, Err(error));
    }

    /// Reports that the shard is ready and waits for the decision: whether to run.
    pub fn ready(mut self) -> bool {
        self.sent = true;
        self.launch.put(self.shard, Ok(()));
        let st = self.launch.lock();
        let st = self
            .launch
            .changed
            .wait_while(st, |st| st.decision.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        st.decision == Some(true)
    }
}

impl Drop for Report<'_> {
    fn drop(&mut self) {
        if !self.sent {
            self.launch.put(
                self.shard,
                Err(Error::Shard {
                    shard: ShardId(self.shard),
                    reason: "it ended before it was ready".into(),
                }),
            );
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

    #[test]
    fn one_failed_shard_aborts_every_ready_one() {
        let launch = Arc::new(Launch::new(3));
        let ran = Arc::new(AtomicUsize::new(0));
        let ready: Vec<_> = (0..2)
            .map(|shard| {
                let launch = Arc::clone(&launch);
                let ran = Arc::clone(&ran);
                std::thread::spawn(move || {
                    if launch.report(shard).ready() {
                        ran.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        launch.report(2).fail(Error::Start {
            key: "pipelines[0].source.bind".into(),
            reason: "in use".into(),
        });
        let first = launch.wait_for_reports();
        assert!(
            matches!(&first, Err(Error::Start { key, .. }) if key == "pipelines[0].source.bind"),
            "{first:?}"
        );
        launch.decide(false);
        for r in ready {
            r.join().expect("shard");
        }
        assert_eq!(ran.load(Ordering::SeqCst), 0, "no shard runs");
    }

    #[test]
    fn a_report_dropped_unsent_is_a_failure_and_all_ready_run() {
        let launch = Launch::new(1);
        drop(launch.report(0));
        assert!(launch.wait_for_reports().is_err());
        let launch = Arc::new(Launch::new(2));
        let waiter = {
            let launch = Arc::clone(&launch);
            std::thread::spawn(move || launch.report(0).ready())
        };
        let other = {
            let launch = Arc::clone(&launch);
            std::thread::spawn(move || launch.report(1).ready())
        };
        assert!(launch.wait_for_reports().is_ok());
        launch.decide(true);
        assert!(waiter.join().expect("shard 0"));
        assert!(other.join().expect("shard 1"));
    }
}
