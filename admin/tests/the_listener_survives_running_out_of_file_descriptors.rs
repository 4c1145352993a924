//! When the process runs out of file descriptors, connections wait in the listen queue
//! and are answered once descriptors are free again; the listener never goes deaf.
//!
//! In a test binary of its own: it lowers the process's descriptor limit.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use weir_admin::AdminServer;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn open_descriptors() -> Result<u64, Box<dyn std::error::Error>> {
    Ok(std::fs::read_dir("/proc/self/fd")?.count() as u64)
}

#[test]
fn connections_are_answered_again_once_descriptors_are_free() -> TestResult {
    let config = weir_config::Admin {
        enabled: true,
        http: "127.0.0.1:0".into(),
        metrics: "127.0.0.1:0".into(),
        token: None,
    };
    let server = AdminServer::start(&config, common::Fixture::new())?;
    let http = server.http_addr().ok_or("no listener")?;

    let before = getrlimit(Resource::Nofile);
    let tight = open_descriptors()? + 24;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(tight),
            maximum: before.maximum,
        },
    )?;
    // Clients in this process take descriptors until there are none left, for them or
    // for the server's accept; the last connections wait in the listen queue.
    let mut clients = Vec::new();
    let mut exhausted = false;
    for _ in 0..200 {
        match TcpStream::connect(http) {
            Ok(stream) => clients.push(stream),
            Err(_) => {
                exhausted = true;
                break;
            }
        }
    }
    // Let the server try (and fail) to accept for a while.
    std::thread::sleep(Duration::from_millis(300));
    drop(clients);
    setrlimit(Resource::Nofile, before)?;
    assert!(exhausted, "the descriptor limit was never reached");

    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut stream = TcpStream::connect(http)?;
            stream.set_read_timeout(Some(Duration::from_secs(2)))?;
            stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer)?;
            Ok(answer)
        })();
        match attempt {
            Ok(answer) if answer.starts_with("HTTP/1.1 200") => break answer,
            other if Instant::now() > deadline => {
                return Err(format!("the listener did not answer again: {other:?}").into());
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    assert!(answer.contains("ok"), "{answer}");
    Ok(())
}
