//! The per-service broker: subscriptions on both sides of a report, the report cache, and
//! the registry operations of a service.
//!
//! Subscriber side: subscriptions by name are sticky (an internal registry subscription by
//! name tells the broker about every service of that name, present and future); subscriptions
//! by binding follow the agent identity (an internal registry subscription by agent). For each
//! publisher agent the broker sends one `SubscriptionRequested` per pattern straight to the
//! publisher's inbox (or across its link), with the format the subscriber wants the content in
//! across processes. A pattern asked for in both formats (by name and by binding) is asked
//! for in JSON: a typed subscriber decodes JSON content as well as bincode.
//!
//! Publisher side: the broker keeps, per subscriber agent, the patterns it asked for, and
//! watches the subscriber's agent so that its disappearance withdraws its subscriptions.
//! A subscription asked for again in another format changes the format of what comes next;
//! it is not a new subscription (no notice, no replay of the cache).
//! Publishing matches the subject against each pattern and pushes one delivery per match into
//! the subscriber's inbox; the content is shared, never copied or serialized. Who gets a
//! subject (local deliveries, and per link the list of subscribers behind it, encoded) is
//! kept for each subject published on lately (at most [`SUBJECTS_KEPT`]) until the
//! subscribers or the node's routes change, since a publisher repeats its subjects, whether
//! one or a thousand.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher as _;
use std::time::Instant;

use crate::delivery::Binding;
use crate::delivery::{Delivery, Inbox, WatchedBy};
use crate::delivery::{PublisherNotice, ReportData};
use crate::delivery::{RegistryEvent, Status, Watch};
use crate::ids::{AgentId, IdMap, RecentTable};
use crate::names::{GroupName, IntoName, ServiceName, Subject, SubjectPattern};
use crate::node::Node;
use crate::payload::Format;
use crate::registry::{Subscribe, Unsubscribe};
use crate::report::{PublishedSubjects, ReportFanout};
use crate::report::{ReportCache, SubscriptionNotice, SubscriptionStatus};

/// A notice for one of the service's hooks, produced by the broker.
pub(crate) enum Notice {
    Subscription(SubscriptionNotice),
    Publisher(PublisherNotice),
}

/// Patterns and the format each was asked for in.
pub(super) type Patterns = BTreeMap<SubjectPattern, Format>;

pub(super) struct SubscriberEntry {
    pub(super) binding: Binding,
    /// Each pattern, the format it was asked in, and whether it asked to be conflated (for
    /// introspection: the links on the way and the subscriber's inbox do the conflating).
    pub(super) patterns: Vec<(SubjectPattern, Format, bool)>,
}

pub(super) struct PublisherEntry {
    pub(super) binding: Binding,
    pub(super) patterns: Patterns,
}

#[derive(Default)]
pub(crate) struct Broker {
    pub(super) groups: BTreeSet<GroupName>,
    pub(super) cache: ReportCache,
    pub(super) subscribers: IdMap<AgentId, SubscriberEntry>,
    pub(super) by_name: HashMap<ServiceName, Patterns>,
    pub(super) by_agent: IdMap<AgentId, (Binding, Patterns)>,
    pub(super) publishers: IdMap<AgentId, PublisherEntry>,
    pub(super) watches: IdMap<AgentId, usize>,
    /// The subjects published on lately, with who gets a report on each.
    pub(super) subjects: Subjects,
    /// The distinct subjects published on lately, for the descriptor; a subject is recorded
    /// when it is first published (or first again once `subjects` forgot it).
    pub(super) published: PublishedSubjects,
}

/// The subjects a publisher published on lately, each validated and allocated once, not per
/// report, with who gets a report on it: its fan-out, worked out at its first report and kept
/// until the subscribers change (then all are dropped, with the links they hold, see
/// [`Broker::subscribers_mut`]) or the node's routes do (then it is worked out again). At most
/// [`SUBJECTS_KEPT`], then forgotten all at once. Found by their text, the last one found
/// first, so that a publisher repeating one subject or cycling over a thousand looks each
/// report's up once.
#[derive(Default)]
pub(super) struct Subjects(RecentTable<Published, foldhash::fast::RandomState>);

/// A subject published on lately, and who gets a report on it (if worked out yet).
pub(super) struct Published {
    pub(super) subject: Subject,
    pub(super) fanout: Option<ReportFanout>,
}

impl Subjects {
    /// Where the subject spelled `text` is, if it was published on lately. (The service's
    /// own subjects, not a peer's: a fast seeded hash.)
    pub(super) fn find(&mut self, text: &str) -> Option<usize> {
        self.0.find(text, |p| p.subject.as_str() == text)
    }

