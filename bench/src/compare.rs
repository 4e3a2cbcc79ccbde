//! Cross-process workloads: netsvc over its exchange against NATS, side by side in one run,
//! and, where it is defined, the physical limit: a raw TCP relay of length-prefixed frames.
//!
//! Every run starts its own processes and kills them at its end: a server (netsvc: the
//! `role exchange` process of this binary, a node listening with `Exchange::listen`; NATS:
//! `nats-server -a 127.0.0.1 -p PORT`, in the payload workloads with `-c` a file raising
//! `max_payload`) and the worker processes (the `role` subcommand of this
//! binary, see `compare/protocol.rs`), all on 127.0.0.1. The workers are laid out the same way
//! on every side and every body is 100 bytes but in the `reports_payload_*` workloads.
//!
//! * `request_reply_1_in_flight` — a requester process and a responder process, both
//!   connected to the server; sequential round trips. Figure: p50 latency in µs (p99 and max
//!   shown under it, and in `--json`). netsvc: the typed client of `#[netsvc::methods] fn echo(&mut self, Blob) ->
//!   Blob`, on an endpoint bound to the remote binding. NATS: `Client::request` to a
//!   subscriber that publishes the body back to the reply subject.
//! * `request_reply_64_in_flight` — the same processes, 64 requests outstanding at all times
//!   (64 looping futures on one `FuturesUnordered`). Figure: round trips/s; the p50, p99
//!   and max latency of the same runs are shown under it (`netsvc_p50_us`, `…_p99_us`,
//!   `…_max_us` and the baseline's in `--json`).
//! * `reports_1_to_1` / `reports_1_to_10` — one publisher process, 1 or 10 subscriber
//!   processes. netsvc: `publish_report("bench.x", Blob, Lifetime::None)`, subscribers
//!   `monitor_reports("bench-publisher", "bench.*")`. NATS: `publish("bench.x")`, subscribers
//!   of `bench.*`. Figure: deliveries/s (reports × subscribers) from the first report to the
//!   last subscriber's final acknowledgement.
//! * `reports_1_to_100` — one publisher process cycling over 1,000 subjects, 10 subscriber
//!   processes of 10 subscriber services each, every service on a pattern matching a tenth
//!   of the subjects (`compare/subjects.rs`): every report goes to 10 services (one in each
//!   process), each service gets one report in 10. netsvc: one node per process with 10
//!   services monitoring `g<k>.*`; NATS: one connection per process with 10 subscriptions of
//!   `g<k>.*`. Each service acknowledges on its own, every `--ack-every` ÷ 10 of its reports
//!   (the publisher hears as often per report published as in the other workloads), and is
//!   checked on its own: exactly its reports, each subject's in order with none missing.
//!   Figure: deliveries/s.
//! * `reports_payload_1k`, `reports_payload_64k`, `reports_payload_1m` — `reports_1_to_1`
//!   with bodies of 1 KiB, 64 KiB and 1 MiB (`payload::payload_of`: the sequence number,
//!   then the fill byte; the subscriber checks every byte). Each run moves `--payload-mib`
//!   (256 MiB; 16 with `--quick`) of bodies; the pacing window is at most 16 MiB of bodies
//!   (10,000, 256 and 16 reports), acknowledged every quarter window (at most
//!   `--ack-every`): netsvc's link buffers 32 MiB of reports before it drops
//!   (`ExchangeConfig::outbound_limit`), and its publisher publishes a window in one
//!   handler. nats-server runs with `max_payload: 8388608` (a configuration file; its
//!   default, 1 MiB headers included, refuses a 1 MiB body); the raw relay takes frames up
//!   to 8 MiB; netsvc runs with its defaults (`ExchangeConfig::max_frame`, 16 MiB). Figure:
//!   bytes of bodies delivered per second; messages per second shown under it
//!   (`netsvc_msgs_per_s`, `baseline_msgs_per_s`, `limit_msgs_per_s` in `--json`).
//! * `request_reply_fanin` — 16 requester processes with 8 requests in flight each, one
//!   responder (the clients of `request_reply_*`). Each requester warms up, prints `READY`
//!   and waits for `GO` on its stdin; once all are ready the driver writes `GO` to each,
//!   and each measures `--round-trips-fanin` round trips (20,000; 1,000 with `--quick`),
//!   every one checked. Figure: round trips/s of all together, every requester's round
//!   trips ÷ the wall time from the first requester's start to the last one's end; under
//!   it the median of the requesters' p50s, the highest of their p99s and of their maxima.
//!   No raw limit (the relay pairs two connections).
//! * `burst_unpaced` — the slow-consumer policy. A publisher with no pacing publishes
//!   `--burst-reports` (1,000,000; 20,000 with `--quick`) 100-byte reports cycling over 100
//!   subjects `burst.s<j>` to one subscriber that spends `--burst-spin-ns` (2 µs) on each,
//!   busy, and holds at most `--burst-capacity` (65,536; 256 with `--quick`) reports
//!   waiting: the netsvc node's `inbox_capacity`, the NATS connection's
//!   `subscription_capacity` (65,536 is the async-nats default). Three columns: netsvc (what does not fit is dropped, at the inbox or at a
//!   link's outbound buffer), NATS (the client drops what does not fit its subscription),
//!   and netsvc with the subscription conflated (`ServiceContext::conflate_reports`: the
//!   latest report per subject kept aside, `Report::conflated` counting those it replaced).
//!   After the burst the publisher publishes an end marker (`end.x`) every 20 ms; the
//!   subscriber ends 300 ms after the first marker and the last report. Figure: reports
//!   delivered; also dropped (published − delivered − conflated; on netsvc also those the
//!   publisher's link and the exchange server's links dropped, from `Exchange::stats`,
//!   the server's asked with a `GO` on its stdin at the end), conflated, the
//!   subscriber's peak RSS (`VmHWM`), the time from the first report published to the last
//!   one handled, and whether the last report of every subject arrived (in `--json`:
//!   `netsvc_…`, `baseline_…` and `netsvc_conflating_…` fields). A wrong body, a duplicate or
//!   a report out of its subject's order fails the run. No target: the figures are recorded.
//!
//! **Pacing (every side alike; every report workload but `burst_unpaced`).** A subscriber acknowledges every `--ack-every` reports (1000)
//! and at the end; the publisher stays at most `--window` reports (10,000) ahead of the
//! slowest acknowledgement. netsvc acknowledges with a request to the publisher's `ack`
//! method, NATS with a publish on `ack.<index>`. Without pacing the netsvc exchange drops
//! reports for a peer whose outbound buffer is over its limit, and an async-nats subscriber
//! drops messages when its channel is full; with it neither limit is approached.
//!
//! **Zero loss.** Every body carries its sequence number. A subscriber checks that report `i`
//! is the `i`-th it receives, keeps counting for 200 ms after the last one, and the run fails
//! unless every subscriber got exactly the expected reports, in order.
//!
//! **The limit.** For the plaintext workloads with one peer on each side of the server
//! (`request_reply_1_in_flight`, `request_reply_64_in_flight`, `reports_1_to_1`,
//! `reports_payload_*`) a third side
//! runs: the `relay` role of `compare/raw.rs`, forwarding frames of a 4-byte big-endian
//! length and the body between the same two worker processes, with the same bodies, the same
//! request loop, the same pacing and the same counting. No messaging system can relay faster
//! through one middle process; the table shows it as `raw limit` and netsvc ÷ it.
//!
//! **Figures.** After a discarded warm-up run of each side, each round runs every side once,
//! in an order drawn at random per round; a side's figure is its best run (lowest p50,
//! highest rate): interference from other processes on a shared machine only makes a run
//! worse. The table also shows the range. Every wait is bounded (`--timeout` per run).
//!
//! Files: `compare/workloads.rs` lists the workloads, `compare/run.rs` runs one side once
//! (`compare/run/fanout.rs`, `run/fanin.rs` and `run/burst.rs` the many-process shapes),
//! `compare/report.rs` prints; the processes are `compare/protocol.rs` (what they agree on),
//! `compare/measure.rs` (measuring shared by every system), `compare/netsvc.rs`,
//! `compare/nats.rs`, `compare/nats_server.rs` and `compare/raw.rs`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

