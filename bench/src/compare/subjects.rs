//! The many-subject report workload (`reports_1_to_100`), what every side shares: which
//! subject a report goes on, which subscriber gets it, and the subscriber's checking.
//!
//! Report `r` goes on subject `g{k}.s{j}`, `j = r % subjects`, `k = j % GROUPS`; subscriber
//! service `m` subscribes to `g{m % GROUPS}.*` (a glob prefix on netsvc, a token wildcard on
//! NATS: the same subjects match). With `subjects` a multiple of [`GROUPS`], `k = r % GROUPS`,
//! so every report reaches the `services / GROUPS` subscribers of its group, and each
//! subscriber one report in [`GROUPS`], over `subjects / GROUPS` subjects of its own.
//!
//! A subscriber acknowledges its progress in the publisher's numbering (one more than the
//! sequence number of the last report it got: it has every report of its own before that),
//! so that the publisher's [`Pace`](crate::pace::Pace) works as in the one-subject workloads.

use super::protocol::SubscribeOutcome;

/// Subscriber groups: the subjects are dealt out over this many patterns.
pub(crate) const GROUPS: u64 = 10;

/// The subjects, `g{j % GROUPS}.s{j}` for `j` in `0..subjects`.
pub(crate) fn subjects(subjects: u64) -> Vec<String> {
    (0..subjects)
        .map(|j| format!("g{}.s{j}", j % GROUPS))
        .collect()
}

/// The pattern of subscriber service `m`.
pub(crate) fn pattern(m: u64) -> String {
    format!("g{}.*", m % GROUPS)
}

/// How many of reports `0..total` subscriber service `m` gets.
pub(crate) fn expected(m: u64, total: u64) -> u64 {
    total / GROUPS + u64::from(m % GROUPS < total % GROUPS)
}

/// Deliveries of `total` reports to `services` subscriber services.
pub(crate) fn deliveries(total: u64, services: u64) -> u64 {
    (0..services).map(|m| expected(m, total)).sum()
}

/// A subscriber acknowledges every this many of its reports, so that the publisher hears
/// from it as often, in reports published, as from a subscriber of every report that
/// acknowledges every `ack_every`.
pub(crate) fn ack_interval(ack_every: u64) -> u64 {
    (ack_every / GROUPS).max(1)
}

/// The subject index `j` of a subject `g{k}.s{j}`, if it is one and `k` is right for `j`.
fn index_of(subject: &str) -> Option<u64> {
    let (group, index) = subject.strip_prefix('g')?.split_once(".s")?;
    let (group, index) = (group.parse::<u64>().ok()?, index.parse::<u64>().ok()?);
    (index % GROUPS == group).then_some(index)
}

/// One subscriber service's counting and checking: every report on a subject of its group,
/// for each subject the reports of that subject in order with none missing (report `j`,
/// then `j + subjects`, ...), its sequence number agreeing with its subject.
#[derive(Debug)]
pub(crate) struct SubjectTally {
    /// Reports published in all.
    total: u64,
    /// Subjects the publisher cycles over.
    subjects: u64,
    /// This subscriber's group.
    group: u64,
    /// Reports expected by this subscriber.
    expected: u64,
    /// Acknowledge every this many.
    ack_every: u64,
    /// The next sequence number expected on each subject of the group (subject `j` at
    /// `j / GROUPS`).
    next: Vec<u64>,
    /// Reports received.
    pub(crate) received: u64,
    /// Reports on a subject not of this group, or out of their subject's sequence.
    pub(crate) out_of_order: u64,
}

impl SubjectTally {
    /// The tally of subscriber service `m` of `total` reports over `subjects` subjects
    /// (a multiple of [`GROUPS`]), acknowledging every [`ack_interval`]`(ack_every)`.
    pub(crate) fn new(m: u64, total: u64, subjects: u64, ack_every: u64) -> Self {
        let group = m % GROUPS;
        SubjectTally {
            total,
            subjects,
            group,
            expected: expected(m, total),
            ack_every: ack_interval(ack_every),
            next: (0..subjects / GROUPS).map(|i| i * GROUPS + group).collect(),
            received: 0,
            out_of_order: 0,
        }
    }

    /// Counts a report on `subject` with sequence number `seq`; returns the progress to
    /// acknowledge, if this report calls for an acknowledgement: `seq + 1`, or every report
    /// once the last expected one is in.
    pub(crate) fn record(&mut self, subject: &str, seq: Option<u64>) -> Option<u64> {
        self.received += 1;
        let slot = index_of(subject)
            .filter(|j| j % GROUPS == self.group && *j < self.subjects)
            .and_then(|j| self.next.get_mut((j / GROUPS) as usize));
        match (slot, seq) {
            (Some(next), Some(seq)) if seq == *next => *next += self.subjects,
            _ => self.out_of_order += 1,
        }
        if self.received == self.expected {
            Some(self.total)
        } else if self.received.is_multiple_of(self.ack_every) {
            seq.map(|s| s + 1)
        } else {
            None
        }
    }

    /// Whether every expected report has arrived.
    pub(crate) fn complete(&self) -> bool {
        self.received >= self.expected
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
    fn every_report_reaches_one_group() {
        let names = subjects(1000);
        assert_eq!(names[0], "g0.s0");
        assert_eq!(names[997], "g7.s997");
        assert_eq!(pattern(43), "g3.*");
        assert_eq!(expected(3, 25), 3);
        assert_eq!(expected(7, 25), 2);
        assert_eq!(deliveries(25, 100), 250);
        assert_eq!(index_of("g7.s997"), Some(997));
        assert_eq!(index_of("g6.s997"), None);
        assert_eq!(index_of("bench.x"), None);
    }

    #[test]
    fn the_tally_checks_each_subject_in_order() {
        // Subscriber 3 of 40 reports over 20 subjects: 3, 13, 23, 33 on g3.s3 and g3.s13.
        let mut tally = SubjectTally::new(3, 40, 20, 20);
        assert_eq!(tally.record("g3.s3", Some(3)), None);
        assert_eq!(tally.record("g3.s13", Some(13)), Some(14));
        assert_eq!(tally.record("g3.s3", Some(43)), None, "23 is missing");
        assert_eq!(tally.out_of_order, 1);
        let mut tally = SubjectTally::new(3, 40, 20, 20);
        assert_eq!(tally.record("g3.s3", Some(3)), None);
        assert_eq!(tally.record("g3.s3", Some(3)), Some(4), "a duplicate");
        assert_eq!(tally.out_of_order, 1);
        let mut tally = SubjectTally::new(3, 40, 20, 20);
        assert_eq!(
            tally.record("g4.s4", Some(4)),
            None,
            "another group's report"
        );
        assert_eq!(tally.out_of_order, 1);
        let mut tally = SubjectTally::new(3, 40, 20, 20);
        for seq in [3, 13, 23, 33] {
            tally.record(&format!("g3.s{}", seq % 20), Some(seq));
        }
        assert!(tally.complete());
        assert_eq!(tally.out_of_order, 0);
        assert_eq!(tally.record("g3.s3", Some(43)), None);
        assert_eq!(tally.outcome().received, 5);
    }
}
