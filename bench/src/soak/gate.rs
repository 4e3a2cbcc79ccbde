//! The consumer's counting and lockstep, pure logic: every report and answer counted and
//! checked, and the two streams kept within a few percent of each other (see `soak.rs`).

use std::time::Duration;

use super::protocol::{ConsumerOutcome, Traffic};
use crate::stats::Histogram;

/// Share of the totals one stream may run ahead of the other (1/50 = 2 %).
const LOCKSTEP_SLACK: u64 = 50;

/// What the next request worker may do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Issue {
    /// Make request `i`.
    Go(u64),
    /// Wait: the requests are ahead of the reports.
    Wait,
    /// Every request has been made.
    Done,
}

/// What follows from one report or answer.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Step {
    /// Wake the waiting request workers.
    pub(crate) wake_requests: bool,
    /// Acknowledge this many reports to the publisher.
    pub(crate) ack: Option<u64>,
    /// Tenths of progress newly reached.
    pub(crate) tenths: std::ops::Range<u32>,
}

/// The consumer's counting and lockstep (pure logic).
#[derive(Debug)]
pub(crate) struct Gate {
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
    pub(crate) fn new(reports: u64, requests: u64, ack_every: u64, in_flight: usize) -> Gate {
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
    pub(crate) fn report(&mut self, seq: Option<u64>) -> Step {
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
    pub(crate) fn issue(&mut self) -> Issue {
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
    pub(crate) fn answer(&mut self, latency: Duration, outcome: Result<(), String>) -> Step {
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
    pub(crate) fn fail(&mut self, message: String) {
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
    pub(crate) fn position(&self) -> (u64, u64, u64) {
        (self.received, self.answered, self.failed)
    }

    /// The counts, for a message.
    pub(crate) fn describe(&self) -> String {
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

    /// The consumer's outcome: these counts, the workload's `elapsed` time, and the
    /// consumer's and the hub's exchange counters.
    pub(crate) fn outcome(
        &self,
        elapsed: Duration,
        traffic: Traffic,
        hub: Traffic,
    ) -> ConsumerOutcome {
        ConsumerOutcome {
            received: self.received,
            lost: self.lost,
            late: self.late,
            corrupt: self.corrupt,
            answered: self.answered - self.failed_answers,
            failed: self.failed,
            first_failure: self.first_failure.clone(),
            p50_us: self.latency.quantile(0.50),
            p99_us: self.latency.quantile(0.99),
            elapsed_ns: elapsed.as_nanos() as u64,
            traffic,
            hub,
        }
    }

    /// Whether every report has been seen and every request answered.
    pub(crate) fn complete(&self) -> bool {
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
    fn scale_rounds_down() {
        assert_eq!(scale(5, 10, 100), 50);
        assert_eq!(scale(1, 3, 10), 3);
        assert_eq!(scale(10_000_000, 10_000_000, 1_000_000), 1_000_000);
        assert_eq!(scale(1, 0, 7), 7);
    }
}
