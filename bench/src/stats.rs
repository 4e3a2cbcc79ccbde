//! Summaries of measured values: the best run, the median, percentiles by nearest rank.

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
}
