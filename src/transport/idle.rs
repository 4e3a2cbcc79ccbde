//! Spinning when idle: a thread that has just read from or written to a connection polls its
//! sockets for a while instead of going to sleep, so that the next frame (an answer, the
//! next request) is taken the moment it arrives rather than after the operating system wakes
//! the thread.
//!
//! Waking a sleeping thread is the largest part of a round trip's latency on a virtual
//! machine: the CPU the thread slept on halts, and getting it back is an exit to the
//! hypervisor and an interrupt, for every hop (see BENCHMARKS.md, "Spinning when idle", for
//! what it costs). A thread that spins is awake when the data comes. The price is CPU: the
//! thread burns its CPU for up to the window after each read or write, whether or not more
//! comes. So it is off unless asked for ([`spin_when_idle`]), per thread, and it never spins
//! longer than the window after the last read or write.
//!
//! How: a task of the thread's own runtime yields over and over while the window is open.
//! A runtime with a task ready never blocks: between two polls of that task it asks the
//! operating system for I/O readiness with a zero timeout, so the sockets are polled as
//! often as the task yields. Every few turns the task also yields the CPU to any other
//! process waiting for it (`sched_yield`), so a spinning thread delays no one who shares its
//! CPU for more than a few microseconds. When the window closes the task sleeps until the
//! next read or write.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// This thread's spinning state.
struct Idle {
    /// How long to spin after a read or write; zero: not at all.
    window: Cell<Duration>,
    /// Reads and writes made on this thread while spinning was on.
    io_count: Cell<u64>,
    /// Whether the spinning task exists.
    running: Cell<bool>,
    /// The spinning task's waker while it sleeps, for the next read or write.
    waker: RefCell<Option<Waker>>,
}

thread_local! {
    /// Made without a lazy start: every read and write checks it.
    static IDLE: Idle = const {
        Idle {
            window: Cell::new(Duration::ZERO),
            io_count: Cell::new(0),
            running: Cell::new(false),
            waker: RefCell::new(None),
        }
    };
}

/// Whether `spin_when_idle` could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpinError {
    /// Not called on a thread that runs an actix system or arbiter.
    #[error("spin_when_idle must be called on a thread running an actix System or Arbiter")]
    NoRuntime,
}

/// Makes this thread poll its connections for `window` after each read or write instead of
/// sleeping (a busy poll); `Duration::ZERO` turns it off again.
///
/// This trades CPU for latency: a request answered over an exchange server is taken by each
/// thread on the way as soon as it arrives, without the operating system's wake-up (the
/// largest part of a round trip on a virtual machine), at the cost of up to `window` of CPU
/// after every read or write. Use it on threads that serve latency-sensitive traffic, with a
/// window about the round trip you expect (tens of microseconds); leave it off where CPU
/// matters more. It applies to the connections of the calling thread (an actix `System`'s
/// thread or an `Arbiter`'s), and must be called on one: elsewhere it returns
/// [`SpinError::NoRuntime`].
///
/// ```
/// # actix::System::new().block_on(async {
/// netsvc::spin_when_idle(std::time::Duration::from_micros(50)).unwrap();
/// # });
/// ```
pub fn spin_when_idle(window: Duration) -> Result<(), SpinError> {
    if actix_rt::Arbiter::try_current().is_none() {
        return Err(SpinError::NoRuntime);
    }
    let start = IDLE.with(|idle| {
        idle.window.set(window);
        // Wake a sleeping task: it ends if spinning was turned off, else waits as before.
        if let Some(waker) = idle.waker.borrow_mut().take() {
            waker.wake();
        }
        !window.is_zero() && !idle.running.replace(true)
    });
    if start {
        actix_rt::spawn(spin());
    }
    Ok(())
}

/// Whether this thread spins when idle.
#[inline]
pub(crate) fn spinning() -> bool {
    IDLE.with(|idle| !idle.window.get().is_zero())
}

/// A connection of this thread was read or written (called by the reader and the writer).
#[inline]
pub(crate) fn io_done() {
    IDLE.with(|idle| {
        if !idle.window.get().is_zero() {
            idle.io_count.set(idle.io_count.get().wrapping_add(1));
            if let Some(waker) = idle.waker.borrow_mut().take() {
                waker.wake();
            }
        }
    });
}

/// Every how many turns of spinning the task gives the CPU to other processes
/// (`sched_yield`). Every turn made two spinning processes on one CPU switch back and forth
/// at every turn; never yielding made a spinning process keep the CPU from one with work
/// for a whole time slice (see BENCHMARKS.md, "Spinning when idle").
const YIELD_EVERY: u32 = 4;

/// Every how many turns the clock is read for the end of the window (a turn is short, and
/// reading the clock a good part of one on a virtual machine).
const CLOCK_EVERY: u32 = 8;

/// The spinning task: asleep until a read or write, then spinning until a window passes
/// with none.
async fn spin() {
    let mut seen = IDLE.with(|idle| idle.io_count.get());
    // Ends when spinning is turned off (a zero window), asleep or spinning.
    'on: loop {
        // Asleep until a read or write.
        let woken = poll_fn(|cx| {
            IDLE.with(|idle| {
                if idle.window.get().is_zero() {
                    return Poll::Ready(false);
                }
                if idle.io_count.get() != seen {
                    return Poll::Ready(true);
                }
                *idle.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            })
        })
        .await;
        if !woken {
            break;
        }
        // Spinning until a window passes with no read or write.
        let mut until = Instant::now();
        let mut turn = 0u32;
        loop {
            let (count, window) = IDLE.with(|idle| (idle.io_count.get(), idle.window.get()));
            if window.is_zero() {
                break 'on;
            }
            if count != seen || turn == 0 {
                seen = count;
                until = Instant::now() + window;
            } else if turn.is_multiple_of(CLOCK_EVERY) && Instant::now() >= until {
                break;
            }
            turn = turn.wrapping_add(1);
            // Now and then other processes on this CPU first; then this runtime's I/O (polled
            // with a zero timeout because this task is ready again at once).
            if turn.is_multiple_of(YIELD_EVERY) {
                std::thread::yield_now();
            }
            tokio::task::yield_now().await;
        }
    }
    IDLE.with(|idle| idle.running.set(false));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_runtime_it_says_so() {
        assert_eq!(
            spin_when_idle(Duration::from_micros(50)),
            Err(SpinError::NoRuntime)
        );
    }

    #[actix_rt::test]
    async fn it_spins_after_io_and_sleeps_after_the_window() {
        spin_when_idle(Duration::from_millis(20)).unwrap();
        tokio::task::yield_now().await;
        // Asleep: its waker is parked for the next read or write.
        assert!(IDLE.with(|idle| idle.waker.borrow().is_some()));
        io_done();
        assert!(IDLE.with(|idle| idle.waker.borrow().is_none()));
        // Spinning: the task keeps the thread busy, so a short sleep of this task is late
        // by no more than the spin's own yields, and the waker stays unparked.
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(IDLE.with(|idle| idle.waker.borrow().is_none()));
        // The window passed without reads or writes: asleep again.
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(IDLE.with(|idle| idle.waker.borrow().is_some()));
        spin_when_idle(Duration::ZERO).unwrap();
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        assert!(!IDLE.with(|idle| idle.running.get()));
        // I/O while off counts nothing.
        let count = IDLE.with(|idle| idle.io_count.get());
        io_done();
        assert_eq!(IDLE.with(|idle| idle.io_count.get()), count);
    }
}
