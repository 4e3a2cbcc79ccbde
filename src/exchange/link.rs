//! A link: the sending side of one connection. Frames are encoded straight into a bounded
//! outbound buffer; a writer task writes whatever has accumulated in one `write_all`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

use super::Net;
use crate::binding::Binding;
use crate::failure::{ErrorCode, Failure};
use crate::ids::{AgentId, ProcessId};
use crate::inbox::{Delivery, Refused};
use crate::names::{clip_name, GroupName, SubjectPattern};
use crate::payload::Format;
use crate::registry::Status;
use crate::report::{Report, ReportData};
use crate::request::{IncomingRequest, ReplyTo};
use crate::wire::{
    encode_frame, encode_report, encode_report_spliced, encode_request, encode_response,
    ContentView, EncodedTargets, Frame, PutTargets, ReportRef, RequestView, ResponseView,
    TargetView, WireFailure,
};

/// What the handshake told about the peer.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) process: ProcessId,
    pub(crate) node: String,
    pub(crate) hub: bool,
}

struct Outbound {
    buf: BytesMut,
    closed: bool,
    /// Closed because the peer did not read: the writer fails rather than flush.
    overflowed: bool,
    /// Frames and report frames in `buf`, added to the exchange's counters when written (one
    /// shared-counter update per write rather than per frame).
    frames: u64,
    reports: u64,
}

/// Counters of one exchange, shared by its links.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) frames_sent: AtomicU64,
    pub(crate) reports_sent: AtomicU64,
    pub(crate) reports_dropped: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
}

struct Shared {
    id: u64,
    counters: Arc<Counters>,
    stall_limit: std::time::Duration,
    group: Option<GroupName>,
    initiated: bool,
    peer: OnceLock<Peer>,
    net: Arc<Net>,
    out: Mutex<Outbound>,
    wake: Notify,
    limit: usize,
    max_frame: usize,
    dropped_reports: AtomicU64,
    sent_since_tick: AtomicBool,
    duplicate: AtomicBool,
    /// The node's router, which announces services on this link from its cursor (see
    /// `Router::refill`); set when the link is served by a bridge.
    router: OnceLock<std::sync::Weak<super::Router>>,
    /// Whether the router has announcements waiting for this link.
    has_backlog: AtomicBool,
}

/// A written buffer larger than this is not kept for reuse (after a burst to a slow peer).
const KEEP_CAPACITY: usize = 1024 * 1024;

/// The sending side of one connection. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Link(Arc<Shared>);

static NEXT_LINK: AtomicU64 = AtomicU64::new(1);

impl Link {
    pub(crate) fn new(
        net: Arc<Net>,
        group: Option<GroupName>,
        initiated: bool,
        limits: (usize, usize, std::time::Duration),
        counters: Arc<Counters>,
    ) -> Link {
        let (limit, max_frame, stall_limit) = limits;
        Link(Arc::new(Shared {
            id: NEXT_LINK.fetch_add(1, Ordering::Relaxed),
            counters,
            stall_limit,
            group,
            initiated,
            peer: OnceLock::new(),
            net,
            out: Mutex::new(Outbound {
                buf: BytesMut::with_capacity(64 * 1024),
                closed: false,
                overflowed: false,
                frames: 0,
                reports: 0,
            }),
            wake: Notify::new(),
            limit,
            max_frame,
            dropped_reports: AtomicU64::new(0),
            sent_since_tick: AtomicBool::new(false),
            duplicate: AtomicBool::new(false),
            router: OnceLock::new(),
            has_backlog: AtomicBool::new(false),
        }))
    }

    pub(crate) fn same(&self, other: &Link) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The exchange group of the link (`None`: the default, empty-named group).
    pub(crate) fn group(&self) -> Option<&GroupName> {
        self.0.group.as_ref()
    }

    /// Whether this side opened the connection.
    pub(crate) fn initiated(&self) -> bool {
        self.0.initiated
    }

