//! Rollover to new segments when a frame does not fit, segment names, and
//! `truncate_before` deleting only whole segments below an offset.

mod common;

use std::path::Path;

use common::append_records;
use weir_storage::Error;
use weir_storage::log::{FsyncPolicy, Log, LogOffset, LogOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn segment_names(dir: &Path) -> Result<Vec<String>, std::io::Error> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".seg"))
        .collect();
    names.sort();
    Ok(names)
}

#[test]
fn records_roll_into_new_segments_and_truncation_deletes_only_whole_segments_below() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let options = LogOptions::new(4096, FsyncPolicy::Group);
    let (mut log, _) = Log::open(tmp.path(), options)?;

    // A 1000-byte record takes a 1008-byte frame: four fit in a 4096-byte
    // segment after its 8-byte header.
    let mut offsets = Vec::new();
    for i in 0..10u8 {
        offsets.push(log.append(&[i + 1; 1000])?);
    }
    log.flush_now()?;
    assert_eq!(log.segment_count(), 3);
    assert_eq!(offsets[0], LogOffset::new(8));
    assert_eq!(
        offsets[4],
        LogOffset::new(4096 + 8),
        "record 4 starts the second segment"
    );
    assert_eq!(offsets[8], LogOffset::new(8192 + 8));
    let names = segment_names(tmp.path())?;
    assert!(names.starts_with(&[
        "00000000000000000000.seg".to_owned(),
        "00000000000000004096.seg".to_owned(),
        "00000000000000008192.seg".to_owned(),
    ]));

    // The largest record fills a segment; one byte more is an error.
    let max = log.max_record_len();
    assert_eq!(max, 4096 - 24);
    let big = log.append(&vec![7u8; max])?;
    assert_eq!(big, LogOffset::new(12288 + 8));
    match log.append(&vec![7u8; max + 1]) {
        Err(Error::RecordTooLarge { len, max: m }) => assert_eq!((len, m), (max + 1, max)),
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }

    // Truncating at record 5 deletes only the first segment.
    assert_eq!(log.truncate_before(offsets[5])?, 1);
    assert_eq!(log.start_offset(), LogOffset::new(4096));
    assert!(!tmp.path().join("00000000000000000000.seg").exists());
    assert!(matches!(
        log.read_from(offsets[0]).next(),
        Some(Err(Error::OffsetTruncated { .. }))
    ));
    let rest: Vec<u8> = log
        .read_from(log.start_offset())
        .map(|r| r.map(|rec| rec.payload[0]))
        .collect::<Result<_, _>>()?;
    assert_eq!(rest, [5, 6, 7, 8, 9, 10, 7]);
    assert_eq!(
        log.truncate_before(offsets[5])?,
        0,
        "nothing more lies wholly below"
    );

    // Truncating at the end keeps the active segment.
    let end = log.end_offset();
    assert_eq!(log.truncate_before(end)?, 2);
    assert_eq!(log.segment_count(), 1);
    // The largest record filled that segment, so this one rolls over again.
    let after = log.append(b"still appending")?;
    assert_eq!(after, LogOffset::new(16384 + 8));
    drop(log);

    let (log, report) = Log::open(tmp.path(), options)?;
    assert_eq!(report.segments, 2);
    assert_eq!(report.records, 2);
    assert_eq!(log.start_offset(), LogOffset::new(12288));
    let payloads: Vec<Vec<u8>> = log
        .read_from(log.start_offset())
        .map(|r| r.map(|rec| rec.payload.to_vec()))
        .collect::<Result<_, _>>()?;
    assert_eq!(payloads, [vec![7u8; max], b"still appending".to_vec()]);
    assert_eq!(log.read_from(after).count(), 1);
    Ok(())
}

#[test]
fn a_segment_file_that_cannot_be_removed_is_removed_before_any_newer_one() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let mut options = LogOptions::new(4096, FsyncPolicy::Group);
    options.prepare_ahead = false;
    options.recycle_segments = 0;
    let (mut log, _) = Log::open(dir, options)?;
    let mut payloads = Vec::new();
    append_records(&mut log, 0..14, &mut payloads)?;
    log.flush_now()?;

    // Segment 0's file cannot be deleted for now: a non-empty folder stands in
    // its place.
    let first = dir.join("00000000000000000000.seg");
    std::fs::remove_file(&first)?;
    std::fs::create_dir(&first)?;
    std::fs::write(first.join("blocker"), b"")?;
    assert!(log.truncate_before(LogOffset::new(8192)).is_err());
    assert_eq!(log.start_offset(), LogOffset::new(8192));
    let names = segment_names(dir)?;
    assert!(
        names.contains(&"00000000000000004096.seg".to_owned()),
        "nothing newer than the failed file is removed: {names:?}"
    );

    // The fault passes. The next truncation removes the files left behind
    // before the newer one, so the folder never has a gap.
    std::fs::remove_dir_all(&first)?;
    std::fs::write(&first, b"")?;
    assert_eq!(log.truncate_before(LogOffset::new(12288))?, 1);
    assert_eq!(segment_names(dir)?, ["00000000000000012288.seg".to_owned()]);
    drop(log);
    let (log, _) = Log::open(dir, options)?;
    let read: Vec<Vec<u8>> = log
        .read_from(log.start_offset())
        .map(|r| r.map(|rec| rec.payload.to_vec()))
        .collect::<Result<_, _>>()?;
    assert_eq!(read, payloads[12..]);
    Ok(())
}