mod measure;
mod nats;
mod nats_server;
mod netsvc;
mod protocol;
mod raw;
mod report;
mod run;
mod subjects;
mod workloads;

pub(crate) use protocol::RoleArgs;
use protocol::System;
use run::{Figure, Plan};
use workloads::{Workload, WORKLOADS};

use crate::roles;
use crate::runner::{self, Contender};
use crate::stats::Stat;

/// Options of `netsvc-bench compare`.
#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    /// Print one JSON object per workload (one per line) instead of a table.
    #[arg(long)]
    json: bool,
    /// Small counts and one run per side, for smoke testing.
    #[arg(long)]
    quick: bool,
    /// Measured runs per side and workload; default 3, 1 with --quick.
    #[arg(long)]
    reps: Option<usize>,
    /// Which run represents a side: the best (default; interference only ever makes a run
    /// worse) or the median (steadier from one invocation to the next on a busy machine).
    #[arg(long, value_enum, default_value_t = Stat::Best)]
    stat: Stat,
    /// Run only the workload with this exact name, or else those whose name contains it.
    #[arg(long)]
    only: Option<String>,
    /// Run only one side (for profiling); the others show NaN.
    #[arg(long, value_enum, default_value_t = Sides::All)]
    side: Sides,
    /// Measured round trips per run of `request_reply_1_in_flight` (default 20000, 2000 with
    /// --quick).
    #[arg(long)]
    round_trips: Option<u64>,
    /// Measured round trips per run of `request_reply_64_in_flight` (default 200000, 20000
    /// with --quick).
    #[arg(long)]
    round_trips_concurrent: Option<u64>,
    /// Reports per run of `reports_1_to_1` (default 500000, 50000 with --quick).
    #[arg(long)]
    reports: Option<u64>,
    /// Reports per subscriber per run of `reports_1_to_10` (default 100000, 10000 with
    /// --quick).
    #[arg(long)]
    reports_fanout: Option<u64>,
    /// Reports published per run of `reports_1_to_100`, each to 10 subscribers (default
    /// 200000, 10000 with --quick).
    #[arg(long)]
    reports_subjects: Option<u64>,
    /// MiB of bodies per run of each `reports_payload_*` workload (default 256, 16 with
    /// --quick); the reports are this ÷ the body, at least 16.
    #[arg(long)]
    payload_mib: Option<u64>,
    /// Measured round trips per requester per run of `request_reply_fanin` (default 20000,
    /// 1000 with --quick).
    #[arg(long)]
    round_trips_fanin: Option<u64>,
    /// Reports of the unpaced burst of `burst_unpaced` (default 1000000, 20000 with --quick).
    #[arg(long)]
    burst_reports: Option<u64>,
    /// Time the subscriber of `burst_unpaced` spends per report, busy, in ns.
    #[arg(long, default_value_t = 2000)]
    burst_spin_ns: u64,
    /// Most reports waiting for the subscriber of `burst_unpaced`: its netsvc inbox capacity
    /// and its NATS subscription capacity (default 65536, the async-nats default; 256 with
    /// --quick, below the 512 reports a netsvc link reader hands over at once, so that the
    /// small burst does fill the inbox and conflation is exercised).
    #[arg(long)]
    burst_capacity: Option<usize>,
    /// Unmeasured sequential round trips before measuring, in every requester.
    #[arg(long, default_value_t = 2000)]
    warmup: u64,
    /// Most reports the publisher is ahead of the slowest subscriber's acknowledgement.
    #[arg(long, default_value_t = 10_000)]
    window: u64,
    /// Subscribers acknowledge every this many reports (and the last one).
    #[arg(long, default_value_t = 1000)]
    ack_every: u64,
    /// Longest one run may take, in seconds, before it is declared failed.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// The nats-server executable (default: `nats-server` on PATH, else /usr/sbin/nats-server).
    #[arg(long, value_name = "PATH")]
    nats_server: Option<PathBuf>,
    /// Print every process started (name and pid) on stderr, e.g. to attach `perf record -p`.
    #[arg(long)]
    verbose: bool,
}

