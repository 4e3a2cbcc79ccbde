//! Output shared by the subcommands: number formatting for the tables, and the `--json` line
//! of `local` and `compare`.

/// One line of `--json` output (fields in this order).
#[derive(Debug, serde::Serialize)]
pub(crate) struct JsonLine {
    /// Workload name.
    pub(crate) workload: &'static str,
    /// netsvc's figure.
    pub(crate) netsvc: f64,
    /// The baseline's figure (bare actix, or NATS).
    pub(crate) baseline: f64,
    /// Unit of both figures.
    pub(crate) unit: &'static str,
    /// netsvc ÷ baseline.
    pub(crate) ratio: f64,
    /// Whether lower figures are better (latencies).
    pub(crate) lower_is_better: bool,
    /// netsvc's p50 latency in µs, for rate workloads that also measure latencies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) netsvc_p50_us: Option<f64>,
    /// The baseline's p50 latency in µs, likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) baseline_p50_us: Option<f64>,
    /// netsvc's p99 latency in µs, for workloads with latencies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) netsvc_p99_us: Option<f64>,
    /// The baseline's p99 latency in µs, for workloads with latencies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) baseline_p99_us: Option<f64>,
    /// netsvc's highest latency in µs, for workloads with latencies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) netsvc_max_us: Option<f64>,
    /// The baseline's highest latency in µs, likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) baseline_max_us: Option<f64>,
    /// netsvc's CPU time (user + system, every process of a run) per message, in µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) netsvc_cpu_us_per_msg: Option<f64>,
    /// The baseline's CPU time per message, in µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) baseline_cpu_us_per_msg: Option<f64>,
    /// Measured runs per side.
    pub(crate) repetitions: usize,
    /// How a side's runs became its figure: `best` or `median`.
    pub(crate) statistic: &'static str,
    /// The physical limit's fields (`compare` only; absent from `local`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub(crate) limit: Option<Limit>,
}

/// The raw TCP relay's figures in a `--json` line of `compare`: each `null` where the
/// workload has no limit (or the relay did not run).
#[derive(Debug, serde::Serialize)]
pub(crate) struct Limit {
    /// The raw relay's figure, in the line's unit.
    pub(crate) limit: Option<f64>,
    /// netsvc ÷ the limit.
    pub(crate) netsvc_to_limit: Option<f64>,
    /// The raw relay's p99 latency in µs, for workloads with latencies.
    pub(crate) limit_p99_us: Option<f64>,
    /// The raw relay's CPU time (every process of a run) per message, in µs.
    pub(crate) limit_cpu_us_per_msg: Option<f64>,
}

impl JsonLine {
    /// Prints the line.
    pub(crate) fn print(&self) -> Result<(), String> {
        let line =
            serde_json::to_string(self).map_err(|e| format!("cannot encode the result: {e}"))?;
        println!("{line}");
        Ok(())
    }
}

/// `min..max` of `values`, compactly; `-` when there are none.
pub(crate) fn range(values: impl Iterator<Item = f64> + Clone) -> String {
    let lo = values.clone().min_by(f64::total_cmp);
    let hi = values.max_by(f64::total_cmp);
    match (lo, hi) {
        (Some(lo), Some(hi)) => format!("{}..{}", compact(lo), compact(hi)),
        _ => "-".to_owned(),
    }
}

/// Formats a number with thousands separators: `1,712,345`.
pub(crate) fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// Formats a figure compactly: `1.71M`, `850k`, `41.2`.
pub(crate) fn compact(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else {
        format!("{x:.1}")
    }
}

/// KiB as MiB.
pub(crate) fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_712_345.0), "1,712,345");
        assert_eq!(thousands(-12_345.0), "-12,345");
        assert_eq!(thousands(f64::NAN), "NaN");
    }
}
