//! Received reports: delivered to local subscribers (gathered per inbox, under one lock per
//! chunk) and relayed to the links of remote ones.

use bytes::Bytes;
use smallvec::SmallVec;

use super::{Behind, RouteCache};
use crate::delivery::interned::Names;
use crate::delivery::link::Link;
use crate::delivery::messages::{Delivery, Report, ReportData};
use crate::delivery::{Binding, Inbox, Routes};
use crate::ids::AgentId;
use crate::names::SubjectPattern;
use crate::payload::{Payload, SharedContent};
use crate::transport::FrameClass;
use crate::wire::ReportView;

/// What routing a received report needs: the node's routes (and the bridge's caches of
/// them), the bridge's name cache, and the chunk the report was read in.
pub(super) struct ReportRouting<'a> {
    pub(super) net: &'a Routes,
    pub(super) names: &'a mut Names,
    pub(super) routes: &'a mut RouteCache,
    pub(super) batch: &'a mut ReportBatch,
    pub(super) decisions: &'a mut Decisions,
    pub(super) chunk: &'a Bytes,
    /// Whether local deliveries slice their content from `chunk` rather than copy it.
    pub(super) share: bool,
    /// With `share`: the chunk as the buffer the last report's content was a part of.
    pub(super) shared: &'a mut Option<SharedContent>,
    /// The link the report came on, and the agents announced over it.
    pub(super) from: &'a Link,
    pub(super) behind: &'a Behind,
}

/// What became of a received report.
pub(super) enum Routed {
    /// Routed; this many bytes of content went to local services.
    Delivered(usize),
    /// Refused: its publisher is not behind the link it came on.
    Forged,
}

impl ReportRouting<'_> {
    /// Routes one received report; returns the size of its content if it was delivered to
    /// local services (0 otherwise).
    ///
    /// Local subscribers get a delivery sharing the content. Subscribers behind other links
    /// get it relayed: when every target is behind one link, the frame is passed on byte for
    /// byte (the usual case for an exchange server); otherwise each link gets the received
    /// head with its own targets. Names are validated either way, so a relay never passes on
    /// what its peers would refuse.
    ///
    /// Where a report goes depends only on its publisher and its target list: the decision
    /// is worked out once and kept for the next reports with the same publisher and the same
    /// target bytes (see [`Decisions`]), while the routes and the agents behind the link stay
    /// as they were.
    pub(super) fn route(
        &mut self,
        view: &ReportView<'_>,
        frame: &[u8],
        targeted: bool,
    ) -> Result<Routed, String> {
        let owned;
        let targets = after_head(frame, view.head);
        let found = targets.and_then(|t| {
            self.decisions
                .find(self.net, self.behind, view.publisher, t)
        });
        let decision = match found {
            Some(at) => &self.decisions.kept[at],
            None => {
                let Some(decision) = self.decide(view, targets.unwrap_or_default())? else {
                    return Ok(Routed::Forged);
                };
                if targets.is_some() && decision.targets.len() <= DECISION_TARGET_BYTES {
                    let at = self.decisions.keep(decision);
                    &self.decisions.kept[at]
                } else {
                    owned = decision;
                    &owned
                }
            }
        };
        // Announced here but visible nowhere (refused by the peer's policy): dropped.
        let Some(decided) = &decision.route else {
            return Ok(Routed::Delivered(0));
        };
        // Names are validated before anything is sent on (by the local delivery, which
        // interns them, when there is one).
        let delivered = if decided.local.is_empty() {
            self.names.subject(view.subject)?;
            self.names.type_name(view.content.type_name)?;
            0
        } else {
            let local = LocalDelivery {
                names: self.names,
                batch: self.batch,
                chunk: self.chunk,
                share: self.share,
                shared: self.shared,
            };
            local.deliver(view, targeted, decided)?
        };
        match decided.links.as_slice() {
            // One link has every target: the frame goes on as received.
            [(link, indexes)] if indexes.len() == view.targets.len() => {
                let _ = link.out().send_raw(frame, FrameClass::Report, "Report");
            }
            links => {
                for (link, indexes) in links {
                    let targets = indexes.iter().map(|&i| view.targets[i]);
                    let _ = link.out().send_report_head(view, targets);
                }
            }
        }
        Ok(Routed::Delivered(delivered))
    }

    /// Works out where a report from `view.publisher` to `view.targets` goes; `None` when
    /// its publisher is not behind the link it came on (a forgery).
    fn decide(
        &mut self,
        view: &ReportView<'_>,
        targets: &[u8],
    ) -> Result<Option<Decision>, String> {
        // Only a publisher behind this link may publish on it (usually its route is this very
        // link; an alternate route is found in `behind`). Names are interned only then: a
        // stream of made-up names in a made-up publisher's name costs no memory.
        let from = self.from;
        let publisher = match self.routes.lookup(self.net, view.publisher) {
            Some(p) if p.link().is_some_and(|l| l.same(from)) => p.clone(),
            Some(p) if self.behind.contains(&view.publisher) => p.clone(),
            Some(_) => return Ok(None),
            None if self.behind.contains(&view.publisher) => {
                return Ok(Some(Decision::new(view.publisher, targets, None)));
            }
            None => return Ok(None),
        };
        let mut decided = Decided {
            publisher,
            local: SmallVec::new(),
            links: SmallVec::new(),
        };
        for (i, target) in view.targets.iter().enumerate() {
            let pattern = match target.pattern {
                Some(p) => Some(self.names.pattern(p)?),
                None => None,
            };
            let Some(subscriber) = self.routes.lookup(self.net, target.subscriber) else {
                continue;
            };
            let Some(link) = subscriber.link() else {
                decided.local.push((subscriber.clone(), pattern.cloned()));
                continue;
            };
            match decided.links.iter_mut().find(|(l, _)| l.same(link)) {
                Some((_, indexes)) => indexes.push(i),
                None => decided.links.push((link.clone(), smallvec::smallvec![i])),
            }
        }
        Ok(Some(Decision::new(view.publisher, targets, Some(decided))))
    }
}

