//! What `local` prints: a readable table, or one `--json` line per workload.

use super::workloads::Workload;
use crate::fmt::{range, thousands, JsonLine};

/// The table's heading; `stat` names the figure of a side (`best`, `median`).
pub(crate) fn header(stat: &str, reps: usize) {
    println!(
        "netsvc-bench local: {stat} of {reps} runs per side after 1 warm-up run, in a random order per round, \
         each run in a fresh actix System on one arbiter"
    );
    println!();
    println!(
        "{:<32} {:>12} {:>12} {:<14} {:>6}  {:<20} {:<4}",
        "workload", "netsvc", "baseline", "unit", "ratio", "target", "met"
    );
}

/// The table's rows of `workload`: the figures `netsvc` and `baseline` of a side each, and
/// the range of their runs' rates.
pub(crate) fn rows(workload: &Workload, (netsvc, baseline): (f64, f64), runs: &[Vec<f64>; 2]) {
    println!(
        "{:<32} {:>12} {:>12} {:<14} {:>6.2}  {:<20} {:<4}",
        workload.name,
        thousands(netsvc),
        thousands(baseline),
        workload.unit,
        netsvc / baseline,
        workload.goal.describe(),
        if workload.goal.met(netsvc, baseline) {
            "yes"
        } else {
            "NO"
        }
    );
    println!(
        "{:<32} {:>12} {:>12}",
        "  (range min..max)",
        range(runs[0].iter().copied()),
        range(runs[1].iter().copied())
    );
}

/// The `--json` line of `workload`.
pub(crate) fn json(
    workload: &Workload,
    (netsvc, baseline): (f64, f64),
    (repetitions, stat): (usize, crate::stats::Stat),
) -> Result<(), String> {
    JsonLine {
        workload: workload.name,
        netsvc,
        baseline,
        unit: workload.unit,
        ratio: netsvc / baseline,
        lower_is_better: false,
        netsvc_p50_us: None,
        baseline_p50_us: None,
        netsvc_p99_us: None,
        baseline_p99_us: None,
        netsvc_max_us: None,
        baseline_max_us: None,
        netsvc_cpu_us_per_msg: None,
        baseline_cpu_us_per_msg: None,
        repetitions,
        statistic: stat.describe(),
        limit: None,
    }
    .print()
}
