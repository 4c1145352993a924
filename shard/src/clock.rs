//! The wall clock in ms since the Unix epoch: the one place the runtime reads it.
//!
//! Processing time, heartbeats, idleness and the TCP producer registry's retention all
//! use it; the pure core and the engine never do (they are given "now" as a number).

use std::time::{SystemTime, UNIX_EPOCH};

/// Ms since the Unix epoch (0 for a clock set before it).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// [`unix_ms`] as a signed number, for event-time arithmetic.
pub fn unix_ms_i64() -> i64 {
    i64::try_from(unix_ms()).unwrap_or(i64::MAX)
}
