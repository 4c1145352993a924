//! Messages on their way to other shards, in order, with backpressure as a decision.
//!
//! Each (from, to) channel holds a bounded number of batches. What does not fit waits
//! here, in one FIFO per destination; while anything waits the shard is backpressured:
//! it reads no sources (its partitions are "held back", never idle) but keeps draining
//! its own inboxes, so two shards sending to each other never deadlock. Nothing is
//! dropped, and order per destination is kept: a watermark or barrier pushed after a
//! batch goes after it.

use std::collections::VecDeque;

use crate::message::Message;

/// What a channel did with a message it was offered.
#[derive(Debug)]
pub enum Offer {
    /// Taken.
    Sent,
    /// Full: the message comes back and waits.
    Full(Message),
    /// The receiver has ended (it does so only once it has every input's end): what
    /// waits for it is dropped.
    Gone,
}

/// The messages waiting for each destination shard.
#[derive(Debug)]
pub struct Outbox {
    me: usize,
    pending: Vec<VecDeque<Message>>,
}

impl Outbox {
    /// The outbox of shard `me` of `shards`.
    pub fn new(me: usize, shards: usize) -> Self {
        Self {
            me,
            pending: (0..shards).map(|_| VecDeque::new()).collect(),
        }
    }

    /// Queues `msg` for shard `dest` (never this shard itself).
    pub fn push(&mut self, dest: usize, msg: Message) {
        if dest != self.me
            && let Some(q) = self.pending.get_mut(dest)
        {
            q.push_back(msg);
        }
    }

    /// Queues one message, made by `make`, for every other shard.
    pub fn broadcast(&mut self, make: impl Fn() -> Message) {
        for dest in 0..self.pending.len() {
            if dest != self.me {
                self.pending[dest].push_back(make());
            }
        }
    }

    /// Whether anything waits: the shard must not read its sources.
    pub fn backpressured(&self) -> bool {
        self.pending.iter().any(|q| !q.is_empty())
    }

    /// Offers the waiting messages of every destination, in order, to `offer`, until
    /// each channel refuses one; returns whether everything went.
    pub fn send(&mut self, mut offer: impl FnMut(usize, Message) -> Offer) -> bool {
        let mut all = true;
        for (dest, q) in self.pending.iter_mut().enumerate() {
            while let Some(msg) = q.pop_front() {
                match offer(dest, msg) {
                    Offer::Sent => {}
                    Offer::Full(msg) => {
                        q.push_front(msg);
                        all = false;
                        break;
                    }
                    Offer::Gone => {
                        q.clear();
                        break;
                    }
                }
            }
        }
        all
    }
}
