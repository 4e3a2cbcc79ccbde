//! In-process workloads: each one runs netsvc and a bare actix baseline doing the same work.
//!
//! How a figure is taken: for every workload, one warm-up run of each side is discarded, then
//! `--reps` runs of each side alternate (netsvc, baseline, netsvc, baseline, ...). Every run
//! happens in a fresh actix `System` (so nothing left over from one run competes with the
//! next), everything of a run lives on that System's single arbiter, and the clock covers
//! only the measured traffic (not spawning or subscribing). The figure printed for each side
//! is the **best** rate of its runs (`--stat median` for the median): on a shared machine,
//! interference only ever slows a run down, so the best run is the least disturbed one. The
//! table also shows the range (min..max).
//!
//! Workloads:
//!
//! * `request_roundtrip_1_in_flight` — a requester awaits N sequential calls of `add(a, b)`.
//!   netsvc: the generated typed client on a binding-targeted endpoint (no timeout), from a
//!   future spawned on the requester service's own context. Baseline: `addr.send(Add(a, b))`
//!   from a plain actor to a plain actor.
//! * `report_delivery_10_subscribers` — a publisher sends M reports to each of 10
//!   subscribers, in batches. netsvc: `publish_report("bench.tick", i, Lifetime::None)` with
//!   10 subscribers of `bench.*`. Baseline: `recipient.do_send(Tick(Arc<u64>))` to each of 10
//!   plain actors. Every delivery is counted and its value summed; a run fails unless each
//!   subscriber got exactly M deliveries with the expected sum.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix::{Actor, ActorFutureExt, AsyncContext, Handler, Message, Recipient};
use clap::Args;
use netsvc::prelude::*;
use netsvc::SubscriptionNotice;
use tokio::sync::oneshot;

use crate::fmt::{compact, range, thousands, JsonLine};

/// Options of `netsvc-bench local`.
#[derive(Debug, Args)]
pub(crate) struct LocalArgs {
    /// Print one JSON object per workload (one per line) instead of a table.
    #[arg(long)]
    json: bool,
    /// Small counts and fewer repetitions, for smoke testing.
    #[arg(long)]
    quick: bool,
    /// Measured runs per side and workload (after one warm-up run); default 7, 3 with --quick.
    #[arg(long)]
    reps: Option<usize>,
    /// Which run's rate represents a side: the best (default; interference from other
    /// processes only ever slows a run down) or the median.
    #[arg(long, value_enum, default_value_t = Stat::Best)]
    stat: Stat,
    /// Run only the workloads whose name contains this text.
    #[arg(long)]
    only: Option<String>,
    /// Run only one side (for profiling one of them); the table then shows NaN for the other.
    #[arg(long, value_enum, default_value_t = Side::Both)]
    side: Side,
    /// Round trips per run of `request_roundtrip_1_in_flight` (default 300000, 20000 with --quick).
    #[arg(long)]
    round_trips: Option<u64>,
    /// Reports per subscriber per run of `report_delivery_10_subscribers` (default 200000,
    /// 10000 with --quick).
    #[arg(long)]
    reports: Option<u64>,
    /// Reports the publisher sends per batch before letting subscribers drain.
    #[arg(long, default_value_t = 1000)]
    batch: u64,
    /// Between batches, only `ctx.notify` the next batch without yielding first. actix handles a
    /// notification within the same poll of the actor, so subscribers then only start draining
    /// once every report is queued. For investigation.
    #[arg(long)]
    no_yield: bool,
}

/// How the runs of one side are summarized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Stat {
    /// The highest rate.
    Best,
    /// The median rate.
    Median,
}

impl Stat {
    /// The representative rate of `rates`.
    fn of(self, rates: &Rates) -> f64 {
        match self {
            Stat::Best => rates.best(),
            Stat::Median => rates.median(),
        }
    }

    /// The name used in the table heading.
    fn describe(self) -> &'static str {
        match self {
            Stat::Best => "best",
            Stat::Median => "median",
        }
    }
}

/// Which side(s) of each workload to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Side {
    /// netsvc and the baseline.
    Both,
    /// netsvc only.
    Netsvc,
    /// The bare actix baseline only.
    Baseline,
}

