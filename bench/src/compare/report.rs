//! What `compare` prints: a readable table, or one `--json` line per workload.

use super::nats_server;
use super::run::{Figure, Plan};
use super::workloads::Workload;
use crate::fmt::{range, thousands, JsonLine, Limit};
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
        "netsvc-bench compare: netsvc vs NATS (and a raw TCP relay, the limit) across processes on 127.0.0.1, {PAYLOAD_LEN}-byte \
         bodies; {} of {reps} runs per side (after a warm-up run unless --quick), in a random order per round",
        stat.describe()
    );
    println!(
        "NATS: {version}, async-nats client; reports paced: window {} reports, acknowledged every {}",
        plan.window, plan.ack_every
    );
    println!(
        "raw limit: 4-byte-length frames relayed by a plain tokio process between the same two \
         workers (1-to-1 plaintext workloads only; - elsewhere); /limit = netsvc / raw limit"
    );
    println!();
    println!(
        "{:<28} {:>12} {:>12} {:>12} {:<24} {:>6}  {:<16} {:<4} {:>6}",
        "workload", "netsvc", "NATS", "raw limit", "unit", "ratio", "target", "met", "/limit"
    );
}

/// The figure of each side by `stat`: netsvc's, NATS's, the raw relay's.
fn pick(workload: &Workload, runs: &[Vec<Figure>; 3], stat: Stat) -> [Figure; 3] {
    let lower = workload.goal.lower_is_better();
    [0, 1, 2].map(|i| Figure::pick(&runs[i], lower, stat))
}

/// A figure as shown: `-` where there is none (the side did not run).
fn shown(x: f64, latency: bool) -> String {
    if x.is_nan() {
        "-".to_owned()
    } else {
        figure(x, latency)
    }
}

/// The table's rows of `workload`, from the runs of netsvc, NATS and the raw relay.
pub(crate) fn rows(workload: &Workload, runs: &[Vec<Figure>; 3], stat: Stat) {
    let lower = workload.goal.lower_is_better();
    let [n, b, r] = pick(workload, runs, stat);
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
    let to_limit = n.value / r.value;
    let to_limit = if to_limit.is_nan() {
        "-".to_owned()
    } else {
        format!("{to_limit:.2}")
    };
    println!(
        "{:<28} {:>12} {:>12} {:>12} {:<24} {:>6.2}  {:<16} {:<4} {:>6}",
        workload.name,
        figure(n.value, lower),
        figure(b.value, lower),
        shown(r.value, lower),
        unit,
        ratio,
        workload.goal.describe(),
        met,
        to_limit
    );
    if n.p99_us.is_some() || b.p99_us.is_some() {
        let us = |x: Option<f64>| x.map_or("-".to_owned(), |p| format!("{p:.1}"));
        if !lower {
            println!(
                "{:<28} {:>12} {:>12} {:>12} us_p50 of the same runs",
                "  p50",
                us(n.p50_us),
                us(b.p50_us),
                us(r.p50_us)
            );
        }
        println!(
            "{:<28} {:>12} {:>12} {:>12} us_p99 of the same runs",
            "  p99",
            us(n.p99_us),
            us(b.p99_us),
            us(r.p99_us)
        );
        println!(
            "{:<28} {:>12} {:>12} {:>12} us_max of the same runs",
            "  max",
            us(n.max_us),
            us(b.max_us),
            us(r.max_us)
        );
    }
    let cpu = |f: Figure| {
        f.cpu_us_per_msg
            .map_or("-".to_owned(), |c| format!("{c:.2}"))
    };
    println!(
        "{:<28} {:>12} {:>12} {:>12} cpu_us/msg, every process of the run ({:.2}x NATS)",
        "  cpu",
        cpu(n),
        cpu(b),
        cpu(r),
        n.cpu_us_per_msg.unwrap_or(f64::NAN) / b.cpu_us_per_msg.unwrap_or(f64::NAN)
    );
    let spread = |runs: &[Figure]| range(runs.iter().map(|f| f.value));
    println!(
        "{:<28} {:>12} {:>12} {:>12}",
        "  range min..max",
        spread(&runs[0]),
        spread(&runs[1]),
        spread(&runs[2])
    );
}

/// The `--json` line of `workload`, from the runs of netsvc, NATS and the raw relay.
pub(crate) fn json(workload: &Workload, runs: &[Vec<Figure>; 3], stat: Stat) -> Result<(), String> {
    let [n, b, r] = pick(workload, runs, stat);
    let defined = |x: f64| (!x.is_nan()).then_some(x);
    JsonLine {
        workload: workload.name,
        netsvc: n.value,
        baseline: b.value,
        unit: workload.unit,
        ratio: n.value / b.value,
        lower_is_better: workload.goal.lower_is_better(),
        netsvc_p50_us: n.p50_us.filter(|_| !workload.goal.lower_is_better()),
        baseline_p50_us: b.p50_us.filter(|_| !workload.goal.lower_is_better()),
        netsvc_p99_us: n.p99_us,
        baseline_p99_us: b.p99_us,
        netsvc_max_us: n.max_us,
        baseline_max_us: b.max_us,
        netsvc_cpu_us_per_msg: n.cpu_us_per_msg,
        baseline_cpu_us_per_msg: b.cpu_us_per_msg,
        repetitions: runs.iter().map(Vec::len).max().unwrap_or(0),
        statistic: stat.describe(),
        limit: Some(Limit {
            limit: defined(r.value),
            netsvc_to_limit: defined(n.value / r.value),
            limit_p99_us: r.p99_us,
            limit_cpu_us_per_msg: r.cpu_us_per_msg,
        }),
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
