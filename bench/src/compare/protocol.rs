//! The processes of `compare`: the hidden `role` subcommand of the bench binary, which the
//! driver re-executes (`std::env::current_exe()`) once per process of a workload.
//!
//! ```text
//! netsvc-bench role exchange   --system netsvc --listen 127.0.0.1:0   (GO on stdin: RESULT of its drops)
//! netsvc-bench role relay      --system raw --listen 127.0.0.1:0
//! netsvc-bench role responder  --system netsvc|nats|raw --server ADDR
//! netsvc-bench role requester  --system netsvc|nats|raw --server ADDR --count N --in-flight K --warmup W [--go true]
//! netsvc-bench role subscriber --system netsvc|nats|raw --server ADDR --index I --count M --ack-every K
//! netsvc-bench role publisher  --system netsvc|nats|raw --server ADDR --count M --subscribers S \
//!                              --window W --ack-every K
//! netsvc-bench role burst-subscriber --system netsvc|nats --server ADDR --count M --subjects N \
//!                              --capacity C --spin-ns T [--conflate true]
//! netsvc-bench role burst-publisher  --system netsvc|nats --server ADDR --count M --subjects N
//! ```
//!
//! With `--subjects N` (netsvc and NATS), the publisher cycles over the N subjects of
//! `subjects.rs` and each subscriber process runs `--services S` subscriber services, process
//! `I`'s numbered `I × S ..`; `--subscribers` then counts services.
//!
//! With `--body-len L` (every system; the `reports_payload_*` workloads), every body is `L`
//! bytes (`payload::payload_of`) instead of 100, checked whole by the subscriber.
//!
//! With `--go true` (the 16 requesters of `request_reply_fanin`), a requester prints `READY` after
//! its warm-up and starts measuring only when the driver writes a line `GO` to its stdin, so
//! that every requester measures at the same time; its `RESULT` then also carries the wall
//! clock (Unix time) of its first and last measured round trip.
//!
//! `burst-publisher` and `burst-subscriber` are `burst_unpaced`: the publisher, once the
//! subscriber is subscribed (netsvc: a subscription notice; NATS: the driver starts it after
//! the subscriber's `READY`), publishes `--count` reports cycling over the `--subjects` subjects
//! `burst.s<j>` with no pacing at all, prints its `RESULT`, then publishes an end marker on
//! `end.x` every 20 ms until it is killed (a marker may be dropped like any report; the next
//! one gets through). The subscriber (an inbox, or a NATS subscription, bounded to
//! `--capacity`; with `--conflate true` the netsvc subscription is conflated) spends `--spin-ns` on
//! every report (a busy loop on `Instant`), checks every body whole and every subject's
//! reports in increasing order, and ends once it has seen a marker and no report for
//! [`QUIET`]; its `RESULT` counts what arrived (see [`BurstReceived`]).
//!
//! Each prints `READY` once it is connected and set up, and `RESULT <json>` with its figures
//! (see `procs.rs` for the line protocol and `roles.rs` for the role's side of it). Every role
//! exits when its stdin closes, so a role never outlives the driver. This file has what the
//! driver and the roles of both systems agree on: the options, the subjects and limits, and
//! the outcomes; `measure.rs` has the measuring every system shares, `netsvc.rs`, `nats.rs`
//! and `raw.rs` the implementations.
//!
//! The netsvc exchange server is the `exchange` role of this same binary (a node with
//! `Exchange::new(&node).listen(..)`, as `netsvc exchange` does), so `compare` needs nothing
//! but its own executable.

use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

/// The subject of the benchmark's reports.
pub(crate) const SUBJECT: &str = "bench.x";
/// The pattern subscribers monitor.
pub(crate) const PATTERN: &str = "bench.*";
/// Longest a role waits for its workload to finish (the driver usually gives up sooner).
pub(crate) const ROLE_LIMIT: Duration = Duration::from_secs(600);
/// How long a subscriber keeps counting after its last expected report, to catch extras.
pub(crate) const SETTLE: Duration = Duration::from_millis(200);
/// Prefix of the subjects of `burst_unpaced` (`burst.s<j>`), and the pattern of its subscriber.
pub(crate) const BURST_PATTERN: &str = "burst.*";
/// The subject of `burst_unpaced`'s end marker, and its subscriber's pattern for it.
pub(crate) const END_SUBJECT: &str = "end.x";
/// The pattern of the end marker.
pub(crate) const END_PATTERN: &str = "end.*";
/// How often the burst publisher publishes its end marker once the burst is out.
pub(crate) const MARKER_EVERY: Duration = Duration::from_millis(20);
/// How long the burst subscriber waits, after the end marker, with no report before it ends.
pub(crate) const QUIET: Duration = Duration::from_millis(300);