/// Counts and switches shared by every run of one invocation.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Sequential calls per run of the round-trip workload.
    round_trips: u64,
    /// Reports published per run of the report workload (each subscriber gets all of them).
    reports: u64,
    /// Subscribers of the report workload.
    subscribers: usize,
    /// Reports per batch.
    batch: u64,
    /// Whether the publisher yields to the other actors between batches.
    yield_between_batches: bool,
}

/// What one run measured: `ops` operations in `elapsed`.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Operations done (round trips, deliveries).
    ops: u64,
    /// Time they took.
    elapsed: Duration,
}

impl Sample {
    /// Operations per second.
    fn rate(self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A result of one run, or why it failed.
type RunResult = Result<Sample, String>;

/// The target a workload's netsvc figure should meet.
#[derive(Debug, Clone, Copy)]
enum Goal {
    /// netsvc / baseline at least this.
    Ratio(f64),
    /// netsvc rate at least this.
    Rate(f64),
}

impl Goal {
    /// Whether the figures meet the target.
    fn met(self, netsvc: f64, baseline: f64) -> bool {
        match self {
            Goal::Ratio(r) => netsvc / baseline >= r,
            Goal::Rate(r) => netsvc >= r,
        }
    }

    /// The target as shown in the table.
    fn describe(self) -> String {
        match self {
            Goal::Ratio(r) => format!(">= {r:.2}x baseline"),
            Goal::Rate(r) => format!(">= {}/s", compact(r)),
        }
    }
}

/// One workload: its two sides and its target.
struct Workload {
    /// Name, as printed and in the JSON output.
    name: &'static str,
    /// Unit of both rates.
    unit: &'static str,
    /// What netsvc should achieve.
    goal: Goal,
    /// One run of the netsvc side.
    netsvc: fn(&Plan) -> RunResult,
    /// One run of the bare actix baseline.
    baseline: fn(&Plan) -> RunResult,
}

/// Every local workload, in the order they run.
const WORKLOADS: &[Workload] = &[
    Workload {
        name: "request_roundtrip_1_in_flight",
        unit: "round_trips/s",
        goal: Goal::Ratio(0.5),
        netsvc: roundtrip::netsvc,
        baseline: roundtrip::baseline,
    },
    Workload {
        name: "report_delivery_10_subscribers",
        unit: "deliveries/s",
        goal: Goal::Rate(5e6),
        netsvc: reports::netsvc,
        baseline: reports::baseline,
    },
];

/// Rates of every measured run of one side.
#[derive(Debug, Default)]
struct Rates(Vec<f64>);

impl Rates {
    /// The rates, lowest first.
    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The highest rate (NaN when there were no runs).
    fn best(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }

    /// The median rate (NaN when there were no runs).
    fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    /// `min..max`, compactly.
    fn range(&self) -> String {
        range(self.0.iter().copied())
    }
}

/// Runs the local workloads and prints their figures. Fails if a run fails (lost deliveries,
/// a failed request, a stall).
pub(crate) fn run(args: &LocalArgs) -> std::process::ExitCode {
    let plan = Plan {
        round_trips: args
            .round_trips
            .unwrap_or(if args.quick { 20_000 } else { 300_000 })
            .max(1),
        reports: args
            .reports
            .unwrap_or(if args.quick { 10_000 } else { 200_000 })
            .max(1),
        subscribers: 10,
        batch: args.batch.max(1),
        yield_between_batches: !args.no_yield,
    };
    let reps = args.reps.unwrap_or(if args.quick { 3 } else { 7 }).max(1);
    let selected: Vec<&Workload> = WORKLOADS
        .iter()
        .filter(|w| match args.only.as_deref() {
            Some(only) => w.name.contains(only),
            None => true,
        })
        .collect();
    if selected.is_empty() {
        eprintln!(
            "no workload matches {:?}",
            args.only.as_deref().unwrap_or("")
        );
        return std::process::ExitCode::FAILURE;
    }

    if !args.json {
        println!(
            "netsvc-bench local: {} of {reps} runs per side after 1 warm-up run, sides alternating, \
             each run in a fresh actix System on one arbiter",
            args.stat.describe()
        );
        println!();
        println!(
            "{:<32} {:>12} {:>12} {:<14} {:>6}  {:<20} {:<4}",
            "workload", "netsvc", "baseline", "unit", "ratio", "target", "met"
        );
    }
    let mut failed = false;
    for workload in selected {
        match measure(workload, &plan, reps, args.side) {
            Ok((netsvc, baseline)) => {
                let (n, b) = (args.stat.of(&netsvc), args.stat.of(&baseline));
                let ratio = n / b;
                if args.json {
                    let line = JsonLine {
                        workload: workload.name,
                        netsvc: n,
                        baseline: b,
                        unit: workload.unit,
                        ratio,
                    };
                    if let Err(e) = line.print() {
                        eprintln!("error: {e}");
                        failed = true;
                    }
                } else {
                    println!(
                        "{:<32} {:>12} {:>12} {:<14} {:>6.2}  {:<20} {:<4}",
                        workload.name,
                        thousands(n),
                        thousands(b),
                        workload.unit,
                        ratio,
                        workload.goal.describe(),
                        if workload.goal.met(n, b) { "yes" } else { "NO" }
                    );
                    println!(
                        "{:<32} {:>12} {:>12}",
                        "  (range min..max)",
                        netsvc.range(),
                        baseline.range()
                    );
                }
            }
            Err(e) => {
                eprintln!("error: {}: {e}", workload.name);
                failed = true;
            }
        }
    }
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}

/// One warm-up run per side, then `reps` alternating measured runs per side.
fn measure(
    workload: &Workload,
    plan: &Plan,
    reps: usize,
    side: Side,
) -> Result<(Rates, Rates), String> {
    let (run_netsvc, run_baseline) = (side != Side::Baseline, side != Side::Netsvc);
    if run_netsvc {
        (workload.netsvc)(plan).map_err(|e| format!("netsvc warm-up: {e}"))?;
    }
    if run_baseline {
        (workload.baseline)(plan).map_err(|e| format!("baseline warm-up: {e}"))?;
    }
    let (mut netsvc, mut baseline) = (Rates::default(), Rates::default());
    for _ in 0..reps {
        if run_netsvc {
            netsvc.0.push(
                (workload.netsvc)(plan)
                    .map_err(|e| format!("netsvc: {e}"))?
                    .rate(),
            );
        }
        if run_baseline {
            baseline.0.push(
                (workload.baseline)(plan)
                    .map_err(|e| format!("baseline: {e}"))?
                    .rate(),
            );
        }
    }
    Ok((netsvc, baseline))
}

/// Runs `body` in a fresh actix System and returns its outcome once it completes.
fn in_fresh_system<F: Future<Output = RunResult>>(body: F) -> RunResult {
    actix::System::new().block_on(body)
}

/// How long a run may go without progress before it is declared stuck.
const STALL: Duration = Duration::from_secs(3);

/// Waits for `rx`, failing if `progress` stops moving for [`STALL`] or the sender is dropped.
async fn wait_for<T>(
    mut rx: oneshot::Receiver<T>,
    progress: impl Fn() -> u64,
) -> Result<T, String> {
    let mut last = progress();
    loop {
        match tokio::time::timeout(STALL, &mut rx).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(_)) => return Err("the run ended without reporting its result".to_owned()),
            Err(_) => {
                let now = progress();
                if now == last {
                    return Err(format!(
                        "no progress for {STALL:?} (progress counter at {now})"
                    ));
                }
                last = now;
            }
        }
    }
}

