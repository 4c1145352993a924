//! The file source: JSON-lines or CSV files, one partition per file.
//!
//! `path` is a file, a glob (`data/in/*.jsonl`) or a folder (every regular file in it).
//! Files are sorted by name and numbered; file `i` is partition `i` and is read by shard
//! `i mod shards`. A record's offset is the byte offset of its line, so a checkpoint
//! resumes a file exactly where it stopped. Reads go through glommio (io_uring) in
//! 256 KiB chunks at the current position: the shard thread never blocks on the disk.
//!
//! With `follow = false` a file is finished at its end (a last line without a newline
//! still counts). With `follow = true` it is never finished: at the end the partition is
//! polled empty (and may go idle), a partial last line waits for its newline, and lines
//! appended later are read. CSV files have a header line; each later line is one record
//! (quoted fields may not contain newlines).

use std::path::{Path, PathBuf};

use glommio::io::BufferedFile;
use weir_config::{FileFormat, FileSource as Spec};
use weir_engine::{Invalid, InvalidReason, Offset, PartitionId};

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
    /// Bytes read but not yet split into whole lines.
    pending: Vec<u8>,
    /// CSV column names (from the header line).
    header: Option<Vec<String>>,
    finished: bool,
    /// Skipping the rest of an over-long line.
    skipping: bool,
    /// Held back by watermark alignment.
    paused: bool,
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

fn csv_row(line: &[u8]) -> Option<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line);
    let record = reader.records().next()?.ok()?;
    Some(record.iter().map(|f| f.to_owned()).collect())
}

impl FilePartition {
    /// Handles one whole line (without its newline) at `offset`.
    fn line(&mut self, format: FileFormat, offset: u64, line: &[u8], out: &mut SourceOutput) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match format {
            FileFormat::Jsonl => out.json_line(self.id, Offset(offset), line),
            FileFormat::Csv => {
                let Some(row) = csv_row(line) else {
                    out.bad(
                        self.id,
                        Offset(offset),
                        line,
                        Invalid {
                            reason: InvalidReason::NotJson,
                            message: "not a CSV record".into(),
                        },
                    );
                    return;
                };
                match &self.header {
                    None => self.header = Some(row),
                    Some(header) => {
                        let get = |name: &str| {
                            header
                                .iter()
                                .position(|h| h.trim() == name)
                                .and_then(|i| row.get(i))
                                .map(String::as_str)
                        };
                        out.fields(self.id, Offset(offset), line, get);
                    }
                }
            }
        }
    }

    /// Splits whole lines out of `pending`.
    fn drain_lines(&mut self, format: FileFormat, out: &mut SourceOutput) {
        let mut start = 0;
        while let Some(nl) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let end = start + nl;
            let line = self.pending[start..end].to_vec();
            if self.skipping {
                self.skipping = false;
            } else {
                self.line(format, self.pos + start as u64, &line, out);
            }
            start = end + 1;
        }
        self.pending.drain(..start);
        self.pos += start as u64;
        if self.pending.len() > MAX_LINE_BYTES {
            if !self.skipping {
                let head = self.pending[..256].to_vec();
                out.bad(
                    self.id,
                    Offset(self.pos),
                    &head,
                    Invalid {
                        reason: InvalidReason::TooLong,
                        message: format!("line longer than {MAX_LINE_BYTES} bytes"),
                    },
                );
            }
            self.skipping = true;
            self.pos += self.pending.len() as u64;
            self.pending.clear();
        }
    }

    async fn poll(
        &mut self,
        format: FileFormat,
        follow: bool,
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
                    return Err(SourceError(format!("{}: {e}", self.path.display())));
                }
                Err(e) => return Err(SourceError(format!("{}: {e}", self.path.display()))),
            }
        }
        let Some(file) = &self.file else {
            return Ok(());
        };
        if format == FileFormat::Csv && self.header.is_none() && self.pos > 0 {
            // Resumed past the header: read it again from the start of the file.
            let head = file
                .read_at(0, CHUNK_BYTES)
                .await
                .map_err(|e| SourceError(format!("{}: {e}", self.path.display())))?;
            let end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
            let line = head[..end].strip_suffix(b"\r").unwrap_or(&head[..end]);
            self.header = csv_row(line);
        }
        let at = self.pos + self.pending.len() as u64;
        let chunk = file
            .read_at(at, CHUNK_BYTES)
            .await
            .map_err(|e| SourceError(format!("{}: {e}", self.path.display())))?;
        if chunk.is_empty() {
            if follow {
                out.empty(self.id);
            } else {
                if !self.pending.is_empty() && !self.skipping {
                    let last = std::mem::take(&mut self.pending);
                    self.line(format, self.pos, &last, out);
                    self.pos += last.len() as u64;
                }
                self.pending.clear();
                self.finished = true;
                out.finished(self.id);
            }
            return Ok(());
        }
        self.pending.extend_from_slice(&chunk);
        self.drain_lines(format, out);
        Ok(())
    }
}

impl Source for FileSource {
    fn describe(&self) -> String {
        format!("file {}", self.spec.path)
    }

    fn partitions(&self) -> Vec<PartitionId> {
        self.partitions.iter().map(|p| p.id).collect()
    }

    fn poll<'a>(
        &'a mut self,
        _max: usize,
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
                return part.poll(self.spec.format, self.spec.follow, out).await;
            }
            for p in self.partitions.iter().filter(|p| p.finished) {
                out.finished(p.id);
            }
            Ok(())
        })
    }

    fn set_paused(&mut self, partition: PartitionId, paused: bool) {
        if let Some(p) = self.partitions.iter_mut().find(|p| p.id == partition) {
            p.paused = paused;
        }
    }

    fn positions(&self) -> Vec<(PartitionId, Offset)> {
        self.partitions
            .iter()
            .map(|p| (p.id, Offset(p.pos)))
            .collect()
    }

    fn seek(&mut self, partition: PartitionId, next: Offset) -> Result<(), SourceError> {
        let part = self
            .partitions
            .iter_mut()
            .find(|p| p.id == partition)
            .ok_or_else(|| SourceError(format!("no file partition {}", partition.0)))?;
        part.pos = next.0;
        part.pending.clear();
        part.finished = false;
        part.skipping = false;
        // A CSV header is read again from the start of the file on the next poll.
        part.header = None;
        Ok(())
    }
}
