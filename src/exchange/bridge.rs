//! The bridge: one actor per connection, reading frames and giving them meaning.
//!
//! States: `Handshaking` (both sides send `Hello`; anything else is a protocol error; silence
//! past the handshake timeout closes the connection) → `Ready` (announcements update the
//! routing table and the registry; data frames are routed to local services or relayed over
//! another link) → `Closing` (everything learned through the link is withdrawn).

use std::cell::Cell;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, AsyncContext, Context, Handler, Message, StreamHandler};
use bytes::Bytes;
use smallvec::SmallVec;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::endpoint::{ConnectionEvent, ConnectionState, ExchangeShared, Slot};
use super::link::Peer;
use super::reader::FrameChunks;
use super::{Link, RouteRemoved};
use crate::binding::{Address, Binding, Location};
use crate::failure::{ErrorCode, Failure};
use crate::ids::{AgentId, ConversationId};
use crate::inbox::{Delivery, Inbox, Refused};
use crate::names::{
    clip_name, Audience, GroupName, ServiceName, Subject, SubjectPattern, MAX_NAME_LEN,
};
use crate::payload::{Payload, SharedContent};
use crate::registry::{JoinGroup, LeaveGroup, Register, Reroute, Status, Withdraw};
use crate::report::{PublisherNotice, Report, ReportData};
use crate::request::{refusal_failure, IncomingRequest, ReplyTo};
use crate::wire::{
    decode_incoming, split_frame, CodecError, ContentView, Frame, Hello, Incoming, ReportView,
    RequestView, ResponseView, ServiceInfo, Text, WireFailure, PROTOCOL_VERSION,
};

use super::link::send_outcome;

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
    agents: HashSet<AgentId>,
    closed: Option<oneshot::Sender<Closed>>,
    names: Names,
    routes: RouteCache,
    pending: Pending,
    /// Targets per link of the report being routed (kept to reuse its allocation).
    relay: Relay,
    /// Makes the reader yield before its next chunk (see `FrameChunks`).
    pause: Rc<Cell<bool>>,
    /// Groups of the services announced through this link, for
    /// [`Limits::groups_per_service`](super::Limits::groups_per_service).
    groups: std::collections::HashMap<AgentId, HashSet<GroupName>>,
    /// Requests from agents not known here received on this connection (see `CallRouting`).
    unknown_requesters: u64,
    /// The reader's frame size cap: small until the handshake is accepted.
    cap: Rc<Cell<usize>>,
    /// This connection's share of a server's connection limits (`None` on a client); shared
    /// with the writer task, so it is given back only when the socket is closed.
    slot: Option<Rc<std::cell::RefCell<Slot>>>,
    /// Subscriptions requested through this link and not withdrawn, for
    /// [`Limits::subscriptions_per_link`](super::Limits::subscriptions_per_link).
    subscriptions: Subscriptions,
    /// Whether received report content is sliced from its chunk rather than copied (set from
    /// the last chunk that had reports: see `handle`).
    share_chunks: bool,
}

/// Validated names seen on this connection, so that the subjects, patterns and type names
/// repeated in every report are checked and allocated once, not per frame. The last name of
/// each kind is checked first: a stream of reports usually repeats it. A name is kept once
/// (the map's key is the validated name itself), only after the frame carrying it was found
/// to be for a known agent, and the whole cache is bounded in bytes
/// ([`Limits::interned_bytes`](super::Limits::interned_bytes)): over it, it starts over.
struct Names {
    subjects: Interned<Subject>,
    patterns: Interned<SubjectPattern>,
    types: Interned<Arc<str>>,
    /// Bytes of names kept, all kinds together, and the cap.
    bytes: usize,
    max_bytes: usize,
}

impl Names {
    fn new(max_bytes: usize) -> Self {
        Names {
            subjects: Interned::default(),
            patterns: Interned::default(),
            types: Interned::default(),
            bytes: 0,
            max_bytes,
        }
    }
}

/// What one cached name costs besides its text (its slot in the map, its allocation): counted
/// against the limit with the text, so that many short names are bounded as well as long ones.
const ENTRY_COST: usize = 64;

/// A name as a key that can be looked up by its received bytes.
#[derive(Clone, PartialEq, Eq)]
struct Key<T>(T);

impl<T: AsRef<str>> std::hash::Hash for Key<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.as_ref().as_bytes().hash(state)
    }
}

impl<T: AsRef<str>> std::borrow::Borrow<[u8]> for Key<T> {
    fn borrow(&self) -> &[u8] {
        self.0.as_ref().as_bytes()
    }
}

struct Interned<T> {
    map: HashSet<Key<T>>,
    last: Option<T>,
}

impl<T> Default for Interned<T> {
    fn default() -> Self {
        Interned {
            map: HashSet::new(),
            last: None,
        }
    }
}

impl<T: Clone + Eq + AsRef<str>> Interned<T> {
    /// The name for `text`: checked (length, UTF-8, then `make`) the first time it is seen
    /// only; `bytes` counts what the connection's caches hold, up to `max`.
    fn get(
        &mut self,
        text: Text<'_>,
        bytes: &mut usize,
        make: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<&T, String> {
        let key = text.0;
        let hit = self
            .last
            .as_ref()
            .is_some_and(|last| last.as_ref().as_bytes() == key);
        if !hit {
            let value = match self.map.get(key) {
                Some(Key(v)) => v.clone(),
                None => {
                    if key.len() > MAX_NAME_LEN {
                        return Err(format!(
                            "a name of {} bytes (the maximum is {MAX_NAME_LEN})",
                            key.len()
                        ));
                    }
                    let s = text.to_str().map_err(|e| text.utf8_error(e))?;
                    let v = make(s)?;
                    *bytes += key.len() + ENTRY_COST;
                    self.map.insert(Key(v.clone()));
                    v
                }
            };
            self.last = Some(value);
        }
        Ok(self.last.as_ref().expect("set above"))
    }
}

impl Names {
    /// Makes room for one more name: when the caches could go over their limit, all of them
    /// start over.
    fn room(&mut self) {
        if self.bytes + MAX_NAME_LEN + ENTRY_COST > self.max_bytes {
            tracing::info!(
                max = self.max_bytes,
                "names cached for this connection at their limit (Limits::interned_bytes); starting over"
            );
            self.subjects.map.clear();
            self.patterns.map.clear();
            self.types.map.clear();
            self.bytes = 0;
        }
    }

