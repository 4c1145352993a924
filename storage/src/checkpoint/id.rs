//! `CheckpointId`: which checkpoint.

use std::fmt;

/// The number of a checkpoint. Ids grow: a store refuses to begin a checkpoint
/// whose id is not newer than its latest complete one.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct CheckpointId(u64);

impl CheckpointId {
    /// The id before any checkpoint; the first one is `CheckpointId::ZERO.next()`.
    pub const ZERO: CheckpointId = CheckpointId(0);

    /// Wraps a raw id.
    #[must_use]
    pub const fn new(raw: u64) -> Self {
        CheckpointId(raw)
    }

    /// The raw value.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The id after this one.
    #[must_use]
    pub const fn next(self) -> Self {
        CheckpointId(self.0.saturating_add(1))
    }

    /// The name of this checkpoint's folder: the id zero-padded to 20 digits.
    pub(crate) fn folder_name(self) -> String {
        format!("{:020}", self.0)
    }

    /// The id a folder name stands for, if it is one.
    pub(crate) fn parse_folder_name(name: &str) -> Option<Self> {
        if name.len() != 20 || !name.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        name.parse().ok().map(CheckpointId)
    }
}

impl fmt::Display for CheckpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
