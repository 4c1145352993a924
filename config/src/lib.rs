//! weir-config: the TOML configuration of weir — its types, defaults and validation.
//!
//! It reads a document, rejects unknown keys, fills in defaults and checks every value,
//! so the rest of weir only ever sees a [`Config`] that makes sense and can run: every
//! number is bounded so that nothing the engine builds from it overflows or allocates
//! without bound. It does no I/O beyond reading the file, resolving the paths of the
//! files it names (two sinks on one file are an error, however the paths are spelt; a
//! folder where a file must be is one too), and, in [`check_host`], asking which cores
//! the process may run on; it knows nothing of how the engine runs.
//!
//! Every error names the file, the key path and the problem:
//!
//! ```
//! let text = r#"
//! [[pipelines]]
//! id = "clicks"
//! source = { type = "generator", total = 10 }
//! window = { type = "tumbling", size_ms = 0 }
//! sinks = [{ type = "console" }]
//! "#;
//! let err = weir_config::from_str(text, "weir.toml").unwrap_err();
//! assert_eq!(err.to_string(), "weir.toml: pipelines[0].window.size_ms: must be > 0 (got 0)");
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod model;
mod paths;
mod raw;
mod validate;

use std::path::{Path, PathBuf};

pub use error::{Error, Result};
pub use model::*;
pub use paths::normalise;
pub use validate::MAX_MS;

use error::{Problem, line_column};

/// Reads and validates the config file at `path`.
pub fn load(path: impl AsRef<Path>) -> Result<Config> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::Read {
        file: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    from_str(&text, path)
}

/// What the command line sets over a config file: one file serves every instance of an
/// application (`weir run --config PATH --instance NAME --data-dir D --http A
/// --metrics A`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `instance`.
    pub instance: Option<String>,
    /// `data_dir`.
    pub data_dir: Option<String>,
    /// `admin.http`.
    pub http: Option<String>,
    /// `admin.metrics`.
    pub metrics: Option<String>,
}

impl Overrides {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Reads and validates a config file with command-line overrides applied as if they
/// were written in it (every check, such as clashing paths or addresses, sees them).
pub fn load_with(path: impl AsRef<Path>, overrides: &Overrides) -> Result<Config> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::Read {
        file: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if overrides.is_empty() {
        return from_str(&text, path);
    }
    // A syntax error is reported against the file as written.
    let Ok(mut doc) = text.parse::<toml::Table>() else {
        return from_str(&text, path);
    };
    let text_of = |v: &Option<String>| v.clone().map(toml::Value::String);
    if let Some(v) = text_of(&overrides.instance) {
        doc.insert("instance".into(), v);
    }
    if let Some(v) = text_of(&overrides.data_dir) {
        doc.insert("data_dir".into(), v);
    }
    for (key, value) in [("http", &overrides.http), ("metrics", &overrides.metrics)] {
        let Some(v) = text_of(value) else {
            continue;
        };
        let admin = doc
            .entry("admin")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match admin {
            toml::Value::Table(t) => {
                t.insert(key.into(), v);
            }
            _ => return from_str(&text, path),
        }
    }
    let merged = toml::to_string(&doc).map_err(|e| Error::Read {
        file: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    from_str(&merged, path)
}

/// Checks what only the host that runs `config` can tell (read from `file`, which names
/// it in errors): that every core of `runtime.cores` and `runtime.admin_core` is one
/// this process may run on. `weir check` and `weir run` call it after loading, so that
/// a config for another machine still loads (and its own checks run) anywhere.
pub fn check_host(config: &Config, file: impl AsRef<Path>) -> Result<()> {
    validate::check_host(config).map_err(|p| p.in_file(file.as_ref().to_path_buf()))
}

/// Validates a config document; `file` names it in errors.
pub fn from_str(text: &str, file: impl AsRef<Path>) -> Result<Config> {
    let file: PathBuf = file.as_ref().to_path_buf();
    let syntax = |e: toml::de::Error, file: PathBuf| {
        let (line, column) = e
            .span()
            .map_or((1, 1), |span| line_column(text, span.start));
        Error::Syntax {
            file,
            line,
            column,
            message: e.message().trim().to_owned(),
        }
    };
    let de = toml::Deserializer::parse(text).map_err(|e| syntax(e, file.clone()))?;
    let raw: raw::RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.message().trim().to_owned();
        if key == "." {
            syntax(inner, file.clone())
        } else {
            Problem::new(key, message).in_file(file.clone())
        }
    })?;
    validate::validate(raw).map_err(|p| p.in_file(file))
}