/// Which side(s) of each workload to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Sides {
    /// netsvc, NATS, and the raw relay where it is defined.
    #[value(alias = "both")]
    All,
    /// netsvc only.
    Netsvc,
    /// NATS only.
    Nats,
    /// The raw relay only.
    Raw,
}

/// Runs the cross-process workloads and prints their figures. Fails if a run fails.
pub(crate) fn run(args: &CompareArgs) -> ExitCode {
    // The TLS workloads' certificates, removed when this returns.
    let planned = plan(args).and_then(|plan| Ok((plan, run::Certificates::new()?)));
    let (mut plan, certificates) = match planned {
        Ok(planned) => planned,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    plan.tls_dir = Some(certificates.dir().to_owned());
    let reps = args.reps.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    // A first run of each side warms the page cache and the CPU's frequency; discarded.
    let warmups = usize::from(!args.quick);
    let heading = || {
        if !args.json {
            report::header(&plan, reps, args.stat);
        }
    };
    runner::run_all(
        WORKLOADS,
        |w| w.name,
        args.only.as_deref(),
        heading,
        |workload| {
            let runs = measure(workload, &plan, (warmups, reps), args.side)?;
            if args.json {
                report::json(workload, &runs, args.stat)
            } else {
                report::rows(workload, &runs, args.stat);
                Ok(())
            }
        },
    )
}

/// The counts and settings `args` ask for, with this executable and nats-server located.
fn plan(args: &CompareArgs) -> Result<Plan, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find this executable to start the role processes: {e}"))?;
    let nats_server = if matches!(args.side, Sides::All | Sides::Nats) {
        Some(nats_server::locate(args.nats_server.as_ref())?)
    } else {
        None
    };
    let pick = |explicit: Option<u64>, full: u64, quick: u64| {
        explicit.unwrap_or(if args.quick { quick } else { full })
    };
    Ok(Plan {
        exe,
        nats_server,
        round_trips: pick(args.round_trips, 20_000, 2_000).max(1),
        round_trips_concurrent: pick(args.round_trips_concurrent, 200_000, 20_000).max(1),
        reports: pick(args.reports, 500_000, 50_000).max(1),
        reports_fanout: pick(args.reports_fanout, 100_000, 10_000).max(1),
        // Every subscriber service of `reports_1_to_100` gets at least one.
        reports_subjects: pick(args.reports_subjects, 200_000, 10_000).max(subjects::GROUPS),
        payload_bytes: pick(args.payload_mib, 256, 16).max(1) << 20,
        round_trips_fanin: pick(args.round_trips_fanin, 20_000, 1_000).max(1),
        burst_reports: pick(args.burst_reports, 1_000_000, 20_000).max(1),
        burst_spin_ns: args.burst_spin_ns,
        burst_capacity: args
            .burst_capacity
            .unwrap_or(if args.quick { 256 } else { 65_536 })
            .max(1),
        warmup: if args.quick {
            args.warmup.min(500)
        } else {
            args.warmup
        },
        window: args.window.max(1),
        ack_every: args.ack_every.max(1),
        limit: Duration::from_secs(args.timeout.max(1)),
        verbose: args.verbose,
        tls_dir: None,
    })
}

