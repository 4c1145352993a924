//! Exactly-once across stops, restarts with another shard count, a corrupted latest
//! checkpoint, and a crash between a checkpoint's manifest and its sink commit: the
//! output file always ends up with exactly the lines of an uninterrupted run.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Writes 4 input files; returns every event.
fn input(dir: &Path, per_file: usize) -> Result<Vec<In>, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir.join("in"))?;
    let mut rng = Rng(11);
    let mut all = Vec::new();
    for p in 0..4 {
        let events = partition_events(&mut rng, per_file, 300, 1_700_000_000_000, 40);
        write_jsonl(&dir.join(format!("in/p{p}.jsonl")), &events, &[])?;
        all.extend(events);
    }
    Ok(all)
}

fn config(shards: usize, sink_delay_ms: u64) -> String {
    format!(
        r#"
data_dir = "data"
[processing]
parallelism = {shards}
checkpoint_interval = 0.05
batch_size = 128
queue_size = 512
[storage]
retain_checkpoints = 10
[admin]
enabled = false
[[pipelines]]
id = "p"
source = {{ type = "file", path = "in/*.jsonl" }}
event = {{ key = "user", time = "ts", value = "amount" }}
window = {{ type = "tumbling", size_ms = 200 }}
watermark = {{ delay_ms = 60 }}
aggregates = ["count", "sum", "min", "max"]
sinks = [{{ type = "file", path = "out/r.jsonl", delay_ms = {sink_delay_ms} }}]
"#
    )
}

fn start(dir: &Path, config: &str) -> Result<Child, Box<dyn std::error::Error>> {
    std::fs::write(dir.join("weir.toml"), config)?;
    Ok(weir()
        .args(["run", "--config", "weir.toml"])
        .current_dir(dir)
        .env("WEIR_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()?)
}

fn wait(child: &mut Child, limit: Duration) -> TestResult {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                return Err(format!("weir exited with {status}").into());
            }
            return Ok(());
        }
        if started.elapsed() > limit {
            child.kill()?;
            return Err("weir did not finish in time".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stops a run gracefully (SIGTERM) once its output file has some committed lines.
fn stop_midway(child: &mut Child, dir: &Path) -> TestResult {
    let started = Instant::now();
    while std::fs::metadata(dir.join("out/r.jsonl")).map_or(0, |m| m.len()) == 0 {
        if started.elapsed() > Duration::from_secs(60) || child.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()?;
    wait(child, Duration::from_secs(60))
}

fn checkpoints(dir: &Path) -> Result<Vec<std::path::PathBuf>, Box<dyn std::error::Error>> {
    let mut ids: Vec<_> = std::fs::read_dir(dir.join("data/checkpoints"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("MANIFEST.json").exists() || p.is_dir())
        .collect();
    ids.sort();
    Ok(ids)
}

#[test]
fn a_checkpoint_taken_with_two_shards_restores_onto_one_and_three() -> TestResult {
    for restart_shards in [1, 3] {
        let dir = tempfile::tempdir()?;
        let all = input(dir.path(), 20_000)?;
        let mut first = start(dir.path(), &config(2, 30))?;
        stop_midway(&mut first, dir.path())?;
        let partial = read_rows(&dir.path().join("out/r.jsonl"))?;
        let want = expected(&all, Win::Tumbling(200));
        assert!(
            !partial.is_empty() && partial.len() < want.len(),
            "stopped midway"
        );
        let mut second = start(dir.path(), &config(restart_shards, 0))?;
        wait(&mut second, Duration::from_secs(120))?;
        assert_eq!(
            read_rows(&dir.path().join("out/r.jsonl"))?,
            want,
            "2 → {restart_shards} shards"
        );
    }
    Ok(())
}

#[test]
fn a_corrupted_latest_checkpoint_falls_back_to_the_previous_one() -> TestResult {
    let dir = tempfile::tempdir()?;
    let all = input(dir.path(), 20_000)?;
    let mut first = start(dir.path(), &config(2, 30))?;
    stop_midway(&mut first, dir.path())?;
    let cps = checkpoints(dir.path())?;
    assert!(cps.len() >= 2, "need two checkpoints, have {cps:?}");
    let latest = cps.last().ok_or("no checkpoint")?;
    let blob = std::fs::read_dir(latest)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "rkyv"))
        .ok_or("no blob")?;
    let mut bytes = std::fs::read(&blob)?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&blob, bytes)?;
    let mut second = start(dir.path(), &config(2, 0))?;
    wait(&mut second, Duration::from_secs(120))?;
    assert_eq!(
        read_rows(&dir.path().join("out/r.jsonl"))?,
        expected(&all, Win::Tumbling(200))
    );
    Ok(())
}

#[test]
fn a_crash_between_manifest_and_sink_commit_is_repaired() -> TestResult {
    let dir = tempfile::tempdir()?;
    let all = input(dir.path(), 20_000)?;
    let mut first = start(dir.path(), &config(2, 30))?;
    stop_midway(&mut first, dir.path())?;
    // Rebuild the state of a crash after the manifest of the last checkpoint was written
    // but in the middle of appending its output: its output back in a staged file, the
    // commit record gone, half of it appended.
    let out = dir.path().join("out/r.jsonl");
    let staging = dir.path().join("out/.r.jsonl.weir");
    let committed = std::fs::read_to_string(staging.join("committed"))?;
    let records: Vec<(u64, u64)> = committed
        .lines()
        .filter_map(|l| {
            let (a, b) = l.split_once(' ')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect();
    // The newest checkpoint that emitted output; later ones (which emitted nothing) did
    // not happen in this crash.
    let k = records
        .iter()
        .rposition(|w| w.0 > 0 && records.iter().any(|p| p.0 < w.0 && p.1 < w.1))
        .ok_or_else(|| format!("no checkpoint emitted output: {committed}"))?;
    let (last, after) = records[k];
    let before = records[k - 1].1;
    for cp in checkpoints(dir.path())? {
        let id: u64 = cp
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if id > last {
            std::fs::remove_dir_all(cp)?;
        }
    }
    let records = &records[..=k];
    let content = std::fs::read(&out)?;
    let staged = &content[before as usize..after as usize];
    std::fs::write(staging.join(format!("{last:020}-0000.staged")), staged)?;
    std::fs::write(&out, &content[..before as usize + staged.len() / 2])?;
    let kept: String = committed
        .lines()
        .take(records.len() - 1)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(staging.join("committed"), kept)?;
    let mut second = start(dir.path(), &config(2, 0))?;
    wait(&mut second, Duration::from_secs(120))?;
    assert_eq!(read_rows(&out)?, expected(&all, Win::Tumbling(200)));
    Ok(())
}
