//! SIGKILL of the engine in the middle of a load: after a restart, the reconnecting
//! client resends what was not acknowledged, the engine drops what it already had, and
//! every event ends up counted exactly once.

mod tcp_common;

use std::process::Stdio;
use std::time::Duration;

use tcp_common::*;

#[test]
fn a_sigkill_mid_load_and_a_restart_still_count_every_acknowledged_event_exactly_once() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let config = config(port, 2, 500, "");
    let mut engine = Engine::start(dir.path(), &config, port)?;
    let total = 120_000u64;
    let client = weir()
        .arg("load")
        .arg("--target")
        .arg(format!("127.0.0.1:{port}"))
        .args(["--connections", "4", "--rate", "30000", "--keys", "50"])
        .args(["--total", &total.to_string(), "--give-up-after", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(1500));
    engine.kill();
    std::thread::sleep(Duration::from_millis(300));
    let engine = Engine::start(dir.path(), &config, port)?;
    let out = client.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "weir load failed: {stderr}");
    assert_eq!(summary_value(&out.stdout, "acked"), Some(total as f64));
    assert!(
        summary_value(&out.stdout, "reconnects").is_some_and(|r| r >= 1.0),
        "the client never had to reconnect: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let seen = wait_for_count(&out_file(dir.path()), total, Duration::from_secs(25))?;
    assert_eq!(seen, total, "results before the stop");
    let status = engine.terminate()?;
    assert!(status.success(), "weir exited with {status}");
    assert_eq!(
        counted(&out_file(dir.path()))?,
        total,
        "results after the stop"
    );
    Ok(())
}