/// Which messaging system a role uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum System {
    /// netsvc over its exchange.
    Netsvc,
    /// NATS (async-nats client, nats-server).
    Nats,
    /// Length-prefixed frames over plain TCP through the `relay` role: the physical limit.
    Raw,
}

impl System {
    /// The name on the command line.
    pub(crate) fn arg(self) -> &'static str {
        match self {
            System::Netsvc => "netsvc",
            System::Nats => "nats",
            System::Raw => "raw",
        }
    }
}

/// What a role process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RoleKind {
    /// The netsvc exchange server (NATS uses nats-server instead).
    Exchange,
    /// The raw side's frame relay between its first two connections.
    Relay,
    /// Answers requests by echoing their payload.
    Responder,
    /// Makes requests and measures them.
    Requester,
    /// Publishes reports, paced by its subscribers' acknowledgements.
    Publisher,
    /// Counts reports and acknowledges them every `--ack-every`.
    Subscriber,
    /// Publishes `--count` reports unpaced, then an end marker every [`MARKER_EVERY`].
    BurstPublisher,
    /// Receives a burst slowly (`--spin-ns` per report) and counts what arrives.
    BurstSubscriber,
}

/// Options of the hidden `role` subcommand.
#[derive(Debug, Args)]
pub(crate) struct RoleArgs {
    /// What this process does.
    #[arg(value_enum)]
    pub(crate) kind: RoleKind,
    /// netsvc, NATS or the raw TCP relay.
    #[arg(long, value_enum)]
    pub(crate) system: System,
    /// The exchange server or nats-server to connect to (HOST:PORT; nats://HOST:PORT for NATS).
    #[arg(long, default_value = "")]
    pub(crate) server: String,
    /// Where the exchange server (or the relay) listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub(crate) listen: String,
    /// A directory with `ca.pem`, `server.pem` and `server.key`: every link is TLS.
    #[arg(long, value_name = "DIR")]
    pub(crate) tls_dir: Option<std::path::PathBuf>,
    /// Requests to make (requester) or reports to publish / receive (publisher, subscriber).
    #[arg(long, default_value_t = 1000)]
    pub(crate) count: u64,
    /// Requests outstanding at once (requester).
    #[arg(long, default_value_t = 1)]
    pub(crate) in_flight: usize,
    /// Unmeasured sequential requests before measuring (requester).
    #[arg(long, default_value_t = 1000)]
    pub(crate) warmup: u64,
    /// This subscriber's number, 0-based (subscriber).
    #[arg(long, default_value_t = 0)]
    pub(crate) index: u32,
    /// Subscribers to wait for and be paced by (publisher).
    #[arg(long, default_value_t = 1)]
    pub(crate) subscribers: usize,
    /// Most reports published ahead of the slowest subscriber's acknowledgement (publisher).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) window: u64,
    /// A subscriber acknowledges every this many reports, and at the end.
    #[arg(long, default_value_t = 1000)]
    pub(crate) ack_every: u64,
    /// Subjects the publisher cycles over, as `subjects.rs` lays them out (a multiple of its
    /// groups); 0 for the one subject `bench.x`.
    #[arg(long, default_value_t = 0)]
    pub(crate) subjects: u64,
    /// Subscriber services in this subscriber process (with `--subjects`).
    #[arg(long, default_value_t = 1)]
    pub(crate) services: u64,
    /// Bytes of every body (at least 8).
    #[arg(long, default_value_t = crate::payload::PAYLOAD_LEN)]
    pub(crate) body_len: usize,
    /// Print `READY` after the warm-up and measure once stdin says `GO` (requester).
    #[arg(long, action = clap::ArgAction::Set, default_value_t = false)]
    pub(crate) go: bool,
    /// Time spent on every report, busy (burst subscriber).
    #[arg(long, default_value_t = 0)]
    pub(crate) spin_ns: u64,
    /// Most reports waiting for the subscriber: its netsvc inbox capacity, or its NATS
    /// subscription's `subscription_capacity` (burst subscriber).
    #[arg(long, default_value_t = 65_536)]
    pub(crate) capacity: usize,
    /// Conflate the subscription (netsvc burst subscriber).
    #[arg(long, action = clap::ArgAction::Set, default_value_t = false)]
    pub(crate) conflate: bool,
    /// Spin when idle instead of sleeping (the `_spin` workloads): netsvc's
    /// `spin_when_idle(SPIN_WINDOW)`; the raw relay's processes spin all the time.
    #[arg(long, action = clap::ArgAction::Set, default_value_t = false)]
    pub(crate) spin: bool,
}

