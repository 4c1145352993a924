//! `weir run`: start the shards, wait for the end of input or a signal, stop cleanly.
//!
//! Start-up is all-or-nothing and in this order: lock `data_dir` (and every
//! exactly-once sink's staging folder), bind the admin ports, start the shards (every
//! source, sink and listener, or none), serve the admin API; only then is "weir
//! running" logged. Anything that fails exits 1 with one message naming the folder, the
//! address or the config key, before any checkpoint is written.
//!
//! Shutdown always completes: after SIGINT/SIGTERM the sources stop, the shards drain
//! and take the final checkpoint; if that takes longer than
//! `processing.shutdown_timeout`, the shards are abandoned with an error and exit status
//! 1 (the last complete checkpoint is intact: the next start resumes from it, as after
//! a crash). A second SIGINT or SIGTERM exits at once, with status 1.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use weir_admin::AdminSockets;
use weir_config::Config;
use weir_shard::{Extensions, FolderLocks, Runtime};

/// Runs the engine until every bounded source is finished or SIGINT/SIGTERM arrives.
pub fn run(config: Config) -> anyhow::Result<()> {
    let signalled = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The first signal raises the flag; one that finds it raised exits at once.
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&signalled))
            .context("cannot install the signal handler")?;
        signal_hook::flag::register(signal, Arc::clone(&signalled))
            .context("cannot install the signal handler")?;
    }
    let shards = config.nr_shards();
    let shutdown_timeout = config.processing.shutdown_timeout;
    let pipelines: Vec<String> = config.pipelines.iter().map(|p| p.id.clone()).collect();
    let locks = FolderLocks::acquire(&config)?;
    let sockets = AdminSockets::bind(&config.admin, config.runtime.admin_core)
        .context("cannot start the admin server")?;
    let runtime = Runtime::start_locked(config, Extensions::default(), locks)?;
    let admin = match crate::admin_backend::start(&runtime, sockets) {
        Ok(admin) => admin,
        Err(e) => {
            runtime.request_stop();
            let _ = runtime.wait();
            return Err(e);
        }
    };
    tracing::info!(shards, pipelines = ?pipelines, "weir running");
    let mut stop_asked: Option<Instant> = None;
    while !runtime.is_finished() {
        if stop_asked.is_none() && signalled.load(Ordering::Relaxed) {
            tracing::info!("signal received: stopping sources and draining");
            runtime.request_stop();
            stop_asked = Some(Instant::now());
        }
        if let Some(asked) = stop_asked
            && asked.elapsed() >= shutdown_timeout
        {
            tracing::error!(
                timeout_s = shutdown_timeout.as_secs_f64(),
                "the shards did not stop in time; abandoning them"
            );
            drop(admin);
            return Err(weir_shard::Error::ShutdownTimeout {
                waited: shutdown_timeout,
            }
            .into());
        }
        // A signal is noticed within this; an idle engine's wake-ups stay few.
        std::thread::sleep(Duration::from_millis(50));
    }
    let ended = runtime.wait();
    // The API stays up while the shards drain, and goes once they have.
    drop(admin);
    ended?;
    tracing::info!("weir stopped");
    Ok(())
}
