//! A real Apache Kafka broker for the end-to-end tests, and Kafka's own command-line
//! tools to feed and read it (scripts/kafka.sh): events go in through Kafka's console
//! producer and results come out through its console consumer, so nothing of weir's
//! Kafka client checks itself.
//!
//! The broker is the one `WEIR_KAFKA_BOOTSTRAP` names (`.ci/run` starts one), or else
//! one started for this test process, which stops when the process ends. Without Java
//! or Maven the tests print `SKIPPED:` and pass, unless `WEIR_REQUIRE_KAFKA=1`.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka.sh")
}

/// The broker's `host:port`, or why there is none.
fn start() -> Result<String, String> {
    if let Ok(b) = std::env::var("WEIR_KAFKA_BOOTSTRAP")
        && !b.is_empty()
    {
        return Ok(b);
    }
    for tool in ["java", "mvn"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !found {
            return Err(format!("{tool} is not installed"));
        }
    }
    let dir = std::env::temp_dir().join(format!("weir-test-kafka-{}", std::process::id()));
    let out = Command::new("bash")
        .arg(script())
        .args(["start"])
        .arg(&dir)
        .args(["--owner", &std::process::id().to_string()])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("scripts/kafka.sh: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("scripts/kafka.sh start failed: {text}"));
    }
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("bootstrap="))
        .map(str::to_owned)
        .ok_or_else(|| format!("scripts/kafka.sh start printed no bootstrap: {text}"))
}

/// The broker, or `None` (after printing why) when the test must skip.
pub fn broker() -> Option<&'static str> {
    static BROKER: OnceLock<Result<String, String>> = OnceLock::new();
    match BROKER.get_or_init(start) {
        Ok(b) => Some(b.as_str()),
        Err(why) => {
            assert!(
                std::env::var("WEIR_REQUIRE_KAFKA").as_deref() != Ok("1"),
                "a Kafka broker is required (WEIR_REQUIRE_KAFKA=1) but: {why}"
            );
            println!("SKIPPED: no Kafka broker: {why}");
            None
        }
    }
}

/// Runs one of Kafka's tools against `bootstrap`; returns its standard output.
pub fn tool(
    bootstrap: &str,
    name: &str,
    args: &[&str],
    input: Option<&[u8]>,
) -> Result<String, String> {
    let mut child = Command::new("bash")
        .arg(script())
        .args(["tool", name, "--bootstrap-server", bootstrap])
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{name}: {e}"))?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input).map_err(|e| format!("{name}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{name}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{name} {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Creates a topic.
pub fn create_topic(bootstrap: &str, topic: &str, partitions: u32) -> Result<(), String> {
    tool(
        bootstrap,
        "kafka-topics",
        &[
            "--create",
            "--topic",
            topic,
            "--partitions",
            &partitions.to_string(),
            "--replication-factor",
            "1",
        ],
        None,
    )
    .map(|_| ())
}

/// Produces `(key, value)` records with Kafka's console producer (its default
/// partitioner puts a key on partition `murmur2(key) mod partitions`).
pub fn produce(bootstrap: &str, topic: &str, records: &[(String, String)]) -> Result<(), String> {
    let mut input = Vec::new();
    for (k, v) in records {
        assert!(!k.contains('|') && !v.contains('\n'));
        input.extend_from_slice(format!("{k}|{v}\n").as_bytes());
    }
    tool(
        bootstrap,
        "kafka-console-producer",
        &[
            "--topic",
            topic,
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=|",
            "--producer-property",
            "linger.ms=20",
        ],
        Some(&input),
    )
    .map(|_| ())
}

/// Reads every record of a topic with Kafka's console consumer: `(key, value)`.
/// `committed` reads with `isolation.level=read_committed`, else read_uncommitted.
pub fn consume(
    bootstrap: &str,
    topic: &str,
    committed: bool,
) -> Result<Vec<(String, String)>, String> {
    read(bootstrap, topic, committed, None)
}

/// Reads a topic's committed records until `n` are in (or 6 s pass without one): for
/// waiting until results are there. [`consume`] reads them all, to compare.
pub fn consume_at_least(
    bootstrap: &str,
    topic: &str,
    n: usize,
) -> Result<Vec<(String, String)>, String> {
    read(bootstrap, topic, true, Some(n))
}

fn read(
    bootstrap: &str,
    topic: &str,
    committed: bool,
    max: Option<usize>,
) -> Result<Vec<(String, String)>, String> {
    let isolation = if committed {
        "read_committed"
    } else {
        "read_uncommitted"
    };
    let max = max.map(|n| n.max(1).to_string());
    let mut args = vec![
        "--topic",
        topic,
        "--from-beginning",
        "--isolation-level",
        isolation,
        "--timeout-ms",
        "6000",
        "--property",
        "print.key=true",
        "--property",
        "key.separator=|",
    ];
    if let Some(max) = max.as_deref() {
        args.extend(["--max-messages", max]);
    }
    let out = tool(bootstrap, "kafka-console-consumer", &args, None)?;
    Ok(out
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once('|').unwrap_or(("", l));
            (k.to_owned(), v.to_owned())
        })
        .collect())
}

/// Kafka's murmur2 (the Java client's `Utils.murmur2`), for the partition of a key.
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let chunks = data.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    if rest.len() == 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// The partition Kafka's default partitioner gives a key.
pub fn partition_of(key: &str, partitions: u32) -> u32 {
    (murmur2(key.as_bytes()) & 0x7fff_ffff) % partitions
}

/// A topic name unique to this test process.
pub fn topic(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}
