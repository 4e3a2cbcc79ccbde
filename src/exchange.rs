//! The exchange: connecting netsvc processes over TCP.
//!
//! An [`Exchange`] belongs to a node and an exchange group. It can listen (an exchange
//! server, a hub relaying between its links) and connect (an exchange client, with a retry
//! delay to keep trying and reconnect, or a single attempt), both at once. Each connection is
//! served by one `Bridge` actor with explicit states (handshaking → ready → closing) and one
//! `Link`: a bounded outbound buffer drained by a writer task that writes everything ready in
//! one go.
//!
//! What crosses a link:
//!
//! * services (named and anonymous; anonymous ones are tracked but never announced) whose
//!   audience is `*` or the link's exchange group, with their groups, except those learned
//!   through that same link, and — in a mesh of exchange servers — except those one server
//!   learned from another server (each server hears them directly), so a triangle of servers
//!   has neither loops nor duplicate announcements;
//! * subscriptions, reports, notices, requests, responses and failures addressed to agents
//!   behind the link. A report crosses a link only when a subscriber behind it matches; its
//!   content is encoded once per report in the publishing process and relays forward it
//!   without decoding it.
//!
//! How a connection is read: the bridge gets every complete frame already received as one
//! chunk of the read buffer (a chunk ends after a request or answer, whose sender waits), so a
//! burst costs one wake-up and one write per outgoing link. Reports, requests and responses,
//! most of the traffic, are decoded borrowing from the chunk (nothing is copied to decode
//! them): an exchange server passes a report whose subscribers are all behind one link on as
//! the received bytes, and re-sends it to several links as the received head plus each
//! link's subscribers. For local services, on a connection whose traffic is
//! mostly for local subscribers (a client), a report's content is a slice of its chunk rather
//! than a copy (so a `Report` kept for long keeps its read buffer alive: keep the decoded value
//! instead); on a connection mostly relayed (a server), it is copied. Requests and answers are
//! relayed as received too; for a local service their content is copied unless it is large
//! (64 KiB or more), so a call waiting in an inbox does not keep a read buffer alive.
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
//!
//! Bad input never panics, never aborts and never makes a node allocate what a peer merely
//! announced: frames are decoded by hand, each length checked against the bytes actually
//! received, and user payloads with a bincode limit tied to their size. Garbage, truncated or
//! oversized frames, unknown variants, frames before the handshake (held to a small cap,
//! [`Limits::handshake_frame`]), over-long names, a wrong protocol version or exchange group,
//! and a peer that never speaks each close that connection with a logged error; every other
//! link keeps working. What a peer can make a node spend is bounded by [`Limits`].

mod bridge;
mod endpoint;
mod link;
mod net;
mod reader;
mod router;

pub use endpoint::{
    Authorise, ConnectionEvent, ConnectionState, Connector, Exchange, ExchangeConfig, ExchangeError, ExchangeStats,
};
pub use endpoint::{
    Limits, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DEAD_AFTER, DEFAULT_HANDSHAKE_FRAME, DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_HEARTBEAT, DEFAULT_OUTBOUND_LIMIT,
};

pub(crate) use link::{send_outcome, Link, ReportFanout};
pub(crate) use net::{Net, RouteRemoved};
pub(crate) use reader::FrameChunks;
pub(crate) use router::Router;
