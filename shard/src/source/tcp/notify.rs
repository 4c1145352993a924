//! A shard-local "something changed" signal for tasks of one executor.
//!
//! Tasks remember the generation they last saw and wait until it moves; each waiter
//! has a fixed slot (its id), so a task that stops waiting (because another future won
//! a race) leaves at most one stale waker behind, never a growing list.
//!
//! Waiters are woken in the order they started waiting. That is what makes sharing
//! fair: when backlog space frees up, the connection that has waited longest reads
//! first, and one that just read queues up behind the others.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A generation counter with waiters.
#[derive(Debug, Default)]
pub(crate) struct Notify {
    generation: Cell<u64>,
    /// (waiter id, waker), in the order the waiters started waiting.
    waiters: RefCell<Vec<(u64, Waker)>>,
}

impl Notify {
    /// The current generation.
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// Moves the generation on and wakes every waiter.
    pub fn notify(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for (_, w) in waiters {
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
        self.waiters.borrow_mut().retain(|(w, _)| *w != id);
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
        let mut waiters = self.notify.waiters.borrow_mut();
        match waiters.iter_mut().find(|(id, _)| *id == self.id) {
            Some((_, w)) => w.clone_from(cx.waker()),
            None => waiters.push((self.id, cx.waker().clone())),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_are_woken_in_the_order_they_started_waiting() {
        use std::sync::{Arc, Mutex};
        use std::task::Wake;
        struct Record(u64, Arc<Mutex<Vec<u64>>>);
        impl Wake for Record {
            fn wake(self: Arc<Self>) {
                if let Ok(mut order) = self.1.lock() {
                    order.push(self.0);
                }
            }
        }
        let order = Arc::new(Mutex::new(Vec::new()));
        let n = Notify::default();
        let seen = n.generation();
        for id in [7, 3, 9, 3] {
            let waker = Waker::from(Arc::new(Record(id, Arc::clone(&order))));
            let mut cx = Context::from_waker(&waker);
            let mut fut = std::pin::pin!(n.changed(id, seen));
            assert!(fut.as_mut().poll(&mut cx).is_pending());
        }
        n.notify();
        assert_eq!(*order.lock().unwrap_or_else(|e| e.into_inner()), [7, 3, 9]);
    }

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
