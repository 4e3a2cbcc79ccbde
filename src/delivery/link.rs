//! A link as the delivery layer sees it: the sending side of one connection (the transport's
//! [`Outbound`]) together with who is on the other side, which exchange group it belongs to,
//! and the audience check that decides what may cross it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use super::announcer::Announcer;
use super::binding::Binding;
use super::routes::Routes;
use crate::failure::Refusal;
use crate::ids::{AgentId, ProcessId};
use crate::introspection::{LinkInfo, LinkSide};
use crate::names::{Audience, GroupName};
use crate::transport::{Counters, LinkLimits, Outbound};

/// What the handshake told about the peer.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) process: ProcessId,
    pub(crate) node: String,
    /// Whether the peer is an exchange server.
    pub(crate) hub: bool,
    /// Whether the peer proved who it is: the shared secret, or a certificate the CA signed.
    pub(crate) authenticated: bool,
    /// The peer's socket address.
    pub(crate) address: SocketAddr,
    /// Whether the connection is under TLS.
    pub(crate) tls: bool,
    /// When the handshake completed.
    pub(crate) since: Instant,
}

/// Which side opened the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// This side connected (an exchange client).
    Connected,
    /// This side accepted (an exchange server).
    Accepted,
}

struct Shared {
    out: Outbound,
    group: Option<GroupName>,
    side: Side,
    peer: OnceLock<Peer>,
    duplicate: AtomicBool,
    /// Frames and bytes received, counted per chunk by the link's reader.
    frames_received: AtomicU64,
    bytes_received: AtomicU64,
    routes: Arc<Routes>,
    /// The node's announcer, which announces services on this link from its cursor (see
    /// [`Announcer::refill`]); set when the link is served by a bridge.
    announcer: OnceLock<Weak<Announcer>>,
}

/// One connection to another process: where deliveries for the services behind it go.
/// Cheap to clone.
#[derive(Clone)]
pub(crate) struct Link(Arc<Shared>);

impl Link {
    pub(crate) fn new(
        routes: Arc<Routes>,
        group: Option<GroupName>,
        side: Side,
        limits: LinkLimits,
        counters: Arc<Counters>,
    ) -> Link {
        Link(Arc::new(Shared {
            out: Outbound::new(limits, counters),
            group,
            side,
            peer: OnceLock::new(),
            duplicate: AtomicBool::new(false),
            frames_received: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            routes,
            announcer: OnceLock::new(),
        }))
    }

    /// The announcer that announces services on this link; its writer asks it for more
    /// each time it has written its buffer out while announcements wait.
    pub(crate) fn set_announcer(&self, announcer: Weak<Announcer>) {
        let hook = announcer.clone();
        self.0.out.on_drained(move |out| {
            if let Some(announcer) = hook.upgrade() {
                announcer.refill(out);
            }
        });
        let _ = self.0.announcer.set(announcer);
    }

    /// Announces `agent` now if the announcer's cursor for this link has not come to it yet:
    /// something it sends is about to cross the link, and the peer must know the sender first.
    pub(crate) fn announce_first(&self, agent: AgentId) {
        if !self.0.out.has_backlog() {
            return;
        }
        if let Some(announcer) = self.0.announcer.get().and_then(Weak::upgrade) {
            announcer.announce_first(self, agent);
        }
    }

    /// Whether both handles are the same link.
    pub(crate) fn same(&self, other: &Link) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The sending side of the connection.
    pub(crate) fn out(&self) -> &Outbound {
        &self.0.out
    }

    /// The node's routes.
    pub(crate) fn routes(&self) -> &Arc<Routes> {
        &self.0.routes
    }

    /// The exchange group of the link (`None`: the default, empty-named group).
    pub(crate) fn group(&self) -> Option<&GroupName> {
        self.0.group.as_ref()
    }

    /// Which side opened the connection.
    pub(crate) fn side(&self) -> Side {
        self.0.side
    }

