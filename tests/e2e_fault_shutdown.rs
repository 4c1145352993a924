//! Shutdown always completes: shards that do not drain within
//! `processing.shutdown_timeout` are abandoned with an error and exit status 1, and the
//! next start resumes from the last complete checkpoint with exact output; a second
//! SIGINT exits at once.

mod fault_common;

use std::time::{Duration, Instant};

use fault_common::*;

/// 20,000 events at `rate`/s into an exactly-once sink that pauses `delay_ms` after
/// each write (a slow disk).
fn config(rate: u64, delay_ms: u64) -> Res<String> {
    Ok(format!(
        r#"data_dir = "data"
[processing]
parallelism = 2
checkpoint_interval = 0.3
shutdown_timeout = 1.5
[admin]
http = "127.0.0.1:{}"
metrics = "127.0.0.1:{}"
[[pipelines]]
id = "clicks"
source = {{ type = "generator", keys = 20, rate = {rate}, total = 20000, partitions = 2, start_ms = 1700000000000 }}
event = {{ key = "user", time = "ts", value = "amount" }}
window = {{ type = "tumbling", size_ms = 100 }}
watermark = {{ delay_ms = 0 }}
aggregates = ["count", "sum"]
sinks = [{{ type = "file", path = "out/r.jsonl", delay_ms = {delay_ms} }}]
"#,
        free_port()?,
        free_port()?
    ))
}

#[test]
fn shards_that_do_not_drain_in_time_are_abandoned_and_the_restart_is_exact() -> Res<()> {
    let reference = tempfile::tempdir()?;
    let (status, log) = run_to_end(reference.path(), &config(0, 0)?, "reference")?;
    assert!(status.success(), "{log}");
    let want = sorted_lines(&reference.path().join("out/r.jsonl"));
    assert!(want.len() > 1000);

    let dir = tempfile::tempdir()?;
    let mut w = Weir::spawn(dir.path(), &config(4_000, 10_000)?, "slow")?;
    w.wait_running()?;
    std::thread::sleep(Duration::from_millis(1500));
    w.signal("TERM")?;
    let asked = Instant::now();
    let status = w.wait(Duration::from_secs(30))?;
    let took = asked.elapsed();
    let log = w.log();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(took < Duration::from_secs(6), "bounded: {took:?}");
    assert!(log.contains("did not stop within 1.5s"), "says why: {log}");
    assert!(log.contains("last complete checkpoint is intact"), "{log}");
    // The next start resumes from the last complete checkpoint, as after a crash.
    let (status, log) = run_to_end(dir.path(), &config(0, 0)?, "restart")?;
    assert!(status.success(), "{log}");
    assert_eq!(sorted_lines(&dir.path().join("out/r.jsonl")), want);
    Ok(())
}

#[test]
fn a_second_sigint_exits_at_once() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let mut w = Weir::spawn(dir.path(), &config(4_000, 10_000)?, "slow")?;
    w.wait_running()?;
    std::thread::sleep(Duration::from_millis(500));
    w.signal("INT")?;
    std::thread::sleep(Duration::from_millis(200));
    assert!(w.child.try_wait()?.is_none(), "the first signal drains");
    w.signal("INT")?;
    let asked = Instant::now();
    let status = w.wait(Duration::from_secs(10))?;
    assert_eq!(status.code(), Some(1), "{}", w.log());
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    Ok(())
}
