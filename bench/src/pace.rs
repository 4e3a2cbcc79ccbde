//! Publisher pacing, the same in every report workload of `compare` (netsvc and NATS) and in
//! `soak`: at most a window of reports beyond what the slowest subscriber has acknowledged.

/// The pacing of one publisher.
#[derive(Debug)]
pub(crate) struct Pace {
    /// Reports to publish.
    total: u64,
    /// Most reports ahead of the slowest acknowledgement.
    window: u64,
    /// Reports published so far.
    sent: u64,
    /// Reports acknowledged, per subscriber.
    acked: Vec<u64>,
}

impl Pace {
    /// Pacing of `total` reports for `subscribers` subscribers.
    pub(crate) fn new(total: u64, window: u64, subscribers: usize) -> Self {
        Pace {
            total,
            window: window.max(1),
            sent: 0,
            acked: vec![0; subscribers.max(1)],
        }
    }

    /// Records that subscriber `index` has received `count` reports; false for an unknown
    /// subscriber.
    pub(crate) fn ack(&mut self, index: usize, count: u64) -> bool {
        match self.acked.get_mut(index) {
            Some(acked) => {
                *acked = (*acked).max(count);
                true
            }
            None => false,
        }
    }

    /// The sequence numbers that may be published now (marked as published).
    pub(crate) fn sendable(&mut self) -> std::ops::Range<u64> {
        let slowest = self.acked.iter().copied().min().unwrap_or(0);
        let limit = self.total.min(slowest.saturating_add(self.window));
        let range = self.sent..limit.max(self.sent);
        self.sent = range.end;
        range
    }

    /// Whether every subscriber has acknowledged every report.
    pub(crate) fn all_acked(&self) -> bool {
        self.acked.iter().all(|&a| a >= self.total)
    }

    /// Acknowledged reports, per subscriber (for error messages).
    pub(crate) fn acked(&self) -> &[u64] {
        &self.acked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pace_keeps_to_the_window() {
        let mut pace = Pace::new(25, 10, 2);
        assert_eq!(pace.sendable(), 0..10);
        assert_eq!(pace.sendable(), 10..10);
        assert!(pace.ack(0, 5));
        assert_eq!(
            pace.sendable(),
            10..10,
            "the slowest subscriber holds the window"
        );
        assert!(pace.ack(1, 8));
        assert_eq!(pace.sendable(), 10..15);
        assert!(pace.ack(0, 25) && pace.ack(1, 25));
        assert_eq!(pace.sendable(), 15..25);
        assert!(pace.all_acked());
        assert!(!pace.ack(2, 1));
    }
}