    pub(crate) fn set_peer(&self, peer: Peer) {
        let _ = self.0.peer.set(peer);
    }

    pub(crate) fn peer(&self) -> Option<&Peer> {
        self.0.peer.get()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Outbound> {
        self.0.out.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Closes the link: nothing more is queued; the writer flushes what is there and stops.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.0.wake.notify_one();
    }

    /// Closes the link after its socket failed: what is queued can never be written, so it is
    /// freed now rather than when the last holder of the link lets go.
    fn discard(&self) {
        let mut out = self.lock();
        out.closed = true;
        out.buf = BytesMut::new();
    }

    /// Marks the link as the dropped one of two links to the same process.
    pub(crate) fn mark_duplicate(&self) {
        self.0.duplicate.store(true, Ordering::Relaxed);
    }

    /// The cap on one frame's size on this link.
    pub(crate) fn max_frame(&self) -> usize {
        self.0.max_frame
    }

    /// Whether the link was dropped as a duplicate.
    pub(crate) fn is_duplicate(&self) -> bool {
        self.0.duplicate.load(Ordering::Relaxed)
    }

    /// Sends a heartbeat if nothing was queued since the last call and nothing waits to be
    /// written: a peer that has frames coming hears from this side anyway (and a heartbeat
    /// behind a full buffer of reports for a slow reader would count as a frame it must read).
    pub(crate) fn heartbeat(&self) {
        let sent = self.0.sent_since_tick.swap(false, Ordering::Relaxed);
        if !sent && self.lock().buf.is_empty() {
            let _ = self.send_frame(&Frame::Heartbeat);
        }
    }

    /// Queues one frame. A report that does not fit is dropped; any other frame that does not
    /// fit closes the link (the peer stopped reading).
    pub(crate) fn send_frame(&self, frame: &Frame) -> Result<(), Refused> {
        let is_report = matches!(frame, Frame::Report(_) | Frame::TargetedReport(_));
        self.queue(is_report, frame.kind(), |buf| {
            encode_frame(frame, buf, self.0.max_frame)
        })
    }

    /// Sends a received report ([`crate::wire::ReportView::head`]) to the listed subscribers
    /// behind this link, without encoding its content again.
    pub(crate) fn send_report_head<'t>(
        &self,
        head: &[u8],
        targets: impl ExactSizeIterator<Item = TargetView<'t>>,
    ) -> Result<(), Refused> {
        self.queue(true, "Report", |buf| {
            encode_report_spliced(head, targets, buf, self.0.max_frame)
        })
    }

    /// Queues a received frame (header included) as it is.
    /// The frame was accepted under the receiving exchange's size cap, which may be larger
    /// than this link's: it is checked again, as an encoded frame would be.
    pub(crate) fn send_raw(
        &self,
        frame: &[u8],
        is_report: bool,
        kind: &str,
    ) -> Result<(), Refused> {
        self.queue(is_report, kind, |buf| {
            let len = frame.len().saturating_sub(4);
            if len > self.0.max_frame {
                return Err(crate::wire::CodecError::TooLarge {
                    len,
                    max: self.0.max_frame,
                });
            }
            buf.extend_from_slice(frame);
            Ok(())
        })
    }

