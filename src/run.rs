//! `weir run`: start the shards, wait for the end of input or a signal, stop cleanly.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use weir_config::Config;
use weir_shard::Runtime;

/// Runs the engine until every bounded source is finished or SIGINT/SIGTERM arrives.
pub fn run(config: Config) -> anyhow::Result<()> {
    let signalled = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&signalled))
            .context("cannot install the signal handler")?;
    }
    let shards = config.nr_shards();
    let pipelines: Vec<String> = config.pipelines.iter().map(|p| p.id.clone()).collect();
    let runtime = Runtime::start(config)?;
    let admin = match crate::admin_backend::start(&runtime) {
        Ok(admin) => admin,
        Err(e) => {
            runtime.request_stop();
            let _ = runtime.wait();
            return Err(e);
        }
    };
    tracing::info!(shards, pipelines = ?pipelines, "weir running");
    while !runtime.is_finished() {
        if signalled.load(Ordering::Relaxed) {
            tracing::info!("signal received: stopping sources and draining");
            runtime.request_stop();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let ended = runtime.wait();
    // The API stays up while the shards drain, and goes once they have.
    drop(admin);
    ended?;
    tracing::info!("weir stopped");
    Ok(())
}
