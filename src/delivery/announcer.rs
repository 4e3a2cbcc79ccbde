//! The announcer: decides which services are announced on which link.
//!
//! It is called synchronously — when a local service is spawned, joins or leaves a group or
//! stops, and when a bridge learns of a remote service — so an announcement always goes out
//! on every link before anything that service sends: a subscription or request never
//! overtakes the announcement of its sender, at any hop. It keeps, per link, the set of agents
//! announced on it so that joins, leaves and withdrawals go exactly where the announcement
//! went.
//!
//! A new link's announcements (every service known here), and those made while a link's
//! outbound buffer is busy (a burst learned from a peer), are not queued at once: all at
//! once they could fill the buffer and close the link as one whose peer does not read. The
//! link keeps a cursor into the known services, in the order they became known, and they
//! are announced from it as its writer drains ([`Announcer::refill`]); a service still waiting
//! is announced at once when something it sends is about to cross the link
//! ([`Announcer::announce_first`]). Nothing is copied per link: a hub with many services and
//! many slow new links costs a cursor each.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use super::binding::{Binding, Location};
use super::link::{Link, Side};
use crate::ids::{AgentId, AgentTable, ByAgent, ProcessId};
use crate::names::{GroupName, GroupSet};
use crate::transport::Outbound;
use crate::wire::{Frame, ServiceInfo};

struct Known {
    binding: Binding,
    groups: GroupSet,
    /// When the service became known here: its place in [`State::by_seq`].
    seq: u64,
}

impl ByAgent for Known {
    fn agent_key(&self) -> AgentId {
        self.binding.agent()
    }
}

struct LinkEntry {
    link: Link,
    announced: HashSet<AgentId>,
    /// Announcements still to make on this link: every eligible known service from this
    /// sequence number on that is not in `announced` (`None`: none).
    next: Option<u64>,
}

#[derive(Default)]
struct State {
    known: AgentTable<Known>,
    /// Known services in the order they became known.
    by_seq: BTreeMap<u64, AgentId>,
    last_seq: u64,
    links: Vec<LinkEntry>,
}

/// Announcements are made from a link's cursor while its outbound buffer holds less than
/// this more than when the refill began, and while it is not over a quarter past its limit
/// (reports are dropped at the limit, a control frame closes the link half past it).
const REFILL_STEP: usize = 256 * 1024;

/// Announces from `entry`'s cursor while its buffer has room (see [`REFILL_STEP`]).
fn fill(entry: &mut LinkEntry, known: &AgentTable<Known>, by_seq: &BTreeMap<u64, AgentId>) {
    let Some(mut next) = entry.next else { return };
    let link = &entry.link;
    let out = link.out();
    let stop = out
        .queued()
        .saturating_add(REFILL_STEP)
        .min(out.limit().saturating_add(out.limit() / 4));
    let mut waiting = by_seq.range(next..);
    while out.queued() < stop && !out.is_closed() {
        let Some((&seq, agent)) = waiting.next() else {
            entry.next = None;
            out.set_backlog(false);
            return;
        };
        next = seq + 1;
        let Some(k) = known.get(agent) else { continue };
        if eligible(&k.binding, link) && entry.announced.insert(*agent) {
            let _ = out.send_frame(&Frame::ServiceAvailable(info(k)));
        }
    }
    entry.next = Some(next);
}

/// Whether a service joined or left a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupChange {
    /// It joined.
    Joined,
    /// It left.
    Left,
}

