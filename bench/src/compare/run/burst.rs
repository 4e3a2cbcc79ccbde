//! One run of the unpaced burst (`burst_unpaced`): a slow subscriber, then a publisher that
//! does not wait for it; what arrived, counted and checked.

use super::{role, Figure, Side};
use crate::compare::protocol::{BurstPublished, BurstReceived, ServerStats, System};
use crate::procs::{self, Proc};
use crate::roles::SETUP;

/// What one run of the burst counted, for the table and the JSON line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Burst {
    /// Reports published.
    pub(crate) published: u64,
    /// Reports the subscriber handled.
    pub(crate) delivered: u64,
    /// Reports lost: published − delivered − conflated.
    pub(crate) dropped: u64,
    /// Reports replaced, unseen, by later ones of their subject (netsvc conflation).
    pub(crate) conflated: u64,
    /// netsvc: of the dropped ones, those the publisher's own link dropped at its outbound
    /// buffer.
    pub(crate) dropped_at_publisher: Option<u64>,
    /// netsvc: of the dropped ones, those the exchange server's links dropped at their
    /// outbound buffers (the rest: the publisher's link, and the subscriber's inbox).
    pub(crate) dropped_at_server: Option<u64>,
    /// The subscriber's peak RSS, KiB.
    pub(crate) peak_rss_kib: u64,
    /// From the first report published to the last one handled, in ms.
    pub(crate) drain_ms: f64,
    /// How long publishing took, in ms.
    pub(crate) publish_ms: f64,
    /// Subjects whose last report arrived.
    pub(crate) subjects_with_last_value: u64,
    /// Subjects.
    pub(crate) subjects: u64,
}

impl Burst {
    /// Whether every subject's last report arrived.
    pub(crate) fn last_value_of_every_subject(&self) -> bool {
        self.subjects_with_last_value == self.subjects
    }
}

/// The burst subscriber (conflating on netsvc with `conflate`), then the burst publisher
/// over `subjects` subjects: the figure is the reports delivered, with the rest of
/// [`Burst`]. Fails if any report was wrong, duplicated or out of its subject's order, or
/// if more arrived than were published: dropping is the policy, those are bugs.
/// `server` is the server process of the run (netsvc's is asked for its drops at the end).
pub(super) fn reports(
    side: &Side<'_>,
    (server, addr): (&mut Proc, &str),
    subjects: u64,
    conflate: bool,
) -> Result<Figure, String> {
    let plan = side.plan;
    let count = plan.burst_reports;
    let (count_arg, subjects_arg) = (count.to_string(), subjects.to_string());
    let (capacity_arg, spin_arg) = (
        plan.burst_capacity.to_string(),
        plan.burst_spin_ns.to_string(),
    );
    let mut options = vec![
        ("--server", addr),
        ("--count", &count_arg),
        ("--subjects", &subjects_arg),
        ("--capacity", &capacity_arg),
        ("--spin-ns", &spin_arg),
    ];
    if conflate {
        if side.system != System::Netsvc {
            return Err("only netsvc conflates".to_owned());
        }
        options.push(("--conflate", "true"));
    }
    let mut subscriber = role(side, "burst-subscriber", "burst subscriber", &options)?;
    subscriber.expect("READY", SETUP)?;
    let mut publisher = role(
        side,
        "burst-publisher",
        "burst publisher",
        &[
            ("--server", addr),
            ("--count", &count_arg),
            ("--subjects", &subjects_arg),
        ],
    )?;
    let sent: BurstPublished =
        procs::decode("burst publisher", &publisher.expect("RESULT", plan.limit)?)?;
    let got: BurstReceived = procs::decode(
        "burst subscriber",
        &subscriber.expect("RESULT", plan.limit)?,
    )?;
    let mut burst = account(&sent, &got, subjects)?;
    if side.system == System::Netsvc {
        server.send("GO")?;
        let stats: ServerStats = procs::decode("exchange", &server.expect("RESULT", SETUP)?)?;
        burst.dropped_at_server = Some(stats.reports_dropped);
    }
    Ok(Figure {
        value: burst.delivered as f64,
        burst: Some(burst),
        messages: count,
        ..Figure::none()
    })
}

/// The accounting of one run: delivered + dropped + conflated = published.
fn account(sent: &BurstPublished, got: &BurstReceived, subjects: u64) -> Result<Burst, String> {
    if got.bad > 0 {
        return Err(format!(
            "{} of {} reports delivered were wrong, duplicated or out of their subject's order",
            got.bad, got.delivered
        ));
    }
    let arrived = got.delivered + got.conflated;
    if arrived > sent.published {
        return Err(format!(
            "{} delivered + {} conflated, more than the {} published",
            got.delivered, got.conflated, sent.published
        ));
    }
    let ms = |from: u64, to: u64| to.saturating_sub(from) as f64 / 1e6;
    Ok(Burst {
        published: sent.published,
        delivered: got.delivered,
        dropped: sent.published - arrived,
        conflated: got.conflated,
        dropped_at_publisher: sent.dropped_at_publisher,
        dropped_at_server: None,
        peak_rss_kib: got.peak_rss_kib,
        drain_ms: ms(sent.start_unix_ns, got.last_unix_ns),
        publish_ms: ms(sent.start_unix_ns, sent.end_unix_ns),
        subjects_with_last_value: got.subjects_with_last_value,
        subjects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_delivered_or_conflated_was_dropped() {
        let sent = BurstPublished {
            published: 100,
            start_unix_ns: 1_000_000,
            end_unix_ns: 2_000_000,
            dropped_at_publisher: Some(5),
        };
        let mut got = BurstReceived {
            delivered: 60,
            conflated: 30,
            subjects_with_last_value: 10,
            last_unix_ns: 4_000_000,
            ..BurstReceived::default()
        };
        let burst = account(&sent, &got, 10).unwrap();
        assert_eq!((burst.dropped, burst.drain_ms), (10, 3.0));
        assert!(burst.last_value_of_every_subject());
        got.conflated = 41;
        assert!(account(&sent, &got, 10).is_err());
        got.conflated = 0;
        got.bad = 1;
        assert!(account(&sent, &got, 10).is_err());
    }
}
