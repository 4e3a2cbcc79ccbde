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
use crate::names::{AgentId, GroupName, ProcessId};
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
    if !link.carries(binding) {
        return false;
    }
    match binding.link() {
        None => true,
        // Never back where it came from.
        Some(via) if via.same(link) => false,
        // In a mesh of exchange servers (a distributed exchange, the only place where OSE
        // allows loops: inside one exchange group), what one server learned from another is
        // not passed to a third: every server hears it directly. Between two exchange groups
        // (a front end between its public and its private hub) it is passed on: nothing else
        // would carry it across.
        Some(via) => !(via.group() == link.group() && leads_to_hub(via) && leads_to_hub(link)),
    }
}

/// Whether the far side of `link` is an exchange server.
fn leads_to_hub(link: &Link) -> bool {
    link.peer().is_some_and(|p| p.hub)
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::binding::{Address, Location};
    use crate::exchange::link::Peer;
    use crate::exchange::Net;
    use crate::names::{Audience, ServiceName};

    /// A link of exchange group `group` (`""`: the default) to a peer that is a hub or not.
    fn link(net: &Arc<Net>, group: &str, hub: bool) -> Link {
        let group = (!group.is_empty()).then(|| GroupName::new(group).unwrap());
        let limits = (1 << 20, 1 << 20, std::time::Duration::from_secs(1));
        let link = Link::new(net.clone(), group, true, limits, Arc::default());
        link.set_peer(Peer { process: ProcessId::random(), node: "peer".into(), hub });
        link
    }

    fn service(audience: &str, via: Option<&Link>) -> Binding {
        let (location, address) = match via {
            Some(link) => (Location::Remote, Address::Remote(link.clone())),
            None => (Location::Local, Address::Local(crate::inbox::Inbox::new(1))),
        };
        let name = ServiceName::new("s").unwrap();
        Binding::new(
            name,
            AgentId::random(),
            Audience::parse(audience).unwrap(),
            ProcessId::random(),
            location,
            address,
        )
    }

    #[test]
    fn the_server_mesh_rule_holds_inside_one_exchange_group_only() {
        let net = Net::new();
        let (public_hub, other_public_hub, public_client) =
            (link(&net, "", true), link(&net, "", true), link(&net, "", false));
        let (private_hub, private_client) = (link(&net, "private", true), link(&net, "private", false));

        // Learned from a hub: not passed to another hub of the same group, passed to a client
        // of it, and to a hub of another group.
        let public = service("*", Some(&public_hub));
        assert!(!eligible(&public, &public_hub), "never back where it came from");
        assert!(!eligible(&public, &other_public_hub));
        assert!(eligible(&public, &public_client));
        assert!(eligible(&public, &private_hub));
        assert!(eligible(&public, &private_client));
        let back = service("*", Some(&private_hub));
        assert!(eligible(&back, &public_hub));
        // Audiences: a group's own services stay in the group, process-local ones here.
        let private = service("private", Some(&private_hub));
        assert!(!eligible(&private, &public_hub) && !eligible(&private, &public_client));
        assert!(eligible(&private, &private_client));
        let local = service("", None);
        assert!(!eligible(&local, &public_client) && !eligible(&local, &private_client));
        assert!(eligible(&service("*", None), &public_hub));
    }
}
