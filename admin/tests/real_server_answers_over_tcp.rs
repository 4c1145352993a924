//! The real tiny_http server on ephemeral ports: answers over TCP on both listeners,
//! checks the token, refuses big bodies, and releases its ports on shutdown.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use weir_admin::{AdminServer, Error, Listener};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn config(http: &str, metrics: &str, token: Option<&str>) -> weir_config::Admin {
    weir_config::Admin {
        enabled: true,
        http: http.into(),
        metrics: metrics.into(),
        token: token.map(str::to_owned),
    }
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends one HTTP/1.1 request and reads the whole answer (the server closes after it).
fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    extra: &str,
    body: &[u8],
) -> Result<Answer, Box<dyn std::error::Error>> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    // The server may answer (and close) before reading a body it refuses.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let raw = String::from_utf8(raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or("no end of headers")?;
    let status = head.split(' ').nth(1).ok_or("no status")?.parse()?;
    Ok(Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

#[test]
fn real_server_answers_on_both_listeners_and_stops_cleanly() -> TestResult {
    let server = AdminServer::start(
        &config("127.0.0.1:0", "127.0.0.1:0", Some("tok")),
        common::Fixture::new(),
    )?;
    let http = server.http_addr().ok_or("no http listener")?;
    let metrics = server.metrics_addr().ok_or("no metrics listener")?;
    assert_ne!(http, metrics);

    let health = send(http, "GET", "/health", "", b"")?;
    assert_eq!(
        (health.status, health.body.as_str()),
        (200, r#"{"status":"ok"}"#)
    );
    assert_eq!(health.header("Content-Type"), Some("application/json"));

    let status = send(http, "GET", "/status", "", b"")?;
    assert_eq!(status.status, 200);
    let status: serde_json::Value = serde_json::from_str(&status.body)?;
    assert_eq!(status["app_name"], "weir-test");

    let key = send(http, "GET", "/state/clicks/user%2F42%20x", "", b"")?;
    assert_eq!(key.status, 200);
    assert!(key.body.contains(r#""key":"user/42 x""#), "{}", key.body);

    for addr in [http, metrics] {
        let scrape = send(addr, "GET", "/metrics", "", b"")?;
        assert_eq!(scrape.status, 200);
        assert_eq!(
            scrape.header("Content-Type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        assert!(
            scrape
                .body
                .contains("# TYPE stream_events_processed_total counter")
        );
        assert_eq!(send(addr, "GET", "/health", "", b"")?.status, 200);
    }
    let only_metrics = send(metrics, "GET", "/status", "", b"")?;
    assert_eq!(only_metrics.status, 404);
    assert!(only_metrics.body.contains("\"error\""));

    let denied = send(http, "POST", "/checkpoint", "", b"")?;
    assert_eq!(denied.status, 401);
    assert_eq!(denied.header("WWW-Authenticate"), Some("Bearer"));
    let taken = send(
        http,
        "POST",
        "/checkpoint",
        "Authorization: Bearer tok\r\n",
        b"",
    )?;
    assert_eq!(taken.status, 200, "{}", taken.body);
    assert!(taken.body.contains(r#""id":8"#));

    let wrong_method = send(http, "DELETE", "/pipelines", "", b"")?;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.header("Allow"), Some("GET, HEAD"));

    let big = vec![b'x'; 70 * 1024];
    let refused = send(
        http,
        "POST",
        "/pipelines/clicks/stop",
        "Authorization: Bearer tok\r\n",
        &big,
    )?;
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("larger than 65536 bytes"));

    let head = send(http, "HEAD", "/status", "", b"")?;
    assert_eq!((head.status, head.body.as_str()), (200, ""));

    server.shutdown();
    // tiny_http's accept thread closes its socket just after the server is dropped.
    for addr in [http, metrics] {
        let closed = (0..100).any(|_| {
            let refused = TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err();
            if !refused {
                std::thread::sleep(Duration::from_millis(10));
            }
            refused
        });
        assert!(closed, "{addr} still open after shutdown");
    }
    Ok(())
}

#[test]
fn one_address_for_both_serves_everything_on_one_listener() -> TestResult {
    let probe = TcpListener::bind("127.0.0.1:0")?;
    let addr = probe.local_addr()?.to_string();
    drop(probe);
    let server = AdminServer::start(&config(&addr, &addr, None), common::Fixture::new())?;
    assert_eq!(server.http_addr(), server.metrics_addr());
    let http = server.http_addr().ok_or("no listener")?;
    assert_eq!(send(http, "GET", "/status", "", b"")?.status, 200);
    assert_eq!(send(http, "GET", "/metrics", "", b"")?.status, 200);
    Ok(())
}

#[test]
fn start_errors_name_the_listener_and_the_core() -> TestResult {
    let taken = TcpListener::bind("127.0.0.1:0")?;
    let addr = taken.local_addr()?.to_string();
    let err = AdminServer::start(&config("127.0.0.1:0", &addr, None), common::Fixture::new()).err();
    assert!(
        matches!(&err, Some(Error::Bind { listener: Listener::Metrics, address, .. }) if *address == addr),
        "{err:?}"
    );
    let text = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        text.starts_with(&format!("admin.metrics: cannot listen on {addr}: ")),
        "{text}"
    );

    let err = AdminServer::builder(
        &config("127.0.0.1:0", "127.0.0.1:0", None),
        common::Fixture::new(),
    )
    .core(Some(100_000))
    .start()
    .err();
    assert!(
        matches!(err, Some(Error::NoSuchCore { core: 100_000, .. })),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn pinned_and_disabled_servers_start() -> TestResult {
    let first_core = core_affinity_first().ok_or("no core ids")?;
    let pinned = AdminServer::builder(
        &config("127.0.0.1:0", "127.0.0.1:0", None),
        common::Fixture::new(),
    )
    .core(Some(first_core))
    .start()?;
    let http = pinned.http_addr().ok_or("no listener")?;
    assert_eq!(send(http, "GET", "/health", "", b"")?.status, 200);
    drop(pinned);

    let mut off = config("127.0.0.1:0", "127.0.0.1:0", None);
    off.enabled = false;
    let disabled = AdminServer::start(&off, common::Fixture::new())?;
    assert_eq!(
        (disabled.http_addr(), disabled.metrics_addr()),
        (None, None)
    );
    Ok(())
}

/// The first core this process may run on (from /proc, to need no extra crate).
fn core_affinity_first() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    list.trim().split([',', '-']).next()?.parse().ok()
}
