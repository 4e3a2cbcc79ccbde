//! The NATS side of `compare`: the roles on the async-nats client, and running nats-server.
//!
//! Configuration (the same for every NATS role):
//!
//! * one tokio **current-thread** runtime per process, like the single actix arbiter of every
//!   netsvc process;
//! * `subscription_capacity` raised from 65,536 to [`SUBSCRIPTION_CAPACITY`] messages (the
//!   pacing window keeps far fewer outstanding; the larger bound costs nothing, tokio's
//!   channel allocates as it fills) so that the client never drops a message as a slow
//!   consumer;
//! * `request_timeout(None)`: netsvc's endpoint has no timeout either, so neither side arms a
//!   timer per request (the driver bounds every run instead).
//!
//! Subjects: requests go to `bench.rr` (the responder echoes the body to the reply inbox);
//! reports to `bench.x`, subscribed as `bench.*`; acknowledgements to `ack.<index>`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use async_nats::{Client, ConnectOptions};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::pace::Pace;
use crate::payload::{payload, seq_of};
use crate::procs::{self, Proc};
use crate::role::{ready, result, SETUP};
use crate::roles::{
    drive_requests, PublishOutcome, RoleArgs, RoleKind, Tally, PATTERN, ROLE_LIMIT, SETTLE, SUBJECT,
};

/// Bound of each async-nats subscription's channel, in messages.
pub(crate) const SUBSCRIPTION_CAPACITY: usize = 1 << 20;
/// Subject of the request/reply workloads.
const REQUEST_SUBJECT: &str = "bench.rr";
/// Prefix of acknowledgement subjects (`ack.<index>`).
const ACK_PREFIX: &str = "ack.";

/// Runs one NATS role on a current-thread tokio runtime.
pub(crate) fn role(args: &RoleArgs) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build a tokio runtime: {e}"))?;
    runtime.block_on(async {
        match args.kind() {
            RoleKind::Exchange => {
                Err("NATS has no exchange role: compare starts nats-server".to_owned())
            }
            RoleKind::Responder => responder(args).await,
            RoleKind::Requester => requester(args).await,
            RoleKind::Publisher => publisher(args).await,
            RoleKind::Subscriber => subscriber(args).await,
        }
    })
}

/// Connects to nats-server with the benchmark's client configuration.
async fn connect(server: &str) -> Result<Client, String> {
    ConnectOptions::new()
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        .request_timeout(None)
        .connection_timeout(SETUP)
        .connect(server)
        .await
        .map_err(|e| format!("cannot connect to nats-server at {server}: {e}"))
}

/// Echoes every request on `bench.rr` to its reply subject, until killed.
async fn responder(args: &RoleArgs) -> Result<(), String> {
    let client = connect(&args.server).await?;
    let mut requests = client
        .subscribe(REQUEST_SUBJECT)
        .await
        .map_err(|e| format!("cannot subscribe: {e}"))?;
    client
        .flush()
        .await
        .map_err(|e| format!("cannot flush: {e}"))?;
    ready("");
    while let Some(message) = requests.next().await {
        if let Some(reply) = message.reply {
            client
                .publish(reply, message.payload)
                .await
                .map_err(|e| format!("cannot reply: {e}"))?;
        }
    }
    Err("the request subscription ended".to_owned())
}

/// Warms up, then measures requests to `bench.rr`.
async fn requester(args: &RoleArgs) -> Result<(), String> {
    let client = connect(&args.server).await?;
    let client = &client;
    let call = |i: u64| async move {
        let message = client
            .request(REQUEST_SUBJECT, Bytes::from(payload(i)))
            .await
            .map_err(|e| format!("request {i} failed: {e}"))?;
        seq_of(&message.payload)
            .ok_or_else(|| format!("request {i}: response of {} bytes", message.payload.len()))
    };
    tokio::time::timeout(SETUP, drive_requests(args.warmup, 1, &call))
        .await
        .map_err(|_| format!("warm-up not done within {SETUP:?}"))??;
    let outcome = tokio::time::timeout(
        ROLE_LIMIT,
        drive_requests(args.count, args.in_flight, &call),
    )
    .await
    .map_err(|_| format!("requests not done within {ROLE_LIMIT:?}"))??;
    result(&outcome)
}

