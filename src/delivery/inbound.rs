//! Frames to deliveries: what a frame received from a peer means for the services of this
//! node. A data frame is delivered to local services or relayed over the link its
//! destination is reached through; frames for agents this node does not know are dropped
//! (the agent was just withdrawn); frames with invalid contents are protocol errors, which
//! close the connection they came on.
//!
//! How a connection is read: every complete frame already received comes as one chunk of the
//! read buffer (a chunk ends after a request or answer, whose sender waits), so a burst costs
//! one wake-up and one write per outgoing link. Reports, requests and responses are decoded
//! borrowing from the chunk: an exchange server passes a report whose subscribers are all
//! behind one link on as the received bytes, and re-sends it to several links as the received
//! head plus each link's subscribers. For local services a report's content is a slice of
//! its chunk when local deliveries use a good share of what the connection reads (a client),
//! a copy otherwise (a server relaying mostly for others), so that a queued report never pins
//! a read buffer it barely uses; requests and answers are copied unless large.

mod calls;
mod reports;

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use self::calls::CallRouting;
use self::reports::{Decisions, ReportBatch, ReportRouting, Routed};
use super::answer::{send_answer, Answer, Outcome, Parties};
use super::binding::Binding;
use super::interned::Names;
use super::link::Link;
use super::messages::{Delivery, PublisherNotice, Status};
use super::routes::{Completed, Routes};
use crate::ids::{AgentId, ConversationId, IdMap};
use crate::payload::{Format, SharedContent};
use crate::wire::{Frame, ReportView, RequestView, ResponseView};

/// The agents a peer announced over one link: the only ones it may speak for. A frame whose
/// source (a report's publisher, a request's requester, a subscription's subscriber, a
/// notice's publisher, an answer's responder) is not one of them is refused as a forgery.
///
/// An answer may also name an agent withdrawn over the link a moment ago: a hop that lost
/// its route to a target fails the requests still on their way to it in the target's name
/// (see `answer`), after its withdrawal. The last [`WITHDRAWN_KEPT`] agents withdrawn are kept
/// for that.
#[derive(Debug, Default)]
pub(crate) struct Behind {
    agents: HashSet<AgentId>,
    /// Agents withdrawn over the link lately, the oldest first.
    withdrawn: VecDeque<AgentId>,
    /// Changes whenever `agents` does (what a routing decision kept for later depends on).
    version: u64,
}

/// How many agents withdrawn over a link its answers may still name (see [`Behind`]).
pub(crate) const WITHDRAWN_KEPT: usize = 1024;

impl Behind {
    /// Whether `agent` is announced over the link.
    pub(crate) fn contains(&self, agent: &AgentId) -> bool {
        self.agents.contains(agent)
    }

    /// Whether the link may carry an answer of `responder`: it is announced over the link,
    /// or was withdrawn over it lately. The usual case costs one hash lookup.
    pub(crate) fn may_answer_for(&self, responder: &AgentId) -> bool {
        self.agents.contains(responder) || self.withdrawn.contains(responder)
    }

    /// The peer announced `agent` over the link; returns whether it was new.
    pub(crate) fn insert(&mut self, agent: AgentId) -> bool {
        let new = self.agents.insert(agent);
        self.version += u64::from(new);
        new
    }

    /// A number that changes whenever the agents behind the link do.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// `agent` is no longer behind the link; returns whether it was.
    pub(crate) fn remove(&mut self, agent: &AgentId) -> bool {
        if !self.agents.remove(agent) {
            return false;
        }
        self.version += 1;
        if self.withdrawn.len() >= WITHDRAWN_KEPT {
            self.withdrawn.pop_front();
        }
        self.withdrawn.push_back(*agent);
        true
    }

    /// How many agents are announced over the link.
    pub(crate) fn len(&self) -> usize {
        self.agents.len()
    }

    /// The agents announced over the link.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &AgentId> {
        self.agents.iter()
    }
}

/// Forged frames a connection may send before it is closed: a few can be a race with a
/// withdrawal, many cannot.
const FORGERIES_BEFORE_CLOSE: u64 = 64;

/// The inbound routing of one connection: the names it received, the routes it looked up,
/// and the reports gathered for local services while a chunk is handled.
pub(crate) struct Inbound {
    routes: Arc<Routes>,
    /// The link the frames come in on.
    from: Link,
    names: Names,
    cache: RouteCache,
    batch: ReportBatch,
    /// Where the last distinct report streams went.
    decisions: Decisions,
    /// Requests from agents not known here received on this connection (for the log).
    unknown_requesters: u64,
    /// Frames refused for a source not behind this link, so far.
    forgeries: u64,
    /// Whether received report content is sliced from its chunk rather than copied (set from
    /// the last chunk that had reports: see [`Inbound::chunk_done`]).
    share_chunks: bool,
}

