//! Helpers shared by the log's integration tests. Not every test uses every helper.
#![allow(dead_code)]

use std::path::Path;

use weir_storage::log::{Log, LogOffset};

/// The file names in a log folder, sorted, without the lock file.
pub fn files(dir: &Path) -> Result<Vec<String>, std::io::Error> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.retain(|n| n != "LOCK");
    names.sort();
    Ok(names)
}

/// Every record from the start of the log, with its offset.
pub fn read_all(log: &Log) -> Result<Vec<(LogOffset, Vec<u8>)>, weir_storage::Error> {
    log.read_from(log.start_offset())
        .map(|r| r.map(|rec| (rec.offset, rec.payload.to_vec())))
        .collect()
}

/// Every payload from the start of the log.
pub fn payloads(log: &Log) -> Result<Vec<Vec<u8>>, weir_storage::Error> {
    Ok(read_all(log)?.into_iter().map(|(_, p)| p).collect())
}

/// Appends records `range` (record `i` is 1000 bytes of `i + 1`; four fill a 4096-byte
/// segment) and adds them to `model`.
pub fn append_records(
    log: &mut Log,
    range: std::ops::Range<u8>,
    model: &mut Vec<Vec<u8>>,
) -> Result<(), weir_storage::Error> {
    for i in range {
        let payload = vec![i + 1; 1000];
        log.append(&payload)?;
        model.push(payload);
    }
    Ok(())
}
