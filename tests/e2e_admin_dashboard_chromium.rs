//! The dashboard (`GET /`) of a real `weir run`, rendered by headless Chromium, shows
//! live numbers from the engine: a non-zero event rate and processed count.
//!
//! Chromium comes with Debian's `chromium` package. Without it the test is skipped with
//! a note, unless `WEIR_REQUIRE_CHROMIUM=1` (as in CI), where it fails. With
//! `WEIR_DASHBOARD_SCREENSHOT=PATH` it also saves a 1280×900 screenshot of the live page
//! there (that is how docs/dashboard.png is made).

mod admin_common;

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use admin_common::*;

const CHROMIUM: &str = "chromium";

/// Runs headless Chromium on `url` with `args`, in a fresh profile, killed after
/// `timeout`; a run that times out is tried again, up to five times.
///
/// Why the warm-up and the retry: tiny_http 0.12 (under the admin server) hands each
/// connection to a thread pool whose `spawn` can leave a new connection queued while
/// every worker sits in a keep-alive read (docs/ADMIN.md, known issue), so one of the
/// page's parallel fetches may never be answered and `--virtual-time-budget` never runs
/// out: two runs in five against a fresh engine without the warm-up, about one in ten
/// with it. Killing the browser closes its connections, which frees the workers. A good
/// run takes a second.
fn chromium(
    addr: SocketAddr,
    profile: &Path,
    url: &str,
    args: &[&str],
    timeout: Duration,
) -> Res<Output> {
    for attempt in 1..=5 {
        warm_up(addr, 16)?;
        let dir = profile.join(format!("profile-{attempt}"));
        let mut child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-dev-shm-usage",
            ])
            .arg(format!("--user-data-dir={}", dir.display()))
            .args(args)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let deadline = Instant::now() + timeout;
        loop {
            if child.try_wait()?.is_some() {
                return Ok(child.wait_with_output()?);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                eprintln!("note: chromium timed out (attempt {attempt}); trying again");
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Err(format!("chromium did not finish within {timeout:?}, five times").into())
}

/// Leaves idle workers in the server's connection pool, so that the browser's first
/// parallel connections each find one: `n` connections held open at once (sending
/// nothing) make the pool start threads for them, and closing them sets those idle for
/// a few seconds.
fn warm_up(addr: SocketAddr, n: usize) -> Res<()> {
    let held = (0..n)
        .map(|_| TcpStream::connect(addr))
        .collect::<Result<Vec<_>, _>>()?;
    std::thread::sleep(Duration::from_millis(300));
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    Ok(())
}

/// The `data-value` of the element with `id` in serialised HTML.
fn data_value<'a>(dom: &'a str, id: &str) -> Option<&'a str> {
    let at = dom.find(&format!("id=\"{id}\""))?;
    let tag_end = at + dom[at..].find('>')?;
    let tag = &dom[at..tag_end];
    let value = &tag[tag.find("data-value=\"")? + "data-value=\"".len()..];
    Some(&value[..value.find('"')?])
}

#[test]
fn the_dashboard_in_headless_chromium_shows_live_numbers_from_the_engine() -> TestResult {
    let required = std::env::var("WEIR_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
    if !have(CHROMIUM) {
        if required {
            return Err("chromium is required (WEIR_REQUIRE_CHROMIUM=1) but not found".into());
        }
        eprintln!("note: chromium not found; skipping the dashboard check");
        return Ok(());
    }
    // 1000 events/s per partition at 1 ms per event: event time keeps up with the clock.
    let pipelines = generator_pipeline("clicks", 2000) + &generator_pipeline("orders", 600);
    // A checkpoint every second, so the page has some to list.
    let engine = Engine::start_with("checkpoint_interval = 1", "", &pipelines)?;
    engine.wait_for("/pipelines/clicks/stats", Duration::from_secs(30), |s| {
        s["results"].as_u64().is_some_and(|n| n > 0)
    })?;
    engine.wait_for("/checkpoints", Duration::from_secs(30), |c| {
        c["checkpoints"]
            .as_array()
            .is_some_and(|list| list.len() >= 2)
    })?;
    let url = format!("http://{}/", engine.http);
    let scratch = tempfile::tempdir()?;

    // The page polls every second; five seconds of (virtual) time see several updates.
    let out = chromium(
        engine.http,
        scratch.path(),
        &url,
        &["--virtual-time-budget=5000", "--dump-dom"],
        Duration::from_secs(20),
    )?;
    let dom = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {stderr}");
    let number = |id: &str| -> Res<f64> {
        let raw = data_value(&dom, id).ok_or_else(|| format!("no #{id} in the page:\n{dom}"))?;
        raw.parse::<f64>()
            .map_err(|e| format!("#{id} data-value {raw:?}: {e}").into())
    };
    for id in ["clicks", "orders"] {
        let rate = number(&format!("rate-{id}"))?;
        assert!(rate > 0.0, "a live event rate for {id}: {rate}");
        assert!(
            number(&format!("processed-{id}"))? > 0.0,
            "processed of {id}"
        );
        assert!(
            number(&format!("windows-{id}"))? > 0.0,
            "open windows of {id}"
        );
        assert_eq!(data_value(&dom, &format!("state-{id}")), Some("running"));
    }
    assert!(number("results-clicks")? > 0.0, "results of clicks");
    assert_eq!(data_value(&dom, "health"), Some("ok"), "the health badge");
    assert!(
        dom.contains("id=\"shard-0\"") && dom.contains("id=\"shard-1\""),
        "shard rows"
    );
    assert!(number("uptime")? > 0.0, "uptime");
    assert!(dom.contains("id=\"checkpoint-"), "checkpoint rows");

    // A screenshot of the live page: a real PNG, kept where asked.
    let png = scratch.path().join("dashboard.png");
    let out = chromium(
        engine.http,
        scratch.path(),
        &url,
        &[
            "--virtual-time-budget=8000",
            "--window-size=1280,900",
            "--hide-scrollbars",
            &format!("--screenshot={}", png.display()),
        ],
        Duration::from_secs(20),
    )?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png)?;
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
        "a PNG"
    );
    if let Ok(keep) = std::env::var("WEIR_DASHBOARD_SCREENSHOT") {
        std::fs::copy(&png, &keep)?;
        eprintln!("note: dashboard screenshot saved to {keep}");
    }
    Ok(())
}