/// Schedules the next batch: `ctx.notify(msg)`, after yielding to the other actors of the
/// arbiter unless `yield_first` is false.
///
/// A plain `ctx.notify` does not let anyone else run: actix queues the notification as an item
/// of the actor's own context and handles it in the same poll, before the actor's task returns.
/// Yielding first (a spawned `tokio::task::yield_now`) ends the poll, so the subscribers drain
/// what the batch queued before the next batch is published.
fn next_batch<A, M>(ctx: &mut A::Context, msg: M, yield_first: bool)
where
    A: Actor + Handler<M>,
    A::Context: AsyncContext<A>,
    M: Message + 'static,
{
    if yield_first {
        ctx.spawn(
            actix::fut::wrap_future::<_, A>(tokio::task::yield_now())
                .map(move |(), _act: &mut A, ctx: &mut A::Context| ctx.notify(msg)),
        );
    } else {
        ctx.notify(msg);
    }
}

/// `request_roundtrip_1_in_flight`.
mod roundtrip {
    use super::*;

    /// The requester's loop, identical for both sides: `calls` sequential calls of
    /// `add(i, 1)`, checking the sum of the answers. `progress` is updated every 1024 calls.
    async fn call_loop<F, Fut, E>(calls: u64, progress: Arc<AtomicU64>, mut add: F) -> RunResult
    where
        F: FnMut(u64, u64) -> Fut,
        Fut: Future<Output = Result<u64, E>>,
        E: std::fmt::Display,
    {
        let start = Instant::now();
        let mut sum = 0u64;
        for i in 0..calls {
            sum = sum.wrapping_add(
                add(i, 1)
                    .await
                    .map_err(|e| format!("call {i} failed: {e}"))?,
            );
            if i % 1024 == 0 {
                progress.store(i, Ordering::Relaxed);
            }
        }
        let elapsed = start.elapsed();
        let expected = (calls * calls.saturating_sub(1) / 2).wrapping_add(calls);
        if sum != expected {
            return Err(format!("wrong answers: sum {sum}, expected {expected}"));
        }
        Ok(Sample {
            ops: calls,
            elapsed,
        })
    }