    /// Appends one frame with `write` under the outbound limit policy.
    fn queue(
        &self,
        is_report: bool,
        kind: &str,
        write: impl FnOnce(&mut BytesMut) -> Result<(), crate::wire::CodecError>,
    ) -> Result<(), Refused> {
        {
            let mut out = self.lock();
            if out.closed {
                return Err(Refused::Closed);
            }
            // Reports are dropped at the limit; other frames have headroom above it (half the
            // limit again), so that a slow reader whose buffer is full of reports still gets
            // its notices and answers; past that, the peer is not reading at all.
            let limit = if is_report {
                self.0.limit
            } else {
                self.0.limit.saturating_add(self.0.limit / 2)
            };
            if out.buf.len() >= limit {
                if is_report {
                    self.0
                        .counters
                        .reports_dropped
                        .fetch_add(1, Ordering::Relaxed);
                    let dropped = self.0.dropped_reports.fetch_add(1, Ordering::Relaxed) + 1;
                    if dropped.is_power_of_two() {
                        tracing::warn!(
                            link = self.0.id,
                            dropped,
                            limit = self.0.limit,
                            "outbound buffer full: dropping reports for a slow peer"
                        );
                    }
                    return Err(Refused::Full);
                }
                tracing::error!(
                    link = self.0.id,
                    limit = self.0.limit,
                    frame = kind,
                    "peer is not reading: outbound buffer over its limit; closing the connection"
                );
                // What is queued would take a peer that does not read forever to take: it is
                // dropped, and the writer ends at once (its bridge closes the connection).
                out.closed = true;
                out.overflowed = true;
                out.buf = BytesMut::new();
                drop(out);
                self.0.wake.notify_one();
                return Err(Refused::Closed);
            }
            let was_empty = out.buf.is_empty();
            if let Err(e) = write(&mut out.buf) {
                tracing::error!(link = self.0.id, frame = kind, "cannot send frame: {e}");
                return Err(Refused::Full);
            }
            out.frames += 1;
            out.reports += u64::from(is_report);
            if !was_empty {
                return Ok(());
            }
        }
        self.0.sent_since_tick.store(true, Ordering::Relaxed);
        self.0.wake.notify_one();
        Ok(())
    }