    /// Keeps `subject`, not kept yet; where it is.
    pub(super) fn insert(&mut self, subject: Subject) -> usize {
        if self.0.len() >= SUBJECTS_KEPT {
            self.0.clear();
        }
        let hash = self.0.hash(subject.as_str());
        let published = Published {
            subject,
            fanout: None,
        };
        self.0
            .insert(hash, published, |h, p| h.hash_one(p.subject.as_str()))
    }

    /// The subject at `at` (from [`Subjects::find`] or [`Subjects::insert`]).
    pub(super) fn get(&mut self, at: usize) -> &mut Published {
        self.0.get_mut(at)
    }

    /// Drops every fan-out.
    fn drop_fanouts(&mut self) {
        for published in self.0.values_mut() {
            published.fanout = None;
        }
    }
}

/// Most subjects a publisher keeps validated, and most fan-outs it keeps.
pub(super) const SUBJECTS_KEPT: usize = 4096;

/// A service's broker, made on first use: an idle service never publishes or subscribes,
/// and an empty broker is some 600 bytes of empty maps (most of an idle service's state).
/// Reading an unmade one reads an empty broker.
#[derive(Default)]
pub(crate) struct LazyBroker(Option<Box<Broker>>);

impl LazyBroker {
    /// A broker for a service in `groups`, made now if there are any.
    pub(crate) fn with_groups(groups: Vec<GroupName>) -> Self {
        LazyBroker((!groups.is_empty()).then(|| Box::new(Broker::with_groups(groups))))
    }
}

impl std::ops::Deref for LazyBroker {
    type Target = Broker;
    fn deref(&self) -> &Broker {
        static EMPTY: std::sync::OnceLock<Broker> = std::sync::OnceLock::new();
        self.0
            .as_deref()
            .unwrap_or_else(|| EMPTY.get_or_init(Broker::default))
    }
}

impl std::ops::DerefMut for LazyBroker {
    fn deref_mut(&mut self) -> &mut Broker {
        self.0.get_or_insert_default()
    }
}

impl Broker {
    pub(crate) fn with_groups(groups: Vec<GroupName>) -> Self {
        Broker {
            groups: groups.into_iter().collect(),
            ..Broker::default()
        }
    }

    /// The subscribers, for changing them: the cached fan-out is dropped first, so no change
    /// can leave it out of date.
    pub(super) fn subscribers_mut(&mut self) -> &mut IdMap<AgentId, SubscriberEntry> {
        self.subjects.drop_fanouts();
        &mut self.subscribers
    }

    /// Who gets a report on the subject at `at` in [`Broker::subjects`] now, with the
    /// subject; `None` when the service has no subscribers. It is worked out once and kept
    /// while the subscribers (a change drops it, see [`Broker::subscribers_mut`]) and the
    /// node's routes stay the same.
    pub(super) fn fanout(
        &mut self,
        at: usize,
        net: &crate::delivery::Routes,
    ) -> Option<(&ReportFanout, &Subject)> {
        if self.subscribers.is_empty() {
            return None;
        }
        let Published { subject, fanout } = self.subjects.get(at);
        if !fanout.as_ref().is_some_and(|f| f.is_current(net)) {
            let mut worked_out = ReportFanout::default();
            for entry in self.subscribers.values() {
                for (pattern, format, _) in entry
                    .patterns
                    .iter()
                    .filter(|(p, ..)| p.matches(subject.as_str()))
                {
                    worked_out.add(net, &entry.binding, Some(pattern), *format);
                }
            }
            *fanout = Some(worked_out);
        }
        Some((fanout.as_ref().expect("set above"), subject))
    }

    /// Where `subject` is in [`Broker::subjects`]: found by its text (`unvalidated`, when
    /// given as a string: then it is validated only if it is new), or validated and kept,
    /// and recorded for the descriptor, if new.
    pub(super) fn subject(
        &mut self,
        subject: impl IntoName<Subject>,
    ) -> Result<usize, crate::names::InvalidName> {
        if let Some(at) = subject.unvalidated().and_then(|t| self.subjects.find(t)) {
            return Ok(at);
        }
        let subject = subject.into_name()?;
        if let Some(at) = self.subjects.find(subject.as_str()) {
            return Ok(at);
        }
        self.published.record(&subject);
        Ok(self.subjects.insert(subject))
    }

