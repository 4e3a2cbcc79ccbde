//! One run of a local workload: its counts, what it measured, the fresh actix System it runs
//! in, and the bound on its waiting.

use std::future::Future;
use std::time::Duration;

use tokio::sync::oneshot;

/// Counts and switches shared by every run of one invocation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Sequential calls per run of the round-trip workload.
    pub(crate) round_trips: u64,
    /// Reports published per run of the report workload (each subscriber gets all of them).
    pub(crate) reports: u64,
    /// Subscribers of the report workload.
    pub(crate) subscribers: usize,
    /// Reports per batch.
    pub(crate) batch: u64,
    /// Whether the publisher yields to the other actors between batches.
    pub(crate) yield_between_batches: bool,
}

/// What one run measured: `ops` operations in `elapsed`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    /// Operations done (round trips, deliveries).
    pub(crate) ops: u64,
    /// Time they took.
    pub(crate) elapsed: Duration,
}

impl Sample {
    /// Operations per second.
    pub(crate) fn rate(self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A result of one run, or why it failed.
pub(crate) type RunResult = Result<Sample, String>;

/// Runs `body` in a fresh actix System and returns its outcome once it completes.
pub(crate) fn in_fresh_system<F: Future<Output = RunResult>>(body: F) -> RunResult {
    actix::System::new().block_on(body)
}

/// How long a run may go without progress before it is declared stuck.
const STALL: Duration = Duration::from_secs(3);

/// Waits for `rx`, failing if `progress` stops moving for [`STALL`] or the sender is dropped.
pub(crate) async fn wait_for<T>(
    mut rx: oneshot::Receiver<T>,
    progress: impl Fn() -> u64,
) -> Result<T, String> {
    let mut last = progress();
    loop {
        match tokio::time::timeout(STALL, &mut rx).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(_)) => return Err("the run ended without reporting its result".to_owned()),
            Err(_) => {
                let now = progress();
                if now == last {
                    return Err(format!(
                        "no progress for {STALL:?} (progress counter at {now})"
                    ));
                }
                last = now;
            }
        }
    }
}
