//! Aggregates: what a window computes from its events, and how partial results combine.
//!
//! count, sum, min and max are kept always (they cost one add and two compares) and
//! combine in O(1); percentiles keep the values exactly while a window holds few of them
//! and move them into an HDR histogram (hdrhistogram) past [`EXACT_VALUES`], so a
//! percentile is exact for small windows and exact to the configured significant digits
//! for large ones. Histograms merge, so panes of sliding windows combine.

use hdrhistogram::Histogram;
use weir_config::Aggregate;

/// Values kept exactly before a window's percentiles move into a histogram.
pub const EXACT_VALUES: usize = 128;

/// Values are scaled by this before they enter a histogram (which counts integers), so
/// values below 1 keep three decimals.
const HIST_SCALE: f64 = 1000.0;

/// The largest magnitude of a value a pipeline computing percentiles accepts (others
/// are dead-lettered as `bad_value`): scaled by [`HIST_SCALE`], every such value fits
/// the histogram, whose counts are exact to the configured significant digits.
pub const PERCENTILE_MAX_ABS: f64 = 1e15;

/// Most percentiles a pipeline can ask for (p50, p90, p95, p99, p999).
pub const MAX_PERCENTILES: usize = 5;

/// Which aggregates a pipeline computes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggSpec {
    aggregates: Vec<Aggregate>,
    percentiles: Vec<u16>,
    precision: u8,
}

impl AggSpec {
    /// A spec of the given aggregates, with percentile histograms of `precision`
    /// significant digits (1..=5).
    pub fn new(aggregates: &[Aggregate], precision: u8) -> Self {
        let percentiles: Vec<u16> = aggregates
            .iter()
            .filter_map(|a| match a {
                Aggregate::Percentile(p) => Some(*p),
                _ => None,
            })
            .take(MAX_PERCENTILES)
            .collect();
        Self {
            aggregates: aggregates.to_vec(),
            percentiles,
            precision: precision.clamp(1, 5),
        }
    }

    /// The aggregates in the order configured.
    pub fn aggregates(&self) -> &[Aggregate] {
        &self.aggregates
    }

    /// The percentiles, in thousandths, in the order configured.
    pub fn percentiles(&self) -> &[u16] {
        &self.percentiles
    }

    /// Whether any percentile is computed (values must then be kept).
    #[inline]
    pub fn keeps_values(&self) -> bool {
        !self.percentiles.is_empty()
    }
}

/// The running aggregate of one key in one window (or pane).
#[derive(Debug, Clone)]
pub struct Accumulator {
    /// Events.
    pub count: u64,
    /// Sum of values.
    pub sum: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    values: Option<Box<Values>>,
}

impl Default for Accumulator {
    fn default() -> Self {
        Self::new()
    }
}

impl Accumulator {
    /// An empty accumulator.
    #[inline]
    pub fn new() -> Self {
        Self {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            values: None,
        }
    }

    /// Adds one value.
    #[inline]
    pub fn add(&mut self, value: f64, spec: &AggSpec) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        if spec.keeps_values() {
            self.values
                .get_or_insert_with(|| Box::new(Values::Exact(Vec::new())))
                .add(value, spec.precision);
        }
    }

    /// Adds another accumulator's events into this one.
    pub fn merge(&mut self, other: &Accumulator, spec: &AggSpec) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if let Some(theirs) = &other.values {
            match &mut self.values {
                Some(ours) => ours.merge(theirs, spec.precision),
                None => self.values = Some(theirs.clone()),
            }
        }
    }

    /// The mean value (NaN when empty).
    pub fn avg(&self) -> f64 {
        self.sum / self.count as f64
    }

    /// The `q`-th percentile (in thousandths), by nearest rank: the smallest value such
    /// that at least `q/1000` of the values are at most it. Exact while the window holds
    /// at most [`EXACT_VALUES`] values; within the histogram's precision after.
    pub fn percentile(&self, q: u16) -> f64 {
        let Some(values) = &self.values else {
            return f64::NAN;
        };
        let v = values.quantile(q, self.count);
        // A histogram bucket's representative may lie a little outside the seen range.
        v.clamp(self.min, self.max)
    }

    /// Approximate heap bytes held (for state size reports).
    pub fn heap_bytes(&self) -> usize {
        self.values.as_ref().map_or(0, |v| v.heap_bytes())
    }

    /// The kept values, for snapshots: exact values, or histogram buckets
    /// (value, count) with positive values first then negative ones as negative.
    pub fn values_for_snapshot(&self) -> Option<ValuesSnapshot> {
        self.values.as_ref().map(|v| v.snapshot())
    }

    /// Rebuilds an accumulator from its parts (snapshot restore).
    pub fn from_parts(
        count: u64,
        sum: f64,
        min: f64,
        max: f64,
        values: Option<ValuesSnapshot>,
        spec: &AggSpec,
    ) -> Self {
        Self {
            count,
            sum,
            min,
            max,
            values: values.map(|s| Box::new(Values::restore(s, spec.precision))),
        }
    }
}

