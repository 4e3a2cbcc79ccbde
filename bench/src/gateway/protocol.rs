//! What the driver of `gateway` and its processes agree on: the hidden `gateway-role`
//! subcommand, the call every client makes, and what a client measured.
//!
//! ```text
//! netsvc-bench role exchange      --system netsvc --listen 127.0.0.1:0   # compare's hub
//! netsvc-bench gateway-role calculator --server HUB
//! netsvc-bench gateway-role gateway    --server HUB --listen 127.0.0.1:0
//! netsvc-bench gateway-role bare       --listen 127.0.0.1:0
//! netsvc-bench gateway-role client     --target ADDR --clients K --calls N --warmup W
//! ```
//!
//! The servers print `READY <addr>` (the calculator a bare `READY`) once they serve; the
//! client prints `RESULT <json>` (a [`CallOutcome`]). See `procs.rs` for the line protocol;
//! every role exits when its stdin closes.

use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

/// The path every client posts to, on both sides.
pub(crate) const PATH: &str = "/call/calculator/multiply";
/// The request body: the arguments of `multiply`, by position.
pub(crate) const BODY: &str = "[6,7]";
/// The response body expected of both sides, byte for byte: what the gateway's
/// `HttpResponse::Ok().json(json!({"result": 42}))` writes (serde_json's compact form).
pub(crate) const EXPECTED: &str = r#"{"result":42}"#;

/// Longest a client waits for its measured calls (the driver's `--timeout` usually ends a
/// stuck run sooner).
pub(crate) const CALL_LIMIT: Duration = Duration::from_secs(600);

/// What a `gateway-role` process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GatewayRole {
    /// A node with a `calculator` service (`multiply(a, b)`), joined to the hub at
    /// `--server`; without `--server`, listening on `--listen` as an exchange of its own
    /// (prints `READY <addr>`).
    Calculator,
    /// A node joined to the hub, serving `netsvc-gateway` with its default configuration.
    Gateway,
    /// A bare actix-web server answering the same request with the same body.
    Bare,
    /// `--clients` keep-alive HTTP/1.1 connections making the calls and measuring them.
    Client,
}

/// Options of the hidden `gateway-role` subcommand.
#[derive(Debug, Args)]
pub(crate) struct GatewayRoleArgs {
    /// What this process does.
    #[arg(value_enum)]
    pub(crate) role: GatewayRole,
    /// The exchange to join (calculator: the hub; gateway: the hub or the calculator's).
    #[arg(long, default_value = "")]
    pub(crate) server: String,
    /// Where to serve HTTP (gateway, bare), or the calculator's exchange without `--server`.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub(crate) listen: String,
    /// The HTTP server to call (client).
    #[arg(long, default_value = "")]
    pub(crate) target: String,
    /// Concurrent keep-alive connections, one call outstanding on each (client).
    #[arg(long, default_value_t = 16)]
    pub(crate) clients: usize,
    /// Measured calls (client).
    #[arg(long, default_value_t = 1000)]
    pub(crate) calls: u64,
    /// Unmeasured calls first, on the same connections (client).
    #[arg(long, default_value_t = 100)]
    pub(crate) warmup: u64,
}

/// What a client measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CallOutcome {
    /// Measured calls answered (well or not).
    pub(crate) calls: u64,
    /// Calls, warm-up included, whose answer was not `200` with [`EXPECTED`].
    pub(crate) errors: u64,
    /// The first such answer, for the error message.
    pub(crate) first_error: Option<String>,
    /// Wall time of the measured calls.
    pub(crate) elapsed_ns: u64,
    /// Median call latency (request written to response read).
    pub(crate) p50_ns: u64,
    /// 99th percentile call latency.
    pub(crate) p99_ns: u64,
    /// Longest call.
    pub(crate) max_ns: u64,
    /// The client process's own CPU time (user + system), start-up included.
    pub(crate) client_cpu_us: u64,
}
