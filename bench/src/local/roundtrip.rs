//! `request_roundtrip_1_in_flight`: a requester awaits N sequential calls of `add(a, b)`.
//!
//! netsvc: the generated typed client on a binding-targeted endpoint (no timeout), from a
//! future spawned on the requester service's own context. Baseline: `addr.send(Add(a, b))`
//! from a plain actor to a plain actor. The figure is round trips per second.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actix::{Actor, AsyncContext, Handler};
use netsvc::prelude::*;
use tokio::sync::oneshot;

use super::run::{in_fresh_system, wait_for, Plan, RunResult, Sample};

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
pub(crate) fn netsvc(plan: &Plan) -> RunResult {
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
pub(crate) fn baseline(plan: &Plan) -> RunResult {
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
