//! The bridge: one actor per connection, reading frames and giving them meaning.
//!
//! States: `Handshaking` (both sides send `Hello`; anything else is a protocol error; silence
//! past the handshake timeout closes the connection) → `Ready` (announcements update the
//! routing table and the registry; data frames are routed to local services or relayed over
//! another link) → `Closing` (everything learned through the link is withdrawn).
//!
//! The side that connected speaks first; the side that accepted sends its `Hello` only once
//! it has accepted the peer's: the version, group and node name checked, the shared secret
//! proven, the server's policy consulted. A peer it refuses gets `Refused` and never a
//! `Hello`, so it never takes the link for up, not even for a moment.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix::{Actor, ActorContext, AsyncContext, Context, Handler, Message, StreamHandler};
use bytes::Bytes;
use tokio::sync::oneshot;

use super::announced::{Announced, GroupOutcome, Lost};
use super::auth::Challenge;
use super::config::{ConnectionEvent, ConnectionState};
use super::policy::{PeerInfo, PeerPolicy};
use super::quota::Subscriptions;
use super::shared::{ExchangeShared, Slot};
use super::silence::{Silence, VERDICT_AFTER};
use crate::delivery::{GroupChange, Inbound, Link, Peer, Side};
use crate::ids::AgentId;
use crate::names::{clip_name, SubjectPattern, MAX_NAME_LEN};
use crate::transport::{Connection, FrameChunks, Identity, LinkLimits, BATCH};
use crate::wire::{
    decode_incoming, split_frame, CodecError, Frame, Hello, Incoming, PROTOCOL_VERSION,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshaking,
    Ready,
    Closing,
}

/// One connection's actor.
pub(crate) struct Bridge {
    shared: Arc<ExchangeShared>,
    link: Link,
    peer_addr: SocketAddr,
    local_addr: SocketAddr,
    state: State,
    /// How long the peer has been silent (see [`Silence`]).
    silence: Silence,
    /// The services learned through this link.
    announced: Announced,
    closed: Option<oneshot::Sender<Closed>>,
    /// Why the connection closed, for [`Closed`].
    close_reason: Option<String>,
    /// What the frames received mean and where they go.
    inbound: Inbound,
    /// The shared-secret challenge, when this side has a secret (see `auth.rs`).
    auth: Option<Auth>,
    /// The peer's `Hello`, accepted and waiting for its proof of the shared secret.
    auth_hello: Option<Hello>,
    /// What TLS told of the session and the peer (empty in plaintext).
    identity: Identity,
    /// What the server's policy lets this peer do (everything, without a policy).
    policy: PeerPolicy,
    /// Makes the reader yield before its next chunk (see `FrameChunks`).
    pause: Rc<Cell<bool>>,
    /// The reader's frame size cap: small until the handshake is accepted.
    cap: Rc<Cell<usize>>,
    /// This connection's share of a server's connection limits (`None` on a client); shared
    /// with the writer task, so it is given back only when the socket is closed.
    slot: Option<Rc<RefCell<Slot>>>,
    /// Subscriptions requested through this link and not withdrawn, for
    /// [`Limits::subscriptions_per_link`](super::Limits::subscriptions_per_link).
    subscriptions: Subscriptions,
}

/// This side's challenge of the peer and how far it got.
struct Auth {
    challenge: Challenge,
    /// The peer's nonce, once its challenge came.
    peer_nonce: Option<Vec<u8>>,
    /// Whether the peer proved the secret.
    proven: bool,
}

/// How a connection is closed: after an error (logged as one) or normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// A protocol error, a refusal, a failed write, a silent peer.
    Error,
    /// The peer left, said goodbye, or the link was dropped as a duplicate.
    Normal,
}

/// How a connection ended, for its connector.
#[derive(Debug, Clone)]
pub(crate) struct Closed {
    /// Set when the link was dropped as a duplicate of another link to this process.
    pub(crate) duplicate_of: Option<crate::ids::ProcessId>,
    /// Why it closed, as logged.
    pub(crate) reason: String,
}

/// The writer task ended.
struct WriterDone(Option<std::io::Error>);
impl Message for WriterDone {
    type Result = ();
}

