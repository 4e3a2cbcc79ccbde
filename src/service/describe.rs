//! The answer to the reserved request [`DESCRIBE_METHOD`]: a service's descriptor, made only
//! when asked.
//!
//! Subjects are those with a cached report (`cached: true`) and those of the publisher's
//! record of its last distinct subjects (see `report::PublishedSubjects`), each with the number
//! of its current subscribers that have a matching pattern.

use std::collections::BTreeMap;
use std::time::Instant;

use super::broker::Broker;
use super::context::ServiceState;
use crate::descriptor::{MethodSpec, ServiceDescriptor, SubjectInfo, DESCRIBE_METHOD};
use crate::names::Subject;

/// Whether a request's method is the reserved describe request.
pub(super) fn is_describe(method: &str) -> bool {
    method == DESCRIBE_METHOD
}

impl ServiceState {
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
    /// The subjects published on, sorted: cached ones, then those published lately.
    fn subjects(&self, now: Instant) -> Vec<SubjectInfo> {
        let mut all: BTreeMap<&Subject, bool> = BTreeMap::new();
        for subject in self.cache.subjects(now) {
            all.insert(subject, true);
        }
        for subject in self.published.iter() {
            all.entry(subject).or_insert(false);
        }
        all.into_iter()
            .map(|(subject, cached)| {
                let subscribers = self
                    .subscribers
                    .values()
                    .filter(|entry| entry.patterns.iter().any(|p| p.matches(subject.as_str())))
                    .count();
                SubjectInfo::new(subject.clone(), cached, subscribers)
            })
            .collect()
    }
}
