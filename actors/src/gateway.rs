//! `netsvc gateway --listen HOST:PORT [--group G | --all]`: the HTTP gateway
//! (`netsvc-gateway`) on a node of its own, joined to one exchange server; runs until Ctrl-C.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use netsvc::{ClientAuth, ConnectionState, GroupName, ServiceName, Tls};
use netsvc_gateway::{
    Gateway, GatewayConfig, HostList, Passwords, Tokens, DEFAULT_BODY_LIMIT, DEFAULT_PUBLISHER,
    DEFAULT_SSE_BUFFER, DEFAULT_WORKERS,
};

use crate::client::{settle, CliError, ConnectArgs, Exit};

/// How long the gateway waits between two attempts to reconnect to its exchange server.
const RECONNECT: Duration = Duration::from_secs(1);

/// Arguments of `netsvc gateway`.
#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("exposed").args(["group", "all"]))]
pub(crate) struct GatewayArgs {
    /// The address to serve HTTP on (port 0: a free one, printed).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Expose only the services of this group (OSE's RpcGateway(group)).
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
    /// Expose every service the gateway sees (the default).
    #[arg(long)]
    all: bool,
    /// Seconds a request may take when it does not say `?timeout=`.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    timeout: f64,
    /// Largest request body, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_BODY_LIMIT)]
    body_limit: usize,
    /// Name of the gateway's own service, the publisher of `POST /publish/{subject}`.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_PUBLISHER)]
    publisher: String,
    /// Events an event stream holds for a slow client before dropping it.
    #[arg(long, value_name = "EVENTS", default_value_t = DEFAULT_SSE_BUFFER)]
    sse_buffer: usize,
    /// HTTP worker threads; 0: serve on the node's own thread (fastest for a call).
    #[arg(long, default_value_t = DEFAULT_WORKERS)]
    workers: usize,
    /// Serve only clients from this IP address or network (`10.0.0.0/8`, `fd00::/8`);
    /// repeatable. Others get 403. Default: every host.
    #[arg(long, value_name = "ADDR[/PREFIX]")]
    allow_host: Vec<String>,
    /// Require HTTP Basic credentials from this file: lines `login:password`, `#` comments.
    #[arg(long, value_name = "FILE")]
    basic_auth_file: Option<PathBuf>,
    /// Require a bearer token (`Authorization: Bearer T`) from this file: one per line, `#`
    /// comments. With --basic-auth-file, either is accepted.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM); the gateway's own, not the exchange
    /// link's (--tls-cert).
    #[arg(long, value_name = "FILE", requires = "http_tls_key")]
    http_tls_cert: Option<PathBuf>,
    /// The private key of --http-tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "http_tls_cert")]
    http_tls_key: Option<PathBuf>,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// Runs `netsvc gateway`.
pub(crate) async fn run(args: GatewayArgs) -> Result<(), CliError> {
    let group = args
        .group
        .as_deref()
        .map(GroupName::new)
        .transpose()
        .map_err(|e| CliError::usage(format!("invalid --group: {e}")))?;
    let publisher = ServiceName::new(&args.publisher)
        .ok()
        .filter(|n| !n.is_anonymous())
        .ok_or_else(|| CliError::usage(format!("invalid --publisher {:?}", args.publisher)))?;
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| CliError::usage("--timeout must be a positive number of seconds"))?;
    let authorise_host = if args.allow_host.is_empty() {
        None
    } else {
        let hosts = HostList::parse(&args.allow_host)
            .map_err(|e| CliError::usage(format!("invalid --allow-host: {e}")))?;
        Some(hosts.into_hook())
    };
    let authorise_user = args
        .basic_auth_file
        .as_deref()
        .map(Passwords::from_file)
        .transpose()
        .map_err(|e| CliError::usage(format!("--basic-auth-file: {e}")))?
        .map(Passwords::into_hook);
    let authorise_token = args
        .token_file
        .as_deref()
        .map(Tokens::from_file)
        .transpose()
        .map_err(|e| CliError::usage(format!("--token-file: {e}")))?
        .map(Tokens::into_hook);
    let tls = Tls::from_files(
        args.http_tls_cert.as_deref(),
        args.http_tls_key.as_deref(),
        None,
        ClientAuth::Optional,
    )
    .map_err(|e| CliError::usage(format!("--http-tls-cert/--http-tls-key: {e}")))?
    .and_then(|tls| tls.server_config());
    let node = netsvc::Node::new("netsvc-gateway");
    let exchange = args.connect.exchange(&node)?;
    let joined = args.connect.connect(&exchange).await?;
    settle(&node).await;
    // A daemon: after a loss, keep reconnecting.
    let mut events = exchange.connections();
    let (addr, peer) = (args.connect.connect.clone(), joined.remote_process);
    let reconnecting = exchange.clone();
    actix::spawn(async move {
        while let Ok(event) = events.recv().await {
            if event.state == ConnectionState::Inactive && event.remote_process == peer {
                tracing::warn!("lost the exchange at {addr}; reconnecting");
                reconnecting.connect(&addr, Some(RECONNECT)).forget();
                return;
            }
        }
    });
    let config = GatewayConfig {
        group,
        timeout,
        body_limit: args.body_limit,
        publisher,
        sse_buffer: args.sse_buffer,
        workers: args.workers,
        authorise_host,
        authorise_user,
        authorise_token,
        tls,
    };
    let gateway = Gateway::new(&node, config);
    gateway.watch_links(&exchange);
    let local = gateway.listen(&args.listen).await.map_err(|e| CliError {
        exit: Exit::Failed,
        message: format!("cannot listen on {}: {e}", args.listen),
    })?;
    println!("gateway listening on {local}");
    node.monitor_signals();
    node.shutdown_complete().await;
    gateway.stop().await;
    println!("gateway stopped");
    Ok(())
}
