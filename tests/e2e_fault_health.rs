//! Faults while running that `/health` must report: a TCP source whose append log
//! cannot store events (a full disk), and a sink file removed under a running engine.
//! Neither is written past or around: the source refuses clients with the reason, and
//! a sink whose file is gone stops writing (never at a stale offset); once the file is
//! put back the output is exactly an uninterrupted run's.

mod fault_common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fault_common::*;

#[test]
fn a_tcp_source_that_cannot_store_events_makes_health_fail_with_the_reason() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let Some(disk) = Tmpfs::mount(&dir.path().join("data"), "4m")? else {
        return Ok(());
    };
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let bind = format!("127.0.0.1:{}", free_port()?);
    let config = format!(
        r#"data_dir = "data"
[processing]
parallelism = 1
checkpoint_interval = 0
[storage]
segment_bytes = 65536
spare_segments = 0
[admin]
http = "{http}"
metrics = "127.0.0.1:{}"
[[pipelines]]
id = "tcp"
source = {{ type = "tcp", bind = "{bind}" }}
window = {{ type = "tumbling", size_ms = 1000 }}
sinks = [{{ type = "blackhole" }}]
"#,
        free_port()?
    );
    let mut w = Weir::spawn(dir.path(), &config, "run")?;
    w.wait_running()?;
    wait_health(http, Duration::from_secs(10), |status, _| status == 200)?;
    disk.fill()?;
    // The log needs fresh segments to store these; there is no room for any.
    let load = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["load", "--target", &bind, "--connections", "1"])
        .args(["--rate", "50000", "--duration", "4", "--give-up-after", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let (_, body) = wait_health(http, Duration::from_secs(20), |status, body| {
        status == 503 && body.contains("source_failing")
    })?;
    assert!(body.contains("cannot store events"), "{body}");
    assert!(body.to_lowercase().contains("no space left"), "{body}");
    let out = load.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot store events"),
        "the client is told: {stderr}"
    );
    w.signal("TERM")?;
    w.wait(Duration::from_secs(40))?;
    assert!(!w.log().contains("panicked"), "{}", w.log());
    Ok(())
}

/// A generator at 2,000 events/s for 5 s into one file sink of `delivery`.
fn sink_config(http: SocketAddr, delivery: &str, rate: u64) -> Res<String> {
    Ok(format!(
        r#"data_dir = "data"
[processing]
parallelism = 2
checkpoint_interval = 0.3
[admin]
http = "{http}"
metrics = "127.0.0.1:{}"
[[pipelines]]
id = "clicks"
source = {{ type = "generator", keys = 20, rate = {rate}, total = 10000, partitions = 2, start_ms = 1700000000000 }}
event = {{ key = "user", time = "ts", value = "amount" }}
window = {{ type = "tumbling", size_ms = 100 }}
aggregates = ["count", "sum"]
sinks = [{{ type = "file", path = "out/r.jsonl", delivery = "{delivery}" }}]
"#,
        free_port()?
    ))
}

fn moved_away_and_back(delivery: &str) -> Res<()> {
    let reference = tempfile::tempdir()?;
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let (status, log) = run_to_end(reference.path(), &sink_config(http, delivery, 0)?, "ref")?;
    assert!(status.success(), "{log}");
    let want = sorted_lines(&reference.path().join("out/r.jsonl"));
    assert!(want.len() > 500);

    let dir = tempfile::tempdir()?;
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let mut w = Weir::spawn(dir.path(), &sink_config(http, delivery, 2_000)?, "run")?;
    w.wait_running()?;
    let out = dir.path().join("out/r.jsonl");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(&out).map_or(0, |m| m.len()) == 0 {
        assert!(Instant::now() < deadline, "no output: {}", w.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    // The file goes away under the running engine.
    let away = dir.path().join("r.jsonl.away");
    std::fs::rename(&out, &away)?;
    let (_, body) = wait_health(http, Duration::from_secs(20), |status, _| status == 503)?;
    assert!(
        body.contains("removed or replaced"),
        "/health names the fault: {body}"
    );
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        !out.exists(),
        "the sink does not write a new file at a stale offset"
    );
    // Put back, it is written again, from where it was.
    std::fs::rename(&away, &out)?;
    wait_health(http, Duration::from_secs(30), |status, _| status == 200)?;
    let status = w.wait(Duration::from_secs(60))?;
    assert!(status.success(), "{}", w.log());
    let bytes = std::fs::read(&out)?;
    assert!(!bytes.contains(&0), "no hole of zeros");
    assert_eq!(sorted_lines(&out), want);
    Ok(())
}

#[test]
fn an_exactly_once_sink_file_moved_away_stops_its_commits_until_it_is_back() -> Res<()> {
    moved_away_and_back("exactly_once")
}

#[test]
fn an_at_least_once_sink_file_moved_away_stops_its_writes_until_it_is_back() -> Res<()> {
    moved_away_and_back("at_least_once")
}

#[test]
fn a_restart_refuses_a_sink_file_shorter_than_what_was_committed() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let config = sink_config(http, "exactly_once", 0)?;
    let (status, log) = run_to_end(dir.path(), &config, "first")?;
    assert!(status.success(), "{log}");
    let out = dir.path().join("out/r.jsonl");
    std::fs::remove_file(&out)?;
    let (status, log) = run_to_end(dir.path(), &config, "second")?;
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("is gone, but weir committed"), "{log}");
    assert!(
        log.contains(".r.jsonl.weir to start the file afresh"),
        "{log}"
    );
    assert!(!out.exists(), "nothing was written: {log}");
    Ok(())
}