impl Bridge {
    /// Starts a bridge for an accepted or connected socket. The receiver fires when the
    /// connection has closed.
    /// A server's connection comes with its `slot` of the connection limits; a client's
    /// (this side initiated it) without.
    pub(crate) fn start(
        connection: Connection,
        shared: Arc<ExchangeShared>,
        slot: Option<Slot>,
    ) -> oneshot::Receiver<Closed> {
        let side = if slot.is_none() {
            Side::Connected
        } else {
            Side::Accepted
        };
        let (closed_tx, closed_rx) = oneshot::channel();
        let Connection {
            reader,
            writer,
            probe,
            peer_addr,
            local_addr,
            identity,
        } = connection;
        let auth = match shared
            .config
            .secret
            .clone()
            .map(|s| Challenge::new(s, identity.session.clone()))
        {
            None => None,
            Some(Ok(challenge)) => Some(Auth {
                challenge,
                peer_nonce: None,
                proven: false,
            }),
            Some(Err(e)) => {
                tracing::error!(peer = %peer_addr, "cannot authenticate the connection: {e}");
                return closed_rx;
            }
        };
        let config = &shared.config;
        let limits = LinkLimits {
            outbound: config.outbound_limit,
            max_frame: config.max_frame,
            stall: config.dead_after,
        };
        let routes = shared.node.routes().clone();
        let counters = shared.counters.clone();
        let link = Link::new(routes, shared.group.clone(), side, limits, counters);
        link.set_announcer(shared.node.announcer_handle());
        let first_cap = config.max_frame.min(config.limits.handshake_frame);
        let interned_bytes = config.limits.interned_bytes;
        Bridge::create(move |ctx| {
            let chunks = FrameChunks::new(reader, first_cap);
            let pause = chunks.pause_flag();
            let cap = chunks.cap();
            let heard = chunks.heard();
            ctx.add_stream(chunks);
            let out = link.out().clone();
            if let Some(probe) = probe {
                out.write_directly(probe);
            }
            let addr = ctx.address();
            let slot = slot.map(|slot| Rc::new(RefCell::new(slot)));
            let writer_slot = slot.clone();
            actix::spawn(async move {
                let result = out.write_loop(writer).await;
                addr.do_send(WriterDone(result.err()));
                drop(writer_slot);
            });
            Bridge {
                inbound: Inbound::new(link.clone(), interned_bytes),
                auth,
                auth_hello: None,
                identity,
                policy: PeerPolicy::default(),
                shared,
                link,
                peer_addr,
                local_addr,
                state: State::Handshaking,
                silence: Silence::new(heard),
                announced: Announced::default(),
                closed: Some(closed_tx),
                close_reason: None,
                pause,
                cap,
                slot,
                subscriptions: Subscriptions::default(),
            }
        });
        closed_rx
    }

