//! The registry's messages: registering and withdrawing services, group changes,
//! subscriptions to availability, and lookups.

use actix::{Context, Handler, Message, MessageResult};

use super::{send_event, Entry, Registry, Sub};
use crate::delivery::{Binding, Inbox, Status, Watch, WatchedBy};
use crate::ids::AgentId;
use crate::names::{GroupName, GroupSet, ServiceName};

macro_rules! message {
    ($name:ident => $result:ty) => {
        impl Message for $name {
            type Result = $result;
        }
    };
}

pub(crate) struct Register {
    pub(crate) binding: Binding,
    pub(crate) groups: Vec<GroupName>,
}
message!(Register => ());

impl Handler<Register> for Registry {
    type Result = ();
    fn handle(&mut self, msg: Register, _: &mut Context<Self>) {
        let binding = msg.binding;
        let announced = !binding.name().is_anonymous();
        self.seq += 1;
        let agent = binding.agent();
        self.insert(Entry {
            binding: binding.clone(),
            groups: GroupSet::default(),
            announced,
            seq: self.seq,
        });
        if announced {
            self.announce(&binding, None, Status::Available);
            for group in msg.groups {
                self.join(agent, group);
            }
        } else if !msg.groups.is_empty() {
            tracing::error!(service = %binding, "anonymous services cannot join groups; groups ignored");
        }
    }
}

pub(crate) struct Withdraw(pub(crate) AgentId);
message!(Withdraw => ());

impl Handler<Withdraw> for Registry {
    type Result = ();
    fn handle(&mut self, msg: Withdraw, _: &mut Context<Self>) {
        let agent = msg.0;
        // The withdrawn agent's own subscriptions end with it.
        for subs in self.subs.values_mut() {
            subs.retain(|s| s.subscriber != agent);
        }
        self.subs.retain(|_, subs| !subs.is_empty());
        let Some(entry) = self.agents.get(&agent) else {
            return;
        };
        let groups: Vec<GroupName> = entry.groups.iter().cloned().collect();
        for g in &groups {
            self.leave(agent, g);
        }
        if let Some(entry) = self.remove(agent) {
            if entry.announced {
                self.announce(&entry.binding, None, Status::Withdrawn);
            } else {
                // Anonymous agents are only ever watched by agent.
                self.notify(
                    &Watch::Agent(agent),
                    &entry.binding,
                    None,
                    Status::Withdrawn,
                );
            }
        }
    }
}

pub(crate) struct JoinGroup(pub(crate) AgentId, pub(crate) GroupName);
message!(JoinGroup => ());

impl Handler<JoinGroup> for Registry {
    type Result = ();
    fn handle(&mut self, msg: JoinGroup, _: &mut Context<Self>) {
        self.join(msg.0, msg.1);
    }
}

pub(crate) struct LeaveGroup(pub(crate) AgentId, pub(crate) GroupName);
message!(LeaveGroup => ());

impl Handler<LeaveGroup> for Registry {
    type Result = ();
    fn handle(&mut self, msg: LeaveGroup, _: &mut Context<Self>) {
        self.leave(msg.0, &msg.1);
    }
}

pub(crate) struct Subscribe {
    pub(crate) subscriber: AgentId,
    pub(crate) inbox: Inbox,
    pub(crate) watch: Watch,
    pub(crate) by: WatchedBy,
    /// For a subscription by agent: the binding the subscriber holds, used to answer
    /// `Withdrawn` at once when the agent is not (or no longer) known.
    pub(crate) known: Option<Binding>,
}
message!(Subscribe => ());

impl Handler<Subscribe> for Registry {
    type Result = ();
    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        let sub = Sub {
            subscriber: msg.subscriber,
            inbox: msg.inbox,
            by: msg.by,
        };
        let subs = self.subs.entry(msg.watch.clone()).or_default();
        // Subscribing again replaces the subscription (and replays the current state again).
        subs.retain(|s| !(s.subscriber == sub.subscriber && s.by == sub.by));
        subs.push(sub.clone());
        if let Watch::Agent(agent) = &msg.watch {
            if !self.agents.contains(agent) {
                // Unknown agent: say so at once, so the subscriber can give up on it.
                if let Some(binding) = &msg.known {
                    send_event(&sub, &msg.watch, binding, None, Status::Withdrawn);
                }
                return;
            }
        }
        self.replay(&sub, &msg.watch);
    }
}

