//! Log recovery on arbitrary bytes. Two kinds of input (by the first byte):
//! - a segment of any content: it opens or is refused with an error, never a panic, and
//!   a log that opened once opens again with the same records and appends after them;
//! - records written by the log, then bytes of its segment overwritten: recovery keeps
//!   every record whose frame ends before the first changed byte, as written (the
//!   valid prefix), and appends after what it kept.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_storage::log::MIN_SEGMENT_BYTES;
use weir_storage::{FsyncPolicy, Log, LogOffset, LogOptions};

fn options() -> LogOptions {
    let mut o = LogOptions::new(MIN_SEGMENT_BYTES, FsyncPolicy::Never);
    o.prepare_ahead = false;
    o.recycle_segments = 0;
    o
}

fn records(log: &Log) -> Vec<Vec<u8>> {
    log.read_from(LogOffset::ZERO)
        .map_while(Result::ok)
        .map(|r| r.payload.to_vec())
        .collect()
}

/// Opens again, appends, and checks the records stay and the new one follows.
fn appends_after(dir: &std::path::Path, mut log: Log, kept: &[Vec<u8>]) {
    let end = log.end_offset();
    if log.append(b"after").is_err() {
        return;
    }
    drop(log);
    let Ok((log, _)) = Log::open(dir, options()) else {
        panic!("a log that opened once does not open again");
    };
    let again = records(&log);
    assert!(again.len() > kept.len(), "the appended record is missing");
    assert_eq!(&again[..kept.len()], kept);
    assert_eq!(again[kept.len()], b"after");
    assert!(log.end_offset() > end);
}

fn segment(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("00000000000000000000.seg")
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    if mode % 2 == 0 {
        let mut bytes = data.to_vec();
        bytes.resize(MIN_SEGMENT_BYTES as usize, 0);
        if std::fs::write(segment(dir.path()), &bytes).is_err() {
            return;
        }
        let Ok((log, report)) = Log::open(dir.path(), options()) else {
            return;
        };
        let kept = records(&log);
        assert_eq!(kept.len() as u64, report.records);
        appends_after(dir.path(), log, &kept);
        return;
    }
    // Records: up to 8, lengths from the first bytes; then (position, byte) pairs.
    let Some((&n, data)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 8) + 1;
    if data.len() < n {
        return;
    }
    let (lens, data) = data.split_at(n);
    let mut written = Vec::new();
    let mut at = 0;
    for &len in lens {
        let len = usize::from(len % 200);
        let end = (at + len).min(data.len());
        written.push(data[at..end].to_vec());
        at = end;
    }
    let edits = &data[at..];
    let Ok((mut log, _)) = Log::open(dir.path(), options()) else {
        return;
    };
    let mut frames = Vec::new();
    for r in &written {
        match log.append(r) {
            Ok(offset) => frames.push(offset.get()),
            Err(_) => break,
        }
    }
    let written = &written[..frames.len()];
    frames.push(log.end_offset().get());
    drop(log);
    let Ok(mut bytes) = std::fs::read(segment(dir.path())) else {
        return;
    };
    let mut first_change = u64::MAX;
    for edit in edits.chunks_exact(3) {
        let pos = usize::from(u16::from_le_bytes([edit[0], edit[1]])) % bytes.len();
        if bytes[pos] != edit[2] {
            bytes[pos] = edit[2];
            first_change = first_change.min(pos as u64);
        }
    }
    if std::fs::write(segment(dir.path()), &bytes).is_err() {
        return;
    }
    let Ok((log, _)) = Log::open(dir.path(), options()) else {
        // A damaged header may make the segment unusable: refused, not guessed at.
        assert!(
            first_change < 16,
            "refused a log damaged only at {first_change}"
        );
        return;
    };
    let kept = records(&log);
    // Frames before the first changed byte are intact: all of them are kept, as written.
    // (Past it, a fuzzer may forge a frame with a valid checksum: that is a record.)
    let intact = frames
        .windows(2)
        .take_while(|f| f[1] <= first_change)
        .count();
    assert!(
        kept.len() >= intact,
        "kept {} records, {intact} were intact",
        kept.len()
    );
    assert_eq!(&kept[..intact], &written[..intact]);
    appends_after(dir.path(), log, &kept);
});
