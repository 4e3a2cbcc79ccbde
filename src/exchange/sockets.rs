//! The [`Exchange`] handle: listening, connecting and reconnecting, and closing.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, oneshot};

use super::bridge::Bridge;
use super::config::{
    ConnectionEvent, ConnectionState, ExchangeConfig, ExchangeError, ExchangeStats,
};
use super::shared::{admit, Admission, ExchangeShared};
use crate::delivery::Link;
use crate::names::GroupName;
use crate::node::Node;
use crate::transport::Connection;

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
            let _ = link.out().send_frame(&crate::wire::Frame::Goodbye {
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
            reports_conflated: c.reports_conflated.load(Ordering::Relaxed),
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
        if let Some(tls) = &self.0.config.tls {
            tls.acceptor()?;
        }
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
                        let shared = shared.clone();
                        match &shared.config.tls {
                            None => match Connection::plain(stream) {
                                Ok(c) => drop(Bridge::start(c, shared.clone(), Some(slot))),
                                Err(e) => tracing::warn!(%peer, "connection lost at once: {e}"),
                            },
                            // The handshake must not hold up the next accept.
                            Some(tls) => {
                                let (tls, timeout) = (tls.clone(), shared.config.handshake_timeout);
                                actix::spawn(async move {
                                    match Connection::accept(stream, &tls, timeout).await {
                                        Ok(c) => drop(Bridge::start(c, shared, Some(slot))),
                                        Err(e) => tracing::warn!(%peer, "connection refused: {e}"),
                                    }
                                });
                            }
                        }
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

    /// Connects to an exchange server at `addr` once and waits for the handshake: the
    /// connection's announcement when it is active, or why it is not — the socket's error
    /// (nothing listening, no answer within the connect timeout), TLS's, or the reason the
    /// link closed before it was ready (refused by the peer, authentication failed, no
    /// handshake within the handshake timeout). For tools that must say at once whether they
    /// are in the mesh; the connection is not retried after a loss.
    pub async fn connect_once(&self, addr: &str) -> Result<ConnectionEvent, ExchangeError> {
        let shared = self.0.clone();
        let mut events = shared.events.subscribe();
        let connection = open(&shared, addr).await?;
        let local = connection.local_addr;
        let mut closed = Bridge::start(connection, shared, None);
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(e) if e.state == ConnectionState::Active && e.local_addr == local => return Ok(e),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(ExchangeError::Closed("the exchange stopped".into()))
                    }
                },
                ended = &mut closed => {
                    let reason = ended.map_or_else(|_| "the connection ended".to_owned(), |c| c.reason);
                    return Err(ExchangeError::Closed(reason));
                }
            }
        }
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
                let connection = tokio::select! {
                    c = open(&shared, &addr) => c.map_err(|e| e.to_string()),
                    _ = &mut stop_rx => return,
                };
                match connection {
                    Ok(connection) => {
                        let closed = Bridge::start(connection, shared.clone(), None);
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

/// One attempt at a connection to `addr` (TCP, then TLS if configured), bounded by the
/// connect and handshake timeouts.
async fn open(shared: &ExchangeShared, addr: &str) -> Result<Connection, ExchangeError> {
    let timeout = shared.config.connect_timeout;
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {:.1} s", timeout.as_secs_f64()),
            ))
        })?;
    Ok(match &shared.config.tls {
        None => Connection::plain(stream)?,
        Some(tls) => {
            Connection::connect(stream, tls, addr, shared.config.handshake_timeout).await?
        }
    })
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
