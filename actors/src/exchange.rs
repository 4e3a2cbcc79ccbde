//! `netsvc exchange`: a standalone exchange server.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use netsvc::{ConnectionState, Exchange, ExchangeConfig, Node};

/// Arguments of `netsvc exchange`.
#[derive(Args)]
pub(crate) struct ExchangeArgs {
    /// Address to listen on, e.g. 127.0.0.1:11111 (port 0 picks a free port).
    #[arg(long, value_name = "HOST:PORT")]
    listen: String,
    /// Other exchange servers to connect to (a distributed exchange); repeatable.
    #[arg(long, value_name = "HOST:PORT")]
    connect: Vec<String>,
    /// Seconds between connection attempts to `--connect` peers.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    retry: f64,
    /// The exchange group (default: the empty, default group).
    #[arg(long, default_value = "")]
    group: String,
}

/// Runs an exchange server until Ctrl-C.
pub(crate) async fn run(args: ExchangeArgs) -> ExitCode {
    let Some(retry) = Duration::try_from_secs_f64(args.retry)
        .ok()
        .filter(|d| !d.is_zero())
    else {
        eprintln!(
            "netsvc exchange: --retry must be a positive number of seconds, got {}",
            args.retry
        );
        return ExitCode::from(2);
    };
    let node = Node::new("exchange");
    node.monitor_signals();
    let config = ExchangeConfig {
        group: args.group.clone(),
        ..ExchangeConfig::default()
    };
    let exchange = match Exchange::with_config(&node, config) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("netsvc exchange: {e}");
            return ExitCode::from(2);
        }
    };
    let mut events = exchange.connections();
    actix::spawn(async move {
        while let Ok(event) = events.recv().await {
            let verb = match event.state {
                ConnectionState::Active => "connected",
                ConnectionState::Inactive => "disconnected",
            };
            println!(
                "{verb}: {} ({}, process {})",
                event.remote_addr, event.remote_node, event.remote_process
            );
        }
    });
    let local = match exchange.listen(&args.listen).await {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("netsvc exchange: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(1);
        }
    };
    println!(
        "exchange listening on {local} (group {:?}, process {})",
        args.group,
        node.process()
    );
    for peer in &args.connect {
        exchange.connect(peer, Some(retry)).forget();
    }
    node.shutdown_complete().await;
    println!("exchange stopped");
    ExitCode::SUCCESS
}
