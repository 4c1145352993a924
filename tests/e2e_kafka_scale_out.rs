//! Scale-out on a Kafka consumer group, against the real broker: several weir instances
//! of one application share a 6-partition input topic keyed by the window key
//! (`assignment = "group"`). One is killed with SIGKILL mid-stream, a fourth joins
//! mid-stream, and one restarts on an empty data_dir; after each, the partitions move
//! through Kafka's group protocol and their state through the state topic. A
//! `read_committed` reader of the output sees every window result exactly once, equal
//! to a model computed from the input.

mod common;
mod kafka_common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Rng, Win, expected, kafka_records, partition_events, row_of};
use kafka_common::{
    TestResult, broker, consume, consume_at_least, create_topic, partition_of, produce, topic,
};

const PARTITIONS: u32 = 6;
const SESSION_TIMEOUT_MS: u64 = 6000;

struct Instance {
    dir: PathBuf,
    child: Child,
    log: PathBuf,
}

fn start(root: &Path, name: &str) -> std::io::Result<Instance> {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir)?;
    let log = root.join(format!("{name}-{}.log", std::fs::read_dir(root)?.count()));
    let child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "--config"])
        .arg(root.join("weir.toml"))
        .args(["--instance", name, "--data-dir"])
        .arg(dir.join("data"))
        .env("WEIR_LOG", "info,librdkafka=warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    Ok(Instance { dir, child, log })
}

/// The partitions an instance's log says it restored, with when it said so.
fn restores(log: &Path) -> Vec<(String, Vec<u32>)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains("restored partitions from kafka"))
        .filter_map(|l| {
            let at = l.split_whitespace().next()?.to_owned();
            let list = l.split("partitions=[").nth(1)?.split(']').next()?;
            let parts = list
                .split(',')
                .filter_map(|p| p.trim().parse().ok())
                .collect();
            Some((at, parts))
        })
        .collect()
}

/// Result rows of the output topic that `read_committed` sees, without the flush keys'.
fn committed_rows(b: &str, output: &str) -> Result<Vec<common::Row>, Box<dyn std::error::Error>> {
    let mut rows = consume(b, output, true)?
        .iter()
        .map(|(_, line)| row_of(line))
        .collect::<Result<Vec<_>, _>>()?;
    rows.retain(|r| !r.0.starts_with("flush"));
    rows.sort();
    Ok(rows)
}

