//! The registry: one actor per node holding every visible service binding, group membership,
//! and the subscriptions to availability.
//!
//! Subscriptions come in four kinds ([`Watch`]): the whole registry, a service name, one agent,
//! and a group. Each first replays the current state to the new subscriber (every service
//! followed by its groups, the services of that name, the agent and its groups, the members
//! of the group), then streams changes. A subscription to an agent that is not known gives an
//! immediate `Withdrawn` so the subscriber can give up on it.
//!
//! Anonymous services are tracked (so others can watch them and so shutdown reaches them) but
//! never announced, never listed by lookups and cannot join groups.
//!
//! Order of announcements on removal: "left group" for each group, then "withdrawn".
//! Lookup order (used for requests by name): local services first, then the one known longest.
//!
//! Lookups and subscriptions by name go through an index of the announced services by name,
//! so a call by name costs the same whatever the number of other services known.

use std::collections::{BTreeSet, HashMap};

use actix::{Actor, Context, Handler, Message, MessageResult};
use smallvec::SmallVec;

use crate::binding::{Binding, Location};
use crate::ids::AgentId;
use crate::inbox::{Delivery, Inbox};
use crate::names::{GroupName, ServiceName};

/// Available or withdrawn (for a group event: joined or left).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// The service is available, or joined the group.
    Available,
    /// The service was withdrawn, or left the group.
    Withdrawn,
}

/// What a registry subscription watches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Watch {
    /// Every service and every group change.
    Registry,
    /// Services with this name (service events only, never group events).
    Name(ServiceName),
    /// One agent: its service events and its group events.
    Agent(AgentId),
    /// Services joining and leaving this group (a withdrawal implies leaving).
    Group(GroupName),
}

/// An availability announcement delivered to a subscriber.
#[derive(Debug, Clone)]
pub struct RegistryEvent {
    /// The service concerned.
    pub binding: Binding,
    /// `None` for a service event, the group for a join or leave event.
    pub group: Option<GroupName>,
    /// Available / joined, or withdrawn / left.
    pub status: Status,
    /// Which subscription produced this event.
    pub watch: Watch,
}

struct Entry {
    binding: Binding,
    groups: BTreeSet<GroupName>,
    announced: bool,
    seq: u64,
}

#[derive(Clone)]
struct Sub {
    subscriber: AgentId,
    inbox: Inbox,
    internal: bool,
}

/// The registry actor of one node. Reached through [`Node`](crate::Node) and
/// [`ServiceContext`](crate::ServiceContext); its messages are crate-private.
pub(crate) struct Registry {
    agents: HashMap<AgentId, Entry>,
    /// The announced entries of `agents` by their binding's current name. Changed only by
    /// `insert`, `remove` and `rebind`, which keep it exactly in step with `agents`.
    by_name: NameIndex,
    groups: HashMap<GroupName, BTreeSet<AgentId>>,
    subs: HashMap<Watch, Vec<Sub>>,
    seq: u64,
}

impl Actor for Registry {
    type Context = Context<Self>;
}

impl Registry {
    pub(crate) fn new() -> Self {
        Registry {
            agents: HashMap::new(),
            by_name: NameIndex::default(),
            groups: HashMap::new(),
            subs: HashMap::new(),
            seq: 0,
        }
    }

    /// Adds (or replaces) the entry of `entry.binding.agent()`, and indexes it by name if it
    /// is announced.
    fn insert(&mut self, entry: Entry) {
        let agent = entry.binding.agent();
        if entry.announced {
            self.by_name.add(entry.binding.name(), entry.seq, agent);
        }
        if let Some(old) = self.agents.insert(agent, entry) {
            self.unindex(&old);
        }
    }

    /// Removes the entry of `agent` and its place in the name index.
    fn remove(&mut self, agent: AgentId) -> Option<Entry> {
        let entry = self.agents.remove(&agent)?;
        self.unindex(&entry);
        Some(entry)
    }