/// `warmups` discarded runs, then `reps` rounds of one run of each selected side (netsvc's,
/// NATS's, the raw relay's where the workload has a limit; for `burst_unpaced`, netsvc's
/// with conflation in the third place, run with `--side netsvc` or `all`) in a random order
/// per round.
fn measure(
    workload: &Workload,
    plan: &Plan,
    (warmups, reps): (usize, usize),
    sides: Sides,
) -> Result<[Vec<Figure>; 3], String> {
    let netsvc = || run::once(workload, plan, System::Netsvc);
    let nats = || run::once(workload, plan, System::Nats);
    let raw = || run::once(workload, plan, System::Raw);
    let conflated = || run::once_conflated(workload, plan);
    let runs = |side: Sides| sides == Sides::All || sides == side;
    let burst = matches!(workload.shape, workloads::Shape::Burst { .. });
    let third = if burst {
        Contender {
            label: "netsvc conflated",
            run: runs(Sides::Netsvc).then_some(&conflated as &dyn Fn() -> Result<Figure, String>),
        }
    } else {
        Contender {
            label: "raw relay",
            run: (workload.limit && runs(Sides::Raw))
                .then_some(&raw as &dyn Fn() -> Result<Figure, String>),
        }
    };
    runner::alternate(
        warmups,
        reps,
        &[
            Contender {
                label: "netsvc",
                run: runs(Sides::Netsvc).then_some(&netsvc),
            },
            Contender {
                label: "NATS",
                run: runs(Sides::Nats).then_some(&nats),
            },
            third,
        ],
    )
}

/// Runs one role process (the hidden `role` subcommand).
pub(crate) fn run_role(args: &RoleArgs) -> ExitCode {
    crate::roles::main(|| match args.system {
        System::Netsvc => actix::System::new().block_on(netsvc::role(args)),
        System::Nats => roles::on_tokio(nats::role(args)),
        System::Raw => roles::on_tokio_spinning(raw::role(args), args.spin),
    })
}