/// Kept values in a portable form.
#[derive(Debug, Clone, PartialEq)]
pub enum ValuesSnapshot {
    /// The values themselves.
    Exact(Vec<f64>),
    /// Histogram buckets as (scaled magnitude, count) for non-negative then negative values.
    Histogram {
        /// Buckets of values >= 0.
        positive: Vec<(u64, u64)>,
        /// Buckets of values < 0, by magnitude.
        negative: Vec<(u64, u64)>,
    },
}

#[derive(Debug, Clone)]
enum Values {
    Exact(Vec<f64>),
    Hist(Hist),
}

#[derive(Debug, Clone)]
struct Hist {
    positive: Histogram<u64>,
    negative: Histogram<u64>,
}

fn new_histogram(precision: u8) -> Histogram<u64> {
    match Histogram::new(precision) {
        Ok(h) => h,
        // `precision` is clamped to 1..=5, which hdrhistogram always accepts.
        Err(_) => unreachable!("hdrhistogram rejects precision {precision}"),
    }
}

fn scaled(value: f64) -> u64 {
    // Saturating float-to-int conversion: huge magnitudes land in the top bucket.
    (value.abs() * HIST_SCALE).round() as u64
}

impl Hist {
    fn new(precision: u8) -> Self {
        Self {
            positive: new_histogram(precision),
            negative: new_histogram(precision),
        }
    }

    fn record(&mut self, value: f64) {
        let h = if value < 0.0 {
            &mut self.negative
        } else {
            &mut self.positive
        };
        // An auto-resizing histogram accepts every u64 up to its (growing) maximum; a
        // failure here can only be a value beyond u64::MAX / 2, which saturates instead.
        if h.record(scaled(value)).is_err() {
            let _ = h.record(h.high());
        }
    }
}

impl Values {
    fn add(&mut self, value: f64, precision: u8) {
        match self {
            Values::Exact(v) => {
                v.push(value);
                if v.len() > EXACT_VALUES {
                    let mut hist = Hist::new(precision);
                    for &x in v.iter() {
                        hist.record(x);
                    }
                    *self = Values::Hist(hist);
                }
            }
            Values::Hist(h) => h.record(value),
        }
    }

    fn merge(&mut self, other: &Values, precision: u8) {
        match other {
            Values::Exact(theirs) => {
                for &x in theirs {
                    self.add(x, precision);
                }
            }
            Values::Hist(theirs) => {
                if let Values::Exact(ours) = self {
                    let mut hist = Hist::new(precision);
                    for &x in ours.iter() {
                        hist.record(x);
                    }
                    *self = Values::Hist(hist);
                }
                if let Values::Hist(ours) = self {
                    // Auto-resizing histograms of equal precision always add.
                    let _ = ours.positive.add(&theirs.positive);
                    let _ = ours.negative.add(&theirs.negative);
                }
            }
        }
    }

