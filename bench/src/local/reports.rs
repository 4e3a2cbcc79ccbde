//! `report_delivery_10_subscribers`: a publisher sends M reports to each of 10 subscribers,
//! in batches.
//!
//! netsvc: `publish_report("bench.tick", i, Lifetime::None)` with 10 subscribers of
//! `bench.*`. Baseline: `recipient.do_send(Tick(Arc<u64>))` to each of 10 plain actors. Every
//! delivery is counted and its value summed; a run fails unless each subscriber got exactly M
//! deliveries with the expected sum. The figure is deliveries per second.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix::{Actor, ActorFutureExt, AsyncContext, Handler, Message, Recipient};
use netsvc::prelude::*;
use netsvc::SubscriptionNotice;
use tokio::sync::oneshot;

use super::run::{in_fresh_system, wait_for, Plan, RunResult, Sample};

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
            && self.tally.finished.fetch_add(1, Ordering::Relaxed) + 1 == self.tally.counts.len()
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
struct Batches {
    /// Reports published so far.
    sent: u64,
    /// Reports to publish.
    total: u64,
    /// Reports per batch.
    batch: u64,
}

impl Batches {
    /// `0..total` in batches of `batch`.
    fn new(total: u64, batch: u64) -> Self {
        Batches {
            sent: 0,
            total,
            batch,
        }
    }

    /// The values of the next batch (empty when everything is sent).
    fn next(&mut self) -> std::ops::Range<u64> {
        let end = (self.sent + self.batch).min(self.total);
        let range = self.sent..end;
        self.sent = end;
        range
    }

    /// Whether every report is published.
    fn finished(&self) -> bool {
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
pub(crate) fn netsvc(plan: &Plan) -> RunResult {
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
pub(crate) fn baseline(plan: &Plan) -> RunResult {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_every_value_once() {
        let mut batches = Batches::new(2_500, 1_000);
        let mut seen = Vec::new();
        while !batches.finished() {
            seen.extend(batches.next());
        }
        assert_eq!(seen, (0..2_500).collect::<Vec<_>>());
    }
}