/// How long a netsvc process of a `_spin` workload spins after each read or write.
pub(crate) const SPIN_WINDOW: std::time::Duration = std::time::Duration::from_micros(50);

impl RoleArgs {
    /// The subjects the publisher publishes on, report `r` on the `r % len`-th.
    pub(crate) fn subjects(&self) -> Vec<String> {
        if self.subjects == 0 {
            vec![SUBJECT.to_owned()]
        } else {
            super::subjects::subjects(self.subjects)
        }
    }

    /// The numbers of this subscriber process's services (with `--subjects`).
    pub(crate) fn services(&self) -> std::ops::Range<u64> {
        let first = u64::from(self.index) * self.services;
        first..first + self.services
    }
}

/// What a requester measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RequestOutcome {
    /// Round trips measured.
    pub(crate) ops: u64,
    /// Wall time of the measured round trips.
    pub(crate) elapsed_ns: u64,
    /// Median round-trip latency.
    pub(crate) p50_ns: u64,
    /// 99th percentile round-trip latency.
    pub(crate) p99_ns: u64,
    /// Highest round-trip latency.
    pub(crate) max_ns: u64,
    /// Unix time, in ns, when measuring started (the wall clock, comparable across the
    /// processes of one machine).
    #[serde(default)]
    pub(crate) start_unix_ns: u64,
    /// Unix time, in ns, when the last measured round trip ended.
    #[serde(default)]
    pub(crate) end_unix_ns: u64,
}

/// What a publisher measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PublishOutcome {
    /// Deliveries: reports published × subscribers.
    pub(crate) ops: u64,
    /// From the first report published to the last subscriber's final acknowledgement.
    pub(crate) elapsed_ns: u64,
}

impl PublishOutcome {
    /// The outcome of publishing every report of `args` in `elapsed`.
    pub(crate) fn of(args: &RoleArgs, elapsed: Duration) -> Self {
        let ops = if args.subjects == 0 {
            args.count * args.subscribers as u64
        } else {
            super::subjects::deliveries(args.count, args.subscribers as u64)
        };
        PublishOutcome {
            ops,
            elapsed_ns: elapsed.as_nanos() as u64,
        }
    }
}

/// What a subscriber counted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SubscribeOutcome {
    /// Reports received (including any during the settle time after the last expected one).
    pub(crate) received: u64,
    /// Reports whose sequence number was not the next expected one (loss, duplication,
    /// reordering or a wrong payload).
    pub(crate) out_of_order: u64,
}

/// What the netsvc exchange server's links did, printed as its `RESULT` when the driver
/// writes `GO` to it (`burst_unpaced`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ServerStats {
    /// Report frames written to its links.
    pub(crate) reports_sent: u64,
    /// Reports its links dropped at their outbound buffers (`ExchangeStats::reports_dropped`).
    pub(crate) reports_dropped: u64,
}

/// What a burst publisher did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BurstPublished {
    /// Reports published (every one handed to the client or the node without error).
    pub(crate) published: u64,
    /// Unix time, in ns, of the first report published.
    pub(crate) start_unix_ns: u64,
    /// Unix time, in ns, once the last report was published.
    pub(crate) end_unix_ns: u64,
    /// netsvc: reports the publisher's own link dropped at its outbound buffer (the
    /// exchange's `stats().reports_dropped`); NATS: none counted.
    pub(crate) dropped_at_publisher: Option<u64>,
}

/// What a burst subscriber received.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct BurstReceived {
    /// Reports of the burst handled.
    pub(crate) delivered: u64,
    /// The sum of `Report::conflated()` over them: reports replaced unseen (netsvc
    /// conflation; 0 elsewhere).
    pub(crate) conflated: u64,
    /// Reports with a wrong body, on a wrong subject, or not after their subject's last one
    /// (a duplicate or a reordering): a failure, whatever the policy.
    pub(crate) bad: u64,
    /// Subjects whose last report (the highest sequence number published on it) arrived.
    pub(crate) subjects_with_last_value: u64,
    /// Highest resident set size of the subscriber process (`VmHWM`), in KiB.
    pub(crate) peak_rss_kib: u64,
    /// Unix time, in ns, when the last report of the burst was handled.
    pub(crate) last_unix_ns: u64,
}

/// The wall clock as Unix time in ns.
pub(crate) fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
