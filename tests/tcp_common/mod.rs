//! Helpers of the TCP-source tests: a free port, an engine process with a TCP pipeline,
//! a line-protocol client, and reading window results.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;
pub type Error = Box<dyn std::error::Error>;

/// Window results: (key, window start, window end) → (revision, count).
pub type Windows = BTreeMap<(String, i64, i64), (u64, u64)>;

pub fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

/// A port nothing listens on right now (on 127.0.0.1).
pub fn free_port() -> Result<u16, Error> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A TCP pipeline `t` on `port`: tumbling windows of `window_ms`, count and sum, an
/// exactly-once file sink `out/r.jsonl`, watermarks that close the last windows soon
/// after input stops, checkpoints every second. `extra` is added to `[[pipelines]]`'s
/// source table (e.g. `, max_connections = 3`).
pub fn config(port: u16, shards: usize, window_ms: u64, source_extra: &str) -> String {
    format!(
        r#"
data_dir = "data"
[processing]
parallelism = {shards}
checkpoint_interval = 1.0
[storage]
segment_bytes = 1048576
[admin]
enabled = false
[[pipelines]]
id = "t"
source = {{ type = "tcp", bind = "127.0.0.1:{port}"{source_extra} }}
event = {{ key = "key", time = "ts", value = "value" }}
window = {{ type = "tumbling", size_ms = {window_ms} }}
watermark = {{ delay_ms = 3000, idle_timeout_ms = 300, max_idle_lag_ms = 3000 }}
aggregates = ["count", "sum"]
sinks = [{{ type = "file", path = "out/r.jsonl" }}]
"#
    )
}

/// A running `weir run`.
pub struct Engine {
    pub child: Child,
    pub port: u16,
}

impl Engine {
    /// Writes `config` to `dir/weir.toml`, starts the engine there and waits until its
    /// TCP source accepts.
    pub fn start(dir: &Path, config: &str, port: u16) -> Result<Engine, Error> {
        std::fs::write(dir.join("weir.toml"), config)?;
        let child = weir()
            .args(["run", "--config", "weir.toml"])
            .current_dir(dir)
            .env("WEIR_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut engine = Engine { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = engine.child.try_wait()? {
                return Err(format!("weir exited at start: {status}").into());
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(engine);
            }
            if Instant::now() > deadline {
                engine.kill();
                return Err("the TCP source did not start listening".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits (at most 30 s) for the exit status.
    pub fn terminate(mut self) -> Result<ExitStatus, Error> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                self.kill();
                return Err("weir did not stop within 30 s of SIGTERM".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// Runs `weir load --target 127.0.0.1:<port> <args>` to its end.
pub fn load(port: u16, args: &[&str]) -> Result<Output, Error> {
    Ok(weir()
        .arg("load")
        .arg("--target")
        .arg(format!("127.0.0.1:{port}"))
        .args(args)
        .output()?)
}

/// A value of `key=value` in `weir load`'s summary line.
pub fn summary_value(stdout: &[u8], key: &str) -> Option<f64> {
    let text = String::from_utf8_lossy(stdout);
    let line = text.lines().rev().find(|l| l.contains("events_per_s="))?;
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

/// Results by (key, window start, window end): the count of the highest revision.
pub fn results(path: &Path) -> Result<Windows, Error> {
    let mut out = Windows::new();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let key = (
            v["key"].as_str().ok_or("key")?.to_owned(),
            v["window_start"].as_i64().ok_or("start")?,
            v["window_end"].as_i64().ok_or("end")?,
        );
        let revision = v["revision"].as_u64().ok_or("revision")?;
        let count = v["count"].as_u64().ok_or("count")?;
        let slot = out.entry(key).or_insert((revision, count));
        if revision >= slot.0 {
            *slot = (revision, count);
        }
    }
    Ok(out)
}

/// The sum of `count` over all windows (latest revision of each).
pub fn counted(path: &Path) -> Result<u64, Error> {
    Ok(results(path)?.values().map(|(_, c)| c).sum())
}

/// Waits until the results count `want` events (or `timeout` passes); returns the
/// count last seen.
pub fn wait_for_count(path: &Path, want: u64, timeout: Duration) -> Result<u64, Error> {
    let deadline = Instant::now() + timeout;
    loop {
        let n = counted(path)?;
        if n >= want || Instant::now() > deadline {
            return Ok(n);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn out_file(dir: &Path) -> PathBuf {
    dir.join("out").join("r.jsonl")
}

/// A line-protocol client over a blocking socket.
pub struct Client {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(port: u16) -> Result<Client, Error> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        stream.set_nodelay(true)?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Client { stream, reader })
    }

    pub fn send(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.stream.write_all(bytes)?;
        Ok(())
    }

    /// The next reply line, parsed; `None` at the end of the stream.
    pub fn reply(&mut self) -> Result<Option<serde_json::Value>, Error> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        Ok(Some(serde_json::from_str(line.trim())?))
    }

    /// Reads replies until an ack of at least `seq`; returns the other replies seen.
    pub fn until_ack(&mut self, seq: u64) -> Result<Vec<serde_json::Value>, Error> {
        let mut others = Vec::new();
        loop {
            let Some(r) = self.reply()? else {
                return Err(format!("connection ended before ack {seq}; saw {others:?}").into());
            };
            match r["ack"].as_u64() {
                Some(n) if n >= seq => return Ok(others),
                Some(_) => {}
                None => others.push(r),
            }
        }
    }
}

/// An event line with the current wall-clock time.
pub fn event(key: &str, value: u64) -> String {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{{\"key\":\"{key}\",\"ts\":{ts},\"value\":{value}}}\n")
}
