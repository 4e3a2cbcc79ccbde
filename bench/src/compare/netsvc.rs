//! The netsvc side of `compare`: its roles as netsvc nodes and services, one actix `System`
//! (one arbiter) per process, each process connected to the `exchange` role (see
//! `compare.rs` for what each workload does on each side).

use std::time::Duration;

use netsvc::prelude::*;
use netsvc::Exchange;
use tokio::sync::oneshot;

use super::measure::{self, BurstTally, Tally};
use super::protocol::{
    BurstPublished, PublishOutcome, RoleArgs, RoleKind, ServerStats, ROLE_LIMIT, SPIN_WINDOW,
};
use super::subjects::{self, SubjectTally};
use crate::mesh::{find, join, probe};
use crate::pace::Pace;
use crate::payload::{payload, seq_of};
use crate::roles::{ready, result, Blob};

/// Name of the netsvc responder service.
const RESPONDER: &str = "bench-responder";
/// Name of the netsvc publisher service.
const PUBLISHER: &str = "bench-publisher";

/// Which certificates a role uses under TLS.
enum Certificate {
    /// The exchange server's certificate and key.
    Server,
    /// The CA, to verify the server.
    Client,
}

/// The TLS settings of a role, when `--tls-dir` is given.
fn tls(args: &RoleArgs, which: Certificate) -> Result<Option<netsvc::Tls>, String> {
    let Some(dir) = &args.tls_dir else {
        return Ok(None);
    };
    let (cert, key, ca) = match which {
        Certificate::Server => (
            Some(dir.join("server.pem")),
            Some(dir.join("server.key")),
            None,
        ),
        Certificate::Client => (None, None, Some(dir.join("ca.pem"))),
    };
    netsvc::Tls::from_files(
        cert.as_deref(),
        key.as_deref(),
        ca.as_deref(),
        netsvc::ClientAuth::Optional,
    )
    .map_err(|e| e.to_string())
}

/// Runs one netsvc role.
pub(crate) async fn role(args: &RoleArgs) -> Result<(), String> {
    if args.spin {
        netsvc::spin_when_idle(SPIN_WINDOW).map_err(|e| e.to_string())?;
    }
    match args.kind {
        RoleKind::Exchange => exchange_server(args).await,
        RoleKind::Relay => Err("the relay is a role of the raw side".to_owned()),
        RoleKind::Responder => responder(args).await,
        RoleKind::Requester => requester(args).await,
        RoleKind::Publisher => publisher(args).await,
        RoleKind::Subscriber if args.subjects > 0 => subject_subscribers(args).await,
        RoleKind::Subscriber => subscriber(args).await,
        RoleKind::BurstPublisher => burst_publisher(args).await,
        RoleKind::BurstSubscriber => burst_subscriber(args).await,
    }
}

/// What a role's service sends on `finished`, waited for at most [`ROLE_LIMIT`]; an error
/// saying `late` (then the limit) or `stopped`.
async fn outcome_of<T>(
    finished: oneshot::Receiver<T>,
    late: &str,
    stopped: &str,
) -> Result<T, String> {
    tokio::time::timeout(ROLE_LIMIT, finished)
        .await
        .map_err(|_| format!("{late} within {ROLE_LIMIT:?}"))?
        .map_err(|_| stopped.to_owned())
}

