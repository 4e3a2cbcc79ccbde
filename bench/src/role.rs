//! The role-process side of the line protocol of `procs.rs`: the hidden `role` and
//! `soak-role` subcommands run through [`main`], print `READY` with [`ready`] and
//! `RESULT <json>` with [`result`], and exit when their stdin closes.

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

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

/// Exits the process when stdin reaches end of file (the driver is gone or done with us).
fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(3);
    });
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
