//! Routing a polled batch to the shards that own its keys.

use weir_engine::{Event, KeyGroupMap, PartitionId};

use crate::pipeline::PartitionState;

/// Routes a polled batch: each event moves to the buffer of the shard that owns its key
/// (`bufs[own]` is this shard's own), and each partition's clock observes the newest
/// time it read and its record count grows by what it gave.
///
/// The loop has no branch that depends on an event: with keys spread over shards the
/// destination is a coin toss, and a mispredicted branch per event cost more than the
/// copy itself. Buffers that are empty start their linger clock at `now_ns` up front.
#[inline(never)]
pub(crate) fn route(
    events: &mut Vec<Event>,
    partitions: &mut [PartitionState],
    map: &KeyGroupMap,
    bufs: &mut [Vec<Event>],
    since: &mut [u64],
    now_ms: u64,
    now_ns: u64,
) {
    for (buf, since) in bufs.iter_mut().zip(since.iter_mut()) {
        if buf.is_empty() {
            *since = now_ns;
        }
    }
    // Partitions come in runs (a source polls one partition at a time): keep the run's
    // newest time in a register and hand it to the partition's clock when the run ends.
    let mut run: Option<(PartitionId, Option<usize>)> = None;
    let mut newest = i64::MIN;
    let mut count = 0u64;
    let nr = bufs.len();
    for e in events.drain(..) {
        let part = e.id.partition;
        if run.is_none_or(|(id, _)| id != part) {
            if let Some((_, Some(i))) = run {
                partitions[i].clock.observe(newest, now_ms);
                partitions[i].records += count;
            }
            run = Some((part, partitions.iter().position(|s| s.id == part)));
            newest = i64::MIN;
            count = 0;
        }
        newest = newest.max(e.time.0);
        count += 1;
        // `min` keeps the index in bounds without a branch (shards own every group).
        let dest = (map.shard_of_hash(e.key.hash()) as usize).min(nr - 1);
        bufs[dest].push(e);
    }
    if let Some((_, Some(i))) = run {
        partitions[i].clock.observe(newest, now_ms);
        partitions[i].records += count;
    }
}
