//! Many keep-alive connections at once, each held open, are all answered, also on a
//! fresh server; connections left idle are closed after the idle timeout.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use weir_admin::{AdminServer, ConnectionTimeouts};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn config() -> weir_config::Admin {
    weir_config::Admin {
        enabled: true,
        http: "127.0.0.1:0".into(),
        metrics: "127.0.0.1:0".into(),
        token: None,
    }
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n";

/// Reads one answer on a keep-alive connection; returns its status.
fn read_answer(reader: &mut BufReader<TcpStream>) -> Res<u16> {
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| format!("no status line: {status_line:?}"))?
        .parse()?;
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(status)
}

/// Opens a keep-alive connection, asks `/health` once and returns it still open.
fn ask_and_hold(addr: SocketAddr) -> Res<BufReader<TcpStream>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(HEALTH)?;
    let mut reader = BufReader::new(stream);
    let status = read_answer(&mut reader)?;
    if status != 200 {
        return Err(format!("/health answered {status}").into());
    }
    Ok(reader)
}

#[test]
fn a_burst_of_held_keep_alive_connections_on_a_fresh_server_is_answered_in_full() -> TestResult {
    const CONNECTIONS: usize = 16;
    // The connection pool of a fresh server is where answers went missing; each round
    // starts a new one.
    for round in 0..5 {
        let server = AdminServer::start(&config(), common::Fixture::new())?;
        let http = server.http_addr().ok_or("no listener")?;
        let start = Arc::new(Barrier::new(CONNECTIONS));
        let clients: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                let start = Arc::clone(&start);
                std::thread::spawn(move || {
                    start.wait();
                    ask_and_hold(http).map_err(|e| e.to_string())
                })
            })
            .collect();
        let mut held = Vec::new();
        let mut failed = Vec::new();
        for client in clients {
            match client.join() {
                Ok(Ok(reader)) => held.push(reader),
                Ok(Err(e)) => failed.push(e),
                Err(_) => failed.push("client thread panicked".to_owned()),
            }
        }
        assert!(
            failed.is_empty(),
            "round {round}: {} of {CONNECTIONS} held connections were not answered: {failed:?}",
            failed.len()
        );
        // With all of them held open and idle, a new connection is answered too, and
        // so is a second request on a held one.
        drop(ask_and_hold(http)?);
        let first = held.first_mut().ok_or("no connection")?;
        first.get_mut().write_all(HEALTH)?;
        assert_eq!(read_answer(first)?, 200);
    }
    Ok(())
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() -> TestResult {
    let idle = Duration::from_millis(300);
    let server = AdminServer::builder(&config(), common::Fixture::new())
        .connection_timeouts(ConnectionTimeouts {
            idle,
            write: Duration::from_secs(5),
        })
        .start()?;
    let http = server.http_addr().ok_or("no listener")?;
    let mut reader = ask_and_hold(http)?;
    // Used again within the timeout, it still answers.
    std::thread::sleep(idle / 3);
    reader.get_mut().write_all(HEALTH)?;
    assert_eq!(read_answer(&mut reader)?, 200);

    let quiet = Instant::now();
    let mut rest = Vec::new();
    let read = reader.read_to_end(&mut rest);
    assert!(
        read.is_ok(),
        "the server did not close the idle connection: {read:?}"
    );
    let waited = quiet.elapsed();
    assert!(
        waited >= idle / 2 && waited < Duration::from_secs(4),
        "closed after {waited:?}, the idle timeout is {idle:?}"
    );
    // The listener goes on serving new connections.
    drop(ask_and_hold(http)?);
    Ok(())
}
