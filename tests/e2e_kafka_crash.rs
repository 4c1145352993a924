//! Exactly-once from Kafka to Kafka under crashes: weir is killed with SIGKILL at random
//! moments, and once aborts itself between a checkpoint's manifest and its Kafka
//! transaction commit; after the last run, a `read_committed` reader sees every result
//! exactly once, and a `read_uncommitted` reader sees the aborted transactions' records
//! too (the transactions are real).
//!
//! The killed runs read the topic unbounded, so none can end before its kill however
//! fast the machine, and each gets a fresh slice of the input first, so each kill lands
//! with records in flight; the crashing run gets the last slice, so it always has a
//! transaction with records to crash in. Only the last two runs are bounded.

mod common;
mod kafka_common;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Rng, Win, expected, kafka_records, partition_events, row_of};
use kafka_common::{TestResult, broker, consume, create_topic, produce, topic};

fn weir(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weir"));
    c.args(["run", "--config", "weir.toml"])
        .current_dir(dir)
        .env("WEIR_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

#[test]
fn kills_and_a_crash_between_manifest_and_commit_lose_and_repeat_no_result() -> TestResult {
    let Some(b) = broker() else {
        return Ok(());
    };
    let input = topic("crash-in");
    let output = topic("crash-out");
    create_topic(b, &input, 4)?;
    create_topic(b, &output, 3)?;
    let events = partition_events(&mut Rng(5), 150_000, 2000, 1_700_000_000_000, 40);
    let records = kafka_records(&events);
    // Three slices for the killed runs, the rest for the crashing one; each slice is
    // produced whole before its run, so a partition's records keep their order.
    let slices = [0, 30_000, 60_000, 90_000, records.len()];
    let win = Win::Tumbling(100);
    let dir = tempfile::tempdir()?;
    let config = |bounded: bool| {
        format!(
            r#"
app_name = "crash"
data_dir = "data"
[processing]
parallelism = 2
checkpoint_interval = 0.2
[admin]
enabled = false
[[pipelines]]
id = "p"
source = {{ type = "kafka", bootstrap = "{b}", topic = "{input}", bounded = {bounded} }}
event = {{ key = "user", time = "ts", value = "amount" }}
window = {}
aggregates = ["count", "sum", "min", "max"]
watermark = {{ delay_ms = 100 }}
sinks = [{{ type = "kafka", bootstrap = "{b}", topic = "{output}" }}]
"#,
            win.toml()
        )
    };
    let mut rng = Rng(99);
    // Three SIGKILLs at random moments.
    std::fs::write(dir.path().join("weir.toml"), config(false))?;
    for kill in 0..3 {
        produce(b, &input, &records[slices[kill]..slices[kill + 1]])?;
        let mut child = weir(dir.path()).spawn()?;
        std::thread::sleep(Duration::from_millis(1200 + rng.below(1500)));
        let done = child.try_wait()?;
        assert!(
            done.is_none(),
            "run {kill} reads unbounded, yet ended before its kill ({done:?})"
        );
        child.kill()?;
        child.wait()?;
    }
    // A crash after a checkpoint's manifest, before its transaction commits.
    produce(b, &input, &records[slices[3]..slices[4]])?;
    std::fs::write(dir.path().join("weir.toml"), config(true))?;
    let crashed = weir(dir.path())
        .env("WEIR_FAULT_ABORT_BEFORE_KAFKA_COMMIT", "1")
        .output()?;
    assert_eq!(
        crashed.status.signal(),
        Some(6),
        "the injected crash aborts weir: {}",
        String::from_utf8_lossy(&crashed.stderr)
    );
    // The last run recovers that checkpoint's output from its staged copy, and ends.
    let last = weir(dir.path()).output()?;
    let log = String::from_utf8_lossy(&last.stderr);
    assert!(last.status.success(), "the last run ends: {log}");
    assert!(
        log.contains("sent the restored checkpoint's output that kafka had not committed"),
        "the restart sent the crashed checkpoint's output again: {log}"
    );
    let committed = consume(b, &output, true)?;
    let mut got = committed
        .iter()
        .map(|(_, line)| row_of(line))
        .collect::<Result<Vec<_>, _>>()?;
    got.sort();
    let want = expected(&events, win);
    assert_eq!(
        got.len(),
        want.len(),
        "read_committed: each result exactly once"
    );
    assert!(got == want, "read_committed: the results equal the model");
    let uncommitted = consume(b, &output, false)?;
    assert!(
        uncommitted.len() > committed.len(),
        "read_uncommitted also sees the aborted transactions' records ({} vs {})",
        uncommitted.len(),
        committed.len()
    );
    Ok(())
}
