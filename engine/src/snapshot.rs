//! Window state in a portable form, for checkpoints.
//!
//! A snapshot lists every keyed state with its key, so it can be split by key group on
//! restore: a checkpoint taken with N shards restores onto M, each new shard keeping the
//! entries of the groups it owns. The types derive rkyv's `Archive`, and archived bytes
//! are validated (bytecheck) before they are trusted; see [`encode`] and [`decode`].

use rkyv::{Archive, Deserialize, Serialize};

use crate::aggregate::{Accumulator, AggSpec, ValuesSnapshot};

/// Kept values of an accumulator.
#[derive(Debug, Clone, PartialEq, Archive, Serialize, Deserialize)]
pub enum ValuesState {
    /// Exact values.
    Exact(Vec<f64>),
    /// Histogram buckets (scaled magnitude, count), non-negative then negative values.
    Histogram {
        /// Values >= 0.
        positive: Vec<(u64, u64)>,
        /// Values < 0, by magnitude.
        negative: Vec<(u64, u64)>,
    },
}

/// An accumulator.
#[derive(Debug, Clone, PartialEq, Archive, Serialize, Deserialize)]
pub struct AccState {
    /// Events.
    pub count: u64,
    /// Sum.
    pub sum: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
    /// Kept values for percentiles.
    pub values: Option<ValuesState>,
}

impl AccState {
    /// Captures an accumulator.
    pub fn of(acc: &Accumulator) -> Self {
        Self {
            count: acc.count,
            sum: acc.sum,
            min: acc.min,
            max: acc.max,
            values: acc.values_for_snapshot().map(|v| match v {
                ValuesSnapshot::Exact(v) => ValuesState::Exact(v),
                ValuesSnapshot::Histogram { positive, negative } => {
                    ValuesState::Histogram { positive, negative }
                }
            }),
        }
    }

    /// Rebuilds the accumulator.
    pub fn restore(&self, spec: &AggSpec) -> Accumulator {
        Accumulator::from_parts(
            self.count,
            self.sum,
            self.min,
            self.max,
            self.values.clone().map(|v| match v {
                ValuesState::Exact(v) => ValuesSnapshot::Exact(v),
                ValuesState::Histogram { positive, negative } => {
                    ValuesSnapshot::Histogram { positive, negative }
                }
            }),
            spec,
        )
    }
}

/// One key's state in one pane of a time-window operator.
#[derive(Debug, Clone, PartialEq, Archive, Serialize, Deserialize)]
pub struct PaneEntry {
    /// Start of the pane.
    pub pane: i64,
    /// The key.
    pub key: String,
    /// Its aggregate.
    pub acc: AccState,
}

/// The last revision emitted for a key's window, after a late re-emission.
#[derive(Debug, Clone, PartialEq, Archive, Serialize, Deserialize)]
pub struct RevisionEntry {
    /// End of the window.
    pub end: i64,
    /// The key.
    pub key: String,
    /// The revision.
    pub revision: u32,
}

/// One session.
#[derive(Debug, Clone, PartialEq, Archive, Serialize, Deserialize)]
pub struct SessionEntry {
    /// The key.
    pub key: String,
    /// Start.
    pub start: i64,
    /// End (last event + gap).
    pub end: i64,
    /// Its aggregate.
    pub acc: AccState,
    /// Last revision emitted, if any.
    pub emitted: Option<u32>,
    /// Holds events not yet in an emitted result.
    pub dirty: bool,
}

/// The whole state of one window operator.
#[derive(Debug, Clone, PartialEq, Default, Archive, Serialize, Deserialize)]
pub struct OperatorState {
    /// The operator's watermark.
    pub watermark: i64,
    /// Time windows: pane entries.
    pub panes: Vec<PaneEntry>,
    /// Time windows: revisions of re-emitted windows.
    pub revisions: Vec<RevisionEntry>,
    /// Session windows.
    pub sessions: Vec<SessionEntry>,
}

/// A snapshot could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("invalid snapshot: {0}")]
pub struct SnapshotError(pub String);

/// Serializes a snapshot value with rkyv.
pub fn encode<T>(value: &T) -> Result<Vec<u8>, SnapshotError>
where
    T: for<'a> Serialize<
        rkyv::api::high::HighSerializer<
            rkyv::util::AlignedVec,
            rkyv::ser::allocator::ArenaHandle<'a>,
            rkyv::rancor::Error,
        >,
    >,
{
    rkyv::to_bytes::<rkyv::rancor::Error>(value)
        .map(|v| v.to_vec())
        .map_err(|e| SnapshotError(e.to_string()))
}

/// Validates and deserializes a snapshot value written by [`encode`].
pub fn decode<T>(bytes: &[u8]) -> Result<T, SnapshotError>
where
    T: Archive,
    T::Archived: for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rkyv::rancor::Error>>
        + Deserialize<T, rkyv::api::high::HighDeserializer<rkyv::rancor::Error>>,
{
    // Archived data must be aligned; copy into an aligned buffer first.
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    rkyv::from_bytes::<T, rkyv::rancor::Error>(&aligned).map_err(|e| SnapshotError(e.to_string()))
}
