//! Late data is decided per partition at cut points every `batch_size` records, not
//! where reads happened to end: an event 1 s of event time behind the watermark (within
//! lateness) re-fires its window as revision 1, one behind it by more than the lateness
//! goes to the late sink, with one shard and with two. And a crash does not change any
//! of it: SIGKILLed at random moments and restarted, the result file and the late sink
//! equal an uninterrupted run's.

mod fault_common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use fault_common::*;

const BASE: i64 = 1_700_000_000_000;
const EVENTS: i64 = 60_000;
/// The crash test's input: long enough for several checkpoints and kills.
const CRASH_EVENTS: i64 = 600_000;

/// Positions (index in the file) and times of the late events: three within lateness
/// (placed ~1,000 events after their window's end), three beyond it (~3,000 events
/// after end + lateness).
/// (position in the file, event time − BASE) of each late event.
type Placed = Vec<(i64, i64)>;

fn late_events() -> (Placed, Placed) {
    let within = vec![(12_000, 10_500), (22_000, 20_200), (42_000, 40_900)];
    let beyond = vec![(16_000, 10_300), (36_000, 30_400), (56_000, 50_700)];
    (within, beyond)
}

/// 60,000 events, key `k{i mod 10}`, time `BASE + i`, value 1; and for each late event
/// a key of its own (`late-{n}`) with one on-time event at its window's start and the
/// late one placed further on, so that its window's results are easy to check.
fn write_input(path: &Path, events: i64) -> Res<()> {
    let (within, beyond) = late_events();
    let mut inserts: BTreeMap<i64, Vec<(String, i64)>> = BTreeMap::new();
    for (n, &(at, t)) in within.iter().chain(&beyond).enumerate() {
        let key = format!("late-{n}");
        inserts
            .entry(t - t.rem_euclid(1000))
            .or_default()
            .push((key.clone(), t - t.rem_euclid(1000)));
        inserts.entry(at).or_default().push((key, t));
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for i in 0..events {
        writeln!(f, r#"{{"key":"k{}","ts":{},"value":1}}"#, i % 10, BASE + i)?;
        for (key, t) in inserts.get(&i).into_iter().flatten() {
            writeln!(f, r#"{{"key":"{key}","ts":{},"value":1}}"#, BASE + t)?;
        }
    }
    f.flush()?;
    Ok(())
}

fn config(shards: usize, http: SocketAddr, checkpoint: f64, follow: bool) -> Res<String> {
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    config_with(shards, http, metrics, checkpoint, follow)
}

fn config_with(
    shards: usize,
    http: SocketAddr,
    metrics: SocketAddr,
    checkpoint: f64,
    follow: bool,
) -> Res<String> {
    Ok(format!(
        r#"data_dir = "data"
[processing]
parallelism = {shards}
batch_size = 256
checkpoint_interval = {checkpoint}
[admin]
http = "{http}"
metrics = "{metrics}"
[[pipelines]]
id = "late"
source = {{ type = "file", path = "in.jsonl", follow = {follow} }}
event = {{ key = "key", time = "ts", value = "value" }}
window = {{ type = "tumbling", size_ms = 1000, allowed_lateness_ms = 2000 }}
watermark = {{ delay_ms = 0 }}
aggregates = ["count"]
sinks = [{{ type = "file", path = "out/results.jsonl" }}]
late_sink = {{ type = "file", path = "out/late.jsonl" }}
"#
    ))
}

fn metric(addr: SocketAddr, name: &str) -> Option<f64> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .reduce(|a, b| a + b)
}

fn results(dir: &Path) -> Res<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(dir.join("out/results.jsonl"))?;
    Ok(text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?)
}

fn scenario(shards: usize) -> Res<()> {
    let dir = tempfile::tempdir()?;
    write_input(&dir.path().join("in.jsonl"), EVENTS)?;
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let text = config_with(shards, http, metrics, 0.5, true)?;
    let mut w = Weir::spawn(dir.path(), &text, "run")?;
    // Everything is read once the three beyond-lateness events are counted and the
    // windows up to the last one have fired.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let dropped = metric(metrics, "stream_events_dropped_late_total");
        let done = results(dir.path())
            .map(|r| {
                r.iter()
                    .any(|v| v["window_start"].as_i64() == Some(BASE + 58_000))
            })
            .unwrap_or(false);
        if dropped == Some(3.0) && done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dropped {dropped:?}: {}",
            w.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    w.signal("TERM")?;
    assert!(w.wait(Duration::from_secs(30))?.success(), "{}", w.log());

    let rows = results(dir.path())?;
    let (within, beyond) = late_events();
    for (n, &(_, t)) in within.iter().enumerate() {
        let key = format!("late-{n}");
        let start = BASE + t - t.rem_euclid(1000);
        let mut got: Vec<(u64, u64, bool)> = rows
            .iter()
            .filter(|v| v["key"] == key.as_str() && v["window_start"].as_i64() == Some(start))
            .map(|v| {
                (
                    v["revision"].as_u64().unwrap_or(99),
                    v["count"].as_u64().unwrap_or(0),
                    v["late"].as_bool().unwrap_or(false),
                )
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![(0, 1, false), (1, 2, true)],
            "{shards} shard(s): {key} re-fires its window"
        );
    }
    let late = std::fs::read_to_string(dir.path().join("out/late.jsonl"))?;
    let late: Vec<serde_json::Value> = late
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(late.len(), 3, "{shards} shard(s): {late:?}");
    for (n, &(_, t)) in beyond.iter().enumerate() {
        let key = format!("late-{}", n + within.len());
        let start = BASE + t - t.rem_euclid(1000);
        let dropped = late
            .iter()
            .find(|v| v["key"] == key.as_str())
            .ok_or_else(|| format!("{key} is not in the late sink: {late:?}"))?;
        assert_eq!(dropped["reason"], "window_expired");
        assert_eq!(dropped["ts"].as_i64(), Some(BASE + t));
        assert!(
            dropped["late_by_ms"].as_i64().unwrap_or(0) > 2000,
            "{dropped}"
        );
        let counted: Vec<&serde_json::Value> = rows
            .iter()
            .filter(|v| v["key"] == key.as_str() && v["window_start"].as_i64() == Some(start))
            .collect();
        assert_eq!(
            counted.len(),
            1,
            "{key}: only its on-time result: {counted:?}"
        );
        assert_eq!(counted[0]["count"].as_u64(), Some(1), "{key} not counted");
    }
    Ok(())
}

#[test]
fn late_events_refire_or_go_to_the_late_sink_with_one_shard() -> Res<()> {
    scenario(1)
}

#[test]
fn late_events_refire_or_go_to_the_late_sink_with_two_shards() -> Res<()> {
    scenario(2)
}

#[test]
fn kills_at_random_moments_change_no_result_and_no_late_line() -> Res<()> {
    let reference = tempfile::tempdir()?;
    write_input(&reference.path().join("in.jsonl"), CRASH_EVENTS)?;
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let (status, log) = run_to_end(reference.path(), &config(2, http, 0.0, false)?, "ref")?;
    assert!(status.success(), "{log}");
    let want = sorted_lines(&reference.path().join("out/results.jsonl"));
    let want_late = sorted_lines(&reference.path().join("out/late.jsonl"));
    assert_eq!(want_late.len(), 3);
    assert!(want.iter().any(|l| l.contains("\"revision\":1")));

    let dir = tempfile::tempdir()?;
    write_input(&dir.path().join("in.jsonl"), CRASH_EVENTS)?;
    // Pseudo-random kill moments (fixed seed), each after the engine is running.
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut kills = 0;
    for round in 0..12 {
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let mut w = Weir::spawn(
            dir.path(),
            &config(2, http, 0.3, false)?,
            &format!("run{round}"),
        )?;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let after = Duration::from_millis(80 + rng % 420);
        let running = Instant::now() + Duration::from_secs(30);
        while !w.log().contains("weir running") && Instant::now() < running {
            if w.child.try_wait()?.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let started = Instant::now();
        let mut exited = None;
        while started.elapsed() < after {
            if let Some(st) = w.child.try_wait()? {
                exited = Some(st);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        match exited {
            Some(st) => {
                assert!(st.success(), "{}", w.log());
                break;
            }
            None if kills < 4 => {
                w.kill9()?;
                kills += 1;
            }
            None => {
                let st = w.wait(Duration::from_secs(60))?;
                assert!(st.success(), "{}", w.log());
                break;
            }
        }
    }
    assert!(kills >= 3, "killed {kills} times");
    // A last run to the end (a no-op if the input is finished).
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let (status, log) = run_to_end(dir.path(), &config(2, http, 0.3, false)?, "final")?;
    assert!(status.success(), "{log}");
    assert_eq!(sorted_lines(&dir.path().join("out/results.jsonl")), want);
    assert_eq!(sorted_lines(&dir.path().join("out/late.jsonl")), want_late);
    Ok(())
}
