//! Decoding JSON lines into events, one core: the lines `weir load` sends
//! (`{"key":"key-<k>","ts":<ms>,"value":<v>}`), and the same event nested one level
//! down with two members the pipeline does not read. The baseline parses each line into
//! a `serde_json::Value` and looks the fields up, as the decoder first did.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_config::{EventFields, TimeField};
use weir_engine::{EventDecoder, EventId};

const LINES: usize = 4096;

fn lines(nested: bool) -> Vec<Vec<u8>> {
    (0..LINES)
        .map(|i| {
            let (k, ts, v) = (i * 7919 % 1000, 1_700_000_000_000u64 + i as u64, i % 1000);
            if nested {
                format!(
                    r#"{{"user":{{"id":"key-{k}","plan":"pro"}},"ts":{ts},"value":{v},"note":"hello, world"}}"#
                )
            } else {
                format!(r#"{{"key":"key-{k}","ts":{ts},"value":{v}}}"#)
            }
            .into_bytes()
        })
        .collect()
}

fn baseline(line: &[u8], key: &[&str], value: &str) -> Option<(String, i64, f64)> {
    let doc: serde_json::Value = serde_json::from_slice(line).ok()?;
    let k = key
        .iter()
        .try_fold(&doc, |v, p| v.get(*p))?
        .as_str()?
        .to_owned();
    let ts = doc.get("ts")?.as_i64()?;
    let v = doc.get(value)?.as_f64()?;
    Some((k, ts, v))
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode_json");
    g.throughput(Throughput::Elements(LINES as u64));
    for (name, nested, key) in [
        ("flat", false, vec!["key"]),
        ("nested", true, vec!["user", "id"]),
    ] {
        let lines = lines(nested);
        let decoder = EventDecoder::new(
            &EventFields {
                key: key.join("."),
                time: TimeField::Field("ts".into()),
                value: "value".into(),
            },
            true,
        );
        g.bench_function(format!("{name}/streaming"), |b| {
            b.iter(|| {
                for l in &lines {
                    let _ = black_box(decoder.decode_json(black_box(l), EventId::default(), 0));
                }
            })
        });
        g.bench_function(format!("{name}/value_baseline"), |b| {
            b.iter(|| {
                for l in &lines {
                    black_box(baseline(black_box(l), &key, "value"));
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
