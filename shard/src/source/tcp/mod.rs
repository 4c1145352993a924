//! The TCP source: newline-delimited JSON events pushed by clients, acknowledged once
//! durable in the shard's append log, deduplicated when a client resends.
//!
//! # Shape
//!
//! One [`TcpSource`] per (pipeline, shard). Each binds the pipeline's `bind` address
//! with `SO_REUSEPORT` ([`listener`]), so every shard accepts on the same port and the
//! kernel spreads connections over shards. A connection task ([`connection`]) splits
//! what it reads into lines ([`lines`]), decodes them with the pipeline's decoder, and
//! appends each read's lines as one batch record ([`record`]) to the shard's append log
//! at `<data_dir>/log/<pipeline>/shard-<N>/`. A syncer task ([`syncer`]) makes the log
//! durable in group commits off the shard thread and turns that into cumulative
//! acknowledgements. The shard loop's [`Source::poll`] emits the durable records, in
//! log order, as the events of partition `N` ([`partition`]).
//!
//! The protocol (hello, sequence numbers, acknowledgements, errors) is in
//! docs/PROTOCOL.md and [`protocol`]; deduplication across reconnects and shards is
//! the [`registry`]'s job.
//!
//! # Guarantees
//!
//! * An acknowledged line is in the log and survives a crash (with `storage.fsync =
//!   "group"` or `"always"`; `"never"` survives a process crash, not a power loss).
//! * A producer that reconnects and resends from its first unacknowledged line has
//!   every line stored exactly once: the hello tells it what the engine holds, and any
//!   line at or below that is dropped.
//! * Events are emitted only once durable; positions are log offsets, so a restored
//!   checkpoint replays exactly what it did not cover ([`partition`] defines
//!   "consumed").
//! * Memory is bounded: [`state::BACKLOG_BYTES`] of records not yet emitted per source
//!   and shard, plus per connection one read buffer and at most `max_line_bytes` of an
//!   unfinished line. Past the backlog bound connections stop reading, and TCP flow
//!   control slows the clients.
//!
//! # Partitions after a change of shard count
//!
//! Shard `s` of `M` reads its own log (partition `s`) and adopts the log of every other
//! partition `p` with `p mod M == s` found on disk, so that a restart with fewer shards
//! still replays every acknowledged line. Adopted logs are read to their end and then
//! reported finished.

mod connection;
mod error;
pub(crate) mod lines;
mod listener;
mod notify;
mod partition;
pub mod port;
pub(crate) mod protocol;
pub(crate) mod record;
mod registry;
pub mod state;
mod syncer;

pub use error::Error;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_config::{Fsync, Storage, TcpSource as Spec};
use weir_engine::{EventDecoder, Offset, PartitionId};
use weir_storage::{FsyncPolicy, LogOffset, LogOptions};

use super::partitions;
use super::{LocalFuture, Source, SourceError, SourceOutput};
use crate::metrics::Counters;
use partition::PartitionLog;
pub use registry::Registry;
use state::Shared;

/// Everything a TCP source needs to open on one shard.
#[derive(Debug)]
pub struct TcpSourceConfig<'a> {
    /// The pipeline id.
    pub pipeline: &'a str,
    /// The pipeline's index in the config (for counters).
    pub pipeline_index: usize,
    /// The source spec.
    pub spec: &'a Spec,
    /// `[storage]`: segment size and fsync policy of the logs.
    pub storage: &'a Storage,
    /// `data_dir`.
    pub data_dir: &'a Path,
    /// This shard.
    pub shard: usize,
    /// Shards of the runtime.
    pub nr_shards: usize,
    /// The pipeline's decoder.
    pub decoder: EventDecoder,
    /// The runtime's counters.
    pub counters: Arc<Counters>,
    /// The pipeline's producer registry, one for all its shards (made by the runtime).
    pub registry: Arc<Registry>,
}

