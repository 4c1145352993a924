//! [`RuntimeHandle`]: a cloneable view of a running [`Runtime`](crate::Runtime) for
//! observers outside the shards (the admin thread).
//!
//! It holds what observing needs and nothing that ends the runtime: the config, the
//! published counters, the shards' control channels and the start instant. It can read
//! counters, ask shards questions over their bounded control channels (every answer is
//! awaited with a deadline, so a stalled shard costs the asker at most the timeout), and
//! pause or resume a pipeline's sources. Stopping and joining stay with the `Runtime`,
//! which has one owner.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use weir_config::Config;
use weir_engine::{Key, KeyGroupMap, OpenWindow, PartitionId};

use crate::control::{Control, ShardReport};
use crate::metrics::Counters;

/// Which keys a window listing covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFilter<'a> {
    /// Every key.
    All,
    /// Keys that start with this.
    Prefix(&'a str),
    /// This one key; only the shard that owns its key group is asked.
    Key(&'a str),
}

/// A cloneable, thread-safe view of a running engine; see the module doc.
#[derive(Clone)]
pub struct RuntimeHandle {
    pub(crate) config: Arc<Config>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) controls: Arc<[Sender<Control>]>,
    pub(crate) stop: Arc<AtomicBool>,
    /// The files of each file-source pipeline, as planned at start (partition `i` is
    /// file `i`).
    pub(crate) files: Arc<[Vec<PathBuf>]>,
    pub(crate) started: Instant,
}

impl std::fmt::Debug for RuntimeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeHandle")
            .field("shards", &self.controls.len())
            .finish()
    }
}

impl RuntimeHandle {
    /// The configuration the engine runs.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The counters the shards publish.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Time since the engine started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The number of shards.
    pub fn nr_shards(&self) -> usize {
        self.controls.len()
    }

    /// Whether the engine was asked to stop (a signal, or the end of `weir run`).
    pub fn is_stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Whether every shard has ended.
    pub fn is_finished(&self) -> bool {
        self.counters
            .shards
            .iter()
            .all(|s| s.stopped.load(Ordering::Relaxed))
    }

    /// The shard that owns `key`'s key group.
    pub fn shard_of_key(&self, key: &str) -> usize {
        let map = KeyGroupMap::new(self.config.processing.key_groups, self.nr_shards() as u32);
        map.shard_of_hash(Key::new(key).hash()) as usize
    }

    /// A partition's name for humans: the file it reads, or `generator/N`, `tcp/N`.
    pub fn partition_name(&self, pipeline: usize, partition: PartitionId) -> String {
        let file = self
            .files
            .get(pipeline)
            .and_then(|files| files.get(partition.0 as usize));
        match (file, self.config.pipelines.get(pipeline).map(|p| &p.source)) {
            (Some(path), _) => path.display().to_string(),
            (None, Some(weir_config::Source::Kafka(k))) => format!("{}/{}", k.topic, partition.0),
            (None, Some(source)) => format!("{}/{}", source.kind(), partition.0),
            (None, None) => format!("partition/{}", partition.0),
        }
    }

    /// Asks every shard for its report; `None` for a shard that did not answer within
    /// `timeout` (or has ended).
    pub fn inspect(&self, timeout: Duration) -> Vec<Option<ShardReport>> {
        inspect(&self.controls, timeout)
    }

    /// Pauses or resumes reading a pipeline's sources on every shard; `false` when a
    /// shard could not be told (it has ended, or its control channel stayed full).
    pub fn set_running(&self, pipeline: usize, running: bool) -> bool {
        set_running(&self.controls, pipeline, running)
    }

    /// The open windows of `pipeline` whose keys pass `keys`, at most `limit` from each
    /// shard asked, as `(shard, answer)`; the answer is `None` when the shard did not
    /// answer within `timeout`. Shards list windows in their own order, not sorted.
    pub fn open_windows(
        &self,
        pipeline: usize,
        keys: KeyFilter<'_>,
        limit: usize,
        timeout: Duration,
    ) -> Vec<(usize, Option<Vec<OpenWindow>>)> {
        let shards: Vec<usize> = match keys {
            KeyFilter::Key(key) => vec![self.shard_of_key(key)],
            _ => (0..self.nr_shards()).collect(),
        };
        let (key, prefix) = match keys {
            KeyFilter::All => (None, None),
            KeyFilter::Prefix(p) => (None, Some(p.to_owned())),
            KeyFilter::Key(k) => (Some(k.to_owned()), None),
        };
        let answers = ask(&self.controls, &shards, timeout, |reply| Control::Windows {
            pipeline,
            key: key.clone(),
            prefix: prefix.clone(),
            limit,
            reply,
        });
        shards.into_iter().zip(answers).collect()
    }
}

/// Sends one question to each of `shards` at once, then waits for the answers until a
/// common deadline. A full control channel or an ended shard answers `None` at once.
fn ask<T>(
    controls: &[Sender<Control>],
    shards: &[usize],
    timeout: Duration,
    question: impl Fn(Sender<T>) -> Control,
) -> Vec<Option<T>> {
    let asked: Vec<Option<Receiver<T>>> = shards
        .iter()
        .map(|&shard| {
            let (tx, rx) = bounded(1);
            let sent = controls
                .get(shard)
                .is_some_and(|c| c.try_send(question(tx)).is_ok());
            sent.then_some(rx)
        })
        .collect();
    let deadline = Instant::now() + timeout;
    asked
        .into_iter()
        .map(|rx| {
            rx?.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .ok()
        })
        .collect()
}

pub(crate) fn inspect(controls: &[Sender<Control>], timeout: Duration) -> Vec<Option<ShardReport>> {
    let all: Vec<usize> = (0..controls.len()).collect();
    ask(controls, &all, timeout, |reply| Control::Inspect { reply })
}

pub(crate) fn set_running(controls: &[Sender<Control>], pipeline: usize, running: bool) -> bool {
    controls.iter().all(|c| {
        c.send_timeout(
            Control::SetRunning { pipeline, running },
            Duration::from_secs(1),
        )
        .is_ok()
    })
}
