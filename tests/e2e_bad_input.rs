//! Bad lines never stop the engine: they go to the dead-letter file with their reason,
//! and the good lines give exactly the results they should.

mod common;

use common::*;

#[test]
fn bad_lines_go_to_the_dead_letter_file_and_good_lines_are_counted() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("in"))?;
    let mut rng = Rng(3);
    let events = partition_events(&mut rng, 3000, 20, 1_700_000_000_000, 50);
    let bad = [
        "not json at all",
        r#"{"user":"u1","amount":3}"#,
        r#"{"user":"u1","ts":"yesterday","amount":3}"#,
        r#"{"user":"u1","ts":1700000000000,"amount":"three"}"#,
        "[1,2,3]",
        "\u{1}\u{2}\u{3}binary",
        r#"{"ts":1700000000000,"amount":1}"#,
    ];
    write_jsonl(&dir.path().join("in/a.jsonl"), &events, &bad)?;
    let config = r#"
data_dir = "data"
[processing]
parallelism = 2
[admin]
enabled = false
[[pipelines]]
id = "clicks"
source = { type = "file", path = "in/a.jsonl" }
event = { key = "user", time = "ts", value = "amount" }
window = { type = "tumbling", size_ms = 1000 }
watermark = { delay_ms = 100 }
aggregates = ["count", "sum", "min", "max"]
sinks = [{ type = "file", path = "out/r.jsonl", delivery = "at_least_once" }]
"#;
    run_to_end(dir.path(), config)?;
    assert_eq!(
        read_rows(&out_file(dir.path(), "r.jsonl"))?,
        expected(&events, Win::Tumbling(1000))
    );
    let dead = std::fs::read_to_string(dir.path().join("data/dead-letter/clicks.jsonl"))?;
    let reasons: Vec<String> = dead
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
            v["reason"].as_str().unwrap_or("?").to_owned()
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "not_json",
            "missing_time",
            "bad_time",
            "bad_value",
            "not_object",
            "not_json",
            "missing_key"
        ]
    );
    Ok(())
}
