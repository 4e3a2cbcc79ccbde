//! The exchange: connecting netsvc processes over TCP.
//!
//! Layer 6. An [`Exchange`] belongs to a node and an exchange group. It can listen (an
//! exchange server, a hub relaying between its links) and connect (an exchange client, with a
//! retry delay to keep trying and reconnect, or a single attempt), both at once. Each
//! connection is served by one bridge actor with explicit states (handshaking → ready →
//! closing); what its frames mean and where they go is the delivery layer's (`delivery/`), how
//! its bytes are written and read the transport's (`transport/`).
//!
//! What crosses a link:
//!
//! * services whose audience is `*` or the link's exchange group (audience `""` stays in its
//!   process), with their groups; anonymous ones too, so that answers find them, though no
//!   registry announces them. Never back through the link they were learned through. And
//!   inside one exchange group, what a process learned from one exchange server is not passed
//!   to another server of that group: the servers of a group form a mesh (a distributed
//!   exchange, the only place OSE allows loops) in which each hears it directly, so a triangle
//!   of servers has neither loops nor duplicate announcements. Between two groups nothing
//!   else carries a service across, so a process in both passes on everything of audience
//!   `*`, both ways, whether its peers are servers or not;
//! * subscriptions, reports, notices, requests, responses and failures addressed to agents
//!   behind the link. A report crosses a link only when a subscriber behind it matches; its
//!   content is encoded once per report in the publishing process and relays forward it
//!   without decoding it. An answer goes back the way its request came (where the
//!   requester's node waits for it), or, when that link has closed, by the requester's
//!   current route, so a requester reached by two routes is answered by the other;
//! * a request, only if its requester is visible beyond the link by the same audience rule:
//!   its answer comes back by requester agent. Every hop delivers a request, passes it on, or
//!   answers it at once, never drops it: `CLIENT_SERVICE_ADDRESS_INVALID` (45) when its
//!   requester cannot be seen beyond the next link (or, arriving, is unknown here),
//!   `CLIENT_SERVICE_UNAVAILABLE` (46) when its target is gone. (A request already passed on
//!   when a link on its way beyond the first hop drops, while its target stays reachable by
//!   another route, is not failed by that hop: its caller's timeout applies.)
//!
//! Front end and back end (OSE's segmentation, reference §6.8): back-end processes join a
//! private exchange group, say `private`, and a front end is in both that group and the
//! default one, either as a client of a private hub or as the private group's server
//! (`a ─▶ b`: `a` is a client of the exchange server `b`):
//!
//! ```text
//! front end a client of the private hub:
//!
//!     ┌────── default group ───────┐
//!     public clients ─▶ hub ◀─ front ─▶ hub ◀─ back ends
//!                              └─────── private ───────┘
//!
//! front end the server of the private group:
//!
//!     ┌────── default group ───────┐
//!     public clients ─▶ hub ◀─ front ◀─ back ends
//!                              └─── private ────┘
//! ```
//!
//! In both, services of audience `*` cross the front end both ways (public clients see and
//! call the back end's, the back end the public ones); services of audience `private` are
//! seen by the front end and the back end only; each service is announced once everywhere.
//! This holds for one front end between two groups; two processes that both join the same
//! two groups (two front ends, each a client of both hubs) form a loop across the groups,
//! which nothing here detects: a service can then be passed round it when its route changes.
//! A back-end service of audience `private` that calls a public service is answered 45 by the
//! front end: give it audience `*` to call outside its group.
//!
//! When a link drops, everything learned through it is withdrawn: pending requests to those
//! services fail at once, publishers see their subscriptions withdrawn, subscribers see
//! their publishers withdrawn. After a reconnection the services are announced again with the
//! same agent identities; subscriptions form again and cached reports are delivered again.
//!
//! Slow-consumer policy per link: the outbound buffer holds at most
//! [`ExchangeConfig::outbound_limit`] bytes of reports. When it is full, reports for that link
//! are dropped (counted and logged); other frames (notices, requests, answers) still fit in a
//! headroom of half the limit again, and one that does not means the peer has stopped reading
//! while the protocol needs it to: the connection is closed (the peer's services are withdrawn
//! and a client reconnects later). A peer that reads, however slowly, is never taken for one
//! that stopped: the writer fails only when a write makes no progress at all for
//! [`ExchangeConfig::dead_after`]. Heartbeats are sent only on a link with nothing to write.
//! A peer is given up on when it has said nothing for `dead_after`, counted in time this
//! process ran: a process that was itself stopped or stalled by its host for longer does not
//! blame its peers when it resumes, and what they sent meanwhile is read before any verdict.
//!
//! Bad input never panics, never aborts and never makes a node allocate what a peer merely
//! announced: frames are decoded by hand, each length checked against the bytes actually
//! received, and user payloads with a bincode limit tied to their size. Garbage, truncated or
//! oversized frames, unknown variants, frames before the handshake (held to a small cap,
//! [`Limits::handshake_frame`]), over-long names, a wrong protocol version or exchange group,
//! and a peer that never speaks each close that connection with a logged error; every other
//! link keeps working. What a peer can make a node spend is bounded by [`Limits`].
//!
//! A peer speaks only for itself: every frame's source must be an agent announced over the
//! link it came on, or the frame is refused (a flood of them closes the link), and a call
//! completes only with an answer from its target (an answer names its responder: see
//! [`wire::Frame::Response`](crate::wire::Frame::Response)). Links can be TLS ([`ExchangeConfig::tls`]),
//! can require a shared secret proven in the handshake ([`ExchangeConfig::secret`]), and a
//! server can decide per peer what it may announce and hold ([`ExchangeConfig::admit`]).

mod announced;
mod auth;
mod bridge;
mod config;
mod policy;
mod quota;
mod shared;
mod silence;
mod sockets;

pub use crate::transport::{ClientAuth, Tls, TlsError, TlsPem};
pub use auth::{Secret, SecretError, MIN_SECRET_LEN};
pub use config::{
    Authorise, ConnectionEvent, ConnectionState, ExchangeConfig, ExchangeError, ExchangeStats,
    Limits, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DEAD_AFTER, DEFAULT_HANDSHAKE_FRAME,
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_HEARTBEAT, DEFAULT_OUTBOUND_LIMIT,
};
pub use policy::{Admit, PeerInfo, PeerPolicy, PolicyError, PolicyFile};
pub use sockets::{Connector, Exchange};
