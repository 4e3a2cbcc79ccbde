//! Cross-process workloads: netsvc over its exchange against NATS, side by side in one run.
//!
//! Every run starts its own processes and kills them at its end: a server (netsvc: the
//! `role exchange` process of this binary, a node listening with `Exchange::listen`; NATS:
//! `nats-server -a 127.0.0.1 -p PORT`) and the worker processes (the `role` subcommand of this
//! binary, see `compare/roles.rs`), all on 127.0.0.1. The workers are laid out the same way on both
//! sides and every body is 100 bytes.
//!
//! * `request_reply_1_in_flight` — a requester process and a responder process, both
//!   connected to the server; sequential round trips. Figure: p50 latency in µs (p99 shown in
//!   the table). netsvc: the typed client of `#[netsvc::methods] fn echo(&mut self, Blob) ->
//!   Blob`, on an endpoint bound to the remote binding. NATS: `Client::request` to a
//!   subscriber that publishes the body back to the reply subject.
//! * `request_reply_64_in_flight` — the same processes, 64 requests outstanding at all times
//!   (64 looping futures on one `FuturesUnordered`). Figure: round trips/s.
//! * `reports_1_to_1` / `reports_1_to_10` — one publisher process, 1 or 10 subscriber
//!   processes. netsvc: `publish_report("bench.x", Blob, Lifetime::None)`, subscribers
//!   `monitor_reports("bench-publisher", "bench.*")`. NATS: `publish("bench.x")`, subscribers
//!   of `bench.*`. Figure: deliveries/s (reports × subscribers) from the first report to the
//!   last subscriber's final acknowledgement.
//!
//! **Pacing (both sides alike).** A subscriber acknowledges every `--ack-every` reports (1000)
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
//! **Figures.** Runs of the two sides alternate; a side's figure is its best run (lowest p50,
//! highest rate): interference from other processes on a shared machine only makes a run
//! worse. The table also shows the range. Every wait is bounded (`--timeout` per run).

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use clap::{Args, ValueEnum};

mod measure;
mod nats;
mod nats_server;
mod netsvc;
mod roles;

pub(crate) use roles::RoleArgs;
use roles::{PublishOutcome, RequestOutcome, SubscribeOutcome, System};

use crate::fmt::{range, thousands, JsonLine};
use crate::procs::Proc;
use crate::role::SETUP;

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
    /// Run only the workload with this exact name, or else those whose name contains it.
    #[arg(long)]
    only: Option<String>,
    /// Run only one side (for profiling); the other shows NaN.
    #[arg(long, value_enum, default_value_t = Sides::Both)]
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
    /// netsvc and NATS.
    Both,
    /// netsvc only.
    Netsvc,
    /// NATS only.
    Nats,
}

/// The process layout of a workload.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// A requester and a responder; `in_flight` outstanding requests.
    RequestReply {
        /// Requests outstanding at once.
        in_flight: usize,
    },
    /// A publisher and `subscribers` subscriber processes.
    Reports {
        /// Subscriber processes.
        subscribers: usize,
    },
}

/// The target of a workload, as netsvc ÷ NATS.
#[derive(Debug, Clone, Copy)]
enum Goal {
    /// netsvc's p50 latency at most this times NATS's.
    LatencyAtMost(f64),
    /// netsvc's rate at least this times NATS's.
    RateAtLeast(f64),
}

impl Goal {
    /// Whether `ratio` (netsvc ÷ NATS) meets the target.
    fn met(self, ratio: f64) -> bool {
        match self {
            Goal::LatencyAtMost(r) => ratio <= r,
            Goal::RateAtLeast(r) => ratio >= r,
        }
    }

    /// The target as shown in the table.
    fn describe(self) -> String {
        match self {
            Goal::LatencyAtMost(r) => format!("<= {r:.2}x NATS"),
            Goal::RateAtLeast(r) => format!(">= {r:.2}x NATS"),
        }
    }

    /// Whether lower figures are better.
    fn lower_is_better(self) -> bool {
        matches!(self, Goal::LatencyAtMost(_))
    }
}

/// One cross-process workload.
#[derive(Debug)]
struct Workload {
    /// Name, as printed and in the JSON output.
    name: &'static str,
    /// Unit of the figures.
    unit: &'static str,
    /// Process layout.
    shape: Shape,
    /// What netsvc should achieve against NATS.
    goal: Goal,
}

