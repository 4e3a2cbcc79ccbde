//! The local workloads: each one's two sides and the target netsvc should meet.

use super::run::{Plan, RunResult};
use super::{reports, roundtrip};
use crate::fmt::compact;

/// The target a workload's netsvc figure should meet.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Goal {
    /// netsvc / baseline at least this.
    Ratio(f64),
    /// netsvc rate at least this.
    Rate(f64),
}

impl Goal {
    /// Whether the figures meet the target.
    pub(crate) fn met(self, netsvc: f64, baseline: f64) -> bool {
        match self {
            Goal::Ratio(r) => netsvc / baseline >= r,
            Goal::Rate(r) => netsvc >= r,
        }
    }

    /// The target as shown in the table.
    pub(crate) fn describe(self) -> String {
        match self {
            Goal::Ratio(r) => format!(">= {r:.2}x baseline"),
            Goal::Rate(r) => format!(">= {}/s", compact(r)),
        }
    }
}

/// One workload: its two sides and its target.
pub(crate) struct Workload {
    /// Name, as printed and in the JSON output.
    pub(crate) name: &'static str,
    /// Unit of both rates.
    pub(crate) unit: &'static str,
    /// What netsvc should achieve.
    pub(crate) goal: Goal,
    /// One run of the netsvc side.
    pub(crate) netsvc: fn(&Plan) -> RunResult,
    /// One run of the bare actix baseline.
    pub(crate) baseline: fn(&Plan) -> RunResult,
}

/// Every local workload, in the order they run.
pub(crate) const WORKLOADS: &[Workload] = &[
    Workload {
        name: "request_roundtrip_1_in_flight",
        unit: "round_trips/s",
        goal: Goal::Ratio(0.75),
        netsvc: roundtrip::netsvc,
        baseline: roundtrip::baseline,
    },
    Workload {
        name: "report_delivery_10_subscribers",
        unit: "deliveries/s",
        goal: Goal::Rate(5e6),
        netsvc: reports::netsvc,
        baseline: reports::baseline,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_run_succeeds() {
        let plan = Plan {
            round_trips: 2_000,
            reports: 2_000,
            subscribers: 10,
            batch: 500,
            yield_between_batches: true,
        };
        for workload in WORKLOADS {
            for side in [workload.netsvc, workload.baseline] {
                let sample = side(&plan).unwrap_or_else(|e| panic!("{}: {e}", workload.name));
                assert!(sample.rate() > 0.0);
            }
        }
    }
}
