//! Helpers for the fault tests: a small tmpfs mounted by the test (as root), a `weir run`
//! child with its log, `/health` polling, and reading result files as sorted lines.

#![allow(dead_code, reason = "each test file uses a part of the helpers")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// A tmpfs of a given size mounted on a folder; unmounted on drop.
pub struct Tmpfs {
    pub path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it, e.g. `4m`) on `path`
    /// (created). `None`, with the reason printed, where this machine cannot mount one
    /// (not root, no `mount`, or a sandbox that forbids it): the caller skips.
    pub fn mount(path: &Path, size: &str) -> Res<Option<Self>> {
        std::fs::create_dir_all(path)?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output();
        match out {
            Ok(o) if o.status.success() => Ok(Some(Self {
                path: path.to_path_buf(),
            })),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs here ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                Ok(None)
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                Ok(None)
            }
        }
    }

    /// Gives the tmpfs a new size (`mount -o remount,size=…`).
    pub fn resize(&self, size: &str) -> Res<()> {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()?;
        if !st.success() {
            return Err(format!("remount {} to {size}: {st}", self.path.display()).into());
        }
        Ok(())
    }

    /// Fills the tmpfs up with a file `filler` until the kernel says it is full.
    pub fn fill(&self) -> Res<PathBuf> {
        use std::io::Write;
        let path = self.path.join("filler");
        let mut f = std::fs::File::create(&path)?;
        let chunk = vec![0xAAu8; 4096];
        loop {
            match f.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(path)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// A `weir run` of `<dir>/weir.toml` (cwd `dir`, log in `<dir>/<name>.log`); killed on
/// drop.
pub struct Weir {
    pub child: Child,
    pub log: PathBuf,
}

impl Weir {
    pub fn spawn(dir: &Path, config: &str, name: &str) -> Res<Self> {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config)?;
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["run", "--config"])
            .arg(&path)
            .current_dir(dir)
            .env("WEIR_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        Ok(Self { child, log })
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most 30 s) until the engine logs "weir running".
    pub fn wait_running(&self) -> Res<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.log().contains("weir running") {
            if Instant::now() > deadline {
                return Err(format!("weir did not start: {}", self.log()).into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Waits at most `timeout` for the process to exit.
    pub fn wait(&mut self, timeout: Duration) -> Res<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait()? {
                return Ok(st);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(
                    format!("weir did not exit within {timeout:?}; log:\n{}", self.log()).into(),
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, signal: &str) -> Res<()> {
        let st = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()?;
        if !st.success() {
            return Err(format!("kill -{signal}: {st}").into());
        }
        Ok(())
    }

    pub fn kill9(&mut self) -> Res<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Weir {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `GET /health`: (status, body); `None` while nothing answers.
pub fn health(addr: SocketAddr) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /health HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    Some((status, body))
}

/// Polls `/health` until `want` holds of an answer, for at most `timeout`; returns it.
pub fn wait_health(
    addr: SocketAddr,
    timeout: Duration,
    want: impl Fn(u16, &str) -> bool,
) -> Res<(u16, String)> {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    while Instant::now() < deadline {
        if let Some((status, body)) = health(addr) {
            if want(status, &body) {
                return Ok((status, body));
            }
            last = Some((status, body));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("/health never became what was wanted; last answer: {last:?}").into())
}

/// The lines of a file, sorted (a missing file has none).
pub fn sorted_lines(path: &Path) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

/// Runs a config to its end (it must have bounded sources) and returns the exit status.
pub fn run_to_end(dir: &Path, config: &str, name: &str) -> Res<(ExitStatus, String)> {
    let mut w = Weir::spawn(dir, config, name)?;
    let st = w.wait(Duration::from_secs(120))?;
    Ok((st, w.log()))
}
