//! One run of the many-subject report workload (`reports_1_to_100`, laid out as
//! `compare/subjects.rs` says): the subscriber processes, each with its services, and the
//! publisher; every service checked.

use super::{role, Figure, Side};
use crate::compare::protocol::{PublishOutcome, SubscribeOutcome};
use crate::compare::subjects;
use crate::procs;
use crate::roles::SETUP;

/// `processes` subscriber processes of `services` services each, and a publisher cycling
/// over `subjects` subjects: the rate of deliveries, once every service has been checked to
/// have received exactly the reports of its pattern, each subject's in order.
pub(super) fn reports(
    side: &Side<'_>,
    addr: &str,
    (processes, services): (u64, u64),
    subjects: u64,
) -> Result<Figure, String> {
    let plan = side.plan;
    if !subjects.is_multiple_of(subjects::GROUPS) {
        return Err(format!(
            "{subjects} subjects: not a multiple of {}",
            subjects::GROUPS
        ));
    }
    let count = plan.reports_subjects;
    let options = [
        ("--server", addr.to_owned()),
        ("--count", count.to_string()),
        ("--ack-every", plan.ack_every.to_string()),
        ("--subjects", subjects.to_string()),
    ];
    let with = |extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
        options
            .iter()
            .cloned()
            .chain(extra.iter().cloned())
            .collect()
    };
    let mut subs = Vec::new();
    for p in 0..processes {
        let options = with(&[
            ("--index", p.to_string()),
            ("--services", services.to_string()),
        ]);
        let options: Vec<(&str, &str)> = options.iter().map(|(o, v)| (*o, v.as_str())).collect();
        subs.push(role(
            side,
            "subscriber",
            &format!("subscriber {p}"),
            &options,
        )?);
    }
    for sub in &mut subs {
        sub.expect("READY", SETUP)?;
    }
    let options = with(&[
        ("--subscribers", (processes * services).to_string()),
        ("--window", plan.window.to_string()),
    ]);
    let options: Vec<(&str, &str)> = options.iter().map(|(o, v)| (*o, v.as_str())).collect();
    let mut publisher = role(side, "publisher", "publisher", &options)?;
    let outcome: PublishOutcome =
        procs::decode("publisher", &publisher.expect("RESULT", plan.limit)?)?;
    let mut problems = Vec::new();
    for (p, sub) in subs.iter_mut().enumerate() {
        let got: Vec<SubscribeOutcome> =
            procs::decode("subscriber", &sub.expect("RESULT", SETUP)?)?;
        if got.len() as u64 != services {
            problems.push(format!("{}: {} services", sub.name(), got.len()));
        }
        for (m, got) in (p as u64 * services..).zip(&got) {
            let expected = subjects::expected(m, count);
            if got.received != expected || got.out_of_order != 0 {
                problems.push(format!(
                    "{} service {m}: {} reports received ({} out of their subject's \
                     sequence), expected {expected}",
                    sub.name(),
                    got.received,
                    got.out_of_order
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(format!(
            "reports lost, duplicated, misrouted or reordered: {}",
            problems.join("; ")
        ));
    }
    let deliveries = subjects::deliveries(count, processes * services);
    if outcome.ops != deliveries {
        return Err(format!(
            "the publisher counted {} deliveries, expected {deliveries}",
            outcome.ops
        ));
    }
    Ok(Figure::rate(outcome.ops, outcome.elapsed_ns, outcome.ops))
}
