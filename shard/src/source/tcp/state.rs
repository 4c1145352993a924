//! What the tasks of one TCP source on one shard share: the partition logs, the batches
//! waiting to become durable, and the signals between the tasks.
//!
//! Everything here belongs to one shard's executor (`Rc`, `RefCell`, `Cell`): the
//! connection tasks, the syncer and the shard loop's [`Source::poll`] run on the same
//! thread and never hold a borrow across an `.await`.
//!
//! # The bound on what is buffered
//!
//! Connections append what they read straight to the log (which is on disk, in the
//! page cache); what is held in memory is the tail of records not yet emitted to the
//! pipeline. When it reaches [`BACKLOG_BYTES`], connection tasks stop reading their
//! sockets until [`Source::poll`] has emitted enough: then the kernel's receive
//! buffers fill, TCP's window closes, and the clients' writes block. That is how a
//! shard that is backpressured (it stops polling its sources when a cross-shard queue
//! is full), paused, or checkpointing slows its TCP clients down instead of buffering.
//!
//! [`Source::poll`]: crate::source::Source::poll

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

use weir_engine::{EventDecoder, PartitionId};
use weir_storage::LogOffset;

use super::notify::Notify;
use super::partition::PartitionLog;
use super::registry::{Producer, Registry};
use crate::message::ShardId;
use crate::metrics::Counters;

/// In-memory bound of appended records not yet emitted, per source and shard. Each
/// connection may overshoot it by one read (64 KiB) before it notices.
pub(crate) const BACKLOG_BYTES: usize = 8 << 20;

/// What one connection has appended and what of it is durable.
#[derive(Debug, Default)]
pub(crate) struct AckCell {
    /// The highest sequence number such that every line up to it is durable.
    pub acked: Cell<u64>,
    /// The last sequence number appended (or dropped as a duplicate).
    pub appended: Cell<u64>,
}

/// A batch appended and not yet durable.
#[derive(Debug)]
struct InFlight {
    offset: LogOffset,
    last_seq: u64,
    conn: Rc<AckCell>,
    producer: Option<Arc<Producer>>,
}

/// The mutable part, behind a `RefCell`.
#[derive(Debug)]
pub(crate) struct State {
    /// Partition logs; the first is this shard's own.
    pub parts: Vec<PartitionLog>,
    inflight: VecDeque<InFlight>,
    /// Set when a log failed (poisoned): no more appends or acknowledgements.
    pub failed: Option<String>,
    /// The source is gone: tasks end.
    pub closed: bool,
    /// A connection waits for backlog space.
    pub blocked: bool,
    /// Spent batch buffers.
    pub pool: Vec<Vec<u8>>,
    /// Where a failure is reported for `/health`.
    faults: FaultReport,
}

/// Raises the source's fault in the runtime's [`crate::metrics::Faults`].
#[derive(Debug)]
struct FaultReport {
    counters: Arc<Counters>,
    pipeline: String,
    shard: usize,
}

impl State {
    /// The own partition's log.
    pub fn own(&mut self) -> Option<&mut PartitionLog> {
        self.parts.iter_mut().find(|p| p.own)
    }

    /// Appends a connection's batch to the own log and tracks it until durable.
    pub fn append(
        &mut self,
        payload: Vec<u8>,
        last_seq: u64,
        conn: &Rc<AckCell>,
        producer: Option<&Arc<Producer>>,
    ) -> weir_storage::Result<()> {
        let Some(own) = self.own() else {
            return Ok(());
        };
        let offset = own.append(payload)?;
        conn.appended.set(last_seq);
        self.inflight.push_back(InFlight {
            offset,
            last_seq,
            conn: Rc::clone(conn),
            producer: producer.cloned(),
        });
        Ok(())
    }

    /// Acknowledges every batch the own log's durable offset now covers and runs
    /// pending truncations; returns whether any connection's acknowledgement moved.
    pub fn settle(&mut self) -> bool {
        let mut moved = false;
        if let Some(own) = self.parts.iter().find(|p| p.own) {
            while let Some(front) = self.inflight.front() {
                if !own.log.is_durable(front.offset) {
                    break;
                }
                if let Some(done) = self.inflight.pop_front() {
                    if done.conn.acked.get() < done.last_seq {
                        done.conn.acked.set(done.last_seq);
                        moved = true;
                    }
                    if let Some(p) = &done.producer {
                        p.durable(done.last_seq);
                    }
                }
            }
        }
        let mut error = None;
        for part in &mut self.parts {
            if let Err(e) = part.after_durable() {
                error.get_or_insert_with(|| format!("append log of partition {}: {e}", part.id.0));
            }
        }
        if let Some(why) = error {
            self.fail(why);
            moved = true;
        }
        moved
    }

    /// Bytes appended to the own log and not yet emitted.
    pub fn backlog_bytes(&self) -> usize {
        self.parts
            .iter()
            .find(|p| p.own)
            .map_or(0, PartitionLog::backlog_bytes)
    }

    /// Whether connections must stop reading.
    pub fn backlogged(&self) -> bool {
        self.backlog_bytes() >= BACKLOG_BYTES
    }

    /// Records a failed log: connections are told and closed, nothing more is acked.
    pub fn fail(&mut self, why: String) {
        tracing::error!(error = %why, "TCP source log failed; no more events are accepted");
        if self.failed.is_none() {
            let f = &self.faults;
            f.counters.faults.raise(
                &format!("source/{}/{}", f.pipeline, f.shard),
                crate::metrics::Fault::Source {
                    pipeline: f.pipeline.clone(),
                    shard: ShardId(f.shard),
                    reason: format!("the TCP source cannot store events: {why}"),
                },
            );
        }
        self.failed.get_or_insert(why);
        self.inflight.clear();
    }
}

/// Everything the tasks of one TCP source on one shard share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The pipeline id.
    pub pipeline: String,
    /// The pipeline's index (for counters).
    pub pipeline_index: usize,
    /// This shard.
    pub shard: usize,
    /// This shard's own partition.
    pub partition: PartitionId,
    /// The producers of the pipeline, over all shards.
    pub registry: Arc<Registry>,
    /// Decodes lines into events (as the pipeline's source output would).
    pub decoder: EventDecoder,
    /// The longest line accepted.
    pub max_line_bytes: usize,
    /// The runtime's counters.
    pub counters: Arc<Counters>,
    /// Acknowledgements moved, backlog space freed, a failure, or the end.
    pub progress: Notify,
    /// Records were appended (wakes the syncer).
    pub work: Notify,
    /// The mutable part.
    pub state: RefCell<State>,
    next_id: Cell<u64>,
}

impl Shared {
    /// Shared state over the given partition logs.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pipeline: String,
        pipeline_index: usize,
        shard: usize,
        registry: Arc<Registry>,
        decoder: EventDecoder,
        max_line_bytes: usize,
        counters: Arc<Counters>,
        parts: Vec<PartitionLog>,
    ) -> Self {
        let faults = FaultReport {
            counters: Arc::clone(&counters),
            pipeline: pipeline.clone(),
            shard,
        };
        Self {
            pipeline,
            pipeline_index,
            shard,
            partition: PartitionId(shard as u32),
            registry,
            decoder,
            max_line_bytes,
            counters,
            progress: Notify::default(),
            work: Notify::default(),
            state: RefCell::new(State {
                parts,
                inflight: VecDeque::new(),
                failed: None,
                closed: false,
                blocked: false,
                pool: Vec::new(),
                faults,
            }),
            next_id: Cell::new(1),
        }
    }

    /// A fresh waiter id (ids of connections; 0 is the syncer's).
    pub fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }
}
