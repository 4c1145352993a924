//! One engine per folder: an exclusive lock on `data_dir` and on the staging folder of
//! every exactly-once sink file, taken before anything in them is read or written.
//!
//! Two engines on one `data_dir` would restore the same checkpoint and then overwrite
//! each other's checkpoints and logs; two engines (with different `data_dir`s) on one
//! exactly-once sink file would cut each other's output back to what each committed.
//! The lock is `flock(2)` on a file `weir.lock` in the folder, held for the life of the
//! process (the kernel drops it when the process ends, however it ends, so a crash
//! leaves no stale lock). The holder writes its pid into the file, so that the engine
//! refused can name it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use weir_config::Config;

use crate::error::{Error, Result};
use crate::sink::transaction;

/// The name of the lock file inside a locked folder.
pub const LOCK_FILE: &str = "weir.lock";

/// The folders this engine owns, locked until it is dropped.
#[derive(Debug)]
pub struct FolderLocks {
    held: Vec<(PathBuf, File)>,
}

impl FolderLocks {
    /// Locks `data_dir` (creating it) and the staging folder of every exactly-once
    /// sink file of `config`; fails at once, naming the folder and the holder's pid,
    /// when another process holds one of them.
    pub fn acquire(config: &Config) -> Result<Self> {
        let mut locks = Self { held: Vec::new() };
        locks.lock(&config.data_dir, "data_dir")?;
        for file in crate::checkpoint::exactly_once_files(config) {
            locks.lock(&transaction::staging_dir(&file), "sink")?;
        }
        Ok(locks)
    }

    /// The folders held.
    pub fn folders(&self) -> impl Iterator<Item = &Path> {
        self.held.iter().map(|(p, _)| p.as_path())
    }

    fn lock(&mut self, dir: &Path, what: &'static str) -> Result<()> {
        let io = |source| Error::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(Error::Locked {
                    folder: dir.to_path_buf(),
                    what,
                    holder: text.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(source)) => return Err(Error::Io { path, source }),
        }
        let written = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()));
        written.map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        self.held.push((dir.to_path_buf(), file));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(data_dir: &Path, sink: &Path) -> std::result::Result<Config, weir_config::Error> {
        weir_config::from_str(
            &format!(
                r#"data_dir = "{}"
[[pipelines]]
id = "p"
source = {{ type = "generator", total = 1 }}
window = {{ type = "tumbling", size_ms = 10 }}
sinks = [{{ type = "file", path = "{}" }}]
"#,
                data_dir.display(),
                sink.display()
            ),
            "w.toml",
        )
    }

    #[test]
    fn a_second_holder_is_refused_with_the_folder_and_the_first_pid() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let sink = tmp.path().join("out/r.jsonl");
        let first = FolderLocks::acquire(&config(&tmp.path().join("a"), &sink)?)?;
        assert_eq!(first.folders().count(), 2);
        // Another data_dir, same data_dir: both refused while the first holds its locks.
        for data_dir in ["b", "a"] {
            let other = config(&tmp.path().join(data_dir), &tmp.path().join("out/q.jsonl"))?;
            let same_sink = config(&tmp.path().join(data_dir), &sink)?;
            let refused = if data_dir == "a" { other } else { same_sink };
            match FolderLocks::acquire(&refused) {
                Err(Error::Locked { holder, .. }) => {
                    assert_eq!(holder, Some(std::process::id()));
                }
                other => panic!("expected a lock error, got {other:?}"),
            }
        }
        drop(first);
        FolderLocks::acquire(&config(&tmp.path().join("a"), &sink)?)?;
        Ok(())
    }
}
