//! `read_from` must refuse offsets that are not where a record starts, even
//! when the bytes there look like a frame.

use weir_storage::Error;
use weir_storage::log::{FsyncPolicy, Log, LogOffset, LogOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn offsets_inside_records_past_the_end_or_misaligned_are_refused() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (mut log, _) = Log::open(tmp.path(), LogOptions::new(8192, FsyncPolicy::Never))?;
    let outer = log.append(b"x")?;
    // A payload that contains a valid frame at a frame position inside it.
    let inner = {
        let (mut scratch, _) = Log::open(
            tmp.path().join("scratch"),
            LogOptions::new(8192, FsyncPolicy::Never),
        )?;
        scratch.append(b"x")?;
        let fake = scratch.append(b"lookalike")?;
        let frame_start = usize::try_from(fake.get())?;
        let bytes = std::fs::read(tmp.path().join("scratch/00000000000000000000.seg"))?;
        bytes[frame_start - 8..frame_start + 32].to_vec()
    };
    let host = log.append(&inner)?;
    let next = log.append(b"next")?;

    for bad in [
        LogOffset::new(host.get() + 16),
        LogOffset::new(host.get() + 1),
    ] {
        assert!(
            matches!(
                log.read_from(bad).next(),
                Some(Err(Error::NotRecordBoundary { .. }))
            ),
            "offset {bad} accepted"
        );
    }
    assert!(matches!(
        log.read_from(LogOffset::new(log.end_offset().get() + 16))
            .next(),
        Some(Err(Error::OffsetBeyondEnd { .. }))
    ));

    // Boundaries: a record, the segment base, the end.
    let from_outer: Vec<LogOffset> = log
        .read_from(outer)
        .map(|r| r.map(|x| x.offset))
        .collect::<Result<_, _>>()?;
    assert_eq!(from_outer, [outer, host, next]);
    assert_eq!(log.read_from(LogOffset::ZERO).count(), 3);
    assert_eq!(log.read_from(next).count(), 1);
    assert_eq!(log.read_from(log.end_offset()).count(), 0);
    Ok(())
}