    pub(super) fn watch(&mut self, node: &Node, me: &Binding, inbox: &Inbox, target: &Binding) {
        let count = self.watches.entry(target.agent()).or_insert(0);
        *count += 1;
        if *count == 1 {
            node.registry().do_send(Subscribe {
                subscriber: me.agent(),
                inbox: inbox.clone(),
                watch: Watch::Agent(target.agent()),
                by: WatchedBy::Broker,
                known: Some(target.clone()),
            });
        }
    }

    pub(super) fn unwatch(&mut self, node: &Node, me: &Binding, agent: AgentId) {
        if let Some(count) = self.watches.get_mut(&agent) {
            *count -= 1;
            if *count == 0 {
                self.watches.remove(&agent);
                node.registry().do_send(Unsubscribe {
                    subscriber: me.agent(),
                    watch: Watch::Agent(agent),
                    by: WatchedBy::Broker,
                });
            }
        }
    }

    /// Patterns this service wants from `publisher`, by its name and by its agent, each with
    /// its format (JSON where both ask for a pattern and one asks for JSON).
    fn desired(&self, publisher: &Binding) -> Patterns {
        let mut set = Patterns::new();
        let mut add = |patterns: &Patterns| {
            for (pattern, &format) in patterns {
                let at = set.entry(pattern.clone()).or_insert(format);
                if format != Format::Bincode {
                    *at = format;
                }
            }
        };
        if !publisher.name().is_anonymous() {
            if let Some(p) = self.by_name.get(publisher.name()) {
                add(p);
            }
        }
        if let Some((_, p)) = self.by_agent.get(&publisher.agent()) {
            add(p);
        }
        set
    }

    /// Brings the subscriptions sent to one publisher in line with what is desired.
    /// A subscription says whether it is conflated (`inbox` knows): to a publisher in
    /// another process, so that the links on the way conflate its reports too; to any, so
    /// that the publisher lists it as conflated.
    pub(super) fn sync_publisher(&mut self, me: &Binding, inbox: &Inbox, publisher: &Binding) {
        let desired = self.desired(publisher);
        let agent = publisher.agent();
        if desired.is_empty() && !self.publishers.contains_key(&agent) {
            return;
        }
        let entry = self
            .publishers
            .entry(agent)
            .or_insert_with(|| PublisherEntry {
                binding: publisher.clone(),
                patterns: Patterns::new(),
            });
        entry.binding = publisher.clone();
        for (p, &format) in &desired {
            if entry.patterns.insert(p.clone(), format) != Some(format) {
                publisher.send(Delivery::SubscriptionRequested {
                    subscriber: me.clone(),
                    pattern: p.clone(),
                    format,
                    conflated: inbox.conflates(publisher, p),
                });
            }
        }
        let stale: Vec<SubjectPattern> = entry
            .patterns
            .keys()
            .filter(|p| !desired.contains_key(*p))
            .cloned()
            .collect();
        for p in stale {
            entry.patterns.remove(&p);
            publisher.send(Delivery::SubscriptionWithdrawn {
                subscriber: me.agent(),
                pattern: p,
            });
        }
        if entry.patterns.is_empty() {
            self.publishers.remove(&agent);
        }
    }

    pub(crate) fn on_registry_event(
        &mut self,
        node: &Node,
        me: &Binding,
        inbox: &Inbox,
        event: RegistryEvent,
    ) -> Vec<Notice> {
        if event.group.is_some() {
            return Vec::new();
        }
        let agent = event.binding.agent();
        match event.status {
            Status::Available => {
                self.sync_publisher(me, inbox, &event.binding);
                Vec::new()
            }
            Status::Withdrawn => {
                let mut notices = Vec::new();
                if let Some(publisher) = self.publishers.remove(&agent) {
                    notices.push(Notice::Publisher(PublisherNotice {
                        publisher: publisher.binding,
                        subscriber: me.clone(),
                        status: Status::Withdrawn,
                    }));
                }
                if let Some(subscriber) = self.subscribers_mut().remove(&agent) {
                    self.unwatch(node, me, agent);
                    for (pattern, format, _) in subscriber.patterns {
                        notices.push(Notice::Subscription(SubscriptionNotice {
                            subscriber: subscriber.binding.clone(),
                            pattern,
                            format,
                            status: SubscriptionStatus::Withdrawn,
                        }));
                    }
                }
                notices
            }
        }
    }

