//! `netsvc-bench gateway`: JSON calls through `netsvc-gateway` to a service in another
//! process, against a bare actix-web handler giving the same answer (the HTTP floor of the
//! machine), side by side in one run (issue 13).
//!
//! Every call is `POST /call/calculator/multiply` with the body `[6,7]`, answered `200`
//! with `{"result":42}`, from `--clients` (16) concurrent keep-alive HTTP/1.1 connections,
//! one call outstanding on each. The processes, all this binary on free ports of 127.0.0.1,
//! started per run and killed at its end:
//!
//! * **gateway side** — a hub (compare's `role exchange` process: a node whose exchange
//!   listens), a `calculator` service on a node of its own joined to it, and a gateway
//!   process: a node joined to it serving [`netsvc_gateway::Gateway`] with its default
//!   configuration (HTTP served on the node's own thread). A call goes client → gateway →
//!   hub → calculator and back: two processes more than the bare side, and two exchange hops.
//!   With `--topology direct`, no hub: the calculator's node listens as an exchange of its
//!   own and the gateway's joins it (gateway → calculator, one exchange hop).
//! * **bare side** — one actix-web server (`HttpServer`, one worker) whose handler reads
//!   the body, decodes `(a, b)` and answers `HttpResponse::json({"result": a * b})`, as the
//!   gateway does. Its route is the gateway's pattern, `/call/{service}/{method}`.
//! * **client** — the same on both sides (`gateway/client.rs`): a hand-written client on
//!   tokio's `TcpStream`, one current-thread runtime, that checks the status and the body of
//!   every answer; a single wrong answer fails the run.
//!
//! **Figures.** Per run: calls/s over the measured calls (after `--warmup` unmeasured calls
//! on the same connections), p50, p99 and max latency (request written to answer read), and
//! the CPU time of every process of the run per call (user + system, from the reaped
//! children, as `compare` measures it; start-up and warm-up included), with and without the
//! client's own. After a discarded warm-up run of each side (not with `--quick`), `--reps`
//! rounds run each side once in an order drawn at random per round; a side's figure is the
//! median of its runs (`--stat median`, the default here: the issue asks for medians) or its
//! best. Target: the gateway at least [`TARGET`] × the bare handler's calls/s.
//!
//! ```text
//! cargo run --release -p netsvc-bench -- gateway            # table, 3 rounds
//! cargo run --release -p netsvc-bench -- gateway --json     # one JSON line
//! cargo run --release -p netsvc-bench -- gateway --quick    # small counts, one round
//! ```
//!
//! A subcommand of its own, not a workload of `compare`: `compare`'s sides are messaging
//! systems (netsvc, NATS, the raw relay) running the same worker roles, while here the sides
//! are two HTTP servers behind one HTTP client.
//!
//! Files: `gateway/protocol.rs` (what the driver and the processes agree on),
//! `gateway/client.rs` (the HTTP client), `gateway/servers.rs` (calculator, gateway, bare),
//! `gateway/run.rs` (one run of one side), `gateway/report.rs` (the output).

mod client;
mod protocol;
mod report;
mod run;
mod servers;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

use protocol::GatewayRole;
pub(crate) use protocol::GatewayRoleArgs;
use run::{Plan, Side};

use crate::roles;
use crate::runner::{self, Contender};
use crate::stats::Stat;

/// The target: the gateway's calls/s at least this times the bare handler's.
pub(crate) const TARGET: f64 = 0.5;

/// Options of `netsvc-bench gateway`.
#[derive(Debug, Args)]
pub(crate) struct GatewayArgs {
    /// Print one JSON object (one line) instead of a table.
    #[arg(long)]
    json: bool,
    /// Small counts and one run per side, for smoke testing.
    #[arg(long)]
    quick: bool,
    /// Measured runs per side; default 3, 1 with --quick.
    #[arg(long)]
    reps: Option<usize>,
    /// Which run represents a side: the median of each figure (default) or the best run.
    #[arg(long, value_enum, default_value_t = Stat::Median)]
    stat: Stat,
    /// Run only one side (for profiling); the other shows NaN.
    #[arg(long, value_enum, default_value_t = Sides::All)]
    side: Sides,
    /// Concurrent keep-alive HTTP/1.1 connections, one call outstanding on each.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Measured calls per run (default 100000, 2000 with --quick).
    #[arg(long)]
    calls: Option<u64>,
    /// Unmeasured calls per run before measuring, on the same connections (default 5000,
    /// 200 with --quick).
    #[arg(long)]
    warmup: Option<u64>,
    /// Longest one run may take, in seconds, before it is declared failed.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Print every process started (name and pid) on stderr, e.g. to attach `perf record -p`.
    #[arg(long)]
    verbose: bool,
    /// How the gateway reaches the calculator: through a hub (the default, the deployment of
    /// every figure since issue 13's first), or over a direct link to an exchange the
    /// calculator's own node listens on.
    #[arg(long, value_enum, default_value_t = Topology::Hub)]
    topology: Topology,
}

/// How the gateway's node and the calculator's are connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Topology {
    /// Both join a hub (`compare`'s `role exchange`): gateway → hub → calculator.
    Hub,
    /// The calculator's node listens; the gateway's connects to it: gateway → calculator.
    Direct,
}

/// Which side(s) to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Sides {
    /// Both.
    #[value(alias = "both")]
    All,
    /// Through the gateway only.
    Gateway,
    /// The bare actix-web handler only.
    Bare,
}

/// Runs the workload and prints its figures. Fails if a run fails.
pub(crate) fn run(args: &GatewayArgs) -> ExitCode {
    let plan = match plan(args) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let reps = args.reps.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    // A first run of each side warms the page cache and the CPU's frequency; discarded.
    let warmups = usize::from(!args.quick);
    if !args.json {
        report::header(&plan, reps, args.stat);
    }
    let gateway = || run::once(&plan, Side::Gateway);
    let bare = || run::once(&plan, Side::Bare);
    let runs = |side: Sides| args.side == Sides::All || args.side == side;
    let measured = runner::alternate(
        warmups,
        reps,
        &[
            Contender {
                label: "gateway",
                run: runs(Sides::Gateway).then_some(&gateway),
            },
            Contender {
                label: "bare",
                run: runs(Sides::Bare).then_some(&bare),
            },
        ],
    );
    let outcome = measured.and_then(|runs| {
        if args.json {
            report::json(&plan, &runs, args.stat)
        } else {
            report::rows(&runs, args.stat);
            Ok(())
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The counts and settings `args` ask for.
fn plan(args: &GatewayArgs) -> Result<Plan, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find this executable to start the processes: {e}"))?;
    let pick = |explicit: Option<u64>, full: u64, quick: u64| {
        explicit.unwrap_or(if args.quick { quick } else { full })
    };
    Ok(Plan {
        exe,
        clients: args.clients.max(1),
        calls: pick(args.calls, 100_000, 2_000).max(1),
        warmup: pick(args.warmup, 5_000, 200),
        limit: Duration::from_secs(args.timeout.max(1)),
        verbose: args.verbose,
        topology: args.topology,
    })
}

/// Runs one process of the workload (the hidden `gateway-role` subcommand).
pub(crate) fn run_role(args: &GatewayRoleArgs) -> ExitCode {
    roles::main(|| match args.role {
        GatewayRole::Calculator => actix::System::new().block_on(servers::calculator(args)),
        GatewayRole::Gateway => actix::System::new().block_on(servers::gateway(args)),
        GatewayRole::Bare => actix::System::new().block_on(servers::bare(args)),
        GatewayRole::Client => roles::on_tokio(client::client(args)),
    })
}
