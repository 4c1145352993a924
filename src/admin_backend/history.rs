//! What the admin backend remembers between requests, to answer "lately" questions from
//! cumulative numbers: events per second and latency percentiles over the last few
//! seconds, and a cumulative histogram of checkpoint durations. Pure bookkeeping over
//! values the caller reads; no I/O, no clock of its own.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram as Hdr;
use weir_admin::model::{Bucket, Histogram, Latency};

/// Rates and recent latency are measured over about this long.
pub const RATE_WINDOW: Duration = Duration::from_secs(5);
/// At most one sample per this long.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// Per pipeline: processed total and cumulative latency histogram (µs) at one instant.
struct Sample {
    at: Instant,
    processed: Vec<u64>,
    latency: Vec<Option<Hdr<u64>>>,
}

/// Samples of the cumulative counts, oldest first: the oldest is the baseline that
/// rates and recent latency are measured against.
pub struct History {
    samples: VecDeque<Sample>,
}

impl History {
    /// A history whose baseline is nothing processed at `start` (the engine's start).
    pub fn new(start: Instant, nr_pipelines: usize) -> Self {
        Self {
            samples: VecDeque::from([Sample {
                at: start,
                processed: vec![0; nr_pipelines],
                latency: vec![None; nr_pipelines],
            }]),
        }
    }

    /// Per pipeline, events per second and latency percentiles between the baseline and
    /// `now`, given the cumulative `processed` counts and latency histograms at `now`.
    /// The baseline is the newest sample at least [`RATE_WINDOW`] old (or the oldest
    /// there is); `now` becomes a sample if the last is [`SAMPLE_EVERY`] old.
    pub fn recent(
        &mut self,
        now: Instant,
        processed: Vec<u64>,
        latency: Vec<Option<Hdr<u64>>>,
    ) -> Vec<(f64, Latency)> {
        let samples = &mut self.samples;
        while samples.len() >= 2 && samples[1].at + RATE_WINDOW <= now {
            samples.pop_front();
        }
        let answer = match samples.front() {
            Some(base) => {
                let elapsed = now.saturating_duration_since(base.at).as_secs_f64();
                processed
                    .iter()
                    .zip(&latency)
                    .enumerate()
                    .map(|(p, (&count, hist))| {
                        let before = base.processed.get(p).copied().unwrap_or(0);
                        let events = count.saturating_sub(before) as f64;
                        let rate = if elapsed > 0.001 {
                            events / elapsed
                        } else {
                            0.0
                        };
                        let base_hist = base.latency.get(p).and_then(Option::as_ref);
                        (rate, percentiles(since(hist.as_ref(), base_hist).as_ref()))
                    })
                    .collect()
            }
            None => vec![(0.0, Latency::default()); processed.len()],
        };
        if samples.back().is_none_or(|s| s.at + SAMPLE_EVERY <= now) {
            samples.push_back(Sample {
                at: now,
                processed,
                latency,
            });
        }
        answer
    }
}

/// Checkpoint durations seen so far, as cumulative Prometheus buckets: the coordinator
/// keeps only a recent history, a counter must never go back.
pub struct CheckpointDurations {
    last_id: u64,
    histogram: Histogram,
}

impl CheckpointDurations {
    /// No checkpoint seen yet.
    pub fn new() -> Self {
        Self {
            last_id: 0,
            histogram: Histogram::from_observations(&Histogram::LATENCY_BOUNDS_S, &[]),
        }
    }

    /// Adds the checkpoints of `recent` (id, duration) with an id above the last one
    /// seen, and answers the histogram so far.
    pub fn observe(&mut self, recent: impl IntoIterator<Item = (u64, Duration)>) -> Histogram {
        for (id, duration) in recent {
            if id <= self.last_id {
                continue;
            }
            self.last_id = id;
            let s = duration.as_secs_f64();
            let h = &mut self.histogram;
            for bucket in h.buckets.iter_mut().filter(|b| s <= b.le) {
                bucket.count += 1;
            }
            h.sum += s;
            h.count += 1;
        }
        self.histogram.clone()
    }
}

/// Merges latency histograms; `None` for none.
pub fn merge<'a>(histograms: impl IntoIterator<Item = &'a Hdr<u64>>) -> Option<Hdr<u64>> {
    let mut merged: Option<Hdr<u64>> = None;
    for h in histograms {
        match &mut merged {
            None => merged = Some(h.clone()),
            Some(m) => {
                // Histograms grow to fit (auto-resize), so adding cannot fail in practice.
                let _ = m.add(h);
            }
        }
    }
    merged
}