/// Every cross-process workload, in the order they run.
const WORKLOADS: &[Workload] = &[
    Workload {
        name: "request_reply_1_in_flight",
        unit: "us_p50",
        shape: Shape::RequestReply { in_flight: 1 },
        goal: Goal::LatencyAtMost(0.75),
    },
    Workload {
        name: "request_reply_64_in_flight",
        unit: "round_trips/s",
        shape: Shape::RequestReply { in_flight: 64 },
        goal: Goal::RateAtLeast(2.0),
    },
    Workload {
        name: "reports_1_to_1",
        unit: "deliveries/s",
        shape: Shape::Reports { subscribers: 1 },
        goal: Goal::RateAtLeast(1.5),
    },
    Workload {
        name: "reports_1_to_10",
        unit: "deliveries/s",
        shape: Shape::Reports { subscribers: 10 },
        goal: Goal::RateAtLeast(1.2),
    },
];

/// Counts and settings of one invocation.
#[derive(Debug)]
struct Plan {
    /// This executable (re-executed for every role).
    exe: PathBuf,
    /// nats-server, when the NATS side runs.
    nats_server: Option<PathBuf>,
    /// Round trips, 1 in flight.
    round_trips: u64,
    /// Round trips, 64 in flight.
    round_trips_concurrent: u64,
    /// Reports, 1 subscriber.
    reports: u64,
    /// Reports per subscriber, 10 subscribers.
    reports_fanout: u64,
    /// Warm-up round trips.
    warmup: u64,
    /// Pacing window.
    window: u64,
    /// Acknowledgement interval.
    ack_every: u64,
    /// Longest run.
    limit: Duration,
    /// Print started processes.
    verbose: bool,
}

/// What one run measured.
#[derive(Debug, Clone, Copy)]
struct Figure {
    /// p50 latency in µs, or a rate per second.
    value: f64,
    /// p99 latency in µs (latency workloads).
    p99_us: Option<f64>,
}

/// Every run of one side of a workload.
#[derive(Debug, Default)]
struct Figures(Vec<Figure>);

impl Figures {
    /// The best run: lowest value when lower is better, else highest; NaN without runs.
    fn best(&self, lower_is_better: bool) -> Figure {
        let pick = |a: &&Figure, b: &&Figure| a.value.total_cmp(&b.value);
        let best = if lower_is_better {
            self.0.iter().min_by(pick)
        } else {
            self.0.iter().max_by(pick)
        };
        best.copied().unwrap_or(Figure {
            value: f64::NAN,
            p99_us: None,
        })
    }

    /// `min..max` of the values.
    fn range(&self) -> String {
        range(self.0.iter().map(|f| f.value))
    }
}

