//! The command line as a user meets it: config errors, the locked-memory check, and a
//! clean stop on SIGTERM.

mod common;

use std::time::{Duration, Instant};

use common::*;

const GENERATOR: &str = r#"
data_dir = "data"
[admin]
enabled = false
[[pipelines]]
id = "gen"
source = { type = "generator", keys = 100, rate = 20000, partitions = 2 }
window = { type = "tumbling", size_ms = 100 }
watermark = { delay_ms = 10 }
aggregates = ["count", "sum", "min", "max"]
sinks = [{ type = "file", path = "out/r.jsonl" }]
"#;

#[test]
fn an_invalid_config_exits_2_with_one_line_naming_file_and_key() -> TestResult {
    let dir = tempfile::tempdir()?;
    let bad = GENERATOR.replace("size_ms = 100", "size_ms = 0");
    std::fs::write(dir.path().join("bad.toml"), bad)?;
    for command in ["check", "run"] {
        let out = weir()
            .args([command, "--config", "bad.toml"])
            .current_dir(dir.path())
            .output()?;
        assert_eq!(out.status.code(), Some(2), "{command}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.trim(),
            "bad.toml: pipelines[0].window.size_ms: must be > 0 (got 0)",
            "{command}"
        );
    }
    let out = weir()
        .args(["check", "--config", "missing.toml"])
        .current_dir(dir.path())
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("missing.toml: cannot read"));
    Ok(())
}

/// Configs that `weir check` once passed and `weir run` then crashed, hung or failed on
/// with exit 1: both now refuse them with exit 2 and one line naming the key.
#[test]
fn what_check_can_know_it_refuses_and_run_refuses_alike() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("a-file"), "x")?;
    std::fs::create_dir(dir.path().join("a-folder"))?;
    let cases = [
        (
            GENERATOR.replace(
                "[admin]",
                "[processing]\nqueue_size = 9223372036854775807\n[admin]",
            ),
            "processing.queue_size: must be at most",
        ),
        (
            GENERATOR.replace("size_ms = 100", "size_ms = 4611686018427387904"),
            "pipelines[0].window.size_ms: must be at most",
        ),
        (
            GENERATOR.replace(
                "partitions = 2",
                "partitions = 2, start_ms = 9223372036854775807",
            ),
            "pipelines[0].source.start_ms: must be within",
        ),
        (
            GENERATOR.replace("[admin]", "[runtime]\ncores = [0, 4095]\n[admin]"),
            "runtime.cores[1]: core 4095 is not one this process may run on",
        ),
        (
            GENERATOR.replace("data_dir = \"data\"", "data_dir = \"a-file\""),
            "data_dir: a-file is a file, not a folder",
        ),
        (
            GENERATOR.replace("out/r.jsonl", "a-folder"),
            "pipelines[0].sinks[0].path: a-folder is a folder, not a file",
        ),
    ];
    for (config, want) in cases {
        std::fs::write(dir.path().join("bad.toml"), &config)?;
        for command in ["check", "run"] {
            let out = weir()
                .args([command, "--config", "bad.toml"])
                .current_dir(dir.path())
                .output()?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command} {want}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{command}: {stderr}");
            assert!(
                stderr.starts_with(&format!("bad.toml: {want}")),
                "{command}: {stderr} (want {want})"
            );
        }
    }
    Ok(())
}

#[test]
fn check_prints_the_resolved_plan() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("w.toml"), GENERATOR)?;
    let out = weir()
        .args(["check", "--config", "w.toml"])
        .current_dir(dir.path())
        .output()?;
    assert!(out.status.success());
    let plan = String::from_utf8(out.stdout)?;
    assert!(
        plan.contains("shard 0: unpinned, key groups 0..2048"),
        "{plan}"
    );
    assert!(plan.contains("pipeline gen:"), "{plan}");
    assert!(plan.contains("window: tumbling 100 ms"), "{plan}");
    Ok(())
}

#[test]
fn a_too_low_locked_memory_limit_is_a_clear_error_not_a_panic() -> TestResult {
    if which("prlimit").is_none() {
        eprintln!("prlimit is not installed; skipping");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("w.toml"), GENERATOR)?;
    let out = std::process::Command::new("prlimit")
        .args(["--memlock=65536:65536", "--"])
        .arg(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "--config", "w.toml"])
        .current_dir(dir.path())
        .output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("RLIMIT_MEMLOCK"), "{stderr}");
    assert!(stderr.contains("LimitMEMLOCK"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    Ok(())
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

#[test]
fn sigterm_stops_sources_takes_a_final_checkpoint_and_exits_0() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("w.toml"), GENERATOR)?;
    let mut child = weir()
        .args(["run", "--config", "w.toml"])
        .current_dir(dir.path())
        .env("WEIR_LOG", "warn")
        .spawn()?;
    std::thread::sleep(Duration::from_millis(800));
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if started.elapsed() > Duration::from_secs(30) {
            child.kill()?;
            return Err("weir did not stop within 30 s of SIGTERM".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status}");
    let rows = read_rows(&dir.path().join("out/r.jsonl"))?;
    assert!(
        !rows.is_empty(),
        "the final checkpoint committed the results so far"
    );
    assert!(
        dir.path()
            .join("data/checkpoints")
            .read_dir()?
            .next()
            .is_some()
    );
    Ok(())
}

/// One config file serves several instances: the command line names the instance and
/// sets `data_dir` and the admin addresses, and every check sees those values.
#[test]
fn the_command_line_names_the_instance_and_overrides_its_folder_and_addresses() -> TestResult {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("w.toml");
    std::fs::write(
        &config,
        r#"app_name = "shared"
[admin]
enabled = false
[[pipelines]]
id = "p"
source = { type = "generator", total = 1000, keys = 10, start_ms = 0 }
window = { type = "tumbling", size_ms = 100 }
sinks = [{ type = "blackhole" }]
"#,
    )?;
    let out = weir()
        .args(["check", "--config"])
        .arg(&config)
        .args(["--instance", "east-1", "--data-dir", "data-east"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("instance: east-1"), "{text}");
    assert!(text.contains("data-east"), "{text}");
    // An override is checked like the key it sets.
    let out = weir()
        .args(["check", "--config"])
        .arg(&config)
        .args(["--http", "not-an-address"])
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("admin.http"), "{err}");
    let out = weir()
        .args(["check", "--config"])
        .arg(&config)
        .args(["--instance", " "])
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("instance"));
    // Two instances of the same file, each in its own folder.
    for name in ["a", "b"] {
        let out = weir()
            .args(["run", "--config"])
            .arg(&config)
            .args(["--instance", name, "--data-dir", &format!("data-{name}")])
            .current_dir(dir.path())
            .env("WEIR_LOG", "warn")
            .output()?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(dir.path().join(format!("data-{name}")).is_dir());
    }
    Ok(())
}
