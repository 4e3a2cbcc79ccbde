//! `netsvc-bench`: the benchmark harness of netsvc.
//!
//! Every workload runs netsvc and a baseline doing the same work, side by side in the same
//! invocation, and prints both figures and their ratio. `local`: in-process workloads against
//! bare actix. `compare`: cross-process workloads over TCP against NATS (the processes are
//! this binary again, started with the hidden `role` subcommand). `soak`: a long run of
//! requests and reports through one exchange hub, counting every message and sampling every
//! process's memory (processes started with the hidden `soak-role` subcommand). `gateway`: JSON
//! calls through the HTTP gateway to a service in another process against a bare actix-web
//! handler (processes started with the hidden `gateway-role` subcommand).
//!
//! ```text
//! cargo run --release -p netsvc-bench -- local            # readable table
//! cargo run --release -p netsvc-bench -- local --json     # one JSON object per workload
//! cargo run --release -p netsvc-bench -- local --quick    # small counts, for smoke tests
//! cargo run --release -p netsvc-bench -- compare [--json] [--quick]
//! cargo run --release -p netsvc-bench -- converge [--services 10000,100000] [--json] [--quick]
//! cargo run --release -p netsvc-bench -- soak [--json] [--quick]
//! cargo run --release -p netsvc-bench -- gateway [--json] [--quick] [--clients K]
//! ```

mod compare;
mod converge;
mod fmt;
mod gateway;
mod local;
mod mesh;
mod pace;
mod payload;
mod procs;
mod roles;
mod runner;
mod soak;
mod stats;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Command line of the benchmark harness.
#[derive(Debug, Parser)]
#[command(
    name = "netsvc-bench",
    about = "Benchmarks netsvc against bare actix (local), NATS (compare) and bare actix-web (gateway)"
)]
struct Cli {
    /// What to run.
    #[command(subcommand)]
    command: Command,
}

/// The harness's subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// In-process workloads: netsvc and a bare actix baseline, side by side.
    Local(local::LocalArgs),
    /// Cross-process workloads over TCP: netsvc and NATS, side by side.
    Compare(compare::CompareArgs),
    /// One process of a `compare` workload (started by `compare` itself).
    #[command(hide = true)]
    Role(compare::RoleArgs),
    /// How fast a second client learns N services announced through a hub, and the memory
    /// per registry entry and per idle service.
    Converge(converge::ConvergeArgs),
    /// One process of `converge` (started by `converge` itself).
    #[command(hide = true)]
    ConvergeRole(converge::ConvergeRoleArgs),
    /// JSON calls through the HTTP gateway to another process, against bare actix-web.
    Gateway(gateway::GatewayArgs),
    /// One process of `gateway` (started by `gateway` itself).
    #[command(hide = true)]
    GatewayRole(gateway::GatewayRoleArgs),
    /// A long mixed run through one hub: requests and reports counted, memory sampled.
    Soak(soak::SoakArgs),
    /// One process of `soak` (started by `soak` itself).
    #[command(hide = true)]
    SoakRole(soak::SoakRoleArgs),
}

/// Parses the command line and runs the chosen subcommand.
fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Local(args) => local::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Role(args) => compare::run_role(&args),
        Command::Converge(args) => converge::run(&args),
        Command::ConvergeRole(args) => converge::run_role(&args),
        Command::Gateway(args) => gateway::run(&args),
        Command::GatewayRole(args) => gateway::run_role(&args),
        Command::Soak(args) => soak::run(&args),
        Command::SoakRole(args) => soak::run_role(&args),
    }
}