    fn hello(&self) -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            process: self.shared.node.process(),
            node: clip_name(self.shared.node.name()).to_owned(),
            group: self.shared.group_name().to_owned(),
            hub: self.shared.is_hub(),
        }
    }

    /// Closes the connection once; withdraws what was learned through it.
    fn close(&mut self, ctx: &mut Context<Self>, reason: &str, ending: Ending) {
        if self.state == State::Closing {
            return;
        }
        if ending == Ending::Error {
            tracing::error!(peer = %self.peer_addr, "closing connection: {reason}");
        } else {
            tracing::info!(peer = %self.peer_addr, "connection closed: {reason}");
        }
        let was_ready = self.state == State::Ready;
        self.state = State::Closing;
        self.close_reason = Some(reason.to_owned());
        self.link.close();
        self.shared.forget_link(&self.link);
        if was_ready {
            let agents = self.announced.agents();
            for agent in agents {
                self.withdraw(agent, Lost::LinkClosed);
            }
            self.shared.node.routes().fail_pending_via(&self.link);
            self.shared.node.announcer().link_down(&self.link);
            // A link dropped as a duplicate leaves the peer linked through the other one.
            if let Some(peer) = self.link.peer().filter(|_| !self.link.is_duplicate()) {
                self.shared.announce(ConnectionEvent {
                    state: ConnectionState::Inactive,
                    local_addr: self.local_addr,
                    remote_addr: self.peer_addr,
                    remote_process: peer.process,
                    remote_node: peer.node.clone(),
                    group: self.shared.group_name().to_owned(),
                });
            }
        }
        ctx.stop();
    }

    /// The peer's challenge: answered with this side's proof.
    fn challenged(&mut self, ctx: &mut Context<Self>, nonce: &[u8]) {
        let side = self.link.side();
        let Some(auth) = &mut self.auth else {
            let reason = "authentication failed: the peer requires a shared secret, and this \
                          side has none";
            return self.refuse(ctx, reason.to_owned());
        };
        match auth.challenge.prove(side, nonce) {
            Ok(mac) => {
                auth.peer_nonce = Some(nonce.to_vec());
                let _ = self.link.out().send_frame(&Frame::Proof { mac });
            }
            Err(e) => self.refuse(ctx, format!("authentication failed: {e}")),
        }
    }

    /// The peer's proof: checked, and the link made ready if it holds.
    fn proved(&mut self, ctx: &mut Context<Self>, mac: &[u8]) {
        let side = self.link.side();
        let Some(auth) = &mut self.auth else {
            let reason = "authentication failed: this side has no shared secret";
            return self.refuse(ctx, reason.to_owned());
        };
        let holds = auth
            .peer_nonce
            .as_deref()
            .is_some_and(|nonce| auth.challenge.check(side, nonce, mac));
        if !holds {
            let reason = "authentication failed: the peer did not prove the shared secret";
            return self.refuse(ctx, reason.to_owned());
        }
        auth.proven = true;
        tracing::debug!(peer = %self.peer_addr, "the peer proved the shared secret");
        if let Some(hello) = self.auth_hello.take() {
            self.ready(ctx, hello);
        }
    }

    fn refuse(&mut self, ctx: &mut Context<Self>, reason: String) {
        let _ = self.link.out().send_frame(&Frame::Refused {
            reason: reason.clone(),
        });
        self.close(ctx, &format!("handshake refused: {reason}"), Ending::Error);
    }

    fn handshake(&mut self, ctx: &mut Context<Self>, hello: Hello) {
        if hello.version != PROTOCOL_VERSION {
            let reason = format!(
                "protocol version {} is not supported (this side speaks version {PROTOCOL_VERSION})",
                hello.version
            );
            return self.refuse(ctx, reason);
        }
        // The node name is only printed, but printed on every connection line: bounded, and
        // without control characters that could forge log lines.
        if hello.node.len() > MAX_NAME_LEN || hello.node.contains(char::is_control) {
            let reason = format!(
                "invalid node name: {} bytes (at most {MAX_NAME_LEN}, no control characters)",
                hello.node.len()
            );
            return self.refuse(ctx, reason);
        }
        if hello.group != self.shared.group_name() {
            let reason = format!(
                "exchange group mismatch: peer is in {:?}, this side in {:?}",
                clip_name(&hello.group),
                self.shared.group_name()
            );
            return self.refuse(ctx, reason);
        }
        if hello.process == self.shared.node.process() {
            return self.refuse(ctx, "connected to itself".to_owned());
        }
        match &self.auth {
            // The peer has yet to prove the shared secret: the link waits for its proof.
            Some(auth) if !auth.proven => self.auth_hello = Some(hello),
            _ => self.ready(ctx, hello),
        }
    }

    /// The handshake is complete: the link is ready, unless the server's policy refuses the
    /// peer or it duplicates another link.
    fn ready(&mut self, ctx: &mut Context<Self>, hello: Hello) {
        if let Some(admit) = &self.shared.config.admit {
            let info = PeerInfo {
                addr: self.peer_addr,
                node: hello.node.clone(),
                process: hello.process,
                certificate_names: self.identity.peer_names.clone(),
                certificate_subject: self.identity.peer_subject.clone(),
                secret_proven: self.auth.as_ref().is_some_and(|a| a.proven),
            };
            match admit(&info) {
                Some(policy) => self.policy = policy,
                None => return self.refuse(ctx, "refused by the server's policy".to_owned()),
            }
        }
        // The peer is accepted: now it may hear this side's Hello (see the module docs).
        if self.link.side() == Side::Accepted {
            let _ = self.link.out().send_frame(&Frame::Hello(self.hello()));
        }
        let peer = Peer {
            process: hello.process,
            node: hello.node.clone(),
            hub: hello.hub,
            authenticated: self.identity.peer_verified
                || self.auth.as_ref().is_some_and(|a| a.proven),
            address: self.peer_addr,
            tls: !self.identity.session.is_empty(),
            since: std::time::Instant::now(),
        };
        self.link.set_peer(peer);
        if !self.shared.node.announcer().link_up(&self.link) {
            // A duplicate of another link to the same process (already marked and closed): it
            // never became ready, so nothing is announced or withdrawn for it.
            return self.close(ctx, "duplicate link dropped", Ending::Normal);
        }
        self.state = State::Ready;
        self.cap.set(self.shared.config.max_frame);
        if let Some(slot) = &self.slot {
            slot.borrow_mut().handshake_done();
        }
        self.shared.remember_link(&self.link);
        tracing::info!(peer = %self.peer_addr, node = %hello.node, process = %hello.process, "connection active");
        self.shared.announce(ConnectionEvent {
            state: ConnectionState::Active,
            local_addr: self.local_addr,
            remote_addr: self.peer_addr,
            remote_process: hello.process,
            remote_node: hello.node,
            group: self.shared.group_name().to_owned(),
        });
    }

    /// This link no longer leads to `agent`: withdraw it, or switch it to another route.
    fn withdraw(&mut self, agent: AgentId, lost: Lost) {
        if self
            .announced
            .withdraw(&self.shared, &self.link, agent, lost)
        {
            self.subscriptions.forget(agent);
            self.link.out().unconflate(agent, None);
        }
    }

    /// Handles one decoded frame; `raw` is the frame as received (header included), for
    /// passing it on unchanged.
    fn on_frame(
        &mut self,
        ctx: &mut Context<Self>,
        frame: Frame,
        raw: &[u8],
    ) -> Result<(), String> {
        match (self.state, frame) {
            (State::Closing, _) => Ok(()),
            (State::Handshaking, Frame::Hello(hello)) => {
                self.handshake(ctx, hello);
                Ok(())
            }
            (_, Frame::Refused { reason }) => {
                let reason = format!("refused by peer: {:?}", clip_name(&reason));
                self.close(ctx, &reason, Ending::Error);
                Ok(())
            }
            (State::Handshaking, Frame::Challenge { nonce }) => {
                self.challenged(ctx, &nonce);
                Ok(())
            }
            (State::Handshaking, Frame::Proof { mac }) => {
                self.proved(ctx, &mac);
                Ok(())
            }
            (State::Handshaking, other) if self.auth_hello.is_some() => {
                let reason = format!(
                    "authentication failed: the peer sent {} without proving the shared secret",
                    other.kind()
                );
                self.refuse(ctx, reason);
                Ok(())
            }
            (State::Handshaking, other) => {
                Err(format!("{} frame before the handshake", other.kind()))
            }
            (State::Ready, Frame::Challenge { .. }) => {
                let reason = "the peer requires a shared secret, and this side has none";
                self.close(ctx, reason, Ending::Error);
                Ok(())
            }
            (State::Ready, Frame::Hello(_)) => Err("second Hello".to_owned()),
            (State::Ready, Frame::Goodbye { reason }) => {
                let reason = format!("peer said goodbye: {:?}", clip_name(&reason));
                self.close(ctx, &reason, Ending::Normal);
                Ok(())
            }
            (State::Ready, Frame::Heartbeat) => Ok(()),
            (State::Ready, frame) => self.on_data(frame, raw),
        }
    }

    /// A group change the peer sent; one for an agent it did not announce is a forgery.
    fn group_change(
        &mut self,
        agent: AgentId,
        group: &str,
        change: GroupChange,
        kind: &str,
    ) -> Result<(), String> {
        let (shared, link, policy) = (&self.shared, &self.link, &self.policy);
        match self
            .announced
            .group_change(shared, link, agent, group, change, policy)?
        {
            GroupOutcome::Applied => Ok(()),
            GroupOutcome::Forged => self.inbound.forged(agent, kind),
        }
    }

    /// Handles a frame of a ready connection other than its control frames: announcements
    /// change what is known through the link, subscriptions are counted against the link's
    /// limits, and everything is routed.
    fn on_data(&mut self, frame: Frame, raw: &[u8]) -> Result<(), String> {
        let (shared, link) = (&self.shared, &self.link);
        let kind = frame.kind();
        match frame {
            Frame::ServiceAvailable(info) => {
                let limits = (&shared.config.limits, &self.policy);
                self.announced.available(shared, link, info, limits)
            }
            Frame::ServiceWithdrawn { agent } => {
                self.withdraw(agent, Lost::ServiceWithdrawn);
                Ok(())
            }
            Frame::GroupJoined { agent, group } => {
                self.group_change(agent, &group, GroupChange::Joined, kind)
            }
            Frame::GroupLeft { agent, group } => {
                self.group_change(agent, &group, GroupChange::Left, kind)
            }
            Frame::SubscriptionRequested {
                publisher,
                subscriber,
                ref pattern,
            }
            | Frame::SubscriptionRequestedAs {
                publisher,
                subscriber,
                ref pattern,
                ..
            }
            | Frame::SubscriptionConflated {
                publisher,
                subscriber,
                ref pattern,
                ..
            } => {
                let key = (
                    publisher,
                    SubjectPattern::new(pattern).map_err(|e| e.to_string())?,
                );
                let (held, already) = self.subscriptions.holds(subscriber, &key);
                if let Some(max) = self.policy.max_subscriptions.filter(|&m| held >= m) {
                    if !already {
                        let peer = link.peer().map_or("", |p| p.node.as_str());
                        tracing::warn!(peer, %subscriber, "subscription refused by the peer's policy (more than {max})");
                        return Ok(());
                    }
                }
                let limits = &shared.config.limits;
                let routes = shared.node.routes();
                self.subscriptions.add(subscriber, key, limits, routes)?;
                self.inbound.data(frame, raw, self.announced.behind())
            }
            Frame::SubscriptionWithdrawn {
                publisher,
                subscriber,
                ref pattern,
            } => {
                if let Ok(p) = SubjectPattern::new(pattern) {
                    self.subscriptions.remove(subscriber, &(publisher, p));
                }
                self.inbound.data(frame, raw, self.announced.behind())
            }
            data => self.inbound.data(data, raw, self.announced.behind()),
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        // Routes are cached while used; an idle bridge must not keep closed links alive.
        self.inbound.forget_routes();
        if self.state != State::Ready {
            return;
        }
        let config = &self.shared.config;
        let dead_after = config.dead_after;
        if self.silence.tick(Instant::now(), config.heartbeat) > dead_after {
            // Before the peer is blamed, what it sent meanwhile is read: the verdict comes after
            // the runtime's next turn of its timers, which polls the sockets first (and this
            // actor polls its reader before its timers).
            ctx.run_later(VERDICT_AFTER, move |bridge, ctx| {
                let silent = bridge.silence.counted();
                if bridge.state == State::Ready && silent > dead_after {
                    let reason = format!("peer silent for {:.1} s", silent.as_secs_f64());
                    bridge.close(ctx, &reason, Ending::Error);
                }
            });
        }
        self.link.out().heartbeat();
    }
}

