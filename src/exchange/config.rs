//! The exchange's settings and what it tells: defaults, [`Limits`], [`ExchangeConfig`],
//! connection announcements, counters and errors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::auth::Secret;
use super::policy::Admit;
use crate::ids::ProcessId;
use crate::transport::{Tls, TlsError};
use crate::wire::DEFAULT_MAX_FRAME;

/// Default interval of heartbeats on a quiet link.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_millis(500);
/// Default silence after which a peer is considered dead.
pub const DEFAULT_DEAD_AFTER: Duration = Duration::from_secs(3);
/// Default time a new connection has to complete its handshake.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default cap of a link's outbound buffer: 32 MiB.
pub const DEFAULT_OUTBOUND_LIMIT: usize = 32 * 1024 * 1024;

/// Default time one connection attempt of a client may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// What a peer can make this node spend, bounded. The connection limits count per listener
/// ([`Exchange::listen`](crate::Exchange::listen)); the others per connection. Every limit is checked before the resource
/// is spent, refuses with a log line naming the peer (a `warn` for a refused connection, an
/// `error` for a connection closed for breaking a limit), and leaves every other link alone.
///
/// | limit | default | when it is hit |
/// |---|---|---|
/// | names (service, group, subject, pattern, node, type) | [`MAX_NAME_LEN`](crate::MAX_NAME_LEN) bytes | a frame carrying a longer one is a protocol error: the connection closes |
/// | [`handshake_frame`](Limits::handshake_frame) | 4 KiB | a larger frame before the handshake completed closes the connection (from its length prefix, before reading it) |
/// | [`connections`](Limits::connections) | 1,024 | a server closes a new connection at once |
/// | [`pending_handshakes`](Limits::pending_handshakes) | 128 | a server closes a new connection while that many have not completed their handshake |
/// | [`connections_per_address`](Limits::connections_per_address) | 64 | a server closes a new connection from an IP address that has that many |
/// | [`pending_per_address`](Limits::pending_per_address) | 16 | a server closes a new connection from an IP address with that many in their handshake |
/// | [`services_per_link`](Limits::services_per_link) | 250,000 | announcing one more closes the connection |
/// | [`subscriptions_per_link`](Limits::subscriptions_per_link) | 250,000 | requesting one more closes the connection |
/// | [`patterns_per_publisher`](Limits::patterns_per_publisher) | 1,024 | a subscriber requesting one more pattern from one publisher closes the connection |
/// | [`groups_per_service`](Limits::groups_per_service) | 256 | announcing a service in more, or joining one more, closes the connection |
/// | [`interned_bytes`](Limits::interned_bytes) | 1 MiB | the connection's cache of validated names starts over (nothing is refused) |
///
/// The frame size cap ([`ExchangeConfig::max_frame`]) and the outbound buffer
/// ([`ExchangeConfig::outbound_limit`]) bound each frame and each peer's backlog; a new link's
/// initial announcements are queued as the writer drains, so however many services a node
/// knows, they never fill that buffer at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted before the handshake completed, in bytes (a `Hello` with the
    /// longest names is about 550 bytes).
    pub handshake_frame: usize,
    /// Most connections a server serves at once (accepted ones, handshaking or ready).
    pub connections: usize,
    /// Most accepted connections still in their handshake.
    pub pending_handshakes: usize,
    /// Most connections a server serves at once from one IP address.
    pub connections_per_address: usize,
    /// Most connections from one IP address still in their handshake, so that a few
    /// addresses cannot hold every handshake slot ([`Limits::pending_handshakes`]).
    pub pending_per_address: usize,
    /// Most services one link may announce (live at once).
    pub services_per_link: usize,
    /// Most subscriptions one link may request (live at once).
    pub subscriptions_per_link: usize,
    /// Most patterns one subscriber behind a link may subscribe with to one publisher (each
    /// publish on a new subject is matched against them all).
    pub patterns_per_publisher: usize,
    /// Most groups one service announced through a link may be in.
    pub groups_per_service: usize,
    /// Bytes of validated names (subjects, patterns, type names) one connection keeps to
    /// avoid checking them again; over it the cache starts over.
    pub interned_bytes: usize,
}

/// Default of [`Limits::handshake_frame`].
pub const DEFAULT_HANDSHAKE_FRAME: usize = 4 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake_frame: DEFAULT_HANDSHAKE_FRAME,
            connections: 1024,
            pending_handshakes: 128,
            connections_per_address: 64,
            pending_per_address: 16,
            services_per_link: 250_000,
            subscriptions_per_link: 250_000,
            groups_per_service: 256,
            patterns_per_publisher: 1024,
            interned_bytes: 1024 * 1024,
        }
    }
}

/// Decides whether a server accepts a peer, by address.
pub type Authorise = Arc<dyn Fn(SocketAddr) -> bool + Send + Sync>;

