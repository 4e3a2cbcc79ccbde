//! The driver's side of a soak run: starting the three processes, following the consumer's
//! progress while sampling every process's memory, and collecting the outcomes. The
//! processes are killed when the run ends, however it ends.

use std::path::Path;
use std::time::Duration;

use super::protocol::{ConsumerOutcome, ProducerOutcome};
use super::rss::{RssSamples, Sampler};
use super::settings::Plan;
use crate::procs::{self, Proc};
use crate::roles::SETUP;

/// What a finished run gives the verdict and the report.
pub(crate) struct Finished {
    /// The consumer's counts.
    pub(crate) consumer: ConsumerOutcome,
    /// The producer's counts.
    pub(crate) producer: ProducerOutcome,
    /// The memory samples of every process.
    pub(crate) rss: Vec<RssSamples>,
}

/// The processes of a run: killed (and reaped) when this is dropped, the clients first.
struct Processes {
    /// The consumer.
    consumer: Proc,
    /// The producer.
    producer: Proc,
    /// The hub.
    hub: Proc,
}

impl Processes {
    /// The names of the processes, in table order.
    const NAMES: [&'static str; 3] = ["hub", "producer", "consumer"];

    /// Starts the hub, then the producer and the consumer connected to it, each once the one
    /// before is ready, and waits until the consumer is ready too.
    fn start(exe: &Path, plan: &Plan, verbose: bool) -> Result<Processes, String> {
        let start = |role: &str, server: Option<&str>| {
            let server = server.map(|addr| ["--server", addr]);
            let args = ["soak-role", role]
                .into_iter()
                .map(str::to_owned)
                .chain(server.into_iter().flatten().map(str::to_owned))
                .chain(plan.args());
            Proc::start_role(exe, format!("soak {role}"), args, verbose)
        };
        let mut hub = start("hub", None)?;
        let addr = hub.expect("READY", SETUP)?;
        let mut producer = start("producer", Some(&addr))?;
        producer.expect("READY", SETUP)?;
        let consumer = start("consumer", Some(&addr))?;
        let mut procs = Processes {
            consumer,
            producer,
            hub,
        };
        procs.consumer.expect("READY", SETUP)?;
        Ok(procs)
    }

    /// The pid of each, in the order of [`Processes::NAMES`].
    fn pids(&self) -> [u32; 3] {
        [self.hub.id(), self.producer.id(), self.consumer.id()]
    }

    /// `error`, with any `ERROR` line the producer or hub printed (they may be the cause).
    fn with_peers(&mut self, error: String) -> String {
        let mut message = error;
        for peer in [&mut self.producer, &mut self.hub] {
            if let Err(e) = peer.expect("RESULT", Duration::from_millis(300)) {
                if e.contains(" failed: ") || e.contains(" exited ") {
                    message.push_str("; ");
                    message.push_str(&e);
                }
            }
        }
        message
    }
}

/// Runs the soak: starts the processes, samples their memory at the start and at every
/// tenth of progress, and collects the consumer's and the producer's outcomes.
pub(crate) fn run(plan: &Plan, verbose: bool) -> Result<Finished, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let mut procs = Processes::start(&exe, plan, verbose)?;
    let mut sampler = Sampler::new(Processes::NAMES, verbose);
    sampler.sample(procs.pids(), 0)?;
    // The consumer fails on a stall itself, with its counts; this is the bound if it cannot.
    let driver_stall = plan.stall + Duration::from_secs(10);
    for tenth in 1..=10u32 {
        let line = procs
            .consumer
            .expect("PROGRESS", driver_stall)
            .map_err(|e| procs.with_peers(e))?;
        if line.parse::<u32>().ok() != Some(tenth) {
            return Err(format!("consumer: progress {line:?}, expected {tenth}"));
        }
        sampler.sample(procs.pids(), tenth)?;
    }
    let line = procs
        .consumer
        .expect("RESULT", SETUP)
        .map_err(|e| procs.with_peers(e))?;
    let consumer = procs::decode("consumer", &line)?;
    let line = procs
        .producer
        .expect("RESULT", driver_stall)
        .map_err(|e| procs.with_peers(e))?;
    let producer = procs::decode("producer", &line)?;
    drop(procs);
    Ok(Finished {
        consumer,
        producer,
        rss: sampler.finish(),
    })
}
