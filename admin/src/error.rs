//! Errors of starting the admin server: each names the config key that caused it.
//!
//! Once the server runs, nothing it does is an [`Error`]: a bad request is an HTTP answer,
//! and a failed write to a client is that client's problem (logged, not propagated).

use crate::route::Listener;

/// The admin server could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A listen address is not `IP:PORT`.
    #[error("admin.{listener}: {address:?} is not an IP:PORT address")]
    Address {
        /// Which listener.
        listener: Listener,
        /// The address as configured.
        address: String,
    },
    /// A listen address could not be bound (in use, not local, not permitted).
    #[error("admin.{listener}: cannot listen on {address}: {reason}")]
    Bind {
        /// Which listener.
        listener: Listener,
        /// The address as configured.
        address: String,
        /// What the operating system said.
        reason: String,
    },
    /// The admin core is not one of this machine's cores.
    #[error("runtime.admin_core: core {core} does not exist (this machine has {available:?})")]
    NoSuchCore {
        /// The core asked for.
        core: usize,
        /// The cores that exist.
        available: Vec<usize>,
    },
    /// The operating system refused to pin the admin thread.
    #[error("runtime.admin_core: cannot pin the admin thread to core {core}")]
    Pin {
        /// The core asked for.
        core: usize,
    },
    /// The admin thread could not be spawned.
    #[error("cannot start the admin {listener} thread: {reason}")]
    Spawn {
        /// Which listener.
        listener: Listener,
        /// What the operating system said.
        reason: String,
    },
}

/// The result of starting the admin server.
pub type Result<T> = std::result::Result<T, Error>;
