//! The producer process of `soak`: a `soak-server` service (`work(seq, body)` checks the
//! body and answers it with `answer(seq)` in place of `seq`) and a `soak-publisher` service
//! publishing `soak.seq` reports, body `seq`, paced by its subscriber's acknowledgements.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use netsvc::prelude::*;
use netsvc::Exchange;
use tokio::sync::oneshot;

use super::protocol::{answer, ProducerOutcome, SoakRoleArgs, Traffic, ROLE_LIMIT, SUBJECT};
use super::settings::Plan;
use crate::pace::Pace;
use crate::payload::{checked_seq, payload};
use crate::roles::Blob;
use crate::{mesh, roles};

/// The producer: serves requests and publishes reports until both are done, prints its
/// figures, then stays (its peers may still call) until killed.
pub(crate) async fn producer(args: &SoakRoleArgs, plan: &Plan) -> Result<(), String> {
    let node = Node::new("soak-producer");
    let exchange = mesh::join(&node, &args.server, None).await?;
    let served = Rc::new(Cell::new(0u64));
    let bad = Rc::new(Cell::new(0u64));
    node.spawn(Server {
        served: served.clone(),
        bad: bad.clone(),
        exchange: exchange.clone(),
    });
    let (done, finished) = oneshot::channel();
    node.spawn(Publisher {
        pace: Pace::new(plan.reports, plan.window, 1),
        started: false,
        done: Some(done),
    });
    roles::ready("");
    let work = async {
        let pace = finished
            .await
            .map_err(|_| "the publisher service stopped".to_owned())?;
        while served.get() + bad.get() < plan.requests {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok::<_, String>(pace)
    };
    let pace = tokio::time::timeout(ROLE_LIMIT, work)
        .await
        .map_err(|_| format!("not done within {ROLE_LIMIT:?}"))??;
    roles::result(&ProducerOutcome {
        published: plan.reports,
        acked: pace.acked()[0],
        served: served.get(),
        bad_requests: bad.get(),
        traffic: exchange.stats().into(),
    })?;
    std::future::pending::<()>().await;
    Ok(())
}

/// Answers `work` requests.
#[derive(netsvc::Service)]
#[service(name = "soak-server")]
struct Server {
    /// Requests answered.
    served: Rc<Cell<u64>>,
    /// Requests refused (wrong body).
    bad: Rc<Cell<u64>>,
    /// The producer's exchange.
    exchange: Exchange,
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
struct Publisher {
    /// Pacing (one subscriber).
    pace: Pace,
    /// Whether the subscriber has subscribed.
    started: bool,
    /// Told the pacing state once every report is acknowledged.
    done: Option<oneshot::Sender<Pace>>,
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
