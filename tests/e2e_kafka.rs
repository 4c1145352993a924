//! weir between two Kafka topics of a real broker: events produced by Kafka's console
//! producer into a 4-partition topic, results read back by Kafka's console consumer
//! with `read_committed`, compared with an independent model of the windows.

mod common;
mod kafka_common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{In, Rng, Row, Win, expected, kafka_records, partition_events, row_of};
use kafka_common::{
    TestResult, broker, consume, consume_at_least, create_topic, partition_of, produce, topic,
};

/// Window results in Kafka record values, as rows, sorted; checks each record's key is
/// the window key.
fn rows_of(records: &[(String, String)]) -> Result<Vec<Row>, Box<dyn std::error::Error>> {
    let mut rows = Vec::with_capacity(records.len());
    for (k, line) in records {
        let row = row_of(line)?;
        assert_eq!(k, &row.0, "the record key is the window key: {line}");
        rows.push(row);
    }
    rows.sort();
    Ok(rows)
}

struct Setup<'a> {
    bootstrap: &'a str,
    input: &'a str,
    output: &'a str,
    shards: usize,
    win: Win,
    bounded: bool,
    extra: &'a str,
}

fn config(s: &Setup<'_>) -> String {
    format!(
        r#"
app_name = "{output}"
data_dir = "data"
[processing]
parallelism = {shards}
checkpoint_interval = 0.3
[admin]
enabled = false
[[pipelines]]
id = "p"
source = {{ type = "kafka", bootstrap = "{b}", topic = "{input}", bounded = {bounded}{extra} }}
event = {{ key = "user", time = "ts", value = "amount" }}
window = {win}
aggregates = ["count", "sum", "min", "max"]
watermark = {{ delay_ms = 100, idle_timeout_ms = 2000 }}
sinks = [{{ type = "kafka", bootstrap = "{b}", topic = "{output}" }}]
"#,
        output = s.output,
        shards = s.shards,
        b = s.bootstrap,
        input = s.input,
        bounded = s.bounded,
        extra = s.extra,
        win = s.win.toml(),
    )
}

fn weir(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weir"));
    c.args(["run", "--config", "weir.toml"])
        .current_dir(dir)
        .env("WEIR_LOG", "warn");
    c
}

