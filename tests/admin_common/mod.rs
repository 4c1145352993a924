//! Helpers for the admin end-to-end tests: a real `weir run` on free ports, killed when
//! the test ends (pass or fail), and plain HTTP/1.0 over `TcpStream`.

#![allow(dead_code, reason = "each test file uses a part of the helpers")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;
pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// A port nobody listens on right now (the OS picks it; the listener is closed again).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A pipeline reading an endless generator at `rate` events/s into a blackhole.
pub fn generator_pipeline(id: &str, rate: u32) -> String {
    format!(
        r#"
[[pipelines]]
id = "{id}"
source = {{ type = "generator", keys = 200, rate = {rate}, total = 0, partitions = 2 }}
event = {{ key = "user", time = "ts", value = "amount" }}
window = {{ type = "tumbling", size_ms = 1000, allowed_lateness_ms = 500 }}
aggregates = ["count", "sum", "p99"]
sinks = [{{ type = "blackhole" }}]
"#
    )
}

/// A running `weir run` with its admin API; killed on drop.
pub struct Engine {
    child: Child,
    dir: tempfile::TempDir,
    /// The REST listener.
    pub http: SocketAddr,
    /// The metrics listener.
    pub metrics: SocketAddr,
}

impl Engine {
    /// Starts `weir run` with two shards, `[admin]` on free ports (plus `admin_extra`
    /// lines, e.g. a token) and `pipelines`, and waits until `/health` answers 200.
    pub fn start(pipelines: &str, admin_extra: &str) -> Res<Self> {
        Self::start_with("", admin_extra, pipelines)
    }

    /// As [`Engine::start`], with extra `[processing]` lines, and `rest` (pipelines and
    /// other tables) at the end.
    pub fn start_with(processing_extra: &str, admin_extra: &str, rest: &str) -> Res<Self> {
        let dir = tempfile::tempdir()?;
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let config = format!(
            r#"app_name = "e2e-admin"
data_dir = "data"
[processing]
parallelism = 2
{processing_extra}
[admin]
http = "{http}"
metrics = "{metrics}"
{admin_extra}
{rest}"#
        );
        let child = spawn_weir(dir.path(), &config)?;
        let mut engine = Self {
            child,
            dir,
            http,
            metrics,
        };
        engine.wait_healthy(Duration::from_secs(60))?;
        Ok(engine)
    }

    fn wait_healthy(&mut self, timeout: Duration) -> Res<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!("weir run exited ({status}): {}", self.log()).into());
            }
            if get(self.http, "/health").is_ok_and(|r| r.status == 200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("/health never answered 200: {}", self.log()).into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the engine wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("weir.log")).unwrap_or_default()
    }

    /// The engine's working folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `GET path` on the REST listener.
    pub fn get(&self, path: &str) -> Res<Reply> {
        get(self.http, path)
    }

    /// `POST path` on the REST listener, with a bearer token when given.
    pub fn post(&self, path: &str, token: Option<&str>) -> Res<Reply> {
        let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n"));
        request(self.http, "POST", path, auth.as_deref().unwrap_or(""))
    }

    /// `GET path` and its JSON body, which must come with `status`.
    pub fn json(&self, path: &str, status: u16) -> Res<serde_json::Value> {
        self.get(path)?.expect(status)
    }

    /// Polls `GET path` until `done` accepts its JSON (200), at most `timeout`.
    pub fn wait_for(
        &self,
        path: &str,
        timeout: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> Res<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.json(path, 200)?;
            if done(&v) {
                return Ok(v);
            }
            if Instant::now() > deadline {
                return Err(format!("{path} never got there; last answer: {v}").into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(mut self) -> Res<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(format!("weir run did not stop on SIGTERM: {}", self.log()).into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Never leave a server running, whatever the test did.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `weir run --config <dir>/weir.toml` in `dir`, stderr to `<dir>/weir.log`.
pub fn spawn_weir(dir: &Path, config: &str) -> Res<Child> {
    let path: PathBuf = dir.join("weir.toml");
    std::fs::write(&path, config)?;
    let log = std::fs::File::create(dir.join("weir.log"))?;
    Ok(Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "--config"])
        .arg(&path)
        .current_dir(dir)
        .env("WEIR_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?)
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The JSON body, checking the status first.
    pub fn expect(&self, status: u16) -> Res<serde_json::Value> {
        if self.status != status {
            return Err(format!("expected {status}, got {}: {}", self.status, self.body).into());
        }
        Ok(serde_json::from_str(&self.body)?)
    }

    /// Checks an error answer: the status, a JSON content type, and a non-empty
    /// `{"error": "..."}`; returns the message.
    pub fn error(&self, status: u16) -> Res<String> {
        let v = self.expect(status)?;
        let ct = self.header("Content-Type").unwrap_or_default();
        if !ct.starts_with("application/json") {
            return Err(format!("error with content type {ct:?}: {}", self.body).into());
        }
        match v["error"].as_str() {
            Some(e) if !e.is_empty() => Ok(e.to_owned()),
            _ => Err(format!("no error message in {}", self.body).into()),
        }
    }
}

/// `GET path`.
pub fn get(addr: SocketAddr, path: &str) -> Res<Reply> {
    request(addr, "GET", path, "")
}

/// Sends one HTTP/1.0 request (so the answer is never chunked and the server closes
/// after it) with `extra` header lines, and reads the whole answer.
pub fn request(addr: SocketAddr, method: &str, target: &str, extra: &str) -> Res<Reply> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let head = format!("{method} {target} HTTP/1.0\r\nHost: {addr}\r\n{extra}\r\n");
    stream.write_all(head.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let raw = String::from_utf8(raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or("no end of headers")?;
    let status = head
        .split(' ')
        .nth(1)
        .ok_or("no status")?
        .parse()
        .map_err(|e| format!("bad status line {head:?}: {e}"))?;
    Ok(Reply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

/// `GET /pipelines/{id}/stats` → `processed`.
pub fn processed(engine: &Engine, id: &str) -> Res<u64> {
    let stats = engine.json(&format!("/pipelines/{id}/stats"), 200)?;
    stats["processed"]
        .as_u64()
        .ok_or_else(|| format!("no processed in {stats}").into())
}

/// Whether a tool is on the PATH.
pub fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}
