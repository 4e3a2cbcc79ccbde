//! What one peer has made this node hold, counted against the [`Limits`] it may not pass.

use std::collections::{HashMap, HashSet};

use super::config::Limits;
use crate::delivery::Routes;
use crate::ids::AgentId;
use crate::names::SubjectPattern;

/// The subscriptions requested through one link and not withdrawn, by subscriber, counted
/// against [`Limits::subscriptions_per_link`](crate::Limits::subscriptions_per_link).
#[derive(Default)]
pub(crate) struct Subscriptions {
    /// Patterns by subscriber, then by publisher.
    by_subscriber: HashMap<AgentId, PatternsByPublisher>,
    count: usize,
}

type PatternsByPublisher = HashMap<AgentId, HashSet<SubjectPattern>>;

impl Subscriptions {
    pub(crate) fn add(
        &mut self,
        subscriber: AgentId,
        (publisher, pattern): (AgentId, SubjectPattern),
        limits: &Limits,
        net: &Routes,
    ) -> Result<(), String> {
        let mine = self
            .by_subscriber
            .get(&subscriber)
            .and_then(|p| p.get(&publisher));
        if mine.is_some_and(|patterns| patterns.contains(&pattern)) {
            return Ok(());
        }
        let per_publisher = limits.patterns_per_publisher;
        if mine.is_some_and(|patterns| patterns.len() >= per_publisher) {
            return Err(format!(
                "subscriber {subscriber} requested more than {per_publisher} patterns from one publisher (the limit)"
            ));
        }
        let limit = limits.subscriptions_per_link;
        if self.count >= limit {
            // Subscriptions to publishers since gone are never withdrawn by their subscribers:
            // they do not count.
            for publishers in self.by_subscriber.values_mut() {
                publishers.retain(|publisher, _| net.lookup(*publisher).is_some());
            }
            self.by_subscriber
                .retain(|_, publishers| !publishers.is_empty());
            self.count = self
                .by_subscriber
                .values()
                .flat_map(|p| p.values())
                .map(HashSet::len)
                .sum();
            if self.count >= limit {
                return Err(format!(
                    "the peer requested more than {limit} subscriptions (the limit per link)"
                ));
            }
        }
        let patterns = self
            .by_subscriber
            .entry(subscriber)
            .or_default()
            .entry(publisher)
            .or_default();
        if patterns.insert(pattern) {
            self.count += 1;
        }
        Ok(())
    }

    pub(crate) fn remove(
        &mut self,
        subscriber: AgentId,
        (publisher, pattern): &(AgentId, SubjectPattern),
    ) {
        let Some(publishers) = self.by_subscriber.get_mut(&subscriber) else {
            return;
        };
        if let Some(patterns) = publishers.get_mut(publisher) {
            if patterns.remove(pattern) {
                self.count -= 1;
            }
            if patterns.is_empty() {
                publishers.remove(publisher);
            }
        }
        if publishers.is_empty() {
            self.by_subscriber.remove(&subscriber);
        }
    }

    /// Subscriptions held, and whether this one is among them.
    pub(crate) fn holds(
        &self,
        subscriber: AgentId,
        key: &(AgentId, SubjectPattern),
    ) -> (usize, bool) {
        let held = self
            .by_subscriber
            .get(&subscriber)
            .and_then(|p| p.get(&key.0))
            .is_some_and(|patterns| patterns.contains(&key.1));
        (self.count, held)
    }

    /// The subscriber is gone: so are its subscriptions.
    pub(crate) fn forget(&mut self, subscriber: AgentId) {
        if let Some(publishers) = self.by_subscriber.remove(&subscriber) {
            self.count -= publishers.values().map(HashSet::len).sum::<usize>();
        }
    }
}