#[test]
fn instances_sharing_a_topic_take_over_each_others_partitions_exactly_once() -> TestResult {
    let Some(b) = broker() else {
        return Ok(());
    };
    let input = topic("scale-in");
    let output = topic("scale-out");
    create_topic(b, &input, PARTITIONS)?;
    create_topic(b, &output, 3)?;
    let events = partition_events(&mut Rng(11), 120_000, 3000, 1_700_000_000_000, 40);
    let win = Win::Tumbling(200);
    let mut root = tempfile::tempdir()?;
    // WEIR_TEST_KEEP=1 keeps the instances' logs and data.
    if std::env::var("WEIR_TEST_KEEP").as_deref() == Ok("1") {
        root.disable_cleanup(true);
        println!("kept {}", root.path().display());
    }
    std::fs::write(
        root.path().join("weir.toml"),
        format!(
            r#"
app_name = "scale-{pid}"
data_dir = "data"
[processing]
parallelism = 1
checkpoint_interval = 0.3
[admin]
enabled = false
[[pipelines]]
id = "p"
source = {{ type = "kafka", bootstrap = "{b}", topic = "{input}", assignment = "group", properties = {{ "session.timeout.ms" = "{SESSION_TIMEOUT_MS}", "heartbeat.interval.ms" = "500" }} }}
event = {{ key = "user", time = "ts", value = "amount" }}
window = {}
aggregates = ["count", "sum", "min", "max"]
watermark = {{ delay_ms = 100 }}
sinks = [{{ type = "kafka", bootstrap = "{b}", topic = "{output}", transaction_timeout_ms = 5000 }}]
"#,
            win.toml(),
            pid = std::process::id(),
        ),
    )?;
    let quarter = events.len() / 4;
    let phase =
        |i: usize| kafka_records(&events[i * quarter..((i + 1) * quarter).min(events.len())]);
    let root = root.path();

    // Three instances; the first quarter of the input.
    let mut running: BTreeMap<String, Instance> = BTreeMap::new();
    for name in ["a", "b", "c"] {
        running.insert(name.into(), start(root, name)?);
    }
    produce(b, &input, &phase(0))?;
    let first = expected(&events[..quarter / 2], win).len();
    consume_at_least(b, &output, first / 2)?;

    // SIGKILL one mid-stream; the second quarter.
    let killed = running.remove("b").ok_or("b")?;
    let mut child = killed.child;
    child.kill()?;
    child.wait()?;
    let killed_at = Instant::now();
    produce(b, &input, &phase(1))?;
    // The survivors restore every partition within the session timeout, the
    // transaction timeout of the dead producer, and a few seconds.
    let deadline = Duration::from_millis(SESSION_TIMEOUT_MS + 5000 + 15_000);
    loop {
        let held: std::collections::BTreeSet<u32> = running
            .values()
            .filter_map(|i| restores(&i.log).last().map(|(_, p)| p.clone()))
            .flatten()
            .collect();
        if held.len() == PARTITIONS as usize
            && running.values().all(|i| restores(&i.log).len() >= 2)
        {
            break;
        }
        assert!(
            killed_at.elapsed() < deadline,
            "the survivors did not take the dead instance's partitions within {deadline:?}: {held:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "partitions restored {:?} after the kill",
        killed_at.elapsed()
    );

    // A fourth instance joins mid-stream; the third quarter.
    running.insert("d".into(), start(root, "d")?);
    std::thread::sleep(Duration::from_secs(2));
    produce(b, &input, &phase(2))?;
    let joined = Instant::now();
    let d = &running["d"];
    while !restores(&d.log).iter().any(|(_, p)| !p.is_empty()) {
        assert!(
            joined.elapsed() < deadline,
            "no partitions moved to the fourth instance within {deadline:?}: {:?}",
            std::fs::read_to_string(&d.log)?
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // One restarts on an empty disk; the last quarter and a record per partition far
    // ahead, which closes every window.
    let a = running.remove("a").ok_or("a")?;
    let mut child = a.child;
    child.kill()?;
    child.wait()?;
    std::fs::remove_dir_all(a.dir.join("data"))?;
    running.insert("a".into(), start(root, "a")?);
    produce(b, &input, &phase(3))?;
    let end = events.iter().map(|e| e.ts).max().unwrap_or(0) + 60_000;
    let mut flush = Vec::new();
    for p in 0..PARTITIONS {
        let key = (0..)
            .map(|i| format!("flush{i}"))
            .find(|k| partition_of(k, PARTITIONS) == p)
            .ok_or("a flush key")?;
        flush.push((
            key.clone(),
            format!(r#"{{"user":"{key}","ts":{end},"amount":0}}"#),
        ));
    }
    produce(b, &input, &flush)?;

    let want = expected(&events, win);
    let waited = Instant::now();
    let got = loop {
        let got = committed_rows(b, &output)?;
        if got.len() >= want.len() || waited.elapsed() > Duration::from_secs(90) {
            break got;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    for (_, mut i) in running {
        i.child.kill()?;
        i.child.wait()?;
    }
    // Nothing more arrives from transactions that were open.
    let got_after = committed_rows(b, &output)?;
    assert_eq!(
        got, got_after,
        "no result committed after the instances stopped"
    );
    let mut dup = got.clone();
    dup.dedup();
    assert_eq!(dup.len(), got.len(), "each window result once");
    assert_eq!(got.len(), want.len(), "read_committed: every window result");
    assert!(got == want, "read_committed: the results equal the model");
    Ok(())
}