    /// Replaces the binding of a known agent, moving it in the name index if its name changed.
    fn rebind(&mut self, binding: Binding) {
        let Some(entry) = self.agents.get_mut(&binding.agent()) else {
            return;
        };
        let renamed = entry.announced && entry.binding.name() != binding.name();
        let old = std::mem::replace(&mut entry.binding, binding);
        if renamed {
            self.by_name.remove(old.name(), entry.seq);
            self.by_name
                .add(entry.binding.name(), entry.seq, old.agent());
        }
    }

    fn unindex(&mut self, entry: &Entry) {
        if entry.announced {
            self.by_name.remove(entry.binding.name(), entry.seq);
        }
    }

    /// The announced services named `name`, in lookup order (as [`Registry::sorted`] would
    /// order them: local first, then the one known longest), from the index.
    fn named(&self, name: &ServiceName) -> Vec<Binding> {
        let agents = self.by_name.get(name);
        let mut local = Vec::with_capacity(agents.len());
        let mut remote = Vec::new();
        // The index lists agents in `seq` order: splitting it by location keeps that order.
        for (_, agent) in agents {
            let Some(entry) = self.agents.get(agent) else {
                debug_assert!(false, "the name index lists {agent}, which is not known");
                continue;
            };
            let binding = &entry.binding;
            match binding.location() {
                Location::Local => local.push(binding.clone()),
                Location::Remote => remote.push(binding.clone()),
            }
        }
        local.append(&mut remote);
        local
    }

    fn notify(&self, watch: &Watch, binding: &Binding, group: Option<&GroupName>, status: Status) {
        let Some(subs) = self.subs.get(watch) else {
            return;
        };
        for sub in subs {
            send_event(sub, watch, binding, group, status);
        }
    }

    /// Announces a service event or a group event to every subscription that covers it.
    fn announce(&self, binding: &Binding, group: Option<&GroupName>, status: Status) {
        self.notify(&Watch::Registry, binding, group, status);
        self.notify(&Watch::Agent(binding.agent()), binding, group, status);
        match group {
            None => self.notify(&Watch::Name(binding.name().clone()), binding, None, status),
            Some(g) => self.notify(&Watch::Group(g.clone()), binding, Some(g), status),
        }
    }

    fn sorted(&self, mut entries: Vec<&Entry>) -> Vec<Binding> {
        entries.sort_by_key(|e| (e.binding.location() != Location::Local, e.seq));
        entries.into_iter().map(|e| e.binding.clone()).collect()
    }

    fn replay(&self, sub: &Sub, watch: &Watch) {
        let bindings = match watch {
            Watch::Registry => self.sorted(self.agents.values().filter(|e| e.announced).collect()),
            Watch::Name(n) => self.named(n),
            Watch::Agent(a) => match self.agents.get(a) {
                Some(e) => vec![e.binding.clone()],
                None => {
                    return;
                }
            },
            Watch::Group(g) => self.sorted(
                self.groups
                    .get(g)
                    .into_iter()
                    .flatten()
                    .filter_map(|a| self.agents.get(a))
                    .collect(),
            ),
        };
        for binding in bindings {
            let entry = &self.agents[&binding.agent()];
            match watch {
                Watch::Name(_) => send_event(sub, watch, &binding, None, Status::Available),
                Watch::Group(g) => send_event(sub, watch, &binding, Some(g), Status::Available),
                Watch::Registry | Watch::Agent(_) => {
                    send_event(sub, watch, &binding, None, Status::Available);
                    for g in &entry.groups {
                        send_event(sub, watch, &binding, Some(g), Status::Available);
                    }
                }
            }
        }
    }
}

/// Agents by service name, each name's agents in the order they became known (by the `seq`
/// of their entry). A name without agents has no entry, and a list that shrank far gives
/// back its memory, so the index stays proportional to the services it lists. Names come
/// from peers: the map keeps the default (keyed) hasher.
#[derive(Default)]
struct NameIndex(HashMap<ServiceName, SmallVec<[(u64, AgentId); 1]>>);

