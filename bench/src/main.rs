//! `netsvc-bench`: the benchmark harness of netsvc.
//!
//! Every workload runs netsvc and a baseline doing the same work with bare actix, side by
//! side in the same process run, and prints both rates and their ratio.
//!
//! ```text
//! cargo run --release -p netsvc-bench -- local            # readable table
//! cargo run --release -p netsvc-bench -- local --json     # one JSON object per workload
//! cargo run --release -p netsvc-bench -- local --quick    # small counts, for smoke tests
//! ```

mod local;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Command line of the benchmark harness.
#[derive(Debug, Parser)]
#[command(name = "netsvc-bench", about = "Benchmarks netsvc against bare actix baselines")]
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
}

/// Parses the command line and runs the chosen subcommand.
fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Local(args) => local::run(&args),
    }
}
