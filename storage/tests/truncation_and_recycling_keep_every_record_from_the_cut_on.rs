//! Random appends, truncations (on the caller's thread or in the background),
//! syncs and reopens, with spares made at open or not, against a model: the log
//! always holds exactly the records from its start offset on, never drops one at
//! or after a truncation point, and recycled segments never bring back an old
//! record.

mod common;

use common::read_all;
use proptest::prelude::*;
use weir_storage::log::{FsyncPolicy, Log, LogOffset, LogOptions};

#[derive(Debug, Clone)]
enum Op {
    /// Append records of these lengths.
    Append(Vec<usize>),
    /// Truncate before the record at this fraction of the model (0..=100 %),
    /// in the background or not.
    Truncate { at_percent: u8, background: bool },
    /// Make everything durable.
    Flush,
    /// Close and open again.
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec(0usize..3000, 1..8).prop_map(Op::Append),
        2 => (0u8..=100, any::<bool>())
            .prop_map(|(at_percent, background)| Op::Truncate { at_percent, background }),
        1 => Just(Op::Flush),
        1 => Just(Op::Reopen),
    ]
}

/// Deterministic payload bytes for record `index`.
fn payload(index: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(17) ^ (index as u8))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn the_log_holds_exactly_the_records_from_its_start_on(
        ops in prop::collection::vec(op(), 1..24),
        recycle_segments in 0usize..3,
        preallocate_spares in any::<bool>(),
        prepare_ahead in any::<bool>(),
        group in any::<bool>(),
    ) {
        let tmp = tempfile::tempdir()?;
        let fsync = if group { FsyncPolicy::Group } else { FsyncPolicy::Never };
        let mut options = LogOptions::new(3 * 4096, fsync);
        options.recycle_segments = recycle_segments;
        options.preallocate_spares = preallocate_spares;
        options.prepare_ahead = prepare_ahead;
        let (mut log, _) = Log::open(tmp.path(), options)?;
        // (offset, payload) of every record the log should hold.
        let mut model: Vec<(LogOffset, Vec<u8>)> = Vec::new();
        let mut appended = 0usize;

        for op in ops {
            match op {
                Op::Append(lens) => {
                    for len in lens {
                        let bytes = payload(appended, len);
                        appended += 1;
                        let offset = log.append(&bytes)?;
                        model.push((offset, bytes));
                    }
                }
                Op::Truncate { at_percent, background } => {
                    let index = model.len() * usize::from(at_percent) / 100;
                    let at = model.get(index).map_or(log.end_offset(), |(o, _)| *o);
                    let before = log.segment_count();
                    let removed = if background {
                        log.truncate_before_in_background(at)?
                    } else {
                        log.truncate_before(at)?
                    };
                    prop_assert_eq!(log.segment_count(), before - removed);
                    prop_assert!(log.start_offset() <= at, "a record at or after the cut was dropped");
                    let start = log.start_offset();
                    model.retain(|(o, _)| *o >= start);
                }
                Op::Flush => {
                    log.flush_now()?;
                }
                Op::Reopen => {
                    log.flush_now()?;
                    let start = log.start_offset();
                    drop(log);
                    let (reopened, report) = Log::open(tmp.path(), options)?;
                    log = reopened;
                    prop_assert_eq!(report.truncated_bytes, 0);
                    prop_assert_eq!(log.start_offset(), start);
                }
            }
            prop_assert_eq!(read_all(&log)?, model.clone());
            prop_assert!(log.read_from(log.end_offset()).next().is_none());
        }

        log.flush_now()?;
        drop(log);
        let (log, report) = Log::open(tmp.path(), options)?;
        prop_assert_eq!(report.records, model.len() as u64);
        prop_assert_eq!(read_all(&log)?, model);
    }
}
