//! The per-service broker: subscriptions on both sides of a report, the report cache, and
//! the registry operations of a service.
//!
//! Subscriber side: subscriptions by name are sticky (an internal registry subscription by
//! name tells the broker about every service of that name, present and future); subscriptions
//! by binding follow the agent identity (an internal registry subscription by agent). For each
//! publisher agent the broker sends one `SubscriptionRequested` per pattern straight to the
//! publisher's inbox.
//!
//! Publisher side: the broker keeps, per subscriber agent, the patterns it asked for, and
//! watches the subscriber's agent so that its disappearance withdraws its subscriptions.
//! Publishing matches the subject against each pattern and pushes one delivery per match into
//! the subscriber's inbox; the content is shared, never copied or serialized. Who gets a
//! subject (local deliveries, and per link the list of subscribers behind it, encoded) is
//! kept for the last subject published until the subscribers or the node's routes change,
//! since a publisher usually repeats its subjects.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use super::{Service, ServiceContext};
use crate::binding::Binding;
use crate::exchange::ReportFanout;
use crate::ids::{AgentId, IdMap};
use crate::inbox::{Delivery, Inbox};
use crate::names::{GroupName, IntoName, ServiceName, Subject, SubjectPattern};
use crate::node::Node;
use crate::payload::{Content, Payload};
use crate::registry::{
    JoinGroup, LeaveGroup, RegistryEvent, Status, Subscribe, Unsubscribe, Watch,
};
use crate::report::{
    IntoTarget, Lifetime, PublisherNotice, Report, ReportCache, ReportData, SubscriptionNotice,
    SubscriptionStatus, Target,
};

/// A notice for one of the service's hooks, produced by the broker.
pub(crate) enum Notice {
    Subscription(SubscriptionNotice),
    Publisher(PublisherNotice),
}

struct SubscriberEntry {
    binding: Binding,
    patterns: Vec<SubjectPattern>,
}

struct PublisherEntry {
    binding: Binding,
    patterns: BTreeSet<SubjectPattern>,
}

#[derive(Default)]
pub(crate) struct Broker {
    groups: BTreeSet<GroupName>,
    cache: ReportCache,
    subscribers: IdMap<AgentId, SubscriberEntry>,
    by_name: HashMap<ServiceName, BTreeSet<SubjectPattern>>,
    by_agent: IdMap<AgentId, (Binding, BTreeSet<SubjectPattern>)>,
    publishers: IdMap<AgentId, PublisherEntry>,
    watches: IdMap<AgentId, usize>,
    /// The subject of the last report published.
    last_subject: Option<Subject>,
    /// Who gets a report on the last subject published; dropped (with the links it holds)
    /// whenever `subscribers` may change (see [`Broker::subscribers_mut`]), worked out again
    /// when the node's routes change.
    fanout: Option<(Subject, ReportFanout)>,
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
    fn subscribers_mut(&mut self) -> &mut IdMap<AgentId, SubscriberEntry> {
        self.fanout = None;
        &mut self.subscribers
    }

    fn watch(&mut self, node: &Node, me: &Binding, inbox: &Inbox, target: &Binding) {
        let count = self.watches.entry(target.agent()).or_insert(0);
        *count += 1;
        if *count == 1 {
            node.registry().do_send(Subscribe {
                subscriber: me.agent(),
                inbox: inbox.clone(),
                watch: Watch::Agent(target.agent()),
                internal: true,
                known: Some(target.clone()),
            });
        }
    }

    fn unwatch(&mut self, node: &Node, me: &Binding, agent: AgentId) {
        if let Some(count) = self.watches.get_mut(&agent) {
            *count -= 1;
            if *count == 0 {
                self.watches.remove(&agent);
                node.registry().do_send(Unsubscribe {
                    subscriber: me.agent(),
                    watch: Watch::Agent(agent),
                    internal: true,
                });
            }
        }
    }

