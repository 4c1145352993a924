//! A SIGKILL mid-load and a restart with fewer shards: the surviving shard adopts the
//! log of the shard that is gone, so every acknowledged event is still counted exactly
//! once; a later restart with more shards again counts nothing twice.

mod tcp_common;

use std::process::Stdio;
use std::time::Duration;

use tcp_common::*;

#[test]
fn a_restart_with_fewer_shards_after_a_crash_replays_the_log_of_the_missing_shard() -> TestResult {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let mut engine = Engine::start(dir.path(), &config(port, 2, 500, ""), port)?;
    let total = 60_000u64;
    let client = weir()
        .arg("load")
        .arg("--target")
        .arg(format!("127.0.0.1:{port}"))
        .args(["--connections", "4", "--rate", "20000", "--keys", "50"])
        .args(["--total", &total.to_string(), "--give-up-after", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(1500));
    engine.kill();
    let engine = Engine::start(dir.path(), &config(port, 1, 500, ""), port)?;
    let out = client.wait_with_output()?;
    assert!(
        out.status.success(),
        "weir load failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(summary_value(&out.stdout, "acked"), Some(total as f64));
    let seen = wait_for_count(&out_file(dir.path()), total, Duration::from_secs(25))?;
    assert_eq!(seen, total, "results with one shard");
    assert!(engine.terminate()?.success());

    // Back to two shards: nothing is replayed twice, and new events still count.
    let engine = Engine::start(dir.path(), &config(port, 2, 500, ""), port)?;
    let out = load(
        port,
        &["--connections", "2", "--total", "1000", "--keys", "5"],
    )?;
    assert!(out.status.success());
    let seen = wait_for_count(&out_file(dir.path()), total + 1000, Duration::from_secs(25))?;
    assert_eq!(seen, total + 1000);
    assert!(engine.terminate()?.success());
    assert_eq!(counted(&out_file(dir.path()))?, total + 1000);
    Ok(())
}
