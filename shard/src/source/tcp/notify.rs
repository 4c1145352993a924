//! A shard-local "something changed" signal for tasks of one executor.
//!
//! Tasks remember the generation they last saw and wait until it moves; each waiter
//! has a fixed slot (its id), so a task that stops waiting (because another future won
//! a race) leaves at most one stale waker behind, never a growing list.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A generation counter with waiters.
#[derive(Debug, Default)]
pub(crate) struct Notify {
    generation: Cell<u64>,
    waiters: RefCell<HashMap<u64, Waker>>,
}

impl Notify {
    /// The current generation.
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// Moves the generation on and wakes every waiter.
    pub fn notify(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
        let waiters: Vec<Waker> = self.waiters.borrow_mut().drain().map(|(_, w)| w).collect();
        for w in waiters {
            w.wake();
        }
    }

    /// Resolves once the generation differs from `seen`; `id` is the waiter's slot.
    pub fn changed(&self, id: u64, seen: u64) -> Changed<'_> {
        Changed {
            notify: self,
            id,
            seen,
        }
    }

    /// Drops waiter `id`'s slot (the waiter is gone).
    pub fn forget(&self, id: u64) {
        self.waiters.borrow_mut().remove(&id);
    }
}

/// The future of [`Notify::changed`].
#[derive(Debug)]
pub(crate) struct Changed<'a> {
    notify: &'a Notify,
    id: u64,
    seen: u64,
}

impl Future for Changed<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.generation.get() != self.seen {
            return Poll::Ready(());
        }
        self.notify
            .waiters
            .borrow_mut()
            .insert(self.id, cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiter_is_woken_by_the_next_notification_and_not_before() {
        let n = Notify::default();
        let seen = n.generation();
        let mut fut = std::pin::pin!(n.changed(1, seen));
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(n.waiters.borrow().len(), 1, "one slot per waiter");
        n.notify();
        assert!(fut.as_mut().poll(&mut cx).is_ready());
        assert!(n.waiters.borrow().is_empty());
    }
}