    /// The responder service and its generated client.
    mod service {
        use netsvc::prelude::*;

        /// The responder: exports `add`.
        #[derive(netsvc::Service)]
        #[service(name = "bench-adder")]
        pub(crate) struct Adder;

        impl Service for Adder {}

        #[netsvc::methods]
        impl Adder {
            /// `a + b` (wrapping).
            fn add(&mut self, a: u64, b: u64) -> u64 {
                a.wrapping_add(b)
            }
        }
    }
    use service::{Adder, AdderClient};

    /// The requester service: runs [`call_loop`] through the typed client from its `started`
    /// hook, as a future spawned on its own context.
    #[derive(netsvc::Service)]
    struct Requester {
        /// The `Adder` to call.
        responder: Binding,
        /// How many calls.
        calls: u64,
        /// Calls done so far (roughly), for stall detection.
        progress: Arc<AtomicU64>,
        /// Where the outcome goes.
        done: Option<oneshot::Sender<RunResult>>,
    }

    impl Service for Requester {
        fn started(&mut self, ctx: &mut ServiceContext<Self>) {
            let client = AdderClient::new(ctx.endpoint(&self.responder));
            let (calls, progress, done) = (self.calls, self.progress.clone(), self.done.take());
            ctx.spawn(actix::fut::wrap_future(async move {
                let outcome = call_loop(calls, progress, |a, b| client.add(a, b)).await;
                if let Some(done) = done {
                    let _ = done.send(outcome);
                }
            }));
        }
    }

    /// netsvc side: an `Adder` service and a `Requester` service on the System's arbiter.
    pub(super) fn netsvc(plan: &Plan) -> RunResult {
        let calls = plan.round_trips;
        in_fresh_system(async move {
            let node = Node::new("bench");
            let adder = node.spawn(Adder);
            let (tx, rx) = oneshot::channel();
            let progress = Arc::new(AtomicU64::new(0));
            node.spawn(Requester {
                responder: adder.binding.clone(),
                calls,
                progress: progress.clone(),
                done: Some(tx),
            });
            wait_for(rx, || progress.load(Ordering::Relaxed)).await?
        })
    }

    /// The baseline request.
    #[derive(actix::Message)]
    #[rtype(result = "u64")]
    struct Add(u64, u64);

    /// The baseline responder.
    struct PlainAdder;

    impl Actor for PlainAdder {
        type Context = actix::Context<Self>;
    }

    impl Handler<Add> for PlainAdder {
        type Result = u64;
        fn handle(&mut self, Add(a, b): Add, _: &mut Self::Context) -> u64 {
            a.wrapping_add(b)
        }
    }

    /// The baseline requester: runs [`call_loop`] with `addr.send` from its `started` hook.
    struct PlainRequester {
        /// The `PlainAdder` to call.
        responder: actix::Addr<PlainAdder>,
        /// How many calls.
        calls: u64,
        /// Calls done so far (roughly), for stall detection.
        progress: Arc<AtomicU64>,
        /// Where the outcome goes.
        done: Option<oneshot::Sender<RunResult>>,
    }

