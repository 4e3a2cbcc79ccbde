//! The measuring and counting of the roles, identical for netsvc and NATS: the requester's
//! request loop, the subscriber's tally and the burst subscriber's.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::protocol::{
    unix_ns, BurstReceived, RequestOutcome, RoleArgs, SubscribeOutcome, ROLE_LIMIT,
};
use crate::payload::checked_seq_of;
use crate::roles::{self, SETUP};
use crate::stats::percentile;

/// The requester's work: `--warmup` unmeasured sequential requests (within [`SETUP`]), then
/// (with `--go`, after printing `READY` and reading `GO` on stdin, within [`SETUP`])
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
    if args.go {
        roles::ready("");
        tokio::time::timeout(SETUP, roles::go())
            .await
            .map_err(|_| format!("no GO within {SETUP:?}"))?;
    }
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
    let start_unix_ns = unix_ns();
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
        start_unix_ns,
        end_unix_ns: start_unix_ns + elapsed.as_nanos() as u64,
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

/// A burst subscriber's counting and checking (`burst_unpaced`): report `seq` is on subject
/// `seq % subjects`; per subject, every report must come after the one before it (loss and
/// conflation skip some, nothing may come twice or out of order), every body whole.
#[derive(Debug)]
pub(crate) struct BurstTally {
    /// Reports published.
    total: u64,
    /// Body length.
    body_len: usize,
    /// Time spent on each report, busy.
    spin: Duration,
    /// The subjects, `burst.s<j>`.
    subjects: Vec<String>,
    /// The last sequence number handled per subject.
    last: Vec<Option<u64>>,
    /// The figures so far.
    received: BurstReceived,
}

impl BurstTally {
    /// The tally of a burst of `args.count` reports over `args.subjects` subjects.
    pub(crate) fn new(args: &RoleArgs) -> Self {
        Self::of(args.count, args.subjects, args.body_len, args.spin_ns)
    }

    /// The tally of a burst of `total` reports of `body_len` bytes over `subjects` subjects,
    /// spending `spin_ns` on each.
    fn of(total: u64, subjects: u64, body_len: usize, spin_ns: u64) -> Self {
        let subjects = subjects.max(1);
        BurstTally {
            total,
            body_len,
            spin: Duration::from_nanos(spin_ns),
            subjects: burst_subjects(subjects),
            last: vec![None; subjects as usize],
            received: BurstReceived::default(),
        }
    }

    /// Handles a report on `subject` with `body`, which replaced `conflated` others: checks
    /// it, then spends the subscriber's time on it.
    pub(crate) fn record(&mut self, subject: &str, body: &[u8], conflated: u64) {
        let handled = Instant::now();
        self.received.delivered += 1;
        self.received.conflated += conflated;
        let seq = checked_seq_of(body, self.body_len).filter(|&seq| seq < self.total);
        let slot = seq.map(|seq| (seq, (seq % self.subjects.len() as u64) as usize));
        match slot {
            Some((seq, j)) if self.subjects[j] == subject && self.last[j] < Some(seq) => {
                self.last[j] = Some(seq);
            }
            _ => self.received.bad += 1,
        }
        self.received.last_unix_ns = unix_ns();
        while handled.elapsed() < self.spin {
            std::hint::spin_loop();
        }
    }

    /// The final figures, with this process's peak RSS.
    pub(crate) fn outcome(&self) -> BurstReceived {
        let subjects = self.subjects.len() as u64;
        let with_last = (0..subjects)
            .filter(|&j| {
                self.last[j as usize].is_some_and(|s| s == last_seq(self.total, subjects, j))
            })
            .count() as u64;
        BurstReceived {
            subjects_with_last_value: with_last,
            peak_rss_kib: peak_rss_kib(),
            ..self.received.clone()
        }
    }
}

/// The subjects of `burst_unpaced`, `burst.s<j>` for `j` in `0..subjects`.
pub(crate) fn burst_subjects(subjects: u64) -> Vec<String> {
    (0..subjects).map(|j| format!("burst.s{j}")).collect()
}

/// The last sequence number of `0..total` on subject `j` of `subjects` (`u64::MAX` if none).
fn last_seq(total: u64, subjects: u64, j: u64) -> u64 {
    if total <= j {
        return u64::MAX;
    }
    (total - 1 - j) / subjects * subjects + j
}

/// This process's peak resident set size (`VmHWM` of `/proc/self/status`), in KiB; 0 if
/// unknown.
pub(crate) fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
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
    fn the_burst_tally_knows_every_subject_s_last_value() {
        assert_eq!(last_seq(10, 3, 0), 9);
        assert_eq!(last_seq(10, 3, 1), 7);
        assert_eq!(last_seq(10, 3, 2), 8);
        assert_eq!(last_seq(2, 3, 2), u64::MAX);
        assert!(peak_rss_kib() > 0);
    }

    #[test]
    fn the_burst_tally_takes_gaps_but_no_repeats_or_reorders() {
        use crate::payload::payload_of;
        // 10 reports over 3 subjects: s0 gets 0, 3, 6, 9; s1 gets 1, 4, 7; s2 gets 2, 5, 8.
        let mut tally = BurstTally::of(10, 3, 100, 0);
        for (subject, seq) in [("burst.s0", 0), ("burst.s1", 4), ("burst.s0", 9)] {
            tally.record(subject, &payload_of(seq, 100), 0);
        }
        tally.record("burst.s2", &payload_of(8, 100), 2);
        let outcome = tally.outcome();
        assert_eq!(
            (outcome.delivered, outcome.conflated, outcome.bad),
            (4, 2, 0)
        );
        assert_eq!(outcome.subjects_with_last_value, 2, "s0 and s2, not s1");
        tally.record("burst.s0", &payload_of(9, 100), 0);
        tally.record("burst.s1", &payload_of(1, 100), 0);
        tally.record("burst.s2", &payload_of(7, 100), 0);
        tally.record("burst.s0", &payload_of(10, 100), 0);
        tally.record("burst.s1", &payload_of(7, 99), 0);
        assert_eq!(
            tally.outcome().bad,
            5,
            "a repeat, two reorders, beyond the end, a wrong body"
        );
        let mut misrouted = BurstTally::of(10, 3, 100, 0);
        misrouted.record("burst.s1", &payload_of(3, 100), 0);
        assert_eq!(misrouted.outcome().bad, 1);
    }
}
