//! A payload is 16-byte aligned in the mapping, so an rkyv archive appended to
//! the log can be validated and read where it lies, without a copy.

use rkyv::rancor;
use weir_storage::log::{FsyncPolicy, Log, LogOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[derive(Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Event {
    key: u64,
    ts: i64,
    value: f64,
}

#[derive(Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Batch {
    shard: u32,
    events: Vec<Event>,
}

#[test]
fn an_rkyv_batch_is_accessed_in_place_after_a_reopen() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let options = LogOptions::new(1 << 16, FsyncPolicy::Group);
    let batches: Vec<Batch> = (0..5u32)
        .map(|b| Batch {
            shard: b,
            events: (0..(b * 7 + 1))
                .map(|i| Event {
                    key: u64::from(i),
                    ts: i64::from(b) * 1000,
                    value: f64::from(i) / 2.0,
                })
                .collect(),
        })
        .collect();
    {
        let (mut log, _) = Log::open(tmp.path(), options)?;
        for batch in &batches {
            let bytes = rkyv::to_bytes::<rancor::Error>(batch)?;
            // Serialise-in-place path and plain copy path both keep alignment.
            if batch.shard % 2 == 0 {
                log.append(&bytes)?;
            } else {
                log.append_with(bytes.len(), |buf| buf.copy_from_slice(&bytes))?;
            }
        }
        log.flush_now()?;
    }

    let (log, _) = Log::open(tmp.path(), options)?;
    let mut seen = 0;
    for record in log.read_from(log.start_offset()) {
        let record = record?;
        assert_eq!(record.payload.as_ptr() as usize % 16, 0);
        let archived = rkyv::access::<ArchivedBatch, rancor::Error>(record.payload)?;
        let want = &batches[seen];
        assert_eq!(archived.shard, want.shard);
        assert_eq!(archived.events.len(), want.events.len());
        let back: Batch = rkyv::deserialize::<Batch, rancor::Error>(archived)?;
        assert_eq!(&back, want);
        seen += 1;
    }
    assert_eq!(seen, batches.len());
    Ok(())
}
