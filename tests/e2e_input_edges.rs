//! Inputs at the edges, through the real binary: what each becomes, or the reason it is
//! refused, and never a wrong result.

mod common;

use common::*;
use serde_json::Value;

fn config(source: &str, aggregates: &str, window: &str) -> String {
    format!(
        r#"
data_dir = "data"
[processing]
parallelism = 2
[admin]
enabled = false
[[pipelines]]
id = "p"
source = {source}
event = {{ key = "k", time = "ts", value = "v" }}
window = {window}
watermark = {{ delay_ms = 0 }}
aggregates = {aggregates}
sinks = [{{ type = "file", path = "out/r.jsonl" }}]
"#
    )
}

fn results(dir: &std::path::Path) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(out_file(dir, "r.jsonl"))?;
    let mut rows: Vec<Value> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    rows.sort_by_key(|r| {
        (
            r["key"].as_str().unwrap_or("").to_owned(),
            r["window_start"].as_i64(),
        )
    });
    Ok(rows)
}

fn dead_reasons(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("data/dead-letter/p.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_default();
            v["reason"].as_str().unwrap_or("?").to_owned()
        })
        .collect()
}

#[test]
fn keys_keep_their_text_a_bom_is_skipped_and_overflowing_sums_say_so() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("in"))?;
    let mut text = b"\xEF\xBB\xBF".to_vec();
    text.extend_from_slice(
        concat!(
            r#"{"k":"first","ts":1000,"v":1}"#,
            "\n",
            r#"{"k":12345678901234567890123,"ts":1000,"v":1}"#,
            "\n",
            r#"{"k":12345678901234567890124,"ts":1000,"v":1}"#,
            "\n",
            r#"{"k":-0,"ts":1000,"v":1}"#,
            "\n",
            r#"{"k":0,"ts":1000,"v":1}"#,
            "\n",
            r#"{"k":"big","ts":1000,"v":1e308}"#,
            "\n",
            r#"{"k":"big","ts":1001,"v":1e308}"#,
            "\n",
        )
        .as_bytes(),
    );
    std::fs::write(dir.path().join("in/a.jsonl"), &text)?;
    let cfg = config(
        r#"{ type = "file", path = "in/a.jsonl" }"#,
        r#"["count", "sum", "max"]"#,
        r#"{ type = "tumbling", size_ms = 1000 }"#,
    );
    run_to_end(dir.path(), &cfg)?;
    assert_eq!(dead_reasons(dir.path()), Vec::<String>::new());
    let rows = results(dir.path())?;
    let keys: Vec<&str> = rows.iter().filter_map(|r| r["key"].as_str()).collect();
    assert_eq!(
        keys,
        [
            "-0",
            "0",
            "12345678901234567890123",
            "12345678901234567890124",
            "big",
            "first"
        ]
    );
    let big = &rows[4];
    assert_eq!(big["count"], 2);
    assert_eq!(big["max"], 1e308);
    assert!(big.get("sum").is_none(), "{big}");
    assert_eq!(big["error"], "sum out of the range of f64");
    assert!(!std::fs::read_to_string(out_file(dir.path(), "r.jsonl"))?.contains("null"));
    Ok(())
}

#[test]
fn csv_quoted_newlines_make_one_record_and_bad_bytes_are_not_csv() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("in"))?;
    let mut text = b"\xEF\xBB\xBFk,ts,v\n".to_vec();
    text.extend_from_slice(b"\"two\nlines\",1000,1\n");
    text.extend_from_slice(b"\"say \"\"hi\"\"\",1000,2\n");
    text.extend_from_slice(b"bad\xFF,1000,3\n");
    text.extend_from_slice(b"plain,1000,4\n");
    std::fs::write(dir.path().join("in/a.csv"), &text)?;
    let cfg = config(
        r#"{ type = "file", path = "in/a.csv", format = "csv" }"#,
        r#"["count", "sum"]"#,
        r#"{ type = "tumbling", size_ms = 1000 }"#,
    );
    run_to_end(dir.path(), &cfg)?;
    assert_eq!(dead_reasons(dir.path()), ["not_csv"]);
    let rows = results(dir.path())?;
    let got: Vec<(&str, f64)> = rows
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap_or("?"),
                r["sum"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    assert_eq!(
        got,
        [("plain", 4.0), ("say \"hi\"", 2.0), ("two\nlines", 1.0)]
    );
    Ok(())
}

#[test]
fn large_values_keep_exact_percentiles_and_larger_ones_are_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("in"))?;
    // 200 values uniform in [1e13, 1e15]: past the exact buffer, into the histogram.
    let mut lines: Vec<String> = (0..200)
        .map(|i| {
            let v = 1e13 + (1e15 - 1e13) * f64::from(i) / 199.0;
            format!(r#"{{"k":"a","ts":1000,"v":{v}}}"#)
        })
        .collect();
    lines.push(r#"{"k":"a","ts":1000,"v":5e16}"#.into());
    std::fs::write(dir.path().join("in/a.jsonl"), lines.join("\n") + "\n")?;
    let cfg = config(
        r#"{ type = "file", path = "in/a.jsonl" }"#,
        r#"["count", "p50", "p99"]"#,
        r#"{ type = "tumbling", size_ms = 1000 }"#,
    );
    run_to_end(dir.path(), &cfg)?;
    assert_eq!(dead_reasons(dir.path()), ["bad_value"]);
    let rows = results(dir.path())?;
    assert_eq!(rows[0]["count"], 200);
    let mut values: Vec<f64> = (0..200)
        .map(|i| 1e13 + (1e15 - 1e13) * f64::from(i) / 199.0)
        .collect();
    values.sort_by(f64::total_cmp);
    for (name, q) in [("p50", 500), ("p99", 990)] {
        let exact = values[(q * values.len()).div_ceil(1000) - 1];
        let got = rows[0][name].as_f64().unwrap_or(0.0);
        assert!(
            (got - exact).abs() <= exact * 1e-3,
            "{name}: {got} vs {exact}"
        );
    }
    Ok(())
}

#[test]
fn the_largest_windows_gaps_and_lateness_run_and_give_every_key() -> TestResult {
    let dir = tempfile::tempdir()?;
    let edge = 1i64 << 53;
    // A session gap and lateness at the bound, and a tumbling window at the bound: every
    // key comes out, the run ends.
    for window in [
        format!(r#"{{ type = "session", gap_ms = {edge}, allowed_lateness_ms = {edge} }}"#),
        format!(r#"{{ type = "tumbling", size_ms = {edge}, allowed_lateness_ms = {edge} }}"#),
    ] {
        let _ = std::fs::remove_dir_all(dir.path().join("data"));
        let _ = std::fs::remove_dir_all(dir.path().join("out"));
        let source = format!(
            r#"{{ type = "generator", keys = 50, total = 2000, start_ms = {}, partitions = 2 }}"#,
            -edge
        );
        let cfg = config(&source, r#"["count"]"#, &window).replace(
            "event = { key = \"k\", time = \"ts\", value = \"v\" }\n",
            "",
        );
        run_to_end(dir.path(), &cfg)?;
        let rows = results(dir.path())?;
        let mut keys: Vec<&str> = rows.iter().filter_map(|r| r["key"].as_str()).collect();
        keys.dedup();
        assert_eq!(keys.len(), 50, "{window}: {rows:?}");
        let count: u64 = rows.iter().filter_map(|r| r["count"].as_u64()).sum();
        assert_eq!(count, 2000, "{window}");
    }
    Ok(())
}
