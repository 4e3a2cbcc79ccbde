//! The measuring and counting of the roles, identical for netsvc and NATS: the requester's
//! request loop and the subscriber's tally.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::time::Instant;

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::protocol::{RequestOutcome, RoleArgs, SubscribeOutcome, ROLE_LIMIT};
use crate::roles::{self, SETUP};
use crate::stats::percentile;

/// The requester's work: `--warmup` unmeasured sequential requests (within [`SETUP`]), then
/// `--count` measured ones, `--in-flight` at a time (within [`ROLE_LIMIT`]), printed as the
/// `RESULT`. `call(i)` makes request `i` and resolves to the sequence number echoed back.
pub(crate) async fn requests<F, Fut>(args: &RoleArgs, call: F) -> Result<(), String>
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Result<u64, String>>,
{
    tokio::time::timeout(SETUP, drive_requests(args.warmup, 1, &call))
        .await
        .map_err(|_| format!("warm-up not done within {SETUP:?}"))??;
    let outcome = tokio::time::timeout(
        ROLE_LIMIT,
        drive_requests(args.count, args.in_flight, &call),
    )
    .await
    .map_err(|_| format!("requests not done within {ROLE_LIMIT:?}"))??;
    roles::result(&outcome)
}

/// Runs `count` requests, `in_flight` at a time, and measures them: `in_flight` looping
/// futures polled by one `FuturesUnordered` on the calling task.
async fn drive_requests<F, Fut>(
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
        max_ns: latencies.last().copied().unwrap_or(0),
    })
}

/// A subscriber's counting.
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
}
