//! The file source: JSON-lines or CSV files, one partition per file.
//!
//! `path` is a file, a glob (`data/in/*.jsonl`) or a folder (every regular file in it).
//! Files are sorted by name and numbered; file `i` is partition `i` and is read by shard
//! `i mod shards`. A record's offset is the byte offset of its line, so a checkpoint
//! resumes a file exactly where it stopped. Reads go through glommio (io_uring) in
//! 256 KiB chunks at the current position: the shard thread never blocks on the disk.
//! A poll gives out at most its room of records (up to the partition's next cut point);
//! whole lines read beyond it wait in memory for the next poll, and a chunk is read
//! only once they are all given out.
//!
//! With `follow = false` a file is finished at its end (a last line without a newline
//! still counts). With `follow = true` it is never finished: at the end the partition is
//! polled empty (and may go idle), a partial last line waits for its newline, and lines
//! appended later are read. CSV files have a header line; each later record is a line,
//! or several when a quoted field holds newlines. A UTF-8 byte order mark at the start
//! of a file is skipped. A record (line) may be up to [`MAX_LINE_BYTES`] long; a longer
//! one is dead-lettered as `too_long` and skipped to its newline.

use std::path::{Path, PathBuf};

use glommio::io::BufferedFile;
use weir_config::{FileFormat, FileSource as Spec};
use weir_engine::{Invalid, InvalidReason, Offset, PartitionId};

use super::partitions::{self, PartitionSlot};
use super::{LocalFuture, Source, SourceError, SourceOutput};

const CHUNK_BYTES: usize = 256 * 1024;

/// Longest line a file source accepts.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Lists the files a `path` names, sorted: a file, a glob, or a folder.
pub fn list_files(path: &str) -> Result<Vec<PathBuf>, String> {
    let p = Path::new(path);
    let mut files: Vec<PathBuf> = if p.is_dir() {
        std::fs::read_dir(p)
            .map_err(|e| format!("cannot list {path}: {e}"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| f.is_file())
            .collect()
    } else if p.is_file() {
        vec![p.to_path_buf()]
    } else {
        glob::glob(path)
            .map_err(|e| format!("bad glob {path:?}: {e}"))?
            .filter_map(Result::ok)
            .filter(|f| f.is_file())
            .collect()
    };
    files.sort();
    Ok(files)
}

#[derive(Debug)]
struct FilePartition {
    id: PartitionId,
    path: PathBuf,
    file: Option<BufferedFile>,
    /// Offset of the first byte of `pending`.
    pos: u64,
    /// Bytes read; those from `consumed` on are not yet split into records.
    pending: Vec<u8>,
    /// Bytes of `pending` already handled (whole lines given out or skipped).
    consumed: usize,
    /// CSV column names (from the header line).
    header: Option<Vec<String>>,
    finished: bool,
    /// Skipping the rest of an over-long line.
    skipping: bool,
    /// Held back by watermark alignment.
    paused: bool,
}

impl PartitionSlot for FilePartition {
    fn id(&self) -> PartitionId {
        self.id
    }

    fn position(&self) -> Offset {
        Offset(FilePartition::position(self))
    }

    fn paused_mut(&mut self) -> &mut bool {
        &mut self.paused
    }
}

/// The files of a pipeline that one shard reads.
#[derive(Debug)]
pub struct FileSource {
    spec: Spec,
    partitions: Vec<FilePartition>,
    next: usize,
}

impl FileSource {
    /// The source for the given (partition, file) pairs.
    pub fn new(spec: &Spec, files: Vec<(PartitionId, PathBuf)>) -> Self {
        Self {
            spec: spec.clone(),
            partitions: files
                .into_iter()
                .map(|(id, path)| FilePartition {
                    id,
                    path,
                    file: None,
                    pos: 0,
                    pending: Vec::new(),
                    consumed: 0,
                    header: None,
                    finished: false,
                    skipping: false,
                    paused: false,
                })
                .collect(),
            next: 0,
        }
    }
}

/// The fields of one CSV record, or why it is not one.
pub(crate) fn csv_row(line: &[u8]) -> Result<Vec<String>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line);
    let record = match reader.byte_records().next() {
        Some(Ok(r)) => r,
        Some(Err(e)) => return Err(format!("not a CSV record: {e}")),
        None => return Err("not a CSV record".into()),
    };
    record
        .iter()
        .map(|f| {
            std::str::from_utf8(f)
                .map(str::to_owned)
                .map_err(|e| format!("not UTF-8: invalid byte in a field at {}", e.valid_up_to()))
        })
        .collect()
}

