//! Why a TCP source cannot start.

use std::path::PathBuf;

/// Errors of opening a TCP source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bind address does not parse or resolve.
    #[error("bind address {bind:?} is not an IP:PORT address")]
    Address {
        /// The configured address.
        bind: String,
    },
    /// The listener could not be bound.
    #[error("cannot listen on {bind}: {reason}")]
    Bind {
        /// The configured address.
        bind: String,
        /// What the OS said.
        reason: String,
    },
    /// An append log could not be opened, recovered or scanned.
    #[error("append log {}: {source}", dir.display())]
    Log {
        /// The log's folder.
        dir: PathBuf,
        /// What the log said.
        #[source]
        source: weir_storage::Error,
    },
    /// The folder of the pipeline's logs could not be listed.
    #[error("cannot list {}: {source}", dir.display())]
    List {
        /// The folder.
        dir: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}
