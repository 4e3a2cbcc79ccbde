//! The processes of `compare`: the hidden `role` subcommand of the bench binary, which the
//! driver re-executes (`std::env::current_exe()`) once per process of a workload.
//!
//! ```text
//! netsvc-bench role exchange   --system netsvc --listen 127.0.0.1:0
//! netsvc-bench role responder  --system netsvc|nats --server ADDR
//! netsvc-bench role requester  --system netsvc|nats --server ADDR --count N --in-flight K --warmup W
//! netsvc-bench role subscriber --system netsvc|nats --server ADDR --index I --count M --ack-every K
//! netsvc-bench role publisher  --system netsvc|nats --server ADDR --count M --subscribers S \
//!                              --window W --ack-every K
//! ```
//!
//! Each prints `READY` once it is connected and set up, and `RESULT <json>` with its figures
//! (see `procs.rs` for the line protocol). Every role exits when its stdin closes, so a role
//! never outlives the driver. This file has the shared pieces (counting, latency figures)
//! and the netsvc implementation; `nats.rs` has the NATS one.
//!
//! The netsvc exchange server is the `exchange` role of this same binary (a node with
//! `Exchange::new(&node).listen(..)`, as `netsvc exchange` does), so `compare` needs nothing
//! but its own executable.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use futures_util::stream::{FuturesUnordered, StreamExt};
use netsvc::prelude::*;
use netsvc::Exchange;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::mesh::{find, join, probe};
use crate::pace::Pace;
use crate::payload::{payload, seq_of, Blob};
use crate::role::{ready, result};

/// The subject of the benchmark's reports.
pub(crate) const SUBJECT: &str = "bench.x";
/// The pattern subscribers monitor.
pub(crate) const PATTERN: &str = "bench.*";
/// Name of the netsvc responder service.
const RESPONDER: &str = "bench-responder";
/// Name of the netsvc publisher service.
const PUBLISHER: &str = "bench-publisher";
/// Longest a role waits for its workload to finish (the driver usually gives up sooner).
pub(crate) const ROLE_LIMIT: Duration = Duration::from_secs(600);
/// How long a subscriber keeps counting after its last expected report, to catch extras.
pub(crate) const SETTLE: Duration = Duration::from_millis(200);

/// Which messaging system a role uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum System {
    /// netsvc over its exchange.
    Netsvc,
    /// NATS (async-nats client, nats-server).
    Nats,
}

impl System {
    /// The name on the command line.
    pub(crate) fn arg(self) -> &'static str {
        match self {
            System::Netsvc => "netsvc",
            System::Nats => "nats",
        }
    }
}

/// What a role process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RoleKind {
    /// The netsvc exchange server (NATS uses nats-server instead).
    Exchange,
    /// Answers requests by echoing their payload.
    Responder,
    /// Makes requests and measures them.
    Requester,
    /// Publishes reports, paced by its subscribers' acknowledgements.
    Publisher,
    /// Counts reports and acknowledges them every `--ack-every`.
    Subscriber,
}

/// Options of the hidden `role` subcommand.
#[derive(Debug, Args)]
pub(crate) struct RoleArgs {
    /// What this process does.
    #[arg(value_enum)]
    kind: RoleKind,
    /// netsvc or NATS.
    #[arg(long, value_enum)]
    system: System,
    /// The exchange server or nats-server to connect to (HOST:PORT; nats://HOST:PORT for NATS).
    #[arg(long, default_value = "")]
    pub(crate) server: String,
    /// Where the exchange server listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
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
}

impl RoleArgs {
    /// What this process does.
    pub(crate) fn kind(&self) -> RoleKind {
        self.kind
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
}

/// What a publisher measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PublishOutcome {
    /// Deliveries: reports published × subscribers.
    pub(crate) ops: u64,
    /// From the first report published to the last subscriber's final acknowledgement.
    pub(crate) elapsed_ns: u64,
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

/// A subscriber's counting, identical for netsvc and NATS.
#[derive(Debug)]
pub(crate) struct Tally {
    /// Reports expected.
    total: u64,
    /// Acknowledge every this many.
    ack_every: u64,
    /// Reports received.
    pub(crate) received: u64,
    /// Reports out of sequence.
    pub(crate) out_of_order: u64,
}

impl Tally {
    /// A tally expecting `total` reports, acknowledging every `ack_every`.
    pub(crate) fn new(total: u64, ack_every: u64) -> Self {
        Tally {
            total,
            ack_every: ack_every.max(1),
            received: 0,
            out_of_order: 0,
        }
    }

