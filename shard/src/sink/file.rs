//! The file sink: JSON lines appended to a file shared by all shards.
//!
//! Every shard opens the file with `O_APPEND` and writes whole buffers of whole lines, so
//! lines of different shards never interleave within a line. The write itself runs on
//! glommio's blocking pool, never on the shard thread. `delay_ms` pauses after each
//! write: a testing aid that simulates a slow disk.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::source::LocalFuture;

use super::Sink;

/// Appends lines to a file.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    file: Option<File>,
    delay: Duration,
}

impl FileSink {
    /// Opens (creating it and its folder) the file for appending.
    pub fn open(path: impl Into<PathBuf>, delay_ms: u64) -> std::io::Result<Self> {
        let path = path.into();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Self {
            path,
            file: Some(file),
            delay: Duration::from_millis(delay_ms),
        })
    }
}

/// Fails when the file open as `file` is no longer the one at `path`: removed (its link
/// count is 0, or nothing is at `path`) or replaced (another inode is). Writing on would
/// put lines where nobody reads them, so the sink stops and reports instead.
fn check_still_at(file: &File, path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let open = file.metadata()?;
    let replaced = match std::fs::metadata(path) {
        Ok(now) => now.dev() != open.dev() || now.ino() != open.ino(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(e),
    };
    if open.nlink() == 0 || replaced {
        return Err(std::io::Error::other(format!(
            "{} was removed or replaced while weir was writing it; nothing more is written \
             to it (put the file back, or restart weir to write a new one)",
            path.display()
        )));
    }
    Ok(())
}

/// Appends `lines` to `file` (opening `path` for appending if it is not open yet) on
/// glommio's blocking pool, then pauses `delay` (the testing aid of slow sinks). A file
/// removed or replaced under it is an error ([`check_still_at`]), never written.
///
/// `owned_len` is for a file this writer alone appends to (an exactly-once sink's
/// pending file), with the length it has written so far: a write that fails half way
/// (a full disk) is cut off again, and the file is cut back to that length before each
/// write, so a retried write never repeats a line. A file shared by shards (an
/// at-least-once sink) passes `None`: cutting it could cut another shard's lines.
pub(crate) async fn append(
    file: &mut Option<File>,
    path: &std::path::Path,
    lines: &[u8],
    delay: Duration,
    owned_len: Option<&mut u64>,
) -> std::io::Result<()> {
    let mut f = match file.take() {
        Some(f) => f,
        None => OpenOptions::new().create(true).append(true).open(path)?,
    };
    let buf = lines.to_vec();
    let path = path.to_path_buf();
    let expect = owned_len.as_deref().copied();
    let (f, result) = glommio::executor()
        .spawn_blocking(move || {
            let r = check_still_at(&f, &path).and_then(|()| {
                if let Some(len) = expect
                    && f.metadata()?.len() != len
                {
                    f.set_len(len)?;
                }
                let r = f.write_all(&buf);
                if let (Err(_), Some(len)) = (&r, expect) {
                    // Undo what part of it went; if this fails too, the next write does.
                    let _ = f.set_len(len);
                }
                r
            });
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            (f, r)
        })
        .await;
    *file = Some(f);
    if result.is_ok()
        && let Some(len) = owned_len
    {
        *len += lines.len() as u64;
    }
    result
}

impl Sink for FileSink {
    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }

    fn write<'a>(&'a mut self, lines: &'a [u8]) -> LocalFuture<'a, std::io::Result<()>> {
        Box::pin(async move { append(&mut self.file, &self.path, lines, self.delay, None).await })
    }

    fn sync(&mut self) -> LocalFuture<'_, std::io::Result<()>> {
        Box::pin(async move {
            let Some(file) = self.file.take() else {
                return Ok(());
            };
            let (file, result) = glommio::executor()
                .spawn_blocking(move || {
                    let r = file.sync_data();
                    (file, r)
                })
                .await;
            self.file = Some(file);
            result
        })
    }
}