pub(crate) struct Unsubscribe {
    pub(crate) subscriber: AgentId,
    pub(crate) watch: Watch,
    pub(crate) by: WatchedBy,
}
message!(Unsubscribe => ());

impl Handler<Unsubscribe> for Registry {
    type Result = ();
    fn handle(&mut self, msg: Unsubscribe, _: &mut Context<Self>) {
        if let Some(subs) = self.subs.get_mut(&msg.watch) {
            subs.retain(|s| !(s.subscriber == msg.subscriber && s.by == msg.by));
            if subs.is_empty() {
                self.subs.remove(&msg.watch);
            }
        }
    }
}

/// A synchronous question to the registry.
pub(crate) enum Lookup {
    Name(ServiceName),
    Group(GroupName),
    All,
}
message!(Lookup => Vec<Binding>);

impl Handler<Lookup> for Registry {
    type Result = MessageResult<Lookup>;
    fn handle(&mut self, msg: Lookup, _: &mut Context<Self>) -> Self::Result {
        MessageResult(match &msg {
            Lookup::Name(n) => self.named(n),
            Lookup::Group(g) => self.members(g),
            Lookup::All => self.sorted(self.agents.values().filter(|e| e.announced).collect()),
        })
    }
}

pub(crate) struct LookupAgent(pub(crate) AgentId);
message!(LookupAgent => Option<Binding>);

impl Handler<LookupAgent> for Registry {
    type Result = Option<Binding>;
    fn handle(&mut self, msg: LookupAgent, _: &mut Context<Self>) -> Option<Binding> {
        self.agents
            .get(&msg.0)
            .filter(|e| e.announced)
            .map(|e| e.binding.clone())
    }
}

/// Groups of one agent, or every group with at least one member.
pub(crate) struct Groups(pub(crate) Option<AgentId>);
message!(Groups => Vec<GroupName>);

impl Handler<Groups> for Registry {
    type Result = MessageResult<Groups>;
    fn handle(&mut self, msg: Groups, _: &mut Context<Self>) -> Self::Result {
        MessageResult(match msg.0 {
            Some(agent) => self
                .agents
                .get(&agent)
                .map(|e| e.groups.iter().cloned().collect())
                .unwrap_or_default(),
            None => {
                let mut all: Vec<GroupName> = self.groups.keys().cloned().collect();
                all.sort();
                all
            }
        })
    }
}

/// Resolves once no local service is left (at once if there is none): what shutdown waits
/// for after stopping them.
pub(crate) struct WhenNoLocalServices(pub(crate) tokio::sync::oneshot::Sender<()>);
message!(WhenNoLocalServices => ());

impl Handler<WhenNoLocalServices> for Registry {
    type Result = ();
    fn handle(&mut self, msg: WhenNoLocalServices, _: &mut Context<Self>) {
        if self.local == 0 {
            let _ = msg.0.send(());
        } else {
            self.idle.push(msg.0);
        }
    }
}

/// Inboxes of every local service, named or anonymous (for shutdown).
pub(crate) struct LocalInboxes;
message!(LocalInboxes => Vec<Inbox>);

impl Handler<LocalInboxes> for Registry {
    type Result = MessageResult<LocalInboxes>;
    fn handle(&mut self, _: LocalInboxes, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.agents
                .values()
                .filter_map(|e| e.binding.local_inbox().cloned())
                .collect(),
        )
    }
}

/// Replaces the binding of a known agent (its route changed) without announcing anything.
pub(crate) struct Reroute(pub(crate) Binding);
message!(Reroute => ());

impl Handler<Reroute> for Registry {
    type Result = ();
    fn handle(&mut self, msg: Reroute, _: &mut Context<Self>) {
        self.rebind(msg.0);
    }
}