    pub(crate) fn on_subscription_requested(
        &mut self,
        node: &Node,
        me: &Binding,
        inbox: &Inbox,
        subscriber: Binding,
        (pattern, format, conflated): (SubjectPattern, Format, bool),
    ) -> Vec<Notice> {
        let agent = subscriber.agent();
        let first = !self.subscribers.contains_key(&agent);
        let entry = self
            .subscribers_mut()
            .entry(agent)
            .or_insert_with(|| SubscriberEntry {
                binding: subscriber.clone(),
                patterns: Vec::new(),
            });
        if let Some((_, was, was_conflated)) =
            entry.patterns.iter_mut().find(|(p, ..)| *p == pattern)
        {
            // Asked for again, perhaps in another format, or conflated now: what comes next
            // comes in that one.
            (*was, *was_conflated) = (format, conflated);
            return Vec::new();
        }
        entry.patterns.push((pattern.clone(), format, conflated));
        if first {
            self.watch(node, me, inbox, &subscriber);
            subscriber.send(Delivery::Publisher(PublisherNotice {
                publisher: me.clone(),
                subscriber: subscriber.clone(),
                status: Status::Available,
            }));
        }
        // The cached reports go the way published ones do, in the format asked for.
        let cached = self.cache.matching(&pattern, Instant::now());
        if !cached.is_empty() {
            let mut fanout = ReportFanout::default();
            fanout.add(node.routes(), &subscriber, Some(&pattern), format);
            for (subject, content) in cached {
                fanout.send(ReportData {
                    publisher: me.clone(),
                    subject,
                    content,
                    targeted: false,
                });
            }
        }
        vec![Notice::Subscription(SubscriptionNotice {
            subscriber,
            pattern,
            format,
            status: SubscriptionStatus::Requested,
        })]
    }

    pub(crate) fn on_subscription_withdrawn(
        &mut self,
        node: &Node,
        me: &Binding,
        agent: AgentId,
        pattern: SubjectPattern,
    ) -> Vec<Notice> {
        let Some(entry) = self.subscribers_mut().get_mut(&agent) else {
            return Vec::new();
        };
        let Some(at) = entry.patterns.iter().position(|(p, ..)| *p == pattern) else {
            return Vec::new();
        };
        let (_, format, _) = entry.patterns.remove(at);
        let subscriber = entry.binding.clone();
        if entry.patterns.is_empty() {
            self.subscribers_mut().remove(&agent);
            self.unwatch(node, me, agent);
            subscriber.send(Delivery::Publisher(PublisherNotice {
                publisher: me.clone(),
                subscriber: subscriber.clone(),
                status: Status::Withdrawn,
            }));
        }
        vec![Notice::Subscription(SubscriptionNotice {
            subscriber,
            pattern,
            format,
            status: SubscriptionStatus::Withdrawn,
        })]
    }
}

/// Logs an invalid argument of an operation; the operation is not performed.
pub(super) fn refuse(me: &Binding, op: &str, error: impl std::fmt::Display) {
    tracing::error!(service = %me, "{op}: {error}; nothing done");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_found_by_their_text_and_bounded() {
        let mut subjects = Subjects::default();
        let a = subjects.insert(Subject::new("a.1").unwrap());
        let b = subjects.insert(Subject::new("b.1").unwrap());
        // The last found, and the others, by their text; an unknown one is not.
        for (text, at) in [("b.1", b), ("a.1", a), ("a.1", a), ("b.1", b)] {
            assert_eq!(subjects.find(text), Some(at));
            assert_eq!(subjects.get(at).subject.as_str(), text);
        }
        assert_eq!(subjects.find("a.2"), None);
        assert_eq!(subjects.find("a.1"), Some(a));
        // A fan-out kept for a subject is dropped with all the others.
        subjects.get(a).fanout = Some(ReportFanout::default());
        subjects.get(b).fanout = Some(ReportFanout::default());
        subjects.drop_fanouts();
        assert!(subjects.get(a).fanout.is_none() && subjects.get(b).fanout.is_none());
        // At most SUBJECTS_KEPT: then they start over, and each is still found right.
        for i in 0..SUBJECTS_KEPT + 10 {
            let text = format!("s.{i}");
            let at = subjects.insert(Subject::new(&text).unwrap());
            assert!(subjects.0.len() <= SUBJECTS_KEPT);
            assert_eq!(subjects.find(&text), Some(at));
            assert_eq!(subjects.get(at).subject.as_str(), text);
        }
        assert_eq!(subjects.find("a.1"), None);
        // The two of the start, then SUBJECTS_KEPT + 10 more: 12 since the last start.
        assert_eq!(subjects.0.len(), 12);
    }
}
