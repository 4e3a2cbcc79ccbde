//! What `soak` prints: a readable report with its verdict, or one `--json` line.

use serde::Serialize;

use super::protocol::{ConsumerOutcome, ProducerOutcome};
use super::rss::RssSamples;
use super::run::Finished;
use super::settings::Plan;
use crate::fmt::{mib, thousands};
use crate::payload::PAYLOAD_LEN;

/// Prints the readable report of a run and its verdict, `problems`.
pub(crate) fn table(run: &Finished, plan: &Plan, problems: &[String]) {
    figures(run, plan);
    println!();
    if problems.is_empty() {
        println!(
            "passed: every report and answer counted and checked, nothing dropped, memory flat"
        );
    } else {
        println!("FAILED:");
        for problem in problems {
            println!("  {problem}");
        }
    }
}

/// Prints the figures of a run.
fn figures(run: &Finished, plan: &Plan) {
    let Finished {
        consumer,
        producer,
        rss,
    } = run;
    let Plan {
        reports,
        requests,
        in_flight,
        window,
        ack_every,
        ..
    } = *plan;
    let duration = consumer.elapsed_ns as f64 / 1e9;
    let rate = |n: u64| thousands(n as f64 / duration.max(1e-9));
    println!(
        "netsvc-bench soak: {} requests ({in_flight} in flight) + {} reports through one hub, {PAYLOAD_LEN}-byte \
         bodies",
        thousands(requests as f64),
        thousands(reports as f64)
    );
    println!("reports paced end to end: window {window}, acknowledged every {ack_every}");
    println!();
    println!("duration       {duration:.2} s");
    println!(
        "reports        {:>12} received  {:>10}/s   lost {}, dup/late/reordered {}, corrupt {}",
        thousands(consumer.received as f64),
        rate(consumer.received),
        consumer.lost,
        consumer.late,
        consumer.corrupt
    );
    println!(
        "requests       {:>12} answered  {:>10}/s   failed {}, p50 {} us, p99 {} us",
        thousands(consumer.answered as f64),
        rate(consumer.answered),
        consumer.failed,
        consumer.p50_us,
        consumer.p99_us
    );
    println!(
        "dropped        hub {}, producer {}, consumer {} (slow-consumer policy)",
        consumer.hub.reports_dropped,
        producer.traffic.reports_dropped,
        consumer.traffic.reports_dropped
    );
    println!(
        "hub wrote      {} frames, {} report frames, {:.1} MiB",
        thousands(consumer.hub.frames_sent as f64),
        thousands(consumer.hub.reports_sent as f64),
        consumer.hub.bytes_written as f64 / (1024.0 * 1024.0)
    );
    println!();
    let mut header = format!("{:<10}", "RSS MiB");
    for tenth in 0..=10 {
        header.push_str(&format!(" {:>6}", format!("{}%", tenth * 10)));
    }
    println!("{header}   end/10%");
    for r in rss {
        let mut row = format!("{:<10}", r.process);
        for &kib in &r.kib {
            row.push_str(&format!(" {:>6.1}", mib(kib)));
        }
        println!("{row}   {:.3}", r.end_over_warm);
    }
}

/// Prints the `--json` line of a run and its verdict, `problems`.
pub(crate) fn json(run: &Finished, plan: &Plan, problems: &[String]) -> Result<(), String> {
    let duration = run.consumer.elapsed_ns as f64 / 1e9;
    let line = SoakJson {
        workload: "soak",
        passed: problems.is_empty(),
        problems,
        reports: plan.reports,
        requests: plan.requests,
        in_flight: plan.in_flight,
        window: plan.window,
        ack_every: plan.ack_every,
        duration_s: duration,
        reports_per_s: run.consumer.received as f64 / duration.max(1e-9),
        requests_per_s: run.consumer.answered as f64 / duration.max(1e-9),
        p50_us: run.consumer.p50_us,
        p99_us: run.consumer.p99_us,
        consumer: &run.consumer,
        producer: &run.producer,
        rss_limit: plan.rss_limit,
        rss: &run.rss,
    };
    let line =
        serde_json::to_string(&line).map_err(|e| format!("cannot encode the result: {e}"))?;
    println!("{line}");
    Ok(())
}

/// The single `--json` line of a soak run.
#[derive(Debug, Serialize)]
struct SoakJson<'a> {
    /// Always `"soak"`.
    workload: &'static str,
    /// Whether every check passed.
    passed: bool,
    /// What failed.
    problems: &'a [String],
    /// Reports published.
    reports: u64,
    /// Requests made.
    requests: u64,
    /// Requests outstanding at once.
    in_flight: usize,
    /// Most reports published ahead of the last acknowledgement.
    window: u64,
    /// The subscriber acknowledged every this many reports.
    ack_every: u64,
    /// Wall time of the workload, seconds.
    duration_s: f64,
    /// Reports delivered per second.
    reports_per_s: f64,
    /// Requests answered per second.
    requests_per_s: f64,
    /// Median request latency, µs.
    p50_us: u64,
    /// 99th percentile request latency, µs.
    p99_us: u64,
    /// The consumer's counts.
    consumer: &'a ConsumerOutcome,
    /// The producer's counts.
    producer: &'a ProducerOutcome,
    /// Allowed end RSS ÷ RSS at 10 %.
    rss_limit: f64,
    /// RSS samples per process.
    rss: &'a [RssSamples],
}
