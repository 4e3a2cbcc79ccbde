//! `netsvc exchange`: a standalone exchange server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use netsvc::{
    ClientAuth, ConnectionState, Exchange, ExchangeConfig, Node, PolicyFile, Secret, Tls,
};

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
    /// This server's certificate chain (PEM); with `--tls-key`, every link is TLS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The CA (PEM) that `--connect` peers, and client certificates, must be signed by.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Require every client to present a certificate signed by `--tls-ca` (mutual TLS).
    #[arg(long, requires = "tls_ca")]
    require_client_cert: bool,
    /// A file holding a shared secret (at least 16 bytes) every peer must prove it has.
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// A per-peer policy (JSON: see `netsvc::PolicyFile`): which peers are served, which
    /// service names each may announce, whether it may relay, and how much it may hold.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Poll the connections instead of sleeping for this many microseconds after each read
    /// or write: lower latency for CPU (`netsvc::spin_when_idle`); 0, the default, sleeps.
    #[arg(long, value_name = "MICROSECONDS", default_value_t = 0)]
    spin_us: u64,
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
    let client_auth = if args.require_client_cert {
        ClientAuth::Required
    } else {
        ClientAuth::Optional
    };
    let tls = match Tls::from_files(
        args.tls_cert.as_deref(),
        args.tls_key.as_deref(),
        args.tls_ca.as_deref(),
        client_auth,
    ) {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("netsvc exchange: {e}");
            return ExitCode::from(2);
        }
    };
    let secret = match args
        .secret_file
        .as_deref()
        .map(Secret::from_file)
        .transpose()
    {
        Ok(secret) => secret,
        Err(e) => {
            eprintln!("netsvc exchange: {e}");
            return ExitCode::from(2);
        }
    };
    let admit = match args.policy.as_deref().map(PolicyFile::load).transpose() {
        Ok(policy) => policy.map(PolicyFile::into_admit),
        Err(e) => {
            eprintln!("netsvc exchange: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = netsvc::spin_when_idle(Duration::from_micros(args.spin_us)) {
        eprintln!("netsvc exchange: {e}");
        return ExitCode::from(2);
    }
    let node = Node::new("exchange");
    node.monitor_signals();
    let config = ExchangeConfig {
        group: args.group.clone(),
        tls,
        secret,
        admit,
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
