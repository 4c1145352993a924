//! The TCP source's bytes: the line splitter on arbitrarily cut chunks (it hands out
//! exactly the lines of the stream, whole or marked over-long, and holds no more than
//! its limit), the hello parser, and the log records replay reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_shard::fuzzing::{TcpFirstLine, TcpLine, tcp_first_line, tcp_lines, tcp_log_record};

const MAX: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    // Cut the stream into chunks of a length chosen by the first byte.
    let step = usize::from(cut % 17) + 1;
    let chunks: Vec<&[u8]> = stream.chunks(step).collect();
    let (lines, held) = tcp_lines(MAX, &chunks);
    assert!(held <= MAX + 256, "holds {held} bytes");
    // The model: split at every newline; the last piece is unfinished.
    let mut pieces: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    let unfinished = pieces.pop().unwrap_or_default();
    assert_eq!(lines.len(), pieces.len());
    for (got, want) in lines.iter().zip(&pieces) {
        match got {
            TcpLine::Complete(l) => assert_eq!(l, want),
            TcpLine::TooLong(len) => {
                assert!(want.len() > MAX);
                assert_eq!(*len, want.len() as u64);
            }
        }
    }
    assert!(held <= unfinished.len());

    for line in &pieces {
        match tcp_first_line(line) {
            TcpFirstLine::Hello(producer, seq) => {
                assert!(!producer.is_empty() && producer.len() <= 128);
                assert!(seq.is_none_or(|s| (1..=1 << 53).contains(&s)));
            }
            TcpFirstLine::BadHello(why) => assert!(why.starts_with("hello: ")),
            TcpFirstLine::Event => {}
        }
    }
    let _ = tcp_log_record(stream);
});