/// One per node.
pub(crate) struct Announcer {
    /// This process's identity (see [`Announcer::link_up`]).
    me: ProcessId,
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
        Some(via) => !(via.group() == link.group() && via.leads_to_hub() && link.leads_to_hub()),
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

impl Announcer {
    pub(crate) fn new(me: ProcessId) -> Self {
        Announcer {
            me,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A service became reachable (spawned here, or learned through a link), or reachable by
    /// another route: announce it where it is now eligible, withdraw it where it no longer is.
    pub(crate) fn service_available(&self, binding: &Binding, groups: &[GroupName]) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let agent = binding.agent();
        let (mut known_groups, seq) = match state.known.remove(&agent) {
            Some(k) => (k.groups, k.seq),
            None => {
                state.last_seq += 1;
                state.by_seq.insert(state.last_seq, agent);
                (GroupSet::default(), state.last_seq)
            }
        };
        if !binding.name().is_anonymous() {
            known_groups.extend(groups.iter().cloned());
        }
        let known = Known {
            binding: binding.clone(),
            groups: known_groups,
            seq,
        };
        for entry in &mut state.links {
            let eligible = eligible(&known.binding, &entry.link);
            if eligible && !entry.announced.contains(&agent) {
                if entry.next.is_some_and(|next| seq >= next) {
                    // The link's cursor will come to it.
                    continue;
                }
                let out = entry.link.out();
                if out.queued() >= REFILL_STEP {
                    // A busy link (a burst of announcements): from its cursor, as it drains.
                    entry.next = Some(entry.next.map_or(seq, |next| next.min(seq)));
                    out.set_backlog(true);
                    continue;
                }
                entry.announced.insert(agent);
                let _ = out.send_frame(&Frame::ServiceAvailable(info(&known)));
            } else if !eligible && entry.announced.remove(&agent) {
                let _ = entry
                    .link
                    .out()
                    .send_frame(&Frame::ServiceWithdrawn { agent });
            }
        }
        state.known.insert(known);
    }

    /// A service is no longer reachable from here.
    pub(crate) fn service_withdrawn(&self, agent: AgentId) {
        let mut state = self.lock();
        if let Some(known) = state.known.remove(&agent) {
            state.by_seq.remove(&known.seq);
        }
        for entry in &mut state.links {
            if entry.announced.remove(&agent) {
                let _ = entry
                    .link
                    .out()
                    .send_frame(&Frame::ServiceWithdrawn { agent });
            }
        }
    }

    /// Announces on the link of `out` from its cursor while its outbound buffer has room:
    /// called by its writer each time it has written the buffer out.
    pub(crate) fn refill(&self, out: &Outbound) {
        let mut guard = self.lock();
        let state = &mut *guard;
        if let Some(entry) = state.links.iter_mut().find(|e| e.link.out().same(out)) {
            fill(entry, &state.known, &state.by_seq);
        }
    }

    /// Announces `agent` on `link` now if the link's cursor has not come to it yet: something
    /// it sends is about to cross the link, and the peer must know the sender first.
    pub(crate) fn announce_first(&self, link: &Link, agent: AgentId) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(entry) = state.links.iter_mut().find(|e| e.link.same(link)) else {
            return;
        };
        let Some(next) = entry.next else { return };
        let Some(k) = state.known.get(&agent) else {
            return;
        };
        if k.seq >= next && eligible(&k.binding, link) && entry.announced.insert(agent) {
            let _ = link.out().send_frame(&Frame::ServiceAvailable(info(k)));
        }
    }

    /// A service joined or left a group.
    pub(crate) fn group_changed(&self, agent: AgentId, group: &GroupName, change: GroupChange) {
        let joined = change == GroupChange::Joined;
        let mut state = self.lock();
        let Some(known) = state.known.get_mut(&agent) else {
            return;
        };
        if known.binding.name().is_anonymous() {
            return;
        }
        let changed = if joined {
            known.groups.insert(group.clone())
        } else {
            known.groups.remove(group)
        };
        if !changed {
            return;
        }
        // A service still waiting for a link's cursor is announced with its groups then.
        let frame = if joined {
            Frame::GroupJoined {
                agent,
                group: group.to_string(),
            }
        } else {
            Frame::GroupLeft {
                agent,
                group: group.to_string(),
            }
        };
        for entry in &state.links {
            if entry.announced.contains(&agent) {
                let _ = entry.link.out().send_frame(&frame);
            }
        }
    }

