//! The consumer process of `soak`: a subscriber of `soak.*` on `soak-publisher` that checks
//! every report's sequence number and body, and a client making the requests to
//! `soak-server`, `--in-flight` at a time, checking every answer; the two kept in lockstep by
//! the gate (`gate.rs`), which also says when to print `PROGRESS k`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use netsvc::prelude::*;
use netsvc::Exchange;
use tokio::sync::Notify;

use super::gate::{Gate, Issue, Step};
use super::hub::HubClient;
use super::producer::{PublisherClient, ServerClient};
use super::protocol::{
    answer, SoakRoleArgs, Traffic, HUB, PATTERN, PUBLISHER, ROLE_LIMIT, SERVER, SETTLE,
};
use super::settings::Plan;
use crate::payload::{checked_seq, payload, seq_of};
use crate::roles::Blob;
use crate::{mesh, roles};

/// The consumer: subscribes, makes the requests, counts and checks everything, prints
/// `PROGRESS k` at every tenth and its figures at the end.
pub(crate) async fn consumer(args: &SoakRoleArgs, plan: &Plan) -> Result<(), String> {
    let node = Node::new("soak-consumer");
    let exchange = mesh::join(&node, &args.server, None).await?;
    let server = mesh::find(&node, SERVER).await?;
    let hub = mesh::find(&node, HUB).await?;
    let probe = ServerClient::new(node.endpoint(&server).with_timeout(Duration::from_secs(1)));
    mesh::probe(SERVER, || probe.ping()).await?;

    let shared = Rc::new(Shared {
        gate: RefCell::new(Gate::new(
            plan.reports,
            plan.requests,
            plan.ack_every,
            plan.in_flight,
        )),
        publisher: RefCell::new(None),
        wake: Notify::new(),
    });
    let start = Instant::now();
    node.spawn(Subscriber {
        shared: shared.clone(),
    });
    roles::ready("");

    let call_timeout = Duration::from_secs(args.call_timeout.max(1));
    let client = ServerClient::new(node.endpoint(&server).with_timeout(call_timeout));
    let stalled = tokio::select! {
        () = requests(&shared, &client, plan.in_flight) => None,
        stalled = watchdog(&shared, plan.stall) => Some(stalled),
        () = tokio::time::sleep(ROLE_LIMIT) => Some(format!("not done within {ROLE_LIMIT:?}")),
    };
    if let Some(message) = stalled {
        return Err(stalled_error(message, &node, &hub, &server, &exchange).await);
    }
    let elapsed = start.elapsed();
    tokio::time::sleep(SETTLE).await;

    let stats = HubClient::new(node.endpoint(&hub).with_timeout(Duration::from_secs(1)));
    let hub_traffic = mesh::probe(HUB, || stats.stats()).await?;
    let outcome = shared
        .gate
        .borrow()
        .outcome(elapsed, exchange.stats().into(), hub_traffic);
    roles::result(&outcome)
}

/// Makes every request, `in_flight` at a time as the gate allows, then waits until the gate
/// has seen everything.
async fn requests(shared: &Rc<Shared>, client: &ServerClient, in_flight: usize) {
    let mut workers: FuturesUnordered<_> = (0..in_flight.max(1))
        .map(|_| request_worker(shared, client))
        .collect();
    while workers.next().await.is_some() {}
    drop(workers);
    while !shared.gate.borrow().complete() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// One request worker: makes the requests the gate issues, one at a time, checking each
/// answer, until every request has been made.
async fn request_worker(shared: &Rc<Shared>, client: &ServerClient) {
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
            Ok(blob) if checked_seq(&blob.0) == Some(answer(i)) => Ok(()),
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
}

/// Resolves, with the counts, once nothing has moved for `stall`: a stalled run fails here
/// before the driver gives up on it.
async fn watchdog(shared: &Shared, stall: Duration) -> String {
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
}

/// The error of a stalled run: `message`, and what every process dropped (the slow-consumer
/// policy is the usual suspect).
async fn stalled_error(
    message: String,
    node: &Node,
    hub: &Binding,
    server: &Binding,
    exchange: &Exchange,
) -> String {
    let dropped = |traffic: Result<Traffic, Failure>| {
        traffic.map_or_else(
            |f| format!("unknown ({f})"),
            |t| t.reports_dropped.to_string(),
        )
    };
    let quick = Duration::from_secs(1);
    let hub = HubClient::new(node.endpoint(hub).with_timeout(quick))
        .stats()
        .await;
    let producer = ServerClient::new(node.endpoint(server).with_timeout(quick))
        .traffic()
        .await;
    format!(
        "{message}; reports dropped by the slow-consumer policy: hub {}, producer {}, consumer {}",
        dropped(hub),
        dropped(producer),
        exchange.stats().reports_dropped
    )
}

/// The consumer's state, shared by its subscriber service and its request workers (one
/// thread: the actix system's).
struct Shared {
    /// The counting and the lockstep.
    gate: RefCell<Gate>,
    /// The publisher's client, made from the first report's publisher.
    publisher: RefCell<Option<PublisherClient>>,
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

/// Counts and checks `soak.*` reports from `soak-publisher`; acknowledges them.
#[derive(netsvc::Service)]
struct Subscriber {
    /// The consumer's shared state.
    shared: Rc<Shared>,
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