/// Where reports from one publisher with one target list go, as [`ReportRouting::decide`]
/// worked it out.
pub(super) struct Decision {
    publisher: AgentId,
    /// The target list as received (what [`after_head`] finds in the frame).
    targets: Box<[u8]>,
    /// `None`: the publisher is announced over the link but visible nowhere (the peer's
    /// policy refused it), so its reports are dropped.
    route: Option<Decided>,
}

impl Decision {
    fn new(publisher: AgentId, targets: &[u8], route: Option<Decided>) -> Self {
        Decision {
            publisher,
            targets: targets.into(),
            route,
        }
    }
}

/// What follows a report's head in its frame: the target list as received (its count first;
/// for a `Frame::ConflatedReport`, the count it stands for after it). Two reports with the
/// same publisher and the same bytes here are routed alike. `None` if `head` is not a part
/// of `frame` (it always is): then no decision is kept.
fn after_head<'f>(frame: &'f [u8], head: &[u8]) -> Option<&'f [u8]> {
    let start = (head.as_ptr() as usize).wrapping_sub(frame.as_ptr() as usize);
    if start > frame.len() {
        return None;
    }
    frame.get(start.checked_add(head.len())?..)
}

/// The routes of a [`Decision`].
struct Decided {
    /// The publisher's binding, which local deliveries carry.
    publisher: Binding,
    /// Local subscribers, with the pattern each matched.
    local: SmallVec<[(Binding, Option<SubjectPattern>); 1]>,
    /// The links remote targets are behind, with the targets behind each (as indexes into
    /// the report's targets), in the order first met.
    links: SmallVec<[(Link, SmallVec<[usize; 4]>); 1]>,
}

/// The routing decisions a bridge made lately, for the next reports alike: at most
/// [`DECISIONS`], the oldest replaced first, each for a target list of at most
/// [`DECISION_TARGET_BYTES`] (what a peer sends is never kept at any size it likes). All are
/// dropped when the node's routes change (their generation) or the agents behind the link
/// do, so a decision never outlives what it was made from; and when the bridge forgets its
/// routes (an idle connection must not keep closed links alive).
#[derive(Default)]
pub(super) struct Decisions {
    generation: u64,
    behind: u64,
    kept: Vec<Decision>,
    /// The entry replaced next once `kept` is full.
    next: usize,
}

/// Most routing decisions a bridge keeps: the distinct (publisher, target list) pairs of a
/// report stream, such as a publisher's subscriber groups over many subjects.
const DECISIONS: usize = 16;
/// Longest target list a decision is kept for: about 150 targets.
const DECISION_TARGET_BYTES: usize = 4096;

impl Decisions {
    /// The decision kept for reports like `view`, if any; everything kept goes when the
    /// routes or the agents `behind` the link changed since it was made.
    fn find(
        &mut self,
        net: &Routes,
        behind: &Behind,
        publisher: AgentId,
        targets: &[u8],
    ) -> Option<usize> {
        let now = (net.generation(), behind.version());
        if now != (self.generation, self.behind) {
            self.kept.clear();
            self.next = 0;
            (self.generation, self.behind) = now;
            return None;
        }
        self.kept
            .iter()
            .position(|d| d.publisher == publisher && *d.targets == *targets)
    }

    /// Keeps `decision` (whose target list is at most [`DECISION_TARGET_BYTES`]) in place of
    /// the oldest once full; its index.
    fn keep(&mut self, decision: Decision) -> usize {
        if self.kept.len() < DECISIONS {
            self.kept.push(decision);
            return self.kept.len() - 1;
        }
        let at = self.next;
        self.next = (at + 1) % DECISIONS;
        self.kept[at] = decision;
        at
    }
}

/// What delivering a received report to local services needs.
struct LocalDelivery<'r, 'a> {
    names: &'r mut Names,
    batch: &'r mut ReportBatch,
    chunk: &'a Bytes,
    share: bool,
    shared: &'r mut Option<SharedContent>,
}

