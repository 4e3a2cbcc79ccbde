//! The verdict on a finished soak run: every check, and a message for each that failed.

use super::run::Finished;
use super::settings::Plan;
use crate::fmt::mib;

/// Every check of a finished run; empty when it passed.
pub(crate) fn verdict(run: &Finished, plan: &Plan) -> Vec<String> {
    let (consumer, producer) = (&run.consumer, &run.producer);
    let (reports, requests, rss_limit) = (plan.reports, plan.requests, plan.rss_limit);
    let mut problems = Vec::new();
    if consumer.received != reports
        || consumer.lost != 0
        || consumer.late != 0
        || consumer.corrupt != 0
    {
        problems.push(format!(
            "reports: {} received of {reports}: {} lost, {} duplicated/late/reordered, {} corrupt",
            consumer.received, consumer.lost, consumer.late, consumer.corrupt
        ));
    }
    if consumer.answered != requests
        || consumer.failed != 0
        || producer.served != requests
        || producer.bad_requests != 0
    {
        problems.push(format!(
            "requests: {} answered correctly of {requests}, {} failures (first: {}); the server answered {} and \
             refused {}",
            consumer.answered,
            consumer.failed,
            consumer.first_failure.as_deref().unwrap_or("none"),
            producer.served,
            producer.bad_requests
        ));
    }
    if producer.acked != reports {
        problems.push(format!(
            "the publisher got acknowledgements for {} of {reports} reports",
            producer.acked
        ));
    }
    for (name, traffic) in [
        ("hub", &consumer.hub),
        ("producer", &producer.traffic),
        ("consumer", &consumer.traffic),
    ] {
        if traffic.reports_dropped != 0 {
            problems.push(format!(
                "{name}: {} reports dropped by the slow-consumer policy",
                traffic.reports_dropped
            ));
        }
    }
    for r in &run.rss {
        if r.end_over_warm > rss_limit {
            problems.push(format!(
                "{}: end RSS {:.1} MiB is {:.3}x its RSS at 10 % ({:.1} MiB), over the {rss_limit}x limit",
                r.process,
                mib(r.kib[10]),
                r.end_over_warm,
                mib(r.kib[1])
            ));
        }
    }
    problems
}
