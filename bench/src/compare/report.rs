//! What `compare` prints: a readable table, or one `--json` line per workload.

use serde_json::{Map, Value};

use super::nats_server;
use super::run::{Burst, Figure, Plan};
use super::workloads::{Shape, Workload};
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
         bodies (reports_payload_*: their own); {} of {reps} runs per side (after a warm-up run unless --quick), in a random order per round",
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

/// The table's rows of `workload`, from the runs of netsvc, NATS and the raw relay (for
/// `burst_unpaced`: netsvc conflating).
pub(crate) fn rows(workload: &Workload, runs: &[Vec<Figure>; 3], stat: Stat) {
    if matches!(workload.shape, Shape::Burst { .. }) {
        burst_rows(workload, runs, stat);
        return;
    }
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
    if n.msgs_per_s.is_some() || b.msgs_per_s.is_some() {
        let rate = |x: Option<f64>| x.map_or("-".to_owned(), thousands);
        println!(
            "{:<28} {:>12} {:>12} {:>12} msgs/s of the same runs",
            "  msgs/s",
            rate(n.msgs_per_s),
            rate(b.msgs_per_s),
            rate(r.msgs_per_s)
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

/// The rows of `burst_unpaced`: a small table of its own, its third column netsvc with the
/// subscription conflated.
fn burst_rows(workload: &Workload, runs: &[Vec<Figure>; 3], stat: Stat) {
    let figures = pick(workload, runs, stat);
    let bursts = figures.map(|f| f.burst);
    println!(
        "{:<28} {:>12} {:>12} {:>12} {:<24} {:>6}  {:<16}",
        workload.name,
        "netsvc",
        "NATS",
        "conflated",
        "(netsvc conflated: 3rd)",
        "ratio",
        workload.goal.describe()
    );
    let row = |label: &str, part: &dyn Fn(&Burst) -> String, note: &str| {
        let cell = |b: Option<Burst>| b.as_ref().map_or("-".to_owned(), part);
        println!(
            "{:<28} {:>12} {:>12} {:>12} {note}",
            label,
            cell(bursts[0]),
            cell(bursts[1]),
            cell(bursts[2])
        );
    };
    let count = |x: u64| thousands(x as f64);
    row(
        "  published",
        &|b| count(b.published),
        "reports, 100 subjects",
    );
    row(
        "  delivered",
        &|b| count(b.delivered),
        &format!(
            "reports handled ({:.2}x NATS)",
            figures[0].value / figures[1].value
        ),
    );
    row(
        "  dropped",
        &|b| count(b.dropped),
        "published - delivered - conflated",
    );
    row(
        "    at the publisher",
        &|b| b.dropped_at_publisher.map_or("-".to_owned(), count),
        "of those, by the publisher's own link",
    );
    row(
        "    at the server",
        &|b| b.dropped_at_server.map_or("-".to_owned(), count),
        "of those, by the exchange server's links (the rest: the inbox)",
    );
    row(
        "  conflated",
        &|b| count(b.conflated),
        "replaced by a later report of their subject",
    );
    row(
        "  last of every subject",
        &|b| format!("{}/{}", b.subjects_with_last_value, b.subjects),
        "subjects whose last report arrived",
    );
    let every_last = |side: usize| {
        let runs = &runs[side];
        let with = runs
            .iter()
            .filter(|f| f.burst.is_some_and(|b| b.last_value_of_every_subject()))
            .count();
        if runs.is_empty() {
            "-".to_owned()
        } else {
            format!("{with}/{}", runs.len())
        }
    };
    println!(
        "{:<28} {:>12} {:>12} {:>12} runs that got the last report of every subject",
        "    in runs",
        every_last(0),
        every_last(1),
        every_last(2)
    );
    row(
        "  peak RSS",
        &|b| count(b.peak_rss_kib),
        "KiB, the subscriber (VmHWM)",
    );
    row(
        "  publish",
        &|b| format!("{:.0}", b.publish_ms),
        "ms, first report to last published",
    );
    row(
        "  drain",
        &|b| format!("{:.0}", b.drain_ms),
        "ms, first report published to last handled",
    );
    let cpu = |f: Figure| {
        f.cpu_us_per_msg
            .map_or("-".to_owned(), |c| format!("{c:.2}"))
    };
    println!(
        "{:<28} {:>12} {:>12} {:>12} cpu_us/report published, every process of the run",
        "  cpu",
        cpu(figures[0]),
        cpu(figures[1]),
        cpu(figures[2])
    );
    let missed: Vec<Burst> = runs[2]
        .iter()
        .filter_map(|f| f.burst)
        .filter(|b| !b.last_value_of_every_subject())
        .collect();
    if let Some(worst) = missed.iter().min_by_key(|b| b.subjects_with_last_value) {
        println!(
            "  NOTE: conflating, netsvc did not end with the last report of every subject in {} \
             of {} runs (at worst {} of {}): reports dropped before its inbox, at a link's \
             outbound buffer (at worst {} at the server, {} at the publisher), are not conflated",
            missed.len(),
            runs[2].len(),
            worst.subjects_with_last_value,
            worst.subjects,
            thousands(worst.dropped_at_server.unwrap_or(0) as f64),
            thousands(worst.dropped_at_publisher.unwrap_or(0) as f64),
        );
    }
}

/// The `--json` line of `compare`: the common fields and the workload's own.
#[derive(Debug, serde::Serialize)]
struct CompareLine {
    /// The fields of every workload.
    #[serde(flatten)]
    line: JsonLine,
    /// The workload's own fields (messages per second, the burst's counts).
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// The burst's fields of one side in the `--json` line, each name prefixed with `prefix`;
/// `every` tells whether every run of the side got the last report of every subject.
fn burst_fields(extra: &mut Map<String, Value>, prefix: &str, burst: &Burst, every: bool) {
    let mut put = |name: &str, value: Value| {
        extra.insert(format!("{prefix}{name}"), value);
    };
    put("published", burst.published.into());
    put("delivered", burst.delivered.into());
    put("dropped", burst.dropped.into());
    put("dropped_at_publisher", burst.dropped_at_publisher.into());
    put("dropped_at_server", burst.dropped_at_server.into());
    put("conflated", burst.conflated.into());
    put("peak_rss_kib", burst.peak_rss_kib.into());
    put("publish_ms", burst.publish_ms.into());
    put("drain_ms", burst.drain_ms.into());
    put(
        "subjects_with_last_value",
        burst.subjects_with_last_value.into(),
    );
    put("last_value_of_every_subject", every.into());
}

/// The `--json` line of `workload`, from the runs of netsvc, NATS and the raw relay (for
/// `burst_unpaced`: netsvc conflating, as the `netsvc_conflating_…` fields).
pub(crate) fn json(workload: &Workload, runs: &[Vec<Figure>; 3], stat: Stat) -> Result<(), String> {
    let [n, b, r] = pick(workload, runs, stat);
    let defined = |x: f64| (!x.is_nan()).then_some(x);
    let mut extra = Map::new();
    let burst = matches!(workload.shape, Shape::Burst { .. });
    for (prefix, figure, side) in [("netsvc_", n, 0), ("baseline_", b, 1), ("limit_", r, 2)] {
        if let Some(rate) = figure.msgs_per_s {
            extra.insert(format!("{prefix}msgs_per_s"), rate.into());
        }
        if let Some(one) = &figure.burst {
            let every = runs[side]
                .iter()
                .all(|f| f.burst.is_some_and(|b| b.last_value_of_every_subject()));
            let prefix = if side == 2 {
                "netsvc_conflating_"
            } else {
                prefix
            };
            burst_fields(&mut extra, prefix, one, every);
        }
    }
    if burst {
        extra.insert(
            "netsvc_conflating_cpu_us_per_msg".to_owned(),
            r.cpu_us_per_msg.into(),
        );
    }
    let line = JsonLine {
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
        // `burst_unpaced` has no limit: its third side is in the `netsvc_conflating_…` fields.
        limit: Some(if burst {
            Limit {
                limit: None,
                netsvc_to_limit: None,
                limit_p99_us: None,
                limit_cpu_us_per_msg: None,
            }
        } else {
            Limit {
                limit: defined(r.value),
                netsvc_to_limit: defined(n.value / r.value),
                limit_p99_us: r.p99_us,
                limit_cpu_us_per_msg: r.cpu_us_per_msg,
            }
        }),
    };
    let text = serde_json::to_string(&CompareLine { line, extra })
        .map_err(|e| format!("cannot encode the result: {e}"))?;
    println!("{text}");
    Ok(())
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