    impl Actor for PlainRequester {
        type Context = actix::Context<Self>;
        fn started(&mut self, ctx: &mut Self::Context) {
            let addr = self.responder.clone();
            let (calls, progress, done) = (self.calls, self.progress.clone(), self.done.take());
            ctx.spawn(actix::fut::wrap_future(async move {
                let outcome = call_loop(calls, progress, |a, b| addr.send(Add(a, b))).await;
                if let Some(done) = done {
                    let _ = done.send(outcome);
                }
            }));
        }
    }

    /// Baseline side: bare actix actors on the System's arbiter.
    pub(super) fn baseline(plan: &Plan) -> RunResult {
        let calls = plan.round_trips;
        in_fresh_system(async move {
            let adder = PlainAdder.start();
            let (tx, rx) = oneshot::channel();
            let progress = Arc::new(AtomicU64::new(0));
            PlainRequester {
                responder: adder,
                calls,
                progress: progress.clone(),
                done: Some(tx),
            }
            .start();
            wait_for(rx, || progress.load(Ordering::Relaxed)).await?
        })
    }
}

/// `report_delivery_10_subscribers`.
mod reports {
    use super::*;

    /// What every subscriber of a run records, readable from outside the actors.
    struct Tally {
        /// M: the deliveries each subscriber must get.
        per_subscriber: u64,
        /// Deliveries per subscriber (stored by the subscriber after each delivery).
        counts: Vec<AtomicU64>,
        /// Sum of the delivered values per subscriber.
        sums: Vec<AtomicU64>,
        /// Deliveries whose content was not the expected `u64`.
        bad: AtomicU64,
        /// Subscribers that have received their M deliveries.
        finished: AtomicUsize,
        /// When the publisher started its first batch.
        start: Mutex<Option<Instant>>,
        /// Told when the last subscriber has received its M deliveries.
        done: Mutex<Option<oneshot::Sender<Instant>>>,
    }

    impl Tally {
        /// A tally for `plan.subscribers` subscribers; `done` is told the end time.
        fn new(plan: &Plan, done: oneshot::Sender<Instant>) -> Arc<Tally> {
            Arc::new(Tally {
                per_subscriber: plan.reports,
                counts: (0..plan.subscribers).map(|_| AtomicU64::new(0)).collect(),
                sums: (0..plan.subscribers).map(|_| AtomicU64::new(0)).collect(),
                bad: AtomicU64::new(0),
                finished: AtomicUsize::new(0),
                start: Mutex::new(None),
                done: Mutex::new(Some(done)),
            })
        }

        /// Records the start of publishing.
        fn mark_start(&self) {
            *self.start.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        }

        /// Deliveries so far, over all subscribers.
        fn delivered(&self) -> u64 {
            self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
        }

        /// Waits until every subscriber is done, lets stray extra deliveries arrive, and checks
        /// that each subscriber got exactly M deliveries with the right sum.
        async fn outcome(&self, rx: oneshot::Receiver<Instant>) -> RunResult {
            let end = wait_for(rx, || self.delivered()).await.map_err(|e| {
                format!(
                    "{e}; delivered {} of {}",
                    self.delivered(),
                    self.per_subscriber * self.counts.len() as u64
                )
            })?;
            tokio::time::sleep(Duration::from_millis(20)).await;
            let m = self.per_subscriber;
            let expected_sum = m * m.saturating_sub(1) / 2;
            let mut problems = Vec::new();
            for (i, (count, sum)) in self.counts.iter().zip(&self.sums).enumerate() {
                let (count, sum) = (count.load(Ordering::Relaxed), sum.load(Ordering::Relaxed));
                if count != m || sum != expected_sum {
                    problems.push(format!(
                        "subscriber {i}: {count} deliveries (sum {sum}), expected {m} (sum {expected_sum})"
                    ));
                }
            }
            let bad = self.bad.load(Ordering::Relaxed);
            if bad > 0 {
                problems.push(format!("{bad} deliveries with unexpected content"));
            }
            if !problems.is_empty() {
                return Err(format!(
                    "deliveries lost or duplicated: {}",
                    problems.join("; ")
                ));
            }
            let start = self
                .start
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .ok_or("no start time recorded")?;
            Ok(Sample {
                ops: m * self.counts.len() as u64,
                elapsed: end.saturating_duration_since(start),
            })
        }
    }