/// The TCP source of one pipeline on one shard. See the [module docs](self).
#[derive(Debug)]
pub struct TcpSource {
    shared: Rc<Shared>,
    bind: SocketAddr,
    /// The accept loop, from [`Source::start`] on; dropping it stops accepting.
    listener: Option<glommio::Task<()>>,
    /// The group-commit loop.
    _syncer: glommio::Task<()>,
    /// Round-robin start among partitions.
    next: usize,
    failure_reported: bool,
    /// When [`Source::poll`] last let the executor poll for I/O.
    last_io: Instant,
}

/// Longest time [`Source::poll`] goes without letting the executor poll for I/O.
///
/// glommio polls its rings when every task is blocked or when a task queue's preempt
/// timer (100 ms by default) runs out. A shard loop that always has work never blocks,
/// and then socket reads and finished syncs (so acknowledgements) would wait for the
/// timer; a short sleep here lets the executor poll, at most once per this interval.
const IO_EVERY: Duration = Duration::from_millis(1);

/// The folder of the logs of a pipeline.
pub fn log_root(data_dir: &Path, pipeline: &str) -> PathBuf {
    data_dir.join("log").join(pipeline)
}

/// Partitions whose logs exist under `root` (folders `shard-<n>`).
fn existing_partitions(root: &Path) -> Result<Vec<u32>, Error> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::List {
                dir: root.to_path_buf(),
                source,
            });
        }
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::List {
            dir: root.to_path_buf(),
            source,
        })?;
        let name = entry.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_prefix("shard-"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if entry.path().is_dir() {
            found.push(n);
        }
    }
    found.sort_unstable();
    Ok(found)
}

use crate::clock::unix_ms_i64 as now_ms;

impl TcpSource {
    /// Opens the shard's logs (recovering them), loads their producers into the
    /// pipeline's registry and starts the sync task. [`Source::start`] binds the
    /// listener. Must run on the shard's glommio executor.
    pub fn open(c: TcpSourceConfig<'_>) -> Result<Self, Error> {
        let bind = c
            .spec
            .bind
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| Error::Address {
                bind: c.spec.bind.clone(),
            })?;
        let root = log_root(c.data_dir, c.pipeline);
        let mut options = LogOptions::new(
            c.storage.segment_bytes,
            match c.storage.fsync {
                Fsync::Never => FsyncPolicy::Never,
                Fsync::Group => FsyncPolicy::Group,
                Fsync::Always => FsyncPolicy::Always,
            },
        );
        options.recycle_segments = c.storage.spare_segments;
        let own = c.shard as u32;
        let mut ids: Vec<u32> = existing_partitions(&root)?
            .into_iter()
            .filter(|&p| p != own && p as usize % c.nr_shards.max(1) == c.shard)
            .collect();
        ids.insert(0, own);
        let mut parts = Vec::with_capacity(ids.len());
        for p in ids {
            let dir = root.join(format!("shard-{p}"));
            // The own log keeps its spares from the start (`storage.spare_segments`);
            // adopted logs are only read to their end and keep none.
            let options = if p == own {
                LogOptions {
                    preallocate_spares: true,
                    ..options
                }
            } else {
                LogOptions {
                    recycle_segments: 0,
                    ..options
                }
            };
            parts.push(PartitionLog::open(&dir, PartitionId(p), options, p == own)?);
        }
        let registry = c.registry;
        registry.load(
            parts
                .iter()
                .flat_map(|p| p.producers.iter().map(|(id, m)| (id.as_str(), m.seq, m.ms))),
        );
        let shared = Rc::new(Shared::new(
            c.pipeline.to_owned(),
            c.pipeline_index,
            c.shard,
            registry,
            c.decoder,
            c.spec.max_line_bytes,
            c.counters,
            parts,
        ));
        // The tasks share the shard loop's task queue. (A queue of their own with
        // `Latency::Matters` would bound how long either side waits, but with glommio
        // 0.9 it made the executor park now and then with no wakeup armed: a stalled
        // shard. The sleep in `poll` and the yields of connection tasks do the job.)
        let syncer = glommio::spawn_local(syncer::run(Rc::clone(&shared)));
        Ok(Self {
            shared,
            bind,
            listener: None,
            _syncer: syncer,
            next: 0,
            failure_reported: false,
            last_io: Instant::now(),
        })
    }
}

