//! `netsvc`: the command-line tool of netsvc.
//!
//! * `netsvc demo [--duration SECONDS]` — the seed scenario (a publisher of the time, a
//!   subscriber that notices it) plus a round of requests to a calculator, in one process,
//!   printed as it happens. Runs until Ctrl-C, or for `--duration` seconds.
//! * `netsvc exchange --listen HOST:PORT [--connect HOST:PORT ...]` — a standalone exchange
//!   server (optionally part of a distributed exchange); logs connections; stops on Ctrl-C.
//!   `--tls-cert FILE --tls-key FILE [--tls-ca FILE --require-client-cert]` put its links under
//!   TLS, `--secret-file FILE` requires a shared secret, `--policy FILE` a per-peer policy.

mod demo;
mod exchange;

use clap::{Parser, Subcommand};

/// netsvc: a service-agent mesh on actix.
#[derive(Parser)]
#[command(name = "netsvc", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the seed scenario and a round of requests in one process.
    Demo(demo::DemoArgs),
    /// Run a standalone exchange server.
    Exchange(exchange::ExchangeArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match cli.command {
        Command::Demo(args) => actix::System::new().block_on(demo::run(args)),
        Command::Exchange(args) => actix::System::new().block_on(exchange::run(args)),
    }
}