/// Publishes `--count` reports on `bench.x`, paced by acknowledgements on `ack.*`. The
/// driver starts it once every subscriber is subscribed.
async fn publisher(args: &RoleArgs) -> Result<(), String> {
    let client = connect(&args.server).await?;
    let mut acks = client
        .subscribe(format!("{ACK_PREFIX}*"))
        .await
        .map_err(|e| format!("cannot subscribe: {e}"))?;
    client
        .flush()
        .await
        .map_err(|e| format!("cannot flush: {e}"))?;
    ready("");
    let mut pace = Pace::new(args.count, args.window, args.subscribers);
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + ROLE_LIMIT;
    loop {
        for seq in pace.sendable() {
            client
                .publish(SUBJECT, Bytes::from(payload(seq)))
                .await
                .map_err(|e| format!("cannot publish: {e}"))?;
        }
        if pace.all_acked() {
            break;
        }
        let message = match tokio::time::timeout_at(deadline, acks.next()).await {
            Ok(Some(message)) => message,
            Ok(None) => return Err("the acknowledgement subscription ended".to_owned()),
            Err(_) => return Err(format!("not every report acknowledged: {:?}", pace.acked())),
        };
        let index = message
            .subject
            .strip_prefix(ACK_PREFIX)
            .and_then(|i| i.parse::<usize>().ok());
        let count = message
            .payload
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes);
        match (index, count) {
            (Some(index), Some(count)) if pace.ack(index, count) => {}
            _ => return Err(format!("bad acknowledgement on {}", message.subject)),
        }
    }
    let elapsed = start.elapsed();
    result(&PublishOutcome {
        ops: args.count * args.subscribers as u64,
        elapsed_ns: elapsed.as_nanos() as u64,
    })
}

/// Counts reports on `bench.*` and acknowledges them on `ack.<index>`.
async fn subscriber(args: &RoleArgs) -> Result<(), String> {
    let client = connect(&args.server).await?;
    let mut reports = client
        .subscribe(PATTERN)
        .await
        .map_err(|e| format!("cannot subscribe: {e}"))?;
    client
        .flush()
        .await
        .map_err(|e| format!("cannot flush: {e}"))?;
    ready("");
    let ack_subject = format!("{ACK_PREFIX}{}", args.index);
    let mut tally = Tally::new(args.count, args.ack_every);
    let deadline = tokio::time::Instant::now() + ROLE_LIMIT;
    while !tally.complete() {
        let message = match tokio::time::timeout_at(deadline, reports.next()).await {
            Ok(Some(message)) => message,
            Ok(None) => return Err("the report subscription ended".to_owned()),
            Err(_) => {
                return Err(format!(
                    "only {} of {} reports received",
                    tally.received, args.count
                ))
            }
        };
        if let Some(count) = tally.record(seq_of(&message.payload)) {
            client
                .publish(
                    ack_subject.clone(),
                    Bytes::copy_from_slice(&count.to_le_bytes()),
                )
                .await
                .map_err(|e| format!("cannot acknowledge: {e}"))?;
        }
    }
    client
        .flush()
        .await
        .map_err(|e| format!("cannot flush: {e}"))?;
    // Keep counting for a moment: extra deliveries would show up here.
    let settle = tokio::time::sleep(SETTLE);
    tokio::pin!(settle);
    loop {
        tokio::select! {
            _ = &mut settle => break,
            message = reports.next() => match message {
                Some(message) => {
                    tally.record(seq_of(&message.payload));
                }
                None => break,
            },
        }
    }
    result(&tally.outcome())
}

/// Where nats-server is: `explicit`, else `nats-server` on `PATH`, else Debian's
/// `/usr/sbin/nats-server`.
pub(crate) fn locate_server(explicit: Option<&PathBuf>) -> Result<PathBuf, String> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.clone())
        } else {
            Err(format!("--nats-server {}: no such file", path.display()))
        };
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("nats-server"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([
            PathBuf::from("/usr/sbin/nats-server"),
            PathBuf::from("/usr/bin/nats-server"),
        ])
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "nats-server not found: install it (Debian: `apt-get install nats-server`) or pass \
             --nats-server PATH (or run only the netsvc side with --side netsvc)"
                .to_owned()
        })
}

/// `nats-server --version`, waited for at most 5 s.
pub(crate) fn server_version(binary: &Path) -> String {
    let binary = binary.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(Command::new(binary).arg("--version").output());
    });
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Ok(out)) => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ => "nats-server (version unknown)".to_owned(),
    }
}

/// Starts nats-server on 127.0.0.1 with a free port; returns it and its client URL.
pub(crate) fn start_server(binary: &Path) -> Result<(Proc, String), String> {
    let port = procs::free_port()?;
    let mut command = Command::new(binary);
    command.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
    let server = Proc::server("nats-server", command)?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    procs::wait_listening(addr, SETUP).map_err(|e| format!("nats-server did not start: {e}"))?;
    Ok((server, format!("nats://127.0.0.1:{port}")))
}
