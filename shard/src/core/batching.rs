//! When a batch goes, and when a watermark goes after it.
//!
//! A batch for another shard is sealed (moved to the outbox) when it is full, when it
//! has waited `batch_linger_ms`, when everything must go at once (a stop), and before
//! any watermark or barrier (so that it travels in front of them). A pipeline's source
//! watermark is sent when it changed and did not go back.

use weir_engine::Watermark;

/// Whether a batch of `len` events is full.
pub fn full(len: usize, batch_size: usize) -> bool {
    len >= batch_size
}

/// Whether a partly filled batch, started at `since_ns`, must go at `now_ns`: it has
/// lingered long enough, or `all` batches must go.
pub fn due(len: usize, since_ns: u64, now_ns: u64, linger_ns: u64, all: bool) -> bool {
    len > 0 && (all || now_ns.saturating_sub(since_ns) >= linger_ns)
}

/// Whether a source watermark (and idleness) `now` must be sent, `sent` being the last
/// one sent: it changed, and the watermark did not go back.
pub fn publish(now: (Watermark, bool), sent: (Watermark, bool)) -> bool {
    now != sent && now.0 >= sent.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_go_when_full_lingering_or_all_must_go_and_never_empty() {
        assert!(full(1024, 1024) && !full(1023, 1024));
        assert!(!due(0, 0, u64::MAX, 5, true), "an empty batch never goes");
        assert!(!due(3, 100, 104, 5, false));
        assert!(due(3, 100, 105, 5, false));
        assert!(due(3, 100, 100, 5, true));
        assert!(
            !due(3, 200, 100, 5, false),
            "a clock read before the batch began"
        );
    }

    #[test]
    fn a_watermark_goes_when_it_changed_and_never_backwards() {
        let w = |t, idle| (Watermark(t), idle);
        assert!(!publish(w(10, false), w(10, false)));
        assert!(publish(w(11, false), w(10, false)));
        assert!(publish(w(10, true), w(10, false)), "idleness alone changed");
        assert!(!publish(w(9, false), w(10, false)), "never backwards");
        assert!(publish(w(0, false), (Watermark::MIN, false)));
    }
}