/// Whether `text` leaves a CSV quoted field open (an odd number of quotes: an escaped
/// quote is two).
fn open_quote(text: &[u8]) -> bool {
    memchr::memchr_iter(b'"', text).count() % 2 == 1
}

/// Where the record at the start of `bytes` ends: the index of its newline, the first
/// one (for CSV, the first outside quotes: a quoted field may hold newlines); `None`
/// when that newline has not been read yet.
pub(crate) fn record_end(bytes: &[u8], csv: bool) -> Option<usize> {
    let mut nl = memchr::memchr(b'\n', bytes)?;
    if !csv {
        return Some(nl);
    }
    let mut quoted = open_quote(&bytes[..nl]);
    while quoted {
        let next = memchr::memchr(b'\n', &bytes[nl + 1..])?;
        quoted ^= open_quote(&bytes[nl + 1..nl + 1 + next]);
        nl += 1 + next;
    }
    Some(nl)
}

/// The UTF-8 byte order mark, skipped at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Handles one whole line (without its newline) at `offset`; returns whether it was a
/// record (an event or a bad record; not a blank line nor the CSV header).
fn line(
    id: PartitionId,
    header: &mut Option<Vec<String>>,
    format: FileFormat,
    offset: u64,
    line: &[u8],
    out: &mut SourceOutput,
) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = if offset == 0 {
        line.strip_prefix(BOM).unwrap_or(line)
    } else {
        line
    };
    if line.iter().all(u8::is_ascii_whitespace) {
        return false;
    }
    match format {
        FileFormat::Jsonl => out.json_line(id, Offset(offset), line),
        FileFormat::Csv => {
            let row = match csv_row(line) {
                Ok(row) => row,
                Err(message) => {
                    out.bad(
                        id,
                        Offset(offset),
                        line,
                        Invalid {
                            reason: InvalidReason::NotCsv,
                            message,
                        },
                    );
                    return true;
                }
            };
            match header {
                None => {
                    *header = Some(row);
                    return false;
                }
                Some(header) => {
                    let get = |name: &str| {
                        header
                            .iter()
                            .position(|h| h.trim() == name)
                            .and_then(|i| row.get(i))
                            .map(String::as_str)
                    };
                    out.fields(id, Offset(offset), line, get);
                }
            }
        }
    }
    true
}

impl FilePartition {
    /// The offset of the next byte not yet handled: the partition's position.
    fn position(&self) -> u64 {
        self.pos + self.consumed as u64
    }

    /// Gives out up to `room` records from the whole lines in `pending`; returns how
    /// many. Stops at the first line without its newline.
    fn drain_lines(&mut self, format: FileFormat, room: usize, out: &mut SourceOutput) -> usize {
        let mut given = 0;
        while given < room {
            let rest = &self.pending[self.consumed..];
            let csv = format == FileFormat::Csv && !self.skipping;
            let Some(nl) = record_end(rest, csv) else {
                break;
            };
            let offset = self.position();
            let start = self.consumed;
            self.consumed += nl + 1;
            if self.skipping {
                self.skipping = false;
                continue;
            }
            let text = &self.pending[start..start + nl];
            if line(self.id, &mut self.header, format, offset, text, out) {
                given += 1;
            }
        }
        given
    }

    /// Drops the handled bytes of `pending` (before reading more).
    fn compact(&mut self) {
        if self.consumed > 0 {
            self.pending.drain(..self.consumed);
            self.pos += self.consumed as u64;
            self.consumed = 0;
        }
    }

