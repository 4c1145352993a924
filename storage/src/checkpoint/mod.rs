//! The checkpoint store: blobs plus an atomically written manifest.
//!
//! A checkpoint is a folder named by its [`CheckpointId`], holding one blob per
//! shard and key-group range (names chosen by the caller) and a JSON
//! [`Manifest`] listing each blob's length and crc32c together with the
//! caller's metadata (source positions, log offsets, ...). The protocol:
//!
//! 1. [`CheckpointStore::begin`] creates the folder;
//! 2. [`CheckpointWriter::put_blob`] writes each blob;
//! 3. [`CheckpointWriter::commit`] syncs the blobs, writes the manifest
//!    atomically (temporary file, fsync, rename, fsync of the folders), and
//!    deletes checkpoints beyond the newest `retain`, except those a retained
//!    checkpoint builds on ([`CheckpointWriter::refer`]).
//!
//! On start, [`CheckpointStore::latest_complete`] returns the newest checkpoint
//! whose blobs all verify; a crash at any point of the protocol leaves the
//! previous checkpoint as the latest.
//!
//! This module stores bytes; it does not know what is in the blobs (rkyv
//! snapshots, in weir) or coordinate barriers between shards.

mod id;
mod loaded;
mod manifest;
mod store;
mod writer;

pub use id::CheckpointId;
pub use loaded::LoadedCheckpoint;
pub use manifest::{BlobInfo, BlobRef, MANIFEST_FORMAT, Manifest};
pub use store::CheckpointStore;
pub use writer::CheckpointWriter;
