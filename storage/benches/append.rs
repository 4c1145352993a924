//! Append throughput of the log: 64-byte events in batches of 1024, that is
//! one 64 KiB record per batch.
//!
//! * `append_64KiB/never`: appends into the mapping, nothing synced. The
//!   oldest segment is truncated (and recycled) as the log grows, as a shard
//!   does after a checkpoint, so the folder stays small.
//! * `append_64KiB/group_sync_every_N`: N appends, then one sync job run
//!   inline; the figure includes the flush.
//! * `flush/records_N`: the cost of one sync job covering N fresh records.
//! * `baseline/write_all_64KiB`: the naive alternative, a `write(2)` per
//!   record into a file, to beat.
//!
//! Run with `cargo bench -p weir-storage --bench append`.

use std::fs::File;
use std::hint::black_box;
use std::io::{Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_storage::log::{FsyncPolicy, Log, LogOffset, LogOptions};

const EVENT_BYTES: usize = 64;
const EVENTS_PER_BATCH: usize = 1024;
const RECORD_BYTES: usize = EVENT_BYTES * EVENTS_PER_BATCH;
const SEGMENT_BYTES: u64 = 64 << 20;
/// Segments kept before the bench truncates the log.
const KEEP_SEGMENTS: usize = 4;

fn record() -> Vec<u8> {
    (0..RECORD_BYTES).map(|i| (i % 251) as u8).collect()
}

fn open(dir: &std::path::Path, fsync: FsyncPolicy) -> Log {
    let (log, _) = Log::open(dir, LogOptions::new(SEGMENT_BYTES, fsync)).expect("open the log");
    log
}

/// Drops the oldest segment once there are more than `KEEP_SEGMENTS`, as a
/// shard does after each checkpoint; the segment is recycled.
fn keep_small(log: &mut Log) {
    if log.segment_count() > KEEP_SEGMENTS {
        let second = LogOffset::new(log.start_offset().get() + SEGMENT_BYTES);
        log.truncate_before(second).expect("truncate");
    }
}

fn append_never(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut log = open(tmp.path(), FsyncPolicy::Never);
    let record = record();
    let mut group = c.benchmark_group("append_64KiB");
    group.throughput(Throughput::Bytes(RECORD_BYTES as u64));
    group.bench_function("never", |b| {
        b.iter(|| {
            let offset = log.append(black_box(&record)).expect("append");
            keep_small(&mut log);
            black_box(offset)
        });
    });
    group.finish();
}

fn append_group(c: &mut Criterion) {
    let record = record();
    let mut group = c.benchmark_group("append_64KiB");
    for every in [16usize, 128] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut log = open(tmp.path(), FsyncPolicy::Group);
        group.throughput(Throughput::Bytes((RECORD_BYTES * every) as u64));
        group.bench_function(format!("group_sync_every_{every}"), |b| {
            b.iter(|| {
                for _ in 0..every {
                    black_box(log.append(black_box(&record)).expect("append"));
                }
                let job = log
                    .sync_job()
                    .expect("sync job")
                    .expect("something to sync");
                let durable = job.run().expect("sync");
                log.mark_durable(durable).expect("mark durable");
                keep_small(&mut log);
            });
        });
    }
    group.finish();
}

fn flush_cost(c: &mut Criterion) {
    let record = record();
    let mut group = c.benchmark_group("flush");
    for records in [1usize, 16, 128] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut log = open(tmp.path(), FsyncPolicy::Group);
        group.bench_function(format!("records_{records}"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    for _ in 0..records {
                        log.append(&record).expect("append");
                    }
                    let job = log
                        .sync_job()
                        .expect("sync job")
                        .expect("something to sync");
                    let start = Instant::now();
                    let durable = job.run().expect("sync");
                    spent += start.elapsed();
                    log.mark_durable(durable).expect("mark durable");
                    keep_small(&mut log);
                }
                spent
            });
        });
    }
    group.finish();
}

fn baseline_write(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut file = File::create(tmp.path().join("baseline")).expect("create");
    let record = record();
    let mut written = 0u64;
    let mut group = c.benchmark_group("baseline");
    group.throughput(Throughput::Bytes(RECORD_BYTES as u64));
    group.bench_function("write_all_64KiB", |b| {
        b.iter(|| {
            file.write_all(black_box(&record)).expect("write");
            written += RECORD_BYTES as u64;
            if written >= SEGMENT_BYTES * KEEP_SEGMENTS as u64 {
                file.seek(SeekFrom::Start(0)).expect("seek");
                written = 0;
            }
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .sample_size(30);
    targets = append_never, append_group, flush_cost, baseline_write
}
criterion_main!(benches);
