//! One run of the fan-in workload (`request_reply_fanin`): one responder, many requester
//! processes measuring at the same time, every requester checked.

use super::{role, Figure, Side};
use crate::compare::protocol::RequestOutcome;
use crate::procs;
use crate::roles::SETUP;
use crate::stats;

/// A responder and `requesters` requester processes with `in_flight` requests outstanding
/// each. Every requester warms up, says `READY` and waits; once all have, the driver writes
/// `GO` to each (the requesters start within the time of a few pipe writes of each other),
/// and each measures `plan.round_trips_fanin` round trips.
///
/// The figure: the aggregate rate, every requester's round trips ÷ the wall time from the
/// first requester's start to the last one's end (Unix time of the same machine, from each
/// requester's `RESULT`): what the responder and the server sustained for all of them
/// together, with any skew of the start counted against it. Latencies over all: the p50
/// is the median of the requesters' p50s, the p99 the highest of their p99s, the max the
/// highest of their maxima.
pub(super) fn request_reply(
    side: &Side<'_>,
    addr: &str,
    requesters: usize,
    in_flight: usize,
) -> Result<Figure, String> {
    let plan = side.plan;
    let mut responder = role(side, "responder", "responder", &[("--server", addr)])?;
    responder.expect("READY", SETUP)?;
    let count = plan.round_trips_fanin;
    let (count_arg, in_flight_arg, warmup_arg) = (
        count.to_string(),
        in_flight.to_string(),
        plan.warmup.to_string(),
    );
    let mut procs = Vec::with_capacity(requesters);
    for i in 0..requesters {
        procs.push(role(
            side,
            "requester",
            &format!("requester {i}"),
            &[
                ("--server", addr),
                ("--count", &count_arg),
                ("--in-flight", &in_flight_arg),
                ("--warmup", &warmup_arg),
                ("--go", "true"),
            ],
        )?);
    }
    for requester in &mut procs {
        // Connected and warmed up.
        requester.expect("READY", SETUP)?;
    }
    for requester in &mut procs {
        requester.send("GO")?;
    }
    let mut outcomes = Vec::with_capacity(requesters);
    for requester in &mut procs {
        let outcome: RequestOutcome =
            procs::decode("requester", &requester.expect("RESULT", plan.limit)?)?;
        if outcome.ops != count {
            return Err(format!(
                "{}: {} round trips measured, expected {count}",
                requester.name(),
                outcome.ops
            ));
        }
        outcomes.push(outcome);
    }
    aggregate(&outcomes, plan.warmup)
}

/// The figure of the requesters' `outcomes` (see [`request_reply`]); `warmup` round trips
/// each before measuring.
fn aggregate(outcomes: &[RequestOutcome], warmup: u64) -> Result<Figure, String> {
    let first = outcomes.iter().map(|o| o.start_unix_ns).min().unwrap_or(0);
    let last = outcomes.iter().map(|o| o.end_unix_ns).max().unwrap_or(0);
    if first == 0 || last <= first {
        return Err("the requesters' clocks are missing from their results".to_owned());
    }
    let ops: u64 = outcomes.iter().map(|o| o.ops).sum();
    let p50s: Vec<f64> = outcomes.iter().map(|o| o.p50_ns as f64).collect();
    let highest = |part: fn(&RequestOutcome) -> u64| {
        outcomes.iter().map(part).max().unwrap_or(0) as f64 / 1e3
    };
    let messages = ops + warmup * outcomes.len() as u64;
    Ok(Figure {
        p50_us: Some(stats::median(&p50s) / 1e3),
        p99_us: Some(highest(|o| o.p99_ns)),
        max_us: Some(highest(|o| o.max_ns)),
        ..Figure::rate(ops, last - first, messages)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_over_the_wall_time_of_all() {
        let outcome = |start: u64, end: u64, p50_ns: u64, p99_ns: u64| RequestOutcome {
            ops: 1000,
            elapsed_ns: end - start,
            p50_ns,
            p99_ns,
            max_ns: p99_ns * 2,
            start_unix_ns: start,
            end_unix_ns: end,
        };
        let figure = aggregate(
            &[
                outcome(1_000_000_000, 1_500_000_000, 10_000, 50_000),
                outcome(1_100_000_000, 2_000_000_000, 30_000, 90_000),
                outcome(1_050_000_000, 1_900_000_000, 20_000, 70_000),
            ],
            10,
        )
        .unwrap();
        assert_eq!(figure.value, 3000.0);
        assert_eq!(figure.p50_us, Some(20.0));
        assert_eq!(figure.p99_us, Some(90.0));
        assert_eq!(figure.max_us, Some(180.0));
        assert_eq!(figure.messages, 3030);
        assert!(aggregate(&[], 0).is_err());
    }
}
