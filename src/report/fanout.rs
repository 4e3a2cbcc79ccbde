//! Who gets a published report: local subscribers each get a delivery sharing the content;
//! remote subscribers are gathered per link, and each link gets one frame listing them, with
//! the content encoded once for all links.
//!
//! Formats: in-process, a subscriber gets the value itself whatever format it asked for (the
//! format is about bytes, and there are none). Across processes a subscriber gets the content
//! in bincode (the typed format, or JSON for a `serde_json::Value`, which has no bincode
//! form) unless it asked for JSON. Subscribers that asked for JSON are gathered apart, per
//! link, so that a fan-out without them is exactly what it was before formats existed: the
//! content is encoded once in its own format and nothing more. With them, it is encoded once
//! more, in JSON, for all of their links; a link with both kinds gets one frame per format
//! (one frame listing both when the content is JSON already).

use std::sync::{Arc, OnceLock};

use crate::delivery::Routes;
use crate::delivery::{
    send_report, send_report_as, send_value_report, Binding, Delivery, Link, Report, ReportData,
    ReportHead,
};
use crate::names::{Subject, SubjectPattern};
use crate::payload::{Content, Format, Payload};
use crate::wire::{EncodedTargets, Joined, TargetView};

/// The subscribers of one subject, worked out once so that a publisher can keep it and send
/// many reports with it. In-process subscribers depend only on the subscriptions; the list
/// for each link (encoded as targets are added) also depends on the node's routes, so a
/// fan-out with remote subscribers is kept only while the routes stay the same (see
/// [`ReportFanout::is_current`]).
#[derive(Default)]
pub(crate) struct ReportFanout {
    local: Vec<LocalSubscriber>,
    /// Remote subscribers that take the content in the format it travels in, per link.
    remote: Vec<(Link, EncodedTargets)>,
    /// Remote subscribers that asked for JSON, per link (empty unless one did).
    json: Vec<(Link, EncodedTargets)>,
    /// The routes' generation when a remote subscriber was first considered (`None`: none
    /// was, and the fan-out does not depend on routes).
    generation: Option<u64>,
}

/// An in-process subscriber of a fan-out, with the head of its deliveries, made at the first
/// report sent to it and shared by the next ones.
struct LocalSubscriber {
    binding: Binding,
    pattern: Option<SubjectPattern>,
    head: OnceLock<Arc<ReportHead>>,
}

impl LocalSubscriber {
    fn new(binding: Binding, pattern: Option<SubjectPattern>) -> Self {
        LocalSubscriber {
            binding,
            pattern,
            head: OnceLock::new(),
        }
    }

    /// Sends it a report of `publisher` on `subject` with `content`.
    fn send(&self, publisher: &Binding, subject: &Subject, content: Payload, targeted: bool) {
        let head = match self.head.get() {
            Some(head) if head.is_for(publisher, subject) => head.clone(),
            // A fan-out serves one publisher and one subject; anything else gets its own.
            Some(_) => ReportHead::new(publisher, subject, self.pattern.clone()),
            None => self
                .head
                .get_or_init(|| ReportHead::new(publisher, subject, self.pattern.clone()))
                .clone(),
        };
        self.binding.send(Delivery::Report(Report {
            head,
            content,
            targeted,
            conflated: 0,
        }));
    }
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
        self.local.is_empty() && self.remote.is_empty() && self.json.is_empty()
    }

    /// Adds a subscriber, the pattern it matched (if any) and the format it asked for. A
    /// remote subscriber is added by its current route in `routes` (it may have moved to
    /// another link since it subscribed); one no longer in `routes` is left out (its
    /// withdrawal is on its way).
    pub(crate) fn add(
        &mut self,
        routes: &Routes,
        subscriber: &Binding,
        pattern: Option<&SubjectPattern>,
        format: Format,
    ) {
        if subscriber.link().is_none() {
            return self
                .local
                .push(LocalSubscriber::new(subscriber.clone(), pattern.cloned()));
        }
        self.generation.get_or_insert_with(|| routes.generation());
        let Some(current) = routes.lookup(subscriber.agent()) else {
            return;
        };
        let Some(link) = current.link() else {
            return self
                .local
                .push(LocalSubscriber::new(current.clone(), pattern.cloned()));
        };
        let target = TargetView {
            subscriber: current.agent(),
            pattern: pattern.map(|p| p.as_str().into()),
        };
        let lists = match format {
            Format::Bincode => &mut self.remote,
            Format::Json => &mut self.json,
        };
        match lists.iter_mut().find(|(l, _)| l.same(link)) {
            Some((_, targets)) => targets.push(target),
            None => {
                let mut targets = EncodedTargets::default();
                targets.push(target);
                lists.push((link.clone(), targets));
            }
        }
    }

    /// Whether every subscriber added is remote and takes the content in the format it
    /// travels in: a report for them needs no shared value, only its encoding.
    pub(crate) fn is_remote_typed_only(&self) -> bool {
        self.local.is_empty() && self.json.is_empty()
    }

    /// Sends a report of `value` (not a `serde_json::Value`) in bincode to every subscriber
    /// added, all of them remote ([`ReportFanout::is_remote_typed_only`]), without a
    /// payload shared with local ones: the value is encoded straight from where it is.
    pub(crate) fn send_value(&self, publisher: &Binding, subject: &Subject, value: &dyn Content) {
        debug_assert!(self.is_remote_typed_only());
        if !self.remote.is_empty() {
            let links = self.remote.iter().map(|(link, targets)| (link, targets));
            send_value_report(publisher, subject, value, links);
        }
    }

    /// Sends `data` to every subscriber added.
    pub(crate) fn send(&self, data: ReportData) {
        if !self.json.is_empty() {
            self.send_with_json(&data);
        } else if !self.remote.is_empty() {
            let links = self.remote.iter().map(|(link, targets)| (link, targets));
            send_report(&data, links);
        }
        if let Some((last, rest)) = self.local.split_last() {
            let ReportData {
                publisher,
                subject,
                content,
                targeted,
            } = data;
            for subscriber in rest {
                subscriber.send(&publisher, &subject, content.clone(), targeted);
            }
            last.send(&publisher, &subject, content, targeted);
        }
    }

    /// Sends `data` to the remote subscribers when some asked for JSON: the content encoded
    /// once in its own format for the others, once in JSON for them; when its own format is
    /// JSON, once, and a link with both kinds gets one frame listing both.
    #[inline(never)]
    fn send_with_json(&self, data: &ReportData) {
        if data.content.wire_format() != Format::Json {
            let links = self.remote.iter().map(|(link, targets)| (link, targets));
            send_report(data, links);
            let links = self.json.iter().map(|(link, targets)| (link, targets));
            return send_report_as(data, Format::Json, links);
        }
        let empty = EncodedTargets::default();
        let mut joined: Vec<(&Link, Joined<'_>)> = Vec::new();
        for (link, typed) in &self.remote {
            let json = self.json.iter().find(|(l, _)| l.same(link));
            joined.push((link, Joined(typed, json.map_or(&empty, |(_, t)| t))));
        }
        for (link, json) in &self.json {
            if !self.remote.iter().any(|(l, _)| l.same(link)) {
                joined.push((link, Joined(&empty, json)));
            }
        }
        send_report_as(data, Format::Json, joined.iter().map(|(l, t)| (*l, t)));
    }
}