impl NameIndex {
    fn add(&mut self, name: &ServiceName, seq: u64, agent: AgentId) {
        let agents = self.0.entry(name.clone()).or_default();
        // A new entry has the highest `seq` so far, so this appends; only a renamed entry
        // goes in between. (`seq` is unique per entry: `Ok` would be the same entry again.)
        match agents.binary_search_by_key(&seq, |&(s, _)| s) {
            Ok(i) => agents[i] = (seq, agent),
            Err(i) => agents.insert(i, (seq, agent)),
        }
    }

    fn remove(&mut self, name: &ServiceName, seq: u64) {
        let Some(agents) = self.0.get_mut(name) else {
            return;
        };
        if let Ok(i) = agents.binary_search_by_key(&seq, |&(s, _)| s) {
            agents.remove(i);
        }
        if agents.is_empty() {
            self.0.remove(name);
        } else if agents.len() * 4 < agents.capacity() {
            agents.shrink_to_fit();
        }
    }

    /// The agents named `name` with the `seq` of their entry, oldest entry first.
    fn get(&self, name: &ServiceName) -> &[(u64, AgentId)] {
        self.0.get(name).map_or(&[], |agents| agents.as_slice())
    }
}

fn send_event(
    sub: &Sub,
    watch: &Watch,
    binding: &Binding,
    group: Option<&GroupName>,
    status: Status,
) {
    let event = RegistryEvent {
        binding: binding.clone(),
        group: group.cloned(),
        status,
        watch: watch.clone(),
    };
    sub.inbox.send(Delivery::Registry {
        event,
        internal: sub.internal,
    });
}

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
            groups: BTreeSet::new(),
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

impl Registry {
    fn join(&mut self, agent: AgentId, group: GroupName) {
        let Some(entry) = self.agents.get_mut(&agent) else {
            return;
        };
        if !entry.announced {
            tracing::error!(service = %entry.binding, group = %group, "anonymous services cannot join groups");
            return;
        }
        if entry.groups.insert(group.clone()) {
            let binding = entry.binding.clone();
            self.groups.entry(group.clone()).or_default().insert(agent);
            self.announce(&binding, Some(&group), Status::Available);
        }
    }