impl Inbound {
    /// The routing of frames received on `from`, its name cache bounded to `interned_bytes`.
    pub(crate) fn new(from: Link, interned_bytes: usize) -> Self {
        Inbound {
            routes: from.routes().clone(),
            from,
            names: Names::new(interned_bytes),
            cache: RouteCache::default(),
            batch: ReportBatch::default(),
            decisions: Decisions::default(),
            unknown_requesters: 0,
            forgeries: 0,
            share_chunks: false,
        }
    }

    /// Routes a received report (see [`ReportRouting::route`]); returns the size of its content
    /// if it was delivered to local services. `shared` is the chunk's buffer as the content of
    /// its reports, kept from one report to the next.
    pub(crate) fn report(
        &mut self,
        chunk: &Bytes,
        shared: &mut Option<SharedContent>,
        (view, frame, targeted): (&ReportView<'_>, &[u8], bool),
        behind: &Behind,
    ) -> Result<usize, String> {
        let routed = ReportRouting {
            net: &self.routes,
            names: &mut self.names,
            routes: &mut self.cache,
            batch: &mut self.batch,
            decisions: &mut self.decisions,
            chunk,
            share: self.share_chunks,
            shared,
            from: &self.from,
            behind,
        }
        .route(view, frame, targeted)?;
        match routed {
            Routed::Delivered(bytes) => Ok(bytes),
            Routed::Forged => self.forged(view.publisher, "Report").map(|()| 0),
        }
    }

    /// Counts a frame refused because its source `agent` is not behind this link, and logs it
    /// (at powers of two, so that a flood of them does not flood the log); past
    /// [`FORGERIES_BEFORE_CLOSE`] the connection is to be closed.
    pub(crate) fn forged(&mut self, agent: AgentId, frame: &str) -> Result<(), String> {
        self.violation(Source::Forged(agent), frame)
    }

    /// Counts and logs a frame refused for its source (see [`Inbound::forged`]).
    fn violation(&mut self, source: Source, frame: &str) -> Result<(), String> {
        self.forgeries += 1;
        let count = self.forgeries;
        if count.is_power_of_two() {
            let (peer, addr) = self
                .from
                .peer()
                .map_or(("", None), |p| (p.node.as_str(), Some(p.address)));
            let addr = addr.map(tracing::field::display);
            match source {
                Source::Behind => {}
                Source::Forged(agent) => {
                    tracing::warn!(peer, addr, %agent, frame, count, "frame in the name of an agent not behind this link; refused")
                }
                Source::NotTheTarget { responder, target } => {
                    tracing::warn!(peer, addr, %responder, %target, frame, count, "answer from an agent that is not its call's target; refused")
                }
            }
        }
        if count > FORGERIES_BEFORE_CLOSE {
            return Err(format!(
                "{count} frames in the name of agents not behind this link"
            ));
        }
        Ok(())
    }

    /// What routing a request or response received in `chunk` needs; the reports gathered so
    /// far go first.
    fn calls<'a>(
        &'a mut self,
        chunk: &'a Bytes,
        frame: &'a [u8],
        behind: &'a Behind,
    ) -> CallRouting<'a> {
        self.batch.flush();
        CallRouting {
            net: &self.routes,
            names: &mut self.names,
            routes: &mut self.cache,
            chunk,
            frame,
            from: &self.from,
            behind,
            unknown_requesters: &mut self.unknown_requesters,
        }
    }

    /// Routes a received request (`frame` as received, header included).
    pub(crate) fn request(
        &mut self,
        chunk: &Bytes,
        frame: &[u8],
        request: &RequestView<'_>,
        behind: &Behind,
    ) -> Result<(), String> {
        match self.calls(chunk, frame, behind).request(request)? {
            Source::Behind => Ok(()),
            forged => self.violation(forged, "Request"),
        }
    }

    /// Routes a received response (`frame` as received, header included).
    pub(crate) fn response(
        &mut self,
        chunk: &Bytes,
        frame: &[u8],
        response: &ResponseView<'_>,
        behind: &Behind,
    ) -> Result<(), String> {
        match self.calls(chunk, frame, behind).response(response)? {
            Source::Behind => Ok(()),
            forged => self.violation(forged, "Response"),
        }
    }

    /// Routes any other data frame (subscriptions, notices, failures); `raw` is the frame as
    /// received, header included.
    pub(crate) fn data(&mut self, frame: Frame, raw: &[u8], behind: &Behind) -> Result<(), String> {
        self.batch.flush();
        let kind = frame.kind();
        match route(
            &self.routes,
            &mut self.names,
            frame,
            raw,
            (behind, &self.from),
        )? {
            Source::Behind => Ok(()),
            forged => self.violation(forged, kind),
        }
    }

    /// Pushes the reports gathered for local services (before a frame of another kind is
    /// handled, so every service sees what one peer sent in the order sent).
    pub(crate) fn flush(&mut self) {
        self.batch.flush();
    }

    /// The chunk has been handled: `local_bytes` of report content went to local services out
    /// of `len` bytes read. Returns whether the reader should yield before the next chunk (so
    /// that those services run first), and decides whether the next chunks' report content is
    /// sliced or copied: sliced when local deliveries use a good share of what this connection
    /// reads (a client), copied otherwise (a server relaying mostly for others), so that a
    /// queued report never pins a read buffer it barely uses. A chunk without reports (an
    /// answer to a call, say) leaves the choice as it was.
    ///
    /// Except when a full chunk (`full`: more is most likely waiting to be read) went to a
    /// service that conflates a subscription: then the reader reads on. A slow service on the
    /// thread that reads its link would otherwise make the link be read as slowly as it
    /// handles, and its backlog would wait in the sending side's link buffer, which can only
    /// drop; read ahead, the backlog reaches its inbox, where conflation keeps the latest
    /// report of every subject.
    pub(crate) fn chunk_done(
        &mut self,
        len: usize,
        local_bytes: usize,
        any_report: bool,
        full: bool,
    ) -> bool {
        self.batch.flush();
        if any_report {
            self.share_chunks = local_bytes * 4 >= len;
        }
        let read_ahead = self.batch.take_conflating() && full;
        local_bytes > 0 && !read_ahead
    }

    /// Forgets the routes looked up: an idle connection must not keep closed links alive.
    pub(crate) fn forget_routes(&mut self) {
        self.cache = RouteCache::default();
        self.decisions = Decisions::default();
    }
}

