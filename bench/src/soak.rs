//! `netsvc-bench soak`: a long mixed run through one exchange hub, counting everything.
//!
//! Three processes of this binary (the hidden `soak-role` subcommand), all on 127.0.0.1:
//!
//! * **hub** — a node whose exchange listens on `127.0.0.1:0` (what `netsvc exchange` does),
//!   plus a `soak-hub` service whose `stats` method returns the hub's traffic counters (so the
//!   run can check that the hub dropped no report);
//! * **producer** — a `soak-server` service (`work(seq, body)`: checks the body, answers it
//!   with `answer(seq)` in place of `seq`) and a `soak-publisher` service publishing
//!   `soak.seq` reports, body `seq`, paced by its subscriber's acknowledgements;
//! * **consumer** — a subscriber of `soak.*` on `soak-publisher` that checks every report's
//!   sequence number and body, and a client making the requests to `soak-server`,
//!   `--in-flight` at a time, checking every answer.
//!
//! **Zero loss by construction.** A link drops reports once its 32 MiB outbound buffer is
//! full (the slow-consumer policy), so the publisher is paced end to end: the subscriber
//! acknowledges what it has received (a request to the publisher's `ack` method) every
//! `--ack-every` reports, and the publisher stays at most `--window` reports ahead of the
//! last acknowledgement. About `--window` × 200 bytes are ever in flight, far below any
//! buffer limit, so a lost report is a defect, not bad luck. Every process's
//! `reports_dropped` counter is checked too.
//!
//! **Lockstep.** The consumer keeps the two streams within a few percent of each other: it
//! holds back requests that would run ahead of the reports, and acknowledgements that would
//! let the reports run ahead of the requests. Both kinds of traffic flow for the whole run,
//! and "10 % of progress" means 10 % of both.
//!
//! **Memory.** The driver samples every process's resident set (`VmRSS` in
//! `/proc/PID/status`) when the run starts and at every tenth of progress (the consumer prints
//! `PROGRESS k` once both streams have reached k/10). The sample at 10 % is the post-warm-up
//! figure; the run fails if any process ends above `--rss-limit` (1.1) times it.
//!
//! **Verdict.** The run fails (non-zero exit, a message per problem) if a report is lost,
//! duplicated, reordered or corrupted, a request fails or is answered wrongly, a process
//! drops a report, or a process's memory grows past the limit. Every wait is bounded: a run
//! that makes no progress for `--stall` seconds (60) fails with the consumer's counts and
//! every process's count of dropped reports; the processes are killed when the driver ends.
//!
//! ```text
//! cargo run --release -p netsvc-bench -- soak            # 1M requests + 10M reports
//! cargo run --release -p netsvc-bench -- soak --quick    # 20k requests + 200k reports
//! cargo run --release -p netsvc-bench -- soak --json     # one JSON line
//! ```

use std::cell::{Cell, RefCell};
use std::process::{Command, ExitCode};
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use futures_util::stream::{FuturesUnordered, StreamExt};
use netsvc::prelude::*;
use netsvc::{Exchange, ExchangeStats};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, Notify};

use crate::fmt::thousands;
use crate::mesh;
use crate::pace::Pace;
use crate::payload::{filled, payload, seq_of, Blob, PAYLOAD_LEN};
use crate::procs::Proc;
use crate::role::{self, SETUP};

/// The subject of the soak's reports.
const SUBJECT: &str = "soak.seq";
/// The pattern the consumer monitors.
const PATTERN: &str = "soak.*";
/// Name of the publisher service.
const PUBLISHER: &str = "soak-publisher";
/// Name of the request server service.
const SERVER: &str = "soak-server";
/// Name of the hub's statistics service.
const HUB: &str = "soak-hub";
/// Longest a role process lives once set up (the driver gives up sooner on a stall).
const ROLE_LIMIT: Duration = Duration::from_secs(3600);
/// How long the consumer keeps counting after the last expected report, to catch extras.
const SETTLE: Duration = Duration::from_millis(200);
/// Share of the totals one stream may run ahead of the other (1/50 = 2 %).
const LOCKSTEP_SLACK: u64 = 50;

/// Options of `netsvc-bench soak`.
#[derive(Debug, Args)]
pub(crate) struct SoakArgs {
    /// Print one JSON object (one line) instead of a table.
    #[arg(long)]
    json: bool,
    /// Small counts (20,000 requests + 200,000 reports), for CI.
    #[arg(long)]
    quick: bool,
    /// Requests to make (default 1,000,000; 20,000 with --quick).
    #[arg(long)]
    requests: Option<u64>,
    /// Reports to publish (default 10,000,000; 200,000 with --quick).
    #[arg(long)]
    reports: Option<u64>,
    /// Requests outstanding at once.
    #[arg(long, default_value_t = 32)]
    in_flight: usize,
    /// Most reports the publisher is ahead of the last acknowledgement.
    #[arg(long, default_value_t = 10_000)]
    window: u64,
    /// The subscriber acknowledges every this many reports (and the last one).
    #[arg(long, default_value_t = 1000)]
    ack_every: u64,
    /// Largest end RSS allowed, as a multiple of the RSS at 10 % of progress.
    #[arg(long, default_value_t = 1.1)]
    rss_limit: f64,
    /// Longest time without progress, in seconds, before the run is failed.
    #[arg(long, default_value_t = 60)]
    stall: u64,
    /// Print every process started (name and pid) and every progress sample on stderr.
    #[arg(long)]
    verbose: bool,
}

/// Which soak process this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SoakRole {
    /// The exchange hub.
    Hub,
    /// The request server and the report publisher.
    Producer,
    /// The report subscriber and the requests' client.
    Consumer,
}