/// Runs the cross-process workloads and prints their figures. Fails if a run fails.
pub(crate) fn run(args: &CompareArgs) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("error: cannot find this executable to start the role processes: {e}");
            return ExitCode::FAILURE;
        }
    };
    let nats_server = if args.side == Sides::Netsvc {
        None
    } else {
        match nats_server::locate(args.nats_server.as_ref()) {
            Ok(path) => Some(path),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    let pick = |explicit: Option<u64>, full: u64, quick: u64| {
        explicit.unwrap_or(if args.quick { quick } else { full })
    };
    let plan = Plan {
        exe,
        nats_server,
        round_trips: pick(args.round_trips, 20_000, 2_000).max(1),
        round_trips_concurrent: pick(args.round_trips_concurrent, 200_000, 20_000).max(1),
        reports: pick(args.reports, 500_000, 50_000).max(1),
        reports_fanout: pick(args.reports_fanout, 100_000, 10_000).max(1),
        warmup: if args.quick {
            args.warmup.min(500)
        } else {
            args.warmup
        },
        window: args.window.max(1),
        ack_every: args.ack_every.max(1),
        limit: Duration::from_secs(args.timeout.max(1)),
        verbose: args.verbose,
    };
    let reps = args.reps.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let selected: Vec<&Workload> = match args.only.as_deref() {
        None => WORKLOADS.iter().collect(),
        // An exact name selects that workload alone (`reports_1_to_1` is also a prefix of
        // `reports_1_to_10`); anything else selects every name containing it.
        Some(only) if WORKLOADS.iter().any(|w| w.name == only) => {
            WORKLOADS.iter().filter(|w| w.name == only).collect()
        }
        Some(only) => WORKLOADS.iter().filter(|w| w.name.contains(only)).collect(),
    };
    if selected.is_empty() {
        eprintln!(
            "no workload matches {:?}",
            args.only.as_deref().unwrap_or("")
        );
        return ExitCode::FAILURE;
    }

    if !args.json {
        let version = plan
            .nats_server
            .as_deref()
            .map(nats_server::version)
            .unwrap_or_else(|| "not run".to_owned());
        println!(
            "netsvc-bench compare: netsvc vs NATS across processes on 127.0.0.1, {}-byte bodies; \
             best of {reps} runs per side, sides alternating",
            crate::payload::PAYLOAD_LEN
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
    let mut failed = false;
    for workload in selected {
        match measure(workload, &plan, reps, args.side) {
            Ok((netsvc, baseline)) => {
                let lower = workload.goal.lower_is_better();
                let (n, b) = (netsvc.best(lower), baseline.best(lower));
                let ratio = n.value / b.value;
                if args.json {
                    let line = JsonLine {
                        workload: workload.name,
                        netsvc: n.value,
                        baseline: b.value,
                        unit: workload.unit,
                        ratio,
                    };
                    if let Err(e) = line.print() {
                        eprintln!("error: {}: {e}", workload.name);
                        failed = true;
                    }
                } else {
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
                        let p99 =
                            |f: Figure| f.p99_us.map_or("-".to_owned(), |p| format!("{p:.1}"));
                        println!(
                            "{:<28} {:>12} {:>12} us_p99 of the same runs",
                            "  p99",
                            p99(n),
                            p99(b)
                        );
                    }
                    println!(
                        "{:<28} {:>12} {:>12}",
                        "  range min..max",
                        netsvc.range(),
                        baseline.range()
                    );
                }
            }
            Err(e) => {
                eprintln!("error: {}: {e}", workload.name);
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs one role process (the hidden `role` subcommand).
pub(crate) fn run_role(args: &RoleArgs) -> ExitCode {
    crate::role::main(|| match args.system {
        System::Netsvc => actix::System::new().block_on(netsvc::role(args)),
        System::Nats => nats::role(args),
    })
}

/// `reps` alternating runs of each selected side.
fn measure(
    workload: &Workload,
    plan: &Plan,
    reps: usize,
    sides: Sides,
) -> Result<(Figures, Figures), String> {
    let (mut netsvc, mut baseline) = (Figures::default(), Figures::default());
    for _ in 0..reps {
        if sides != Sides::Nats {
            netsvc.0.push(
                run_once(workload, plan, System::Netsvc).map_err(|e| format!("netsvc: {e}"))?,
            );
        }
        if sides != Sides::Netsvc {
            baseline
                .0
                .push(run_once(workload, plan, System::Nats).map_err(|e| format!("NATS: {e}"))?);
        }
    }
    Ok((netsvc, baseline))
}

/// One run of one side: starts the processes, collects the figures, kills the processes
/// (when their guards drop, in reverse order of starting, on success and on error alike).
fn run_once(workload: &Workload, plan: &Plan, system: System) -> Result<Figure, String> {
    let (_server, addr) = server(plan, system)?;
    match workload.shape {
        Shape::RequestReply { in_flight } => {
            let mut responder = role(
                plan,
                system,
                "responder",
                "responder".to_owned(),
                &[("--server", &addr)],
            )?;
            responder.expect("READY", SETUP)?;
            let count = if in_flight == 1 {
                plan.round_trips
            } else {
                plan.round_trips_concurrent
            };
            let mut requester = role(
                plan,
                system,
                "requester",
                "requester".to_owned(),
                &[
                    ("--server", &addr),
                    ("--count", &count.to_string()),
                    ("--in-flight", &in_flight.to_string()),
                    ("--warmup", &plan.warmup.to_string()),
                ],
            )?;
            let line = requester.expect("RESULT", plan.limit)?;
            let outcome: RequestOutcome = serde_json::from_str(&line)
                .map_err(|e| format!("bad requester result {line:?}: {e}"))?;
            if outcome.ops != count {
                return Err(format!(
                    "{} round trips measured, expected {count}",
                    outcome.ops
                ));
            }
            Ok(if in_flight == 1 {
                Figure {
                    value: outcome.p50_ns as f64 / 1e3,
                    p99_us: Some(outcome.p99_ns as f64 / 1e3),
                }
            } else {
                Figure {
                    value: outcome.ops as f64 / (outcome.elapsed_ns as f64 / 1e9).max(1e-9),
                    p99_us: None,
                }
            })
        }
        Shape::Reports { subscribers } => {
            let count = if subscribers == 1 {
                plan.reports
            } else {
                plan.reports_fanout
            };
            let count_arg = count.to_string();
            let ack_arg = plan.ack_every.to_string();
            let mut subs = Vec::with_capacity(subscribers);
            for i in 0..subscribers {
                let index = i.to_string();
                subs.push(role(
                    plan,
                    system,
                    "subscriber",
                    format!("subscriber {i}"),
                    &[
                        ("--server", &addr),
                        ("--index", &index),
                        ("--count", &count_arg),
                        ("--ack-every", &ack_arg),
                    ],
                )?);
            }
            for sub in &mut subs {
                sub.expect("READY", SETUP)?;
            }
            let mut publisher = role(
                plan,
                system,
                "publisher",
                "publisher".to_owned(),
                &[
                    ("--server", &addr),
                    ("--count", &count_arg),
                    ("--subscribers", &subscribers.to_string()),
                    ("--window", &plan.window.to_string()),
                    ("--ack-every", &ack_arg),
                ],
            )?;
            let line = publisher.expect("RESULT", plan.limit)?;
            let outcome: PublishOutcome = serde_json::from_str(&line)
                .map_err(|e| format!("bad publisher result {line:?}: {e}"))?;
            let mut problems = Vec::new();
            for sub in &mut subs {
                let line = sub.expect("RESULT", SETUP)?;
                let got: SubscribeOutcome = serde_json::from_str(&line)
                    .map_err(|e| format!("bad subscriber result {line:?}: {e}"))?;
                if got.received != count || got.out_of_order != 0 {
                    problems.push(format!(
                        "{}: {} reports received ({} out of sequence), expected {count}",
                        sub.name(),
                        got.received,
                        got.out_of_order
                    ));
                }
            }
            if !problems.is_empty() {
                return Err(format!(
                    "reports lost, duplicated or reordered: {}",
                    problems.join("; ")
                ));
            }
            Ok(Figure {
                value: outcome.ops as f64 / (outcome.elapsed_ns as f64 / 1e9).max(1e-9),
                p99_us: None,
            })
        }
    }
}

/// Starts the server of `system`; returns it and the address clients connect to.
fn server(plan: &Plan, system: System) -> Result<(Proc, String), String> {
    match system {
        System::Netsvc => {
            let mut exchange = role(
                plan,
                system,
                "exchange",
                "exchange".to_owned(),
                &[("--listen", "127.0.0.1:0")],
            )?;
            let addr = exchange.expect("READY", SETUP)?;
            Ok((exchange, addr))
        }
        System::Nats => {
            let binary = plan
                .nats_server
                .as_ref()
                .ok_or("nats-server was not located")?;
            let (server, url) = nats_server::start(binary)?;
            if plan.verbose {
                eprintln!("started nats-server (pid {}) at {url}", server.id());
            }
            Ok((server, url))
        }
    }
}

/// Starts `netsvc-bench role <kind> --system <system> <options>`.
fn role(
    plan: &Plan,
    system: System,
    kind: &str,
    name: String,
    options: &[(&str, &str)],
) -> Result<Proc, String> {
    let mut command = Command::new(&plan.exe);
    command.args(["role", kind, "--system", system.arg()]);
    for (option, value) in options {
        command.args([option, value]);
    }
    let proc = Proc::role(format!("{} {name}", system.arg()), command)?;
    if plan.verbose {
        eprintln!("started {} (pid {})", proc.name(), proc.id());
    }
    Ok(proc)
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
    fn best_depends_on_direction() {
        let figures = Figures(vec![
            Figure {
                value: 3.0,
                p99_us: Some(9.0),
            },
            Figure {
                value: 1.0,
                p99_us: Some(5.0),
            },
            Figure {
                value: 2.0,
                p99_us: None,
            },
        ]);
        assert_eq!(figures.best(true).value, 1.0);
        assert_eq!(figures.best(true).p99_us, Some(5.0));
        assert_eq!(figures.best(false).value, 3.0);
        assert!(Figures::default().best(false).value.is_nan());
        assert_eq!(figures.range(), "1.0..3.0");
    }

    #[test]
    fn goals() {
        assert!(Goal::LatencyAtMost(0.75).met(0.7));
        assert!(!Goal::LatencyAtMost(0.75).met(0.8));
        assert!(Goal::RateAtLeast(2.0).met(2.5));
        assert!(!Goal::RateAtLeast(2.0).met(1.5));
    }
}
