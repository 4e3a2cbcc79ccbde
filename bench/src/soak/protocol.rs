//! The processes of `soak`: the hidden `soak-role` subcommand, which the driver re-executes
//! once per process (`hub`, `producer`, `consumer`; see `soak.rs`), and what the processes
//! and the driver agree on: service names, subjects, limits and the outcomes.

use std::time::Duration;

use clap::{Args, ValueEnum};
use netsvc::ExchangeStats;
use serde::{Deserialize, Serialize};

use super::settings::Settings;

/// The subject of the soak's reports.
pub(crate) const SUBJECT: &str = "soak.seq";
/// The pattern the consumer monitors.
pub(crate) const PATTERN: &str = "soak.*";
/// Name of the publisher service.
pub(crate) const PUBLISHER: &str = "soak-publisher";
/// Name of the request server service.
pub(crate) const SERVER: &str = "soak-server";
/// Name of the hub's statistics service.
pub(crate) const HUB: &str = "soak-hub";
/// Longest a role process lives once set up (the driver gives up sooner on a stall).
pub(crate) const ROLE_LIMIT: Duration = Duration::from_secs(3600);
/// How long the consumer keeps counting after the last expected report, to catch extras.
pub(crate) const SETTLE: Duration = Duration::from_millis(200);

/// Which soak process this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SoakRole {
    /// The exchange hub.
    Hub,
    /// The request server and the report publisher.
    Producer,
    /// The report subscriber and the requests' client.
    Consumer,
}

/// Options of the hidden `soak-role` subcommand (set by the driver).
#[derive(Debug, Args)]
pub(crate) struct SoakRoleArgs {
    /// What this process does.
    #[arg(value_enum)]
    pub(crate) role: SoakRole,
    /// The hub to connect to (producer, consumer).
    #[arg(long, default_value = "")]
    pub(crate) server: String,
    /// Where the hub listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub(crate) listen: String,
    /// The run's counts and limits, as the driver resolved them.
    #[command(flatten)]
    pub(crate) settings: Settings,
    /// Longest one request may take, in seconds, before it counts as failed (consumer).
    #[arg(long, default_value_t = 30)]
    pub(crate) call_timeout: u64,
}

/// The answer to request `seq` (what the server puts in place of the sequence number).
pub(crate) fn answer(seq: u64) -> u64 {
    seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed
}

/// Traffic counters of one process's exchange (a serializable [`ExchangeStats`]).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct Traffic {
    /// Frames handed to sockets.
    pub(crate) frames_sent: u64,
    /// Report frames handed to sockets.
    pub(crate) reports_sent: u64,
    /// Reports dropped because a peer's outbound buffer was full.
    pub(crate) reports_dropped: u64,
    /// Bytes written to sockets.
    pub(crate) bytes_written: u64,
}

impl From<ExchangeStats> for Traffic {
    fn from(s: ExchangeStats) -> Self {
        Traffic {
            frames_sent: s.frames_sent,
            reports_sent: s.reports_sent,
            reports_dropped: s.reports_dropped,
            bytes_written: s.bytes_written,
        }
    }
}

/// What the producer did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ProducerOutcome {
    /// Reports published.
    pub(crate) published: u64,
    /// Reports acknowledged by the subscriber.
    pub(crate) acked: u64,
    /// Requests answered.
    pub(crate) served: u64,
    /// Requests refused because their body was not the one sent.
    pub(crate) bad_requests: u64,
    /// The producer's exchange counters.
    pub(crate) traffic: Traffic,
}

/// What the consumer counted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ConsumerOutcome {
    /// Reports received (including any extras during the settle time).
    pub(crate) received: u64,
    /// Sequence numbers skipped over (reports never received where expected).
    pub(crate) lost: u64,
    /// Reports with a sequence number already passed (duplicated, late or reordered).
    pub(crate) late: u64,
    /// Reports whose body was not the one published.
    pub(crate) corrupt: u64,
    /// Requests answered correctly.
    pub(crate) answered: u64,
    /// Requests failed or answered wrongly (acknowledgements included).
    pub(crate) failed: u64,
    /// The first failure's message.
    pub(crate) first_failure: Option<String>,
    /// Median request latency, µs.
    pub(crate) p50_us: u64,
    /// 99th percentile request latency, µs.
    pub(crate) p99_us: u64,
    /// From the start of the workload to the last report and answer.
    pub(crate) elapsed_ns: u64,
    /// The consumer's exchange counters.
    pub(crate) traffic: Traffic,
    /// The hub's exchange counters, fetched at the end.
    pub(crate) hub: Traffic,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_differ_from_the_request() {
        assert_ne!(answer(7), 7);
    }
}
