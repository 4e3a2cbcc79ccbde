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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::{Actor, Context};

use crate::delivery::{Binding, Location};
use crate::delivery::{Delivery, Inbox, RegistryEvent, Status, Watch, WatchedBy};
use crate::ids::{AgentId, AgentTable, ByAgent};
use crate::names::{GroupName, GroupSet, ServiceName};

struct Entry {
    binding: Binding,
    groups: GroupSet,
    announced: bool,
    seq: u64,
}

impl ByAgent for Entry {
    fn agent_key(&self) -> AgentId {
        self.binding.agent()
    }
}

#[derive(Clone)]
struct Sub {
    subscriber: AgentId,
    inbox: Inbox,
    by: WatchedBy,
}

/// The registry actor of one node. Reached through [`Node`](crate::Node) and
/// [`ServiceContext`](crate::ServiceContext); its messages are crate-private.
pub(crate) struct Registry {
    agents: AgentTable<Entry>,
    /// The announced entries of `agents` by their binding's current name. Changed only by
    /// `insert`, `remove` and `rebind`, which keep it exactly in step with `agents`.
    by_name: NameIndex,
    groups: HashMap<GroupName, BTreeSet<AgentId>>,
    subs: HashMap<Watch, Vec<Sub>>,
    seq: u64,
    /// Local services known (named or anonymous), and who waits for there to be none.
    local: usize,
    idle: Vec<tokio::sync::oneshot::Sender<()>>,
    /// Bumped after every change of what lookups answer (see [`Registry::generation`]).
    generation: Arc<AtomicU64>,
}

impl Actor for Registry {
    type Context = Context<Self>;
}

