//! What every role process shares (the processes of `compare`, `soak` and `gateway`, started
//! by their drivers as the hidden `role`, `soak-role` and `gateway-role` subcommands): their
//! side of the line protocol of `procs.rs` (they run through [`main`], print `READY` with
//! [`ready`] and `RESULT <json>` with [`result`], wait for a `GO` line with [`go`], and exit
//! when their stdin closes), the one
//! runtime of the plain tokio roles ([`on_tokio`]), and [`Blob`], the type netsvc sends their
//! bodies as.

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Longest a role waits for its connection and its peers, and a driver for a setup step.
pub(crate) const SETUP: Duration = Duration::from_secs(15);

/// Runs the body of a role process: exits when stdin closes, and turns a failure into an
/// `ERROR <message>` line and a non-zero exit status.
pub(crate) fn main(body: impl FnOnce() -> Result<(), String>) -> ExitCode {
    exit_when_stdin_closes();
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("ERROR {e}");
            ExitCode::FAILURE
        }
    }
}

/// Whether stdin has said `GO`.
static GONE: AtomicBool = AtomicBool::new(false);
/// Woken when stdin says `GO`.
static GO: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Reads stdin line by line: a `GO` line releases [`go`]; the process exits when stdin
/// reaches end of file (the driver is gone or done with us).
fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line.trim() == "GO" {
                GONE.store(true, Ordering::Release);
                GO.notify_waiters();
            }
        }
        std::process::exit(3);
    });
}

/// Waits until stdin has said `GO` (on any runtime: tokio's `Notify` needs none).
pub(crate) async fn go() {
    loop {
        let notified = GO.notified();
        if GONE.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }
}

/// Prints the `READY` line.
pub(crate) fn ready(detail: &str) {
    if detail.is_empty() {
        println!("READY");
    } else {
        println!("READY {detail}");
    }
}

/// Prints the `RESULT` line.
pub(crate) fn result<T: Serialize>(value: &T) -> Result<(), String> {
    let json =
        serde_json::to_string(value).map_err(|e| format!("cannot encode the result: {e}"))?;
    println!("RESULT {json}");
    Ok(())
}

/// Runs a role that is plain tokio (NATS's, the raw relay's, the gateway workload's HTTP
/// client) on a current-thread runtime: one thread, as netsvc's actix roles have.
pub(crate) fn on_tokio(
    role: impl std::future::Future<Output = Result<(), String>>,
) -> Result<(), String> {
    on_tokio_spinning(role, false)
}

/// [`on_tokio`], the runtime never sleeping if `spin`: a task yields over and over (the
/// CPU to other processes, then the runtime to its I/O, polled with a zero timeout while a
/// task is ready), as netsvc's `spin_when_idle` does within its window, though giving up the
/// CPU every turn where netsvc does every fourth (BENCHMARKS.md's relay figures were taken
/// so). The raw relay's processes do this in the `_spin` workloads, all the time: the limit
/// with spinning.
pub(crate) fn on_tokio_spinning(
    role: impl std::future::Future<Output = Result<(), String>>,
    spin: bool,
) -> Result<(), String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build a tokio runtime: {e}"))?
        .block_on(async {
            if spin {
                tokio::spawn(async {
                    loop {
                        std::thread::yield_now();
                        tokio::task::yield_now().await;
                    }
                });
            }
            role.await
        })
}

/// The netsvc payload type of every body of `payload.rs`: one byte string.
///
/// It is defined here, not in `payload.rs`, because netsvc sends a payload's type name
/// (`std::any::type_name`, the module path included) with every message: this path keeps
/// every message of `compare` and `soak` the size it has always been.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Blob(#[serde(with = "serde_bytes")] pub(crate) Vec<u8>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_type_keeps_its_name_on_the_wire() {
        assert_eq!(std::any::type_name::<Blob>(), "netsvc_bench::roles::Blob");
    }
}
