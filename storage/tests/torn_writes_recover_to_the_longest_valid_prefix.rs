//! A crash can leave any prefix of the bytes written to a segment. Cutting the
//! last segment at every byte of its last records (and, separately, flipping
//! random bytes in its tail) must recover exactly the records that are whole,
//! and the log must take appends afterwards.

use std::path::{Path, PathBuf};

use weir_storage::log::{FsyncPolicy, Log, LogOffset, LogOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SEGMENT_BYTES: u64 = 16384;

/// A record as written: its offset and payload.
#[derive(Debug, Clone)]
struct Written {
    offset: LogOffset,
    payload: Vec<u8>,
}

impl Written {
    /// One past the last byte of the frame header and payload (not padding).
    fn data_end(&self) -> u64 {
        self.offset.get() + 8 + self.payload.len() as u64
    }
}

/// Writes records of varied sizes with no zero byte in any payload, so that
/// zeroing any byte of a record breaks it. Returns them and the path and base
/// offset of the last segment.
fn build_log(
    dir: &Path,
    policy: FsyncPolicy,
) -> Result<(Vec<Written>, PathBuf, u64), Box<dyn std::error::Error>> {
    let mut options = LogOptions::new(SEGMENT_BYTES, policy);
    options.prepare_ahead = false;
    let (mut log, _) = Log::open(dir, options)?;
    let mut written = Vec::new();
    for i in 0..40usize {
        let len = (i * 97) % 700 + 1;
        let payload: Vec<u8> = (0..len).map(|j| (((i + j) % 255) + 1) as u8).collect();
        let offset = log.append(&payload)?;
        written.push(Written { offset, payload });
    }
    log.flush_now()?;
    drop(log);
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    segments.retain(|p| p.extension().is_some_and(|e| e == "seg"));
    segments.sort();
    let last = segments.pop().ok_or("no segment")?;
    let base: u64 = last
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or("bad name")?
        .parse()?;
    Ok((written, last, base))
}

/// Restores `segment` to `bytes` and deletes any segment an earlier round
/// rolled over to, so that each round starts from the same log.
fn restore(segment: &Path, bytes: &[u8]) -> TestResult {
    std::fs::write(segment, bytes)?;
    let dir = segment.parent().ok_or("no parent")?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "seg") && path.as_path() > segment {
            std::fs::remove_file(path)?;
        }
    }
    Ok(())
}

/// Opens the log (running recovery) and checks it holds exactly `expected`,
/// that the tail after it is zero on disk, and that an append reads back
/// after a reopen.
fn check_recovery(
    dir: &Path,
    segment: &Path,
    base: u64,
    expected: &[Written],
    policy: FsyncPolicy,
) -> TestResult {
    let mut options = LogOptions::new(SEGMENT_BYTES, policy);
    options.prepare_ahead = false;
    let (mut log, report) = Log::open(dir, options)?;
    let records: Vec<(LogOffset, Vec<u8>)> = log
        .read_from(log.start_offset())
        .map(|r| r.map(|rec| (rec.offset, rec.payload.to_vec())))
        .collect::<Result<_, _>>()?;
    assert_eq!(records.len(), expected.len(), "records after recovery");
    for ((offset, payload), want) in records.iter().zip(expected) {
        assert_eq!(*offset, want.offset);
        assert_eq!(payload, &want.payload);
    }
    assert_eq!(report.records, expected.len() as u64);
    assert_eq!(report.valid_end, log.end_offset());

    let bytes = std::fs::read(segment)?;
    let valid_pos = usize::try_from(report.valid_end.get() - base)?;
    assert!(
        bytes[valid_pos..].iter().all(|&b| b == 0),
        "tail zeroed after {}",
        report.valid_end
    );

    let fresh = log.append(b"after recovery")?;
    log.flush_now()?;
    drop(log);
    let (log, _) = Log::open(dir, options)?;
    let last = log
        .read_from(fresh)
        .next()
        .ok_or("appended record missing")??;
    assert_eq!(last.payload, b"after recovery");
    assert_eq!(
        log.read_from(log.start_offset()).count(),
        expected.len() + 1
    );
    Ok(())
}

#[test]
fn a_cut_at_every_byte_of_the_last_records_keeps_exactly_the_whole_ones() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let (written, segment, base) = build_log(dir, FsyncPolicy::Never)?;
    let original = std::fs::read(&segment)?;
    let in_last: Vec<&Written> = written.iter().filter(|w| w.offset.get() >= base).collect();
    assert!(in_last.len() >= 4, "the last segment holds several records");
    let first_cut = in_last[in_last.len() - 4].offset.get() - base;
    let last_cut = in_last.last().ok_or("empty")?.data_end() - base + 16;

    for cut in first_cut..=last_cut {
        let mut bytes = original.clone();
        bytes[usize::try_from(cut)?..].fill(0);
        restore(&segment, &bytes)?;
        let expected: Vec<Written> = written
            .iter()
            .filter(|w| w.data_end() <= base + cut)
            .cloned()
            .collect();
        check_recovery(dir, &segment, base, &expected, FsyncPolicy::Never)
            .map_err(|e| format!("cut at segment byte {cut}: {e}"))?;
    }
    Ok(())
}

#[test]
fn a_flipped_byte_in_the_tail_cuts_the_log_before_the_damaged_record() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let (written, segment, base) = build_log(dir, FsyncPolicy::Group)?;
    let original = std::fs::read(&segment)?;
    let in_last: Vec<&Written> = written.iter().filter(|w| w.offset.get() >= base).collect();
    let from = in_last[in_last.len() - 4].offset.get() - base;
    let to = in_last.last().ok_or("empty")?.data_end() - base + 64;

    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..200 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let pos = from + rng % (to - from);
        let mask = ((rng >> 32) % 255 + 1) as u8;
        let mut bytes = original.clone();
        bytes[usize::try_from(pos)?] ^= mask;
        restore(&segment, &bytes)?;
        let flipped = base + pos;
        let damaged = written
            .iter()
            .position(|w| (w.offset.get()..w.data_end()).contains(&flipped))
            .unwrap_or(written.len());
        check_recovery(dir, &segment, base, &written[..damaged], FsyncPolicy::Group)
            .map_err(|e| format!("round {round}, flip {mask:#04x} at segment byte {pos}: {e}"))?;
    }
    Ok(())
}
