//! Summaries of measured values: the best run, the median, percentiles by nearest rank, and
//! a latency histogram of fixed size.

use std::time::Duration;

/// The best of `runs` by `value`: the lowest when `lower_is_better`, else the highest (on a
/// shared machine interference only makes a run worse, so the best run is the least
/// disturbed one); `None` when there are no runs.
pub(crate) fn best<T>(runs: &[T], value: impl Fn(&T) -> f64, lower_is_better: bool) -> Option<&T> {
    let by_value = |a: &&T, b: &&T| value(a).total_cmp(&value(b));
    if lower_is_better {
        runs.iter().min_by(by_value)
    } else {
        runs.iter().max_by(by_value)
    }
}

/// How the runs of one side are summarized into its figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Stat {
    /// The best run (interference from other processes only ever makes a run worse).
    Best,
    /// The median run (steadier from one invocation to the next on a busy machine).
    Median,
}

impl Stat {
    /// The figure of `values`: the best (lowest when `lower_is_better`) or the median; NaN
    /// when empty.
    pub(crate) fn of(self, values: &[f64], lower_is_better: bool) -> f64 {
        match self {
            Stat::Best => best(values, |&v| v, lower_is_better)
                .copied()
                .unwrap_or(f64::NAN),
            Stat::Median => median(values),
        }
    }

    /// Its name, in headings and `--json`.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Stat::Best => "best",
            Stat::Median => "median",
        }
    }
}

/// The median of `values` (the mean of the middle two of an even count); NaN when empty.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The 1-based nearest rank of quantile `p` (0..=1) among `n` values (`n` > 0).
fn nearest_rank(p: f64, n: u64) -> u64 {
    ((p * n as f64).ceil() as u64).clamp(1, n)
}

/// The `p` quantile (0..=1) of sorted values, nearest rank; 0 when empty.
pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[nearest_rank(p, sorted.len() as u64) as usize - 1]
}

/// Request latencies in µs, log-linear: exact below 1,024 µs, then 64 buckets per power of
/// two (within 1.6 %). Its 24 KiB are allocated once: counting does not grow the consumer's
/// memory (a histogram with a bucket per µs up to 100 ms has 800 KiB of pages, touched one
/// by one as new latencies come, which shows in the RSS samples).
#[derive(Debug)]
pub(crate) struct Histogram {
    /// Counts per bucket (see [`Histogram::bucket`]).
    counts: Vec<u64>,
    /// All latencies.
    total: u64,
}

impl Histogram {
    /// Latencies below this many µs have a bucket each.
    const EXACT: u64 = 1024;
    /// Buckets per power of two above `EXACT` (as a shift: 64).
    const SUB_BITS: u32 = 6;
    /// Powers of two covered above `EXACT` (2^10 µs to 2^41 µs, beyond any run).
    const POWERS: usize = 31;
    /// Every bucket.
    const BUCKETS: usize = Self::EXACT as usize + (Self::POWERS << Self::SUB_BITS);

    /// An empty histogram.
    pub(crate) fn new() -> Histogram {
        Histogram {
            counts: vec![0; Self::BUCKETS],
            total: 0,
        }
    }

    /// The bucket of `us` µs.
    fn bucket(us: u64) -> usize {
        if us < Self::EXACT {
            return us as usize;
        }
        let power = 63 - us.leading_zeros(); // ≥ 10
        let sub = (us >> (power - Self::SUB_BITS)) & ((1 << Self::SUB_BITS) - 1);
        let index =
            Self::EXACT as usize + (((power - 10) as usize) << Self::SUB_BITS) + sub as usize;
        index.min(Self::BUCKETS - 1)
    }

    /// The smallest latency, in µs, of bucket `index`.
    fn floor(index: usize) -> u64 {
        if index < Self::EXACT as usize {
            return index as u64;
        }
        let above = index - Self::EXACT as usize;
        let power = (above >> Self::SUB_BITS) as u32 + 10;
        let sub = (above & ((1 << Self::SUB_BITS) - 1)) as u64;
        ((1 << Self::SUB_BITS) + sub) << (power - Self::SUB_BITS)
    }

    /// Counts one latency.
    pub(crate) fn record(&mut self, latency: Duration) {
        self.total += 1;
        self.counts[Self::bucket(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX))] += 1;
    }

    /// The `p` quantile (0..=1), nearest rank, in µs (its bucket's floor); 0 when empty.
    pub(crate) fn quantile(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = nearest_rank(p, self.total);
        let mut seen = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Self::floor(index);
            }
        }
        Self::floor(Self::BUCKETS - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_depends_on_direction() {
        let runs = [3.0, 1.0, 2.0, 10.0];
        assert_eq!(best(&runs, |&r| r, false), Some(&10.0));
        assert_eq!(best(&runs, |&r| r, true), Some(&1.0));
        assert_eq!(best(&[] as &[f64], |&r| r, false), None);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
        assert_eq!(median(&[5.0, 1.0, 3.0]), 3.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&[], 0.5), 0);
        assert_eq!(percentile(&[7], 0.99), 7);
    }

    #[test]
    fn histogram_quantiles() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), 0);
        for us in 1..=100 {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.99), 99);
        h.record(Duration::from_micros(5_000));
        h.record(Duration::from_secs(1));
        assert_eq!(h.quantile(1.0), 999_424, "1 s, to within 1/64");
    }

    #[test]
    fn histogram_buckets_are_log_linear() {
        for us in [
            0, 1, 1023, 1024, 1025, 1040, 2047, 2048, 5000, 123_456, 1_000_000, 60_000_000,
        ] {
            let floor = Histogram::floor(Histogram::bucket(us));
            assert!(
                floor <= us && us - floor <= us / 64,
                "{us} µs in the bucket from {floor}"
            );
            assert_eq!(Histogram::bucket(floor), Histogram::bucket(us));
        }
        assert_eq!(Histogram::bucket(1024), 1024);
        assert_eq!(
            Histogram::bucket(1040),
            1025,
            "16 µs per bucket from 1024 to 2048"
        );
        assert_eq!(Histogram::bucket(u64::MAX), Histogram::BUCKETS - 1);
        assert_eq!(Histogram::BUCKETS, 3008, "24 KiB of counts");
    }
}
