//! How long a peer has been silent, counted so that a stall of this process is not blamed
//! on its peers.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long a peer has been silent, counted in time this process ran: a peer is dead when *it*
/// has said nothing for [`ExchangeConfig::dead_after`](crate::ExchangeConfig::dead_after), not
/// when this process was stopped (SIGSTOP, a debugger) or stalled by its host for that long.
/// Each heartbeat tick adds the time since the previous tick, or since the peer was last
/// heard if that is later, but never more than one interval: a tick later than that means
/// this process did not run meanwhile, and the burst of overdue ticks that follows a stall
/// adds next to nothing. A stall thus adds at most one interval to the count, and the frames
/// that waited in the socket meanwhile are read, and reset it, before the peer is blamed.
///
/// When the peer was last heard is the connection reader's stamp of its last read
/// (`FrameChunks::heard`), taken in when the count is asked for: one clock read per read of
/// the socket, not one per chunk of frames handled (at 64 calls in flight a read holds 64
/// chunks; see BENCHMARKS.md, "Measured reasons in the code").
pub(crate) struct Silence {
    /// The silence counted since the peer was last heard, as of the last tick.
    counted: Duration,
    /// Where the next tick counts from.
    from: Instant,
    /// When the peer was last heard.
    heard: Rc<Cell<Instant>>,
}

impl Silence {
    /// Counts from the stamp in `heard`, where the peer's reads are stamped.
    pub(crate) fn new(heard: Rc<Cell<Instant>>) -> Self {
        Silence {
            counted: Duration::ZERO,
            from: heard.get(),
            heard,
        }
    }

    /// The silence counted so far: none since a read after the last tick.
    pub(crate) fn counted(&mut self) -> Duration {
        let heard = self.heard.get();
        if heard > self.from {
            self.counted = Duration::ZERO;
            self.from = heard;
        }
        self.counted
    }

    /// A heartbeat tick at `now`, due every `interval`: returns the silence counted so far.
    pub(crate) fn tick(&mut self, now: Instant, interval: Duration) -> Duration {
        self.counted();
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
        let heard = Rc::new(Cell::new(start));
        let mut silence = Silence::new(heard.clone());
        // Ticks on time: silence is wall time since the peer was last heard.
        assert_eq!(silence.tick(at(500), beat), Duration::from_millis(500));
        heard.set(at(700));
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
        // A read after the tick that found the peer silent clears the count before the verdict.
        assert!(silence.counted() > Duration::from_secs(3));
        heard.set(at(7700));
        assert_eq!(silence.counted(), Duration::ZERO);
        assert_eq!(silence.tick(at(8000), beat), Duration::from_millis(300));
    }
}