/// Options of the hidden `soak-role` subcommand (set by the driver).
#[derive(Debug, Args)]
pub(crate) struct SoakRoleArgs {
    /// What this process does.
    #[arg(value_enum)]
    role: SoakRole,
    /// The hub to connect to (producer, consumer).
    #[arg(long, default_value = "")]
    server: String,
    /// Where the hub listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Requests in the run.
    #[arg(long, default_value_t = 1000)]
    requests: u64,
    /// Reports in the run.
    #[arg(long, default_value_t = 1000)]
    reports: u64,
    /// Requests outstanding at once (consumer).
    #[arg(long, default_value_t = 32)]
    in_flight: usize,
    /// Most reports ahead of the last acknowledgement (producer).
    #[arg(long, default_value_t = 10_000)]
    window: u64,
    /// Acknowledge every this many reports (consumer).
    #[arg(long, default_value_t = 1000)]
    ack_every: u64,
    /// Longest one request may take, in seconds, before it counts as failed (consumer).
    #[arg(long, default_value_t = 30)]
    call_timeout: u64,
    /// Longest time without progress, in seconds, before the consumer fails (consumer).
    #[arg(long, default_value_t = 60)]
    stall: u64,
}

/// Traffic counters of one process's exchange (a serializable [`ExchangeStats`]).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Traffic {
    /// Frames handed to sockets.
    frames_sent: u64,
    /// Report frames handed to sockets.
    reports_sent: u64,
    /// Reports dropped because a peer's outbound buffer was full.
    reports_dropped: u64,
    /// Bytes written to sockets.
    bytes_written: u64,
}

impl From<ExchangeStats> for Traffic {
    fn from(s: ExchangeStats) -> Self {
        Traffic {
            frames_sent: s.frames_sent,
            reports_sent: s.reports_sent,
            reports_dropped: s.reports_dropped,
            bytes_written: s.bytes_written,
        }
    }
}

/// What the producer did.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ProducerOutcome {
    /// Reports published.
    published: u64,
    /// Reports acknowledged by the subscriber.
    acked: u64,
    /// Requests answered.
    served: u64,
    /// Requests refused because their body was not the one sent.
    bad_requests: u64,
    /// The producer's exchange counters.
    traffic: Traffic,
}

/// What the consumer counted.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ConsumerOutcome {
    /// Reports received (including any extras during the settle time).
    received: u64,
    /// Sequence numbers skipped over (reports never received where expected).
    lost: u64,
    /// Reports with a sequence number already passed (duplicated, late or reordered).
    late: u64,
    /// Reports whose body was not the one published.
    corrupt: u64,
    /// Requests answered correctly.
    answered: u64,
    /// Requests failed or answered wrongly (acknowledgements included).
    failed: u64,
    /// The first failure's message.
    first_failure: Option<String>,
    /// Median request latency, µs.
    p50_us: u64,
    /// 99th percentile request latency, µs.
    p99_us: u64,
    /// From the start of the workload to the last report and answer.
    elapsed_ns: u64,
    /// The consumer's exchange counters.
    traffic: Traffic,
    /// The hub's exchange counters, fetched at the end.
    hub: Traffic,
}

/// Runs one soak process.
pub(crate) fn run_role(args: &SoakRoleArgs) -> ExitCode {
    role::main(|| {
        actix::System::new().block_on(async {
            match args.role {
                SoakRole::Hub => hub(args).await,
                SoakRole::Producer => producer(args).await,
                SoakRole::Consumer => consumer(args).await,
            }
        })
    })
}

