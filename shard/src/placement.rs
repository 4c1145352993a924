//! Where shards run, and what the kernel must allow for them.
//!
//! Policy: with a core map (`[runtime] cores`), shard `i` is pinned to `cores[i]`
//! (glommio `Placement::Fixed`), so that its executor, its state and its caches stay on
//! one core and nothing migrates. Without one, `parallelism` shards run unpinned and the
//! kernel places them. The admin thread is pinned only when `admin_core` is set; it is
//! light, and sharing a core with a shard costs the shard little.
//!
//! Each glommio executor registers io_uring rings and a small buffer area that count
//! against the locked-memory limit. Before any executor starts, the soft limit is raised
//! to the hard limit (always allowed) and checked, so that a too-low limit is a clear
//! error at start instead of a failure deep inside io_uring setup.

use glommio::Placement;
use rlimit::Resource;

use crate::error::{Error, Result};

/// Bytes of io_uring buffer memory each shard asks glommio for.
pub const IO_MEMORY_BYTES: usize = 1 << 20;

/// Locked memory a shard needs: its buffer area plus its rings, with margin.
const LOCKED_PER_SHARD_BYTES: u64 = 2 << 20;

/// Checks (and if possible raises) the locked-memory limit for `shards` executors.
pub fn ensure_memlock(shards: usize) -> Result<()> {
    let required = LOCKED_PER_SHARD_BYTES * shards as u64;
    let (soft, hard) = Resource::MEMLOCK.get().unwrap_or((0, 0));
    if soft >= required {
        return Ok(());
    }
    if hard > soft && Resource::MEMLOCK.set(hard, hard).is_ok() && hard >= required {
        return Ok(());
    }
    Err(Error::MemlockTooLow {
        shards,
        required_kib: required / 1024,
        available_kib: soft.max(hard.min(soft)) / 1024,
    })
}

/// The placement of shard `shard`, checking that a pinned core exists.
pub fn placement(cores: Option<&[usize]>, shard: usize) -> Result<Placement> {
    match cores.and_then(|c| c.get(shard)) {
        None => Ok(Placement::Unbound),
        Some(&core) => {
            let available = std::thread::available_parallelism().map_or(1, |n| n.get());
            let online = core_count();
            if core >= online.max(available) {
                return Err(Error::NoSuchCore {
                    core,
                    available: online.max(available),
                });
            }
            Ok(Placement::Fixed(core))
        }
    }
}

fn core_count() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| {
            s.trim()
                .split(',')
                .filter_map(|r| r.rsplit('-').next()?.parse::<usize>().ok())
                .max()
        })
        .map_or(1, |max| max + 1)
}
