//! How long a peer has been silent, counted so that a stall of this process is not blamed
//! on its peers.

use std::time::{Duration, Instant};

/// How long a peer has been silent, counted in time this process ran: a peer is dead when *it*
/// has said nothing for [`ExchangeConfig::dead_after`](crate::ExchangeConfig::dead_after), not
/// when this process was stopped (SIGSTOP, a debugger) or stalled by its host for that long.
/// Each heartbeat tick adds the time since the previous tick, or since the peer was last
/// heard if that is later, but never more than one heartbeat interval: a tick later than that
/// means this process did not run meanwhile, and the burst of overdue ticks that follows a
/// stall adds next to nothing. A stall thus adds at most one interval to the count, and the
/// frames that waited in the socket meanwhile are read, and reset it, before the peer is
/// blamed.
pub(crate) struct Silence {
    /// The silence counted since the peer was last heard.
    pub(crate) counted: Duration,
    /// Where the next tick counts from.
    from: Instant,
}

impl Silence {
    pub(crate) fn new(now: Instant) -> Self {
        Silence {
            counted: Duration::ZERO,
            from: now,
        }
    }

    /// Something was read from the peer.
    pub(crate) fn heard(&mut self, now: Instant) {
        self.counted = Duration::ZERO;
        self.from = now;
    }

    /// A heartbeat tick at `now`, due every `interval`: returns the silence counted so far.
    pub(crate) fn tick(&mut self, now: Instant, interval: Duration) -> Duration {
        self.counted += now.saturating_duration_since(self.from).min(interval);
        self.from = now;
        self.counted
    }
}

/// How long after a tick found the peer silent its verdict is given (see `Bridge::tick`).
pub(crate) const VERDICT_AFTER: Duration = Duration::from_millis(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_counts_time_this_process_ran_only() {
        let (beat, start) = (Duration::from_millis(500), Instant::now());
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut silence = Silence::new(start);
        // Ticks on time: silence is wall time since the peer was last heard.
        assert_eq!(silence.tick(at(500), beat), Duration::from_millis(500));
        silence.heard(at(700));
        assert_eq!(silence.tick(at(1000), beat), Duration::from_millis(300));
        assert_eq!(silence.tick(at(1500), beat), Duration::from_millis(800));
        // This process stopped for 4 s: the late tick adds one interval, and the burst of
        // overdue ticks behind it next to nothing.
        assert_eq!(silence.tick(at(5600), beat), Duration::from_millis(1300));
        for _ in 0..8 {
            assert_eq!(silence.tick(at(5600), beat), Duration::from_millis(1300));
        }
        // A peer that really says nothing is dead once the process has run long enough.
        let ticks = (1..).find(|i| silence.tick(at(5600 + i * 500), beat) > Duration::from_secs(3));
        assert_eq!(ticks, Some(4), "1.3 s, then four intervals");
    }
}