/// The hub: listens, serves its counters, relays until killed.
async fn hub(args: &SoakRoleArgs) -> Result<(), String> {
    let node = Node::new("soak-hub");
    let exchange = Exchange::new(&node);
    let addr = exchange
        .listen(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    node.spawn(services::Hub { exchange });
    role::ready(&addr.to_string());
    std::future::pending::<()>().await;
    Ok(())
}

/// The producer: serves requests and publishes reports until both are done, prints its
/// figures, then stays (its peers may still call) until killed.
async fn producer(args: &SoakRoleArgs) -> Result<(), String> {
    let node = Node::new("soak-producer");
    let exchange = mesh::join(&node, &args.server).await?;
    let served = Rc::new(Cell::new(0u64));
    let bad = Rc::new(Cell::new(0u64));
    node.spawn(services::Server {
        served: served.clone(),
        bad: bad.clone(),
        exchange: exchange.clone(),
    });
    let (done, finished) = oneshot::channel();
    node.spawn(services::Publisher {
        pace: Pace::new(args.reports, args.window, 1),
        started: false,
        done: Some(done),
    });
    role::ready("");
    let work = async {
        let pace = finished
            .await
            .map_err(|_| "the publisher service stopped".to_owned())?;
        while served.get() + bad.get() < args.requests {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok::<_, String>(pace)
    };
    let pace = tokio::time::timeout(ROLE_LIMIT, work)
        .await
        .map_err(|_| format!("not done within {ROLE_LIMIT:?}"))??;
    role::result(&ProducerOutcome {
        published: args.reports,
        acked: pace.acked()[0],
        served: served.get(),
        bad_requests: bad.get(),
        traffic: exchange.stats().into(),
    })?;
    std::future::pending::<()>().await;
    Ok(())
}

/// The consumer: subscribes, makes the requests, counts and checks everything, prints
/// `PROGRESS k` at every tenth and its figures at the end.
async fn consumer(args: &SoakRoleArgs) -> Result<(), String> {
    let node = Node::new("soak-consumer");
    let exchange = mesh::join(&node, &args.server).await?;
    let server = mesh::find(&node, SERVER).await?;
    let hub = mesh::find(&node, HUB).await?;
    let probe =
        services::ServerClient::new(node.endpoint(&server).with_timeout(Duration::from_secs(1)));
    mesh::probe(SERVER, || probe.ping()).await?;

    let shared = Rc::new(Shared {
        gate: RefCell::new(Gate::new(
            args.reports,
            args.requests,
            args.ack_every,
            args.in_flight,
        )),
        publisher: RefCell::new(None),
        wake: Notify::new(),
    });
    let start = Instant::now();
    node.spawn(services::Subscriber {
        shared: shared.clone(),
    });
    role::ready("");

    let call_timeout = Duration::from_secs(args.call_timeout.max(1));
    let client = services::ServerClient::new(node.endpoint(&server).with_timeout(call_timeout));
    let worker = || async {
        loop {
            let i = loop {
                let woken = shared.wake.notified();
                match shared.gate.borrow_mut().issue() {
                    Issue::Go(i) => break i,
                    Issue::Done => return,
                    Issue::Wait => {}
                }
                woken.await;
            };
            let sent = Instant::now();
            let outcome = match client.work(i, Blob(payload(i))).await {
                Ok(blob)
                    if blob.0.len() == PAYLOAD_LEN
                        && seq_of(&blob.0) == Some(answer(i))
                        && filled(&blob.0) =>
                {
                    Ok(())
                }
                Ok(blob) => Err(format!(
                    "request {i} answered wrongly ({} bytes, {:?})",
                    blob.0.len(),
                    seq_of(&blob.0)
                )),
                Err(f) => Err(format!("request {i} failed: {f}")),
            };
            let step = shared.gate.borrow_mut().answer(sent.elapsed(), outcome);
            shared.apply(step);
        }
    };
    let work = async {
        let mut workers: FuturesUnordered<_> =
            (0..args.in_flight.max(1)).map(|_| worker()).collect();
        while workers.next().await.is_some() {}
        drop(workers);
        while !shared.gate.borrow().complete() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    // A stalled run fails here, with the counts, before the driver gives up on it.
    let stall = Duration::from_secs(args.stall.max(1));
    let watchdog = async {
        let mut last = (shared.gate.borrow().position(), Instant::now());
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let gate = shared.gate.borrow();
            let now = gate.position();
            if now != last.0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() >= stall {
                return format!("no progress for {} s: {}", stall.as_secs(), gate.describe());
            }
        }
    };
    let stalled = tokio::select! {
        () = work => None,
        stalled = watchdog => Some(stalled),
        () = tokio::time::sleep(ROLE_LIMIT) => Some(format!("not done within {ROLE_LIMIT:?}")),
    };
    if let Some(message) = stalled {
        // The slow-consumer policy is the usual suspect: say what every process dropped.
        let dropped = |traffic: Result<Traffic, Failure>| {
            traffic.map_or_else(
                |f| format!("unknown ({f})"),
                |t| t.reports_dropped.to_string(),
            )
        };
        let quick = Duration::from_secs(1);
        let hub = services::HubClient::new(node.endpoint(&hub).with_timeout(quick))
            .stats()
            .await;
        let producer = services::ServerClient::new(node.endpoint(&server).with_timeout(quick))
            .traffic()
            .await;
        return Err(format!(
            "{message}; reports dropped by the slow-consumer policy: hub {}, producer {}, consumer {}",
            dropped(hub),
            dropped(producer),
            exchange.stats().reports_dropped
        ));
    }
    let elapsed = start.elapsed();
    tokio::time::sleep(SETTLE).await;

    let stats = services::HubClient::new(node.endpoint(&hub).with_timeout(Duration::from_secs(1)));
    let deadline = Instant::now() + SETUP;
    let hub_traffic = loop {
        match stats.stats().await {
            Ok(traffic) => break traffic,
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("{HUB} never answered: {e}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    let gate = shared.gate.borrow();
    role::result(&ConsumerOutcome {
        received: gate.received,
        lost: gate.lost,
        late: gate.late,
        corrupt: gate.corrupt,
        answered: gate.answered - gate.failed_answers,
        failed: gate.failed,
        first_failure: gate.first_failure.clone(),
        p50_us: gate.latency.quantile(0.50),
        p99_us: gate.latency.quantile(0.99),
        elapsed_ns: elapsed.as_nanos() as u64,
        traffic: exchange.stats().into(),
        hub: hub_traffic,
    })
}

/// The answer to request `seq` (what the server puts in place of the sequence number).
fn answer(seq: u64) -> u64 {
    seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed
}

/// The consumer's state, shared by its subscriber service and its request workers (one
/// thread: the actix system's).
struct Shared {
    /// The counting and the lockstep.
    gate: RefCell<Gate>,
    /// The publisher's client, made from the first report's publisher.
    publisher: RefCell<Option<services::PublisherClient>>,
    /// Wakes request workers waiting for the reports to catch up.
    wake: Notify,
}

impl Shared {
    /// Acts on what the gate decided: wakes waiting workers, sends an acknowledgement,
    /// prints progress.
    fn apply(self: &Rc<Self>, step: Step) {
        if step.wake_requests {
            self.wake.notify_waiters();
        }
        if let Some(count) = step.ack {
            if let Some(client) = self.publisher.borrow().as_ref() {
                let call = client.ack(count);
                let shared = self.clone();
                actix::spawn(async move {
                    if let Err(f) = call.await {
                        shared
                            .gate
                            .borrow_mut()
                            .fail(format!("acknowledgement of {count} reports failed: {f}"));
                    }
                });
            }
        }
        for tenth in step.tenths {
            println!("PROGRESS {tenth}");
        }
    }
}

/// What the next request worker may do.
#[derive(Debug, PartialEq, Eq)]
enum Issue {
    /// Make request `i`.
    Go(u64),
    /// Wait: the requests are ahead of the reports.
    Wait,
    /// Every request has been made.
    Done,
}

/// What follows from one report or answer.
#[derive(Debug, Default, PartialEq, Eq)]
struct Step {
    /// Wake the waiting request workers.
    wake_requests: bool,
    /// Acknowledge this many reports to the publisher.
    ack: Option<u64>,
    /// Tenths of progress newly reached.
    tenths: std::ops::Range<u32>,
}

/// The consumer's counting and lockstep (pure logic).
#[derive(Debug)]
struct Gate {
    /// Reports expected.
    reports: u64,
    /// Requests to make.
    requests: u64,
    /// How far (in reports) the reports may run ahead of the requests' progress.
    slack_reports: u64,
    /// How far (in requests) the requests may run ahead of the reports' progress.
    slack_requests: u64,
    /// Acknowledge at least every this many reports.
    ack_every: u64,
    /// The next expected sequence number: how far the report stream has come.
    next_seq: u64,
    /// Reports received.
    received: u64,
    /// Sequence numbers skipped.
    lost: u64,
    /// Reports with a sequence number below `next_seq`.
    late: u64,
    /// Reports with a wrong body.
    corrupt: u64,
    /// Requests made.
    issued: u64,
    /// Requests finished (answered or failed).
    answered: u64,
    /// Requests finished with a failure or a wrong answer.
    failed_answers: u64,
    /// Every failure, acknowledgements included.
    failed: u64,
    /// The first failure's message.
    first_failure: Option<String>,
    /// The last acknowledgement sent.
    acked: u64,
    /// Tenths of progress reached and printed.
    tenths: u32,
    /// Whether a request worker waits for the reports.
    requests_waiting: bool,
    /// Request latencies.
    latency: Histogram,
}

impl Gate {
    /// A gate for `reports` reports and `requests` requests, `in_flight` at a time.
    fn new(reports: u64, requests: u64, ack_every: u64, in_flight: usize) -> Gate {
        let ack_every = ack_every.max(1);
        Gate {
            reports,
            requests,
            slack_reports: (reports / LOCKSTEP_SLACK).max(2 * ack_every),
            slack_requests: (requests / LOCKSTEP_SLACK).max(2 * in_flight as u64),
            ack_every,
            next_seq: 0,
            received: 0,
            lost: 0,
            late: 0,
            corrupt: 0,
            issued: 0,
            answered: 0,
            failed_answers: 0,
            failed: 0,
            first_failure: None,
            acked: 0,
            tenths: 0,
            requests_waiting: false,
            latency: Histogram::new(),
        }
    }

    /// Reports the requests' progress allows: theirs, in reports, plus the slack.
    fn allowed_reports(&self) -> u64 {
        let at = scale(self.answered, self.requests, self.reports);
        self.reports.min(at.saturating_add(self.slack_reports))
    }

    /// Requests the reports' progress allows: theirs, in requests, plus the slack.
    fn allowed_requests(&self) -> u64 {
        let at = scale(self.next_seq, self.reports, self.requests);
        self.requests.min(at.saturating_add(self.slack_requests))
    }

    /// Counts a report whose body carried `seq` (`None`: not a body as published).
    fn report(&mut self, seq: Option<u64>) -> Step {
        self.received += 1;
        match seq {
            None => self.corrupt += 1,
            Some(seq) if seq == self.next_seq => self.next_seq += 1,
            Some(seq) if seq > self.next_seq => {
                self.lost += seq - self.next_seq;
                self.next_seq = seq + 1;
            }
            Some(_) => self.late += 1,
        }
        let wake_requests = self.requests_waiting && self.issued < self.allowed_requests();
        if wake_requests {
            self.requests_waiting = false;
        }
        Step {
            wake_requests,
            ack: self.ack_due(),
            tenths: self.progress(),
        }
    }

    /// The next request to make, if the lockstep allows one.
    fn issue(&mut self) -> Issue {
        if self.issued >= self.requests {
            Issue::Done
        } else if self.issued < self.allowed_requests() {
            self.issued += 1;
            Issue::Go(self.issued - 1)
        } else {
            self.requests_waiting = true;
            Issue::Wait
        }
    }

    /// Counts a finished request.
    fn answer(&mut self, latency: Duration, outcome: Result<(), String>) -> Step {
        self.answered += 1;
        self.latency.record(latency);
        if let Err(e) = outcome {
            self.failed_answers += 1;
            self.fail(e);
        }
        Step {
            wake_requests: false,
            ack: self.ack_due(),
            tenths: self.progress(),
        }
    }

    /// Counts a failure.
    fn fail(&mut self, message: String) {
        self.failed += 1;
        self.first_failure.get_or_insert(message);
    }

    /// The acknowledgement to send now, if any: what was received, as far as the lockstep
    /// allows, once it is `ack_every` beyond the last one or complete.
    fn ack_due(&mut self) -> Option<u64> {
        let target = self.next_seq.min(self.allowed_reports());
        if target > self.acked && (target - self.acked >= self.ack_every || target >= self.reports)
        {
            self.acked = target;
            Some(target)
        } else {
            None
        }
    }

    /// Tenths of progress (of both streams) newly reached.
    fn progress(&mut self) -> std::ops::Range<u32> {
        let tenth = |done: u64, total: u64| {
            if total == 0 {
                10
            } else {
                scale(done, total, 10).min(10) as u32
            }
        };
        let now = tenth(self.next_seq, self.reports).min(tenth(self.answered, self.requests));
        let new = self.tenths + 1..now + 1;
        self.tenths = self.tenths.max(now);
        new
    }

    /// Where the run is: reports received, requests answered, the failures so far.
    fn position(&self) -> (u64, u64, u64) {
        (self.received, self.answered, self.failed)
    }

    /// The counts, for a message.
    fn describe(&self) -> String {
        format!(
            "{} of {} reports received (next expected {}, {} lost, {} late, {} corrupt), {} acknowledged; \
             {} of {} requests answered ({} made, {} failures{})",
            self.received,
            self.reports,
            self.next_seq,
            self.lost,
            self.late,
            self.corrupt,
            self.acked,
            self.answered,
            self.requests,
            self.issued,
            self.failed,
            self.first_failure.as_deref().map(|f| format!(", the first: {f}")).unwrap_or_default(),
        )
    }

    /// Whether every report has been seen and every request answered.
    fn complete(&self) -> bool {
        self.next_seq >= self.reports && self.answered >= self.requests
    }
}

/// `x × to ÷ from`, rounded down (`to` when `from` is 0).
fn scale(x: u64, from: u64, to: u64) -> u64 {
    if from == 0 {
        return to;
    }
    u64::try_from(u128::from(x) * u128::from(to) / u128::from(from)).unwrap_or(u64::MAX)
}

/// Request latencies in µs, log-linear: exact below 1,024 µs, then 64 buckets per power of
/// two (within 1.6 %). Its 24 KiB are allocated once: counting does not grow the consumer's
/// memory (a histogram with a bucket per µs up to 100 ms has 800 KiB of pages, touched one
/// by one as new latencies come, which shows in the RSS samples).
#[derive(Debug)]
struct Histogram {
    /// Counts per bucket (see [`Histogram::bucket`]).
    counts: Vec<u64>,
    /// All latencies.
    total: u64,
}

impl Histogram {
    /// Latencies below this many µs have a bucket each.
    const EXACT: u64 = 1024;
    /// Buckets per power of two above `EXACT` (as a shift: 64).
    const SUB_BITS: u32 = 6;
    /// Powers of two covered above `EXACT` (2^10 µs to 2^41 µs, beyond any run).
    const POWERS: usize = 31;
    /// Every bucket.
    const BUCKETS: usize = Self::EXACT as usize + (Self::POWERS << Self::SUB_BITS);

    /// An empty histogram.
    fn new() -> Histogram {
        Histogram {
            counts: vec![0; Self::BUCKETS],
            total: 0,
        }
    }

    /// The bucket of `us` µs.
    fn bucket(us: u64) -> usize {
        if us < Self::EXACT {
            return us as usize;
        }
        let power = 63 - us.leading_zeros(); // ≥ 10
        let sub = (us >> (power - Self::SUB_BITS)) & ((1 << Self::SUB_BITS) - 1);
        let index =
            Self::EXACT as usize + (((power - 10) as usize) << Self::SUB_BITS) + sub as usize;
        index.min(Self::BUCKETS - 1)
    }

    /// The smallest latency, in µs, of bucket `index`.
    fn floor(index: usize) -> u64 {
        if index < Self::EXACT as usize {
            return index as u64;
        }
        let above = index - Self::EXACT as usize;
        let power = (above >> Self::SUB_BITS) as u32 + 10;
        let sub = (above & ((1 << Self::SUB_BITS) - 1)) as u64;
        ((1 << Self::SUB_BITS) + sub) << (power - Self::SUB_BITS)
    }

    /// Counts one latency.
    fn record(&mut self, latency: Duration) {
        self.total += 1;
        self.counts[Self::bucket(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX))] += 1;
    }

    /// The `p` quantile (0..=1), nearest rank, in µs (its bucket's floor); 0 when empty.
    fn quantile(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((p * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Self::floor(index);
            }
        }
        Self::floor(Self::BUCKETS - 1)
    }
}

/// The netsvc services of the soak processes.
mod services {
    use std::cell::Cell;
    use std::rc::Rc;

    use netsvc::prelude::*;
    use netsvc::Exchange;
    use tokio::sync::oneshot;

    use super::{answer, Shared, Traffic, PATTERN, PUBLISHER, SUBJECT};
    use crate::pace::Pace;
    use crate::payload::{checked_seq, payload, Blob};

    /// The hub's counters, on request.
    #[derive(netsvc::Service)]
    #[service(name = "soak-hub")]
    pub(crate) struct Hub {
        /// The hub's exchange.
        pub(crate) exchange: Exchange,
    }

    impl Service for Hub {}

    #[netsvc::methods]
    impl Hub {
        /// The hub's traffic counters.
        fn stats(&mut self) -> Traffic {
            self.exchange.stats().into()
        }
    }

    /// Answers `work` requests.
    #[derive(netsvc::Service)]
    #[service(name = "soak-server")]
    pub(crate) struct Server {
        /// Requests answered.
        pub(crate) served: Rc<Cell<u64>>,
        /// Requests refused (wrong body).
        pub(crate) bad: Rc<Cell<u64>>,
        /// The producer's exchange.
        pub(crate) exchange: Exchange,
    }

    impl Service for Server {}

    #[netsvc::methods]
    impl Server {
        /// Checks that `body` is request `seq`'s and answers it with `answer(seq)` in place
        /// of `seq`.
        fn work(&mut self, seq: u64, body: Blob) -> Result<Blob, Failure> {
            let mut body = body;
            if checked_seq(&body.0) != Some(seq) {
                self.bad.set(self.bad.get() + 1);
                return Err(Failure::new(
                    ErrorCode(100),
                    format!("request {seq}: not the body sent"),
                ));
            }
            self.served.set(self.served.get() + 1);
            body.0[..8].copy_from_slice(&answer(seq).to_le_bytes());
            Ok(body)
        }

        /// Answers at once (the consumer's probe).
        fn ping(&mut self) -> u64 {
            0
        }

        /// The producer's traffic counters (asked for when a run stalls).
        fn traffic(&mut self) -> Traffic {
            self.exchange.stats().into()
        }
    }

    /// Publishes `soak.seq` reports, paced by its subscriber's acknowledgements.
    #[derive(netsvc::Service)]
    #[service(name = "soak-publisher")]
    pub(crate) struct Publisher {
        /// Pacing (one subscriber).
        pub(crate) pace: Pace,
        /// Whether the subscriber has subscribed.
        pub(crate) started: bool,
        /// Told the pacing state once every report is acknowledged.
        pub(crate) done: Option<oneshot::Sender<Pace>>,
    }

    impl Service for Publisher {
        fn subscription(&mut self, notice: SubscriptionNotice, ctx: &mut ServiceContext<Self>) {
            if notice.status == SubscriptionStatus::Requested && !self.started {
                self.started = true;
                self.pump(ctx);
            }
        }
    }

    #[netsvc::methods]
    impl Publisher {
        /// The subscriber has received `count` reports.
        fn ack(&mut self, ctx: &mut ServiceContext<Self>, count: u64) {
            self.pace.ack(0, count);
            self.pump(ctx);
        }
    }

    impl Publisher {
        /// Publishes what the window allows; reports the end once everything is acknowledged.
        fn pump(&mut self, ctx: &mut ServiceContext<Self>) {
            if !self.started {
                return;
            }
            for seq in self.pace.sendable() {
                ctx.publish_report(SUBJECT, Blob(payload(seq)), Lifetime::None);
            }
            if self.pace.all_acked() {
                if let Some(done) = self.done.take() {
                    let _ = done.send(std::mem::replace(&mut self.pace, Pace::new(0, 1, 1)));
                }
            }
        }
    }

    /// Counts and checks `soak.*` reports from `soak-publisher`; acknowledges them.
    #[derive(netsvc::Service)]
    pub(crate) struct Subscriber {
        /// The consumer's shared state.
        pub(crate) shared: Rc<Shared>,
    }

    impl Service for Subscriber {
        fn started(&mut self, ctx: &mut ServiceContext<Self>) {
            ctx.monitor_reports(PUBLISHER, PATTERN);
        }

        fn report(&mut self, report: Report, ctx: &mut ServiceContext<Self>) {
            let seq = report.decode::<Blob>().ok().and_then(|b| checked_seq(&b.0));
            if self.shared.publisher.borrow().is_none() {
                *self.shared.publisher.borrow_mut() =
                    Some(PublisherClient::new(ctx.endpoint(report.publisher())));
            }
            let step = self.shared.gate.borrow_mut().report(seq);
            self.shared.apply(step);
        }
    }
}

/// The resident set of process `pid`, in KiB (`VmRSS` of `/proc/PID/status`).
fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("cannot read /proc/{pid}/status: {e}"))?;
    parse_vm_rss(&status).ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// The `VmRSS` figure of a `/proc/PID/status` text, in KiB.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let kib = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(kib)
}

/// The RSS samples of one process.
#[derive(Debug, Clone, Serialize)]
struct RssSamples {
    /// The process (`hub`, `producer`, `consumer`).
    process: &'static str,
    /// KiB at 0 %, 10 %, …, 100 % of progress.
    kib: Vec<u64>,
    /// The last sample ÷ the one at 10 %.
    end_over_warm: f64,
}

/// The single `--json` line of a soak run.
#[derive(Debug, Serialize)]
struct SoakJson<'a> {
    /// Always `"soak"`.
    workload: &'static str,
    /// Whether every check passed.
    passed: bool,
    /// What failed.
    problems: &'a [String],
    /// Reports published.
    reports: u64,
    /// Requests made.
    requests: u64,
    /// Requests outstanding at once.
    in_flight: usize,
    /// Most reports published ahead of the last acknowledgement.
    window: u64,
    /// The subscriber acknowledged every this many reports.
    ack_every: u64,
    /// Wall time of the workload, seconds.
    duration_s: f64,
    /// Reports delivered per second.
    reports_per_s: f64,
    /// Requests answered per second.
    requests_per_s: f64,
    /// Median request latency, µs.
    p50_us: u64,
    /// 99th percentile request latency, µs.
    p99_us: u64,
    /// The consumer's counts.
    consumer: &'a ConsumerOutcome,
    /// The producer's counts.
    producer: &'a ProducerOutcome,
    /// Allowed end RSS ÷ RSS at 10 %.
    rss_limit: f64,
    /// RSS samples per process.
    rss: &'a [RssSamples],
}

/// The processes of a run: killed (and reaped) when this is dropped, the clients first.
struct Processes {
    /// The consumer.
    consumer: Proc,
    /// The producer.
    producer: Proc,
    /// The hub.
    hub: Proc,
}

impl Processes {
    /// The name and pid of each, in table order.
    fn each(&self) -> [(&'static str, u32); 3] {
        [
            ("hub", self.hub.id()),
            ("producer", self.producer.id()),
            ("consumer", self.consumer.id()),
        ]
    }
}

/// Runs the soak and prints its figures; fails if any check fails.
pub(crate) fn run(args: &SoakArgs) -> ExitCode {
    match soak(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: soak: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the processes, samples them, checks the outcome, prints. `Ok(false)`: a check
/// failed (already printed).
fn soak(args: &SoakArgs) -> Result<bool, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let pick = |explicit: Option<u64>, full: u64, quick: u64| {
        explicit.unwrap_or(if args.quick { quick } else { full })
    };
    let requests = pick(args.requests, 1_000_000, 20_000).max(1);
    let reports = pick(args.reports, 10_000_000, 200_000).max(1);
    let ack_every = args.ack_every.max(1);
    let window = args.window.max(2 * ack_every);
    let stall = Duration::from_secs(args.stall.max(1));
    let common = [
        ("--requests", requests.to_string()),
        ("--reports", reports.to_string()),
        ("--in-flight", args.in_flight.max(1).to_string()),
        ("--window", window.to_string()),
        ("--ack-every", ack_every.to_string()),
    ];
    let start = |role: &str, extra: &[(&str, String)]| -> Result<Proc, String> {
        let mut command = Command::new(&exe);
        command.args(["soak-role", role]);
        for (option, value) in common.iter().chain(extra) {
            command.args([*option, value.as_str()]);
        }
        let proc = Proc::role(format!("soak {role}"), command)?;
        if args.verbose {
            eprintln!("started {} (pid {})", proc.name(), proc.id());
        }
        Ok(proc)
    };

    let mut hub = start("hub", &[])?;
    let addr = hub.expect("READY", SETUP)?;
    let mut producer = start("producer", &[("--server", addr.clone())])?;
    producer.expect("READY", SETUP)?;
    let consumer = start(
        "consumer",
        &[("--server", addr), ("--stall", stall.as_secs().to_string())],
    )?;
    let mut procs = Processes {
        consumer,
        producer,
        hub,
    };
    procs.consumer.expect("READY", SETUP)?;
    let began = Instant::now();

    let mut samples: Vec<Vec<u64>> = vec![Vec::new(); 3];
    let mut sample = |procs: &Processes, at: u32| -> Result<(), String> {
        for (i, (name, pid)) in procs.each().into_iter().enumerate() {
            let kib = rss_kib(pid).map_err(|e| format!("{name}: {e}"))?;
            samples[i].push(kib);
        }
        if args.verbose {
            let now: Vec<String> = samples
                .iter()
                .map(|s| format!("{:.1}", mib(*s.last().unwrap_or(&0))))
                .collect();
            eprintln!(
                "{:>4}% at {:>7.2} s: RSS MiB hub/producer/consumer {}",
                at * 10,
                secs(began),
                now.join(" / ")
            );
        }
        Ok(())
    };
    sample(&procs, 0)?;
    // The consumer fails on a stall itself, with its counts; this is the bound if it cannot.
    let driver_stall = stall + Duration::from_secs(10);
    for tenth in 1..=10u32 {
        let line = procs
            .consumer
            .expect("PROGRESS", driver_stall)
            .map_err(|e| with_peers(&mut procs, e))?;
        if line.parse::<u32>().ok() != Some(tenth) {
            return Err(format!("consumer: progress {line:?}, expected {tenth}"));
        }
        sample(&procs, tenth)?;
    }
    let line = procs
        .consumer
        .expect("RESULT", SETUP)
        .map_err(|e| with_peers(&mut procs, e))?;
    let consumer: ConsumerOutcome =
        serde_json::from_str(&line).map_err(|e| format!("bad consumer result {line:?}: {e}"))?;
    let line = procs
        .producer
        .expect("RESULT", driver_stall)
        .map_err(|e| with_peers(&mut procs, e))?;
    let producer: ProducerOutcome =
        serde_json::from_str(&line).map_err(|e| format!("bad producer result {line:?}: {e}"))?;
    drop(procs);

    let rss: Vec<RssSamples> = ["hub", "producer", "consumer"]
        .into_iter()
        .zip(samples)
        .map(|(process, kib)| {
            let end_over_warm = kib[10] as f64 / kib[1].max(1) as f64;
            RssSamples {
                process,
                kib,
                end_over_warm,
            }
        })
        .collect();
    let problems = verdict(
        &consumer,
        &producer,
        &rss,
        reports,
        requests,
        args.rss_limit,
    );
    let duration = consumer.elapsed_ns as f64 / 1e9;
    if args.json {
        let line = SoakJson {
            workload: "soak",
            passed: problems.is_empty(),
            problems: &problems,
            reports,
            requests,
            in_flight: args.in_flight.max(1),
            window,
            ack_every,
            duration_s: duration,
            reports_per_s: consumer.received as f64 / duration.max(1e-9),
            requests_per_s: consumer.answered as f64 / duration.max(1e-9),
            p50_us: consumer.p50_us,
            p99_us: consumer.p99_us,
            consumer: &consumer,
            producer: &producer,
            rss_limit: args.rss_limit,
            rss: &rss,
        };
        println!(
            "{}",
            serde_json::to_string(&line).map_err(|e| format!("cannot encode the result: {e}"))?
        );
    } else {
        print_table(
            &consumer,
            &producer,
            &rss,
            (reports, requests, args.in_flight.max(1), window, ack_every),
        );
        println!();
        if problems.is_empty() {
            println!(
                "passed: every report and answer counted and checked, nothing dropped, memory flat"
            );
        } else {
            println!("FAILED:");
            for problem in &problems {
                println!("  {problem}");
            }
        }
    }
    for problem in &problems {
        eprintln!("soak failed: {problem}");
    }
    Ok(problems.is_empty())
}

/// `error`, with any `ERROR` line the producer or hub printed (they may be the cause).
fn with_peers(procs: &mut Processes, error: String) -> String {
    let mut message = error;
    for peer in [&mut procs.producer, &mut procs.hub] {
        if let Err(e) = peer.expect("RESULT", Duration::from_millis(300)) {
            if e.contains(" failed: ") || e.contains(" exited ") {
                message.push_str("; ");
                message.push_str(&e);
            }
        }
    }
    message
}

/// Every check of a finished run; empty when it passed.
fn verdict(
    consumer: &ConsumerOutcome,
    producer: &ProducerOutcome,
    rss: &[RssSamples],
    reports: u64,
    requests: u64,
    rss_limit: f64,
) -> Vec<String> {
    let mut problems = Vec::new();
    if consumer.received != reports
        || consumer.lost != 0
        || consumer.late != 0
        || consumer.corrupt != 0
    {
        problems.push(format!(
            "reports: {} received of {reports}: {} lost, {} duplicated/late/reordered, {} corrupt",
            consumer.received, consumer.lost, consumer.late, consumer.corrupt
        ));
    }
    if consumer.answered != requests
        || consumer.failed != 0
        || producer.served != requests
        || producer.bad_requests != 0
    {
        problems.push(format!(
            "requests: {} answered correctly of {requests}, {} failures (first: {}); the server answered {} and \
             refused {}",
            consumer.answered,
            consumer.failed,
            consumer.first_failure.as_deref().unwrap_or("none"),
            producer.served,
            producer.bad_requests
        ));
    }
    if producer.acked != reports {
        problems.push(format!(
            "the publisher got acknowledgements for {} of {reports} reports",
            producer.acked
        ));
    }
    for (name, traffic) in [
        ("hub", &consumer.hub),
        ("producer", &producer.traffic),
        ("consumer", &consumer.traffic),
    ] {
        if traffic.reports_dropped != 0 {
            problems.push(format!(
                "{name}: {} reports dropped by the slow-consumer policy",
                traffic.reports_dropped
            ));
        }
    }
    for r in rss {
        if r.end_over_warm > rss_limit {
            problems.push(format!(
                "{}: end RSS {:.1} MiB is {:.3}x its RSS at 10 % ({:.1} MiB), over the {rss_limit}x limit",
                r.process,
                mib(r.kib[10]),
                r.end_over_warm,
                mib(r.kib[1])
            ));
        }
    }
    problems
}

/// Prints the readable report of a run.
fn print_table(
    consumer: &ConsumerOutcome,
    producer: &ProducerOutcome,
    rss: &[RssSamples],
    (reports, requests, in_flight, window, ack_every): (u64, u64, usize, u64, u64),
) {
    let duration = consumer.elapsed_ns as f64 / 1e9;
    let rate = |n: u64| thousands(n as f64 / duration.max(1e-9));
    println!(
        "netsvc-bench soak: {} requests ({in_flight} in flight) + {} reports through one hub, {PAYLOAD_LEN}-byte \
         bodies",
        thousands(requests as f64),
        thousands(reports as f64)
    );
    println!("reports paced end to end: window {window}, acknowledged every {ack_every}");
    println!();
    println!("duration       {duration:.2} s");
    println!(
        "reports        {:>12} received  {:>10}/s   lost {}, dup/late/reordered {}, corrupt {}",
        thousands(consumer.received as f64),
        rate(consumer.received),
        consumer.lost,
        consumer.late,
        consumer.corrupt
    );
    println!(
        "requests       {:>12} answered  {:>10}/s   failed {}, p50 {} us, p99 {} us",
        thousands(consumer.answered as f64),
        rate(consumer.answered),
        consumer.failed,
        consumer.p50_us,
        consumer.p99_us
    );
    println!(
        "dropped        hub {}, producer {}, consumer {} (slow-consumer policy)",
        consumer.hub.reports_dropped,
        producer.traffic.reports_dropped,
        consumer.traffic.reports_dropped
    );
    println!(
        "hub wrote      {} frames, {} report frames, {:.1} MiB",
        thousands(consumer.hub.frames_sent as f64),
        thousands(consumer.hub.reports_sent as f64),
        consumer.hub.bytes_written as f64 / (1024.0 * 1024.0)
    );
    println!();
    let mut header = format!("{:<10}", "RSS MiB");
    for tenth in 0..=10 {
        header.push_str(&format!(" {:>6}", format!("{}%", tenth * 10)));
    }
    println!("{header}   end/10%");
    for r in rss {
        let mut row = format!("{:<10}", r.process);
        for &kib in &r.kib {
            row.push_str(&format!(" {:>6.1}", mib(kib)));
        }
        println!("{row}   {:.3}", r.end_over_warm);
    }
}

/// KiB as MiB.
fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Seconds since `t`.
fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_counts_loss_duplicates_and_corruption() {
        let mut gate = Gate::new(10, 1, 1, 1);
        gate.report(Some(0));
        gate.report(Some(1));
        gate.report(Some(3)); // 2 skipped
        gate.report(Some(3)); // again
        gate.report(None);
        assert_eq!(
            (
                gate.received,
                gate.lost,
                gate.late,
                gate.corrupt,
                gate.next_seq
            ),
            (5, 1, 1, 1, 4)
        );
    }

    #[test]
    fn gate_keeps_requests_in_step_with_reports() {
        // 100 requests, 1000 reports: slack 2 requests (2 × in flight 1), 20 reports (2 × 10).
        let mut gate = Gate::new(1000, 100, 10, 1);
        assert_eq!(gate.issue(), Issue::Go(0));
        assert_eq!(gate.issue(), Issue::Go(1));
        assert_eq!(gate.issue(), Issue::Wait, "2 requests ahead of 0 reports");
        assert!(gate.requests_waiting);
        let mut woke = false;
        for seq in 0..10 {
            woke |= gate.report(Some(seq)).wake_requests;
        }
        assert!(woke, "10 reports allow request 2");
        assert_eq!(gate.issue(), Issue::Go(2));
    }

    #[test]
    fn gate_holds_acknowledgements_while_requests_lag() {
        let mut gate = Gate::new(1000, 100, 10, 1);
        let mut acks = Vec::new();
        for seq in 0..50 {
            acks.extend(gate.report(Some(seq)).ack);
        }
        assert_eq!(
            acks,
            [10, 20],
            "no request answered: at most the slack of 20 reports acknowledged"
        );
        assert_eq!(gate.issue(), Issue::Go(0));
        let step = gate.answer(Duration::from_micros(5), Ok(()));
        assert_eq!(
            step.ack,
            Some(30),
            "one answer (10 reports' worth) releases 10 more"
        );
        for _ in 1..3 {
            assert!(matches!(gate.issue(), Issue::Go(_)));
            gate.answer(Duration::from_micros(5), Ok(()));
        }
        assert_eq!(gate.acked, 50, "held back as far as the reports received");
    }

    #[test]
    fn gate_finishes_and_reports_every_tenth_once() {
        let mut gate = Gate::new(100, 10, 5, 2);
        let mut tenths = Vec::new();
        let mut acks = Vec::new();
        let mut seq = 0;
        while !gate.complete() {
            match gate.issue() {
                Issue::Go(_) => {
                    let step = gate.answer(Duration::from_micros(1), Ok(()));
                    tenths.extend(step.tenths);
                    acks.extend(step.ack);
                }
                Issue::Wait | Issue::Done => {
                    assert!(seq < 100, "stuck: reports done and requests waiting");
                    let step = gate.report(Some(seq));
                    seq += 1;
                    tenths.extend(step.tenths);
                    acks.extend(step.ack);
                }
            }
        }
        assert_eq!(tenths, (1..=10).collect::<Vec<_>>());
        assert_eq!(acks.last(), Some(&100));
        assert_eq!(gate.issue(), Issue::Done);
    }

    #[test]
    fn failures_are_counted_with_the_first_message() {
        let mut gate = Gate::new(10, 10, 1, 1);
        gate.answer(Duration::ZERO, Err("first".into()));
        gate.answer(Duration::ZERO, Ok(()));
        gate.fail("second".into());
        assert_eq!((gate.answered, gate.failed_answers, gate.failed), (2, 1, 2));
        assert_eq!(gate.first_failure.as_deref(), Some("first"));
    }

    #[test]
    fn histogram_quantiles() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), 0);
        for us in 1..=100 {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.99), 99);
        h.record(Duration::from_micros(5_000));
        h.record(Duration::from_secs(1));
        assert_eq!(h.quantile(1.0), 999_424, "1 s, to within 1/64");
    }

    #[test]
    fn histogram_buckets_are_log_linear() {
        for us in [
            0, 1, 1023, 1024, 1025, 1040, 2047, 2048, 5000, 123_456, 1_000_000, 60_000_000,
        ] {
            let floor = Histogram::floor(Histogram::bucket(us));
            assert!(
                floor <= us && us - floor <= us / 64,
                "{us} µs in the bucket from {floor}"
            );
            assert_eq!(Histogram::bucket(floor), Histogram::bucket(us));
        }
        assert_eq!(Histogram::bucket(1024), 1024);
        assert_eq!(
            Histogram::bucket(1040),
            1025,
            "16 µs per bucket from 1024 to 2048"
        );
        assert_eq!(Histogram::bucket(u64::MAX), Histogram::BUCKETS - 1);
        assert_eq!(Histogram::BUCKETS, 3008, "24 KiB of counts");
    }

    #[test]
    fn answers_differ_from_the_request() {
        assert_ne!(answer(7), 7);
    }

    #[test]
    fn vm_rss_is_parsed() {
        let status = "Name:\tx\nVmHWM:\t  9000 kB\nVmRSS:\t    5632 kB\nRssAnon:\t 1 kB\n";
        assert_eq!(parse_vm_rss(status), Some(5632));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert!(rss_kib(std::process::id()).is_ok_and(|kib| kib > 0));
    }

    #[test]
    fn scale_rounds_down() {
        assert_eq!(scale(5, 10, 100), 50);
        assert_eq!(scale(1, 3, 10), 3);
        assert_eq!(scale(10_000_000, 10_000_000, 1_000_000), 1_000_000);
        assert_eq!(scale(1, 0, 7), 7);
    }
}
