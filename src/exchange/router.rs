//! The router: one internal service per node deciding which services are announced on which
//! link. It follows every agent the registry knows (anonymous ones included) and every ready
//! link, and keeps, per link, the set of agents announced on it so that joins, leaves and
//! withdrawals go exactly where the announcement went.

use std::collections::{BTreeSet, HashMap, HashSet};

use actix::{Actor, Handler, Message};

use super::Link;
use crate::binding::Binding;
use crate::names::{AgentId, Audience, GroupName, ProcessId};
use crate::registry::{RegistryEvent, Status, SubscribeEverything};
use crate::request::Reply;
use crate::service::{Service, ServiceContext, ServiceOptions};
use crate::wire::{Frame, ServiceInfo};

struct Known {
    binding: Binding,
    groups: BTreeSet<GroupName>,
}

struct LinkEntry {
    link: Link,
    announced: HashSet<AgentId>,
}

/// Decides what crosses each link. Spawned by the first [`Exchange`](super::Exchange) of a node.
pub(crate) struct Router {
    my_process: ProcessId,
    known: HashMap<AgentId, Known>,
    links: Vec<LinkEntry>,
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
    fn announce_all(entry: &mut LinkEntry, known: &HashMap<AgentId, Known>) {
        for k in known.values() {
            if eligible(&k.binding, &entry.link) && entry.announced.insert(k.binding.agent()) {
                let _ = entry.link.send_frame(&Frame::ServiceAvailable(info(k)));
            }
        }
    }

    fn on_event(&mut self, event: RegistryEvent) {
        let agent = event.binding.agent();
        match (event.group, event.status) {
            (None, Status::Available) => {
                let known = Known { binding: event.binding, groups: BTreeSet::new() };
                for entry in &mut self.links {
                    if eligible(&known.binding, &entry.link) && entry.announced.insert(agent) {
                        let _ = entry.link.send_frame(&Frame::ServiceAvailable(info(&known)));
                    }
                }
                self.known.insert(agent, known);
            }
            (None, Status::Withdrawn) => {
                self.known.remove(&agent);
                for entry in &mut self.links {
                    if entry.announced.remove(&agent) {
                        let _ = entry.link.send_frame(&Frame::ServiceWithdrawn { agent });
                    }
                }
            }
            (Some(group), status) => {
                let Some(known) = self.known.get_mut(&agent) else { return };
                let changed = match status {
                    Status::Available => known.groups.insert(group.clone()),
                    Status::Withdrawn => known.groups.remove(&group),
                };
                if !changed {
                    return;
                }
                let frame = match status {
                    Status::Available => Frame::GroupJoined { agent, group: group.to_string() },
                    Status::Withdrawn => Frame::GroupLeft { agent, group: group.to_string() },
                };
                for entry in &self.links {
                    if entry.announced.contains(&agent) {
                        let _ = entry.link.send_frame(&frame);
                    }
                }
            }
        }
    }

    fn link_up(&mut self, link: Link) {
        let Some(peer) = link.peer().cloned() else { return };
        // A second link to the same process: keep the one opened by the process with the
        // smaller identity (both sides decide the same), else the older one.
        if let Some(at) = self.links.iter().position(|e| e.link.peer().is_some_and(|p| p.process == peer.process)) {
            let existing = &self.links[at].link;
            let me_smaller = |initiated: bool, peer_id| initiated == (self.my_process < peer_id);
            let new_wins =
                me_smaller(link.initiated(), peer.process) && !me_smaller(existing.initiated(), peer.process);
            let (drop_link, keep_new) = if new_wins { (existing.clone(), true) } else { (link.clone(), false) };
            tracing::info!(peer = %peer.node, process = %peer.process, "duplicate link to the same process; dropping one");
            let _ = drop_link.send_frame(&Frame::Goodbye { reason: "duplicate link".into() });
            drop_link.close();
            if !keep_new {
                return;
            }
            self.links.remove(at);
        }
        let mut entry = LinkEntry { link, announced: HashSet::new() };
        Self::announce_all(&mut entry, &self.known);
        self.links.push(entry);
    }

    fn link_down(&mut self, link: &Link) {
        self.links.retain(|e| !e.link.same(link));
    }
}

/// A link finished its handshake.
pub(crate) struct LinkUp(pub(crate) Link);
impl Message for LinkUp {
    type Result = ();
}

/// A link closed.
pub(crate) struct LinkDown(pub(crate) Link);
impl Message for LinkDown {
    type Result = ();
}

impl Handler<LinkUp> for Router {
    type Result = ();
    fn handle(&mut self, msg: LinkUp, _: &mut ServiceContext<Self>) {
        self.link_up(msg.0);
    }
}

impl Handler<LinkDown> for Router {
    type Result = ();
    fn handle(&mut self, msg: LinkDown, _: &mut ServiceContext<Self>) {
        self.link_down(&msg.0);
    }
}

impl Router {
    pub(crate) fn new(my_process: ProcessId) -> Self {
        Router { my_process, known: HashMap::new(), links: Vec::new() }
    }
}

impl Service for Router {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.node()
            .registry()
            .do_send(SubscribeEverything { subscriber: ctx.binding().agent(), inbox: ctx.core.inbox.clone() });
    }

    fn availability(&mut self, event: RegistryEvent, _ctx: &mut ServiceContext<Self>) {
        self.on_event(event);
    }
}

impl Actor for Router {
    type Context = ServiceContext<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        crate::service::started(self, ctx)
    }
    fn stopping(&mut self, ctx: &mut Self::Context) -> actix::Running {
        crate::service::stopping(self, ctx)
    }
}

impl Handler<crate::inbox::Drain> for Router {
    type Result = ();
    fn handle(&mut self, _: crate::inbox::Drain, ctx: &mut Self::Context) {
        crate::service::drain(self, ctx)
    }
}

impl crate::__private::Descriptor for Router {
    fn options() -> ServiceOptions {
        ServiceOptions::anonymous()
    }
    fn dispatch(_: &mut Self, _: &mut ServiceContext<Self>, method: &str, _: crate::Payload) -> Reply {
        Reply::Now(Err(crate::request::method_unavailable("", method)))
    }
}