    /// Counts a report with sequence number `seq`; returns the count to acknowledge, if this
    /// report calls for an acknowledgement.
    pub(crate) fn record(&mut self, seq: Option<u64>) -> Option<u64> {
        if seq != Some(self.received) {
            self.out_of_order += 1;
        }
        self.received += 1;
        (self.received.is_multiple_of(self.ack_every) || self.received == self.total)
            .then_some(self.received)
    }

    /// Whether every expected report has arrived.
    pub(crate) fn complete(&self) -> bool {
        self.received >= self.total
    }

    /// The final figures.
    pub(crate) fn outcome(&self) -> SubscribeOutcome {
        SubscribeOutcome {
            received: self.received,
            out_of_order: self.out_of_order,
        }
    }
}

/// Runs `count` requests, `in_flight` at a time, and measures them. `call(i)` makes request
/// `i` and resolves to the sequence number echoed back. The same driver for both systems:
/// `in_flight` looping futures polled by one `FuturesUnordered` on the calling task.
pub(crate) async fn drive_requests<F, Fut>(
    count: u64,
    in_flight: usize,
    call: F,
) -> Result<RequestOutcome, String>
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Result<u64, String>>,
{
    let next = Cell::new(0u64);
    let latencies = RefCell::new(Vec::with_capacity(count as usize));
    let worker = || async {
        loop {
            let i = next.get();
            if i >= count {
                return Ok::<(), String>(());
            }
            next.set(i + 1);
            let sent = Instant::now();
            let echoed = call(i).await?;
            let ns = sent.elapsed().as_nanos() as u64;
            if echoed != i {
                return Err(format!("request {i} was answered with {echoed}"));
            }
            latencies.borrow_mut().push(ns);
        }
    };
    let start = Instant::now();
    let mut workers: FuturesUnordered<_> = (0..in_flight.max(1)).map(|_| worker()).collect();
    while let Some(done) = workers.next().await {
        done?;
    }
    drop(workers);
    let elapsed = start.elapsed();
    let mut latencies = latencies.into_inner();
    latencies.sort_unstable();
    Ok(RequestOutcome {
        ops: latencies.len() as u64,
        elapsed_ns: elapsed.as_nanos() as u64,
        p50_ns: percentile(&latencies, 0.50),
        p99_ns: percentile(&latencies, 0.99),
    })
}

/// The `p` quantile (0..=1) of sorted values, nearest rank; 0 when empty.
pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs one role process.
pub(crate) fn run(args: &RoleArgs) -> ExitCode {
    crate::role::main(|| match args.system {
        System::Netsvc => actix::System::new().block_on(netsvc_role(args)),
        System::Nats => crate::nats::role(args),
    })
}

/// The netsvc roles.
async fn netsvc_role(args: &RoleArgs) -> Result<(), String> {
    match args.kind {
        RoleKind::Exchange => exchange_server(args).await,
        RoleKind::Responder => responder(args).await,
        RoleKind::Requester => requester(args).await,
        RoleKind::Publisher => publisher(args).await,
        RoleKind::Subscriber => subscriber(args).await,
    }
}

/// The exchange server: listens and relays until killed.
async fn exchange_server(args: &RoleArgs) -> Result<(), String> {
    let node = Node::new("bench-exchange");
    let exchange = Exchange::new(&node);
    let addr = exchange
        .listen(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    ready(&addr.to_string());
    std::future::pending::<()>().await;
    Ok(())
}

/// The responder: a `bench-responder` service echoing its argument, until killed.
async fn responder(args: &RoleArgs) -> Result<(), String> {
    let node = Node::new("bench-responder");
    let _exchange = join(&node, &args.server).await?;
    node.spawn(services::Responder);
    ready("");
    std::future::pending::<()>().await;
    Ok(())
}

/// The requester: finds `bench-responder`, warms up, then measures through the typed client.
async fn requester(args: &RoleArgs) -> Result<(), String> {
    let node = Node::new("bench-requester");
    let _exchange = join(&node, &args.server).await?;
    let responder = find(&node, RESPONDER).await?;
    let prober = services::ResponderClient::new(
        node.endpoint(&responder)
            .with_timeout(Duration::from_secs(1)),
    );
    probe("the responder", || prober.echo(Blob(payload(0)))).await?;
    let client = services::ResponderClient::new(node.endpoint(&responder));
    let call = |i: u64| {
        let call = client.echo(Blob(payload(i)));
        async move {
            let blob = call.await.map_err(|f| format!("request {i} failed: {f}"))?;
            seq_of(&blob.0)
                .ok_or_else(|| format!("request {i}: response of {} bytes", blob.0.len()))
        }
    };
    drive_requests(args.warmup, 1, &call).await?;
    let outcome = tokio::time::timeout(
        ROLE_LIMIT,
        drive_requests(args.count, args.in_flight, &call),
    )
    .await
    .map_err(|_| format!("requests not done within {ROLE_LIMIT:?}"))??;
    result(&outcome)
}

/// The publisher: waits for `--subscribers` subscriptions, then publishes `--count` reports
/// paced by acknowledgements (requests to its `ack` method).
async fn publisher(args: &RoleArgs) -> Result<(), String> {
    let node = Node::new("bench-publisher");
    let _exchange = join(&node, &args.server).await?;
    let (done, finished) = oneshot::channel();
    node.spawn(services::Publisher {
        pace: Pace::new(args.count, args.window, args.subscribers),
        subscribers: args.subscribers,
        subscribed: 0,
        start: None,
        done: Some(done),
    });
    ready("");
    let (elapsed, pace) = tokio::time::timeout(ROLE_LIMIT, finished)
        .await
        .map_err(|_| format!("publishing not done within {ROLE_LIMIT:?}"))?
        .map_err(|_| "the publisher service stopped".to_owned())?;
    if !pace.all_acked() {
        return Err(format!("not every report acknowledged: {:?}", pace.acked()));
    }
    result(&PublishOutcome {
        ops: args.count * args.subscribers as u64,
        elapsed_ns: elapsed.as_nanos() as u64,
    })
}

/// A subscriber: monitors `bench.*` on `bench-publisher`, counts, acknowledges.
async fn subscriber(args: &RoleArgs) -> Result<(), String> {
    let node = Node::new(format!("bench-subscriber-{}", args.index));
    let _exchange = join(&node, &args.server).await?;
    let (done, finished) = oneshot::channel();
    node.spawn(services::Subscriber {
        index: args.index,
        tally: Tally::new(args.count, args.ack_every),
        client: None,
        done: Some(done),
        settling: false,
    });
    ready("");
    let outcome = tokio::time::timeout(ROLE_LIMIT, finished)
        .await
        .map_err(|_| format!("reports not all received within {ROLE_LIMIT:?}"))?
        .map_err(|_| "the subscriber service stopped".to_owned())?;
    result(&outcome)
}

/// The netsvc services of the roles.
mod services {
    use std::time::{Duration, Instant};

    use netsvc::prelude::*;
    use tokio::sync::oneshot;

    use super::{SubscribeOutcome, Tally, PATTERN, PUBLISHER, SETTLE, SUBJECT};
    use crate::pace::Pace;
    use crate::payload::{payload, seq_of, Blob};

    /// Echoes requests.
    #[derive(netsvc::Service)]
    #[service(name = "bench-responder")]
    pub(crate) struct Responder;

    impl Service for Responder {}

    #[netsvc::methods]
    impl Responder {
        /// Returns its argument.
        fn echo(&mut self, blob: Blob) -> Blob {
            blob
        }
    }

    /// Publishes `bench.x` reports, paced by its subscribers' acknowledgements.
    #[derive(netsvc::Service)]
    #[service(name = "bench-publisher")]
    pub(crate) struct Publisher {
        /// Pacing.
        pub(crate) pace: Pace,
        /// Subscriptions to wait for.
        pub(crate) subscribers: usize,
        /// Subscriptions so far.
        pub(crate) subscribed: usize,
        /// When publishing started.
        pub(crate) start: Option<Instant>,
        /// Told the elapsed time (and the pacing state) once every report is acknowledged.
        pub(crate) done: Option<oneshot::Sender<(Duration, Pace)>>,
    }

    impl Service for Publisher {
        fn subscription(&mut self, notice: SubscriptionNotice, ctx: &mut ServiceContext<Self>) {
            if notice.status == SubscriptionStatus::Requested {
                self.subscribed += 1;
                if self.subscribed == self.subscribers && self.start.is_none() {
                    self.start = Some(Instant::now());
                    self.pump(ctx);
                }
            }
        }
    }

    #[netsvc::methods]
    impl Publisher {
        /// Subscriber `index` has received `count` reports.
        fn ack(&mut self, ctx: &mut ServiceContext<Self>, index: u32, count: u64) {
            self.pace.ack(index as usize, count);
            self.pump(ctx);
        }
    }

    impl Publisher {
        /// Publishes what the window allows; reports the end once everything is acknowledged.
        fn pump(&mut self, ctx: &mut ServiceContext<Self>) {
            let Some(start) = self.start else { return };
            for seq in self.pace.sendable() {
                ctx.publish_report(SUBJECT, Blob(payload(seq)), Lifetime::None);
            }
            if self.pace.all_acked() {
                if let Some(done) = self.done.take() {
                    let pace = std::mem::replace(&mut self.pace, Pace::new(0, 1, 0));
                    let _ = done.send((start.elapsed(), pace));
                }
            }
        }
    }

    /// Counts `bench.*` reports from `bench-publisher` and acknowledges them.
    #[derive(netsvc::Service)]
    pub(crate) struct Subscriber {
        /// This subscriber's number.
        pub(crate) index: u32,
        /// Counting.
        pub(crate) tally: Tally,
        /// The publisher's client, made from the first report's publisher binding.
        pub(crate) client: Option<PublisherClient>,
        /// Told the figures after the settle time that follows the last expected report.
        pub(crate) done: Option<oneshot::Sender<SubscribeOutcome>>,
        /// Whether the settle time has started.
        pub(crate) settling: bool,
    }

    impl Service for Subscriber {
        fn started(&mut self, ctx: &mut ServiceContext<Self>) {
            ctx.monitor_reports(PUBLISHER, PATTERN);
        }

        fn report(&mut self, report: Report, ctx: &mut ServiceContext<Self>) {
            let seq = report.decode::<Blob>().ok().and_then(|b| seq_of(&b.0));
            if let Some(count) = self.tally.record(seq) {
                let client = self
                    .client
                    .get_or_insert_with(|| PublisherClient::new(ctx.endpoint(report.publisher())));
                let call = client.ack(self.index, count);
                actix::spawn(async move {
                    let _ = call.await;
                });
            }
            if self.tally.complete() && !self.settling {
                self.settling = true;
                ctx.run_later(SETTLE, |this: &mut Self, _| {
                    if let Some(done) = this.done.take() {
                        let _ = done.send(this.tally.outcome());
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_acks_and_checks_sequence() {
        let mut tally = Tally::new(5, 2);
        assert_eq!(tally.record(Some(0)), None);
        assert_eq!(tally.record(Some(1)), Some(2));
        assert_eq!(tally.record(Some(3)), None);
        assert_eq!(tally.out_of_order, 1);
        assert_eq!(tally.record(Some(3)), Some(4));
        assert!(!tally.complete());
        assert_eq!(tally.record(Some(4)), Some(5));
        assert!(tally.complete());
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&[], 0.5), 0);
        assert_eq!(percentile(&[7], 0.99), 7);
    }
}