impl Source for TcpSource {
    fn describe(&self) -> String {
        format!("tcp {} (shard {})", self.bind, self.shared.shard)
    }

    fn start(&mut self) -> Result<(), SourceError> {
        if self.listener.is_some() {
            return Ok(());
        }
        let listener =
            glommio::net::TcpListener::bind(self.bind).map_err(|e| SourceError::Listen {
                bind: self.bind.to_string(),
                reason: e.to_string(),
            })?;
        self.listener = Some(glommio::spawn_local(listener::run(
            Rc::clone(&self.shared),
            listener,
        )));
        Ok(())
    }

    fn partitions(&self) -> Vec<PartitionId> {
        self.shared
            .state
            .borrow()
            .parts
            .iter()
            .map(|p| p.id)
            .collect()
    }

    fn poll<'a>(
        &'a mut self,
        max: usize,
        out: &'a mut SourceOutput,
    ) -> LocalFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            if self.last_io.elapsed() >= IO_EVERY {
                glommio::timer::sleep(Duration::from_micros(1)).await;
                self.last_io = Instant::now();
            }
            let shared = Rc::clone(&self.shared);
            let mut st = shared.state.borrow_mut();
            if let Some(why) = st.failed.clone()
                && !self.failure_reported
            {
                self.failure_reported = true;
                return Err(SourceError::failed(format!("tcp source: {why}")));
            }
            let was_backlogged = st.backlogged();
            let n = st.parts.len();
            let mut emitted = 0;
            let st = &mut *st;
            for k in 0..n {
                let idx = (self.next + k) % n;
                let part = &mut st.parts[idx];
                if part.paused || part.finished {
                    if part.finished {
                        out.finished(part.id);
                    }
                    continue;
                }
                let room = max.saturating_sub(emitted).min(out.room(part.id));
                let got = if room > 0 {
                    part.emit(room, out, &mut st.pool)?
                } else {
                    0
                };
                emitted += got;
                // Nothing given although there was room: it is read to its end (a
                // partition skipped for lack of room had nothing asked of it).
                if got == 0 && room > 0 {
                    if !part.own && part.drained() {
                        part.finished = true;
                        out.finished(part.id);
                    } else {
                        out.empty(part.id);
                    }
                }
            }
            self.next = self.next.wrapping_add(1);
            // Blocked connections resume once half the backlog is free, so that each
            // of them gets to read a useful amount before the bound is hit again.
            if (was_backlogged || st.blocked) && st.backlog_bytes() <= state::BACKLOG_BYTES / 2 {
                st.blocked = false;
                shared.progress.notify();
            }
            Ok(())
        })
    }

    fn positions(&self) -> Vec<(PartitionId, Offset)> {
        partitions::positions(&self.shared.state.borrow().parts)
    }

    fn seek(&mut self, partition: PartitionId, next: Offset) -> Result<(), SourceError> {
        let mut st = self.shared.state.borrow_mut();
        partitions::find_mut(&mut st.parts, partition, "tcp")?.seek(LogOffset::new(next.0))
    }

    fn set_paused(&mut self, partition: PartitionId, paused: bool) {
        partitions::set_paused(&mut self.shared.state.borrow_mut().parts, partition, paused);
    }

    fn commit(&mut self, positions: &[(PartitionId, Offset)]) {
        let now = now_ms();
        let mut st = self.shared.state.borrow_mut();
        let mut error = None;
        for &(partition, offset) in positions {
            if let Some(part) = st.parts.iter_mut().find(|p| p.id == partition)
                && let Err(e) = part.commit(LogOffset::new(offset.0), now)
            {
                error.get_or_insert(format!("append log of partition {}: {e}", partition.0));
            }
        }
        if let Some(why) = error {
            st.fail(why);
        }
        drop(st);
        self.shared.work.notify();
    }
}

impl Drop for TcpSource {
    fn drop(&mut self) {
        if let Ok(mut st) = self.shared.state.try_borrow_mut() {
            st.closed = true;
        }
        self.shared.progress.notify();
        self.shared.work.notify();
    }
}