impl Actor for Bridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // A side with a secret challenges first, so that a peer without one refuses before
        // it takes the link for ready. The side that accepted says hello once it accepted
        // the peer's (see `ready`).
        if let Some(auth) = &self.auth {
            let nonce = auth.challenge.nonce();
            let _ = self.link.out().send_frame(&Frame::Challenge { nonce });
        }
        if self.link.side() == Side::Connected {
            let _ = self.link.out().send_frame(&Frame::Hello(self.hello()));
        }
        let config = &self.shared.config;
        let timeout = config.handshake_timeout;
        ctx.run_later(timeout, move |bridge, ctx| {
            if bridge.state == State::Handshaking {
                bridge.close(
                    ctx,
                    &format!("no handshake within {:.1} s", timeout.as_secs_f64()),
                    Ending::Error,
                );
            }
        });
        ctx.run_interval(config.heartbeat, |bridge, ctx| bridge.tick(ctx));
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.link.close();
        if let Some(tx) = self.closed.take() {
            let duplicate_of = self
                .link
                .peer()
                .filter(|_| self.link.is_duplicate())
                .map(|p| p.process);
            let reason = self
                .close_reason
                .take()
                .unwrap_or_else(|| "the connection ended".to_owned());
            let _ = tx.send(Closed {
                duplicate_of,
                reason,
            });
        }
    }
}

