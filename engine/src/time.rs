//! Event time and watermarks.

/// Milliseconds since the Unix epoch, as carried by an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventTime(pub i64);

/// A watermark: the assertion that no more events with a time below it are expected.
///
/// [`Watermark::MIN`] is "nothing known yet"; [`Watermark::MAX`] is "input finished".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Watermark(pub i64);

impl Watermark {
    /// No progress yet.
    pub const MIN: Watermark = Watermark(i64::MIN);
    /// End of input: every window fires.
    pub const MAX: Watermark = Watermark(i64::MAX);
}

impl Default for Watermark {
    fn default() -> Self {
        Watermark::MIN
    }
}
