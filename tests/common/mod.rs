//! Helpers shared by the end-to-end tests: input generation, an independent model of
//! window results, and running the real `weir` binary.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One input event.
#[derive(Debug, Clone)]
pub struct In {
    pub key: String,
    pub ts: i64,
    pub value: i64,
}

/// A deterministic pseudo-random sequence (splitmix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Events of one partition: time advancing ~1 ms per event from `start`, arriving with
/// disorder of at most `disorder` ms (each event is at most `disorder` behind the largest
/// time before it).
pub fn partition_events(rng: &mut Rng, n: usize, keys: u64, start: i64, disorder: i64) -> Vec<In> {
    let mut sorted: Vec<In> = (0..n)
        .map(|i| In {
            key: format!("u{}", rng.below(keys)),
            ts: start + i as i64 + rng.below(3) as i64,
            value: rng.below(100) as i64,
        })
        .collect();
    sorted.sort_by_key(|e| e.ts);
    let mut keyed: Vec<(i64, usize)> = sorted
        .iter()
        .enumerate()
        .map(|(i, e)| (e.ts + rng.below(disorder as u64 + 1) as i64, i))
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, i)| sorted[i].clone()).collect()
}

pub fn write_jsonl(path: &Path, events: &[In], bad_lines: &[&str]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for (i, e) in events.iter().enumerate() {
        writeln!(
            f,
            r#"{{"user":"{}","ts":{},"amount":{}}}"#,
            e.key, e.ts, e.value
        )?;
        if let Some(bad) = bad_lines.get(i) {
            writeln!(f, "{bad}")?;
        }
    }
    f.flush()
}

pub fn write_csv(path: &Path, events: &[In]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(f, "user,ts,amount")?;
    for e in events {
        writeln!(f, "{},{},{}", e.key, e.ts, e.value)?;
    }
    f.flush()
}

/// A window result as compared: (key, start, end, count, sum, min, max, revision, late).
pub type Row = (String, i64, i64, u64, i64, i64, i64, u64, bool);

#[derive(Debug, Clone, Copy)]
pub enum Win {
    Tumbling(i64),
    Sliding(i64, i64),
    Session(i64),
}

impl Win {
    pub fn toml(&self) -> String {
        match self {
            Win::Tumbling(s) => format!(r#"{{ type = "tumbling", size_ms = {s} }}"#),
            Win::Sliding(s, d) => {
                format!(r#"{{ type = "sliding", size_ms = {s}, slide_ms = {d} }}"#)
            }
            Win::Session(g) => format!(r#"{{ type = "session", gap_ms = {g} }}"#),
        }
    }
}

fn row(key: &str, start: i64, end: i64, values: &[i64]) -> Row {
    (
        key.to_owned(),
        start,
        end,
        values.len() as u64,
        values.iter().sum(),
        *values.iter().min().unwrap_or(&0),
        *values.iter().max().unwrap_or(&0),
        0,
        false,
    )
}

/// The results an uninterrupted, lateness-free run must produce, computed directly from
/// the definitions (no engine code).
pub fn expected(events: &[In], win: Win) -> Vec<Row> {
    let mut rows = Vec::new();
    match win {
        Win::Tumbling(size) | Win::Sliding(size, _) => {
            let slide = match win {
                Win::Sliding(_, d) => d,
                _ => size,
            };
            let mut groups: BTreeMap<(String, i64), Vec<i64>> = BTreeMap::new();
            for e in events {
                let mut s = e.ts.div_euclid(slide) * slide;
                while s > e.ts - size {
                    groups.entry((e.key.clone(), s)).or_default().push(e.value);
                    s -= slide;
                }
            }
            for ((k, s), v) in groups {
                rows.push(row(&k, s, s + size, &v));
            }
        }
        Win::Session(gap) => {
            let mut by_key: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
            for e in events {
                by_key
                    .entry(e.key.clone())
                    .or_default()
                    .push((e.ts, e.value));
            }
            for (k, mut evs) in by_key {
                evs.sort();
                let mut i = 0;
                while i < evs.len() {
                    let start = evs[i].0;
                    let mut last = start;
                    let mut vals = vec![evs[i].1];
                    let mut j = i + 1;
                    while j < evs.len() && evs[j].0 <= last + gap {
                        last = evs[j].0;
                        vals.push(evs[j].1);
                        j += 1;
                    }
                    rows.push(row(&k, start, last + gap, &vals));
                    i = j;
                }
            }
        }
    }
    rows.sort();
    rows
}

/// One result line as a row.
pub fn row_of(line: &str) -> Result<Row, Box<dyn std::error::Error>> {
    let v: serde_json::Value = serde_json::from_str(line)?;
    let f = |k: &str| {
        v[k].as_f64()
            .ok_or_else(|| format!("{k} missing in {line}"))
    };
    Ok((
        v["key"].as_str().ok_or("key")?.to_owned(),
        v["window_start"].as_i64().ok_or("start")?,
        v["window_end"].as_i64().ok_or("end")?,
        v["count"].as_u64().ok_or("count")?,
        f("sum")? as i64,
        f("min")? as i64,
        f("max")? as i64,
        v["revision"].as_u64().ok_or("revision")?,
        v["late"].as_bool().ok_or("late")?,
    ))
}

/// Parses result lines into rows, sorted.
pub fn read_rows(path: &Path) -> Result<Vec<Row>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)?;
    let mut rows = text.lines().map(row_of).collect::<Result<Vec<_>, _>>()?;
    rows.sort();
    Ok(rows)
}

/// Events as Kafka records: key = the event's key, value = its JSON line (the fields
/// `user`, `ts`, `amount` of [`write_jsonl`]).
pub fn kafka_records(events: &[In]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e.key.clone(),
                format!(
                    r#"{{"user":"{}","ts":{},"amount":{}}}"#,
                    e.key, e.ts, e.value
                ),
            )
        })
        .collect()
}

pub fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

/// Runs `weir run --config <dir>/weir.toml` in `dir` to completion.
pub fn run_to_end(dir: &Path, config: &str) -> Result<Output, Box<dyn std::error::Error>> {
    let path = dir.join("weir.toml");
    std::fs::write(&path, config)?;
    let out = weir()
        .args(["run", "--config"])
        .arg(&path)
        .current_dir(dir)
        .env("WEIR_LOG", "warn")
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "weir run failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(out)
}

pub fn out_file(dir: &Path, name: &str) -> PathBuf {
    dir.join("out").join(name)
}