    /// A line longer than [`MAX_LINE_BYTES`] is a bad record (its head shown, once) and
    /// the rest of it is skipped.
    fn cut_overlong(&mut self, out: &mut SourceOutput) {
        if self.pending.len() - self.consumed <= MAX_LINE_BYTES {
            return;
        }
        if !self.skipping {
            let head = self.pending[self.consumed..self.consumed + 256].to_vec();
            out.bad(
                self.id,
                Offset(self.position()),
                &head,
                Invalid {
                    reason: InvalidReason::TooLong,
                    message: format!("line longer than {MAX_LINE_BYTES} bytes"),
                },
            );
        }
        self.skipping = true;
        self.consumed = self.pending.len();
    }

    /// Reads up to `room` records: first the whole lines already read, then, while
    /// there is room, the next chunk of the file.
    async fn poll(
        &mut self,
        format: FileFormat,
        follow: bool,
        room: usize,
        out: &mut SourceOutput,
    ) -> Result<(), SourceError> {
        if self.finished {
            out.finished(self.id);
            return Ok(());
        }
        if self.file.is_none() {
            match BufferedFile::open(&self.path).await {
                Ok(f) => self.file = Some(f),
                Err(e) if follow => {
                    out.empty(self.id);
                    return Err(SourceError::Read {
                        what: self.path.display().to_string(),
                        reason: e.to_string(),
                    });
                }
                Err(e) => {
                    return Err(SourceError::Read {
                        what: self.path.display().to_string(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        let Some(file) = &self.file else {
            return Ok(());
        };
        if format == FileFormat::Csv && self.header.is_none() && self.position() > 0 {
            // Resumed past the header: read it again from the start of the file.
            let head = file
                .read_at(0, CHUNK_BYTES)
                .await
                .map_err(|e| SourceError::Read {
                    what: self.path.display().to_string(),
                    reason: e.to_string(),
                })?;
            let end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
            let line = head[..end].strip_suffix(b"\r").unwrap_or(&head[..end]);
            let line = line.strip_prefix(BOM).unwrap_or(line);
            self.header = csv_row(line).ok();
        }
        let mut given = self.drain_lines(format, room, out);
        if given >= room {
            return Ok(());
        }
        // Every whole line read is given out: read on.
        self.compact();
        let Some(file) = &self.file else {
            return Ok(());
        };
        let at = self.pos + self.pending.len() as u64;
        let chunk = file
            .read_at(at, CHUNK_BYTES)
            .await
            .map_err(|e| SourceError::Read {
                what: self.path.display().to_string(),
                reason: e.to_string(),
            })?;
        if chunk.is_empty() {
            if follow {
                if given == 0 {
                    out.empty(self.id);
                }
                return Ok(());
            }
            // The end of the file: a last line without its newline still counts.
            if !self.pending.is_empty() && !self.skipping {
                let last = std::mem::take(&mut self.pending);
                line(self.id, &mut self.header, format, self.pos, &last, out);
                self.pos += last.len() as u64;
            }
            self.pending.clear();
            self.finished = true;
            out.finished(self.id);
            return Ok(());
        }
        self.pending.extend_from_slice(&chunk);
        given += self.drain_lines(format, room - given, out);
        if given < room {
            self.cut_overlong(out);
        }
        Ok(())
    }
}

impl Source for FileSource {
    fn runs_tasks(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        format!("file {}", self.spec.path)
    }

    fn partitions(&self) -> Vec<PartitionId> {
        self.partitions.iter().map(|p| p.id).collect()
    }

    fn poll<'a>(
        &'a mut self,
        max: usize,
        out: &'a mut SourceOutput,
    ) -> LocalFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            let n = self.partitions.len();
            if n == 0 {
                return Ok(());
            }
            // The next unfinished file, in turn.
            for _ in 0..n {
                let idx = self.next % n;
                self.next = self.next.wrapping_add(1);
                let part = &mut self.partitions[idx];
                if part.finished || part.paused {
                    continue;
                }
                let room = max.min(out.room(part.id));
                return part
                    .poll(self.spec.format, self.spec.follow, room, out)
                    .await;
            }
            for p in self.partitions.iter().filter(|p| p.finished) {
                out.finished(p.id);
            }
            Ok(())
        })
    }

    fn set_paused(&mut self, partition: PartitionId, paused: bool) {
        partitions::set_paused(&mut self.partitions, partition, paused);
    }

    fn positions(&self) -> Vec<(PartitionId, Offset)> {
        partitions::positions(&self.partitions)
    }

    fn seek(&mut self, partition: PartitionId, next: Offset) -> Result<(), SourceError> {
        let part = partitions::find_mut(&mut self.partitions, partition, "file")?;
        part.pos = next.0;
        part.pending.clear();
        part.consumed = 0;
        part.finished = false;
        part.skipping = false;
        // A CSV header is read again from the start of the file on the next poll.
        part.header = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use weir_config::{EventFields, TimeField};
    use weir_engine::{EventDecoder, SourceId};

    /// Polls `source` once under a fresh output with `room` for partition 0.
    async fn poll_once(source: &mut FileSource, max: usize, room: usize) -> SourceOutput {
        let fields = EventFields {
            key: "key".into(),
            time: TimeField::Field("ts".into()),
            value: "value".into(),
        };
        let mut out = SourceOutput::new(EventDecoder::new(&fields, false), SourceId(0));
        out.set_rooms([(PartitionId(0), room)]);
        let _ = source.poll(max, &mut out).await;
        out
    }

    /// Offsets of the records of `out`, events and bad records, in order.
    fn offsets(out: &SourceOutput) -> Vec<u64> {
        let mut all: Vec<u64> = out
            .events
            .iter()
            .map(|e| e.id.offset.0)
            .chain(out.invalid.iter().map(|(id, _, _)| id.offset.0))
            .collect();
        all.sort_unstable();
        all
    }

    fn line_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => (0u32..50, 0i64..1000).prop_map(|(k, t)| format!(r#"{{"key":"k{k}","ts":{t}}}"#)),
            1 => Just(String::new()),
            1 => Just("not json".to_owned()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// A poll never gives more than `max` or the partition's room, every record is
        /// given once in file order, and resuming from the position after any poll
        /// gives exactly the rest (what a checkpoint restores).
        #[test]
        fn polls_honour_max_and_room_and_resume_exactly(
            lines in proptest::collection::vec(line_strategy(), 0..3000),
            limits in proptest::collection::vec((1usize..700, 1usize..700), 1..40),
            resume_after in 0usize..40,
        ) {
            let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
            let path = dir.path().join("in.jsonl");
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            std::fs::write(&path, &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            // The model: the offset of every line that is not blank.
            let mut want = Vec::new();
            let mut at = 0u64;
            for l in &lines {
                if !l.is_empty() {
                    want.push(at);
                }
                at += l.len() as u64 + 1;
            }
            let spec = weir_config::FileSource {
                path: path.display().to_string(),
                format: FileFormat::Jsonl,
                follow: false,
            };
            let files = vec![(PartitionId(0), path.clone())];
            let result = glommio::LocalExecutorBuilder::default()
                .io_memory(crate::placement::IO_MEMORY_BYTES)
                .make()
                .map_err(|e| TestCaseError::fail(e.to_string()))?
                .run(async move {
                    let mut source = FileSource::new(&spec, files.clone());
                    let mut got = Vec::new();
                    let mut resumed_at = None;
                    let mut poll = 0;
                    loop {
                        let (max, room) = limits[poll % limits.len()];
                        let out = poll_once(&mut source, max, room).await;
                        let given = offsets(&out);
                        prop_assert!(given.len() <= max.min(room), "{} > min({max}, {room})", given.len());
                        got.extend(given);
                        poll += 1;
                        if poll == resume_after {
                            resumed_at = Some((source.positions()[0].1, got.len()));
                        }
                        if !out.finished.is_empty() {
                            break;
                        }
                        prop_assert!(poll < 100_000, "no end");
                    }
                    prop_assert_eq!(&got, &want);
                    if let Some((position, seen)) = resumed_at {
                        let mut again = FileSource::new(&spec, files);
                        again.seek(PartitionId(0), position).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        let mut rest = Vec::new();
                        loop {
                            let out = poll_once(&mut again, 512, 300).await;
                            rest.extend(offsets(&out));
                            if !out.finished.is_empty() {
                                break;
                            }
                        }
                        prop_assert_eq!(&rest[..], &want[seen..]);
                    }
                    Ok(())
                });
            result?;
        }
    }
}