/// The exchange server: listens and relays until killed.
async fn exchange_server(args: &RoleArgs) -> Result<(), String> {
    let node = Node::new("bench-exchange");
    let config = netsvc::ExchangeConfig {
        tls: tls(args, Certificate::Server)?,
        ..netsvc::ExchangeConfig::default()
    };
    let exchange = Exchange::with_config(&node, config).map_err(|e| e.to_string())?;
    let addr = exchange
        .listen(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    ready(&addr.to_string());
    // `burst_unpaced` asks, with `GO`, for what this server's links dropped.
    crate::roles::go().await;
    let stats = exchange.stats();
    result(&ServerStats {
        reports_sent: stats.reports_sent,
        reports_dropped: stats.reports_dropped,
    })?;
    std::future::pending::<()>().await;
    Ok(())
}

/// The responder: a `bench-responder` service echoing its argument, until killed.
async fn responder(args: &RoleArgs) -> Result<(), String> {
    let node = Node::new("bench-responder");
    let _exchange = join(&node, &args.server, tls(args, Certificate::Client)?).await?;
    node.spawn(services::Responder);
    ready("");
    std::future::pending::<()>().await;
    Ok(())
}

/// The requester: finds `bench-responder`, warms up, then measures through the typed client.
async fn requester(args: &RoleArgs) -> Result<(), String> {
    let node = Node::new("bench-requester");
    let _exchange = join(&node, &args.server, tls(args, Certificate::Client)?).await?;
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
    measure::requests(args, call).await
}

/// The publisher: waits for `--subscribers` subscriptions, then publishes `--count` reports
/// paced by acknowledgements (requests to its `ack` method).
async fn publisher(args: &RoleArgs) -> Result<(), String> {
    let node = Node::new("bench-publisher");
    let _exchange = join(&node, &args.server, tls(args, Certificate::Client)?).await?;
    let (done, finished) = oneshot::channel();
    node.spawn(services::Publisher {
        pace: Pace::new(args.count, args.window, args.subscribers),
        subjects: args.subjects(),
        body_len: args.body_len,
        subscribers: args.subscribers,
        subscribed: 0,
        start: None,
        done: Some(done),
    });
    ready("");
    let (elapsed, pace) = outcome_of(
        finished,
        "publishing not done",
        "the publisher service stopped",
    )
    .await?;
    if !pace.all_acked() {
        return Err(format!("not every report acknowledged: {:?}", pace.acked()));
    }
    result(&PublishOutcome::of(args, elapsed))
}

/// A subscriber: monitors `bench.*` on `bench-publisher`, counts, acknowledges.
async fn subscriber(args: &RoleArgs) -> Result<(), String> {
    let node = Node::new(format!("bench-subscriber-{}", args.index));
    let _exchange = join(&node, &args.server, tls(args, Certificate::Client)?).await?;
    let (done, finished) = oneshot::channel();
    node.spawn(services::Subscriber {
        index: args.index,
        tally: Tally::new(args.count, args.ack_every),
        body_len: args.body_len,
        client: None,
        done: Some(done),
        settling: false,
    });
    ready("");
    let outcome = outcome_of(
        finished,
        "reports not all received",
        "the subscriber service stopped",
    )
    .await?;
    result(&outcome)
}

/// The subscriber services `--services` of a subscriber process of `--subjects` (see
/// `subjects.rs`), one node with a service per pattern; the result lists their outcomes.
async fn subject_subscribers(args: &RoleArgs) -> Result<(), String> {
    let node = Node::new(format!("bench-subscriber-{}", args.index));
    let _exchange = join(&node, &args.server, tls(args, Certificate::Client)?).await?;
    let mut finished = Vec::new();
    for m in args.services() {
        let (done, outcome) = oneshot::channel();
        node.spawn(services::SubjectSubscriber {
            index: m as u32,
            pattern: subjects::pattern(m),
            tally: SubjectTally::new(m, args.count, args.subjects, args.ack_every),
            client: None,
            done: Some(done),
            settling: false,
        });
        finished.push(outcome);
    }
    ready("");
    let all = futures_util::future::join_all(finished);
    let outcomes = tokio::time::timeout(ROLE_LIMIT, all)
        .await
        .map_err(|_| format!("reports not all received within {ROLE_LIMIT:?}"))?
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "a subscriber service stopped".to_owned())?;
    result(&outcomes)
}

/// The burst publisher of `burst_unpaced`: once the subscriber has subscribed to
/// `burst.*`, publishes `--count` reports unpaced, prints the `RESULT`, then publishes the
/// end marker every [`MARKER_EVERY`](super::protocol::MARKER_EVERY) until killed.
async fn burst_publisher(args: &RoleArgs) -> Result<(), String> {
    let node = Node::new("bench-publisher");
    let exchange = join(&node, &args.server, tls(args, Certificate::Client)?).await?;
    let (done, finished) = oneshot::channel();
    node.spawn(services::BurstPublisher {
        total: args.count,
        body_len: args.body_len,
        subjects: measure::burst_subjects(args.subjects.max(1)),
        next: 0,
        start_unix_ns: None,
        done: Some(done),
    });
    ready("");
    let (start_unix_ns, end_unix_ns) = outcome_of(
        finished,
        "publishing not done",
        "the publisher service stopped",
    )
    .await?;
    result(&BurstPublished {
        published: args.count,
        start_unix_ns,
        end_unix_ns,
        dropped_at_publisher: Some(exchange.stats().reports_dropped),
    })?;
    // The service goes on publishing its end marker.
    std::future::pending::<()>().await;
    Ok(())
}

