//! Round trip against a `Vec<Vec<u8>>` model: random payload sizes and counts,
//! segments small enough that every case rolls over, reopened between batches.

mod common;

use common::read_all;
use proptest::prelude::*;
use weir_storage::log::{FsyncPolicy, Log, LogOffset, LogOptions};

/// Deterministic payload bytes for record `index`.
fn payload(seed: u8, index: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed ^ (index as u8))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn appended_records_read_back_in_order_across_segments_and_reopens(
        batches in prop::collection::vec(prop::collection::vec(0usize..5000, 0..10), 1..4),
        segment_pages in 2u64..5,
        prepare_ahead in any::<bool>(),
        seed in any::<u8>(),
    ) {
        let tmp = tempfile::tempdir()?;
        let mut options = LogOptions::new(segment_pages * 4096, FsyncPolicy::Never);
        options.prepare_ahead = prepare_ahead;
        let mut model: Vec<Vec<u8>> = Vec::new();
        let mut offsets: Vec<LogOffset> = Vec::new();

        for batch in &batches {
            let (mut log, report) = Log::open(tmp.path(), options)?;
            prop_assert_eq!(report.records, model.len() as u64);
            prop_assert_eq!(report.truncated_bytes, 0);
            prop_assert_eq!(report.valid_end, log.end_offset());

            for &len in batch {
                let bytes = payload(seed, model.len(), len);
                let offset = log.append(&bytes)?;
                prop_assert!(offsets.last().is_none_or(|&last| last < offset));
                prop_assert!(offset < log.end_offset());
                offsets.push(offset);
                model.push(bytes);
            }

            let read = read_all(&log)?;
            prop_assert_eq!(read.len(), model.len());
            for ((offset, bytes), (want_offset, want)) in read.iter().zip(offsets.iter().zip(&model)) {
                prop_assert_eq!(offset, want_offset);
                prop_assert_eq!(bytes, want);
            }

            // Reading from the middle yields the suffix, with aligned payloads.
            if let Some(mid) = offsets.get(model.len() / 2) {
                let suffix: Vec<_> = log.read_from(*mid).collect::<Result<_, _>>()?;
                prop_assert_eq!(suffix.len(), model.len() - model.len() / 2);
                for record in &suffix {
                    prop_assert_eq!(record.payload.as_ptr() as usize % 16, 0);
                }
                if let Some(last) = suffix.last() {
                    prop_assert!(log.read_from(last.next_offset()).next().is_none());
                }
            }
            prop_assert!(log.read_from(log.end_offset()).next().is_none());
        }

        let (log, report) = Log::open(tmp.path(), options)?;
        prop_assert_eq!(report.records, model.len() as u64);
        let read: Vec<Vec<u8>> = read_all(&log)?.into_iter().map(|(_, b)| b).collect();
        prop_assert_eq!(read, model);
    }
}
