//! Splitting a byte stream into lines without ever buffering more than the line limit.
//!
//! Bytes arrive in chunks that cut lines anywhere. The splitter hands out each complete
//! line (without its `\n`) once; the start of a line whose end has not arrived yet is
//! kept, but only up to `max` bytes: past that the line is *over-long*, its first
//! [`HEAD_BYTES`] bytes are kept for the error report and everything else is dropped as
//! it arrives, until the newline ends it. So a client that sends 10 MB without a newline
//! costs `max` bytes of memory at most, and the connection goes on with the next line.

/// Bytes of an over-long line kept for its error report.
pub(crate) const HEAD_BYTES: usize = 256;

/// One line out of the stream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// A whole line, without its newline.
    Complete(&'a [u8]),
    /// A line longer than the limit: its head and its whole length.
    TooLong {
        /// The first bytes of the line.
        head: &'a [u8],
        /// Its length in bytes, without the newline.
        len: u64,
    },
}

/// The line splitter of one connection.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    max: usize,
    /// The start of a line whose newline has not arrived (at most `max` bytes).
    partial: Vec<u8>,
    /// Set while dropping the rest of an over-long line: its head and length so far.
    skipping: Option<(Vec<u8>, u64)>,
}

impl LineSplitter {
    /// A splitter for lines of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            partial: Vec::new(),
            skipping: None,
        }
    }

    /// Whether a line has started and not ended (bytes are waiting for a newline).
    #[cfg(test)]
    pub fn in_line(&self) -> bool {
        !self.partial.is_empty() || self.skipping.is_some()
    }

    /// Bytes held for an unfinished line.
    pub fn held(&self) -> usize {
        self.partial.len() + self.skipping.as_ref().map_or(0, |(h, _)| h.len())
    }

    /// Feeds a chunk, calling `f` for every line it completes, in order.
    pub fn feed(&mut self, chunk: &[u8], mut f: impl FnMut(Line<'_>)) {
        let mut rest = chunk;
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            let piece = &rest[..nl];
            rest = &rest[nl + 1..];
            if let Some((head, len)) = self.skipping.take() {
                f(Line::TooLong {
                    head: &head,
                    len: len + piece.len() as u64,
                });
            } else if self.partial.is_empty() {
                if piece.len() > self.max {
                    f(Line::TooLong {
                        head: &piece[..HEAD_BYTES.min(piece.len())],
                        len: piece.len() as u64,
                    });
                } else {
                    f(Line::Complete(piece));
                }
            } else if self.partial.len() + piece.len() > self.max {
                let len = (self.partial.len() + piece.len()) as u64;
                let head_len = HEAD_BYTES.min(self.partial.len());
                f(Line::TooLong {
                    head: &self.partial[..head_len],
                    len,
                });
                self.partial.clear();
            } else {
                self.partial.extend_from_slice(piece);
                f(Line::Complete(&self.partial));
                self.partial.clear();
            }
        }
        if rest.is_empty() {
            return;
        }
        if let Some((_, len)) = &mut self.skipping {
            *len += rest.len() as u64;
        } else if self.partial.len() + rest.len() > self.max {
            let mut head = std::mem::take(&mut self.partial);
            let len = (head.len() + rest.len()) as u64;
            let missing = HEAD_BYTES.saturating_sub(head.len());
            head.extend_from_slice(&rest[..missing.min(rest.len())]);
            head.truncate(HEAD_BYTES);
            self.skipping = Some((head, len));
        } else {
            self.partial.extend_from_slice(rest);
        }
    }

    /// Forgets an unfinished line (the connection ended in the middle of it).
    pub fn discard(&mut self) -> usize {
        let held = self.partial.len()
            + self
                .skipping
                .take()
                .map_or(0, |(_, len)| usize::try_from(len).unwrap_or(usize::MAX));
        self.partial.clear();
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Got {
        Line(Vec<u8>),
        Long(Vec<u8>, u64),
    }

    fn split(max: usize, chunks: &[&[u8]]) -> (Vec<Got>, bool) {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, |l| {
                out.push(match l {
                    Line::Complete(b) => Got::Line(b.to_vec()),
                    Line::TooLong { head, len } => Got::Long(head.to_vec(), len),
                })
            });
        }
        (out, s.in_line())
    }

    #[test]
    fn lines_cut_anywhere_by_chunks_come_out_whole_and_in_order() {
        let text = b"a\nbb\n\nccc\ndd";
        for cut in 0..=text.len() {
            let (a, b) = text.split_at(cut);
            let (got, pending) = split(10, &[a, b]);
            assert_eq!(
                got,
                vec![
                    Got::Line(b"a".to_vec()),
                    Got::Line(b"bb".to_vec()),
                    Got::Line(Vec::new()),
                    Got::Line(b"ccc".to_vec())
                ],
                "cut at {cut}"
            );
            assert!(pending, "dd waits for its newline");
        }
    }

    #[test]
    fn an_over_long_line_is_reported_with_its_head_and_length_and_the_next_line_survives() {
        let long = vec![b'x'; 1000];
        let (got, pending) = split(100, &[&long[..300], &long[300..], b"\nok\n"]);
        assert_eq!(
            got,
            vec![
                Got::Long(vec![b'x'; HEAD_BYTES], 1000),
                Got::Line(b"ok".to_vec())
            ]
        );
        assert!(!pending);
        let (got, _) = split(100, &[&long, b"\n"]);
        assert_eq!(got, vec![Got::Long(vec![b'x'; HEAD_BYTES], 1000)]);
        let mut one = long.clone();
        one.extend_from_slice(b"\nok\n");
        let (got, _) = split(100, &[&one]);
        assert_eq!(
            got,
            vec![
                Got::Long(vec![b'x'; HEAD_BYTES], 1000),
                Got::Line(b"ok".to_vec())
            ]
        );
    }

    #[test]
    fn memory_held_for_an_endless_line_stays_below_the_limit() {
        let mut s = LineSplitter::new(1000);
        let chunk = vec![0u8; 4096];
        for _ in 0..2560 {
            s.feed(&chunk, |_| panic!("no newline was sent"));
            assert!(s.held() <= 1000);
        }
        assert!(s.in_line());
        assert_eq!(s.discard(), 4096 * 2560);
        assert!(!s.in_line());
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_accepted() {
        let line = vec![b'y'; 64];
        let (got, _) = split(64, &[&line[..10], &line[10..], b"\n"]);
        assert_eq!(got, vec![Got::Line(line)]);
    }
}
