//! The acknowledgement protocol of docs/PROTOCOL.md, line by line: a producer's resend
//! is deduplicated, a second connection of a producer fences the first, a hello that
//! would leave a gap is refused with the point to resend from, and connections past
//! `max_connections` are refused with a reason.

mod tcp_common;

use std::time::Duration;

use tcp_common::*;

fn lines(key: &str, n: u64) -> String {
    (0..n).map(|v| event(key, v)).collect()
}

#[test]
fn a_producer_that_reconnects_and_resends_has_every_line_stored_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let engine = Engine::start(dir.path(), &config(port, 2, 500, ""), port)?;

    let mut first = Client::connect(port)?;
    first.send(b"{\"producer\":\"p\"}\n")?;
    let hello = first.reply()?.ok_or("no hello reply")?;
    assert_eq!(hello["producer"], "p");
    assert_eq!(hello["acked"], 0);
    first.send(lines("k", 10).as_bytes())?;
    assert!(first.until_ack(10)?.is_empty());
    drop(first);

    // As if acks 6..10 had been lost: resend from 6, plus five new lines.
    let mut again = Client::connect(port)?;
    again.send(b"{\"producer\":\"p\",\"seq\":6}\n")?;
    let hello = again.reply()?.ok_or("no hello reply")?;
    assert_eq!(hello["acked"], 10);
    again.send(lines("k", 10).as_bytes())?;
    assert!(again.until_ack(15)?.is_empty());
    drop(again);

    let mut third = Client::connect(port)?;
    third.send(b"{\"producer\":\"p\"}\n")?;
    assert_eq!(third.reply()?.ok_or("no hello reply")?["acked"], 15);
    drop(third);

    assert_eq!(
        wait_for_count(&out_file(dir.path()), 15, Duration::from_secs(20))?,
        15
    );
    let status = engine.terminate()?;
    assert!(status.success());
    assert_eq!(counted(&out_file(dir.path()))?, 15);
    Ok(())
}

#[test]
fn a_second_connection_of_a_producer_fences_the_first() -> TestResult {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let _engine = Engine::start(dir.path(), &config(port, 2, 500, ""), port)?;

    let mut old = Client::connect(port)?;
    old.send(b"{\"producer\":\"q\"}\n")?;
    old.reply()?;
    old.send(lines("k", 3).as_bytes())?;
    old.until_ack(3)?;

    let mut new = Client::connect(port)?;
    new.send(b"{\"producer\":\"q\"}\n")?;
    assert_eq!(new.reply()?.ok_or("no hello reply")?["acked"], 3);

    old.send(lines("k", 1).as_bytes())?;
    let reply = old
        .reply()?
        .ok_or("the fenced connection closed without a reason")?;
    let why = reply["error"].as_str().ok_or("no error")?;
    assert!(why.contains("fenced"), "{why}");
    assert!(old.reply()?.is_none(), "the fenced connection is closed");

    new.send(lines("k", 2).as_bytes())?;
    new.until_ack(5)?;
    Ok(())
}

#[test]
fn a_hello_that_would_leave_a_gap_is_refused_with_the_point_to_resend_from() -> TestResult {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let _engine = Engine::start(dir.path(), &config(port, 1, 500, ""), port)?;

    let mut c = Client::connect(port)?;
    c.send(b"{\"producer\":\"g\"}\n")?;
    c.reply()?;
    c.send(lines("k", 4).as_bytes())?;
    c.until_ack(4)?;
    drop(c);

    let mut c = Client::connect(port)?;
    c.send(b"{\"producer\":\"g\",\"seq\":9}\n")?;
    let reply = c.reply()?.ok_or("closed without a reason")?;
    let why = reply["error"].as_str().ok_or("no error")?;
    assert!(why.contains("resend from 5"), "{why}");
    assert!(c.reply()?.is_none());

    // A seq that would wrap (once: no ack ever, and the producer's dedup lost) is
    // refused with the bound; the producer's lines stay as they were.
    let mut c = Client::connect(port)?;
    c.send(b"{\"producer\":\"g\",\"seq\":18446744073709551615}\n")?;
    let reply = c.reply()?.ok_or("closed without a reason")?;
    let why = reply["error"].as_str().ok_or("no error")?;
    assert!(why.contains("9007199254740992"), "{why}");
    assert!(c.reply()?.is_none());
    let mut c = Client::connect(port)?;
    c.send(b"{\"producer\":\"g\"}\n")?;
    let hello = c.reply()?.ok_or("no hello reply")?;
    assert_eq!(hello["acked"], 4, "{hello}");
    drop(c);

    let mut c = Client::connect(port)?;
    c.send(b"{\"producer\":\"\"}\n")?;
    let reply = c.reply()?.ok_or("closed without a reason")?;
    assert!(
        reply["error"]
            .as_str()
            .is_some_and(|e| e.contains("producer"))
    );
    assert!(c.reply()?.is_none());
    Ok(())
}

#[test]
fn connections_past_max_connections_are_refused_with_a_reason() -> TestResult {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let _engine = Engine::start(
        dir.path(),
        &config(port, 2, 500, ", max_connections = 2"),
        port,
    )?;
    // Readiness probes of Engine::start may still be closing: retry the first ones.
    let open = |name: &str| -> Result<Client, Error> {
        for _ in 0..50 {
            let mut c = Client::connect(port)?;
            c.send(format!("{{\"producer\":\"{name}\"}}\n").as_bytes())?;
            match c.reply()? {
                Some(r) if r.get("acked").is_some() => return Ok(c),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        Err("no place for a connection".into())
    };
    let a = open("a")?;
    let _b = open("b")?;

    let mut c = Client::connect(port)?;
    let reply = c.reply()?.ok_or("refused without a reason")?;
    let why = reply["error"].as_str().ok_or("no error")?;
    assert!(why.contains("too many connections"), "{why}");
    assert!(c.reply()?.is_none());

    drop(a);
    let _c = open("c")?;
    Ok(())
}
