//! Segments removed by `truncate_before` are recycled as new segments. A
//! recycled file holds frames of its previous life until they are overwritten
//! on disk; none of them may ever be read as a record at the new offsets.

mod common;

use common::{append_records, files, payloads};
use weir_storage::log::{FsyncPolicy, Log, LogOffset, LogOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn a_recycled_segment_reads_back_only_its_new_records_even_with_stale_bytes_on_disk() -> TestResult
{
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let mut options = LogOptions::new(4096, FsyncPolicy::Group);
    options.prepare_ahead = false;
    let (mut log, _) = Log::open(dir, options)?;

    // Four 1000-byte records per segment; fill two segments and start a third.
    let mut model: Vec<Vec<u8>> = Vec::new();
    append_records(&mut log, 0..9, &mut model)?;
    log.flush_now()?;
    let old_first = std::fs::read(dir.join("00000000000000000000.seg"))?;

    // Retire the first segment: it is renamed, not deleted, and the next
    // rollover turns it into segment 12288.
    assert_eq!(log.truncate_before(LogOffset::new(4096))?, 1);
    model.drain(..4);
    assert_eq!(
        files(dir)?,
        [
            "00000000000000004096.seg",
            "00000000000000008192.seg",
            "spare-00000000000000000000.seg.tmp"
        ]
    );
    append_records(&mut log, 9..13, &mut model)?;
    log.flush_now()?;
    assert_eq!(
        files(dir)?,
        [
            "00000000000000004096.seg",
            "00000000000000008192.seg",
            "00000000000000012288.seg"
        ]
    );
    assert_eq!(payloads(&log)?, model);
    let end = log.end_offset();
    drop(log);

    // Simulate a crash in which the zeroing of the recycled file never reached
    // the disk: everything after its new records is its old content.
    let recycled = dir.join("00000000000000012288.seg");
    let mut bytes = std::fs::read(&recycled)?;
    let new_end = usize::try_from(end.get() - 12288)?;
    bytes[new_end..].copy_from_slice(&old_first[new_end..]);
    assert!(
        bytes[new_end..].iter().any(|&b| b != 0),
        "stale frames are there"
    );
    std::fs::write(&recycled, &bytes)?;

    let (log, report) = Log::open(dir, options)?;
    assert_eq!(report.valid_end, end, "recovery stops at the new records");
    assert!(report.truncated_bytes > 0);
    assert_eq!(payloads(&log)?, model);
    Ok(())
}

#[test]
fn retired_segments_beyond_the_recycling_limit_are_deleted_and_spares_do_not_survive_a_reopen()
-> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let mut options = LogOptions::new(4096, FsyncPolicy::Never);
    options.recycle_segments = 1;
    let (mut log, _) = Log::open(dir, options)?;
    for i in 0..20u8 {
        log.append(&[i + 1; 1000])?;
    }
    let end = log.end_offset();
    assert_eq!(log.truncate_before(end)?, 4);
    let spares = files(dir)?
        .into_iter()
        .filter(|n| n.starts_with("spare-"))
        .count();
    assert_eq!(spares, 1);
    drop(log);

    let (log, report) = Log::open(dir, options)?;
    assert_eq!(report.records, 4, "the active segment keeps its records");
    assert_eq!(log.end_offset(), end);
    assert!(
        files(dir)?.iter().all(|n| !n.ends_with(".tmp")),
        "{:?}",
        files(dir)?
    );
    Ok(())
}
