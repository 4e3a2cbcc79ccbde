//! Who gets a published report: local subscribers each get a delivery sharing the content;
//! remote subscribers are gathered per link, and each link gets one frame listing them, with
//! the content encoded once for all links.

use crate::delivery::{Binding, Delivery, Link, Report, ReportData, Routes};
use crate::names::SubjectPattern;
use crate::wire::{EncodedTargets, TargetView};

/// The subscribers of one subject, worked out once so that a publisher can keep it and send
/// many reports with it. In-process subscribers depend only on the subscriptions; the list
/// for each link (encoded as targets are added) also depends on the node's routes, so a
/// fan-out with remote subscribers is kept only while the routes stay the same (see
/// [`ReportFanout::is_current`]).
#[derive(Default)]
pub(crate) struct ReportFanout {
    local: Vec<(Binding, Option<SubjectPattern>)>,
    remote: Vec<(Link, EncodedTargets)>,
    /// The routes' generation when a remote subscriber was first considered (`None`: none
    /// was, and the fan-out does not depend on routes).
    generation: Option<u64>,
}

impl ReportFanout {
    /// Whether the fan-out still holds: it has no remote subscriber, or `routes` are those
    /// it was worked out with (a remote subscriber may since have moved to another link, or
    /// be gone).
    pub(crate) fn is_current(&self, routes: &Routes) -> bool {
        self.generation.is_none_or(|g| g == routes.generation())
    }

    /// Whether no subscriber was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.local.is_empty() && self.remote.is_empty()
    }

    /// Adds a subscriber and the pattern it matched (if any). A remote subscriber is added by
    /// its current route in `routes` (it may have moved to another link since it subscribed);
    /// one no longer in `routes` is left out (its withdrawal is on its way).
    pub(crate) fn add(
        &mut self,
        routes: &Routes,
        subscriber: &Binding,
        pattern: Option<&SubjectPattern>,
    ) {
        if subscriber.link().is_none() {
            return self.local.push((subscriber.clone(), pattern.cloned()));
        }
        self.generation.get_or_insert_with(|| routes.generation());
        let Some(current) = routes.lookup(subscriber.agent()) else {
            return;
        };
        let Some(link) = current.link() else {
            return self.local.push((current.clone(), pattern.cloned()));
        };
        let target = TargetView {
            subscriber: current.agent(),
            pattern: pattern.map(|p| p.as_str().into()),
        };
        match self.remote.iter_mut().find(|(l, _)| l.same(link)) {
            Some((_, targets)) => targets.push(target),
            None => {
                let mut targets = EncodedTargets::default();
                targets.push(target);
                self.remote.push((link.clone(), targets));
            }
        }
    }

    /// Sends `data` to every subscriber added.
    pub(crate) fn send(&self, data: ReportData) {
        if !self.remote.is_empty() {
            let links = self.remote.iter().map(|(link, targets)| (link, targets));
            crate::delivery::send_report(&data, links);
        }
        if let Some(((last, last_pattern), rest)) = self.local.split_last() {
            for (subscriber, pattern) in rest {
                subscriber.send(Delivery::Report(Report {
                    data: data.clone(),
                    pattern: pattern.clone(),
                }));
            }
            last.send(Delivery::Report(Report {
                data,
                pattern: last_pattern.clone(),
            }));
        }
    }
}
