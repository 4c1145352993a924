//! The real binary over generated files, with disorder within the watermark delay, for
//! every window kind and one or two shards: the output file holds exactly the results
//! computed independently from the input.

mod common;

use common::*;

fn scenario(win: Win, shards: usize, csv: bool) -> TestResult {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input)?;
    let mut rng = Rng(7 + shards as u64);
    let mut all = Vec::new();
    for p in 0..3 {
        let events = partition_events(&mut rng, 4000, 40, 1_700_000_000_000, 80);
        if csv {
            write_csv(&input.join(format!("p{p}.csv")), &events)?;
        } else {
            write_jsonl(&input.join(format!("p{p}.jsonl")), &events, &[])?;
        }
        all.extend(events);
    }
    let (glob, format) = if csv {
        ("in/*.csv", "csv")
    } else {
        ("in/*.jsonl", "jsonl")
    };
    let config = format!(
        r#"
data_dir = "data"
[processing]
parallelism = {shards}
batch_size = 64
queue_size = 256
[admin]
enabled = false
[[pipelines]]
id = "p"
source = {{ type = "file", path = "{glob}", format = "{format}" }}
event = {{ key = "user", time = "ts", value = "amount" }}
window = {window}
watermark = {{ delay_ms = 100 }}
aggregates = ["count", "sum", "min", "max"]
sinks = [{{ type = "file", path = "out/results.jsonl", delivery = "at_least_once" }}]
"#,
        window = win.toml()
    );
    run_to_end(dir.path(), &config)?;
    let got = read_rows(&out_file(dir.path(), "results.jsonl"))?;
    let want = expected(&all, win);
    assert_eq!(got.len(), want.len(), "{win:?} with {shards} shard(s)");
    assert_eq!(got, want, "{win:?} with {shards} shard(s)");
    Ok(())
}

#[test]
fn tumbling_windows_on_one_shard_match_the_model() -> TestResult {
    scenario(Win::Tumbling(1000), 1, false)
}

#[test]
fn tumbling_windows_on_two_shards_match_the_model() -> TestResult {
    scenario(Win::Tumbling(1000), 2, false)
}

#[test]
fn sliding_windows_on_one_shard_match_the_model() -> TestResult {
    scenario(Win::Sliding(2000, 500), 1, false)
}

#[test]
fn sliding_windows_on_two_shards_match_the_model() -> TestResult {
    scenario(Win::Sliding(2000, 500), 2, false)
}

#[test]
fn session_windows_on_one_shard_match_the_model() -> TestResult {
    scenario(Win::Session(30), 1, false)
}

#[test]
fn session_windows_on_two_shards_match_the_model() -> TestResult {
    scenario(Win::Session(30), 2, false)
}

#[test]
fn csv_files_give_the_same_results_as_jsonl() -> TestResult {
    scenario(Win::Tumbling(1000), 2, true)
}
