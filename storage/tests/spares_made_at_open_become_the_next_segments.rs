//! `preallocate_spares`: a log makes its spares when it opens, and the first
//! rollovers recycle them instead of making new files. The records are the
//! same either way, and spares never outlive a reopen as part of the log.

mod common;

use common::{append_records, files, payloads};
use weir_storage::log::{FsyncPolicy, Log, LogOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn spares_are_made_at_open_and_recycled_by_the_first_rollovers() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let mut options = LogOptions::new(4096, FsyncPolicy::Group);
    options.prepare_ahead = false;
    options.recycle_segments = 2;
    options.preallocate_spares = true;
    let (mut log, _) = Log::open(dir, options)?;
    assert_eq!(
        files(dir)?,
        [
            "00000000000000000000.seg",
            "spare-new-00000000000000000000.seg.tmp",
            "spare-new-00000000000000000001.seg.tmp",
        ]
    );
    assert_eq!(log.disk_bytes(), 3 * 4096, "the segment and two spares");

    // Four 1000-byte records per segment: 10 records roll over twice, and both
    // new segments are the spares.
    let mut model = Vec::new();
    append_records(&mut log, 0..10, &mut model)?;
    log.flush_now()?;
    assert_eq!(
        files(dir)?,
        [
            "00000000000000000000.seg",
            "00000000000000004096.seg",
            "00000000000000008192.seg",
        ]
    );
    assert_eq!(payloads(&log)?, model);

    // With no spare left, the next rollover makes a new file.
    append_records(&mut log, 10..13, &mut model)?;
    assert_eq!(log.segment_count(), 4);
    log.flush_now()?;
    drop(log);

    // Reopened, the log holds the same records and makes its spares again.
    let (log, report) = Log::open(dir, options)?;
    assert_eq!(report.segments, 4);
    assert_eq!(payloads(&log)?, model);
    assert_eq!(
        files(dir)?
            .iter()
            .filter(|n| n.starts_with("spare-new-"))
            .count(),
        2
    );
    Ok(())
}

#[test]
fn without_preallocation_a_log_opens_with_no_spares() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let mut options = LogOptions::new(4096, FsyncPolicy::Never);
    options.prepare_ahead = false;
    let (log, _) = Log::open(tmp.path(), options)?;
    assert_eq!(files(tmp.path())?, ["00000000000000000000.seg"]);
    assert_eq!(log.disk_bytes(), 4096);
    Ok(())
}
