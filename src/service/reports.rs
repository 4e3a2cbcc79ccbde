//! A service's reports: publishing (with the cache and the fan-out), and subscribing to
//! other services' reports.

use std::time::{Duration, Instant};

use super::broker::{refuse, Patterns};
use super::{Service, ServiceContext};
use crate::delivery::{Binding, Delivery, Publishers, ReportData, Watch, WatchedBy};
use crate::names::{IntoName, Subject, SubjectPattern};
use crate::payload::{Content, Format, Payload};
use crate::registry::{Subscribe, Unsubscribe};
use crate::report::{IntoTarget, Lifetime, ReportFanout, Target};

impl<S: Service> ServiceContext<S> {
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
        // validated, or one of those published on lately, instead of validating and
        // allocating it again. Only a new subject is recorded for the descriptor.
        let broker = &mut *self.core.broker;
        let at = match broker.subject(subject) {
            Ok(at) => at,
            Err(e) => return refuse(&self.core.binding, "publish_report", e),
        };
        // A report that is not cached and goes to remote subscribers only needs no payload:
        // its value is encoded where it is, without being moved behind a shared pointer.
        // (A `serde_json::Value` travels as JSON: it takes the general way.)
        let is_json = std::any::TypeId::of::<T>() == std::any::TypeId::of::<serde_json::Value>();
        if matches!(lifetime, Lifetime::None) && !is_json {
            broker.cache.forget(&broker.subjects.get(at).subject);
            let Some((fanout, subject)) = broker.fanout(at, self.core.node.routes()) else {
                return;
            };
            if fanout.is_remote_typed_only() {
                return fanout.send_value(&self.core.binding, subject, &content);
            }
            // Local or JSON subscribers share the value: sent with the fan-out just found
            // (the cache entry is already gone), not looked up again.
            return fanout.send(ReportData {
                publisher: self.core.binding.clone(),
                subject: subject.clone(),
                content: Payload::new(content),
                targeted: false,
            });
        }
        self.publish_payload(at, Payload::new(content), lifetime);
    }

    /// Publishes `content` on the subject at `at` in the broker's subjects.
    fn publish_payload(&mut self, at: usize, content: Payload, lifetime: Lifetime) {
        let broker = &mut *self.core.broker;
        let subject = &broker.subjects.get(at).subject;
        broker.cache.post(subject, &content, lifetime, Instant::now);
        if let Some((fanout, subject)) = broker.fanout(at, self.core.node.routes()) {
            fanout.send(ReportData {
                publisher: self.core.binding.clone(),
                subject: subject.clone(),
                content,
                targeted: false,
            });
        }
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
        let net = self.core.node.routes();
        let mut fanout = ReportFanout::default();
        for (pattern, format, _) in entry
            .patterns
            .iter()
            .filter(|(p, ..)| p.matches(subject.as_str()))
        {
            fanout.add(net, &entry.binding, Some(pattern), *format);
        }
        if fanout.is_empty() {
            // No pattern matched: JSON if the subscriber asked for JSON anywhere (a typed
            // subscriber decodes it too).
            let format = match entry.patterns.iter().any(|(_, f, _)| *f == Format::Json) {
                true => Format::Json,
                false => Format::Bincode,
            };
            fanout.add(net, &entry.binding, None, format);
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
            .map(|e| {
                let patterns = e.patterns.iter().map(|(p, ..)| p.clone()).collect();
                (e.binding.clone(), patterns)
            })
            .collect()
    }

    // ---- reports: subscribing ----

    /// Subscribes to reports matching `pattern` from a target: a service name (every service
    /// of that name, now and later) or a binding (that agent, following its identity). Reports
    /// arrive at [`Service::report`]; matching cached reports arrive at once. Reports from
    /// another process come in bincode (see [`ServiceContext::monitor_reports_as`]).
    pub fn monitor_reports(
        &mut self,
        target: impl IntoTarget,
        pattern: impl IntoName<SubjectPattern>,
    ) {
        self.monitor_reports_as(target, pattern, Format::Bincode)
    }

    /// [`monitor_reports`](ServiceContext::monitor_reports), with the content of reports from
    /// another process in `format`: JSON for a subscriber without the publisher's Rust types
    /// (a tool, a gateway), which reads it with [`Payload::to_json`] or decodes it as a
    /// `serde_json::Value`. The publisher's process encodes JSON once per report when some
    /// subscriber asked for it, and only then; cached reports come in `format` too.
    ///
    /// The format matters across processes only: from a publisher in this process, every
    /// subscriber gets the value itself, on which [`Payload::to_json`] works as well. A
    /// typed subscriber may ask for JSON (it decodes JSON content into its type), at the cost
    /// of the larger encoding. Asking again for the same target and pattern in another format
    /// changes the format of the reports that follow.
    pub fn monitor_reports_as(
        &mut self,
        target: impl IntoTarget,
        pattern: impl IntoName<SubjectPattern>,
        format: Format,
    ) {
        let (target, pattern) = match (target.into_target(), pattern.into_name()) {
            (Ok(t), Ok(p)) => (t, p),
            (Err(e), _) | (_, Err(e)) => return refuse(&self.core.binding, "monitor_reports", e),
        };
        let core = &mut self.core;
        let broker = &mut *core.broker;
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
                if set.insert(pattern, format) == Some(format) {
                    return;
                }
                if first {
                    core.node.registry().do_send(Subscribe {
                        subscriber: core.binding.agent(),
                        inbox: core.inbox.clone(),
                        watch: Watch::Name(name),
                        by: WatchedBy::Broker,
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
                        broker.sync_publisher(&core.binding, &core.inbox, &publisher);
                    }
                }
            }
            Target::Binding(binding) => {
                let agent = binding.agent();
                let entry = broker
                    .by_agent
                    .entry(agent)
                    .or_insert_with(|| (binding.clone(), Patterns::new()));
                let first = entry.1.is_empty();
                if entry.1.insert(pattern, format) == Some(format) {
                    return;
                }
                if first {
                    broker.watch(&core.node, &core.binding, &core.inbox, &binding);
                } else if broker.publishers.contains_key(&agent) {
                    broker.sync_publisher(&core.binding, &core.inbox, &binding);
                }
            }
        }
    }

    /// Conflates the subscription to `target` with `pattern` (made or to be made with
    /// [`monitor_reports`](ServiceContext::monitor_reports) or its variants): when this
    /// service's inbox is full
    /// ([`NodeConfig::inbox_capacity`](crate::NodeConfig::inbox_capacity)), its reports are not
    /// dropped, as other reports are, but kept aside, only the latest per publisher and
    /// subject, and handed to the service once what was queued before them is handled.
    /// A report that replaced others says how many ([`Report::conflated`](crate::Report::conflated)).
    /// A slow subscriber in the publisher's process thus ends with the last value of every
    /// subject, however far behind it fell.
    ///
    /// Across processes, the subscription says it is conflated to every process on its way
    /// to the publisher, and each link on the way conflates too: while a link's outbound
    /// buffer is full ([`ExchangeConfig::outbound_limit`](crate::ExchangeConfig::outbound_limit)),
    /// this service's reports are kept aside there, the latest per publisher and subject,
    /// and sent once the link has room, saying how many they replaced, where other reports
    /// are dropped. So a subscriber whose process stops reading for a while also ends with
    /// every subject's last value. The link that brings this service's reports is also read
    /// ahead of it while reports keep coming (other links are read only as fast as their
    /// services handle what they bring), so that a backlog reaches its inbox. What a link
    /// keeps aside is bounded by its outbound limit again; past that (more subjects than
    /// fit), reports are dropped (`netsvc-bench compare`'s `burst_unpaced` row measures
    /// both). Ending the subscription ([`ignore_reports`](ServiceContext::ignore_reports))
    /// ends it. The publisher's node lists the subscription as conflated
    /// ([`SubscriptionInfo::conflated`](crate::SubscriptionInfo::conflated), the `CONFLATED`
    /// column of `netsvc list subscriptions`).
    pub fn conflate_reports(
        &mut self,
        target: impl IntoTarget,
        pattern: impl IntoName<SubjectPattern>,
    ) {
        let (target, pattern) = match (target.into_target(), pattern.into_name()) {
            (Ok(t), Ok(p)) => (t, p),
            (Err(e), _) | (_, Err(e)) => return refuse(&self.core.binding, "conflate_reports", e),
        };
        let core = &mut self.core;
        let from = publishers(&target);
        core.inbox.conflate(from.clone(), pattern.clone(), true);
        // Publishers already asked are asked again, conflated, so that the links on the way
        // conflate too and the publisher lists it so (it takes it as the same subscription).
        for publisher in core.broker.publishers.values() {
            let binding = &publisher.binding;
            if !from.includes(binding) {
                continue;
            }
            if let Some(&format) = publisher.patterns.get(&pattern) {
                binding.send(Delivery::SubscriptionRequested {
                    subscriber: core.binding.clone(),
                    pattern: pattern.clone(),
                    format,
                    conflated: true,
                });
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
        match &pattern {
            Some(p) => core.inbox.conflate(publishers(&target), p.clone(), false),
            None => core.inbox.unconflate_all(&publishers(&target)),
        }
        let broker = &mut *core.broker;
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
                        by: WatchedBy::Broker,
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
            broker.sync_publisher(&core.binding, &core.inbox, &publisher);
        }
    }
}

/// The publishers of a subscription target, as the inbox knows them.
fn publishers(target: &Target) -> Publishers {
    match target {
        Target::Name(name) => Publishers::Named(name.clone()),
        Target::Binding(binding) => Publishers::Agent(binding.agent()),
    }
}
