//! The exactly-once file sink: output reaches the file only for completed checkpoints.
//!
//! Layout, for a sink file `out/r.jsonl`: a hidden staging folder `out/.r.jsonl.weir/`
//! holding
//! - `shard-<s>.pending`: what shard `s` emitted since its last checkpoint barrier;
//! - `<n>-<s>.staged`: shard `s`'s output of checkpoint `n`, renamed from its pending
//!   file (after an fsync) when the shard took its snapshot for `n`;
//! - `committed`: one line `<n> <length>` per committed checkpoint: the length of the
//!   sink file once `n`'s output was appended (line `0 <length>` records the file as
//!   weir first found it).
//!
//! Commit of `n` (by the coordinator, only after the manifest of `n` is durable): for
//! every checkpoint up to `n` not committed yet, oldest first (a commit that failed, say
//! on a full disk, is redone before any later one), append its staged files in shard
//! order, fsync the file, append `<id> <length>` to `committed` and fsync it, then
//! delete those staged files. A sink file shorter than what was committed, or replaced
//! by another inode, is never written: the commit fails and says so.
//!
//! Repair on start, given the checkpoint `r` being restored: if `committed` reaches `r`,
//! cut the file to the length recorded for `r` (undoing output of any later checkpoint
//! and any half-done append); otherwise cut it to the last recorded length and redo the
//! commits of the checkpoints up to `r` from their staged files (a crash between
//! manifest and commit). Every pending and staged file that is left is then deleted: its
//! output will be produced again by replay. So after any crash the file holds exactly the
//! output of the restored checkpoint, and replay appends the rest once.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::source::LocalFuture;

use super::Sink;

/// The staging folder of a sink file.
pub fn staging_dir(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "sink".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.weir"))
}

fn staged_name(dir: &Path, checkpoint: u64, shard: usize) -> PathBuf {
    dir.join(format!("{checkpoint:020}-{shard:04}.staged"))
}

fn pending_name(dir: &Path, shard: usize) -> PathBuf {
    dir.join(format!("shard-{shard:04}.pending"))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The commit log: (checkpoint, file length) pairs, oldest first.
fn read_commits(dir: &Path) -> std::io::Result<Vec<(u64, u64)>> {
    let mut text = String::new();
    match File::open(dir.join("committed")) {
        Ok(mut f) => {
            f.read_to_string(&mut text)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    }
    // A torn last line (crash while appending) is ignored: its commit did not finish.
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut parts = l.split(' ');
            let id = parts.next()?.parse().ok()?;
            let len = parts.next()?.parse().ok()?;
            parts.next().is_none().then_some((id, len))
        })
        .collect())
}

fn write_commits(dir: &Path, commits: &[(u64, u64)]) -> std::io::Result<()> {
    let tmp = dir.join("committed.tmp");
    let mut f = File::create(&tmp)?;
    for (id, len) in commits {
        writeln!(f, "{id} {len}")?;
    }
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join("committed"))?;
    sync_dir(dir)
}

fn append_commit(dir: &Path, id: u64, len: u64) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("committed"))?;
    writeln!(f, "{id} {len}")?;
    f.sync_all()
}

fn open_target(path: &Path) -> std::io::Result<File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
}

/// Makes the staged output of `checkpoint` durable (before its manifest is written).
pub fn sync_staged(path: &Path, checkpoint: u64) -> std::io::Result<()> {
    let dir = staging_dir(path);
    for entry in std::fs::read_dir(&dir)? {
        let p = entry?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with(&format!("{checkpoint:020}-")) && name.ends_with(".staged") {
            File::open(&p)?.sync_data()?;
        }
    }
    sync_dir(&dir)
}

/// A file's identity: (device, inode).
pub type FileId = (u64, u64);

fn file_id(file: &File) -> std::io::Result<FileId> {
    use std::os::unix::fs::MetadataExt;
    let m = file.metadata()?;
    Ok((m.dev(), m.ino()))
}

/// The error for a sink file that no longer holds what weir committed to it.
fn tampered(path: &Path, what: &str) -> std::io::Error {
    std::io::Error::other(format!(
        "the file {what}: it was truncated, removed or replaced while weir owns it. Nothing \
         more is written to it; put the file back, or remove {} to start the file afresh",
        staging_dir(path).display()
    ))
}