/// Whether a frame's source is behind the link it came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// It is (or the frame names no source that must be).
    Behind,
    /// It is not: the frame was refused.
    Forged(AgentId),
    /// An answer from an agent behind the link, but not the one its call waits for: refused.
    NotTheTarget {
        /// The agent the answer names.
        responder: AgentId,
        /// The call's target.
        target: AgentId,
    },
}

/// The source check of an answer received over a link with the agents `behind` it: its
/// responder must be one of them (see [`Behind::may_answer_for`]), whether the answer is for a
/// local requester or relayed (an exchange server does not know the calls it relays, but
/// it knows who may speak on each link). One hash lookup, nothing allocated.
pub(super) fn answer_source(behind: &Behind, responder: AgentId) -> Source {
    if behind.may_answer_for(&responder) {
        Source::Behind
    } else {
        Source::Forged(responder)
    }
}

/// Completes a call of a local requester with an answer whose responder is behind the link it
/// came on ([`answer_source`]): only the call's target may answer it (for a call by name, the
/// agent the name resolved to). An answer for a call no longer waiting (it timed out, or
/// failed when its target was withdrawn) is dropped.
pub(super) fn complete(net: &Routes, parties: Parties, outcome: Outcome) -> Source {
    let responder = parties.responder;
    match net.complete_from(ConversationId(parties.conversation), outcome, responder) {
        Completed::Answered | Completed::NotWaiting => Source::Behind,
        Completed::NotTheTarget(target) => Source::NotTheTarget { responder, target },
    }
}

/// Gives a data frame its meaning: delivers it to local services, or relays it over the
/// link its destination is reached through. Frames for agents this node does not know are
/// dropped (the agent was just withdrawn); frames with invalid contents are protocol errors.
fn route(
    net: &Routes,
    names: &mut Names,
    frame: Frame,
    raw: &[u8],
    (behind, from): (&Behind, &Link),
) -> Result<Source, String> {
    match frame {
        Frame::SubscriptionRequested {
            publisher,
            subscriber,
            pattern,
        } => subscribe(
            net,
            names,
            (behind, from),
            (publisher, subscriber, &pattern),
            (Format::Bincode, false),
        ),
        Frame::SubscriptionRequestedAs {
            publisher,
            subscriber,
            pattern,
            format,
        } => subscribe(
            net,
            names,
            (behind, from),
            (publisher, subscriber, &pattern),
            (format, false),
        ),
        Frame::SubscriptionConflated {
            publisher,
            subscriber,
            pattern,
            format,
        } => subscribe(
            net,
            names,
            (behind, from),
            (publisher, subscriber, &pattern),
            (format, true),
        ),
        Frame::SubscriptionWithdrawn {
            publisher,
            subscriber,
            pattern,
        } => {
            if !behind.contains(&subscriber) {
                return Ok(Source::Forged(subscriber));
            }
            let pattern = names.pattern(pattern.as_str().into())?.clone();
            from.out().unconflate(subscriber, Some(pattern.as_str()));
            if let Some(publisher) = net.lookup(publisher) {
                publisher.send(Delivery::SubscriptionWithdrawn {
                    subscriber,
                    pattern,
                });
            }
            Ok(Source::Behind)
        }
        Frame::PublisherNotice {
            publisher,
            subscriber,
            available,
        } => {
            if !behind.contains(&publisher) {
                return Ok(Source::Forged(publisher));
            }
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
            Ok(Source::Behind)
        }
        Frame::Failure {
            conversation,
            requester,
            failure,
            responder,
        } => {
            // Whether for a local requester or relayed: a hub passes on only answers of agents
            // behind the link they came over.
            let source = answer_source(behind, responder);
            if source != Source::Behind {
                return Ok(source);
            }
            let parties = Parties {
                conversation,
                requester,
                responder,
            };
            match net.lookup(requester) {
                Some(r) if r.link().is_none() => {
                    let id = ConversationId(conversation);
                    let failure = failure.into_failure().with_conversation(id);
                    return Ok(complete(net, parties, Err(failure)));
                }
                // Relayed towards the requester, by its route.
                Some(_) => send_answer(net, parties, None, Answer::RelayedFailure(raw, &failure)),
                // The requester was just withdrawn.
                None => {}
            }
            Ok(Source::Behind)
        }
        other => Err(format!("unexpected {} frame", other.kind())),
    }
}