    /// A link finished its handshake. Returns `false` when it duplicates a link to the same
    /// process and was dropped (it has been marked and closed).
    ///
    /// A process id proves nothing by itself, so two links to one process are resolved to one
    /// only when that cannot let a peer claiming another's identity lock the real process out:
    /// - a second connection this side made to a process it is already connected to (two
    ///   connectors of one node to one server) is dropped, the older one kept;
    /// - of two links opened in opposite directions (two servers that connect to each other),
    ///   when both peers are authenticated (the shared secret, or a certificate the CA signed),
    ///   the one opened by the process with the smaller identity is kept, which both sides
    ///   decide alike;
    /// - otherwise both links are served: the services both announce are alternate routes of
    ///   each other, and a link whose peer goes silent is dropped by its heartbeat. A peer that
    ///   claims a live process's identity (the first to reconnect after a hub restart, say)
    ///   thus neither evicts nor blocks it, and two unauthenticated servers that connect to
    ///   each other keep two links.
    pub(crate) fn link_up(&self, link: &Link) -> bool {
        let Some(peer) = link.peer().cloned() else {
            return false;
        };
        let mut state = self.lock();
        let ours = |l: &Link| l.side() == Side::Connected;
        // Authenticated: the peer proved the shared secret or a certificate the CA signed.
        let proven = |l: &Link| l.peer().is_some_and(|p| p.authenticated);
        if let Some(at) = state.links.iter().position(|e| {
            let (old, new) = (&e.link, link);
            e.link.peer().is_some_and(|p| p.process == peer.process)
                && ((ours(old) && ours(new))
                    || (ours(old) != ours(new) && proven(old) && proven(new)))
        }) {
            let existing = state.links[at].link.clone();
            let new_wins = if ours(&existing) && ours(link) {
                false
            } else {
                // Opposite directions: the link opened by the smaller identity stays.
                let opened_by_smaller = |l: &Link| ours(l) == (self.me < peer.process);
                opened_by_smaller(link)
            };
            let loser = if new_wins { existing } else { link.clone() };
            tracing::info!(peer = %peer.node, process = %peer.process, "duplicate link to the same process; dropping one");
            let _ = loser.out().send_frame(&Frame::Goodbye {
                reason: "duplicate link".into(),
            });
            loser.mark_duplicate();
            loser.close();
            if !new_wins {
                return false;
            }
            state.links.remove(at);
        }
        // The known services are announced from the link's cursor as its writer drains.
        let state = &mut *state;
        let next = state.by_seq.keys().next().copied();
        let mut entry = LinkEntry {
            link: link.clone(),
            announced: HashSet::new(),
            next,
        };
        link.out().set_backlog(next.is_some());
        fill(&mut entry, &state.known, &state.by_seq);
        state.links.push(entry);
        true
    }

    /// This process's own services with their groups, in the order they became known.
    pub(crate) fn local_services(&self) -> Vec<(Binding, Vec<GroupName>)> {
        let state = self.lock();
        state
            .by_seq
            .values()
            .filter_map(|agent| state.known.get(agent))
            .filter(|k| k.binding.location() == Location::Local)
            .map(|k| (k.binding.clone(), k.groups.iter().cloned().collect()))
            .collect()
    }

    /// The links that are up, in the order they came up.
    pub(crate) fn links(&self) -> Vec<Link> {
        self.lock().links.iter().map(|e| e.link.clone()).collect()
    }

