//! Start-up faults: two sinks on one file, two engines on one `data_dir`, a TCP port
//! taken by another process or another engine, spare segments that cannot be made. Each
//! stops `weir check` or `weir run` at once with one message naming the key or folder,
//! before anything is written, and nothing hangs.

mod fault_common;

use std::time::{Duration, Instant};

use fault_common::*;

fn generator(total: u64, rate: u64) -> String {
    format!(
        r#"
[[pipelines]]
id = "clicks"
source = {{ type = "generator", keys = 20, rate = {rate}, total = {total}, partitions = 2, start_ms = 1700000000000 }}
event = {{ key = "user", time = "ts", value = "amount" }}
window = {{ type = "tumbling", size_ms = 100 }}
aggregates = ["count", "sum"]
sinks = [{{ type = "file", path = "out/r.jsonl" }}]
"#
    )
}

fn head(data_dir: &str, checkpoint: f64) -> Res<String> {
    Ok(format!(
        r#"data_dir = "{data_dir}"
[processing]
parallelism = 2
checkpoint_interval = {checkpoint}
[admin]
http = "127.0.0.1:{}"
metrics = "127.0.0.1:{}"
"#,
        free_port()?,
        free_port()?
    ))
}

fn weir_check(dir: &std::path::Path, config: &str) -> Res<std::process::Output> {
    let path = dir.join("check.toml");
    std::fs::write(&path, config)?;
    Ok(std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["check", "--config"])
        .arg(&path)
        .current_dir(dir)
        .output()?)
}

#[test]
fn two_sinks_on_one_file_are_a_config_error_in_check_and_run() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let config = format!("{}{}", head("data", 0.0)?, generator(1000, 0)).replace(
        r#"sinks = [{ type = "file", path = "out/r.jsonl" }]"#,
        r#"sinks = [{ type = "file", path = "out/r.jsonl" }, { type = "file", path = "./out/../out/r.jsonl" }]"#,
    );
    let out = weir_check(dir.path(), &config)?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("pipelines[0].sinks[1].path"), "{err}");
    assert!(err.contains("pipelines[0].sinks[0].path"), "{err}");
    let (status, log) = run_to_end(dir.path(), &config, "run")?;
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("pipelines[0].sinks[1].path"), "{log}");
    assert!(!dir.path().join("out").exists(), "nothing was written");
    assert!(!dir.path().join("data").exists(), "nothing was written");
    Ok(())
}

#[test]
fn a_second_engine_on_one_data_dir_exits_at_once_naming_the_folder_and_the_holder() -> Res<()> {
    let dir = tempfile::tempdir()?;
    // The first runs long enough (20,000 events at 5,000/s) for the second to try.
    let first_config = format!("{}{}", head("data", 0.5)?, generator(20_000, 5_000));
    let mut first = Weir::spawn(dir.path(), &first_config, "first")?;
    first.wait_running()?;
    // Same data_dir, other admin ports, another sink file: refused by the data_dir lock.
    let second_config = format!("{}{}", head("data", 0.5)?, generator(20_000, 5_000))
        .replace("out/r.jsonl", "out/other.jsonl");
    let started = Instant::now();
    let (status, log) = run_to_end(dir.path(), &second_config, "second")?;
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(started.elapsed() < Duration::from_secs(10), "at once");
    let pid = first.child.id();
    assert!(
        log.contains("data is in use by another weir process"),
        "{log}"
    );
    assert!(log.contains(&format!("(pid {pid})")), "{log}");
    assert!(!log.contains("weir running"), "{log}");
    assert!(!log.contains("checkpoint"), "it wrote no checkpoint: {log}");
    // Another data_dir, the same exactly-once sink file: refused by the sink's lock.
    let third_config = format!("{}{}", head("data3", 0.5)?, generator(20_000, 5_000));
    let (status, log) = run_to_end(dir.path(), &third_config, "third")?;
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains(".r.jsonl.weir is in use by another weir process"),
        "{log}"
    );
    assert!(log.contains(&format!("(pid {pid})")), "{log}");
    assert!(!dir.path().join("data3/checkpoints").exists(), "{log}");
    // The first engine was not disturbed: its output is an uninterrupted run's.
    let status = first.wait(Duration::from_secs(60))?;
    assert!(status.success(), "{}", first.log());
    let reference = tempfile::tempdir()?;
    let (status, log) = run_to_end(
        reference.path(),
        &format!("{}{}", head("data", 0.0)?, generator(20_000, 0)),
        "reference",
    )?;
    assert!(status.success(), "{log}");
    let want = sorted_lines(&reference.path().join("out/r.jsonl"));
    assert!(!want.is_empty());
    assert_eq!(sorted_lines(&dir.path().join("out/r.jsonl")), want);
    Ok(())
}