fn run_to_end(dir: &std::path::Path, config: &str) -> TestResult {
    std::fs::write(dir.join("weir.toml"), config)?;
    let out = weir(dir).output()?;
    if !out.status.success() {
        return Err(format!(
            "weir failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

/// Kafka in, windows, Kafka out, for 1 and 2 shards.
fn kafka_to_kafka(win: Win, name: &str) -> TestResult {
    let Some(b) = broker() else {
        return Ok(());
    };
    let input = topic(&format!("{name}-in"));
    create_topic(b, &input, 4)?;
    let events = partition_events(&mut Rng(7), 6000, 60, 1_700_000_000_000, 50);
    produce(b, &input, &kafka_records(&events))?;
    let want = expected(&events, win);
    for shards in [1, 2] {
        let output = topic(&format!("{name}-out-{shards}"));
        create_topic(b, &output, 3)?;
        let dir = tempfile::tempdir()?;
        let s = Setup {
            bootstrap: b,
            input: &input,
            output: &output,
            shards,
            win,
            bounded: true,
            extra: "",
        };
        run_to_end(dir.path(), &config(&s))?;
        let got = rows_of(&consume(b, &output, true)?)?;
        assert_eq!(got.len(), want.len(), "{shards} shard(s): result count");
        assert!(
            got == want,
            "{shards} shard(s): results differ from the model"
        );
    }
    Ok(())
}

#[test]
fn tumbling_windows_from_kafka_to_kafka_equal_the_model_with_one_and_two_shards() -> TestResult {
    kafka_to_kafka(Win::Tumbling(500), "tumbling")
}

#[test]
fn session_windows_from_kafka_to_kafka_equal_the_model_with_one_and_two_shards() -> TestResult {
    kafka_to_kafka(Win::Session(30), "session")
}

/// Waits until the committed output holds rows that `done` accepts, reading with Kafka's
/// console consumer (up to as many records as asked, then one more each time); returns
/// the last rows read.
fn wait_rows(
    b: &str,
    output: &str,
    what: &str,
    at_least: usize,
    timeout: Duration,
    done: impl Fn(&[Row]) -> bool,
) -> Result<Vec<Row>, Box<dyn std::error::Error>> {
    let start = Instant::now();
    let mut n = at_least;
    loop {
        let rows = rows_of(&consume_at_least(b, output, n)?)?;
        if done(&rows) {
            return Ok(rows);
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "timed out waiting for {what}: {} rows of at least {at_least}",
                rows.len()
            )
            .into());
        }
        n = n.max(rows.len() + 1);
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn stop(mut child: Child) -> TestResult {
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status()?;
    let status = child.wait()?;
    assert!(status.success(), "weir exits 0 on SIGTERM: {status}");
    Ok(())
}

/// The model's rows of windows that end at or before `until`.
fn closed(rows: &[Row], until: i64) -> Vec<Row> {
    rows.iter().filter(|r| r.2 <= until).cloned().collect()
}

#[test]
fn a_silent_partition_does_not_stall_windows_after_the_idle_timeout() -> TestResult {
    silent_partition("silent", 0)
}

#[test]
fn a_partition_that_falls_silent_goes_idle_and_does_not_stall_windows() -> TestResult {
    silent_partition("quiet", 300)
}

/// Partition 3 of four gets events only among the first `quiet_after` (none for 0);
/// windows must still fire once it has been silent for the idle timeout, although
/// checkpoints (every 0.3 s) come far more often than that.
fn silent_partition(name: &str, quiet_after: i64) -> TestResult {
    let Some(b) = broker() else {
        return Ok(());
    };
    let input = topic(&format!("{name}-in"));
    let output = topic(&format!("{name}-out"));
    create_topic(b, &input, 4)?;
    create_topic(b, &output, 1)?;
    // Keys that Kafka's partitioner puts on partitions 0, 1 and 2, and one on 3.
    let keys: Vec<String> = (0..400)
        .map(|i| format!("k{i}"))
        .filter(|k| partition_of(k, 4) != 3)
        .take(20)
        .collect();
    let quiet = (0..400)
        .map(|i| format!("q{i}"))
        .find(|k| partition_of(k, 4) == 3)
        .unwrap_or_default();
    let mut rng = Rng(3);
    let events: Vec<In> = (0..3000)
        .map(|i| In {
            key: if i < quiet_after && i % 3 == 0 {
                quiet.clone()
            } else {
                keys[rng.below(keys.len() as u64) as usize].clone()
            },
            ts: 1_700_000_000_000 + i * 2,
            value: rng.below(100) as i64,
        })
        .collect();
    produce(b, &input, &kafka_records(&events))?;
    let offsets = kafka_common::tool(b, "kafka-get-offsets", &["--topic", &input], None)?;
    let on_three = if quiet_after == 0 {
        0
    } else {
        (quiet_after + 2) / 3
    };
    assert!(
        offsets.contains(&format!("{input}:3:{on_three}")),
        "partition 3 holds {on_three} records: {offsets}"
    );
    let dir = tempfile::tempdir()?;
    let win = Win::Tumbling(500);
    let s = Setup {
        bootstrap: b,
        input: &input,
        output: &output,
        shards: 2,
        win,
        bounded: false,
        extra: "",
    };
    std::fs::write(dir.path().join("weir.toml"), config(&s))?;
    let child = weir(dir.path()).stdout(Stdio::null()).spawn()?;
    // Every window that ends before the last event's time minus the delay fires.
    let last = events.iter().map(|e| e.ts).max().unwrap_or(0);
    let want = closed(&expected(&events, win), last - 100);
    assert!(!want.is_empty());
    let waited = wait_rows(
        b,
        &output,
        "the windows to fire",
        want.len(),
        Duration::from_secs(180),
        |rows| rows.len() >= want.len(),
    );
    stop(child)?;
    waited?;
    let got = rows_of(&consume(b, &output, true)?)?;
    assert!(
        got == want,
        "windows fired despite the silent partition, each once"
    );
    Ok(())
}

#[test]
fn a_restarted_weir_resumes_from_its_checkpoint_not_from_the_group_offsets() -> TestResult {
    let Some(b) = broker() else {
        return Ok(());
    };
    let input = topic("resume-in");
    let output = topic("resume-out");
    create_topic(b, &input, 4)?;
    create_topic(b, &output, 2)?;
    let all = partition_events(&mut Rng(11), 4000, 40, 1_700_000_000_000, 20);
    let (first, second) = all.split_at(2000);
    produce(b, &input, &kafka_records(first))?;
    let dir = tempfile::tempdir()?;
    let win = Win::Tumbling(200);
    let s = Setup {
        bootstrap: b,
        input: &input,
        output: &output,
        shards: 2,
        win,
        bounded: false,
        extra: "",
    };
    std::fs::write(dir.path().join("weir.toml"), config(&s))?;
    let model = expected(&all, win);
    let first_last = first.iter().map(|e| e.ts).max().unwrap_or(0);
    let want_first = closed(&expected(first, win), first_last - 100 - 200);
    let child = weir(dir.path()).stdout(Stdio::null()).spawn()?;
    let waited = wait_rows(
        b,
        &output,
        "the first half's windows",
        want_first.len(),
        Duration::from_secs(180),
        |rows| rows.len() >= want_first.len(),
    );
    stop(child)?;
    waited?;
    // The group shows true lag: weir committed the checkpoint's offsets to it.
    let group = format!("{output}-p");
    let describe = kafka_common::tool(
        b,
        "kafka-consumer-groups",
        &["--describe", "--group", &group],
        None,
    )?;
    let lags: Vec<&str> = describe
        .lines()
        .filter(|l| l.contains(&input))
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    assert_eq!(lags.len(), 4, "four partitions in the group: {describe}");
    assert!(
        lags.iter().all(|l| *l == "0"),
        "no lag after the stop: {describe}"
    );
    // Send the group back to the start: a weir trusting it would read the first half again.
    kafka_common::tool(
        b,
        "kafka-consumer-groups",
        &[
            "--reset-offsets",
            "--to-earliest",
            "--execute",
            "--group",
            &group,
            "--topic",
            &input,
        ],
        None,
    )?;
    produce(b, &input, &kafka_records(second))?;
    let last = all.iter().map(|e| e.ts).max().unwrap_or(0);
    let want = closed(&model, last - 100 - 200);
    let child = weir(dir.path()).stdout(Stdio::null()).spawn()?;
    let until = last - 100 - 200;
    let waited = wait_rows(
        b,
        &output,
        "the second half's windows",
        want.len(),
        Duration::from_secs(180),
        |rows| closed(rows, until).len() >= want.len(),
    );
    stop(child)?;
    waited?;
    let got = closed(&rows_of(&consume(b, &output, true)?)?, until);
    assert_eq!(got.len(), want.len(), "each window once after the restart");
    assert!(got == want, "results after the restart equal the model");
    Ok(())
}

#[test]
fn partitions_added_to_the_topic_while_weir_runs_are_read() -> TestResult {
    let Some(b) = broker() else {
        return Ok(());
    };
    let input = topic("grow-in");
    let output = topic("grow-out");
    create_topic(b, &input, 2)?;
    create_topic(b, &output, 1)?;
    let first = partition_events(&mut Rng(21), 2000, 30, 1_700_000_000_000, 10);
    produce(b, &input, &kafka_records(&first))?;
    let dir = tempfile::tempdir()?;
    let win = Win::Tumbling(200);
    let s = Setup {
        bootstrap: b,
        input: &input,
        output: &output,
        shards: 2,
        win,
        bounded: false,
        extra: ", discovery_interval_ms = 500",
    };
    std::fs::write(dir.path().join("weir.toml"), config(&s))?;
    let child = weir(dir.path()).stdout(Stdio::null()).spawn()?;
    let first_last = first.iter().map(|e| e.ts).max().unwrap_or(0);
    let want_first = closed(&expected(&first, win), first_last - 300);
    let waited = wait_rows(
        b,
        &output,
        "the first windows",
        want_first.len(),
        Duration::from_secs(180),
        |rows| rows.len() >= want_first.len(),
    );
    if let Err(e) = waited {
        stop(child)?;
        return Err(e);
    }
    kafka_common::tool(
        b,
        "kafka-topics",
        &["--alter", "--topic", &input, "--partitions", "4"],
        None,
    )?;
    // Later events whose keys the partitioner now puts on the new partitions only.
    let keys: Vec<String> = (0..400)
        .map(|i| format!("n{i}"))
        .filter(|k| partition_of(k, 4) >= 2)
        .take(10)
        .collect();
    let mut rng = Rng(4);
    let second: Vec<In> = (0..1500)
        .map(|i| In {
            key: keys[rng.below(keys.len() as u64) as usize].clone(),
            ts: first_last + 5000 + i * 2,
            value: rng.below(100) as i64,
        })
        .collect();
    produce(b, &input, &kafka_records(&second))?;
    let last = second.iter().map(|e| e.ts).max().unwrap_or(0);
    let all: Vec<In> = first.iter().chain(&second).cloned().collect();
    let want = closed(&expected(&all, win), last - 300);
    let until = last - 300;
    let waited = wait_rows(
        b,
        &output,
        "windows of the new partitions",
        want.len(),
        Duration::from_secs(180),
        |rows| closed(rows, until).len() >= want.len(),
    );
    stop(child)?;
    waited?;
    let got = closed(&rows_of(&consume(b, &output, true)?)?, until);
    assert!(
        got == want,
        "the new partitions' events are in the results, each once"
    );
    Ok(())
}

#[test]
fn record_timestamps_can_be_event_time_and_bad_records_are_dead_lettered_with_topic_and_offset()
-> TestResult {
    let Some(b) = broker() else {
        return Ok(());
    };
    let input = topic("stamps-in");
    let output = topic("stamps-out");
    create_topic(b, &input, 2)?;
    create_topic(b, &output, 1)?;
    let mut records: Vec<(String, String)> = (0..500)
        .map(|i| {
            let key = format!("u{}", i % 10);
            (
                key.clone(),
                format!(r#"{{"user":"{key}","amount":{}}}"#, i % 7),
            )
        })
        .collect();
    records.insert(100, ("bad-a".into(), "not json at all".into()));
    records.insert(300, ("bad-b".into(), r#"{"amount":3}"#.into()));
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    produce(b, &input, &records)?;
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let dir = tempfile::tempdir()?;
    let s = Setup {
        bootstrap: b,
        input: &input,
        output: &output,
        shards: 2,
        win: Win::Tumbling(1000),
        bounded: true,
        extra: r#", event_time = "kafka""#,
    };
    run_to_end(dir.path(), &config(&s))?;
    let rows = rows_of(&consume(b, &output, true)?)?;
    let counted: u64 = rows.iter().map(|r| r.3).sum();
    assert_eq!(counted, 500, "every good record counted once");
    for r in &rows {
        assert!(
            r.1 >= before - 1000 && r.1 <= after,
            "windows follow the records' timestamps ({before}..{after}): {r:?}"
        );
    }
    let dead = std::fs::read_to_string(dir.path().join("data/dead-letter/p.jsonl"))?;
    let dead: Vec<serde_json::Value> = dead
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(dead.len(), 2, "{dead:?}");
    for (d, key, reason) in [
        (&dead[0], "bad-a", "not_json"),
        (&dead[1], "bad-b", "missing_key"),
    ] {
        let d = dead.iter().find(|x| x["reason"] == reason).unwrap_or(d);
        assert_eq!(d["topic"], input.as_str(), "{d}");
        assert_eq!(d["partition"], partition_of(key, 2), "{d}");
        assert!(d["offset"].is_u64(), "{d}");
    }
    Ok(())
}
