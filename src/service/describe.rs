//! The answers to the reserved requests: [`DESCRIBE_METHOD`], a service's descriptor, and
//! [`SUBSCRIBERS_METHOD`], who subscribes to it; each made only when asked.
//!
//! Subjects are those with a cached report (`cached: true`) and those of the publisher's
//! record of its last distinct subjects (see `report::PublishedSubjects`), each with the number
//! of its current subscribers that have a matching pattern.

use std::collections::BTreeMap;
use std::time::Instant;

use super::broker::Broker;
use super::context::ServiceState;
use crate::delivery::Link;
use crate::descriptor::{
    MethodSpec, ServiceDescriptor, SubjectInfo, DESCRIBE_METHOD, MAX_DESCRIBED_SUBJECTS,
};
use crate::introspection::{SubscriptionInfo, SUBSCRIBERS_METHOD};
use crate::names::Subject;

/// The reserved requests every service answers, before its own methods (none can be named
/// so: they start with `$`).
pub(super) enum Reserved {
    /// [`DESCRIBE_METHOD`].
    Describe,
    /// [`SUBSCRIBERS_METHOD`].
    Subscribers,
}

/// The reserved request a method name is, if it is one.
pub(super) fn reserved(method: &str) -> Option<Reserved> {
    match method {
        DESCRIBE_METHOD => Some(Reserved::Describe),
        SUBSCRIBERS_METHOD => Some(Reserved::Subscribers),
        _ => None,
    }
}

impl ServiceState {
    /// The subscriptions to this service's reports, one per (subscriber, pattern), of the
    /// subscribers `viewer` (the link the request came over; `None`: this process) carries:
    /// a process-private subscriber is not named to another process.
    pub(super) fn subscriptions(&self, viewer: Option<&Link>) -> Vec<SubscriptionInfo> {
        let me = &self.binding;
        let publisher = (me.agent(), me.name().as_str().to_owned());
        let mut all: Vec<SubscriptionInfo> = self
            .broker
            .subscribers
            .values()
            .filter(|entry| viewer.is_none_or(|link| link.carries(&entry.binding)))
            .flat_map(|entry| {
                let b = &entry.binding;
                let subscriber = (b.agent(), b.name().as_str().to_owned(), b.process());
                let publisher = publisher.clone();
                entry
                    .patterns
                    .iter()
                    .map(move |(pattern, format, conflated)| {
                        SubscriptionInfo::new(
                            publisher.clone(),
                            subscriber.clone(),
                            (pattern.as_str().to_owned(), *format, *conflated),
                        )
                    })
            })
            .collect();
        all.sort_by(|a, b| (a.subscriber, &a.pattern).cmp(&(b.subscriber, &b.pattern)));
        all
    }

    /// The descriptor of this service, which exports `methods`.
    pub(super) fn describe(&self, methods: &[MethodSpec]) -> ServiceDescriptor {
        let subjects = self.broker.subjects(Instant::now());
        ServiceDescriptor::new(
            self.binding.name().clone(),
            self.binding.agent(),
            methods,
            subjects,
        )
    }
}

impl Broker {
    /// The subjects published on, sorted, at most [`MAX_DESCRIBED_SUBJECTS`] (subscribers
    /// counted for those only), and how many more there were.
    fn subjects(&self, now: Instant) -> (Vec<SubjectInfo>, usize) {
        let mut all: BTreeMap<&Subject, bool> = BTreeMap::new();
        for subject in self.cache.subjects(now) {
            all.insert(subject, true);
        }
        for subject in self.published.iter() {
            all.entry(subject).or_insert(false);
        }
        let left_out = all.len().saturating_sub(MAX_DESCRIBED_SUBJECTS);
        let listed = all
            .into_iter()
            .take(MAX_DESCRIBED_SUBJECTS)
            .map(|(subject, cached)| {
                let subscribers = self
                    .subscribers
                    .values()
                    .filter(|entry| {
                        entry
                            .patterns
                            .iter()
                            .any(|(p, ..)| p.matches(subject.as_str()))
                    })
                    .count();
                SubjectInfo::new(subject.clone(), cached, subscribers)
            })
            .collect();
        (listed, left_out)
    }
}