/// The burst subscriber of `burst_unpaced`: one service on a node whose inboxes hold
/// `--capacity` deliveries, subscribed to `burst.*` (conflated with `--conflate`) and to
/// the end marker.
async fn burst_subscriber(args: &RoleArgs) -> Result<(), String> {
    let node = Node::with_config(netsvc::NodeConfig {
        name: "bench-burst-subscriber".to_owned(),
        inbox_capacity: args.capacity.max(1),
        ..netsvc::NodeConfig::default()
    });
    let _exchange = join(&node, &args.server, tls(args, Certificate::Client)?).await?;
    let (done, finished) = oneshot::channel();
    node.spawn(services::BurstSubscriber {
        tally: BurstTally::new(args),
        conflate: args.conflate,
        marker_seen: false,
        last_activity: std::time::Instant::now(),
        done: Some(done),
    });
    ready("");
    let outcome = outcome_of(
        finished,
        "no end of the burst",
        "the subscriber service stopped",
    )
    .await?;
    result(&outcome)
}

/// The netsvc services of the roles.
mod services {
    use std::time::{Duration, Instant};

    use netsvc::prelude::*;
    use tokio::sync::oneshot;

    use super::PUBLISHER;
    use crate::compare::measure::{BurstTally, Tally};
    use crate::compare::protocol::{
        unix_ns, BurstReceived, SubscribeOutcome, BURST_PATTERN, END_PATTERN, END_SUBJECT,
        MARKER_EVERY, PATTERN, QUIET, SETTLE,
    };
    use crate::compare::subjects::SubjectTally;
    use crate::pace::Pace;
    use crate::payload::{checked_seq_of, payload_of};
    use crate::roles::Blob;
    use bytes::Bytes;

    /// Reports the burst publisher publishes in one go before letting its link's writer
    /// (on the same thread) run.
    const BURST_CHUNK: u64 = 1024;

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