    /// One subscriber's counting, identical for both sides.
    struct Counter {
        /// This subscriber's slot in the tally.
        index: usize,
        /// Deliveries so far.
        seen: u64,
        /// Sum of the delivered values so far.
        sum: u64,
        /// Where the counts are published.
        tally: Arc<Tally>,
    }

    impl Counter {
        /// The counter of subscriber `index`.
        fn new(index: usize, tally: &Arc<Tally>) -> Self {
            Counter {
                index,
                seen: 0,
                sum: 0,
                tally: tally.clone(),
            }
        }

        /// Counts one delivered value; the last delivery of the last subscriber ends the run.
        #[inline]
        fn record(&mut self, value: u64) {
            self.seen += 1;
            self.sum = self.sum.wrapping_add(value);
            // Plain stores (no read-modify-write): only this subscriber writes its slots.
            self.tally.counts[self.index].store(self.seen, Ordering::Relaxed);
            self.tally.sums[self.index].store(self.sum, Ordering::Relaxed);
            if self.seen == self.tally.per_subscriber
                && self.tally.finished.fetch_add(1, Ordering::Relaxed) + 1
                    == self.tally.counts.len()
            {
                let done = self
                    .tally
                    .done
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                if let Some(done) = done {
                    let _ = done.send(Instant::now());
                }
            }
        }
    }

    /// Publishing progress, identical for both sides.
    pub(super) struct Batches {
        /// Reports published so far.
        sent: u64,
        /// Reports to publish.
        total: u64,
        /// Reports per batch.
        batch: u64,
    }

    impl Batches {
        /// `0..total` in batches of `batch`.
        pub(super) fn new(total: u64, batch: u64) -> Self {
            Batches {
                sent: 0,
                total,
                batch,
            }
        }

        /// The values of the next batch (empty when everything is sent).
        pub(super) fn next(&mut self) -> std::ops::Range<u64> {
            let end = (self.sent + self.batch).min(self.total);
            let range = self.sent..end;
            self.sent = end;
            range
        }

        /// Whether every report is published.
        pub(super) fn finished(&self) -> bool {
            self.sent >= self.total
        }
    }

    /// Publish the next batch (a user actix message, handled by both publishers).
    #[derive(actix::Message)]
    #[rtype(result = "()")]
    struct PublishBatch;

    /// The netsvc publisher: waits for its subscribers, then publishes in batches.
    #[derive(netsvc::Service)]
    #[service(name = "bench-publisher")]
    struct Publisher {
        /// Subscriptions to wait for before publishing.
        subscribers: usize,
        /// Subscriptions so far.
        subscribed: usize,
        /// Publishing progress.
        batches: Batches,
        /// Whether to yield between batches (see [`next_batch`]).
        yield_between_batches: bool,
        /// Where the start time goes.
        tally: Arc<Tally>,
    }

    impl Service for Publisher {
        fn subscription(&mut self, notice: SubscriptionNotice, ctx: &mut ServiceContext<Self>) {
            if notice.status == netsvc::SubscriptionStatus::Requested {
                self.subscribed += 1;
                if self.subscribed == self.subscribers {
                    self.tally.mark_start();
                    ctx.notify(PublishBatch);
                }
            }
        }
    }

    impl Handler<PublishBatch> for Publisher {
        type Result = ();
        fn handle(&mut self, _: PublishBatch, ctx: &mut ServiceContext<Self>) {
            for i in self.batches.next() {
                ctx.publish_report("bench.tick", i, Lifetime::None);
            }
            if !self.batches.finished() {
                next_batch::<Self, _>(ctx, PublishBatch, self.yield_between_batches);
            }
        }
    }

    /// A netsvc subscriber of `bench.*` from `bench-publisher`.
    #[derive(netsvc::Service)]
    struct Subscriber(Counter);

    impl Service for Subscriber {
        fn started(&mut self, ctx: &mut ServiceContext<Self>) {
            ctx.monitor_reports("bench-publisher", "bench.*");
        }

