//! What `compare` prints: a readable table, or one `--json` line per workload.

use super::nats_server;
use super::run::{Figure, Plan};
use super::workloads::Workload;
use crate::fmt::{range, thousands, JsonLine};
use crate::payload::PAYLOAD_LEN;
use crate::stats::Stat;

/// The table's heading.
pub(crate) fn header(plan: &Plan, reps: usize, stat: Stat) {
    let version = plan
        .nats_server
        .as_deref()
        .map(nats_server::version)
        .unwrap_or_else(|| "not run".to_owned());
    println!(
        "netsvc-bench compare: netsvc vs NATS across processes on 127.0.0.1, {PAYLOAD_LEN}-byte \
         bodies; {} of {reps} runs per side (after a warm-up run unless --quick), in a random order per round",
        stat.describe()
    );
    println!(
        "NATS: {version}, async-nats client; reports paced: window {} reports, acknowledged every {}",
        plan.window, plan.ack_every
    );
    println!();
    println!(
        "{:<28} {:>12} {:>12} {:<24} {:>6}  {:<16} {:<4}",
        "workload", "netsvc", "NATS", "unit", "ratio", "target", "met"
    );
}

/// The figure of each side by `stat`: netsvc's, NATS's.
fn pick(workload: &Workload, runs: &[Vec<Figure>; 2], stat: Stat) -> (Figure, Figure) {
    let lower = workload.goal.lower_is_better();
    (
        Figure::pick(&runs[0], lower, stat),
        Figure::pick(&runs[1], lower, stat),
    )
}

/// The table's rows of `workload`, from the runs of netsvc and NATS.
pub(crate) fn rows(workload: &Workload, runs: &[Vec<Figure>; 2], stat: Stat) {
    let lower = workload.goal.lower_is_better();
    let (n, b) = pick(workload, runs, stat);
    let ratio = n.value / b.value;
    let met = if ratio.is_nan() {
        "-"
    } else if workload.goal.met(ratio) {
        "yes"
    } else {
        "NO"
    };
    let unit = if lower {
        format!("{} (lower=better)", workload.unit)
    } else {
        workload.unit.to_owned()
    };
    println!(
        "{:<28} {:>12} {:>12} {:<24} {:>6.2}  {:<16} {:<4}",
        workload.name,
        figure(n.value, lower),
        figure(b.value, lower),
        unit,
        ratio,
        workload.goal.describe(),
        met
    );
    if lower {
        let p99 = |f: Figure| f.p99_us.map_or("-".to_owned(), |p| format!("{p:.1}"));
        println!(
            "{:<28} {:>12} {:>12} us_p99 of the same runs",
            "  p99",
            p99(n),
            p99(b)
        );
    }
    let cpu = |f: Figure| {
        f.cpu_us_per_msg
            .map_or("-".to_owned(), |c| format!("{c:.2}"))
    };
    println!(
        "{:<28} {:>12} {:>12} cpu_us/msg, every process of the run ({:.2}x)",
        "  cpu",
        cpu(n),
        cpu(b),
        n.cpu_us_per_msg.unwrap_or(f64::NAN) / b.cpu_us_per_msg.unwrap_or(f64::NAN)
    );
    let spread = |runs: &[Figure]| range(runs.iter().map(|f| f.value));
    println!(
        "{:<28} {:>12} {:>12}",
        "  range min..max",
        spread(&runs[0]),
        spread(&runs[1])
    );
}

/// The `--json` line of `workload`, from the runs of netsvc and NATS.
pub(crate) fn json(workload: &Workload, runs: &[Vec<Figure>; 2], stat: Stat) -> Result<(), String> {
    let (n, b) = pick(workload, runs, stat);
    JsonLine {
        workload: workload.name,
        netsvc: n.value,
        baseline: b.value,
        unit: workload.unit,
        ratio: n.value / b.value,
        lower_is_better: workload.goal.lower_is_better(),
        netsvc_p99_us: n.p99_us,
        baseline_p99_us: b.p99_us,
        netsvc_cpu_us_per_msg: n.cpu_us_per_msg,
        baseline_cpu_us_per_msg: b.cpu_us_per_msg,
        repetitions: runs[0].len().max(runs[1].len()),
        statistic: stat.describe(),
    }
    .print()
}

/// A figure for the table: latencies with one decimal, rates with thousands separators.
fn figure(x: f64, latency: bool) -> String {
    if latency {
        format!("{x:.1}")
    } else {
        thousands(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_by_kind() {
        assert_eq!(figure(41.23, true), "41.2");
        assert_eq!(figure(1_712_345.0, false), "1,712,345");
        assert_eq!(range([1.0, 3.0].into_iter()), "1.0..3.0");
    }
}