fn tcp_pipeline(bind: &str) -> String {
    format!(
        r#"
[[pipelines]]
id = "tcp"
source = {{ type = "tcp", bind = "{bind}" }}
window = {{ type = "tumbling", size_ms = 1000 }}
sinks = [{{ type = "file", path = "out/tcp.jsonl" }}]
"#
    )
}

#[test]
fn a_tcp_port_taken_by_another_process_stops_weir_run_before_it_runs() -> Res<()> {
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let bind = taken.local_addr()?.to_string();
    let dir = tempfile::tempdir()?;
    let config = format!("{}{}", head("data", 0.5)?, tcp_pipeline(&bind));
    let (status, log) = run_to_end(dir.path(), &config, "run")?;
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!("pipelines[0].source.bind: {bind}: address in use")),
        "{log}"
    );
    assert!(!log.contains("weir running"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(no_manifest(&dir.path().join("data/checkpoints")), "{log}");
    drop(taken);
    Ok(())
}

fn no_manifest(checkpoints: &std::path::Path) -> bool {
    walk(checkpoints)
        .iter()
        .all(|p| !p.ends_with("MANIFEST.json"))
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn two_engines_never_share_a_tcp_port() -> Res<()> {
    let bind = format!("127.0.0.1:{}", free_port()?);
    let dir = tempfile::tempdir()?;
    let mut first = Weir::spawn(
        dir.path(),
        &format!("{}{}", head("data1", 0.5)?, tcp_pipeline(&bind)),
        "first",
    )?;
    first.wait_running()?;
    let config = format!("{}{}", head("data2", 0.5)?, tcp_pipeline(&bind))
        .replace("out/tcp.jsonl", "out/tcp2.jsonl");
    let (status, log) = run_to_end(dir.path(), &config, "second")?;
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!("pipelines[0].source.bind: {bind}: address in use")),
        "{log}"
    );
    assert!(!log.contains("weir running"), "{log}");
    // The first still takes every connection, and stops cleanly on SIGTERM.
    let conn = std::net::TcpStream::connect(&bind)?;
    drop(conn);
    first.signal("TERM")?;
    let status = first.wait(Duration::from_secs(30))?;
    assert!(status.success(), "{}", first.log());
    Ok(())
}

#[test]
fn spare_segments_that_do_not_fit_stop_weir_run_naming_the_source() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let Some(_disk) = Tmpfs::mount(&dir.path().join("data"), "1m")? else {
        return Ok(());
    };
    let config = format!(
        "{}[storage]\nsegment_bytes = 1048576\nspare_segments = 4\n{}",
        head("data", 0.5)?,
        tcp_pipeline(&format!("127.0.0.1:{}", free_port()?))
    );
    let started = Instant::now();
    let (status, log) = run_to_end(dir.path(), &config, "run")?;
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(started.elapsed() < Duration::from_secs(20), "{log}");
    assert!(log.contains("pipelines[0].source: "), "{log}");
    assert!(log.to_lowercase().contains("no space left"), "{log}");
    assert!(!log.contains("weir running"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    Ok(())
}
