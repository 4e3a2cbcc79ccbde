//! Received reports: delivered to local subscribers (gathered per inbox, under one lock per
//! chunk) and relayed to the links of remote ones.

use bytes::Bytes;
use smallvec::SmallVec;

use super::{Behind, RouteCache};
use crate::delivery::interned::Names;
use crate::delivery::link::Link;
use crate::delivery::messages::{Delivery, Report, ReportData};
use crate::delivery::{Binding, Inbox, Routes};
use crate::names::SubjectPattern;
use crate::payload::{Payload, SharedContent};
use crate::transport::FrameClass;
use crate::wire::ReportView;

/// What routing a received report needs: the node's routes (and the bridge's cache of
/// them), the bridge's name cache, and the chunk the report was read in.
pub(super) struct ReportRouting<'a> {
    pub(super) net: &'a Routes,
    pub(super) names: &'a mut Names,
    pub(super) routes: &'a mut RouteCache,
    pub(super) batch: &'a mut ReportBatch,
    pub(super) relay: &'a mut Relay,
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
    pub(super) fn route(
        &mut self,
        view: &ReportView<'_>,
        frame: &[u8],
        targeted: bool,
    ) -> Result<Routed, String> {
        // Only a publisher behind this link may publish on it (usually its route is this very
        // link; an alternate route is found in `behind`). Names are interned only then: a
        // stream of made-up names in a made-up publisher's name costs no memory.
        let from = self.from;
        let here = match self.routes.lookup(self.net, view.publisher) {
            Some(p) => {
                p.link().is_some_and(|l| l.same(from)) || self.behind.contains(&view.publisher)
            }
            // Announced here but visible nowhere (refused by the peer's policy): dropped.
            None if self.behind.contains(&view.publisher) => return Ok(Routed::Delivered(0)),
            None => false,
        };
        if !here {
            return Ok(Routed::Forged);
        }
        self.names.subject(view.subject)?;
        self.names.type_name(view.content.type_name)?;
        // Targets per link, as indexes into `view.targets`: the first link's here (usually
        // the only one: nothing is moved into a vector for it), any others' in `more`.
        let mut first: Option<(Link, SmallVec<[usize; 4]>)> = None;
        let mut more = std::mem::take(&mut self.relay.0);
        // Local targets, as indexes into `view.targets`, with their patterns.
        let mut local: SmallVec<[(usize, Option<SubjectPattern>); 1]> = SmallVec::new();
        for (i, target) in view.targets.iter().enumerate() {
            let pattern = match target.pattern {
                Some(p) => Some(self.names.pattern(p)?),
                None => None,
            };
            let Some(subscriber) = self.routes.lookup(self.net, target.subscriber) else {
                continue;
            };
            let Some(link) = subscriber.link() else {
                local.push((i, pattern.cloned()));
                continue;
            };
            match &mut first {
                Some((l, indexes)) if l.same(link) => indexes.push(i),
                None => first = Some((link.clone(), smallvec::smallvec![i])),
                Some(_) => match more.iter_mut().find(|(l, _)| l.same(link)) {
                    Some((_, indexes)) => indexes.push(i),
                    None => more.push((link.clone(), smallvec::smallvec![i])),
                },
            }
        }
        let delivered = if local.is_empty() {
            0
        } else {
            self.deliver_locally(view, targeted, &mut local)?
        };
        match &first {
            // One link has every target: the frame goes on as received.
            Some((link, indexes)) if more.is_empty() && indexes.len() == view.targets.len() => {
                let _ = link.out().send_raw(frame, FrameClass::Report, "Report");
            }
            _ => {
                for (link, indexes) in first.iter().chain(more.iter()) {
                    let targets = indexes.iter().map(|&i| view.targets[i]);
                    let _ = link.out().send_report_head(view, targets);
                }
            }
        }
        // The links are dropped now rather than held until the next report.
        more.clear();
        self.relay.0 = more;
        Ok(Routed::Delivered(delivered))
    }

    /// Delivers a received report to its local targets, all sharing one copy of its parts (the
    /// last delivery takes them over rather than cloning them), and returns the size of the
    /// content. With `share`, the content is a slice of the chunk rather than a copy.
    fn deliver_locally(
        &mut self,
        view: &ReportView<'_>,
        targeted: bool,
        local: &mut SmallVec<[(usize, Option<SubjectPattern>); 1]>,
    ) -> Result<usize, String> {
        let Some(publisher) = self.routes.lookup(self.net, view.publisher).cloned() else {
            return Ok(0);
        };
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
        let subject = self.names.subject(view.subject)?.clone();
        let data = ReportData {
            publisher,
            subject,
            content,
            targeted,
        };
        // A conflated report stands for the ones replaced on its way.
        let stands_for = view.conflated.unwrap_or(0);
        let last = local.pop();
        for (i, pattern) in local.drain(..) {
            if let Some(subscriber) = self.routes.lookup(self.net, view.targets[i].subscriber) {
                self.batch.push(
                    subscriber,
                    Report {
                        data: data.clone(),
                        pattern,
                        conflated: stands_for,
                    },
                );
            }
        }
        if let Some((i, pattern)) = last {
            if let Some(subscriber) = self.routes.lookup(self.net, view.targets[i].subscriber) {
                self.batch.push(
                    subscriber,
                    Report {
                        data,
                        pattern,
                        conflated: stands_for,
                    },
                );
            }
        }
        Ok(view.content.bytes.len().max(1))
    }
}

/// The subscribers of one report per link beyond the first, as indexes into its targets
/// (kept between reports for its capacity).
#[derive(Default)]
pub(super) struct Relay(Vec<(Link, SmallVec<[usize; 4]>)>);

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
