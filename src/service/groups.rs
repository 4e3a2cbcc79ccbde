//! A service's groups and its registry subscriptions (availability events).

use super::broker::refuse;
use super::{Service, ServiceContext};
use crate::delivery::{Binding, GroupChange, Watch, WatchedBy};
use crate::names::{GroupName, IntoName, ServiceName};
use crate::registry::{JoinGroup, LeaveGroup, Subscribe, Unsubscribe};

impl<S: Service> ServiceContext<S> {
    // ---- groups ----

    /// Joins a group (announced to group and registry subscribers). Anonymous services
    /// cannot join groups.
    pub fn join_group(&mut self, group: impl IntoName<GroupName>) {
        match group.into_name() {
            Ok(group) => {
                if self.core.broker.groups.insert(group.clone()) {
                    self.core.node.announcer().group_changed(
                        self.core.binding.agent(),
                        &group,
                        GroupChange::Joined,
                    );
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
                    self.core.node.announcer().group_changed(
                        self.core.binding.agent(),
                        &group,
                        GroupChange::Left,
                    );
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
            by: WatchedBy::Service,
            known,
        });
    }

    fn registry_unsubscribe(&self, watch: Watch) {
        self.core.node.registry().do_send(Unsubscribe {
            subscriber: self.core.binding.agent(),
            watch,
            by: WatchedBy::Service,
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
}