impl StreamHandler<Result<Bytes, CodecError>> for Bridge {
    /// One chunk of complete frames (see [`FrameChunks`]).
    fn handle(&mut self, chunk: Result<Bytes, CodecError>, ctx: &mut Context<Self>) {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            // The socket failed (a reset when the peer died): a lost connection, not bad input.
            Err(CodecError::Io(e)) if e.kind() != std::io::ErrorKind::InvalidData => {
                return self.close(ctx, &format!("connection lost: {e}"), Ending::Normal);
            }
            // A TLS ClientHello read as a frame header: a record of type 0x16, version 3.x.
            Err(CodecError::TooLarge { len, .. })
                if self.state == State::Handshaking && len >> 16 == 0x1603 =>
            {
                let reason = "a TLS client on a plaintext exchange server (this side has no TLS)";
                return self.close(ctx, reason, Ending::Error);
            }
            Err(e) => return self.close(ctx, &format!("protocol error: {e}"), Ending::Error),
        };
        let mut rest = &chunk[..];
        let mut local_bytes = 0;
        let mut any_report = false;
        let mut shared = None;
        let mut frames = 0;
        while let Some((frame, body, next)) = split_frame(rest) {
            rest = next;
            frames += 1;
            if self.state == State::Closing {
                break;
            }
            let ready = self.state == State::Ready;
            // Matched by reference: a report's view (most of the traffic, and larger than
            // the moves the compiler makes without a call to `memcpy`) is not moved.
            let decoded = decode_incoming(body);
            let result = match &decoded {
                Ok(Incoming::Report { view, targeted }) if ready => self
                    .inbound
                    .report(
                        &chunk,
                        &mut shared,
                        (view, frame, *targeted),
                        self.announced.behind(),
                    )
                    .map(|delivered| {
                        any_report = true;
                        local_bytes += delivered
                    }),
                Ok(Incoming::Request(request)) if ready => {
                    self.inbound
                        .request(&chunk, frame, request, self.announced.behind())
                }
                Ok(Incoming::Response(response)) if ready => {
                    self.inbound
                        .response(&chunk, frame, response, self.announced.behind())
                }
                _ => match decoded {
                    Ok(Incoming::Other(decoded)) => {
                        self.inbound.flush();
                        self.on_frame(ctx, *decoded, frame)
                    }
                    Ok(early) => Err(format!("{} frame before the handshake", early.kind())),
                    Err(e) => Err(e.to_string()),
                },
            };
            if let Err(reason) = result {
                self.close(ctx, &format!("protocol error: {reason}"), Ending::Error);
            }
        }
        self.link.received(frames, chunk.len() as u64);
        // Local subscribers got reports: let them run before the next chunk.
        let pause =
            self.inbound
                .chunk_done(chunk.len(), local_bytes, any_report, frames >= BATCH as u64);
        self.pause.set(pause);
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        self.close(ctx, "peer closed the connection", Ending::Normal);
    }
}

impl Handler<WriterDone> for Bridge {
    type Result = ();
    fn handle(&mut self, msg: WriterDone, ctx: &mut Context<Self>) {
        match msg.0 {
            Some(e) => self.close(ctx, &format!("write failed: {e}"), Ending::Error),
            None if self.link.is_duplicate() => {
                self.close(ctx, "duplicate link dropped", Ending::Normal)
            }
            None if self.state == State::Ready => self.close(ctx, "link closed", Ending::Error),
            None => self.close(ctx, "link closed", Ending::Normal),
        }
    }
}
