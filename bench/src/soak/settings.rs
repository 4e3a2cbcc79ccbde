//! The counts and limits of a soak run: declared once, as options of `soak`, and passed on
//! by the driver to every `soak-role` process, which parses them with the same declaration.

use std::time::Duration;

use clap::Args;

/// The counts and limits of a run, as given on the command line.
#[derive(Debug, Clone, Args)]
pub(crate) struct Settings {
    /// Small counts (20,000 requests + 200,000 reports), for CI.
    #[arg(long)]
    quick: bool,
    /// Requests to make (default 1,000,000; 20,000 with --quick).
    #[arg(long)]
    requests: Option<u64>,
    /// Reports to publish (default 10,000,000; 200,000 with --quick).
    #[arg(long)]
    reports: Option<u64>,
    /// Requests outstanding at once.
    #[arg(long, default_value_t = 32)]
    in_flight: usize,
    /// Most reports the publisher is ahead of the last acknowledgement.
    #[arg(long, default_value_t = 10_000)]
    window: u64,
    /// The subscriber acknowledges every this many reports (and the last one).
    #[arg(long, default_value_t = 1000)]
    ack_every: u64,
    /// Largest end RSS allowed, as a multiple of the RSS at 10 % of progress.
    #[arg(long, default_value_t = 1.1)]
    rss_limit: f64,
    /// Longest time without progress, in seconds, before the run is failed.
    #[arg(long, default_value_t = 60)]
    stall: u64,
}

/// The counts and limits of a run, resolved: defaults chosen, bounds applied.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Requests to make.
    pub(crate) requests: u64,
    /// Reports to publish.
    pub(crate) reports: u64,
    /// Requests outstanding at once.
    pub(crate) in_flight: usize,
    /// Most reports published ahead of the last acknowledgement (at least two
    /// acknowledgements' worth).
    pub(crate) window: u64,
    /// The subscriber acknowledges every this many reports.
    pub(crate) ack_every: u64,
    /// Largest end RSS allowed ÷ RSS at 10 %.
    pub(crate) rss_limit: f64,
    /// Longest time without progress.
    pub(crate) stall: Duration,
}

impl Settings {
    /// The resolved plan. Resolving is idempotent: the options of [`Plan::args`] give the
    /// role processes the driver's plan.
    pub(crate) fn plan(&self) -> Plan {
        let pick = |explicit: Option<u64>, full: u64, quick: u64| {
            explicit.unwrap_or(if self.quick { quick } else { full })
        };
        let ack_every = self.ack_every.max(1);
        Plan {
            requests: pick(self.requests, 1_000_000, 20_000).max(1),
            reports: pick(self.reports, 10_000_000, 200_000).max(1),
            in_flight: self.in_flight.max(1),
            window: self.window.max(2 * ack_every),
            ack_every,
            rss_limit: self.rss_limit,
            stall: Duration::from_secs(self.stall.max(1)),
        }
    }
}

impl Plan {
    /// The options that give a `soak-role` process this plan.
    pub(crate) fn args(&self) -> Vec<String> {
        [
            ("--requests", self.requests.to_string()),
            ("--reports", self.reports.to_string()),
            ("--in-flight", self.in_flight.to_string()),
            ("--window", self.window.to_string()),
            ("--ack-every", self.ack_every.to_string()),
            ("--rss-limit", self.rss_limit.to_string()),
            ("--stall", self.stall.as_secs().to_string()),
        ]
        .into_iter()
        .flat_map(|(option, value)| [option.to_owned(), value])
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// The settings alone, as a command line.
    #[derive(Debug, Parser)]
    struct Line {
        /// The settings.
        #[command(flatten)]
        settings: Settings,
    }

    fn plan_of(args: &[&str]) -> Plan {
        let line = Line::parse_from(std::iter::once("soak").chain(args.iter().copied()));
        line.settings.plan()
    }

    #[test]
    fn a_role_gets_the_drivers_plan() {
        for args in [
            &[][..],
            &["--quick"],
            &[
                "--quick",
                "--window",
                "10",
                "--ack-every",
                "0",
                "--rss-limit",
                "1.25",
            ],
            &["--requests", "0", "--in-flight", "0", "--stall", "0"],
        ] {
            let plan = plan_of(args);
            let args = plan.args();
            let again = plan_of(&args.iter().map(String::as_str).collect::<Vec<_>>());
            assert_eq!(format!("{plan:?}"), format!("{again:?}"), "{args:?}");
        }
    }

    #[test]
    fn defaults_and_bounds() {
        let plan = plan_of(&[]);
        assert_eq!((plan.requests, plan.reports), (1_000_000, 10_000_000));
        let plan = plan_of(&["--quick", "--window", "10", "--ack-every", "0"]);
        assert_eq!((plan.requests, plan.reports), (20_000, 200_000));
        assert_eq!((plan.window, plan.ack_every), (10, 1));
        assert_eq!(
            plan_of(&["--ack-every", "100", "--window", "10"]).window,
            200
        );
    }
}
