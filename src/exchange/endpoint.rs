//! The public face of the exchange: listen, connect, connection announcements.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, oneshot};

use super::bridge::Bridge;
use super::link::Counters;
use super::Link;
use crate::ids::ProcessId;
use crate::names::GroupName;
use crate::node::Node;
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
/// ([`Exchange::listen`]); the others per connection. Every limit is checked before the resource
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
}

/// Connections a server is serving, for [`Limits`]: taken on accept, handed back when the
/// bridge ends (a [`Slot`] dropped).
#[derive(Default)]
struct Admission {
    total: usize,
    pending: usize,
    /// Connections, and those of them still in their handshake, per address.
    per_address: std::collections::HashMap<std::net::IpAddr, (usize, usize)>,
    /// Connections refused so far (logged at powers of two, so a flood does not flood the log).
    refused: u64,
}

/// One accepted connection's share of the server's [`Limits`]. Dropped with its bridge.
pub(crate) struct Slot {
    shared: Arc<Mutex<Admission>>,
    ip: std::net::IpAddr,
    pending: bool,
}

impl Slot {
    /// The handshake completed: the connection no longer counts as pending.
    pub(crate) fn handshake_done(&mut self) {
        if std::mem::take(&mut self.pending) {
            let mut admission = lock(&self.shared);
            admission.pending -= 1;
            if let Some((_, pending)) = admission.per_address.get_mut(&self.ip) {
                *pending -= 1;
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut admission = lock(&self.shared);
        admission.total -= 1;
        if self.pending {
            admission.pending -= 1;
        }
        if let Some((total, pending)) = admission.per_address.get_mut(&self.ip) {
            *total -= 1;
            if self.pending {
                *pending -= 1;
            }
            if *total == 0 {
                admission.per_address.remove(&self.ip);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes a slot for a connection from `peer`, or says which limit refuses it.
fn admit(
    admission: &Arc<Mutex<Admission>>,
    limits: &Limits,
    peer: SocketAddr,
) -> Result<Slot, String> {
    let mut a = lock(admission);
    let ip = peer.ip();
    let (from_here, pending_here) = a.per_address.get(&ip).copied().unwrap_or((0, 0));
    let refusal = if a.total >= limits.connections {
        Some(format!("{} connections already (the limit)", a.total))
    } else if a.pending >= limits.pending_handshakes {
        Some(format!(
            "{} connections still in their handshake (the limit)",
            a.pending
        ))
    } else if from_here >= limits.connections_per_address {
        Some(format!(
            "{from_here} connections from {ip} already (the limit per address)"
        ))
    } else if pending_here >= limits.pending_per_address {
        Some(format!(
            "{pending_here} connections from {ip} still in their handshake (the limit per address)"
        ))
    } else {
        None
    };
    if let Some(reason) = refusal {
        a.refused += 1;
        return Err(if a.refused.is_power_of_two() {
            format!("{reason}; {} refused so far", a.refused)
        } else {
            String::new()
        });
    }
    a.total += 1;
    a.pending += 1;
    let here = a.per_address.entry(ip).or_default();
    here.0 += 1;
    here.1 += 1;
    Ok(Slot {
        shared: admission.clone(),
        ip,
        pending: true,
    })
}

pub(crate) struct ExchangeShared {
    pub(crate) node: Node,
    pub(crate) config: ExchangeConfig,
    pub(crate) group: Option<GroupName>,
    events: broadcast::Sender<ConnectionEvent>,
    hub: AtomicBool,
    pub(crate) counters: Arc<Counters>,
    links: Mutex<Vec<Link>>,
}

impl ExchangeShared {
    pub(crate) fn group_name(&self) -> &str {
        &self.config.group
    }

    pub(crate) fn is_hub(&self) -> bool {
        self.hub.load(Ordering::Relaxed)
    }

    pub(crate) fn announce(&self, event: ConnectionEvent) {
        let _ = self.events.send(event);
    }

    pub(crate) fn remember_link(&self, link: &Link) {
        self.links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(link.clone());
    }

    pub(crate) fn forget_link(&self, link: &Link) {
        self.links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|l| !l.same(link));
    }
}

/// One node's endpoint in one exchange group: a server (`listen`), a client (`connect`), or
/// both. Cheap to clone. Create it inside the actix System.
#[derive(Clone)]
pub struct Exchange(Arc<ExchangeShared>);

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("group", &self.0.config.group)
            .field("hub", &self.0.is_hub())
            .finish()
    }
}

impl Exchange {
    /// An exchange for `node` in the default group with default settings.
    pub fn new(node: &Node) -> Exchange {
        Exchange::with_config(node, ExchangeConfig::default()).expect("the default group is valid")
    }

    /// An exchange with explicit settings; fails on an invalid group name.
    pub fn with_config(node: &Node, config: ExchangeConfig) -> Result<Exchange, ExchangeError> {
        let group = if config.group.is_empty() {
            None
        } else {
            Some(GroupName::new(&config.group)?)
        };
        let (events, _) = broadcast::channel(256);
        Ok(Exchange(Arc::new(ExchangeShared {
            node: node.clone(),
            config,
            group,
            events,
            hub: AtomicBool::new(false),
            counters: Arc::default(),
            links: Mutex::new(Vec::new()),
        })))
    }

    /// Closes every connection of this exchange now (with a goodbye); listeners keep
    /// listening and clients with a retry delay reconnect.
    pub fn disconnect_all(&self) {
        let links: Vec<Link> = self
            .0
            .links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for link in links {
            let _ = link.send_frame(&crate::wire::Frame::Goodbye {
                reason: "disconnected by request".into(),
            });
            link.close();
        }
    }

    /// Traffic counters of this exchange since it was created.
    pub fn stats(&self) -> ExchangeStats {
        let c = &self.0.counters;
        ExchangeStats {
            frames_sent: c.frames_sent.load(Ordering::Relaxed),
            reports_sent: c.reports_sent.load(Ordering::Relaxed),
            reports_dropped: c.reports_dropped.load(Ordering::Relaxed),
            bytes_written: c.bytes_written.load(Ordering::Relaxed),
            connections: self.0.links.lock().unwrap_or_else(|p| p.into_inner()).len(),
        }
    }

    /// Connection announcements from now on (active / inactive, with the peer's identity).
    pub fn connections(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.0.events.subscribe()
    }

    /// Listens on `addr` (e.g. `"127.0.0.1:0"`) and serves every peer that connects; this
    /// node becomes a hub that relays between its links. Returns the bound address.
    pub async fn listen(&self, addr: &str) -> Result<SocketAddr, ExchangeError> {
        let listener = bind(addr).await?;
        let local = listener.local_addr()?;
        self.0.hub.store(true, Ordering::Relaxed);
        tracing::info!(%local, group = %self.0.config.group, "exchange server listening");
        let shared = self.0.clone();
        let admission = Arc::new(Mutex::new(Admission::default()));
        actix::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        if let Some(authorise) = &shared.config.authorise {
                            if !authorise(peer) {
                                tracing::warn!(%peer, "connection refused by the authorise hook");
                                drop(stream);
                                continue;
                            }
                        }
                        let slot = match admit(&admission, &shared.config.limits, peer) {
                            Ok(slot) => slot,
                            Err(reason) => {
                                if !reason.is_empty() {
                                    tracing::warn!(%peer, "connection refused: {reason}");
                                }
                                drop(stream);
                                continue;
                            }
                        };
                        tracing::debug!(%peer, "accepted connection");
                        drop(Bridge::start(stream, shared.clone(), Some(slot)));
                    }
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        Ok(local)
    }

    /// Connects to an exchange server at `addr`. With a retry delay the client keeps trying
    /// until connected and reconnects after a loss; without one it makes a single attempt.
    /// Watch [`Exchange::connections`] to learn when the connection is active.
    pub fn connect(&self, addr: &str, retry: Option<Duration>) -> Connector {
        let shared = self.0.clone();
        let addr = addr.to_owned();
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let mut events = shared.events.subscribe();
        actix::spawn(async move {
            loop {
                let timeout = shared.config.connect_timeout;
                let attempt = tokio::select! {
                    r = tokio::time::timeout(timeout, TcpStream::connect(&addr)) => r.unwrap_or_else(|_| {
                        Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("no answer within {:.1} s", timeout.as_secs_f64()),
                        ))
                    }),
                    _ = &mut stop_rx => return,
                };
                match attempt {
                    Ok(stream) => {
                        let closed = Bridge::start(stream, shared.clone(), None);
                        let closed = tokio::select! {
                            closed = closed => closed.ok(),
                            _ = &mut stop_rx => return,
                        };
                        if let Some(peer) = closed.and_then(|c| c.duplicate_of) {
                            // The peer is already linked through another connection: stand by
                            // until that one is lost, then connect again.
                            tracing::info!(%addr, "already linked to this peer; standing by");
                            loop {
                                tokio::select! {
                                    event = events.recv() => match event {
                                        Ok(e) if e.state == ConnectionState::Inactive && e.remote_process == peer => break,
                                        // Events were missed (the loss may be among them): try
                                        // again; a duplicate stands by again.
                                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                                        Ok(_) => {}
                                        Err(broadcast::error::RecvError::Closed) => return,
                                    },
                                    _ = &mut stop_rx => return,
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(%addr, "cannot connect: {e}"),
                }
                let Some(delay) = retry else { return };
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = &mut stop_rx => return,
                }
            }
        });
        Connector { _stop: stop_tx }
    }
}

/// A listening socket on the first address `addr` resolves to that can be bound, with a
/// long accept queue ([`LISTEN_BACKLOG`]): with the usual 128, a burst of connections (a
/// flood, or every client of a restarted hub at once) overflows it and the kernel drops SYNs,
/// which a legitimate client then resends only a second later.
async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(addr).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket
            .bind(addr)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to listen on")
    }))
}

/// Length of a server's accept queue (the kernel caps it at `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 1024;

/// Keeps a client connection (and its retries) going; dropping it stops retrying after the
/// current connection ends... Call [`Connector::forget`] to keep it running for the life of
/// the process without holding the handle.
#[must_use = "dropping the connector stops reconnecting; call .forget() to keep it running"]
pub struct Connector {
    _stop: oneshot::Sender<()>,
}

impl Connector {
    /// Keeps connecting (and reconnecting) for as long as the System runs.
    pub fn forget(self) {
        std::mem::forget(self._stop);
    }
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}
