//! The wire protocol of the TCP source: the hello line and the server's replies.
//!
//! The whole protocol is specified in docs/PROTOCOL.md; this module is its grammar.
//! Client to server: an optional hello line `{"producer":"<id>"}` or
//! `{"producer":"<id>","seq":<n>}` first, then event lines. Server to client, one JSON
//! object per line:
//!
//! * `{"producer":"<id>","acked":<n>,"partition":<p>}`: the answer to a hello;
//! * `{"ack":<n>}`: every line up to sequence number `n` is durable (cumulative);
//! * `{"seq":<n>,"error":"<why>","reason":"<label>"}`: line `n` is not an event;
//! * `{"error":"<why>"}`: the connection is refused or ends, and why.

use weir_engine::InvalidReason;
use weir_engine::result::write_json_str;

/// Longest producer id, in bytes.
pub(crate) const MAX_PRODUCER_BYTES: usize = 128;

/// A client's hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hello {
    /// The producer id.
    pub producer: String,
    /// The sequence number of the line after the hello, if the client says.
    pub seq: Option<u64>,
}

/// What the first line of a connection is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FirstLine {
    /// A hello.
    Hello(Hello),
    /// A hello that breaks the rules: the connection is refused with this reason.
    BadHello(String),
    /// An ordinary event line: the connection is anonymous.
    Event,
}

/// The largest `seq` a hello may give (2^53): sequence numbers never wrap, and every
/// JSON client holds them exactly.
pub(crate) const MAX_SEQ: u64 = 1 << 53;

/// Reads the first line of a connection. A hello is a JSON object whose members are
/// `producer` (a string) and optionally `seq` (an integer from 1 to [`MAX_SEQ`]), and
/// nothing else; any
/// other line is an event of an anonymous connection.
pub(crate) fn first_line(line: &[u8]) -> FirstLine {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(line)
    else {
        return FirstLine::Event;
    };
    if !map.contains_key("producer") || map.keys().any(|k| k != "producer" && k != "seq") {
        return FirstLine::Event;
    }
    let producer = match map.get("producer") {
        Some(serde_json::Value::String(p)) => p.clone(),
        _ => return FirstLine::BadHello("hello: producer must be a string".into()),
    };
    if producer.is_empty()
        || producer.len() > MAX_PRODUCER_BYTES
        || producer.chars().any(char::is_control)
    {
        return FirstLine::BadHello(format!(
            "hello: producer must be 1 to {MAX_PRODUCER_BYTES} bytes without control characters"
        ));
    }
    let seq = match map.get("seq") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_SEQ).contains(&n) => Some(n),
            _ => {
                return FirstLine::BadHello(format!(
                    "hello: seq must be an integer from 1 to {MAX_SEQ} (2^53)"
                ));
            }
        },
    };
    FirstLine::Hello(Hello { producer, seq })
}

/// Appends the answer to a hello.
pub(crate) fn hello_reply(out: &mut Vec<u8>, producer: &str, acked: u64, partition: u32) {
    out.extend_from_slice(b"{\"producer\":");
    write_json_str(out, producer);
    out.extend_from_slice(b",\"acked\":");
    out.extend_from_slice(decimal(acked).as_bytes());
    out.extend_from_slice(b",\"partition\":");
    out.extend_from_slice(decimal(u64::from(partition)).as_bytes());
    out.extend_from_slice(b"}\n");
}

/// Appends a cumulative acknowledgement.
pub(crate) fn ack(out: &mut Vec<u8>, seq: u64) {
    out.extend_from_slice(b"{\"ack\":");
    out.extend_from_slice(decimal(seq).as_bytes());
    out.extend_from_slice(b"}\n");
}

/// Appends the error reply for one line.
pub(crate) fn line_error(out: &mut Vec<u8>, seq: u64, reason: InvalidReason, message: &str) {
    out.extend_from_slice(b"{\"seq\":");
    out.extend_from_slice(decimal(seq).as_bytes());
    out.extend_from_slice(b",\"error\":");
    write_json_str(out, message);
    out.extend_from_slice(b",\"reason\":");
    write_json_str(out, reason.label());
    out.extend_from_slice(b"}\n");
}

/// Appends a connection-level error (sent just before the server closes).
pub(crate) fn connection_error(out: &mut Vec<u8>, message: &str) {
    out.extend_from_slice(b"{\"error\":");
    write_json_str(out, message);
    out.extend_from_slice(b"}\n");
}

fn decimal(n: u64) -> String {
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_names_a_producer_and_optionally_the_next_sequence_number() {
        assert_eq!(
            first_line(br#"{"producer":"p1"}"#),
            FirstLine::Hello(Hello {
                producer: "p1".into(),
                seq: None
            })
        );
        assert_eq!(
            first_line(br#" {"seq": 42, "producer":"p1"} "#),
            FirstLine::Hello(Hello {
                producer: "p1".into(),
                seq: Some(42)
            })
        );
    }

    #[test]
    fn lines_with_other_members_are_events_and_broken_hellos_are_refused() {
        assert_eq!(first_line(br#"{"producer":"p1","ts":1}"#), FirstLine::Event);
        assert_eq!(first_line(br#"{"key":"a","ts":1}"#), FirstLine::Event);
        assert_eq!(first_line(b"garbage"), FirstLine::Event);
        assert!(matches!(
            first_line(br#"{"producer":7}"#),
            FirstLine::BadHello(_)
        ));
        assert!(matches!(
            first_line(br#"{"producer":"p","seq":0}"#),
            FirstLine::BadHello(_)
        ));
        assert!(matches!(
            first_line(br#"{"producer":""}"#),
            FirstLine::BadHello(_)
        ));
        // A seq that would wrap is refused, saying the bound.
        match first_line(br#"{"producer":"p","seq":18446744073709551615}"#) {
            FirstLine::BadHello(why) => assert!(why.contains("9007199254740992"), "{why}"),
            _ => panic!("a hello with seq u64::MAX is refused"),
        }
        assert!(matches!(
            first_line(br#"{"producer":"p","seq":9007199254740993}"#),
            FirstLine::BadHello(_)
        ));
        assert!(matches!(
            first_line(br#"{"producer":"p","seq":9007199254740992}"#),
            FirstLine::Hello(Hello {
                seq: Some(9_007_199_254_740_992),
                ..
            })
        ));
    }

    #[test]
    fn replies_are_one_json_object_per_line() {
        let mut out = Vec::new();
        hello_reply(&mut out, "p\"1", 5, 1);
        ack(&mut out, 9);
        line_error(&mut out, 10, InvalidReason::NotJson, "not JSON");
        connection_error(&mut out, "bye");
        let text = String::from_utf8(out).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_default())
            .collect();
        assert_eq!(lines[0]["producer"], "p\"1");
        assert_eq!(lines[0]["acked"], 5);
        assert_eq!(lines[1]["ack"], 9);
        assert_eq!(lines[2]["seq"], 10);
        assert_eq!(lines[2]["reason"], "not_json");
        assert_eq!(lines[3]["error"], "bye");
    }
}
