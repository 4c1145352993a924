//! `inspect` reports each segment and a torn tail, and never writes.

use std::path::Path;

use weir_storage::log::{FsyncPolicy, Log, LogOptions, inspect};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn snapshot(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, std::io::Error> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        files.push((
            entry.file_name().to_string_lossy().into_owned(),
            std::fs::read(entry.path())?,
        ));
    }
    files.sort();
    Ok(files)
}

#[test]
fn inspect_counts_records_per_segment_and_flags_a_torn_tail_read_only() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let mut options = LogOptions::new(4096, FsyncPolicy::Never);
    options.prepare_ahead = false;
    let (mut log, _) = Log::open(tmp.path(), options)?;
    let mut last = None;
    for i in 0..6u8 {
        last = Some(log.append(&[i + 1; 1000])?);
    }
    let end = log.end_offset();
    drop(log);

    let clean = inspect(tmp.path())?;
    assert_eq!(clean.segments.len(), 2);
    assert_eq!(clean.records, 6);
    assert_eq!(clean.segments[0].records, 4);
    assert_eq!(clean.segments[1].records, 2);
    assert_eq!(clean.end, Some(end));
    assert!(!clean.needs_repair());
    let table = clean.to_string();
    assert!(table.contains("00000000000000004096.seg"), "{table}");
    assert!(table.contains("6 records"), "{table}");

    // Damage the last record's payload.
    let last = last.ok_or("no record")?;
    let segment = tmp.path().join("00000000000000004096.seg");
    let mut bytes = std::fs::read(&segment)?;
    let at = usize::try_from(last.get() - 4096)? + 100;
    bytes[at] ^= 0xff;
    std::fs::write(&segment, &bytes)?;

    let before = snapshot(tmp.path())?;
    let torn = inspect(tmp.path())?;
    assert_eq!(snapshot(tmp.path())?, before, "inspect changed the folder");
    assert_eq!(torn.records, 5);
    assert!(torn.segments[1].torn_tail);
    assert!(!torn.segments[0].torn_tail);
    assert_eq!(torn.end, Some(last));
    assert!(torn.needs_repair());
    assert!(torn.to_string().contains("bad checksum"), "{torn}");
    Ok(())
}

#[test]
fn spare_segment_files_are_reported_as_spares_not_as_damage() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let mut options = LogOptions::new(4096, FsyncPolicy::Never);
    options.prepare_ahead = false;
    options.recycle_segments = 2;
    options.preallocate_spares = true;
    let (mut log, _) = Log::open(tmp.path(), options)?;
    log.append(b"one record")?;
    drop(log);

    let report = inspect(tmp.path())?;
    assert_eq!(report.spares, 2);
    assert_eq!(report.leftovers, 0);
    assert_eq!(report.records, 1);
    assert!(!report.needs_repair(), "{report}");
    assert!(
        report.to_string().contains("2 spare segment file(s)"),
        "{report}"
    );

    // A segment whose preparation was interrupted is a leftover, not a spare.
    std::fs::write(tmp.path().join("00000000000000004096.seg.tmp"), b"")?;
    let report = inspect(tmp.path())?;
    assert_eq!((report.spares, report.leftovers), (2, 1));
    assert!(report.needs_repair());
    Ok(())
}