impl Registry {
    pub(crate) fn new() -> Self {
        Registry {
            agents: AgentTable::default(),
            by_name: NameIndex::default(),
            groups: HashMap::new(),
            subs: HashMap::new(),
            seq: 0,
            local: 0,
            idle: Vec::new(),
            generation: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A counter that changes after every change of what this registry's lookups answer (a
    /// service known, withdrawn or rerouted, a group joined or left), readable from any
    /// thread: a cache of lookups made while it read `g` holds while it still reads `g`.
    pub(crate) fn generation(&self) -> Arc<AtomicU64> {
        self.generation.clone()
    }

    /// Marks a change of what lookups answer.
    pub(crate) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Adds (or replaces) the entry of `entry.binding.agent()`, and indexes it by name if it
    /// is announced.
    fn insert(&mut self, entry: Entry) {
        self.changed();
        let agent = entry.binding.agent();
        // The entry it replaces leaves the index first: an agent is listed once.
        let old = self.agents.remove(&agent);
        if let Some(old) = &old {
            self.unindex(old);
        }
        if entry.announced {
            self.by_name
                .add(entry.binding.name(), entry.seq, agent, &self.agents);
        }
        if entry.binding.location() == Location::Local {
            self.local += 1;
        }
        self.agents.insert(entry);
        // Counted out after the new one is counted in: never zero in between.
        if let Some(old) = old {
            self.local_gone(&old.binding);
        }
    }

    /// Removes the entry of `agent` and its place in the name index.
    fn remove(&mut self, agent: AgentId) -> Option<Entry> {
        let entry = self.agents.remove(&agent)?;
        self.changed();
        self.unindex(&entry);
        self.local_gone(&entry.binding);
        Some(entry)
    }

    /// Replaces the binding of a known agent, moving it in the name index if its name changed.
    fn rebind(&mut self, binding: Binding) {
        self.changed();
        let Some(entry) = self.agents.get_mut(&binding.agent()) else {
            return;
        };
        let renamed = entry.announced && entry.binding.name() != binding.name();
        let now_local = binding.location() == Location::Local;
        let (seq, name) = (entry.seq, binding.name().clone());
        let old = std::mem::replace(&mut entry.binding, binding);
        if renamed {
            self.by_name.remove(old.name(), seq, old.agent());
            self.by_name.add(&name, seq, old.agent(), &self.agents);
        }
        if now_local {
            self.local += 1;
        }
        self.local_gone(&old);
    }

    fn unindex(&mut self, entry: &Entry) {
        if entry.announced {
            self.by_name
                .remove(entry.binding.name(), entry.seq, entry.binding.agent());
        }
    }

    /// `binding` is no longer an entry: if it was local, count it out, and tell those waiting
    /// for the last local service to go.
    fn local_gone(&mut self, binding: &Binding) {
        if binding.location() == Location::Local {
            self.local -= 1;
            if self.local == 0 {
                for waiter in self.idle.drain(..) {
                    let _ = waiter.send(());
                }
            }
        }
    }

    /// The announced services named `name`, in lookup order (as [`Registry::sorted`] would
    /// order them: local first, then the one known longest), from the index.
    fn named(&self, name: &ServiceName) -> Vec<Binding> {
        let mut local = Vec::new();
        let mut remote = Vec::new();
        // The index lists agents in `seq` order: splitting it by location keeps that order.
        for agent in self.by_name.get(name) {
            let Some(entry) = self.agents.get(&agent) else {
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

    /// The members of group `g`, in lookup order.
    fn members(&self, g: &GroupName) -> Vec<Binding> {
        let members = self.groups.get(g).into_iter().flatten();
        self.sorted(members.filter_map(|a| self.agents.get(a)).collect())
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
            Watch::Group(g) => self.members(g),
        };
        for binding in bindings {
            let Some(entry) = self.agents.get(&binding.agent()) else {
                continue;
            };
            match watch {
                Watch::Name(_) => send_event(sub, watch, &binding, None, Status::Available),
                Watch::Group(g) => send_event(sub, watch, &binding, Some(g), Status::Available),
                Watch::Registry | Watch::Agent(_) => {
                    send_event(sub, watch, &binding, None, Status::Available);
                    for g in entry.groups.iter() {
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
struct NameIndex(HashMap<ServiceName, Named>);

/// The agents of one name in [`NameIndex`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Named {
    /// The one agent of its name (most names): 24 bytes, the size of an empty list, so a
    /// slot of the index is 40 bytes.
    One(AgentId),
    /// Several, with the `seq` of their entry, oldest first.
    Many(Vec<(u64, AgentId)>),
}

impl NameIndex {
    /// Indexes `agent` (whose entry has `seq`) under `name`; `agents` tells the `seq` of the
    /// agent already there, when a name gets its second.
    fn add(&mut self, name: &ServiceName, seq: u64, agent: AgentId, agents: &AgentTable<Entry>) {
        let named = match self.0.entry(name.clone()) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(Named::One(agent));
                return;
            }
            std::collections::hash_map::Entry::Occupied(slot) => slot.into_mut(),
        };
        if let Named::One(first) = *named {
            if first == agent {
                return;
            }
            let Some(entry) = agents.get(&first) else {
                debug_assert!(false, "the name index lists {first}, which is not known");
                *named = Named::One(agent);
                return;
            };
            *named = Named::Many(vec![(entry.seq, first)]);
        }
        if let Named::Many(list) = named {
            // A new entry has the highest `seq` so far, so this appends; only a renamed entry
            // goes in between. (`seq` is unique per entry: `Ok` would be the same entry again.)
            match list.binary_search_by_key(&seq, |&(s, _)| s) {
                Ok(i) => list[i] = (seq, agent),
                Err(i) => list.insert(i, (seq, agent)),
            }
        }
    }

    /// Removes `agent`, whose entry has `seq`, from under `name`.
    fn remove(&mut self, name: &ServiceName, seq: u64, agent: AgentId) {
        let Some(named) = self.0.get_mut(name) else {
            return;
        };
        let emptied = match named {
            Named::One(only) => *only == agent,
            Named::Many(list) => {
                if let Ok(i) = list.binary_search_by_key(&seq, |&(s, _)| s) {
                    list.remove(i);
                }
                match list.as_slice() {
                    [] => true,
                    [(_, last)] => {
                        *named = Named::One(*last);
                        false
                    }
                    _ => {
                        if list.len() * 4 < list.capacity() {
                            list.shrink_to_fit();
                        }
                        false
                    }
                }
            }
        };
        if emptied {
            self.0.remove(name);
        }
    }

    /// The agents named `name`, oldest entry first.
    fn get(&self, name: &ServiceName) -> impl Iterator<Item = AgentId> + '_ {
        let (one, many) = match self.0.get(name) {
            None => (None, &[][..]),
            Some(Named::One(agent)) => (Some(*agent), &[][..]),
            Some(Named::Many(list)) => (None, list.as_slice()),
        };
        one.into_iter().chain(many.iter().map(|&(_, agent)| agent))
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
    sub.inbox.send(Delivery::Registry { event, by: sub.by });
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
            self.generation.fetch_add(1, Ordering::Release);
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
            self.generation.fetch_add(1, Ordering::Release);
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

mod messages;
#[cfg(test)]
mod tests;

pub(crate) use messages::{
    Groups, JoinGroup, LeaveGroup, LocalInboxes, Lookup, LookupAgent, Register, Reroute, Subscribe,
    Unsubscribe, WhenNoLocalServices, Withdraw,
};
