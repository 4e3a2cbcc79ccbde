//! `netsvc-bench soak`: a long mixed run through one exchange hub, counting everything.
//!
//! Three processes of this binary (the hidden `soak-role` subcommand), all on 127.0.0.1:
//!
//! * **hub** — a node whose exchange listens on `127.0.0.1:0` (what `netsvc exchange` does),
//!   plus a `soak-hub` service whose `stats` method returns the hub's traffic counters (so the
//!   run can check that the hub dropped no report);
//! * **producer** — a `soak-server` service (`work(seq, body)`: checks the body, answers it
//!   with `answer(seq)` in place of `seq`) and a `soak-publisher` service publishing
//!   `soak.seq` reports, body `seq`, paced by its subscriber's acknowledgements;
//! * **consumer** — a subscriber of `soak.*` on `soak-publisher` that checks every report's
//!   sequence number and body, and a client making the requests to `soak-server`,
//!   `--in-flight` at a time, checking every answer.
//!
//! **Zero loss by construction.** A link drops reports once its 32 MiB outbound buffer is
//! full (the slow-consumer policy), so the publisher is paced end to end: the subscriber
//! acknowledges what it has received (a request to the publisher's `ack` method) every
//! `--ack-every` reports, and the publisher stays at most `--window` reports ahead of the
//! last acknowledgement. About `--window` × 200 bytes are ever in flight, far below any
//! buffer limit, so a lost report is a defect, not bad luck. Every process's
//! `reports_dropped` counter is checked too.
//!
//! **Lockstep.** The consumer keeps the two streams within a few percent of each other: it
//! holds back requests that would run ahead of the reports, and acknowledgements that would
//! let the reports run ahead of the requests. Both kinds of traffic flow for the whole run,
//! and "10 % of progress" means 10 % of both.
//!
//! **Memory.** The driver samples every process's resident set (`VmRSS` in
//! `/proc/PID/status`) when the run starts and at every tenth of progress (the consumer prints
//! `PROGRESS k` once both streams have reached k/10). The sample at 10 % is the post-warm-up
//! figure; the run fails if any process ends above `--rss-limit` (1.1) times it.
//!
//! **Verdict.** The run fails (non-zero exit, a message per problem) if a report is lost,
//! duplicated, reordered or corrupted, a request fails or is answered wrongly, a process
//! drops a report, or a process's memory grows past the limit. Every wait is bounded: a run
//! that makes no progress for `--stall` seconds (60) fails with the consumer's counts and
//! every process's count of dropped reports; the processes are killed when the driver ends.
//!
//! ```text
//! cargo run --release -p netsvc-bench -- soak            # 1M requests + 10M reports
//! cargo run --release -p netsvc-bench -- soak --quick    # 20k requests + 200k reports
//! cargo run --release -p netsvc-bench -- soak --json     # one JSON line
//! ```
//!
//! Files: `soak/settings.rs` (the counts and limits, shared by the driver and the processes),
//! `soak/protocol.rs` (what the processes agree on), `soak/hub.rs`, `soak/producer.rs`,
//! `soak/consumer.rs` with `soak/gate.rs` (the processes), `soak/run.rs` with `soak/rss.rs`
//! (the driver), `soak/verdict.rs` and `soak/report.rs` (the checks and the output).

mod consumer;
mod gate;
mod hub;
mod producer;
mod protocol;
mod report;
pub(crate) mod rss;
mod run;
mod settings;
mod verdict;

use std::process::ExitCode;

use clap::Args;

use protocol::SoakRole;
pub(crate) use protocol::SoakRoleArgs;
use settings::Settings;

/// Options of `netsvc-bench soak`.
#[derive(Debug, Args)]
pub(crate) struct SoakArgs {
    /// Print one JSON object (one line) instead of a table.
    #[arg(long)]
    json: bool,
    /// The run's counts and limits.
    #[command(flatten)]
    settings: Settings,
    /// Print every process started (name and pid) and every progress sample on stderr.
    #[arg(long)]
    verbose: bool,
}

/// Runs the soak and prints its figures; fails if any check fails.
pub(crate) fn run(args: &SoakArgs) -> ExitCode {
    match soak(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: soak: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the soak, checks the outcome, prints. `Ok(false)`: a check failed (already printed).
fn soak(args: &SoakArgs) -> Result<bool, String> {
    let plan = args.settings.plan();
    let finished = run::run(&plan, args.verbose)?;
    let problems = verdict::verdict(&finished, &plan);
    if args.json {
        report::json(&finished, &plan, &problems)?;
    } else {
        report::table(&finished, &plan, &problems);
    }
    for problem in &problems {
        eprintln!("soak failed: {problem}");
    }
    Ok(problems.is_empty())
}

/// Runs one soak process (the hidden `soak-role` subcommand).
pub(crate) fn run_role(args: &SoakRoleArgs) -> ExitCode {
    let plan = args.settings.plan();
    crate::roles::main(|| {
        actix::System::new().block_on(async {
            match args.role {
                SoakRole::Hub => hub::hub(args).await,
                SoakRole::Producer => producer::producer(args, &plan).await,
                SoakRole::Consumer => consumer::consumer(args, &plan).await,
            }
        })
    })
}
