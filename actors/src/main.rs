//! `netsvc`: the command-line tool of netsvc.
//!
//! * `netsvc demo [--duration SECONDS]` — the seed scenario (a publisher of the time, a
//!   subscriber that notices it) plus a round of requests to a calculator, in one process,
//!   printed as it happens. Runs until Ctrl-C, or for `--duration` seconds.
//! * `netsvc exchange --listen HOST:PORT [--connect HOST:PORT ...]` — a standalone exchange
//!   server (optionally part of a distributed exchange); logs connections; stops on Ctrl-C.
//!   `--tls-cert FILE --tls-key FILE [--tls-ca FILE --require-client-cert]` put its links under
//!   TLS, `--secret-file FILE` requires a shared secret, `--policy FILE` a per-peer policy.
//! * `netsvc gateway --listen HOST:PORT --connect HOST:PORT [--group G | --all]` — the HTTP
//!   gateway (JSON calls, JSON-RPC 2.0, XML-RPC, Server-Sent Events) on a node joined to the
//!   exchange; prints "gateway listening on ADDR"; stops on Ctrl-C. `--allow-host ADDR[/PREFIX]`,
//!   `--basic-auth-file FILE`, `--token-file FILE` and `--http-tls-cert FILE --http-tls-key
//!   FILE` guard its door (HTTPS with the latter two).

mod bench;
mod call;
mod client;
mod demo;
mod describe;
mod exchange;
mod gateway;
mod list;
mod publish;
mod watch;

use std::io::IsTerminal;
use std::process::ExitCode;

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
    /// Serve the mesh over HTTP: JSON calls, JSON-RPC 2.0, XML-RPC, live events.
    Gateway(gateway::GatewayArgs),
    /// List the services of the mesh (or its groups, nodes, subscriptions).
    List(list::ListArgs),
    /// Describe a service: its methods, and the subjects it publishes.
    Describe(describe::DescribeArgs),
    /// Watch the registry, or a service's reports, live.
    Watch(watch::WatchArgs),
    /// Call a method of a service with JSON arguments; print the JSON result.
    Call(call::CallArgs),
    /// Publish a JSON report from a service of this command.
    Publish(publish::PublishArgs),
    /// Load a live mesh with requests or reports; print throughput and latency.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The servers log warnings; a client verb reports its own errors, one line each, so the
    // library's logs are off unless RUST_LOG asks for them.
    let quiet = !matches!(cli.command, Command::Demo(_) | Command::Exchange(_));
    let default = if quiet { "off" } else { "warn" };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .init();
    match cli.command {
        Command::Demo(args) => actix::System::new().block_on(demo::run(args)),
        Command::Exchange(args) => actix::System::new().block_on(exchange::run(args)),
        Command::Gateway(args) => client_verb(gateway::run(args)),
        Command::List(args) => client_verb(list::run(args)),
        Command::Describe(args) => client_verb(describe::run(args)),
        Command::Watch(args) => client_verb(watch::run(args)),
        Command::Call(args) => client_verb(call::run(args)),
        Command::Publish(args) => client_verb(publish::run(args)),
        Command::Bench(args) => client_verb(bench::run(args)),
    }
}

/// Runs a client verb on its own actix System: its error as one line on stderr and the
/// exit status of its class.
fn client_verb(verb: impl std::future::Future<Output = Result<(), client::CliError>>) -> ExitCode {
    match actix::System::new().block_on(verb) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netsvc: {}", e.message);
            e.exit.into()
        }
    }
}

/// Whether logs are coloured: only on a terminal, and never with `NO_COLOR` set
/// (<https://no-color.org>).
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
