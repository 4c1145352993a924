//! Backpressure reaches TCP clients: while a pipeline is stopped (its shard reads no
//! sources), the TCP source stops reading its sockets once its bounded backlog is full,
//! TCP flow control blocks the client's writes, and nothing is buffered without bound;
//! once the pipeline starts again, everything written is acknowledged and counted.

mod tcp_common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tcp_common::*;

/// `POST path` on the admin API; returns the status code.
fn post(port: u16, path: &str) -> Result<u16, Error> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    let code = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad answer {answer:?}"))?;
    Ok(code)
}

#[test]
fn a_stopped_pipeline_blocks_its_tcp_clients_instead_of_buffering_and_loses_nothing() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let (http, metrics) = (free_port()?, free_port()?);
    let config = config(port, 1, 500, "").replace(
        "[admin]\nenabled = false",
        &format!("[admin]\nhttp = \"127.0.0.1:{http}\"\nmetrics = \"127.0.0.1:{metrics}\""),
    );
    let engine = Engine::start(dir.path(), &config, port)?;
    assert_eq!(post(http, "/pipelines/t/stop")?, 200);

    let mut client = Client::connect(port)?;
    let acked = Arc::new(AtomicU64::new(0));
    let reader = {
        let stream = client.stream.try_clone()?;
        let acked = Arc::clone(&acked);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if let Some(n) = v["ack"].as_u64() {
                    acked.store(n, Ordering::Relaxed);
                }
            }
        })
    };

    let chunk: Vec<u8> = (0..1000).flat_map(|v| event("k", v).into_bytes()).collect();
    client
        .stream
        .set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut written: u64 = 0;
    let mut lines: u64 = 0;
    let mut partial = None;
    let started = Instant::now();
    'writing: while started.elapsed() < Duration::from_secs(20) {
        let mut at = 0;
        while at < chunk.len() {
            match client.stream.write(&chunk[at..]) {
                Ok(n) => {
                    at += n;
                    written += n as u64;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    partial = Some(at);
                    break 'writing;
                }
                Err(e) => return Err(e.into()),
            }
        }
        lines += 1000;
    }
    let Some(at) = partial else {
        return Err(format!("writes never blocked ({written} bytes in 20 s)").into());
    };
    assert!(
        written < 64 << 20,
        "{written} bytes were taken in while the pipeline was stopped"
    );

    assert_eq!(post(http, "/pipelines/t/start")?, 200);
    client.stream.set_write_timeout(None)?;
    client.stream.write_all(&chunk[at..])?;
    lines += 1000;
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.load(Ordering::Relaxed) < lines && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(acked.load(Ordering::Relaxed), lines);
    let seen = wait_for_count(&out_file(dir.path()), lines, Duration::from_secs(20))?;
    assert_eq!(seen, lines);
    client.stream.shutdown(Shutdown::Write)?;
    let _ = reader.join();
    let status = engine.terminate()?;
    assert!(status.success(), "weir exited with {status}");
    Ok(())
}
