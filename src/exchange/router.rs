//! The router: decides which services are announced on which link.
//!
//! It is called synchronously — when a local service is spawned, joins or leaves a group or
//! stops, and when a bridge learns of a remote service — so an announcement always goes out
//! on every link before anything that service sends: a subscription or request never
//! overtakes the announcement of its sender, at any hop. It keeps, per link, the set of agents
//! announced on it (or waiting in the link's backlog of initial announcements) so that joins,
//! leaves and withdrawals go exactly where the announcement went.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use super::Link;
use crate::binding::Binding;
use crate::names::{AgentId, Audience, GroupName, ProcessId};
use crate::wire::{Frame, ServiceInfo};

struct Known {
    binding: Binding,
    groups: BTreeSet<GroupName>,
}

struct LinkEntry {
    link: Link,
    announced: HashSet<AgentId>,
}

#[derive(Default)]
struct State {
    known: HashMap<AgentId, Known>,
    links: Vec<LinkEntry>,
}

/// One per node.
pub(crate) struct Router {
    my_process: ProcessId,
    state: Mutex<State>,
}

/// Whether `binding` may be announced on `link`.
fn eligible(binding: &Binding, link: &Link) -> bool {
    let audience_ok = match binding.audience() {
        Audience::Everyone => true,
        Audience::Process => false,
        Audience::Group(g) => link.group() == Some(g),
    };
    if !audience_ok {
        return false;
    }
    match binding.link() {
        None => true,
        // Never back where it came from.
        Some(via) if via.same(link) => false,
        // In a mesh of exchange servers, what one server learned from another is not passed
        // to a third: every server hears it directly.
        Some(via) => !(via.peer().is_some_and(|p| p.hub) && link.peer().is_some_and(|p| p.hub)),
    }
}

fn info(known: &Known) -> ServiceInfo {
    let b = &known.binding;
    ServiceInfo {
        agent: b.agent(),
        name: b.name().to_string(),
        audience: b.audience().as_str().to_owned(),
        process: b.process(),
        groups: known.groups.iter().map(|g| g.to_string()).collect(),
    }
}

impl Router {
    pub(crate) fn new(my_process: ProcessId) -> Self {
        Router { my_process, state: Mutex::new(State::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A service became reachable (spawned here, or learned through a link), or reachable by
    /// another route: announce it where it is now eligible, withdraw it where it no longer is.
    pub(crate) fn service_available(&self, binding: &Binding, groups: &[GroupName]) {
        let mut state = self.lock();
        let agent = binding.agent();
        let mut known_groups = state.known.remove(&agent).map(|k| k.groups).unwrap_or_default();
        if !binding.name().is_anonymous() {
            known_groups.extend(groups.iter().cloned());
        }
        let known = Known { binding: binding.clone(), groups: known_groups };
        for entry in &mut state.links {
            let eligible = eligible(&known.binding, &entry.link);
            if eligible && entry.announced.insert(agent) {
                entry.link.announce_later([info(&known)]);
            } else if !eligible && entry.announced.remove(&agent) {
                entry.link.withdraw_announced(agent);
            }
        }
        state.known.insert(agent, known);
    }

    /// A service is no longer reachable from here.
    pub(crate) fn service_withdrawn(&self, agent: AgentId) {
        let mut state = self.lock();
        state.known.remove(&agent);
        for entry in &mut state.links {
            if entry.announced.remove(&agent) {
                entry.link.withdraw_announced(agent);
            }
        }
    }

    /// A service joined (`true`) or left a group.
    pub(crate) fn group_changed(&self, agent: AgentId, group: &GroupName, joined: bool) {
        let mut state = self.lock();
        let Some(known) = state.known.get_mut(&agent) else { return };
        if known.binding.name().is_anonymous() {
            return;
        }
        let changed = if joined { known.groups.insert(group.clone()) } else { known.groups.remove(group) };
        if !changed {
            return;
        }
        for entry in &state.links {
            if entry.announced.contains(&agent) {
                entry.link.group_changed(agent, group, joined);
            }
        }
    }

    /// A link finished its handshake. Returns `false` when it duplicates a link to the same
    /// process and was dropped (it has been marked and closed).
    pub(crate) fn link_up(&self, link: &Link) -> bool {
        let Some(peer) = link.peer().cloned() else { return false };
        let mut state = self.lock();
        // A second link to the same process: keep the one opened by the process with the
        // smaller identity (both sides decide the same), else the older one.
        if let Some(at) = state.links.iter().position(|e| e.link.peer().is_some_and(|p| p.process == peer.process)) {
            let opened_by_smaller = |initiated: bool| initiated == (self.my_process < peer.process);
            let existing = state.links[at].link.clone();
            let new_wins = opened_by_smaller(link.initiated()) && !opened_by_smaller(existing.initiated());
            let loser = if new_wins { existing } else { link.clone() };
            tracing::info!(peer = %peer.node, process = %peer.process, "duplicate link to the same process; dropping one");
            let _ = loser.send_frame(&Frame::Goodbye { reason: "duplicate link".into() });
            loser.mark_duplicate();
            loser.close();
            if !new_wins {
                return false;
            }
            state.links.remove(at);
        }
        // The known services are announced as the link's writer drains (see
        // `Link::announce_later`): all at once, they could fill its outbound buffer.
        let mut entry = LinkEntry { link: link.clone(), announced: HashSet::new() };
        let mut initial = Vec::new();
        for k in state.known.values() {
            if eligible(&k.binding, &entry.link) && entry.announced.insert(k.binding.agent()) {
                initial.push(info(k));
            }
        }
        link.announce_later(initial);
        state.links.push(entry);
        true
    }

    /// A link closed.
    pub(crate) fn link_down(&self, link: &Link) {
        self.lock().links.retain(|e| !e.link.same(link));
    }
}