/// Opens the sink file to append after `base` committed bytes, checking that it is the
/// file weir committed to: at least `base` long, and (when `identity` is known) the
/// same inode. A file that is not is never written: writing at `base` would leave a
/// hole of zeros where the lost output was, or cut someone else's file.
fn open_committed(path: &Path, base: u64, identity: Option<FileId>) -> std::io::Result<File> {
    let target = if base == 0 {
        open_target(path)?
    } else {
        match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(tampered(
                    path,
                    &format!("is gone, but weir committed {base} bytes to it"),
                ));
            }
            Err(e) => return Err(e),
        }
    };
    let len = target.metadata()?.len();
    if len < base {
        return Err(tampered(
            path,
            &format!("has {len} bytes, but weir committed {base} bytes to it"),
        ));
    }
    if identity.is_some_and(|id| file_id(&target).ok() != Some(id)) {
        return Err(tampered(
            path,
            "is another file than the one weir committed to",
        ));
    }
    Ok(target)
}

/// Commits the staged output of every checkpoint up to `checkpoint` not committed yet,
/// oldest first: appends each one's staged files (all shards, in order) to the sink
/// file, fsyncs it, records the commit, and only then deletes those staged files. Runs
/// on the coordinator thread, after the manifest of `checkpoint`.
///
/// So a commit that failed (a full disk) is redone by the next one, and no checkpoint's
/// output is ever committed before an earlier one's. `identity` is the sink file's
/// identity as last committed (learnt on the first commit); a file replaced since is an
/// error, as is one shorter than what was committed.
pub fn commit(path: &Path, checkpoint: u64, identity: &mut Option<FileId>) -> std::io::Result<()> {
    let dir = staging_dir(path);
    std::fs::create_dir_all(&dir)?;
    let mut commits = read_commits(&dir)?;
    if commits.is_empty() {
        let len = std::fs::metadata(path).map_or(0, |m| m.len());
        write_commits(&dir, &[(0, len)])?;
        commits.push((0, len));
    }
    let (last, base) = commits.last().copied().unwrap_or((0, 0));
    if last >= checkpoint {
        return Ok(());
    }
    let mut target = open_committed(path, base, *identity)?;
    *identity = Some(file_id(&target)?);
    target.set_len(base)?;
    target.seek(SeekFrom::Start(base))?;
    let mut ids: Vec<u64> = staged_ids(&dir)?
        .into_iter()
        .filter(|&id| id > last && id <= checkpoint)
        .collect();
    ids.push(checkpoint);
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let mut staged: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{id:020}-")) && n.ends_with(".staged"))
            })
            .collect();
        staged.sort();
        for file in &staged {
            let mut f = File::open(file)?;
            std::io::copy(&mut f, &mut target)?;
        }
        target.sync_data()?;
        let len = target.stream_position()?;
        append_commit(&dir, id, len)?;
        for file in staged {
            let _ = std::fs::remove_file(file);
        }
    }
    Ok(())
}

/// Repairs a sink file for a restart from checkpoint `restored` (0 = none).
///
/// Fails, touching nothing, when the file holds less than the output of the
/// checkpoints it keeps (it was truncated or removed while weir was stopped): cutting
/// or appending at the recorded length would leave a hole of zeros.
pub fn recover(path: &Path, restored: u64) -> std::io::Result<()> {
    let dir = staging_dir(path);
    std::fs::create_dir_all(&dir)?;
    let mut commits = read_commits(&dir)?;
    if commits.is_empty() {
        let len = std::fs::metadata(path).map_or(0, |m| m.len());
        commits.push((0, len));
        write_commits(&dir, &commits)?;
    }
    let last = commits.last().map_or(0, |&(id, _)| id);
    if restored <= last {
        // Keep the output of checkpoints up to `restored`, undo the rest.
        commits.retain(|&(id, _)| id <= restored);
        let len = commits.last().map_or(0, |&(_, len)| len);
        let target = open_committed(path, len, None)?;
        target.set_len(len)?;
        target.sync_data()?;
        write_commits(&dir, &commits)?;
    } else {
        // Commits of completed checkpoints did not finish: redo them from staged files.
        tracing::info!(sink = %path.display(), from = last, to = restored, "redoing unfinished sink commits");
        commit(path, restored, &mut None)?;
    }
    // Whatever is left was emitted after the restored checkpoint: replay makes it again.
    for entry in std::fs::read_dir(&dir)? {
        let p = entry?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".pending") || name.ends_with(".staged") {
            std::fs::remove_file(&p)?;
        }
    }
    sync_dir(&dir)
}