    fn quantile(&self, q: u16, count: u64) -> f64 {
        let rank = ((u64::from(q) * count).div_ceil(1000)).max(1);
        match self {
            Values::Exact(v) => {
                let mut sorted = v.clone();
                sorted.sort_by(f64::total_cmp);
                sorted[(rank as usize - 1).min(sorted.len() - 1)]
            }
            Values::Hist(h) => {
                let negatives = h.negative.len();
                if rank <= negatives {
                    // The rank-th smallest overall is among the negatives: the
                    // (negatives - rank + 1)-th largest magnitude.
                    let want = negatives - rank + 1;
                    -(value_at_rank(&h.negative, want) as f64) / HIST_SCALE
                } else {
                    value_at_rank(&h.positive, rank - negatives) as f64 / HIST_SCALE
                }
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Values::Exact(v) => v.capacity() * 8,
            Values::Hist(h) => (h.positive.distinct_values() + h.negative.distinct_values()) * 8,
        }
    }

    fn snapshot(&self) -> ValuesSnapshot {
        match self {
            Values::Exact(v) => ValuesSnapshot::Exact(v.clone()),
            Values::Hist(h) => {
                let buckets = |h: &Histogram<u64>| {
                    h.iter_recorded()
                        .map(|b| (b.value_iterated_to(), b.count_at_value()))
                        .collect()
                };
                ValuesSnapshot::Histogram {
                    positive: buckets(&h.positive),
                    negative: buckets(&h.negative),
                }
            }
        }
    }

    fn restore(s: ValuesSnapshot, precision: u8) -> Self {
        match s {
            ValuesSnapshot::Exact(v) => Values::Exact(v),
            ValuesSnapshot::Histogram { positive, negative } => {
                let mut h = Hist::new(precision);
                for (v, n) in positive {
                    let _ = h.positive.record_n(v, n);
                }
                for (v, n) in negative {
                    let _ = h.negative.record_n(v, n);
                }
                Values::Hist(h)
            }
        }
    }
}

/// The smallest recorded value (as its bucket's representative) whose cumulative count
/// reaches `rank` (1-based), counting from the smallest value.
fn value_at_rank(h: &Histogram<u64>, rank: u64) -> u64 {
    let mut seen = 0;
    for bucket in h.iter_recorded() {
        seen += bucket.count_at_value();
        if seen >= rank {
            return h.median_equivalent(bucket.value_iterated_to());
        }
    }
    h.max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> AggSpec {
        AggSpec::new(
            &[
                Aggregate::Count,
                Aggregate::Percentile(500),
                Aggregate::Percentile(990),
            ],
            3,
        )
    }

    #[test]
    fn exact_percentiles_use_nearest_rank() {
        let spec = spec();
        let mut acc = Accumulator::new();
        for v in [5.0, 1.0, 4.0, 2.0, 3.0] {
            acc.add(v, &spec);
        }
        assert_eq!(acc.percentile(500), 3.0);
        assert_eq!(acc.percentile(990), 5.0);
        assert_eq!(acc.percentile(200), 1.0);
    }

    #[test]
    fn histogram_percentiles_are_within_three_significant_digits() {
        let spec = spec();
        let mut acc = Accumulator::new();
        let mut values: Vec<f64> = (0..10_000).map(|i| (i as f64) * 0.37 - 500.0).collect();
        for &v in &values {
            acc.add(v, &spec);
        }
        values.sort_by(f64::total_cmp);
        for q in [500u16, 990] {
            let exact = values[((q as usize * values.len()).div_ceil(1000)) - 1];
            let got = acc.percentile(q);
            assert!(
                (got - exact).abs() <= exact.abs() * 1e-3 + 1e-3,
                "q{q}: {got} vs {exact}"
            );
        }
    }

    #[test]
    fn percentiles_stay_exact_to_their_digits_up_to_the_largest_accepted_value() {
        // Once, values above about 1.8e16 saturated the histogram (p50 of 200 values
        // uniform in [1e15, 1e17] came out 1.84e16); values up to PERCENTILE_MAX_ABS
        // (larger ones are refused at decoding) keep three significant digits.
        let spec = spec();
        let mut acc = Accumulator::new();
        let mut values: Vec<f64> = (0..200)
            .map(|i| PERCENTILE_MAX_ABS * (0.01 + 0.99 * f64::from(i) / 199.0))
            .chain([-PERCENTILE_MAX_ABS, -1.0])
            .collect();
        for &v in &values {
            acc.add(v, &spec);
        }
        values.sort_by(f64::total_cmp);
        for q in [500u16, 900, 990] {
            let exact = values[((q as usize * values.len()).div_ceil(1000)) - 1];
            let got = acc.percentile(q);
            assert!(
                (got - exact).abs() <= exact.abs() * 1e-3,
                "q{q}: {got} vs {exact}"
            );
        }
        let lowest = values[0];
        assert!((acc.percentile(1) - lowest).abs() <= lowest.abs() * 1e-3);
    }

    #[test]
    fn merged_accumulators_equal_one_fed_everything() {
        let spec = spec();
        let (mut a, mut b, mut all) = (Accumulator::new(), Accumulator::new(), Accumulator::new());
        for i in 0..300 {
            let v = f64::from(i % 17) - 3.0;
            if i % 3 == 0 {
                a.add(v, &spec)
            } else {
                b.add(v, &spec)
            }
            all.add(v, &spec);
        }
        a.merge(&b, &spec);
        assert_eq!(
            (a.count, a.sum, a.min, a.max),
            (all.count, all.sum, all.min, all.max)
        );
        assert_eq!(a.percentile(500), all.percentile(500));
        assert_eq!(a.percentile(990), all.percentile(990));
    }
}