    fn subject(&mut self, s: Text<'_>) -> Result<&Subject, String> {
        self.room();
        self.subjects.get(s, &mut self.bytes, |s| {
            Subject::new(s).map_err(|e| e.to_string())
        })
    }
    fn pattern(&mut self, s: Text<'_>) -> Result<&SubjectPattern, String> {
        self.room();
        self.patterns.get(s, &mut self.bytes, |s| {
            SubjectPattern::new(s).map_err(|e| e.to_string())
        })
    }
    fn type_name(&mut self, s: Text<'_>) -> Result<&Arc<str>, String> {
        self.room();
        self.types.get(s, &mut self.bytes, |s| Ok(Arc::from(s)))
    }
}

/// The subscriptions requested through one link and not withdrawn, by subscriber, counted
/// against [`Limits::subscriptions_per_link`](super::Limits::subscriptions_per_link).
#[derive(Default)]
struct Subscriptions {
    /// Patterns by subscriber, then by publisher.
    by_subscriber: std::collections::HashMap<AgentId, PatternsByPublisher>,
    count: usize,
}

type PatternsByPublisher = std::collections::HashMap<AgentId, HashSet<SubjectPattern>>;

impl Subscriptions {
    fn add(
        &mut self,
        subscriber: AgentId,
        (publisher, pattern): (AgentId, SubjectPattern),
        limits: &super::Limits,
        net: &super::Net,
    ) -> Result<(), String> {
        let mine = self
            .by_subscriber
            .get(&subscriber)
            .and_then(|p| p.get(&publisher));
        if mine.is_some_and(|patterns| patterns.contains(&pattern)) {
            return Ok(());
        }
        let per_publisher = limits.patterns_per_publisher;
        if mine.is_some_and(|patterns| patterns.len() >= per_publisher) {
            return Err(format!(
                "subscriber {subscriber} requested more than {per_publisher} patterns from one publisher (the limit)"
            ));
        }
        let limit = limits.subscriptions_per_link;
        if self.count >= limit {
            // Subscriptions to publishers since gone are never withdrawn by their subscribers:
            // they do not count.
            for publishers in self.by_subscriber.values_mut() {
                publishers.retain(|publisher, _| net.lookup(*publisher).is_some());
            }
            self.by_subscriber
                .retain(|_, publishers| !publishers.is_empty());
            self.count = self
                .by_subscriber
                .values()
                .flat_map(|p| p.values())
                .map(HashSet::len)
                .sum();
            if self.count >= limit {
                return Err(format!(
                    "the peer requested more than {limit} subscriptions (the limit per link)"
                ));
            }
        }
        let patterns = self
            .by_subscriber
            .entry(subscriber)
            .or_default()
            .entry(publisher)
            .or_default();
        if patterns.insert(pattern) {
            self.count += 1;
        }
        Ok(())
    }

    fn remove(&mut self, subscriber: AgentId, (publisher, pattern): &(AgentId, SubjectPattern)) {
        let Some(publishers) = self.by_subscriber.get_mut(&subscriber) else {
            return;
        };
        if let Some(patterns) = publishers.get_mut(publisher) {
            if patterns.remove(pattern) {
                self.count -= 1;
            }
            if patterns.is_empty() {
                publishers.remove(publisher);
            }
        }
        if publishers.is_empty() {
            self.by_subscriber.remove(&subscriber);
        }
    }

    /// The subscriber is gone: so are its subscriptions.
    fn forget(&mut self, subscriber: AgentId) {
        if let Some(publishers) = self.by_subscriber.remove(&subscriber) {
            self.count -= publishers.values().map(HashSet::len).sum::<usize>();
        }
    }
}

/// How long a peer has been silent, counted in time this process ran: a peer is dead when *it*
/// has said nothing for [`ExchangeConfig::dead_after`](super::ExchangeConfig::dead_after), not
/// when this process was stopped (SIGSTOP, a debugger) or stalled by its host for that long.
/// Each heartbeat tick adds the time since the previous tick, or since the peer was last
/// heard if that is later, but never more than one heartbeat interval: a tick later than that
/// means this process did not run meanwhile, and the burst of overdue ticks that follows a
/// stall adds next to nothing. A stall thus adds at most one interval to the count, and the
/// frames that waited in the socket meanwhile are read, and reset it, before the peer is
/// blamed.
struct Silence {
    /// The silence counted since the peer was last heard.
    counted: Duration,
    /// Where the next tick counts from.
    from: Instant,
}

impl Silence {
    fn new(now: Instant) -> Self {
        Silence {
            counted: Duration::ZERO,
            from: now,
        }
    }

    /// Something was read from the peer.
    fn heard(&mut self, now: Instant) {
        self.counted = Duration::ZERO;
        self.from = now;
    }