fn staged_ids(dir: &Path) -> std::io::Result<Vec<u64>> {
    Ok(std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".staged")?
                .split('-')
                .next()?
                .parse()
                .ok()
        })
        .collect())
}

/// The shard side: appends to this shard's pending file, stages it per checkpoint.
#[derive(Debug)]
pub struct StagedFileSink {
    path: PathBuf,
    dir: PathBuf,
    shard: usize,
    file: Option<File>,
    /// Bytes in the pending file (this shard alone writes it).
    pending_len: u64,
    delay: std::time::Duration,
}

impl StagedFileSink {
    /// The exactly-once sink for `path` on shard `shard`.
    pub fn open(path: impl Into<PathBuf>, shard: usize, delay_ms: u64) -> std::io::Result<Self> {
        let path = path.into();
        let dir = staging_dir(&path);
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            path,
            dir,
            shard,
            file: None,
            pending_len: 0,
            delay: std::time::Duration::from_millis(delay_ms),
        })
    }
}

impl Sink for StagedFileSink {
    fn describe(&self) -> String {
        format!("file {} (exactly once)", self.path.display())
    }

    fn write<'a>(&'a mut self, lines: &'a [u8]) -> LocalFuture<'a, std::io::Result<()>> {
        Box::pin(async move {
            let pending = pending_name(&self.dir, self.shard);
            let len = Some(&mut self.pending_len);
            super::file::append(&mut self.file, &pending, lines, self.delay, len).await
        })
    }

    fn stage(&mut self, checkpoint: u64) -> LocalFuture<'_, std::io::Result<()>> {
        Box::pin(async move {
            // Only a rename here: the coordinator fsyncs staged files before it writes
            // the manifest, off the shard's critical path.
            drop(self.file.take());
            let pending = pending_name(&self.dir, self.shard);
            let staged = staged_name(&self.dir, checkpoint, self.shard);
            let len = self.pending_len;
            glommio::executor()
                .spawn_blocking(move || {
                    if !pending.exists() {
                        // Nothing emitted since the last barrier: stage an empty file.
                        OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&pending)?;
                    }
                    // Whatever a failed write left past what was written is not output.
                    let f = OpenOptions::new().write(true).open(&pending)?;
                    if f.metadata()?.len() != len {
                        f.set_len(len)?;
                    }
                    std::fs::rename(&pending, &staged)
                })
                .await?;
            // A fresh pending file starts with the next write.
            self.pending_len = 0;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_default()
    }

    #[test]
    fn commits_append_staged_output_and_recovery_undoes_later_ones() -> std::io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let path = tmp.path().join("out/r.jsonl");
        recover(&path, 0)?;
        let dir = staging_dir(&path);
        std::fs::write(staged_name(&dir, 1, 1), "b1\n")?;
        std::fs::write(staged_name(&dir, 1, 0), "a1\n")?;
        commit(&path, 1, &mut None)?;
        assert_eq!(read(&path), "a1\nb1\n");
        std::fs::write(staged_name(&dir, 2, 0), "a2\n")?;
        commit(&path, 2, &mut None)?;
        assert_eq!(read(&path), "a1\nb1\na2\n");
        // Falling back to checkpoint 1 removes checkpoint 2's output.
        recover(&path, 1)?;
        assert_eq!(read(&path), "a1\nb1\n");
        Ok(())
    }

    #[test]
    fn a_crash_between_manifest_and_commit_is_redone_once() -> std::io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let path = tmp.path().join("r.jsonl");
        recover(&path, 0)?;
        let dir = staging_dir(&path);
        std::fs::write(staged_name(&dir, 1, 0), "x\n")?;
        commit(&path, 1, &mut None)?;
        std::fs::write(staged_name(&dir, 2, 0), "y\n")?;
        std::fs::write(pending_name(&dir, 0), "after\n")?;
        // Half an append of checkpoint 2, then a crash before its commit record.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)?
            .write_all(b"y")?;
        recover(&path, 2)?;
        assert_eq!(read(&path), "x\ny\n");
        recover(&path, 2)?;
        assert_eq!(read(&path), "x\ny\n");
        assert!(!pending_name(&dir, 0).exists());
        Ok(())
    }
}