impl LocalDelivery<'_, '_> {
    /// Delivers a received report to the local targets of `decided`, all sharing one copy of
    /// its parts (the last delivery takes them over rather than cloning them), and returns
    /// the size of the content. With `share`, the content is a slice of the chunk rather
    /// than a copy.
    fn deliver(
        self,
        view: &ReportView<'_>,
        targeted: bool,
        decided: &Decided,
    ) -> Result<usize, String> {
        let subject = self.names.subject(view.subject)?.clone();
        let (format, type_name) = (
            view.content.format,
            self.names.type_name(view.content.type_name)?,
        );
        let content = if self.share {
            // One shared buffer for the chunk's reports of one type: no allocation per report.
            let shared = match self.shared.take() {
                Some(shared) if shared.is_for(format, type_name) => shared,
                _ => SharedContent::new(format, self.chunk.clone(), type_name.clone()),
            };
            self.shared.insert(shared).part(view.content.bytes)
        } else {
            Payload::encoded(
                format,
                Bytes::copy_from_slice(view.content.bytes),
                type_name.clone(),
            )
        };
        let data = ReportData {
            publisher: decided.publisher.clone(),
            subject,
            content,
            targeted,
        };
        // A conflated report stands for the ones replaced on its way.
        let stands_for = view.conflated.unwrap_or(0);
        if let Some(((last, last_pattern), others)) = decided.local.split_last() {
            for (subscriber, pattern) in others {
                self.batch.push(
                    subscriber,
                    Report {
                        data: data.clone(),
                        pattern: pattern.clone(),
                        conflated: stands_for,
                    },
                );
            }
            self.batch.push(
                last,
                Report {
                    data,
                    pattern: last_pattern.clone(),
                    conflated: stands_for,
                },
            );
        }
        Ok(view.content.bytes.len().max(1))
    }
}

/// Reports for one local service gathered while a chunk is handled, pushed to its inbox
/// under one lock. They are pushed before any frame other than a report is handled, and at
/// the end of the chunk, so every service still sees what one peer sent in the order sent.
/// Only reports: a refused one is dropped (as `Inbox::push_all` does), which for a request
/// would lose its answer.
#[derive(Default)]
pub(super) struct ReportBatch {
    inbox: Option<Inbox>,
    reports: Vec<Report>,
    /// Whether an inbox pushed to since [`ReportBatch::take_conflating`] conflates a
    /// subscription.
    conflating: bool,
}

impl ReportBatch {
    fn push(&mut self, to: &Binding, report: Report) {
        let Some(inbox) = to.local_inbox() else {
            return to.send(Delivery::Report(report));
        };
        if !self.inbox.as_ref().is_some_and(|i| i.same(inbox)) {
            self.flush();
            self.inbox = Some(inbox.clone());
        }
        self.reports.push(report);
    }

    pub(super) fn flush(&mut self) {
        if let Some(inbox) = self.inbox.take() {
            self.conflating |= inbox.push_all(self.reports.drain(..).map(Delivery::Report));
        }
    }

    /// Whether reports went to a service that conflates a subscription since the last call.
    pub(super) fn take_conflating(&mut self) -> bool {
        std::mem::take(&mut self.conflating)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_kept_for_the_same_publisher_and_targets_bounded_and_dropped_on_change() {
        let net = Routes::new();
        let mut behind = Behind::default();
        let mut decisions = Decisions::default();
        let publisher = AgentId::random();
        let lists: Vec<[u8; 2]> = (0..DECISIONS as u8 + 4).map(|i| [1, i]).collect();
        for list in &lists {
            assert_eq!(decisions.find(&net, &behind, publisher, list), None);
            decisions.keep(Decision::new(publisher, list, None));
        }
        // The newest DECISIONS are kept, the oldest went first.
        assert_eq!(decisions.kept.len(), DECISIONS);
        for (i, list) in lists.iter().enumerate() {
            let found = decisions.find(&net, &behind, publisher, list);
            assert_eq!(found.is_some(), i >= 4, "{i}");
        }
        // Another publisher with the same targets is another decision.
        assert_eq!(
            decisions.find(&net, &behind, AgentId::random(), &lists[10]),
            None
        );
        // A change of the agents behind the link drops them all; so does a change of routes.
        behind.insert(AgentId::random());
        assert_eq!(decisions.find(&net, &behind, publisher, &lists[10]), None);
        assert!(decisions.kept.is_empty());
        decisions.keep(Decision::new(publisher, &lists[10], None));
        assert!(decisions
            .find(&net, &behind, publisher, &lists[10])
            .is_some());
        let link = crate::delivery::link::tests::link(&net, "", false);
        assert!(net.insert(Binding::new(
            crate::names::ServiceName::new("s").unwrap(),
            AgentId::random(),
            crate::names::Audience::Everyone,
            crate::ids::ProcessId::random(),
            crate::delivery::binding::Address::Remote(link),
        )));
        assert_eq!(decisions.find(&net, &behind, publisher, &lists[10]), None);
    }
}
