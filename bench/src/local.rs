//! In-process workloads: each one runs netsvc and a bare actix baseline doing the same work.
//!
//! How a figure is taken: for every workload, one warm-up run of each side is discarded, then
//! `--reps` runs of each side alternate (netsvc, baseline, netsvc, baseline, ...). Every run
//! happens in a fresh actix `System` (so nothing left over from one run competes with the
//! next), everything of a run lives on that System's single arbiter, and the clock covers
//! only the measured traffic (not spawning or subscribing). The figure printed for each side
//! is the **best** rate of its runs (`--stat median` for the median): on a shared machine,
//! interference only ever slows a run down, so the best run is the least disturbed one. The
//! table also shows the range (min..max).
//!
//! Workloads (each in its own file, both sides side by side):
//!
//! * `request_roundtrip_1_in_flight` (`local/roundtrip.rs`) — sequential calls of
//!   `add(a, b)`;
//! * `report_delivery_10_subscribers` (`local/reports.rs`) — reports to 10 subscribers, in
//!   batches, every delivery counted and checked.
//!
//! `local/workloads.rs` lists them with their targets, `local/run.rs` has what one run is,
//! `local/report.rs` prints the figures.

mod report;
mod reports;
mod roundtrip;
mod run;
mod workloads;

use std::process::ExitCode;

use clap::Args;

use crate::runner::{self, Contender};
use crate::stats::Stat;
use run::{Plan, Sample};
use workloads::{Workload, WORKLOADS};

/// Options of `netsvc-bench local`.
#[derive(Debug, Args)]
pub(crate) struct LocalArgs {
    /// Print one JSON object per workload (one per line) instead of a table.
    #[arg(long)]
    json: bool,
    /// Small counts and fewer repetitions, for smoke testing.
    #[arg(long)]
    quick: bool,
    /// Measured runs per side and workload (after one warm-up run); default 7, 3 with --quick.
    #[arg(long)]
    reps: Option<usize>,
    /// Which run's rate represents a side: the best (default; interference from other
    /// processes only ever slows a run down) or the median.
    #[arg(long, value_enum, default_value_t = Stat::Best)]
    stat: Stat,
    /// Run only the workloads whose name contains this text.
    #[arg(long)]
    only: Option<String>,
    /// Run only one side (for profiling one of them); the table then shows NaN for the other.
    #[arg(long, value_enum, default_value_t = Side::Both)]
    side: Side,
    /// Round trips per run of `request_roundtrip_1_in_flight` (default 300000, 20000 with --quick).
    #[arg(long)]
    round_trips: Option<u64>,
    /// Reports per subscriber per run of `report_delivery_10_subscribers` (default 200000,
    /// 10000 with --quick).
    #[arg(long)]
    reports: Option<u64>,
    /// Reports the publisher sends per batch before letting subscribers drain.
    #[arg(long, default_value_t = 1000)]
    batch: u64,
    /// Between batches, only `ctx.notify` the next batch without yielding first. actix handles a
    /// notification within the same poll of the actor, so subscribers then only start draining
    /// once every report is queued. For investigation.
    #[arg(long)]
    no_yield: bool,
}

/// Which side(s) of each workload to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Side {
    /// netsvc and the baseline.
    Both,
    /// netsvc only.
    Netsvc,
    /// The bare actix baseline only.
    Baseline,
}

/// Runs the local workloads and prints their figures. Fails if a run fails (lost deliveries,
/// a failed request, a stall).
pub(crate) fn run(args: &LocalArgs) -> ExitCode {
    let plan = Plan {
        round_trips: args
            .round_trips
            .unwrap_or(if args.quick { 20_000 } else { 300_000 })
            .max(1),
        reports: args
            .reports
            .unwrap_or(if args.quick { 10_000 } else { 200_000 })
            .max(1),
        subscribers: 10,
        batch: args.batch.max(1),
        yield_between_batches: !args.no_yield,
    };
    let reps = args.reps.unwrap_or(if args.quick { 3 } else { 7 }).max(1);
    let heading = || {
        if !args.json {
            report::header(args.stat.describe(), reps);
        }
    };
    runner::run_all(
        WORKLOADS,
        |w| w.name,
        args.only.as_deref(),
        heading,
        |workload| {
            let runs = measure(workload, &plan, reps, args.side)?;
            let figures = (args.stat.of(&runs[0], false), args.stat.of(&runs[1], false));
            if args.json {
                report::json(workload, figures, (reps, args.stat))
            } else {
                report::rows(workload, figures, &runs);
                Ok(())
            }
        },
    )
}

/// One warm-up run per side, then `reps` alternating measured runs per side: their rates.
fn measure(
    workload: &Workload,
    plan: &Plan,
    reps: usize,
    side: Side,
) -> Result<[Vec<f64>; 2], String> {
    let netsvc = || (workload.netsvc)(plan).map(Sample::rate);
    let baseline = || (workload.baseline)(plan).map(Sample::rate);
    runner::alternate(
        1,
        reps,
        &[
            Contender {
                label: "netsvc",
                run: (side != Side::Baseline).then_some(&netsvc),
            },
            Contender {
                label: "baseline",
                run: (side != Side::Netsvc).then_some(&baseline),
            },
        ],
    )
}
