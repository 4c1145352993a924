//! A full disk under an exactly-once file sink: its circuit opens, commits fail and are
//! retried in order, `/health` says so, and once space is back the output is exactly an
//! uninterrupted run's; also when weir is killed while a commit is being retried.
//!
//! The disk is a small tmpfs the test mounts (it needs root; elsewhere the tests print
//! why they skip).

mod fault_common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use fault_common::*;

const EVENTS: u64 = 30_000;

/// A generator at `rate` events/s (0: flat out) with a fixed start, so that every run
/// computes the same windows; checkpoints every 0.3 s.
fn config(http: SocketAddr, rate: u64) -> Res<String> {
    Ok(format!(
        r#"data_dir = "data"
[processing]
parallelism = 2
checkpoint_interval = 0.3
shutdown_timeout = 20
[admin]
http = "{http}"
metrics = "127.0.0.1:{}"
[[pipelines]]
id = "clicks"
source = {{ type = "generator", keys = 20, rate = {rate}, total = {EVENTS}, partitions = 2, start_ms = 1700000000000 }}
event = {{ key = "user", time = "ts", value = "amount" }}
window = {{ type = "tumbling", size_ms = 100 }}
aggregates = ["count", "sum", "max"]
sinks = [{{ type = "file", path = "out/r.jsonl" }}]
"#,
        free_port()?
    ))
}

/// The output of an uninterrupted run, sorted.
fn reference() -> Res<Vec<String>> {
    let dir = tempfile::tempdir()?;
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let (status, log) = run_to_end(dir.path(), &config(http, 0)?, "reference")?;
    assert!(status.success(), "{log}");
    let lines = sorted_lines(&dir.path().join("out/r.jsonl"));
    assert!(lines.len() > 1000, "{} lines", lines.len());
    Ok(lines)
}

/// `out/r.jsonl` as a symbolic link to a file on the tmpfs: the staging folder (next to
/// the link) stays on the roomy disk, so a full tmpfs fails exactly the commits.
fn link_output(dir: &Path, disk: &Tmpfs) -> Res<()> {
    std::fs::create_dir_all(dir.join("out"))?;
    std::os::unix::fs::symlink(disk.path.join("r.jsonl"), dir.join("out/r.jsonl"))?;
    Ok(())
}

#[test]
fn a_disk_that_fills_and_frees_under_the_sink_loses_no_window() -> Res<()> {
    let want = reference()?;
    let dir = tempfile::tempdir()?;
    let Some(disk) = Tmpfs::mount(&dir.path().join("out"), "2m")? else {
        return Ok(());
    };
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let mut w = Weir::spawn(dir.path(), &config(http, 5_000)?, "run")?;
    w.wait_running()?;
    std::thread::sleep(Duration::from_millis(1500));
    // The disk fills: pending output and commits fail, /health says why.
    let filler = disk.fill()?;
    let (_, body) = wait_health(http, Duration::from_secs(20), |status, _| status == 503)?;
    assert!(
        body.contains("No space left on device"),
        "the reason is given: {body}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    // Space is freed (the tmpfs grows, as a disk an operator cleaned): all recovers.
    disk.resize("64m")?;
    std::fs::remove_file(filler)?;
    wait_health(http, Duration::from_secs(30), |status, _| status == 200)?;
    let status = w.wait(Duration::from_secs(90))?;
    assert!(status.success(), "{}", w.log());
    let got = sorted_lines(&dir.path().join("out/r.jsonl"));
    assert_eq!(got.len(), want.len(), "no window missing, none twice");
    assert_eq!(got, want);
    Ok(())
}

/// An engine whose sink commits fail on a full tmpfs, with `/health` saying so.
struct Stuck {
    dir: tempfile::TempDir,
    _disk: Tmpfs,
    http: SocketAddr,
    w: Weir,
    filler: std::path::PathBuf,
    body: String,
}

/// Starts the engine with its sink file on a 1 MiB tmpfs, lets it commit for 1.5 s,
/// fills the tmpfs and waits until `/health` reports the commit pending. `None` where
/// no tmpfs can be mounted.
fn commit_stuck_on_a_full_disk() -> Res<Option<Stuck>> {
    let dir = tempfile::tempdir()?;
    let Some(disk) = Tmpfs::mount(&dir.path().join("disk"), "1m")? else {
        return Ok(None);
    };
    link_output(dir.path(), &disk)?;
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let w = Weir::spawn(dir.path(), &config(http, 5_000)?, "run")?;
    w.wait_running()?;
    std::thread::sleep(Duration::from_millis(1500));
    let filler = disk.fill()?;
    let (_, body) = wait_health(http, Duration::from_secs(20), |status, body| {
        status == 503 && body.contains("commit_pending")
    })?;
    Ok(Some(Stuck {
        dir,
        _disk: disk,
        http,
        w,
        filler,
        body,
    }))
}

#[test]
fn a_failed_commit_is_retried_in_order_and_reported_until_it_succeeds() -> Res<()> {
    let want = reference()?;
    let Some(stuck) = commit_stuck_on_a_full_disk()? else {
        return Ok(());
    };
    let Stuck {
        dir,
        _disk,
        http,
        mut w,
        filler,
        body,
    } = stuck;
    assert!(body.contains("No space left on device"), "{body}");
    assert!(body.contains("not committed (retrying)"), "{body}");
    // Checkpoints go on meanwhile, and none of their output overtakes the stuck one.
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::remove_file(filler)?;
    wait_health(http, Duration::from_secs(30), |status, _| status == 200)?;
    let status = w.wait(Duration::from_secs(90))?;
    assert!(status.success(), "{}", w.log());
    assert!(
        w.log().contains("sink output committed after retrying"),
        "{}",
        w.log()
    );
    assert_eq!(sorted_lines(&dir.path().join("out/r.jsonl")), want);
    Ok(())
}

#[test]
fn a_kill_while_a_commit_is_retried_then_a_restart_gives_exact_output() -> Res<()> {
    let want = reference()?;
    let Some(stuck) = commit_stuck_on_a_full_disk()? else {
        return Ok(());
    };
    let Stuck {
        dir,
        _disk,
        mut w,
        filler,
        ..
    } = stuck;
    // Let later checkpoints complete uncommitted behind it, then kill.
    std::thread::sleep(Duration::from_millis(1000));
    w.kill9()?;
    std::fs::remove_file(filler)?;
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let (status, log) = run_to_end(dir.path(), &config(http, 0)?, "restart")?;
    assert!(status.success(), "{log}");
    assert!(log.contains("redoing unfinished sink commits"), "{log}");
    assert_eq!(sorted_lines(&dir.path().join("out/r.jsonl")), want);
    Ok(())
}