    /// Publishes reports on its subjects (`bench.x`, or those of `subjects.rs`), paced by its subscribers' acknowledgements.
    #[derive(netsvc::Service)]
    #[service(name = "bench-publisher")]
    pub(crate) struct Publisher {
        /// Pacing.
        pub(crate) pace: Pace,
        /// The subjects, report `seq` on the `seq % len`-th.
        pub(crate) subjects: Vec<String>,
        /// Bytes of every body.
        pub(crate) body_len: usize,
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
            let subjects = &self.subjects;
            for seq in self.pace.sendable() {
                let subject = subjects[(seq % subjects.len() as u64) as usize].as_str();
                ctx.publish_report(
                    subject,
                    Blob(payload_of(seq, self.body_len)),
                    Lifetime::None,
                );
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
        /// Bytes of every body.
        pub(crate) body_len: usize,
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
            let body_len = self.body_len;
            let seq = report
                .decode::<Bytes>()
                .ok()
                .and_then(|b| checked_seq_of(&b, body_len));
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

    /// One subscriber service of the many-subject workload: counts the reports of its
    /// pattern from `bench-publisher`, checks each subject's order, acknowledges.
    #[derive(netsvc::Service)]
    pub(crate) struct SubjectSubscriber {
        /// This service's number (`m` of `subjects.rs`).
        pub(crate) index: u32,
        /// Its pattern.
        pub(crate) pattern: String,
        /// Counting and checking.
        pub(crate) tally: SubjectTally,
        /// The publisher's client, made from the first report's publisher binding.
        pub(crate) client: Option<PublisherClient>,
        /// Told the figures after the settle time that follows the last expected report.
        pub(crate) done: Option<oneshot::Sender<SubscribeOutcome>>,
        /// Whether the settle time has started.
        pub(crate) settling: bool,
    }

    impl Service for SubjectSubscriber {
        fn started(&mut self, ctx: &mut ServiceContext<Self>) {
            ctx.monitor_reports(PUBLISHER, self.pattern.as_str());
        }

        fn report(&mut self, report: Report, ctx: &mut ServiceContext<Self>) {
            let seq = report
                .decode::<Bytes>()
                .ok()
                .and_then(|b| checked_seq_of(&b, crate::payload::PAYLOAD_LEN));
            if let Some(progress) = self.tally.record(report.subject().as_str(), seq) {
                let client = self
                    .client
                    .get_or_insert_with(|| PublisherClient::new(ctx.endpoint(report.publisher())));
                let call = client.ack(self.index, progress);
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

    /// Publishes a burst of reports over its subjects with no pacing (a chunk of
    /// [`BURST_CHUNK`] at a time, each on its own turn of the arbiter so that its link's
    /// writer can run), then the end marker every [`MARKER_EVERY`].
    #[derive(netsvc::Service)]
    #[service(name = "bench-publisher")]
    pub(crate) struct BurstPublisher {
        /// Reports to publish.
        pub(crate) total: u64,
        /// Bytes of every body.
        pub(crate) body_len: usize,
        /// The subjects, report `seq` on the `seq % len`-th.
        pub(crate) subjects: Vec<String>,
        /// The next report's sequence number.
        pub(crate) next: u64,
        /// Unix time when publishing started.
        pub(crate) start_unix_ns: Option<u64>,
        /// Told the start and end (Unix time, ns) once every report is published.
        pub(crate) done: Option<oneshot::Sender<(u64, u64)>>,
    }

    impl Service for BurstPublisher {
        fn subscription(&mut self, notice: SubscriptionNotice, ctx: &mut ServiceContext<Self>) {
            if notice.status == SubscriptionStatus::Requested
                && notice.pattern.as_str() == BURST_PATTERN
                && self.start_unix_ns.is_none()
            {
                self.start_unix_ns = Some(unix_ns());
                self.pump(ctx);
            }
        }
    }

    impl BurstPublisher {
        /// Publishes the next chunk, and schedules the one after it or the end.
        fn pump(&mut self, ctx: &mut ServiceContext<Self>) {
            let end = self.total.min(self.next + BURST_CHUNK);
            for seq in self.next..end {
                let subject = self.subjects[(seq % self.subjects.len() as u64) as usize].as_str();
                ctx.publish_report(
                    subject,
                    Blob(payload_of(seq, self.body_len)),
                    Lifetime::None,
                );
            }
            self.next = end;
            if self.next < self.total {
                ctx.run_later(Duration::ZERO, |this: &mut Self, ctx| this.pump(ctx));
                return;
            }
            if let Some(done) = self.done.take() {
                let _ = done.send((self.start_unix_ns.unwrap_or(0), unix_ns()));
            }
            ctx.run_interval(MARKER_EVERY, |_: &mut Self, ctx| {
                ctx.publish_report(END_SUBJECT, Blob(Vec::new()), Lifetime::None);
            });
        }
    }

    /// Receives the burst slowly and counts what arrives; ends [`QUIET`] after the end
    /// marker and the last report.
    #[derive(netsvc::Service)]
    pub(crate) struct BurstSubscriber {
        /// Counting, checking and the time spent per report.
        pub(crate) tally: BurstTally,
        /// Whether the burst's subscription is conflated.
        pub(crate) conflate: bool,
        /// Whether an end marker has arrived.
        pub(crate) marker_seen: bool,
        /// When the last report of the burst (or the first marker) arrived.
        pub(crate) last_activity: Instant,
        /// Told the figures at the end.
        pub(crate) done: Option<oneshot::Sender<BurstReceived>>,
    }

    impl Service for BurstSubscriber {
        fn started(&mut self, ctx: &mut ServiceContext<Self>) {
            ctx.monitor_reports(PUBLISHER, END_PATTERN);
            if self.conflate {
                ctx.conflate_reports(PUBLISHER, BURST_PATTERN);
            }
            ctx.monitor_reports(PUBLISHER, BURST_PATTERN);
            ctx.run_interval(Duration::from_millis(20), |this: &mut Self, _| {
                if this.marker_seen && this.last_activity.elapsed() >= QUIET {
                    if let Some(done) = this.done.take() {
                        let _ = done.send(this.tally.outcome());
                    }
                }
            });
        }

        fn report(&mut self, report: Report, _ctx: &mut ServiceContext<Self>) {
            if report.subject().as_str() == END_SUBJECT {
                if !self.marker_seen {
                    self.marker_seen = true;
                    self.last_activity = Instant::now();
                }
                return;
            }
            let body = report.decode::<Bytes>().unwrap_or_default();
            self.tally
                .record(report.subject().as_str(), &body, report.conflated());
            self.last_activity = Instant::now();
        }
    }
}