/// A subscription received: delivered to its publisher (a local one, or the next link towards
/// it, which passes the format and the conflation on), if its subscriber is behind the link
/// it came on. A conflated one is noted on that link first, whose reports to the subscriber
/// it conflates.
fn subscribe(
    net: &Routes,
    names: &mut Names,
    (behind, from): (&Behind, &Link),
    (publisher, subscriber, pattern): (AgentId, AgentId, &str),
    (format, conflated): (Format, bool),
) -> Result<Source, String> {
    if !behind.contains(&subscriber) {
        return Ok(Source::Forged(subscriber));
    }
    let pattern = names.pattern(pattern.into())?.clone();
    if conflated {
        from.out().conflate(subscriber, pattern.as_str());
    }
    if let (Some(publisher), Some(subscriber)) = (net.lookup(publisher), net.lookup(subscriber)) {
        publisher.send(Delivery::SubscriptionRequested {
            subscriber,
            pattern,
            format,
            conflated,
        });
    }
    Ok(Source::Behind)
}

/// Routes looked up while handling frames, kept while the node's routing table is unchanged
/// (its generation), so that a stream of reports between the same agents costs no lock and
/// no hash per frame: the agents seen last are scanned first, with no reference count
/// touched on a hit; the others are one hash away, not a lock on the routing table.
#[derive(Default)]
pub(super) struct RouteCache {
    generation: u64,
    /// The last [`RECENT`] agents looked up, oldest first.
    recent: Vec<(AgentId, Option<Binding>)>,
    /// Every agent looked up, at most [`ROUTE_CACHE`] (then forgotten all at once).
    entries: IdMap<AgentId, Option<Binding>>,
}

/// How many agents a bridge scans before it hashes.
const RECENT: usize = 16;
/// Most agents a bridge keeps routes for.
const ROUTE_CACHE: usize = 4096;

impl RouteCache {
    pub(super) fn lookup(&mut self, net: &Routes, agent: AgentId) -> Option<&Binding> {
        let generation = net.generation();
        if generation != self.generation {
            self.recent.clear();
            self.entries.clear();
            self.generation = generation;
        }
        let at = match self.recent.iter().position(|(a, _)| *a == agent) {
            Some(at) => at,
            None => {
                let route = match self.entries.get(&agent) {
                    Some(route) => route.clone(),
                    None => {
                        if self.entries.len() >= ROUTE_CACHE {
                            self.entries.clear();
                        }
                        let route = net.lookup(agent);
                        self.entries.insert(agent, route.clone());
                        route
                    }
                };
                if self.recent.len() >= RECENT {
                    self.recent.remove(0);
                }
                self.recent.push((agent, route));
                self.recent.len() - 1
            }
        };
        self.recent[at].1.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_may_name_agents_withdrawn_lately_and_no_older_ones() {
        let mut behind = Behind::default();
        let agents: Vec<AgentId> = (0..=WITHDRAWN_KEPT).map(|_| AgentId::random()).collect();
        for &agent in &agents {
            assert!(behind.insert(agent));
        }
        let stranger = AgentId::random();
        assert!(!behind.may_answer_for(&stranger));
        assert!(
            !behind.remove(&stranger),
            "never behind: nothing to remember"
        );
        for agent in &agents {
            assert!(behind.remove(agent));
        }
        assert_eq!(behind.len(), 0);
        // Only the last WITHDRAWN_KEPT are remembered, and for answers only.
        assert!(!behind.may_answer_for(&agents[0]));
        for agent in &agents[1..] {
            assert!(behind.may_answer_for(agent) && !behind.contains(agent));
        }
        assert!(!behind.may_answer_for(&stranger));
    }
}
