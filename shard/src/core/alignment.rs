//! Barrier alignment, as decisions: which checkpoint to start, which inbox to hold, when
//! to snapshot.
//!
//! A shard starts checkpoint `n` when the coordinator asks it or when barrier `n` first
//! arrives from another shard, whichever comes first ([`Alignment::start`]): it then
//! records its source positions and sends barrier `n` behind everything it routed. Each
//! inbox that delivers barrier `n` is held ([`Alignment::is_held`]) until barrier `n`
//! has come on every inbox; then the shard snapshots ([`Alignment::aligned`]) and
//! releases them all ([`Alignment::completed`]). So the snapshot holds exactly the
//! events sent before barrier `n` on every channel, and its own events read before it
//! started `n` (its sources stand still while a checkpoint is in progress).
//!
//! A newer checkpoint supersedes one still aligning (the coordinator gave up on it): the
//! old one is abandoned and its held inboxes released, which is right for the newer
//! one, because everything behind an old barrier is still in front of the new one.

/// The alignment state of one shard over `inboxes` inboxes (its own index among them is
/// its own: it never receives on it, and counts as having delivered at once).
#[derive(Debug, Clone)]
pub struct Alignment {
    me: usize,
    inboxes: usize,
    /// The last checkpoint this shard snapshotted.
    last: u64,
    current: Option<Current>,
}

#[derive(Debug, Clone)]
struct Current {
    id: u64,
    /// Per inbox: barrier `id` has arrived (the inbox is held).
    arrived: Vec<bool>,
}

impl Alignment {
    /// Shard `me` of `inboxes` shards (one inbox per shard), nothing snapshotted yet.
    pub fn new(me: usize, inboxes: usize) -> Self {
        Self {
            me,
            inboxes,
            last: 0,
            current: None,
        }
    }

    /// Asks to start checkpoint `id` (the coordinator's request, or the first barrier
    /// seen). Returns whether the shard must start it now: record its positions and
    /// send barrier `id` to every other shard. Old or current ids are ignored; a newer
    /// one supersedes the one in progress.
    pub fn start(&mut self, id: u64) -> bool {
        if id <= self.last || self.current.as_ref().is_some_and(|c| c.id >= id) {
            return false;
        }
        let mut arrived = vec![false; self.inboxes];
        if let Some(own) = arrived.get_mut(self.me) {
            *own = true;
        }
        self.current = Some(Current { id, arrived });
        true
    }

    /// Barrier `id` arrived on inbox `from`. Returns whether the shard must start `id`
    /// first (it had not); the inbox is then held until the checkpoint is aligned.
    pub fn barrier(&mut self, from: usize, id: u64) -> bool {
        let started = self.start(id);
        if let Some(c) = self.current.as_mut().filter(|c| c.id == id)
            && let Some(slot) = c.arrived.get_mut(from)
        {
            *slot = true;
        }
        started
    }

    /// Whether messages from inbox `from` must wait (it delivered the barrier of the
    /// checkpoint being aligned).
    pub fn is_held(&self, from: usize) -> bool {
        from != self.me
            && self
                .current
                .as_ref()
                .is_some_and(|c| c.arrived.get(from).copied().unwrap_or(false))
    }

    /// The checkpoint in progress, if any: while there is one, sources stand still.
    pub fn in_progress(&self) -> Option<u64> {
        self.current.as_ref().map(|c| c.id)
    }

    /// The checkpoint whose barriers have all arrived: snapshot it now.
    pub fn aligned(&self) -> Option<u64> {
        self.current
            .as_ref()
            .filter(|c| c.arrived.iter().all(|&a| a))
            .map(|c| c.id)
    }

    /// The shard has snapshotted checkpoint `id`: every inbox is released.
    pub fn completed(&mut self, id: u64) {
        if self.current.as_ref().is_some_and(|c| c.id == id) {
            self.current = None;
            self.last = self.last.max(id);
        }
    }

    /// The last checkpoint snapshotted.
    pub fn last(&self) -> u64 {
        self.last
    }
}