/// What `now` recorded since `base` (both cumulative); all of `now` without a base, or
/// when `base` is not contained in `now` (a shard's report went missing in between).
fn since(now: Option<&Hdr<u64>>, base: Option<&Hdr<u64>>) -> Option<Hdr<u64>> {
    let mut window = now?.clone();
    if let Some(base) = base
        && window.subtract(base).is_err()
    {
        return now.cloned();
    }
    Some(window)
}

/// p50, p99, p999 and max of a histogram in µs, in ms; zeros when empty.
pub fn percentiles(h: Option<&Hdr<u64>>) -> Latency {
    let Some(h) = h.filter(|h| !h.is_empty()) else {
        return Latency::default();
    };
    let ms = |us: u64| us as f64 / 1000.0;
    Latency {
        p50: ms(h.value_at_quantile(0.5)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
    }
}

/// A latency histogram in µs as Prometheus buckets in seconds.
pub fn buckets(h: Option<&Hdr<u64>>) -> Histogram {
    let Some(h) = h else {
        return Histogram::from_observations(&Histogram::LATENCY_BOUNDS_S, &[]);
    };
    let buckets = Histogram::LATENCY_BOUNDS_S
        .iter()
        .map(|&le| Bucket {
            le,
            count: h.count_between(0, (le * 1e6) as u64),
        })
        .collect();
    Histogram {
        buckets,
        sum: h.mean() * h.len() as f64 / 1e6,
        count: h.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values_us: &[u64]) -> Option<Hdr<u64>> {
        let mut h = Hdr::new(3).ok()?;
        for &v in values_us {
            h.record(v).ok()?;
        }
        Some(h)
    }

    #[test]
    fn the_rate_is_measured_against_a_baseline_about_a_window_old() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut history = History::new(t0, 1);
        // 1 s in, 1000 events: measured from the start.
        assert_eq!(history.recent(at(1), vec![1000], vec![None])[0].0, 1000.0);
        // 7 s in, 13000: the sample at 1 s is at least a window old, so it is the base.
        assert_eq!(history.recent(at(7), vec![13_000], vec![None])[0].0, 2000.0);
        // 8 s in, nothing more: the base moves to 7 s only once 1 s is too old to keep.
        let rate = history.recent(at(8), vec![13_000], vec![None])[0].0;
        assert!((rate - 12_000.0 / 7.0).abs() < 1e-6, "{rate}");
        let rate = history.recent(at(13), vec![13_000], vec![None])[0].0;
        assert_eq!(rate, 0.0, "nothing processed since 7 s");
    }

    #[test]
    fn recent_latency_leaves_out_what_the_baseline_already_had() {
        let t0 = Instant::now();
        let mut history = History::new(t0, 1);
        let slow = hist(&[50_000; 100]);
        history.recent(t0 + Duration::from_secs(1), vec![100], vec![slow]);
        let mut both = hist(&[50_000; 100]);
        if let (Some(b), Some(fast)) = (&mut both, hist(&[1_000; 100])) {
            let _ = b.add(fast);
        }
        let [(_, latency)] = history.recent(t0 + Duration::from_secs(7), vec![200], vec![both])[..]
        else {
            panic!("one pipeline");
        };
        assert!(
            (latency.p99 - 1.0).abs() < 0.01,
            "only the fast ones: {latency:?}"
        );
    }

    #[test]
    fn prometheus_buckets_are_cumulative_in_seconds() {
        let h = hist(&[40, 90, 900, 2_000_000]);
        let b = buckets(h.as_ref());
        let count = |le: f64| b.buckets.iter().find(|x| x.le == le).map(|x| x.count);
        assert_eq!(count(0.00005), Some(1));
        assert_eq!(count(0.0001), Some(2));
        assert_eq!(count(0.001), Some(3));
        assert_eq!(count(2.5), Some(4));
        assert_eq!(b.count, 4);
        assert!((b.sum - 2.00103).abs() < 0.01, "{}", b.sum);
        assert_eq!(buckets(None).count, 0);
    }

    #[test]
    fn checkpoint_durations_count_each_checkpoint_once() {
        let mut d = CheckpointDurations::new();
        let ms = Duration::from_millis;
        d.observe([(1, ms(30)), (2, ms(700))]);
        let h = d.observe([(2, ms(700)), (3, ms(4))]);
        assert_eq!(h.count, 3);
        let count = |le: f64| h.buckets.iter().find(|x| x.le == le).map(|x| x.count);
        assert_eq!(count(0.005), Some(1));
        assert_eq!(count(0.05), Some(2));
        assert_eq!(count(1.0), Some(3));
    }
}