    /// Writes queued frames until the link is closed (after a final flush) or the socket fails.
    /// A write that makes no progress for the stall limit means the peer stopped reading: the
    /// link fails (memory stays bounded by the outbound limit meanwhile).
    ///
    /// `probe` is a second handle on the same socket, written to directly (without waiting for
    /// the socket to be reported writable) when a write has waited a while: the kernel reports
    /// a full socket writable again only once a third of its buffer has drained, which for a
    /// peer reading slowly can take far longer than the stall limit although it reads all
    /// along; a direct write finds any space its reading has made.
    pub(crate) async fn write_loop<W: AsyncWrite + Unpin>(
        &self,
        mut sink: W,
        mut probe: Option<std::net::TcpStream>,
    ) -> std::io::Result<()> {
        // Two buffers take turns: frames are queued into one while the other is written, and
        // the written one keeps its capacity (no allocation, no fresh pages per write).
        let mut chunk = BytesMut::with_capacity(64 * 1024);
        // Once the link is closed, what is left is flushed within the stall limit, at most.
        let mut flush_by: Option<tokio::time::Instant> = None;
        loop {
            chunk.clear();
            if chunk.capacity() > KEEP_CAPACITY {
                chunk = BytesMut::with_capacity(64 * 1024);
            }
            let (closed, overflowed, frames, reports) = {
                let mut out = self.lock();
                std::mem::swap(&mut out.buf, &mut chunk);
                (
                    out.closed,
                    out.overflowed,
                    std::mem::take(&mut out.frames),
                    std::mem::take(&mut out.reports),
                )
            };
            if overflowed {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    "peer is not reading: outbound buffer over its limit",
                ));
            }
            if frames > 0 {
                self.0
                    .counters
                    .frames_sent
                    .fetch_add(frames, Ordering::Relaxed);
                self.0
                    .counters
                    .reports_sent
                    .fetch_add(reports, Ordering::Relaxed);
            }
            if !chunk.is_empty() {
                let written = match flush_by
                    .or_else(|| closed.then(|| tokio::time::Instant::now() + self.0.stall_limit))
                {
                    Some(deadline) => {
                        flush_by = Some(deadline);
                        let write = self.write_all(&mut sink, probe.as_mut(), &chunk);
                        tokio::time::timeout_at(deadline, write)
                            .await
                            .unwrap_or_else(|_| {
                                Err(std::io::Error::new(
                                    std::io::ErrorKind::TimedOut,
                                    "closing: the peer did not take the last frames in time",
                                ))
                            })
                    }
                    None => self.write_all(&mut sink, probe.as_mut(), &chunk).await,
                };
                if let Err(e) = written {
                    self.discard();
                    return Err(e);
                }
                self.0
                    .counters
                    .bytes_written
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                if self.0.has_backlog.load(Ordering::Acquire) {
                    if let Some(router) = self.0.router.get().and_then(std::sync::Weak::upgrade) {
                        router.refill(self);
                    }
                }
                continue;
            }
            if closed {
                let _ = sink.shutdown().await;
                return Ok(());
            }
            self.0.wake.notified().await;
        }
    }

    /// The router that announces services on this link from its cursor.
    pub(crate) fn set_router(&self, router: std::sync::Weak<super::Router>) {
        let _ = self.0.router.set(router);
    }

    /// Whether the router has announcements waiting for this link (its writer asks for them
    /// each time it has written the buffer out).
    pub(crate) fn set_backlog(&self, waiting: bool) {
        self.0.has_backlog.store(waiting, Ordering::Release);
    }

    /// Whether the router has announcements waiting for this link.
    #[cfg(test)]
    pub(crate) fn has_backlog(&self) -> bool {
        self.0.has_backlog.load(Ordering::Acquire)
    }

    /// Takes what is queued, as the writer would (tests).
    #[cfg(test)]
    pub(crate) fn take_queued(&self) -> Vec<Frame> {
        let buf = std::mem::take(&mut self.lock().buf);
        let mut rest = &buf[..];
        let mut frames = Vec::new();
        while let Some((_, body, next)) = crate::wire::split_frame(rest) {
            frames.push(crate::wire::decode_frame(body).expect("frames queued decode"));
            rest = next;
        }
        frames
    }

    /// Bytes queued and not yet taken by the writer.
    pub(crate) fn queued(&self) -> usize {
        self.lock().buf.len()
    }

    /// The outbound limit (see the slow-consumer policy).
    pub(crate) fn limit(&self) -> usize {
        self.0.limit
    }

    /// Announces `agent` now if the router's cursor for this link has not come to it yet:
    /// something it sends is about to cross the link, and the peer must know the sender first.
    pub(crate) fn announce_first(&self, agent: AgentId) {
        if !self.0.has_backlog.load(Ordering::Acquire) {
            return;
        }
        if let Some(router) = self.0.router.get().and_then(std::sync::Weak::upgrade) {
            router.announce_first(self, agent);
        }
    }

    /// Writes all of `bytes`, failing when no byte could be written for the stall limit: a
    /// peer that reads, however slowly, is never cut off; one that stopped reading is.
    async fn write_all<W: AsyncWrite + Unpin>(
        &self,
        sink: &mut W,
        mut probe: Option<&mut std::net::TcpStream>,
        mut bytes: &[u8],
    ) -> std::io::Result<()> {
        use std::io::Write;
        let limit = self.0.stall_limit;
        let step = (limit / 8).max(std::time::Duration::from_millis(1));
        // Time without progress, counted per attempt and at most two steps each: a stall of
        // this process (a stop, a busy host) is not blamed on the peer.
        let mut stalled = std::time::Duration::ZERO;
        while !bytes.is_empty() {
            let attempt = tokio::time::Instant::now();
            let written = match tokio::time::timeout(step, sink.write(bytes)).await {
                Ok(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(e),
                // Not reported writable for a while: try the socket directly.
                Err(_) => match probe.as_mut().map(|p| p.write(bytes)) {
                    Some(Ok(n)) => n,
                    Some(Err(e)) if e.kind() != std::io::ErrorKind::WouldBlock => return Err(e),
                    _ => 0,
                },
            };
            if written > 0 {
                bytes = &bytes[written..];
                stalled = std::time::Duration::ZERO;
            } else {
                stalled += attempt.elapsed().min(step * 2);
                if stalled >= limit {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("peer stopped reading: no write progress for {limit:?}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The current binding of `agent` if it is now reached through another, open link.
    pub(crate) fn reroute(&self, agent: AgentId) -> Option<Binding> {
        self.0
            .net
            .lookup(agent)
            .filter(|b| b.link().is_none_or(|l| !l.same(self) && !l.is_closed()))
    }

    /// Relays a received response or failure (header included) as it is. One over this link's
    /// frame size cap cannot go on: its requester gets `instead(cap)` in its place rather than
    /// wait for its timeout.
    pub(crate) fn relay_answer(
        &self,
        frame: &[u8],
        kind: &str,
        requester: AgentId,
        conversation: u64,
        instead: impl FnOnce(usize) -> WireFailure,
    ) {
        if let Err(Refused::Full) = self.send_raw(frame, false, kind) {
            let failure = instead(self.0.max_frame);
            let _ = self.send_frame(&Frame::Failure {
                conversation,
                requester,
                failure,
            });
        }
    }

    /// Sends a delivery for `target` (a binding reached through this link) as a frame.
    pub(crate) fn deliver(&self, target: &Binding, delivery: Delivery) -> Result<(), Refused> {
        let frame = match delivery {
            Delivery::Report(report) => {
                let targets = [(target.agent(), report.pattern)];
                return ReportFanout::send_remote(
                    &report.data,
                    std::iter::once((self, &targets[..])),
                );
            }
            Delivery::Request(request) => return self.send_request(target, request),
            Delivery::SubscriptionRequested {
                subscriber,
                pattern,
            } => {
                if subscriber.link().is_none() && !self.carries(&subscriber) {
                    tracing::error!(
                        subscriber = %subscriber,
                        publisher = %target,
                        "a service with audience {:?} cannot subscribe to a service in another process",
                        subscriber.audience().as_str()
                    );
                    return Ok(());
                }
                self.announce_first(subscriber.agent());
                Frame::SubscriptionRequested {
                    publisher: target.agent(),
                    subscriber: subscriber.agent(),
                    pattern: pattern.to_string(),
                }
            }
            Delivery::SubscriptionWithdrawn {
                subscriber,
                pattern,
            } => Frame::SubscriptionWithdrawn {
                publisher: target.agent(),
                subscriber,
                pattern: pattern.to_string(),
            },
            Delivery::Publisher(notice) => Frame::PublisherNotice {
                publisher: notice.publisher.agent(),
                subscriber: target.agent(),
                available: notice.status == Status::Available,
            },
            // Registry events, shutdown and stop are local matters.
            Delivery::Registry { .. } | Delivery::Shutdown(_) | Delivery::Stop => return Ok(()),
        };
        self.send_frame(&frame)
    }

    /// Sends one report frame for the listed subscribers behind this link, encoded straight
    /// from borrowed parts.
    pub(crate) fn send_report<T: PutTargets + ?Sized>(
        &self,
        targeted: bool,
        publisher: AgentId,
        subject: &str,
        content: ContentView<'_>,
        targets: &T,
    ) -> Result<(), Refused> {
        let report = ReportRef {
            targeted,
            publisher,
            subject: subject.into(),
            content,
            targets,
        };
        self.queue(true, "Report", |buf| {
            encode_report(&report, buf, self.0.max_frame)
        })
    }

    /// Whether `agent` is visible on the far side of this link: its audience is `*` or this
    /// link's exchange group. What is announced on a link, and whose requests may cross it,
    /// both follow from this.
    pub(crate) fn carries(&self, agent: &Binding) -> bool {
        match agent.audience() {
            crate::names::Audience::Everyone => true,
            crate::names::Audience::Process => false,
            crate::names::Audience::Group(g) => self.group() == Some(g),
        }
    }

    /// The rule for every request about to cross this link, whether a service of this
    /// process sent it or it is being relayed: its answer comes back by requester agent, so
    /// the requester must be visible on the far side ([`Link::carries`]). When it is not, the
    /// request does not go on and the requester gets `CLIENT_SERVICE_ADDRESS_INVALID` (45)
    /// from this hop, at once, instead of waiting for an answer that could never come back.
    /// (A target that is gone is the other reason a hop answers instead of passing a request
    /// on: 46, where the target is looked up.)
    pub(crate) fn refuse_requester(
        &self,
        requester: &Binding,
        target: &Binding,
    ) -> Result<(), Failure> {
        if self.carries(requester) {
            return Ok(());
        }
        let beyond = match (requester.audience(), self.group()) {
            (crate::names::Audience::Process, _) => "from another process".to_owned(),
            (_, Some(group)) => format!("in exchange group {:?}", group.as_str()),
            (_, None) => "in the default exchange group".to_owned(),
        };
        Err(Failure::netsvc(
            ErrorCode::CLIENT_SERVICE_ADDRESS_INVALID,
            format!(
                "{requester} has audience {:?} and cannot be answered {beyond}; \
                 give it audience \"*\" to call {target}",
                requester.audience().as_str()
            ),
        ))
    }

    fn send_request(&self, target: &Binding, request: IncomingRequest) -> Result<(), Refused> {
        let IncomingRequest {
            conversation,
            method,
            args,
            sender,
            reply,
            reply_format,
        } = request;
        if let Err(failure) = self.refuse_requester(&sender, target) {
            reply.fail(failure);
            return Ok(());
        }
        // A local requester's answer will come back over this link: it waits for it from now.
        // A relayed request is answered by requester agent, so only its failures are sent here.
        let relayed = match reply {
            ReplyTo::Local(tx) => {
                self.0
                    .net
                    .add_pending(conversation, target.agent(), self, tx);
                None
            }
            remote => Some(remote),
        };
        self.announce_first(sender.agent());
        // The arguments are encoded straight into the frame (through a per-thread scratch
        // buffer for an in-process value).
        let format = args.wire_format();
        let limit = self.0.max_frame;
        let sent = args.with_bytes(format, |bytes| {
            let request = RequestView {
                conversation: conversation.get(),
                requester: sender.agent(),
                target: target.agent(),
                method: method.as_ref().into(),
                args: ContentView {
                    format,
                    type_name: clip_name(args.type_name()).into(),
                    bytes,
                },
                reply_format,
            };
            self.queue(false, "Request", |buf| encode_request(&request, buf, limit))
        });
        let failure = match (sent, &relayed) {
            (Ok(Ok(())), _) => return Ok(()),
            (Ok(Err(Refused::Closed)), _) => {
                if relayed.is_none() {
                    self.0.net.forget_pending(conversation);
                }
                return Err(Refused::Closed);
            }
            // Only a frame over the size cap is refused as "full" (a request that does not fit
            // the outbound buffer closes the link instead): the caller is told so, and a relay
            // refuses it as the bridge does.
            (Ok(Err(Refused::Full)), None) => Failure::netsvc(
                ErrorCode::CLIENT_REQUEST_ENCODING_ERROR,
                format!("request {method} to {target} is too large: over the link's frame size limit of {limit} bytes"),
            ),
            (Ok(Err(Refused::Full)), Some(_)) => Failure::netsvc(
                ErrorCode::SERVER_RESOURCE_UNAVAILABLE,
                format!("request too large to relay to {target}: over the link's frame size limit of {limit} bytes"),
            ),
            (Err(e), _) => {
                Failure::netsvc(ErrorCode::CLIENT_REQUEST_ENCODING_ERROR, format!("arguments of {method}: {e}"))
            }
        };
        match relayed {
            None => self.0.net.complete(conversation, Err(Box::new(failure))),
            Some(reply) => reply.fail(failure),
        }
        Ok(())
    }
}

/// Sends a request's outcome back across the link the requester is reached through.
pub(crate) fn send_outcome(
    requester: &Binding,
    conversation: u64,
    format: Format,
    outcome: Result<crate::Payload, Failure>,
) {
    let Some(link) = requester.link() else {
        return tracing::debug!(requester = %requester, "answer for a requester that is now local; dropped");
    };
    // A response is encoded straight into the frame (as a request's arguments are).
    let response = outcome.and_then(|content| {
        let encoded = content.with_bytes(format, |bytes| {
            let response = ResponseView {
                conversation,
                requester: requester.agent(),
                content: ContentView {
                    format,
                    type_name: clip_name(content.type_name()).into(),
                    bytes,
                },
            };
            link.queue(false, "Response", |buf| {
                encode_response(&response, buf, link.0.max_frame)
            })
        });
        match encoded {
            // Only a frame over the size cap is refused as "full": the requester is told.
            Ok(Err(Refused::Full)) => Err(Failure::netsvc(
                ErrorCode::SERVER_RESPONSE_ENCODING_ERROR,
                format!(
                    "response too large: over the link's frame size limit of {} bytes",
                    link.0.max_frame
                ),
            )),
            Ok(_) => Ok(()),
            Err(e) => Err(Failure::netsvc(
                ErrorCode::SERVER_RESPONSE_ENCODING_ERROR,
                e.to_string(),
            )),
        }
    });
    if let Err(failure) = response {
        let failure = WireFailure::from_failure(failure);
        let _ = link.send_frame(&Frame::Failure {
            conversation,
            requester: requester.agent(),
            failure,
        });
    }
}

/// Who gets a published report: local subscribers each get a delivery sharing the content;
/// remote subscribers are gathered per link, and each link gets one frame listing them, with
/// the content encoded once for all links. The list for each link is encoded as targets are
/// added, so a publisher can keep a fan-out for a subject and send many reports with it, as
/// long as the node's routes stay the same (see [`ReportFanout::is_current`]).
pub(crate) struct ReportFanout {
    /// The node's routing generation when the fan-out was started.
    generation: u64,
    local: Vec<(Binding, Option<SubjectPattern>)>,
    remote: Vec<(Link, EncodedTargets)>,
}

impl ReportFanout {
    /// An empty fan-out, valid while `net`'s routes stay as they are now.
    pub(crate) fn new(net: &Net) -> Self {
        ReportFanout {
            generation: net.generation(),
            local: Vec::new(),
            remote: Vec::new(),
        }
    }

    /// Whether `net`'s routes are still those the fan-out was worked out with: a remote
    /// subscriber may since have moved to another link, or be gone.
    pub(crate) fn is_current(&self, net: &Net) -> bool {
        self.generation == net.generation()
    }

    /// Whether no subscriber was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.local.is_empty() && self.remote.is_empty()
    }

    /// Adds a subscriber and the pattern it matched (if any). A remote subscriber is added by
    /// its current route in `net` (it may have moved to another link since it subscribed);
    /// one no longer in `net` is left out (its withdrawal is on its way).
    pub(crate) fn add(
        &mut self,
        net: &Net,
        subscriber: &Binding,
        pattern: Option<&SubjectPattern>,
    ) {
        let current;
        let subscriber = match subscriber.link() {
            None => subscriber,
            Some(_) => match net.lookup(subscriber.agent()) {
                Some(route) => {
                    current = route;
                    &current
                }
                None => return,
            },
        };
        let Some(link) = subscriber.link() else {
            return self.local.push((subscriber.clone(), pattern.cloned()));
        };
        let target = TargetView {
            subscriber: subscriber.agent(),
            pattern: pattern.map(|p| p.as_str().into()),
        };
        match self.remote.iter_mut().find(|(l, _)| l.same(link)) {
            Some((_, targets)) => targets.push(target),
            None => {
                let mut targets = EncodedTargets::default();
                targets.push(target);
                self.remote.push((link.clone(), targets));
            }
        }
    }

    /// Sends `data` to every subscriber added.
    pub(crate) fn send(&self, data: ReportData) {
        if !self.remote.is_empty() {
            let _ = Self::send_remote(
                &data,
                self.remote.iter().map(|(link, targets)| (link, targets)),
            );
        }
        if let Some(((last, last_pattern), rest)) = self.local.split_last() {
            for (subscriber, pattern) in rest {
                subscriber.send(Delivery::Report(Report {
                    data: data.clone(),
                    pattern: pattern.clone(),
                }));
            }
            last.send(Delivery::Report(Report {
                data,
                pattern: last_pattern.clone(),
            }));
        }
    }

    /// Sends the report to the targets behind each link, its content encoded once for all.
    fn send_remote<'l, T: PutTargets + ?Sized + 'l>(
        data: &ReportData,
        remote: impl Iterator<Item = (&'l Link, &'l T)>,
    ) -> Result<(), Refused> {
        let format = data.content.wire_format();
        let sent = data.content.with_bytes(format, |bytes| {
            let content = ContentView {
                format,
                type_name: clip_name(data.content.type_name()).into(),
                bytes,
            };
            let mut result = Ok(());
            for (link, targets) in remote {
                let sent = link.send_report(
                    data.targeted,
                    data.publisher.agent(),
                    data.subject.as_str(),
                    content,
                    targets,
                );
                result = result.and(sent);
            }
            result
        });
        sent.unwrap_or_else(|e| {
            tracing::error!(publisher = %data.publisher, subject = %data.subject, "report not sent to remote subscribers: {e}");
            Ok(())
        })
    }
}

impl WireFailure {
    pub(crate) fn from_failure(f: Failure) -> Self {
        WireFailure {
            code: f.code.0,
            description: f.description,
            origin: f.origin,
            details: f.details,
        }
    }

    /// The same failure with its texts cut short (at a character boundary) to fit a frame
    /// of `max` bytes: a quarter each for the description and the details, an eighth for the
    /// origin.
    pub(crate) fn shortened(mut self, max: usize) -> Self {
        fn cut(text: &mut String, len: usize) {
            if text.len() > len {
                let at = (0..=len)
                    .rev()
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(0);
                text.truncate(at);
            }
        }
        cut(&mut self.description, max / 4);
        cut(&mut self.details, max / 4);
        cut(&mut self.origin, max / 8);
        self
    }

    pub(crate) fn into_failure(self) -> Failure {
        Failure {
            code: ErrorCode(self.code),
            description: self.description,
            origin: self.origin,
            details: self.details,
            conversation: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize) -> Vec<u8> {
        let mut f = (len as u32).to_be_bytes().to_vec();
        f.resize(4 + len, 14);
        f
    }

    #[test]
    fn a_shortened_failure_fits_and_cuts_at_character_boundaries() {
        let f = WireFailure {
            code: 7,
            description: "é".repeat(100),
            origin: "o".repeat(100),
            details: "ab".into(),
        };
        let short = f.shortened(101);
        assert_eq!(short.code, 7);
        assert_eq!(
            short.description,
            "é".repeat(12),
            "25 bytes allowed: 12 two-byte characters"
        );
        assert_eq!((short.origin.len(), short.details.as_str()), (12, "ab"));
    }

    #[test]
    fn relayed_frames_are_held_to_this_links_size_cap() {
        let limits = (1 << 20, 8, std::time::Duration::from_secs(1));
        let link = Link::new(Net::new(), None, true, limits, Arc::default());
        assert!(link.send_raw(&frame(8), false, "Request").is_ok());
        assert!(matches!(
            link.send_raw(&frame(9), false, "Request"),
            Err(Refused::Full)
        ));
        assert!(matches!(
            link.send_raw(&frame(9), true, "Report"),
            Err(Refused::Full)
        ));
        // Only the frame that fits was queued, and the link stays open.
        let out = link.lock();
        assert_eq!((out.buf.len(), out.frames, out.closed), (12, 1, false));
    }
}
