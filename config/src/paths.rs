//! Files that two writers must never share: every file sink, late sink and dead-letter
//! file of every pipeline is a different file, compared after normalising the paths.
//!
//! Two sinks on one file would truncate and overwrite each other's output (an
//! exactly-once sink cuts its file back to what it committed), so a clash is a config
//! error that names both keys. Paths are compared as the engine will open them: relative
//! to the working folder, with `.` and `..` resolved and the symbolic links of every
//! part that exists already followed.

use std::path::{Component, Path, PathBuf};

use crate::error::Problem;
use crate::model::{Pipeline, Sink};

/// The file a path names, as the engine would open it from the working folder `cwd`.
///
/// Components are walked one by one: each prefix that exists is canonicalised (so a
/// symbolic link, and a `..` after it, lead where the kernel would go), and the rest,
/// which does not exist yet, is joined lexically.
pub fn normalise(path: &Path, cwd: &Path) -> PathBuf {
    let mut out = if path.is_absolute() {
        PathBuf::new()
    } else {
        std::fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_path_buf())
    };
    let mut exists = true;
    for part in path.components() {
        match part {
            Component::Prefix(p) => out.push(p.as_os_str()),
            Component::RootDir => out.push(Component::RootDir.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => {
                out.push(name);
                if exists {
                    match std::fs::canonicalize(&out) {
                        Ok(real) => out = real,
                        Err(_) => exists = false,
                    }
                }
            }
        }
    }
    out
}

/// Every file the pipelines write, with the key that names it.
fn written_files(pipelines: &[Pipeline], data_dir: &Path) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    for (i, p) in pipelines.iter().enumerate() {
        let at = format!("pipelines[{i}]");
        for (j, s) in p.sinks.iter().enumerate() {
            if let Sink::File { path, .. } = s {
                files.push((format!("{at}.sinks[{j}].path"), PathBuf::from(path)));
            }
        }
        if let Some(Sink::File { path, .. }) = &p.late_sink {
            files.push((format!("{at}.late_sink.path"), PathBuf::from(path)));
        }
        files.push((
            format!("{at}.id (its dead-letter file)"),
            data_dir.join("dead-letter").join(format!("{}.jsonl", p.id)),
        ));
    }
    files
}

/// Fails on the first file written by two sinks (or a sink and a dead-letter file).
pub(crate) fn check_distinct_files(
    pipelines: &[Pipeline],
    data_dir: &Path,
    cwd: &Path,
) -> Result<(), Problem> {
    let mut seen: Vec<(String, PathBuf)> = Vec::new();
    for (key, path) in written_files(pipelines, data_dir) {
        let real = normalise(&path, cwd);
        if let Some((first, _)) = seen.iter().find(|(_, p)| *p == real) {
            return Err(Problem::new(
                key.trim_end_matches(" (its dead-letter file)"),
                format!(
                    "{} is the same file as {first} ({}): two sinks must not share a file",
                    path.display(),
                    real.display()
                ),
            ));
        }
        seen.push((key, real));
    }
    Ok(())
}

/// Fails on a path the engine could not open as it must: `data_dir` that is not a
/// folder, a file sink (or its folder) that is a folder or a file in the wrong place.
pub(crate) fn check_kinds(
    pipelines: &[Pipeline],
    data_dir: &Path,
    cwd: &Path,
) -> Result<(), Problem> {
    let real = normalise(data_dir, cwd);
    if let Some(file) = not_a_folder(&real) {
        let problem = if file == real {
            format!("{} is a file, not a folder", data_dir.display())
        } else {
            format!("cannot be a folder: {} is a file", file.display())
        };
        return Err(Problem::new("data_dir", problem));
    }
    for (key, path) in written_files(pipelines, data_dir) {
        let real = normalise(&path, cwd);
        let key = key.trim_end_matches(" (its dead-letter file)");
        if real.is_dir() {
            return Err(Problem::new(
                key,
                format!("{} is a folder, not a file", path.display()),
            ));
        }
        if let Some(parent) = real.parent()
            && let Some(file) = not_a_folder(parent)
        {
            return Err(Problem::new(
                key,
                format!(
                    "cannot create {}: {} is a file, not a folder",
                    path.display(),
                    file.display()
                ),
            ));
        }
    }
    Ok(())
}

/// The file that keeps `path`, which must be (or become) a folder, from being one: the
/// path itself or the first part of it that exists, when that is not a folder.
fn not_a_folder(path: &Path) -> Option<PathBuf> {
    let mut at = Some(path);
    while let Some(p) = at {
        if let Ok(meta) = std::fs::metadata(p) {
            return (!meta.is_dir()).then(|| p.to_path_buf());
        }
        at = p.parent();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_file_normalise_alike() -> std::io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let cwd = tmp.path();
        std::fs::create_dir(cwd.join("out"))?;
        std::os::unix::fs::symlink(cwd.join("out"), cwd.join("link"))?;
        let want = normalise(Path::new("out/p.jsonl"), cwd);
        for spelling in [
            "./out/p.jsonl",
            "out/./p.jsonl",
            "out/../out/p.jsonl",
            "link/p.jsonl",
            "link/../out/p.jsonl",
        ] {
            assert_eq!(normalise(Path::new(spelling), cwd), want, "{spelling}");
        }
        let absolute = cwd.join("out/p.jsonl");
        assert_eq!(normalise(&absolute, Path::new("/")), want);
        assert_ne!(normalise(Path::new("out/q.jsonl"), cwd), want);
        // A folder that does not exist yet is joined as written.
        assert_eq!(
            normalise(Path::new("new/./x/../p.jsonl"), cwd),
            normalise(Path::new("new/p.jsonl"), cwd)
        );
        Ok(())
    }
}