/// Tunables of an exchange.
#[derive(Clone)]
pub struct ExchangeConfig {
    /// The exchange group: `""` (default) or the name of a separate exchange network. Only
    /// services with audience `*` or this group cross its links; both ends must agree.
    pub group: String,
    /// Largest frame accepted or sent (checked from the length prefix, before allocating).
    /// A larger frame received closes its connection (a protocol error). A call too large
    /// to send fails at once: a request with `CLIENT_REQUEST_ENCODING_ERROR` (42), a response
    /// with `SERVER_RESPONSE_ENCODING_ERROR` (52); one a relay cannot pass on to a link with a
    /// smaller cap fails with `SERVER_RESOURCE_UNAVAILABLE` (51, a request) or 52 (an answer).
    /// A report too large is dropped and logged.
    pub max_frame: usize,
    /// Heartbeat interval on a quiet link.
    pub heartbeat: Duration,
    /// A peer silent for this long is considered dead and its connection closed. Silence is
    /// counted in time this process ran (every heartbeat tick adds at most one interval), so
    /// a process stopped or stalled itself does not blame its peers when it resumes.
    pub dead_after: Duration,
    /// Time a connection has to complete its handshake.
    pub handshake_timeout: Duration,
    /// Cap of each link's outbound buffer, in bytes (see the slow-consumer policy).
    pub outbound_limit: usize,
    /// Called by a server for every incoming connection; `false` refuses it.
    pub authorise: Option<Authorise>,
    /// Time one connection attempt of a client may take (under silent loss a connect would
    /// otherwise wait on the kernel's retries, minutes); then it counts as failed and, with
    /// a retry delay, is tried again.
    pub connect_timeout: Duration,
    /// What a peer can make this node spend.
    pub limits: Limits,
    /// TLS on every link of this exchange, listened or connected (`None`: plaintext). A TLS
    /// server refuses plaintext peers, and a plaintext server TLS ones, each with a reason
    /// logged on both sides.
    pub tls: Option<Tls>,
    /// A shared secret every peer must prove it has, in the handshake (see [`Secret`]):
    /// `None` accepts peers without one. Both ends of a link need the same secret.
    pub secret: Option<Secret>,
    /// Decides, once a peer's handshake completed, whether it is served and what it may do
    /// (see [`PeerPolicy`](crate::PeerPolicy)); `None` serves every peer with no policy
    /// beyond [`Limits`]. A server sends its `Hello` only after this decision: a peer it
    /// refuses gets the refusal and never sees the connection active.
    pub admit: Option<Admit>,
}

impl Default for ExchangeConfig {
    fn default() -> Self {
        ExchangeConfig {
            group: String::new(),
            max_frame: DEFAULT_MAX_FRAME,
            heartbeat: DEFAULT_HEARTBEAT,
            dead_after: DEFAULT_DEAD_AFTER,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            outbound_limit: DEFAULT_OUTBOUND_LIMIT,
            authorise: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            limits: Limits::default(),
            tls: None,
            secret: None,
            admit: None,
        }
    }
}

impl std::fmt::Debug for ExchangeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeConfig")
            .field("group", &self.group)
            .field("max_frame", &self.max_frame)
            .field("heartbeat", &self.heartbeat)
            .field("dead_after", &self.dead_after)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("outbound_limit", &self.outbound_limit)
            .field("authorise", &self.authorise.is_some())
            .field("connect_timeout", &self.connect_timeout)
            .field("limits", &self.limits)
            .field("tls", &self.tls)
            .field("secret", &self.secret.is_some())
            .field("admit", &self.admit.is_some())
            .finish()
    }
}

/// Whether a connection became active or inactive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// The handshake completed; services are being exchanged.
    Active,
    /// The connection was lost or closed; what it brought is withdrawn.
    Inactive,
}

/// A connection announcement. Failed attempts produce none.
#[derive(Debug, Clone)]
pub struct ConnectionEvent {
    /// Active or inactive.
    pub state: ConnectionState,
    /// This side's socket address.
    pub local_addr: SocketAddr,
    /// The peer's socket address.
    pub remote_addr: SocketAddr,
    /// The peer's process identity.
    pub remote_process: ProcessId,
    /// The peer's node name.
    pub remote_node: String,
    /// The exchange group of the connection.
    pub group: String,
}

/// Traffic counters of one exchange (all its links).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExchangeStats {
    /// Frames handed to sockets.
    pub frames_sent: u64,
    /// Report frames handed to sockets (one per report per link, whatever the number of
    /// subscribers behind the link).
    pub reports_sent: u64,
    /// Reports dropped because a peer's outbound buffer was full.
    pub reports_dropped: u64,
    /// Reports a peer's full outbound buffer kept aside for a conflated subscription and then
    /// replaced by a later one of the same subject (counted by the report that replaced
    /// them, [`Report::conflated`](crate::Report::conflated)).
    pub reports_conflated: u64,
    /// Bytes written to sockets.
    pub bytes_written: u64,
    /// Connections currently active.
    pub connections: usize,
}

/// Errors of the exchange's own operations.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The exchange group name is invalid.
    #[error("invalid exchange group: {0}")]
    Group(#[from] crate::names::InvalidName),
    /// Binding or connecting failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The TLS settings cannot serve this use (no certificate to listen with, no CA to
    /// connect with).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The connection closed before its handshake completed (the reason as logged).
    #[error("the connection closed before it was ready: {0}")]
    Closed(String),
}
