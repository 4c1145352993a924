//! `truncate_before_in_background`: the log drops the segments at once and a
//! helper thread renames or deletes their files; the spares it makes are
//! recycled like those of `truncate_before`, and nothing of the records the log
//! still holds changes.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{append_records, files, payloads};
use weir_storage::Error;
use weir_storage::log::{FsyncPolicy, Log, LogOffset, LogOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Waits until the folder holds exactly `want` (the helper thread works on its
/// own time); fails after ten seconds.
fn wait_for_files(dir: &Path, want: &[&str]) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = files(dir)?;
        if now == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("folder holds {now:?}, expected {want:?}").into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn segments_leave_the_log_at_once_their_files_soon_after_and_spares_come_back_as_new_segments()
-> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let mut options = LogOptions::new(4096, FsyncPolicy::Group);
    options.prepare_ahead = false;
    options.recycle_segments = 1;
    let (mut log, _) = Log::open(dir, options)?;

    // Four 1000-byte records per segment: 14 records fill three segments and
    // start a fourth.
    let mut model: Vec<Vec<u8>> = Vec::new();
    append_records(&mut log, 0..14, &mut model)?;
    log.flush_now()?;
    assert_eq!(log.segment_count(), 4);

    // Everything below the third segment goes: two segments, one kept as a
    // spare (the limit), one deleted.
    assert_eq!(log.truncate_before_in_background(LogOffset::new(8192))?, 2);
    model.drain(..8);
    assert_eq!(log.start_offset(), LogOffset::new(8192));
    assert_eq!(log.segment_count(), 2);
    assert!(matches!(
        log.read_from(LogOffset::new(8)).next(),
        Some(Err(Error::OffsetTruncated { .. }))
    ));
    assert_eq!(payloads(&log)?, model);
    wait_for_files(
        dir,
        &[
            "00000000000000008192.seg",
            "00000000000000012288.seg",
            "spare-00000000000000000000.seg.tmp",
        ],
    )?;
    assert_eq!(log.disk_bytes(), 3 * 4096, "two segments and one spare");

    // Nothing more lies wholly below: no thread, nothing changes.
    assert_eq!(log.truncate_before_in_background(LogOffset::new(8192))?, 0);

    // The next rollover makes segment 16384 from the spare.
    append_records(&mut log, 14..20, &mut model)?;
    log.flush_now()?;
    assert_eq!(
        files(dir)?,
        [
            "00000000000000008192.seg",
            "00000000000000012288.seg",
            "00000000000000016384.seg",
        ]
    );
    assert_eq!(payloads(&log)?, model);
    let end = log.end_offset();

    // A second background truncation right before closing: closing waits for
    // the helper, and the reopened log holds exactly the rest.
    assert_eq!(log.truncate_before_in_background(LogOffset::new(16384))?, 2);
    model.drain(..8);
    drop(log);
    let (log, report) = Log::open(dir, options)?;
    assert_eq!(report.segments, 1);
    assert_eq!(log.start_offset(), LogOffset::new(16384));
    assert_eq!(log.end_offset(), end);
    assert_eq!(payloads(&log)?, model);
    assert_eq!(files(dir)?, ["00000000000000016384.seg"]);
    Ok(())
}

#[test]
fn with_fsync_never_the_files_go_the_same_way() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let mut options = LogOptions::new(4096, FsyncPolicy::Never);
    options.recycle_segments = 0;
    let (mut log, _) = Log::open(dir, options)?;
    for i in 0..9u8 {
        log.append(&[i + 1; 1000])?;
    }
    assert_eq!(log.truncate_before_in_background(log.end_offset())?, 2);
    assert_eq!(log.segment_count(), 1);
    // Segment 12288 is the one prepared ahead.
    wait_for_files(
        dir,
        &["00000000000000008192.seg", "00000000000000012288.seg"],
    )?;
    Ok(())
}
