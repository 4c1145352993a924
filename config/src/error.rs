//! Configuration errors: every one names the file, the key path and the problem.

use std::fmt;
use std::path::PathBuf;

/// A configuration that cannot be used, with the place that is wrong.
///
/// Displays as `FILE: KEY.PATH: problem`, e.g.
/// `config/weir.toml: pipelines[1].window.size_ms: must be > 0`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read.
    #[error("{file}: cannot read: {reason}")]
    Read {
        /// The config file.
        file: PathBuf,
        /// What the operating system said.
        reason: String,
    },
    /// The file is not valid TOML.
    #[error("{file}: line {line}, column {column}: {message}")]
    Syntax {
        /// The config file.
        file: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// A key has a wrong type, is unknown, is missing, or has a value out of range.
    #[error("{file}: {key}: {message}")]
    Invalid {
        /// The config file.
        file: PathBuf,
        /// The key path, as `pipelines[1].window.size_ms`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

/// The result of loading or validating a configuration.
pub type Result<T> = std::result::Result<T, Error>;

/// A problem found by validation, before the file name is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub key: String,
    pub message: String,
}

impl Problem {
    pub(crate) fn new(key: impl fmt::Display, message: impl fmt::Display) -> Self {
        Self {
            key: key.to_string(),
            message: message.to_string(),
        }
    }

    pub(crate) fn in_file(self, file: PathBuf) -> Error {
        Error::Invalid {
            file,
            key: self.key,
            message: self.message,
        }
    }
}

/// 1-based line and column of a byte offset in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}