    /// Patterns this service wants from `publisher`: by its name and by its agent.
    fn desired(&self, publisher: &Binding) -> BTreeSet<SubjectPattern> {
        let mut set = BTreeSet::new();
        if !publisher.name().is_anonymous() {
            if let Some(p) = self.by_name.get(publisher.name()) {
                set.extend(p.iter().cloned());
            }
        }
        if let Some((_, p)) = self.by_agent.get(&publisher.agent()) {
            set.extend(p.iter().cloned());
        }
        set
    }

    /// Brings the subscriptions sent to one publisher in line with what is desired.
    fn sync_publisher(&mut self, me: &Binding, publisher: &Binding) {
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
                patterns: BTreeSet::new(),
            });
        entry.binding = publisher.clone();
        for p in desired.difference(&entry.patterns.clone()) {
            entry.patterns.insert(p.clone());
            publisher.send(Delivery::SubscriptionRequested {
                subscriber: me.clone(),
                pattern: p.clone(),
            });
        }
        let stale: Vec<SubjectPattern> = entry.patterns.difference(&desired).cloned().collect();
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
        event: RegistryEvent,
    ) -> Vec<Notice> {
        if event.group.is_some() {
            return Vec::new();
        }
        let agent = event.binding.agent();
        match event.status {
            Status::Available => {
                self.sync_publisher(me, &event.binding);
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
                    for pattern in subscriber.patterns {
                        notices.push(Notice::Subscription(SubscriptionNotice {
                            subscriber: subscriber.binding.clone(),
                            pattern,
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
        pattern: SubjectPattern,
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
        if entry.patterns.contains(&pattern) {
            return Vec::new();
        }
        entry.patterns.push(pattern.clone());
        if first {
            self.watch(node, me, inbox, &subscriber);
            subscriber.send(Delivery::Publisher(PublisherNotice {
                publisher: me.clone(),
                subscriber: subscriber.clone(),
                status: Status::Available,
            }));
        }
        for (subject, content) in self.cache.matching(&pattern, Instant::now()) {
            let data = ReportData {
                publisher: me.clone(),
                subject,
                content,
                targeted: false,
            };
            subscriber.send(Delivery::Report(Report {
                data,
                pattern: Some(pattern.clone()),
            }));
        }
        vec![Notice::Subscription(SubscriptionNotice {
            subscriber,
            pattern,
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
        let Some(at) = entry.patterns.iter().position(|p| *p == pattern) else {
            return Vec::new();
        };
        entry.patterns.remove(at);
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
            status: SubscriptionStatus::Withdrawn,
        })]
    }
}

/// Logs an invalid argument of an operation; the operation is not performed.
fn refuse(me: &Binding, op: &str, error: impl std::fmt::Display) {
    tracing::error!(service = %me, "{op}: {error}; nothing done");
}

impl<S: Service> ServiceContext<S> {
    // ---- groups ----

    /// Joins a group (announced to group and registry subscribers). Anonymous services
    /// cannot join groups.
    pub fn join_group(&mut self, group: impl IntoName<GroupName>) {
        match group.into_name() {
            Ok(group) => {
                if self.core.broker.groups.insert(group.clone()) {
                    self.core
                        .node
                        .router()
                        .group_changed(self.core.binding.agent(), &group, true);
                    self.core
                        .node
                        .registry()
                        .do_send(JoinGroup(self.core.binding.agent(), group));
                }
            }
            Err(e) => refuse(&self.core.binding, "join_group", e),
        }
    }

    /// Leaves a group.
    pub fn leave_group(&mut self, group: impl IntoName<GroupName>) {
        match group.into_name() {
            Ok(group) => {
                if self.core.broker.groups.remove(&group) {
                    self.core
                        .node
                        .router()
                        .group_changed(self.core.binding.agent(), &group, false);
                    self.core
                        .node
                        .registry()
                        .do_send(LeaveGroup(self.core.binding.agent(), group));
                }
            }
            Err(e) => refuse(&self.core.binding, "leave_group", e),
        }
    }

    /// Groups this service is in (its initial groups and those it joined).
    pub fn joined_groups(&self) -> impl Iterator<Item = &GroupName> {
        self.core.broker.groups.iter()
    }

    // ---- registry subscriptions ----

    fn registry_subscribe(&self, watch: Watch, known: Option<Binding>) {
        self.core.node.registry().do_send(Subscribe {
            subscriber: self.core.binding.agent(),
            inbox: self.core.inbox.clone(),
            watch,
            internal: false,
            known,
        });
    }

    fn registry_unsubscribe(&self, watch: Watch) {
        self.core.node.registry().do_send(Unsubscribe {
            subscriber: self.core.binding.agent(),
            watch,
            internal: false,
        });
    }

    /// Subscribes to every service and group change; the current state is replayed first.
    /// Events arrive at [`Service::availability`].
    pub fn subscribe_registry(&mut self) {
        self.registry_subscribe(Watch::Registry, None)
    }

    /// Ends the subscription to the whole registry.
    pub fn unsubscribe_registry(&mut self) {
        self.registry_unsubscribe(Watch::Registry)
    }

    /// Subscribes to services of this name (no group events); existing ones are replayed.
    pub fn subscribe_name(&mut self, name: impl IntoName<ServiceName>) {
        match name.into_name() {
            Ok(n) => self.registry_subscribe(Watch::Name(n), None),
            Err(e) => refuse(&self.core.binding, "subscribe_name", e),
        }
    }

    /// Ends a subscription by name.
    pub fn unsubscribe_name(&mut self, name: impl IntoName<ServiceName>) {
        match name.into_name() {
            Ok(n) => self.registry_unsubscribe(Watch::Name(n)),
            Err(e) => refuse(&self.core.binding, "unsubscribe_name", e),
        }
    }

    /// Subscribes to one agent's service and group events; if it is gone already, a
    /// `Withdrawn` event arrives at once.
    pub fn subscribe_agent(&mut self, binding: &Binding) {
        self.registry_subscribe(Watch::Agent(binding.agent()), Some(binding.clone()))
    }

    /// Ends a subscription by agent.
    pub fn unsubscribe_agent(&mut self, binding: &Binding) {
        self.registry_unsubscribe(Watch::Agent(binding.agent()))
    }

    /// Subscribes to joins and leaves of a group; current members are replayed.
    pub fn subscribe_group(&mut self, group: impl IntoName<GroupName>) {
        match group.into_name() {
            Ok(g) => self.registry_subscribe(Watch::Group(g), None),
            Err(e) => refuse(&self.core.binding, "subscribe_group", e),
        }
    }

    /// Ends a subscription to a group.
    pub fn unsubscribe_group(&mut self, group: impl IntoName<GroupName>) {
        match group.into_name() {
            Ok(g) => self.registry_unsubscribe(Watch::Group(g)),
            Err(e) => refuse(&self.core.binding, "unsubscribe_group", e),
        }
    }

    // ---- reports: publishing ----

    /// Publishes a report to every subscriber whose pattern matches `subject` (once per
    /// matching pattern) and caches it for `lifetime`. In-process subscribers share the value;
    /// nothing is serialized. An invalid subject is logged and nothing is published.
    pub fn publish_report<T: Content>(
        &mut self,
        subject: impl IntoName<Subject>,
        content: T,
        lifetime: Lifetime,
    ) {
        // A publisher usually repeats its subjects: an equal string reuses the last one
        // validated instead of validating and allocating it again.
        let last = &mut self.core.broker.last_subject;
        let subject = match last
            .as_ref()
            .filter(|l| subject.unvalidated() == Some(l.as_str()))
        {
            Some(l) => l.clone(),
            None => match subject.into_name() {
                Ok(s) => last.insert(s).clone(),
                Err(e) => return refuse(&self.core.binding, "publish_report", e),
            },
        };
        self.publish_payload(subject, Payload::new(content), lifetime);
    }

    fn publish_payload(&mut self, subject: Subject, content: Payload, lifetime: Lifetime) {
        let broker = &mut self.core.broker;
        broker
            .cache
            .post(&subject, &content, lifetime, Instant::now);
        if broker.subscribers.is_empty() {
            return;
        }
        // Who gets a report on this subject is worked out once and kept while the subject,
        // the subscribers and the node's routes stay the same.
        let net = self.core.node.net();
        let fanout = match &mut broker.fanout {
            Some((s, fanout)) if *s == subject && fanout.is_current(net) => fanout,
            cached => {
                let mut fanout = ReportFanout::new(net);
                for entry in broker.subscribers.values() {
                    for pattern in entry
                        .patterns
                        .iter()
                        .filter(|p| p.matches(subject.as_str()))
                    {
                        fanout.add(net, &entry.binding, Some(pattern));
                    }
                }
                &mut cached.insert((subject.clone(), fanout)).1
            }
        };
        fanout.send(ReportData {
            publisher: self.core.binding.clone(),
            subject,
            content,
            targeted: false,
        });
    }

    /// Sends a report to one subscriber only; never cached. Nothing is sent if `subscriber`
    /// has no subscription with this service; if none of its patterns match, it still gets
    /// one delivery, without a pattern.
    pub fn send_report<T: Content>(
        &mut self,
        subscriber: &Binding,
        subject: impl IntoName<Subject>,
        content: T,
    ) {
        let subject = match subject.into_name() {
            Ok(s) => s,
            Err(e) => return refuse(&self.core.binding, "send_report", e),
        };
        let Some(entry) = self.core.broker.subscribers.get(&subscriber.agent()) else {
            tracing::debug!(service = %self.core.binding, subscriber = %subscriber, "send_report: not a subscriber; nothing sent");
            return;
        };
        let net = self.core.node.net();
        let mut fanout = ReportFanout::new(net);
        for pattern in entry
            .patterns
            .iter()
            .filter(|p| p.matches(subject.as_str()))
        {
            fanout.add(net, &entry.binding, Some(pattern));
        }
        if fanout.is_empty() {
            fanout.add(net, &entry.binding, None);
        }
        let content = Payload::new(content);
        fanout.send(ReportData {
            publisher: self.core.binding.clone(),
            subject,
            content,
            targeted: true,
        });
    }

    /// Drops cached reports whose subject matches `pattern` and that were published at least
    /// `age` ago (`Duration::ZERO`: all of them).
    pub fn expire_reports(&mut self, pattern: impl IntoName<SubjectPattern>, age: Duration) {
        match pattern.into_name() {
            Ok(p) => self.core.broker.cache.expire(Some(&p), age, Instant::now()),
            Err(e) => refuse(&self.core.binding, "expire_reports", e),
        }
    }

    /// Drops every cached report published at least `age` ago.
    pub fn expire_all_reports(&mut self, age: Duration) {
        self.core.broker.cache.expire(None, age, Instant::now())
    }

    /// Drops every cached report whose lifetime has run out.
    pub fn purge_reports(&mut self) {
        self.core.broker.cache.purge(Instant::now())
    }

    /// Current subscribers and their patterns.
    pub fn subscribers(&self) -> Vec<(Binding, Vec<SubjectPattern>)> {
        self.core
            .broker
            .subscribers
            .values()
            .map(|e| (e.binding.clone(), e.patterns.clone()))
            .collect()
    }

    // ---- reports: subscribing ----

    /// Subscribes to reports matching `pattern` from a target: a service name (every service
    /// of that name, now and later) or a binding (that agent, following its identity). Reports
    /// arrive at [`Service::report`]; matching cached reports arrive at once.
    pub fn monitor_reports(
        &mut self,
        target: impl IntoTarget,
        pattern: impl IntoName<SubjectPattern>,
    ) {
        let (target, pattern) = match (target.into_target(), pattern.into_name()) {
            (Ok(t), Ok(p)) => (t, p),
            (Err(e), _) | (_, Err(e)) => return refuse(&self.core.binding, "monitor_reports", e),
        };
        let core = &mut self.core;
        let broker = &mut core.broker;
        match target {
            Target::Name(name) => {
                if name.is_anonymous() {
                    return refuse(
                        &core.binding,
                        "monitor_reports",
                        "anonymous services publish to no one by name",
                    );
                }
                let set = broker.by_name.entry(name.clone()).or_default();
                let first = set.is_empty();
                if !set.insert(pattern) {
                    return;
                }
                if first {
                    core.node.registry().do_send(Subscribe {
                        subscriber: core.binding.agent(),
                        inbox: core.inbox.clone(),
                        watch: Watch::Name(name),
                        internal: true,
                        known: None,
                    });
                } else {
                    let known: Vec<Binding> = broker
                        .publishers
                        .values()
                        .filter(|p| *p.binding.name() == name)
                        .map(|p| p.binding.clone())
                        .collect();
                    for publisher in known {
                        broker.sync_publisher(&core.binding, &publisher);
                    }
                }
            }
            Target::Binding(binding) => {
                let agent = binding.agent();
                let entry = broker
                    .by_agent
                    .entry(agent)
                    .or_insert_with(|| (binding.clone(), BTreeSet::new()));
                let first = entry.1.is_empty();
                if !entry.1.insert(pattern) {
                    return;
                }
                if first {
                    broker.watch(&core.node, &core.binding, &core.inbox, &binding);
                } else if broker.publishers.contains_key(&agent) {
                    broker.sync_publisher(&core.binding, &binding);
                }
            }
        }
    }

    /// Ends the subscription to `target` with exactly this pattern.
    pub fn ignore_reports(
        &mut self,
        target: impl IntoTarget,
        pattern: impl IntoName<SubjectPattern>,
    ) {
        match (target.into_target(), pattern.into_name()) {
            (Ok(t), Ok(p)) => self.ignore(t, Some(p)),
            (Err(e), _) | (_, Err(e)) => refuse(&self.core.binding, "ignore_reports", e),
        }
    }

    /// Ends every subscription to `target`.
    pub fn ignore_all_reports(&mut self, target: impl IntoTarget) {
        match target.into_target() {
            Ok(t) => self.ignore(t, None),
            Err(e) => refuse(&self.core.binding, "ignore_all_reports", e),
        }
    }

    fn ignore(&mut self, target: Target, pattern: Option<SubjectPattern>) {
        let core = &mut self.core;
        let broker = &mut core.broker;
        let affected: Vec<Binding> = match &target {
            Target::Name(name) => {
                let Some(set) = broker.by_name.get_mut(name) else {
                    return;
                };
                match &pattern {
                    Some(p) => {
                        set.remove(p);
                    }
                    None => set.clear(),
                }
                if set.is_empty() {
                    broker.by_name.remove(name);
                    core.node.registry().do_send(Unsubscribe {
                        subscriber: core.binding.agent(),
                        watch: Watch::Name(name.clone()),
                        internal: true,
                    });
                }
                broker
                    .publishers
                    .values()
                    .filter(|p| p.binding.name() == name)
                    .map(|p| p.binding.clone())
                    .collect()
            }
            Target::Binding(binding) => {
                let agent = binding.agent();
                let Some((_, set)) = broker.by_agent.get_mut(&agent) else {
                    return;
                };
                match &pattern {
                    Some(p) => {
                        set.remove(p);
                    }
                    None => set.clear(),
                }
                if set.is_empty() {
                    broker.by_agent.remove(&agent);
                    broker.unwatch(&core.node, &core.binding, agent);
                }
                broker
                    .publishers
                    .get(&agent)
                    .map(|p| p.binding.clone())
                    .into_iter()
                    .collect()
            }
        };
        for publisher in affected {
            broker.sync_publisher(&core.binding, &publisher);
        }
    }
}