    /// A link closed.
    pub(crate) fn link_down(&self, link: &Link) {
        self.lock().links.retain(|e| !e.link.same(link));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::binding::Address;
    use crate::delivery::link::tests::link;
    use crate::delivery::{Inbox, Routes};
    use crate::names::{Audience, ServiceName};

    fn service(audience: &str, via: Option<&Link>) -> Binding {
        let address = match via {
            Some(link) => Address::Remote(link.clone()),
            None => Address::Local(Inbox::new(1)),
        };
        let name = ServiceName::new("s").unwrap();
        Binding::new(
            name,
            AgentId::random(),
            Audience::parse(audience).unwrap(),
            ProcessId::random(),
            address,
        )
    }

    #[test]
    fn a_new_links_announcements_come_from_its_cursor_and_a_sender_is_announced_first() {
        let net = Routes::new();
        let router = Announcer::new(ProcessId::random());
        const N: usize = 20_000;
        let services: Vec<Binding> = (0..N).map(|_| service("*", None)).collect();
        for binding in &services {
            router.service_available(binding, &[]);
        }
        let agent = |i: usize| services[i].agent();
        let link = link(&net, "", false);
        assert!(router.link_up(&link));
        // A part is queued now (one refill step), the rest waits for the writer.
        let queued = link.out().take_queued();
        assert!(queued.len() > 100 && queued.len() < N, "{}", queued.len());
        assert!(matches!(&queued[0], Frame::ServiceAvailable(i) if i.agent == agent(0)));
        assert!(link.out().has_backlog());
        // A waiting service about to send is announced at once, and only once.
        router.announce_first(&link, agent(N - 1));
        router.announce_first(&link, agent(N - 1));
        let first = link.out().take_queued();
        assert_eq!(first.len(), 1);
        assert!(matches!(&first[0], Frame::ServiceAvailable(i) if i.agent == agent(N - 1)));
        // A waiting service that leaves costs no frame; one that joins a group is announced
        // with it; an announced one is withdrawn with a frame.
        router.service_withdrawn(agent(N - 3));
        router.group_changed(
            agent(N - 2),
            &GroupName::new("g").unwrap(),
            GroupChange::Joined,
        );
        assert!(link.out().take_queued().is_empty());
        router.service_withdrawn(agent(0));
        assert!(
            matches!(&link.out().take_queued()[..], [Frame::ServiceWithdrawn { agent: a }] if *a == agent(0))
        );
        // A service that appears now waits its turn behind the cursor.
        let late = service("*", None);
        router.service_available(&late, &[]);
        assert!(link.out().take_queued().is_empty());
        // Drained as the writer would: everything else, in order, exactly once.
        let mut announced: Vec<(AgentId, Vec<String>)> = queued
            .iter()
            .chain(&first)
            .filter_map(|f| match f {
                Frame::ServiceAvailable(i) => Some((i.agent, i.groups.clone())),
                _ => None,
            })
            .collect();
        while link.out().has_backlog() {
            router.refill(link.out());
            announced.extend(
                link.out()
                    .take_queued()
                    .into_iter()
                    .filter_map(|f| match f {
                        Frame::ServiceAvailable(i) => Some((i.agent, i.groups)),
                        _ => None,
                    }),
            );
        }
        assert_eq!(
            announced.len(),
            N,
            "every service but the one withdrawn while waiting, and the late one"
        );
        let agents: HashSet<AgentId> = announced.iter().map(|(a, _)| *a).collect();
        assert_eq!(agents.len(), N, "each once");
        assert!(!agents.contains(&agent(N - 3)) && agents.contains(&late.agent()));
        let grouped = announced
            .iter()
            .find(|(a, _)| *a == agent(N - 2))
            .map(|(_, g)| g.clone());
        assert_eq!(grouped, Some(vec!["g".to_owned()]));
        // Nothing left: a new service is announced at once.
        let now = service("*", None);
        router.service_available(&now, &[]);
        assert!(
            matches!(&link.out().take_queued()[..], [Frame::ServiceAvailable(i)] if i.agent == now.agent())
        );
    }

    #[test]
    fn the_server_mesh_rule_holds_inside_one_exchange_group_only() {
        let net = Routes::new();
        let (public_hub, other_public_hub, public_client) = (
            link(&net, "", true),
            link(&net, "", true),
            link(&net, "", false),
        );
        let (private_hub, private_client) =
            (link(&net, "private", true), link(&net, "private", false));

        // Learned from a hub: not passed to another hub of the same group, passed to a client
        // of it, and to a hub of another group.
        let public = service("*", Some(&public_hub));
        assert!(
            !eligible(&public, &public_hub),
            "never back where it came from"
        );
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