    /// A heartbeat tick at `now`, due every `interval`: returns the silence counted so far.
    fn tick(&mut self, now: Instant, interval: Duration) -> Duration {
        self.counted += now.saturating_duration_since(self.from).min(interval);
        self.from = now;
        self.counted
    }
}

/// How long after a tick found the peer silent its verdict is given (see `Bridge::tick`).
const VERDICT_AFTER: Duration = Duration::from_millis(1);

/// How a connection ended, for its connector.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Closed {
    /// Set when the link was dropped as a duplicate of another link to this process.
    pub(crate) duplicate_of: Option<crate::ids::ProcessId>,
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
        stream: TcpStream,
        shared: Arc<ExchangeShared>,
        slot: Option<Slot>,
    ) -> oneshot::Receiver<Closed> {
        let initiated = slot.is_none();
        let (closed_tx, closed_rx) = oneshot::channel();
        let (Ok(peer_addr), Ok(local_addr)) = (stream.peer_addr(), stream.local_addr()) else {
            tracing::warn!("connection lost before it could be served");
            return closed_rx;
        };
        let _ = stream.set_nodelay(true);
        // A second handle on the socket for the writer's progress probe (see `write_loop`).
        let (stream, probe) = match stream.into_std().and_then(|s| Ok((s.try_clone()?, s))) {
            Ok((probe, std)) => match TcpStream::from_std(std) {
                Ok(stream) => (stream, Some(probe)),
                Err(e) => {
                    tracing::warn!(peer = %peer_addr, "connection lost before it could be served: {e}");
                    return closed_rx;
                }
            },
            Err(e) => {
                tracing::warn!(peer = %peer_addr, "connection lost before it could be served: {e}");
                return closed_rx;
            }
        };
        let (reader, writer) = stream.into_split();
        let config = &shared.config;
        let link = Link::new(
            shared.node.net().clone(),
            shared.group.clone(),
            initiated,
            (config.outbound_limit, config.max_frame, config.dead_after),
            shared.counters.clone(),
        );
        link.set_router(shared.node.router_handle());
        let first_cap = config.max_frame.min(config.limits.handshake_frame);
        let interned_bytes = config.limits.interned_bytes;
        Bridge::create(move |ctx| {
            let chunks = FrameChunks::new(reader, first_cap);
            let pause = chunks.pause_flag();
            let cap = chunks.cap();
            ctx.add_stream(chunks);
            let writer_link = link.clone();
            let addr = ctx.address();
            let slot = slot.map(|slot| Rc::new(std::cell::RefCell::new(slot)));
            let writer_slot = slot.clone();
            actix::spawn(async move {
                let result = writer_link.write_loop(writer, probe).await;
                addr.do_send(WriterDone(result.err()));
                drop(writer_slot);
            });
            Bridge {
                shared,
                link,
                peer_addr,
                local_addr,
                state: State::Handshaking,
                silence: Silence::new(Instant::now()),
                agents: HashSet::new(),
                closed: Some(closed_tx),
                names: Names::new(interned_bytes),
                routes: RouteCache::default(),
                pending: Pending::default(),
                relay: Relay::default(),
                pause,
                groups: std::collections::HashMap::new(),
                unknown_requesters: 0,
                cap,
                slot,
                subscriptions: Subscriptions::default(),
                share_chunks: false,
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
    fn close(&mut self, ctx: &mut Context<Self>, reason: &str, error: bool) {
        if self.state == State::Closing {
            return;
        }
        if error {
            tracing::error!(peer = %self.peer_addr, "closing connection: {reason}");
        } else {
            tracing::info!(peer = %self.peer_addr, "connection closed: {reason}");
        }
        let was_ready = self.state == State::Ready;
        self.state = State::Closing;
        self.link.close();
        self.shared.forget_link(&self.link);
        if was_ready {
            let agents: Vec<AgentId> = self.agents.iter().copied().collect();
            for agent in agents {
                self.withdraw(agent, false);
            }
            self.shared.node.net().fail_pending_via(&self.link);
            self.shared.node.router().link_down(&self.link);
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

    fn refuse(&mut self, ctx: &mut Context<Self>, reason: String) {
        let _ = self.link.send_frame(&Frame::Refused {
            reason: reason.clone(),
        });
        self.close(ctx, &format!("handshake refused: {reason}"), true);
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
        let peer = Peer {
            process: hello.process,
            node: hello.node.clone(),
            hub: hello.hub,
        };
        self.link.set_peer(peer);
        if !self.shared.node.router().link_up(&self.link) {
            // A duplicate of another link to the same process (already marked and closed): it
            // never became ready, so nothing is announced or withdrawn for it.
            return self.close(ctx, "duplicate link dropped", false);
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

    fn service_available(&mut self, info: ServiceInfo) -> Result<(), String> {
        let name = ServiceName::new(&info.name).map_err(|e| e.to_string())?;
        let audience = Audience::parse(&info.audience).map_err(|e| e.to_string())?;
        let groups = info
            .groups
            .iter()
            .map(GroupName::new)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let limit = self.shared.config.limits.services_per_link;
        if self.agents.len() >= limit && !self.agents.contains(&info.agent) {
            return Err(format!(
                "the peer announced more than {limit} services (the limit per link)"
            ));
        }
        let group_limit = self.shared.config.limits.groups_per_service;
        if groups.len() > group_limit {
            return Err(format!(
                "service {} is in more than {group_limit} groups (the limit per service)",
                info.agent
            ));
        }
        if !groups.is_empty() {
            self.groups
                .insert(info.agent, groups.iter().cloned().collect());
        }
        let binding = Binding::new(
            name,
            info.agent,
            audience,
            info.process,
            Location::Remote,
            Address::Remote(self.link.clone()),
        );
        self.agents.insert(info.agent);
        if !self.shared.node.net().insert(binding.clone()) {
            tracing::debug!(agent = %info.agent, "service already known through another route; kept as an alternate");
            return Ok(());
        }
        self.shared
            .node
            .router()
            .service_available(&binding, &groups);
        self.shared
            .node
            .registry()
            .do_send(Register { binding, groups });
        Ok(())
    }

    /// The binding of `agent` if it is currently reached through this link.
    fn via_here(&self, agent: AgentId) -> Option<Binding> {
        let binding = self.shared.node.net().lookup(agent)?;
        binding
            .link()
            .filter(|l| l.same(&self.link))
            .map(|_| binding.clone())
    }

    /// This link no longer leads to `agent`: withdraw it, or switch it to another route.
    fn withdraw(&mut self, agent: AgentId, service_gone: bool) {
        if !self.agents.remove(&agent) {
            return;
        }
        self.subscriptions.forget(agent);
        self.groups.remove(&agent);
        let net = self.shared.node.net();
        match net.remove(agent, Some(&self.link)) {
            RouteRemoved::Gone(binding) => {
                self.shared.node.router().service_withdrawn(agent);
                self.shared.node.registry().do_send(Withdraw(agent));
                net.fail_pending_for(&binding);
            }
            RouteRemoved::Rerouted(current) => {
                tracing::debug!(%agent, "route lost; another link takes over");
                self.shared.node.router().service_available(&current, &[]);
                self.shared
                    .node
                    .registry()
                    .do_send(Reroute(current.clone()));
                if service_gone {
                    net.fail_pending_for(&current);
                }
            }
            RouteRemoved::Unchanged => {}
        }
    }

    fn group_change(&mut self, agent: AgentId, group: &str, join: bool) -> Result<(), String> {
        let group = GroupName::new(group).map_err(|e| e.to_string())?;
        if let Some(binding) = self.via_here(agent) {
            if binding.name().is_anonymous() {
                return Err(format!("a group change for the anonymous service {agent}"));
            }
            if join {
                let limit = self.shared.config.limits.groups_per_service;
                let groups = self.groups.entry(agent).or_default();
                if groups.len() >= limit && !groups.contains(&group) {
                    return Err(format!(
                        "service {agent} joined more than {limit} groups (the limit per service)"
                    ));
                }
                groups.insert(group.clone());
            } else if let Some(groups) = self.groups.get_mut(&agent) {
                groups.remove(&group);
            }
            self.shared.node.router().group_changed(agent, &group, join);
            let registry = self.shared.node.registry();
            if join {
                registry.do_send(JoinGroup(agent, group));
            } else {
                registry.do_send(LeaveGroup(agent, group));
            }
        }
        Ok(())
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
            (State::Handshaking, Frame::Refused { reason }) => {
                self.close(
                    ctx,
                    &format!("refused by peer: {:?}", clip_name(&reason)),
                    true,
                );
                Ok(())
            }
            (State::Handshaking, other) => {
                Err(format!("{} frame before the handshake", other.kind()))
            }
            (State::Ready, Frame::Hello(_)) => Err("second Hello".to_owned()),
            (State::Ready, Frame::Refused { reason }) => {
                self.close(
                    ctx,
                    &format!("refused by peer: {:?}", clip_name(&reason)),
                    true,
                );
                Ok(())
            }
            (State::Ready, Frame::Goodbye { reason }) => {
                self.close(
                    ctx,
                    &format!("peer said goodbye: {:?}", clip_name(&reason)),
                    false,
                );
                Ok(())
            }
            (State::Ready, Frame::Heartbeat) => Ok(()),
            (State::Ready, Frame::ServiceAvailable(info)) => self.service_available(info),
            (State::Ready, Frame::ServiceWithdrawn { agent }) => {
                self.withdraw(agent, true);
                Ok(())
            }
            (State::Ready, Frame::GroupJoined { agent, group }) => {
                self.group_change(agent, &group, true)
            }
            (State::Ready, Frame::GroupLeft { agent, group }) => {
                self.group_change(agent, &group, false)
            }
            (
                State::Ready,
                Frame::SubscriptionRequested {
                    publisher,
                    subscriber,
                    pattern,
                },
            ) => {
                let key = (
                    publisher,
                    SubjectPattern::new(&pattern).map_err(|e| e.to_string())?,
                );
                self.subscriptions.add(
                    subscriber,
                    key,
                    &self.shared.config.limits,
                    self.shared.node.net(),
                )?;
                let frame = Frame::SubscriptionRequested {
                    publisher,
                    subscriber,
                    pattern,
                };
                route(self.shared.node.net(), &mut self.names, frame, raw)
            }
            (
                State::Ready,
                Frame::SubscriptionWithdrawn {
                    publisher,
                    subscriber,
                    pattern,
                },
            ) => {
                if let Ok(p) = SubjectPattern::new(&pattern) {
                    self.subscriptions.remove(subscriber, &(publisher, p));
                }
                let frame = Frame::SubscriptionWithdrawn {
                    publisher,
                    subscriber,
                    pattern,
                };
                route(self.shared.node.net(), &mut self.names, frame, raw)
            }
            (State::Ready, data) => route(self.shared.node.net(), &mut self.names, data, raw),
        }
    }

    /// What routing a request or response received in `chunk` needs.
    fn calls<'a>(&'a mut self, chunk: &'a Bytes, frame: &'a [u8]) -> CallRouting<'a> {
        CallRouting {
            net: self.shared.node.net(),
            names: &mut self.names,
            routes: &mut self.routes,
            chunk,
            frame,
            from: &self.link,
            unknown_requesters: &mut self.unknown_requesters,
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        // Routes are cached while used; an idle bridge must not keep closed links alive.
        self.routes = RouteCache::default();
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
                let silent = bridge.silence.counted;
                if bridge.state == State::Ready && silent > dead_after {
                    let reason = format!("peer silent for {:.1} s", silent.as_secs_f64());
                    bridge.close(ctx, &reason, true);
                }
            });
        }
        self.link.heartbeat();
    }
}

impl Actor for Bridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let _ = self.link.send_frame(&Frame::Hello(self.hello()));
        let config = &self.shared.config;
        let timeout = config.handshake_timeout;
        ctx.run_later(timeout, move |bridge, ctx| {
            if bridge.state == State::Handshaking {
                bridge.close(
                    ctx,
                    &format!("no handshake within {:.1} s", timeout.as_secs_f64()),
                    true,
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
            let _ = tx.send(Closed { duplicate_of });
        }
    }
}

impl StreamHandler<Result<Bytes, CodecError>> for Bridge {
    /// One chunk of complete frames (see [`FrameChunks`]).
    fn handle(&mut self, chunk: Result<Bytes, CodecError>, ctx: &mut Context<Self>) {
        self.silence.heard(Instant::now());
        let chunk = match chunk {
            Ok(chunk) => chunk,
            // The socket failed (a reset when the peer died): a lost connection, not bad input.
            Err(CodecError::Io(e)) if e.kind() != std::io::ErrorKind::InvalidData => {
                return self.close(ctx, &format!("connection lost: {e}"), false);
            }
            Err(e) => return self.close(ctx, &format!("protocol error: {e}"), true),
        };
        let mut rest = &chunk[..];
        let mut local_bytes = 0;
        let mut any_report = false;
        let mut shared = None;
        while let Some((frame, body, next)) = split_frame(rest) {
            rest = next;
            let result = match (self.state, decode_incoming(body)) {
                (State::Closing, _) => break,
                (State::Ready, Ok(Incoming::Report { view, targeted })) => ReportRouting {
                    net: self.shared.node.net(),
                    names: &mut self.names,
                    routes: &mut self.routes,
                    pending: &mut self.pending,
                    relay: &mut self.relay,
                    chunk: &chunk,
                    share: self.share_chunks,
                    shared: &mut shared,
                }
                .route(&view, frame, targeted)
                .map(|delivered| {
                    any_report = true;
                    local_bytes += delivered
                }),
                (State::Ready, Ok(Incoming::Request(request))) => {
                    self.pending.flush();
                    self.calls(&chunk, frame).request(&request)
                }
                (State::Ready, Ok(Incoming::Response(response))) => {
                    self.pending.flush();
                    self.calls(&chunk, frame).response(&response)
                }
                (_, Ok(Incoming::Other(decoded))) => {
                    self.pending.flush();
                    self.on_frame(ctx, decoded, frame)
                }
                (_, Ok(early)) => Err(format!("{} frame before the handshake", early.kind())),
                (_, Err(e)) => Err(e.to_string()),
            };
            if let Err(reason) = result {
                self.close(ctx, &format!("protocol error: {reason}"), true);
            }
        }
        self.pending.flush();
        // Local subscribers got reports: let them run before the next chunk.
        self.pause.set(local_bytes > 0);
        // A received report's content is a slice of its chunk when local deliveries use a good
        // share of what this connection reads (a client), a copy otherwise (a server relaying
        // mostly for others), so that a queued report never pins a read buffer it barely uses.
        // A chunk without reports (an answer to a call, say) leaves the choice as it was.
        if any_report {
            self.share_chunks = local_bytes * 4 >= chunk.len();
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        self.close(ctx, "peer closed the connection", false);
    }
}

impl Handler<WriterDone> for Bridge {
    type Result = ();
    fn handle(&mut self, msg: WriterDone, ctx: &mut Context<Self>) {
        match msg.0 {
            Some(e) => self.close(ctx, &format!("write failed: {e}"), true),
            None if self.link.is_duplicate() => self.close(ctx, "duplicate link dropped", false),
            None => self.close(
                ctx,
                "link closed",
                self.state == State::Ready && !self.link.is_duplicate(),
            ),
        }
    }
}

/// Gives a data frame its meaning: delivers it to local services, or relays it over the
/// link its destination is reached through. Frames for agents this node does not know are
/// dropped (the agent was just withdrawn); frames with invalid contents are protocol errors.
fn route(net: &super::Net, names: &mut Names, frame: Frame, raw: &[u8]) -> Result<(), String> {
    match frame {
        Frame::SubscriptionRequested {
            publisher,
            subscriber,
            pattern,
        } => {
            let pattern = names.pattern(pattern.as_str().into())?.clone();
            if let (Some(publisher), Some(subscriber)) =
                (net.lookup(publisher), net.lookup(subscriber))
            {
                publisher.send(Delivery::SubscriptionRequested {
                    subscriber,
                    pattern,
                });
            }
            Ok(())
        }
        Frame::SubscriptionWithdrawn {
            publisher,
            subscriber,
            pattern,
        } => {
            let pattern = names.pattern(pattern.as_str().into())?.clone();
            if let Some(publisher) = net.lookup(publisher) {
                publisher.send(Delivery::SubscriptionWithdrawn {
                    subscriber,
                    pattern,
                });
            }
            Ok(())
        }
        Frame::PublisherNotice {
            publisher,
            subscriber,
            available,
        } => {
            if let (Some(publisher), Some(subscriber)) =
                (net.lookup(publisher), net.lookup(subscriber))
            {
                let status = if available {
                    Status::Available
                } else {
                    Status::Withdrawn
                };
                subscriber.send(Delivery::Publisher(PublisherNotice {
                    publisher,
                    subscriber: subscriber.clone(),
                    status,
                }));
            }
            Ok(())
        }
        Frame::Failure {
            conversation,
            requester,
            failure,
        } => {
            match net.lookup(requester) {
                Some(r) if r.link().is_none() => {
                    let failure = failure
                        .into_failure()
                        .with_conversation(ConversationId(conversation));
                    net.complete(ConversationId(conversation), Err(Box::new(failure)))
                }
                Some(r) => r.link().map_or((), |l| {
                    l.relay_answer(raw, "Failure", requester, conversation, |max| {
                        failure.shortened(max)
                    })
                }),
                None => {}
            }
            Ok(())
        }
        other => Err(format!("unexpected {} frame", other.kind())),
    }
}

/// What routing a received report needs: the node's routes (and the bridge's cache of
/// them), the bridge's name cache, and the chunk the report was read in.
struct ReportRouting<'a> {
    net: &'a super::Net,
    names: &'a mut Names,
    routes: &'a mut RouteCache,
    pending: &'a mut Pending,
    relay: &'a mut Relay,
    chunk: &'a Bytes,
    /// Whether local deliveries slice their content from `chunk` rather than copy it.
    share: bool,
    /// With `share`: the chunk as the buffer the last report's content was a part of.
    shared: &'a mut Option<SharedContent>,
}

impl ReportRouting<'_> {
    /// Routes one received report; returns the size of its content if it was delivered to
    /// local services (0 otherwise).
    ///
    /// Local subscribers get a delivery sharing the content. Subscribers behind other links
    /// get it relayed: when every target is behind one link, the frame is passed on byte for
    /// byte (the usual case for an exchange server); otherwise each link gets the received
    /// head with its own targets. Names are validated either way, so a relay never passes on
    /// what its peers would refuse.
    fn route(
        &mut self,
        view: &ReportView<'_>,
        frame: &[u8],
        targeted: bool,
    ) -> Result<usize, String> {
        // Names are interned only for a report from a known publisher: a stream of made-up
        // names from an unknown one costs no memory.
        if self.routes.lookup(self.net, view.publisher).is_none() {
            return Ok(0);
        }
        self.names.subject(view.subject)?;
        self.names.type_name(view.content.type_name)?;
        // Targets per link, as indexes into `view.targets`.
        let mut remote = std::mem::take(&mut self.relay.0);
        // Local targets, as indexes into `view.targets`, with their patterns.
        let mut local: SmallVec<[(usize, Option<SubjectPattern>); 1]> = SmallVec::new();
        for (i, target) in view.targets.iter().enumerate() {
            let pattern = match target.pattern {
                Some(p) => Some(self.names.pattern(p)?),
                None => None,
            };
            let Some(subscriber) = self.routes.lookup(self.net, target.subscriber) else {
                continue;
            };
            match subscriber.link() {
                None => local.push((i, pattern.cloned())),
                Some(link) => match remote.iter_mut().find(|(l, _)| l.same(link)) {
                    Some((_, indexes)) => indexes.push(i),
                    None => remote.push((link.clone(), smallvec::smallvec![i])),
                },
            }
        }
        let delivered = if local.is_empty() {
            0
        } else {
            self.deliver_locally(view, targeted, local)?
        };
        match &remote[..] {
            // One link has every target: the frame goes on as received.
            [(link, indexes)] if indexes.len() == view.targets.len() => {
                let _ = link.send_raw(frame, true, "Report");
            }
            _ => {
                for (link, indexes) in remote.iter() {
                    let _ =
                        link.send_report_head(view.head, indexes.iter().map(|&i| view.targets[i]));
                }
            }
        }
        // The links are dropped now rather than held until the next report.
        remote.clear();
        self.relay.0 = remote;
        Ok(delivered)
    }

    /// Delivers a received report to its local targets, all sharing one copy of its parts (the
    /// last delivery takes them over rather than cloning them), and returns the size of the
    /// content. With `share`, the content is a slice of the chunk rather than a copy.
    fn deliver_locally(
        &mut self,
        view: &ReportView<'_>,
        targeted: bool,
        mut local: SmallVec<[(usize, Option<SubjectPattern>); 1]>,
    ) -> Result<usize, String> {
        let Some(publisher) = self.routes.lookup(self.net, view.publisher).cloned() else {
            return Ok(0);
        };
        let (format, type_name) = (
            view.content.format,
            self.names.type_name(view.content.type_name)?,
        );
        let content = if self.share {
            // One shared buffer for the chunk's reports of one type: no allocation per report.
            let shared = match self.shared.take() {
                Some(shared) if shared.is_for(format, type_name) => shared,
                _ => SharedContent::new(format, self.chunk.clone(), type_name.clone()),
            };
            self.shared.insert(shared).part(view.content.bytes)
        } else {
            Payload::encoded(
                format,
                Bytes::copy_from_slice(view.content.bytes),
                type_name.clone(),
            )
        };
        let subject = self.names.subject(view.subject)?.clone();
        let data = ReportData {
            publisher,
            subject,
            content,
            targeted,
        };
        let last = local.pop();
        for (i, pattern) in local {
            if let Some(subscriber) = self.routes.lookup(self.net, view.targets[i].subscriber) {
                self.pending.push(
                    subscriber,
                    Report {
                        data: data.clone(),
                        pattern,
                    },
                );
            }
        }
        if let Some((i, pattern)) = last {
            if let Some(subscriber) = self.routes.lookup(self.net, view.targets[i].subscriber) {
                self.pending.push(subscriber, Report { data, pattern });
            }
        }
        Ok(view.content.bytes.len().max(1))
    }
}

/// The subscribers of one report per link, as indexes into its targets.
#[derive(Default)]
struct Relay(Vec<(Link, SmallVec<[usize; 4]>)>);

/// Reports for one local service gathered while a chunk is handled, pushed to its inbox
/// under one lock. They are pushed before any frame other than a report is handled, and at
/// the end of the chunk, so every service still sees what one peer sent in the order sent.
/// Only reports: a refused one is dropped (as `Inbox::push_all` does), which for a request
/// would lose its answer.
#[derive(Default)]
struct Pending {
    inbox: Option<Inbox>,
    reports: Vec<Report>,
}

impl Pending {
    fn push(&mut self, to: &Binding, report: Report) {
        let Some(inbox) = to.local_inbox() else {
            return to.send(Delivery::Report(report));
        };
        if !self.inbox.as_ref().is_some_and(|i| i.same(inbox)) {
            self.flush();
            self.inbox = Some(inbox.clone());
        }
        self.reports.push(report);
    }

    fn flush(&mut self) {
        if let Some(inbox) = self.inbox.take() {
            inbox.push_all(self.reports.drain(..).map(Delivery::Report));
        }
    }
}

/// Routes looked up while handling frames, kept while the node's routing table is unchanged
/// (its generation), so that a stream of reports between the same agents costs no lock and
/// no hash per frame.
#[derive(Default)]
struct RouteCache {
    generation: u64,
    entries: Vec<(AgentId, Option<Binding>)>,
}

/// Most agents a bridge keeps routes for.
const ROUTE_CACHE: usize = 16;

impl RouteCache {
    fn lookup(&mut self, net: &super::Net, agent: AgentId) -> Option<&Binding> {
        let generation = net.generation();
        if generation != self.generation {
            self.entries.clear();
            self.generation = generation;
        }
        let at = match self.entries.iter().position(|(a, _)| *a == agent) {
            Some(at) => at,
            None => {
                if self.entries.len() >= ROUTE_CACHE {
                    self.entries.remove(0);
                }
                self.entries.push((agent, net.lookup(agent)));
                self.entries.len() - 1
            }
        };
        self.entries[at].1.as_ref()
    }
}

/// What routing a received request or response needs: the node's routes and this
/// connection's names, and the frame as received, within the chunk it came in.
struct CallRouting<'a> {
    net: &'a super::Net,
    names: &'a mut Names,
    routes: &'a mut RouteCache,
    chunk: &'a Bytes,
    /// The whole frame, header included, for passing it on unchanged.
    frame: &'a [u8],
    /// The link it came in on.
    from: &'a Link,
    /// Requests from agents not known here, so far on this connection (for the log).
    unknown_requesters: &'a mut u64,
}

/// Received request arguments and responses this large or larger are slices of the read
/// buffer; smaller ones are copied. A slice keeps the whole buffer (up to `READ_CHUNK`, 256 KiB,
/// or the frame's own when larger) alive while the call waits in an inbox, so only content
/// that is a good part of such a buffer may hold it; for small content a copy costs no more
/// (measured: the same round trips per second either way with 100-byte bodies).
const SLICE_MIN: usize = 64 * 1024;

/// A payload received in `chunk` for a local service: a slice of the chunk when large (see
/// [`SLICE_MIN`]), a copy otherwise.
fn received_payload(
    names: &mut Names,
    chunk: &Bytes,
    content: ContentView<'_>,
) -> Result<Payload, String> {
    let type_name = names.type_name(content.type_name)?.clone();
    let bytes = if content.bytes.len() >= SLICE_MIN {
        chunk.slice_ref(content.bytes)
    } else {
        Bytes::copy_from_slice(content.bytes)
    };
    Ok(Payload::encoded(content.format, bytes, type_name))
}

impl CallRouting<'_> {
    /// Serves a received request locally, or relays it as received over the link to its
    /// target. Its names are checked either way, so a relay never passes on what its peers
    /// would refuse.
    fn request(self, request: &RequestView<'_>) -> Result<(), String> {
        let &RequestView {
            conversation,
            requester,
            target,
            method,
            args,
            reply_format,
        } = request;
        let method = method
            .to_str()
            .map_err(|e| format!("method name: {}", method.utf8_error(e)))?;
        let Some(requester) = self.routes.lookup(self.net, requester).cloned() else {
            // The hop before should not have sent it (see `Link::refuse_requester`), or the
            // requester was withdrawn meanwhile: it is answered back where it came from (by
            // requester agent, as any answer), never dropped unanswered.
            // Logged at powers of two: a peer sending many cannot flood the log.
            *self.unknown_requesters += 1;
            if self.unknown_requesters.is_power_of_two() {
                let (method, count) = (clip_name(method), *self.unknown_requesters);
                tracing::warn!(%requester, method, count, "request from an unknown agent (not announced here); refused");
            }
            let failure = Failure::netsvc(
                ErrorCode::CLIENT_SERVICE_ADDRESS_INVALID,
                format!("requester {requester} is not known on the way to the target, so it could not be answered"),
            );
            let failure = WireFailure::from_failure(failure);
            let _ = self.from.send_frame(&Frame::Failure {
                conversation,
                requester,
                failure,
            });
            return Ok(());
        };
        // No service exports a method with a longer name (they are Rust identifiers).
        if method.len() > MAX_NAME_LEN {
            let failure = Failure::netsvc(
                ErrorCode::SERVER_METHOD_UNAVAILABLE,
                format!(
                    "no method has a name of {} bytes (the maximum is {MAX_NAME_LEN})",
                    method.len()
                ),
            );
            send_outcome(&requester, conversation, reply_format, Err(failure));
            return Ok(());
        }
        self.names.type_name(args.type_name)?;
        let Some(target) = self.routes.lookup(self.net, target).cloned() else {
            let failure = Failure::netsvc(
                ErrorCode::CLIENT_SERVICE_UNAVAILABLE,
                format!("service {target} is not available"),
            );
            send_outcome(&requester, conversation, reply_format, Err(failure));
            return Ok(());
        };
        // Relayed: the frame goes on as received (its answer is routed back by requester agent),
        // if the requester can be seen beyond.
        if let Some(link) = target.link() {
            if let Err(failure) = link.refuse_requester(&requester, &target) {
                send_outcome(&requester, conversation, reply_format, Err(failure));
                return Ok(());
            }
            link.announce_first(requester.agent());
            match link.send_raw(self.frame, false, "Request") {
                Ok(()) => return Ok(()),
                // Only a frame over the outgoing link's size cap is refused as "full" (a control
                // frame that does not fit the buffer closes the link instead).
                Err(Refused::Full) => {
                    let failure = Failure::netsvc(
                        ErrorCode::SERVER_RESOURCE_UNAVAILABLE,
                        format!(
                            "request too large to relay to {target}: over the link's frame size limit of {} bytes",
                            link.max_frame()
                        ),
                    );
                    send_outcome(&requester, conversation, reply_format, Err(failure));
                    return Ok(());
                }
                // The link has just closed: delivered below as any other, by the target's
                // current route if it has another.
                Err(Refused::Closed) => {}
            }
        }
        let incoming = IncomingRequest {
            conversation: ConversationId(conversation),
            method: method.to_owned().into(),
            args: received_payload(self.names, self.chunk, args)?,
            sender: requester.clone(),
            reply: ReplyTo::Remote {
                requester: requester.clone(),
                conversation,
                format: reply_format,
            },
            reply_format,
        };
        if let Err(refused) = target.push(Delivery::Request(incoming)) {
            send_outcome(
                &requester,
                conversation,
                reply_format,
                Err(refusal_failure(&target, refused)),
            );
        }
        Ok(())
    }

    /// Completes a local requester's call with a received response, or relays the response
    /// as received towards its requester.
    fn response(self, response: &ResponseView<'_>) -> Result<(), String> {
        match self
            .routes
            .lookup(self.net, response.requester)
            .map(Binding::link)
        {
            Some(None) => {
                let payload = received_payload(self.names, self.chunk, response.content)?;
                self.net
                    .complete(ConversationId(response.conversation), Ok(payload));
            }
            Some(Some(link)) => {
                self.names.type_name(response.content.type_name)?;
                let too_large = |max| {
                    WireFailure::from_failure(Failure::netsvc(
                        ErrorCode::SERVER_RESPONSE_ENCODING_ERROR,
                        format!("response too large to relay: over the link's frame size limit of {max} bytes"),
                    ))
                };
                link.relay_answer(
                    self.frame,
                    "Response",
                    response.requester,
                    response.conversation,
                    too_large,
                )
            }
            None => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_names_are_checked_and_bad_ones_refused_every_time() {
        let mut names = Names::new(1 << 20);
        assert_eq!(names.subject(Text(b"a.b")).unwrap().as_str(), "a.b");
        // A repeated name is the same interned value.
        let first = names.type_name(Text(b"T")).unwrap().clone();
        assert!(Arc::ptr_eq(&first, names.type_name(Text(b"T")).unwrap()));
        for _ in 0..2 {
            let err = names.subject(Text(&[b'a', 0xff])).unwrap_err();
            assert!(err.contains("invalid UTF-8"), "{err}");
            assert!(names.subject(Text(b"a\nb")).is_err());
            assert!(names.pattern(Text(b"")).is_err());
            assert!(names.type_name(Text(&[0xc3])).is_err());
        }
        assert_eq!(names.pattern(Text(b"a.*")).unwrap().as_str(), "a.*");
        assert_eq!(names.subject(Text(b"a.b")).unwrap().as_str(), "a.b");
        // Over the length limit: refused, and nothing is kept.
        let long = vec![b'a'; MAX_NAME_LEN + 1];
        let before = names.bytes;
        assert!(names
            .type_name(Text(&long))
            .unwrap_err()
            .contains("256 bytes"));
        assert_eq!(names.bytes, before);
    }

    #[test]
    fn silence_counts_time_this_process_ran_only() {
        let (beat, start) = (Duration::from_millis(500), Instant::now());
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut silence = Silence::new(start);
        // Ticks on time: silence is wall time since the peer was last heard.
        assert_eq!(silence.tick(at(500), beat), Duration::from_millis(500));
        silence.heard(at(700));
        assert_eq!(silence.tick(at(1000), beat), Duration::from_millis(300));
        assert_eq!(silence.tick(at(1500), beat), Duration::from_millis(800));
        // This process stopped for 4 s: the late tick adds one interval, and the burst of
        // overdue ticks behind it next to nothing.
        assert_eq!(silence.tick(at(5600), beat), Duration::from_millis(1300));
        for _ in 0..8 {
            assert_eq!(silence.tick(at(5600), beat), Duration::from_millis(1300));
        }
        // A peer that really says nothing is dead once the process has run long enough.
        let ticks = (1..).find(|i| silence.tick(at(5600 + i * 500), beat) > Duration::from_secs(3));
        assert_eq!(ticks, Some(4), "1.3 s, then four intervals");
    }

    #[test]
    fn the_name_cache_is_bounded_in_bytes() {
        let mut names = Names::new(64 * 1024);
        for i in 0..10_000 {
            let name = format!("{i:0255}");
            // All three kinds share the limit.
            match i % 3 {
                0 => assert_eq!(
                    names.type_name(Text(name.as_bytes())).unwrap().as_ref(),
                    name
                ),
                1 => assert_eq!(names.subject(Text(name.as_bytes())).unwrap().as_str(), name),
                _ => assert_eq!(names.pattern(Text(name.as_bytes())).unwrap().as_str(), name),
            }
            assert!(names.bytes <= 64 * 1024);
            let cost = |len: usize| len + ENTRY_COST;
            let kept: usize = names
                .types
                .map
                .iter()
                .map(|k| cost(k.0.as_ref().len()))
                .sum::<usize>()
                + names
                    .subjects
                    .map
                    .iter()
                    .map(|k| cost(k.0.as_ref().len()))
                    .sum::<usize>()
                + names
                    .patterns
                    .map
                    .iter()
                    .map(|k| cost(k.0.as_ref().len()))
                    .sum::<usize>();
            assert_eq!(kept, names.bytes, "each name is kept once and counted");
        }
    }
}