        fn report(&mut self, report: Report, _ctx: &mut ServiceContext<Self>) {
            match report.decode::<u64>() {
                Ok(value) => self.0.record(value),
                Err(_) => {
                    self.0.tally.bad.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// netsvc side: one publisher and the subscribers as services on the System's arbiter.
    pub(super) fn netsvc(plan: &Plan) -> RunResult {
        let plan = *plan;
        in_fresh_system(async move {
            let (tx, rx) = oneshot::channel();
            let tally = Tally::new(&plan, tx);
            let node = Node::new("bench");
            node.spawn(Publisher {
                subscribers: plan.subscribers,
                subscribed: 0,
                batches: Batches::new(plan.reports, plan.batch),
                yield_between_batches: plan.yield_between_batches,
                tally: tally.clone(),
            });
            for i in 0..plan.subscribers {
                node.spawn(Subscriber(Counter::new(i, &tally)));
            }
            tally.outcome(rx).await
        })
    }

    /// The baseline message: the value shared between subscribers as netsvc shares content.
    #[derive(actix::Message)]
    #[rtype(result = "()")]
    struct Tick(Arc<u64>);

    /// The baseline publisher: `do_send` to every subscriber, in batches.
    struct PlainPublisher {
        /// Every subscriber.
        subscribers: Vec<Recipient<Tick>>,
        /// Publishing progress.
        batches: Batches,
        /// Whether to yield between batches (see [`next_batch`]).
        yield_between_batches: bool,
        /// Where the start time goes.
        tally: Arc<Tally>,
    }

    impl Actor for PlainPublisher {
        type Context = actix::Context<Self>;
        fn started(&mut self, ctx: &mut Self::Context) {
            self.tally.mark_start();
            ctx.notify(PublishBatch);
        }
    }

    impl Handler<PublishBatch> for PlainPublisher {
        type Result = ();
        fn handle(&mut self, _: PublishBatch, ctx: &mut Self::Context) {
            for i in self.batches.next() {
                let value = Arc::new(i);
                for subscriber in &self.subscribers {
                    subscriber.do_send(Tick(value.clone()));
                }
            }
            if !self.batches.finished() {
                next_batch::<Self, _>(ctx, PublishBatch, self.yield_between_batches);
            }
        }
    }

    /// A baseline subscriber.
    struct PlainSubscriber(Counter);

    impl Actor for PlainSubscriber {
        type Context = actix::Context<Self>;
    }

    impl Handler<Tick> for PlainSubscriber {
        type Result = ();
        fn handle(&mut self, Tick(value): Tick, _: &mut Self::Context) {
            self.0.record(*value);
        }
    }

    /// Baseline side: bare actix actors on the System's arbiter.
    pub(super) fn baseline(plan: &Plan) -> RunResult {
        let plan = *plan;
        in_fresh_system(async move {
            let (tx, rx) = oneshot::channel();
            let tally = Tally::new(&plan, tx);
            let subscribers = (0..plan.subscribers)
                .map(|i| PlainSubscriber(Counter::new(i, &tally)).start().recipient())
                .collect();
            PlainPublisher {
                subscribers,
                batches: Batches::new(plan.reports, plan.batch),
                yield_between_batches: plan.yield_between_batches,
                tally: tally.clone(),
            }
            .start();
            tally.outcome(rx).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_712_345.0), "1,712,345");
        assert_eq!(thousands(-12_345.0), "-12,345");
        assert_eq!(thousands(f64::NAN), "NaN");
    }

    #[test]
    fn rates_summaries() {
        let rates = Rates(vec![3.0, 1.0, 2.0, 10.0]);
        assert_eq!(rates.best(), 10.0);
        assert_eq!(rates.median(), 2.5);
        assert!(Rates::default().best().is_nan());
        assert_eq!(Rates(vec![5.0, 1.0, 3.0]).median(), 3.0);
    }

    #[test]
    fn batches_cover_every_value_once() {
        let mut batches = reports::Batches::new(2_500, 1_000);
        let mut seen = Vec::new();
        while !batches.finished() {
            seen.extend(batches.next());
        }
        assert_eq!(seen, (0..2_500).collect::<Vec<_>>());
    }

    #[test]
    fn quick_run_succeeds() {
        let plan = Plan {
            round_trips: 2_000,
            reports: 2_000,
            subscribers: 10,
            batch: 500,
            yield_between_batches: true,
        };
        for workload in WORKLOADS {
            for side in [workload.netsvc, workload.baseline] {
                let sample = side(&plan).unwrap_or_else(|e| panic!("{}: {e}", workload.name));
                assert!(sample.rate() > 0.0);
            }
        }
    }
}