    /// Counts a chunk of `frames` frames and `bytes` bytes read from the connection.
    pub(crate) fn received(&self, frames: u64, bytes: u64) {
        self.0.frames_received.fetch_add(frames, Ordering::Relaxed);
        self.0.bytes_received.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The link as [`crate::introspection`] shows it; `None` before the handshake.
    pub(crate) fn info(&self) -> Option<LinkInfo> {
        let peer = self.peer()?;
        let written = self.0.out.written();
        Some(LinkInfo {
            peer_process: peer.process,
            peer_node: peer.node.clone(),
            peer_hub: peer.hub,
            address: peer.address.to_string(),
            side: match self.0.side {
                Side::Connected => LinkSide::Connected,
                Side::Accepted => LinkSide::Accepted,
            },
            group: self.group().map_or("", |g| g.as_str()).to_owned(),
            tls: peer.tls,
            authenticated: peer.authenticated,
            up_ms: u64::try_from(peer.since.elapsed().as_millis()).unwrap_or(u64::MAX),
            frames_in: self.0.frames_received.load(Ordering::Relaxed),
            bytes_in: self.0.bytes_received.load(Ordering::Relaxed),
            frames_out: written.frames,
            bytes_out: written.bytes,
            reports_dropped: written.reports_dropped,
            reports_conflated: written.reports_conflated,
        })
    }

    pub(crate) fn set_peer(&self, peer: Peer) {
        let _ = self.0.peer.set(peer);
    }

    pub(crate) fn peer(&self) -> Option<&Peer> {
        self.0.peer.get()
    }

    /// Whether the far side of the link is an exchange server.
    pub(crate) fn leads_to_hub(&self) -> bool {
        self.peer().is_some_and(|p| p.hub)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.0.out.is_closed()
    }

    /// Closes the link: nothing more is queued; the writer flushes what is there and stops.
    pub(crate) fn close(&self) {
        self.0.out.close()
    }

    /// Marks the link as the dropped one of two links to the same process.
    pub(crate) fn mark_duplicate(&self) {
        self.0.duplicate.store(true, Ordering::Relaxed);
    }

    /// Whether the link was dropped as a duplicate.
    pub(crate) fn is_duplicate(&self) -> bool {
        self.0.duplicate.load(Ordering::Relaxed)
    }

    /// Whether `agent` is visible on the far side of this link: its audience is `*` or this
    /// link's exchange group. What is announced on a link, and whose requests may cross it,
    /// both follow from this.
    pub(crate) fn carries(&self, agent: &Binding) -> bool {
        match agent.audience() {
            Audience::Everyone => true,
            Audience::Process => false,
            Audience::Group(g) => self.group() == Some(g),
        }
    }

    /// The rule for every request about to cross this link, whether a service of this
    /// process sent it or it is being relayed: its answer comes back by requester agent, so
    /// the requester must be visible on the far side ([`Link::carries`]). When it is not, the
    /// request does not go on and the requester is refused by this hop, at once, instead of
    /// waiting for an answer that could never come back. (A target that is gone is the other
    /// reason a hop answers instead of passing a request on, where the target is looked up.)
    pub(crate) fn refuse_requester(
        &self,
        requester: &Binding,
        target: &Binding,
    ) -> Result<(), Refusal> {
        if self.carries(requester) {
            return Ok(());
        }
        let beyond = match (requester.audience(), self.group()) {
            (Audience::Process, _) => "from another process".to_owned(),
            (_, Some(group)) => format!("in exchange group {:?}", group.as_str()),
            (_, None) => "in the default exchange group".to_owned(),
        };
        Err(Refusal::RequesterHidden {
            requester: requester.to_string(),
            audience: requester.audience().as_str().to_owned(),
            beyond,
            target: target.to_string(),
        })
    }

    /// The current binding of `agent` if it is now reached through another, open link.
    pub(crate) fn reroute(&self, agent: AgentId) -> Option<Binding> {
        self.0
            .routes
            .lookup(agent)
            .filter(|b| b.link().is_none_or(|l| !l.same(self) && !l.is_closed()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A link of exchange group `group` (`""`: the default) to a peer that is a hub or not.
    pub(crate) fn link(routes: &Arc<Routes>, group: &str, hub: bool) -> Link {
        let group = (!group.is_empty()).then(|| GroupName::new(group).unwrap());
        let limits = crate::transport::tests_support::limits(1 << 20, 1 << 20);
        let link = Link::new(
            routes.clone(),
            group,
            Side::Connected,
            limits,
            Arc::default(),
        );
        link.set_peer(Peer {
            process: ProcessId::random(),
            node: "peer".into(),
            hub,
            authenticated: false,
            address: SocketAddr::from(([127, 0, 0, 1], 1)),
            tls: false,
            since: Instant::now(),
        });
        link
    }
}
