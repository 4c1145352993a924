//! A client that announces a body and never sends it, or streams a huge chunked body,
//! does not stop the listener from answering everyone else.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use weir_admin::AdminServer;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn config() -> weir_config::Admin {
    weir_config::Admin {
        enabled: true,
        http: "127.0.0.1:0".into(),
        metrics: "127.0.0.1:0".into(),
        token: Some("tok".into()),
    }
}

fn exchange(addr: SocketAddr, raw: &[u8]) -> Result<String, Box<dyn std::error::Error>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(raw)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(String::from_utf8(answer)?)
}

#[test]
fn a_client_that_never_sends_its_body_does_not_stall_the_listener() -> TestResult {
    let server = AdminServer::start(&config(), common::Fixture::new())?;
    let http = server.http_addr().ok_or("no listener")?;
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(http)?;
        s.write_all(
            b"POST /checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\nonly a little",
        )?;
        stalled.push(s);
    }
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let answer = exchange(
        http,
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )?;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    drop(stalled);
    Ok(())
}

#[test]
fn a_chunked_body_over_64_kib_is_refused() -> TestResult {
    let server = AdminServer::start(&config(), common::Fixture::new())?;
    let http = server.http_addr().ok_or("no listener")?;
    let mut raw = b"POST /checkpoint HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..20 {
        raw.extend_from_slice(b"1000\r\n");
        raw.extend_from_slice(&[b'x'; 0x1000]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let answer = exchange(http, &raw)?;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("larger than 65536 bytes"), "{answer}");

    let small = b"POST /checkpoint HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
    let answer = exchange(http, small)?;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    Ok(())
}