    fn leave(&mut self, agent: AgentId, group: &GroupName) {
        let Some(entry) = self.agents.get_mut(&agent) else {
            return;
        };
        if entry.groups.remove(group) {
            let binding = entry.binding.clone();
            if let Some(members) = self.groups.get_mut(group) {
                members.remove(&agent);
                if members.is_empty() {
                    self.groups.remove(group);
                }
            }
            self.announce(&binding, Some(group), Status::Withdrawn);
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
    pub(crate) internal: bool,
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
            internal: msg.internal,
        };
        let subs = self.subs.entry(msg.watch.clone()).or_default();
        // Subscribing again replaces the subscription (and replays the current state again).
        subs.retain(|s| !(s.subscriber == sub.subscriber && s.internal == sub.internal));
        subs.push(sub.clone());
        if let Watch::Agent(agent) = &msg.watch {
            if !self.agents.contains_key(agent) {
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
    pub(crate) internal: bool,
}
message!(Unsubscribe => ());

impl Handler<Unsubscribe> for Registry {
    type Result = ();
    fn handle(&mut self, msg: Unsubscribe, _: &mut Context<Self>) {
        if let Some(subs) = self.subs.get_mut(&msg.watch) {
            subs.retain(|s| !(s.subscriber == msg.subscriber && s.internal == msg.internal));
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
            Lookup::Group(g) => self.sorted(
                self.groups
                    .get(g)
                    .into_iter()
                    .flatten()
                    .filter_map(|a| self.agents.get(a))
                    .collect(),
            ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::Address;
    use crate::ids::ProcessId;
    use crate::names::Audience;

    /// A binding of `name` seen at `location`. The registry reads only the location, never
    /// the route, so every binding here is routed to a local inbox (no exchange link needed).
    fn binding_of(agent: AgentId, name: &ServiceName, location: Location) -> Binding {
        let address = Address::Local(Inbox::new(16));
        Binding::new(
            name.clone(),
            agent,
            Audience::Everyone,
            ProcessId::random(),
            location,
            address,
        )
    }

    /// What `Lookup::Name` answered before the index: a scan of every known agent.
    fn linear(registry: &Registry, name: &ServiceName) -> Vec<Binding> {
        registry.sorted(
            registry
                .agents
                .values()
                .filter(|e| e.announced && e.binding.name() == name)
                .collect(),
        )
    }

    /// What a lookup answer says about each service: identity, name and location, in order.
    fn described(bindings: &[Binding]) -> Vec<(AgentId, String, Location)> {
        bindings
            .iter()
            .map(|b| (b.agent(), b.name().to_string(), b.location()))
            .collect()
    }

    /// The index, rebuilt from `agents`, must be exactly the one kept (no empty entries).
    fn check_index(registry: &Registry) {
        let mut expected: HashMap<ServiceName, Vec<(u64, AgentId)>> = HashMap::new();
        for (agent, entry) in &registry.agents {
            if entry.announced {
                expected
                    .entry(entry.binding.name().clone())
                    .or_default()
                    .push((entry.seq, *agent));
            }
        }
        for agents in expected.values_mut() {
            agents.sort();
        }
        let kept: HashMap<ServiceName, Vec<(u64, AgentId)>> = registry
            .by_name
            .0
            .iter()
            .map(|(name, agents)| (name.clone(), agents.to_vec()))
            .collect();
        assert_eq!(kept, expected);
    }

    fn lookup(registry: &mut Registry, name: &ServiceName) -> Vec<Binding> {
        registry
            .handle(Lookup::Name(name.clone()), &mut Context::new())
            .0
    }

    /// Every name of `names` looked up through the index answers exactly what the scan did.
    fn check_lookups(registry: &mut Registry, names: &[ServiceName]) -> usize {
        check_index(registry);
        let mut found = 0;
        for name in names {
            let by_index = lookup(registry, name);
            assert_eq!(
                described(&by_index),
                described(&linear(registry, name)),
                "lookup of {name:?}"
            );
            found += by_index.len();
        }
        found
    }

    /// A small deterministic generator (xorshift), so a failure can be replayed.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    #[test]
    fn lookups_by_name_answer_what_a_scan_of_every_agent_answers() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let hot: Vec<ServiceName> = (0..8)
            .map(|i| ServiceName::new(format!("hot-{i}")).unwrap())
            .collect();
        let group = GroupName::new("g").unwrap();
        let mut registry = Registry::new();
        let mut known: Vec<(AgentId, ServiceName)> = Vec::new();
        let mut names: Vec<ServiceName> = hot.clone();
        names.push(ServiceName::anonymous());
        names.push(ServiceName::new("nobody").unwrap());
        let register =
            |registry: &mut Registry, agent: AgentId, name: &ServiceName, location: Location| {
                let groups = if agent.as_uuid().as_bytes()[0] % 2 == 0 {
                    vec![group.clone()]
                } else {
                    Vec::new()
                };
                registry.handle(
                    Register {
                        binding: binding_of(agent, name, location),
                        groups,
                    },
                    &mut Context::new(),
                );
            };
        let location = |rng: &mut Rng| {
            if rng.below(3) == 0 {
                Location::Local
            } else {
                Location::Remote
            }
        };

        // 20,000 services: most with a name of their own, one in ten sharing one of a few
        // names, one in fifty anonymous; local and remote interleaved.
        for i in 0..20_000 {
            let name = match rng.below(50) {
                0 => ServiceName::anonymous(),
                1..=5 => hot[rng.below(hot.len())].clone(),
                _ => {
                    let unique = ServiceName::new(format!("svc-{i}")).unwrap();
                    if i % 97 == 0 {
                        names.push(unique.clone());
                    }
                    unique
                }
            };
            let agent = AgentId::random();
            register(&mut registry, agent, &name, location(&mut rng));
            known.push((agent, name));
        }
        let found = check_lookups(&mut registry, &names);
        assert!(
            found > 1_000,
            "the hot names are shared by many services ({found})"
        );
        assert!(lookup(&mut registry, &hot[0])
            .iter()
            .any(|b| b.location() == Location::Local));
        assert!(lookup(&mut registry, &hot[0])
            .iter()
            .any(|b| b.location() == Location::Remote));

        // Withdraw a quarter (and a few agents never known), reroute a tenth (to the other
        // location, sometimes under another name, sometimes for an agent never known).
        for _ in 0..5_000 {
            let (agent, _) = known.swap_remove(rng.below(known.len()));
            registry.handle(Withdraw(agent), &mut Context::new());
        }
        registry.handle(Withdraw(AgentId::random()), &mut Context::new());
        for _ in 0..1_500 {
            let (agent, name) = known[rng.below(known.len())].clone();
            let renamed = if rng.below(10) == 0 {
                hot[rng.below(hot.len())].clone()
            } else {
                name
            };
            registry.handle(
                Reroute(binding_of(agent, &renamed, location(&mut rng))),
                &mut Context::new(),
            );
        }
        let stranger = binding_of(AgentId::random(), &hot[1], Location::Local);
        registry.handle(Reroute(stranger), &mut Context::new());
        check_lookups(&mut registry, &names);

        // Announced again: withdrawn then registered (now the newest), or registered again
        // while still known (the entry is replaced, possibly under another name).
        for _ in 0..1_000 {
            let (agent, name) = known[rng.below(known.len())].clone();
            if rng.below(2) == 0 {
                registry.handle(Withdraw(agent), &mut Context::new());
            }
            let name = if rng.below(4) == 0 {
                hot[rng.below(hot.len())].clone()
            } else {
                name
            };
            register(&mut registry, agent, &name, location(&mut rng));
        }
        check_lookups(&mut registry, &names);

        // Nothing is left behind once every service is withdrawn.
        for agent in registry.agents.keys().copied().collect::<Vec<_>>() {
            registry.handle(Withdraw(agent), &mut Context::new());
        }
        assert_eq!(check_lookups(&mut registry, &names), 0);
        assert!(registry.by_name.0.is_empty());
    }

    #[test]
    fn subscriptions_by_name_replay_in_lookup_order() {
        let name = ServiceName::new("worker").unwrap();
        let other = ServiceName::new("other").unwrap();
        let mut registry = Registry::new();
        for i in 0..60 {
            let location = if i % 3 == 0 {
                Location::Local
            } else {
                Location::Remote
            };
            let name = if i % 4 == 0 { &other } else { &name };
            let binding = binding_of(AgentId::random(), name, location);
            registry.handle(
                Register {
                    binding,
                    groups: Vec::new(),
                },
                &mut Context::new(),
            );
        }
        let inbox = Inbox::new(16);
        let subscribe = Subscribe {
            subscriber: AgentId::random(),
            inbox: inbox.clone(),
            watch: Watch::Name(name.clone()),
            internal: false,
            known: None,
        };
        registry.handle(subscribe, &mut Context::new());
        let replayed: Vec<Binding> = inbox
            .close()
            .into_iter()
            .map(|delivery| match delivery {
                Delivery::Registry { event, .. } => {
                    assert_eq!((event.status, event.group), (Status::Available, None));
                    event.binding
                }
                _ => panic!("only registry events are delivered"),
            })
            .collect();
        let expected = linear(&registry, &name);
        assert_eq!(expected.len(), 45);
        assert_eq!(described(&replayed), described(&expected));
    }
}
