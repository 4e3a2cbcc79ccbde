//! The sending side of one connection: frames are encoded straight into a bounded buffer,
//! and a write loop writes whatever has accumulated in one `write_all`.
//!
//! The slow-consumer policy lives here, in bytes: reports are dropped once the buffer holds
//! [`LinkLimits::outbound`]; other frames have a headroom of half that again, and one that
//! does not fit means the peer stopped reading while the protocol needs it to: the link is
//! closed. A peer that reads, however slowly, is never taken for one that stopped: the write
//! loop fails only when a write makes no progress at all for [`LinkLimits::stall`].
//! Reports for conflated subscriptions are kept aside rather than dropped (see
//! [`super::conflation`]).
//!
//! Reports published while a service's task runs are gathered per thread before they go in
//! (see [`gathering`]): a publisher sending a burst takes a link's lock once per 16 KiB of
//! reports, not once per report, with the per-report policy unchanged.
//!
//! A relay's batch of reports that finds nothing queued or being written before it is
//! written to a plaintext socket by the relaying thread itself ([`Outbound::relay_reports`]):
//! copied once, into the socket, instead of into the buffer and then into the socket.

use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

use super::conflation::{Conflation, Offered};
use crate::ids::AgentId;
use crate::wire::{
    encode_frame, encode_report_spliced, split_frame, CodecError, Frame, ReportView, TargetView,
};

/// The bounds of one link's sending side.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinkLimits {
    /// Bytes of reports the outbound buffer holds before reports are dropped.
    pub(crate) outbound: usize,
    /// The cap on one frame's size.
    pub(crate) max_frame: usize,
    /// How long a write may make no progress before the peer is taken to have stopped reading.
    pub(crate) stall: Duration,
}

/// Why a frame was not queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SendError {
    /// The link is closed (or has just been closed because its peer stopped reading).
    Closed,
    /// The outbound buffer is full: a report was dropped.
    BufferFull,
    /// The frame is larger than the link's frame size cap.
    TooLarge {
        /// The cap.
        max: usize,
    },
    /// The frame could not be encoded.
    Unencodable(String),
}

/// Whether a frame may be dropped when the buffer is full (a report) or must get through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameClass {
    /// Dropped at the outbound limit.
    Report,
    /// Given headroom above the limit; over that, the link is closed.
    Control,
}

/// Counters of one exchange, shared by its links.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) frames_sent: AtomicU64,
    pub(crate) reports_sent: AtomicU64,
    pub(crate) reports_dropped: AtomicU64,
    /// Reports a link kept aside for a conflated subscription and then replaced by a later
    /// one (see [`super::conflation`]).
    pub(crate) reports_conflated: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
}

/// One link's outbound traffic so far (see [`Outbound::written`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Written {
    pub(crate) frames: u64,
    pub(crate) bytes: u64,
    pub(crate) reports_dropped: u64,
    pub(crate) reports_conflated: u64,
}

struct Buffer {
    buf: BytesMut,
    closed: bool,
    /// Closed because the peer did not read: the writer fails rather than flush.
    overflowed: bool,
    /// The writer holds bytes taken from `buf` that it may not have written yet: nothing may
    /// be written to the socket past them.
    writing: bool,
    /// Frames and report frames in `buf`, added to the exchange's counters when written (one
    /// shared-counter update per write rather than per frame).
    frames: u64,
    reports: u64,
    /// Conflated subscriptions behind the link, and the reports kept aside for them.
    conflation: Conflation,
}

/// Called by the write loop after it wrote the buffer out, while [`Outbound::set_backlog`] says
/// frames are waiting to be queued as the link drains.
type DrainedHook = Box<dyn Fn(&Outbound) + Send + Sync>;

struct Shared {
    id: u64,
    counters: Arc<Counters>,
    limits: LinkLimits,
    out: Mutex<Buffer>,
    wake: Notify,
    dropped_reports: AtomicU64,
    conflated_reports: AtomicU64,
    /// This link's own share of the exchange's counters: frames and bytes written.
    frames_written: AtomicU64,
    bytes_written: AtomicU64,
    sent_since_tick: AtomicBool,
    on_drained: OnceLock<DrainedHook>,
    /// Whether `on_drained` has frames waiting for this link.
    has_backlog: AtomicBool,
    /// A second handle on the plaintext socket ([`Outbound::write_directly`]): the writer's
    /// progress probe, and [`Outbound::relay_reports`]'s direct writes.
    direct: OnceLock<std::net::TcpStream>,
}

/// A written buffer larger than this is not kept for reuse (after a burst to a slow peer).
const KEEP_CAPACITY: usize = 1024 * 1024;

/// The sending side of one connection. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Outbound(Arc<Shared>);

static NEXT_LINK: AtomicU64 = AtomicU64::new(1);

impl Outbound {
    pub(crate) fn new(limits: LinkLimits, counters: Arc<Counters>) -> Outbound {
        Outbound(Arc::new(Shared {
            id: NEXT_LINK.fetch_add(1, Ordering::Relaxed),
            counters,
            limits,
            out: Mutex::new(Buffer {
                buf: BytesMut::with_capacity(64 * 1024),
                closed: false,
                overflowed: false,
                writing: false,
                frames: 0,
                reports: 0,
                conflation: Conflation::default(),
            }),
            wake: Notify::new(),
            dropped_reports: AtomicU64::new(0),
            conflated_reports: AtomicU64::new(0),
            frames_written: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            sent_since_tick: AtomicBool::new(false),
            on_drained: OnceLock::new(),
            has_backlog: AtomicBool::new(false),
            direct: OnceLock::new(),
        }))
    }

    /// Gives the link a second handle on its (plaintext) socket, written to without waiting
    /// for the socket to be reported writable: by the writer when a write has waited a while
    /// (see [`Outbound::write_loop`]), and for relayed batches of reports found with nothing
    /// queued before them (see [`Outbound::relay_reports`]).
    pub(crate) fn write_directly(&self, socket: std::net::TcpStream) {
        let _ = self.0.direct.set(socket);
    }

    /// What this link has written so far: frames and bytes handed to the socket, and reports
    /// dropped because its buffer was full.
    pub(crate) fn written(&self) -> Written {
        Written {
            frames: self.0.frames_written.load(Ordering::Relaxed),
            bytes: self.0.bytes_written.load(Ordering::Relaxed),
            reports_dropped: self.0.dropped_reports.load(Ordering::Relaxed),
            reports_conflated: self.0.conflated_reports.load(Ordering::Relaxed),
        }
    }

    /// Whether both handles are the same link.
    pub(crate) fn same(&self, other: &Outbound) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buffer> {
        // Whatever this thread gathered for the link goes in before anything else is done
        // with it: a frame queued after a report is written after it.
        if let Some(gathered) = Gathered::take_if(|link| link.same(self)) {
            gathered.queue();
        }
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

    /// The cap on one frame's size on this link.
    pub(crate) fn max_frame(&self) -> usize {
        self.0.limits.max_frame
    }

    /// The outbound limit (see the slow-consumer policy).
    pub(crate) fn limit(&self) -> usize {
        self.0.limits.outbound
    }

    /// Bytes queued and not yet taken by the writer.
    pub(crate) fn queued(&self) -> usize {
        self.lock().buf.len()
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
    pub(crate) fn send_frame(&self, frame: &Frame) -> Result<(), SendError> {
        let class = match frame {
            Frame::Report(_) | Frame::TargetedReport(_) | Frame::ConflatedReport { .. } => {
                FrameClass::Report
            }
            _ => FrameClass::Control,
        };
        let max = self.max_frame();
        self.queue(class, frame.kind(), |buf| encode_frame(frame, buf, max))
    }

    /// Sends a received report ([`crate::wire::ReportView::head`]) to the listed subscribers
    /// behind this link, without encoding its content again.
    pub(crate) fn send_report_head<'t>(
        &self,
        view: &ReportView<'_>,
        targets: impl ExactSizeIterator<Item = TargetView<'t>>,
    ) -> Result<(), SendError> {
        let max = self.max_frame();
        self.queue(FrameClass::Report, "Report", |buf| {
            encode_report_spliced(view.head, targets, view.conflated, buf, max)
        })
    }

    /// Conflates the reports for `subscriber` (an agent behind this link) matched by
    /// `pattern` while this link's buffer is full, rather than drop them (see
    /// [`super::conflation`]). Refused, with a log line, past
    /// [`MAX_CONFLATED`](super::conflation::MAX_CONFLATED) subscriptions on one link.
    pub(crate) fn conflate(&self, subscriber: AgentId, pattern: &str) {
        if !self.lock().conflation.conflate(subscriber, pattern) {
            tracing::warn!(link = self.0.id, %subscriber, "too many conflated subscriptions on one link: this one's reports are dropped, not conflated, when the link is full");
        }
    }

    /// Ends the conflation of `subscriber`'s `pattern`, or of all its patterns (`None`).
    pub(crate) fn unconflate(&self, subscriber: AgentId, pattern: Option<&str>) {
        self.lock().conflation.unconflate(subscriber, pattern);
    }

    /// Queues a received frame (header included) as it is.
    /// The frame was accepted under the receiving exchange's size cap, which may be larger
    /// than this link's: it is checked again, as an encoded frame would be.
    pub(crate) fn send_raw(
        &self,
        frame: &[u8],
        class: FrameClass,
        kind: &str,
    ) -> Result<(), SendError> {
        let max = self.max_frame();
        self.queue(class, kind, |buf| {
            let len = frame.len().saturating_sub(4);
            if len > max {
                return Err(CodecError::TooLarge { len, max });
            }
            buf.extend_from_slice(frame);
            Ok(())
        })
    }

    /// Queues `count` report frames a relay gathered for this link while it handled one
    /// chunk (complete frames, headers included, each within [`Outbound::max_frame`]), in
    /// order and under one lock. Each is treated as [`Outbound::queue`] treats a report:
    /// those that find the buffer below the limit go in together; the others, kept aside for
    /// a conflated subscription or dropped, one by one.
    pub(crate) fn queue_reports(&self, frames: &[u8], count: u64) {
        self.queue_reports_or_write(frames, count, false)
    }

    /// [`Outbound::queue_reports`] for a relay: a batch found with nothing before it is
    /// written to the socket at once (see [`Outbound::write_now`]).
    pub(crate) fn relay_reports(&self, frames: &[u8], count: u64) {
        self.queue_reports_or_write(frames, count, true)
    }

    fn queue_reports_or_write(&self, frames: &[u8], count: u64, now: bool) {
        let mut out = self.lock();
        if out.closed {
            return;
        }
        let limit = self.0.limits.outbound;
        // Each frame goes in if the buffer is below the limit before it: all of them when all
        // fit; else those before the one that reaches it.
        let (fitting, fit) = if out.buf.len() + frames.len() <= limit {
            (frames.len(), count)
        } else {
            let room = limit.saturating_sub(out.buf.len());
            let (mut fitting, mut fit) = (0, 0);
            while fitting < room {
                match split_frame(&frames[fitting..]) {
                    Some((frame, _, _)) => fitting += frame.len(),
                    None => break,
                }
                fit += 1;
            }
            (fitting, fit)
        };
        let was_empty = out.buf.is_empty();
        let direct = if now && was_empty && fit == count {
            self.write_now(&out, frames, count)
        } else {
            0
        };
        if direct < frames.len() {
            out.buf.extend_from_slice(&frames[direct..fitting]);
            out.frames += fit;
            out.reports += fit;
        }
        drop(out);
        if fit > 0 {
            self.0.sent_since_tick.store(true, Ordering::Relaxed);
            if was_empty && direct < frames.len() {
                self.0.wake.notify_one();
            }
        }
        let mut rest = &frames[fitting..];
        while let Some((frame, _, more)) = split_frame(rest) {
            let _ = self.send_raw(frame, FrameClass::Report, "Report");
            rest = more;
        }
    }

    /// Writes `frames` to the socket at once, from this thread, when the link has a handle
    /// for it ([`Outbound::write_directly`]), they are at least [`DIRECT_BYTES`], and
    /// nothing is queued or being written before them; returns how many bytes were written
    /// (the rest, if any, is for the writer). A relay passing a chunk's reports on so copies
    /// them once, into the socket, rather than into the buffer first and then into the
    /// socket; the write is the one the writer would have made after the chunk. `out` is
    /// the link's buffer, locked, and empty; it stays locked during the write, so that
    /// nothing is queued behind bytes not yet written.
    fn write_now(&self, out: &Buffer, frames: &[u8], count: u64) -> usize {
        use std::io::Write;
        if frames.len() < DIRECT_BYTES || out.writing || out.conflation.pending() {
            return 0;
        }
        let Some(mut socket) = self.0.direct.get() else {
            return 0;
        };
        // Would block, or failed: the writer writes them, and meets any failure itself.
        let Ok(n) = socket.write(frames) else {
            return 0;
        };
        super::idle::io_done();
        // All of them, or counted with the rest when it is written.
        let sent = if n == frames.len() { count } else { 0 };
        self.count_written(sent, sent, n);
        n
    }

    /// Adds what was written to this link's and the exchange's counters.
    fn count_written(&self, frames: u64, reports: u64, bytes: usize) {
        let counters = &self.0.counters;
        if frames > 0 {
            counters.frames_sent.fetch_add(frames, Ordering::Relaxed);
            counters.reports_sent.fetch_add(reports, Ordering::Relaxed);
            self.0.frames_written.fetch_add(frames, Ordering::Relaxed);
        }
        if bytes > 0 {
            let bytes = bytes as u64;
            counters.bytes_written.fetch_add(bytes, Ordering::Relaxed);
            self.0.bytes_written.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Queues one report frame written by `write`, as [`Outbound::queue`] does; while this
    /// thread is [`gathering`], it is gathered with the reports after it instead, and queued
    /// with them (under one lock, the policy applied to each as it goes in: see
    /// [`Outbound::queue_reports`]) at the end, past 16 KiB, when a report goes to another
    /// link, or before anything else is done with this link on this thread. A gathered
    /// report's refusal (dropped, the link closed) is not reported; one that cannot be
    /// encoded is, at once.
    pub(crate) fn queue_report(
        &self,
        write: impl FnOnce(&mut BytesMut) -> Result<(), CodecError>,
    ) -> Result<(), SendError> {
        const KIND: &str = "Report";
        // Not gathering (or the thread is ending): queued now.
        if DEPTH.get() == 0 || GATHERING.try_with(|_| ()).is_err() {
            return self.queue(FrameClass::Report, KIND, write);
        }
        // Another link's reports go in first.
        if let Some(other) = Gathered::take_if(|link| !link.same(self)) {
            other.queue();
        }
        // The error, if any, is left beside the flag: the usual case moves nothing through
        // memory.
        let mut failed = None;
        let full = GATHERING.with(|g| {
            let mut g = g.borrow_mut();
            let start = g.buf.len();
            match write(&mut g.buf) {
                Ok(()) => {
                    if g.link.is_none() {
                        g.link = Some(self.clone());
                        PENDING.set(true);
                    }
                    g.count += 1;
                    g.buf.len() >= GATHERED_BYTES
                }
                Err(e) => {
                    g.buf.truncate(start);
                    failed = Some(e);
                    false
                }
            }
        });
        if let Some(e) = failed {
            return Err(self.unsendable(KIND, e));
        }
        if full {
            if let Some(gathered) = Gathered::take_if(|link| link.same(self)) {
                gathered.queue();
            }
        }
        Ok(())
    }

    /// Appends one frame with `write` under the outbound limit policy.
    pub(crate) fn queue(
        &self,
        class: FrameClass,
        kind: &str,
        write: impl FnOnce(&mut BytesMut) -> Result<(), CodecError>,
    ) -> Result<(), SendError> {
        let out = self.lock();
        if out.closed {
            return Err(SendError::Closed);
        }
        let limit = self.0.limits.outbound;
        // Reports are dropped at the limit; other frames have headroom above it (half the
        // limit again), so that a slow reader whose buffer is full of reports still gets
        // its notices and answers; past that, the peer is not reading at all.
        let allowed = match class {
            FrameClass::Report => limit,
            FrameClass::Control => limit.saturating_add(limit / 2),
        };
        let full = out.buf.len() >= allowed;
        if full && class == FrameClass::Report && out.conflation.active() {
            return self.queue_conflating(out, kind, write);
        }
        self.queue_ordinary(out, class, kind, full, write)
    }

    /// [`Outbound::queue`] for a report on a link with conflated subscriptions while its
    /// buffer is full: the report, written on its own, is offered to the link's
    /// [`Conflation`] first.
    fn queue_conflating(
        &self,
        mut out: std::sync::MutexGuard<'_, Buffer>,
        kind: &str,
        write: impl FnOnce(&mut BytesMut) -> Result<(), CodecError>,
    ) -> Result<(), SendError> {
        let mut frame = BytesMut::new();
        let offered = write(&mut frame).and_then(|()| {
            let bounds = (self.0.limits.max_frame, self.0.limits.outbound);
            out.conflation.offer(&frame, bounds)
        });
        let offered = match offered {
            Ok(Some(offered)) => offered,
            // None of its targets is conflated: the ordinary policy (dropped, the buffer is
            // full).
            Ok(None) => {
                return self.queue_ordinary(out, FrameClass::Report, kind, true, |_| Ok(()))
            }
            Err(e) => return Err(self.unsendable(kind, e)),
        };
        let Offered { aside, dropped } = offered;
        let counters = &self.0.counters;
        if let Some(replaced) = aside.filter(|&n| n > 0) {
            counters.reports_conflated.fetch_add(1, Ordering::Relaxed);
            self.0.conflated_reports.fetch_add(1, Ordering::Relaxed);
            if replaced.is_power_of_two() {
                tracing::debug!(
                    link = self.0.id,
                    replaced,
                    "outbound buffer full: conflating reports for a slow peer"
                );
            }
        }
        drop(out);
        // The writer takes what is aside with the buffer at its next turn (it is busy: the
        // buffer is full; woken anyway, it costs nothing).
        self.0.sent_since_tick.store(true, Ordering::Relaxed);
        self.0.wake.notify_one();
        if dropped {
            self.count_dropped();
            return Err(SendError::BufferFull);
        }
        Ok(())
    }

    /// Counts a dropped report, with a log line at powers of two.
    fn count_dropped(&self) {
        self.0
            .counters
            .reports_dropped
            .fetch_add(1, Ordering::Relaxed);
        let dropped = self.0.dropped_reports.fetch_add(1, Ordering::Relaxed) + 1;
        if dropped.is_power_of_two() {
            let limit = self.0.limits.outbound;
            tracing::warn!(
                link = self.0.id,
                dropped,
                limit,
                "outbound buffer full: dropping reports for a slow peer"
            );
        }
    }

    /// The error for a frame that could not be written, logged.
    fn unsendable(&self, kind: &str, e: CodecError) -> SendError {
        tracing::error!(link = self.0.id, frame = kind, "cannot send frame: {e}");
        match e {
            CodecError::TooLarge { max, .. } => SendError::TooLarge { max },
            other => SendError::Unencodable(other.to_string()),
        }
    }

    /// [`Outbound::queue`] for a frame no conflated subscription takes.
    fn queue_ordinary(
        &self,
        mut out: std::sync::MutexGuard<'_, Buffer>,
        class: FrameClass,
        kind: &str,
        full: bool,
        write: impl FnOnce(&mut BytesMut) -> Result<(), CodecError>,
    ) -> Result<(), SendError> {
        {
            if full {
                if class == FrameClass::Report {
                    drop(out);
                    self.count_dropped();
                    return Err(SendError::BufferFull);
                }
                let limit = self.0.limits.outbound;
                tracing::error!(
                    link = self.0.id,
                    limit,
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
                return Err(SendError::Closed);
            }
            let was_empty = out.buf.is_empty();
            if let Err(e) = write(&mut out.buf) {
                return Err(self.unsendable(kind, e));
            }
            out.frames += 1;
            out.reports += u64::from(class == FrameClass::Report);
            if !was_empty {
                return Ok(());
            }
        }
        self.0.sent_since_tick.store(true, Ordering::Relaxed);
        self.0.wake.notify_one();
        Ok(())
    }

    /// What the write loop calls after writing the buffer out while frames wait for room
    /// (see [`Outbound::set_backlog`]). Set once.
    pub(crate) fn on_drained(&self, hook: impl Fn(&Outbound) + Send + Sync + 'static) {
        let _ = self.0.on_drained.set(Box::new(hook));
    }

    /// Whether frames wait to be queued on this link as it drains (its writer calls the
    /// [`Outbound::on_drained`] hook each time it has written the buffer out).
    pub(crate) fn set_backlog(&self, waiting: bool) {
        self.0.has_backlog.store(waiting, Ordering::Release);
    }

    /// Whether frames wait to be queued on this link as it drains.
    pub(crate) fn has_backlog(&self) -> bool {
        self.0.has_backlog.load(Ordering::Acquire)
    }

    /// Swaps what is queued into `chunk` (empty), followed by the reports kept aside for
    /// conflated subscriptions; returns whether the link is closed and overflowed, and the
    /// frames and reports taken.
    fn take_for_write(&self, chunk: &mut BytesMut) -> (bool, bool, u64, u64) {
        let mut out = self.lock();
        std::mem::swap(&mut out.buf, chunk);
        if out.conflation.pending() {
            // After what was queued while they were kept aside.
            let kept = out.conflation.flush_into(chunk, self.0.limits.max_frame);
            out.frames += kept;
            out.reports += kept;
        }
        // Until its next turn, nothing is written past what it took.
        out.writing = !chunk.is_empty();
        (
            out.closed,
            out.overflowed,
            std::mem::take(&mut out.frames),
            std::mem::take(&mut out.reports),
        )
    }

    /// Takes what is queued, as the writer would (tests).
    #[cfg(test)]
    pub(crate) fn take_queued(&self) -> Vec<Frame> {
        let mut buf = BytesMut::new();
        self.take_for_write(&mut buf);
        let mut rest = &buf[..];
        let mut frames = Vec::new();
        while let Some((_, body, next)) = crate::wire::split_frame(rest) {
            frames.push(crate::wire::decode_frame(body).expect("frames queued decode"));
            rest = next;
        }
        frames
    }

    /// Writes queued frames until the link is closed (after a final flush) or the socket fails.
    /// A write that makes no progress for the stall limit means the peer stopped reading: the
    /// link fails (memory stays bounded by the outbound limit meanwhile).
    ///
    /// The link's second handle on a plaintext socket ([`Outbound::write_directly`]) is
    /// written to directly (without waiting for the socket to be reported writable) when a
    /// write has waited a while: the kernel reports a full socket writable again only once a
    /// third of its buffer has drained, which for a peer reading slowly can take far longer
    /// than the stall limit although it reads all along; a direct write finds any space its
    /// reading has made.
    pub(crate) async fn write_loop<W: AsyncWrite + Unpin>(
        &self,
        mut sink: W,
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
            let (closed, overflowed, frames, reports) = self.take_for_write(&mut chunk);
            if overflowed {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    "peer is not reading: outbound buffer over its limit",
                ));
            }
            self.count_written(frames, reports, 0);
            if !chunk.is_empty() {
                let stall = self.0.limits.stall;
                let written = match flush_by
                    .or_else(|| closed.then(|| tokio::time::Instant::now() + stall))
                {
                    Some(deadline) => {
                        flush_by = Some(deadline);
                        let write = self.write_all(&mut sink, &chunk);
                        tokio::time::timeout_at(deadline, write)
                            .await
                            .unwrap_or_else(|_| {
                                Err(std::io::Error::new(
                                    std::io::ErrorKind::TimedOut,
                                    "closing: the peer did not take the last frames in time",
                                ))
                            })
                    }
                    None => self.write_all(&mut sink, &chunk).await,
                };
                if let Err(e) = written {
                    self.discard();
                    return Err(e);
                }
                self.count_written(0, 0, chunk.len());
                if self.has_backlog() {
                    if let Some(hook) = self.0.on_drained.get() {
                        hook(self);
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

    /// Writes all of `bytes`, failing when no byte could be written for the stall limit: a
    /// peer that reads, however slowly, is never cut off; one that stopped reading is.
    async fn write_all<W: AsyncWrite + Unpin>(
        &self,
        sink: &mut W,
        mut bytes: &[u8],
    ) -> std::io::Result<()> {
        use std::io::Write;
        let probe = self.0.direct.get();
        let limit = self.0.limits.stall;
        let step = (limit / 8).max(Duration::from_millis(1));
        // Time without progress, counted per attempt and at most two steps each: a stall of
        // this process (a stop, a busy host) is not blamed on the peer.
        let mut stalled = Duration::ZERO;
        while !bytes.is_empty() {
            // First without the clock (and its timer): a socket with room takes the bytes at
            // once, and only a write that waits is timed.
            let at_once =
                std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *sink).poll_write(cx, bytes)));
            let written = match at_once.await {
                Poll::Ready(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
                Poll::Ready(written) => written?,
                Poll::Pending => {
                    let attempt = tokio::time::Instant::now();
                    let written = match tokio::time::timeout(step, sink.write(bytes)).await {
                        Ok(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
                        Ok(written) => written?,
                        // Not reported writable for a while: try the socket directly.
                        Err(_) => match probe.map(|mut p| p.write(bytes)) {
                            Some(Ok(n)) => n,
                            Some(Err(e)) if e.kind() != std::io::ErrorKind::WouldBlock => {
                                return Err(e)
                            }
                            _ => 0,
                        },
                    };
                    if written == 0 {
                        stalled += attempt.elapsed().min(step * 2);
                    }
                    written
                }
            };
            if written > 0 {
                super::idle::io_done();
                bytes = &bytes[written..];
                stalled = Duration::ZERO;
            } else if stalled >= limit {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("peer stopped reading: no write progress for {limit:?}"),
                ));
            }
        }
        Ok(())
    }
}

/// Fewest bytes of reports [`Outbound::queue_reports`] writes to the socket at once (fewer
/// wait for the writer, with whatever else is queued after them).
const DIRECT_BYTES: usize = 16 * 1024;

/// Most bytes of reports a thread gathers for a link before queuing them.
const GATHERED_BYTES: usize = 16 * 1024;

/// The reports this thread gathered for one link (see [`gathering`]).
#[derive(Default)]
struct Gathering {
    link: Option<Outbound>,
    buf: BytesMut,
    count: u64,
}

thread_local! {
    static GATHERING: RefCell<Gathering> = RefCell::new(Gathering::default());
    /// Nested [`gathering`] scopes open on this thread: reports are gathered while above 0.
    /// Kept apart, as is [`PENDING`], in a cell with nothing to drop: what every poll of a
    /// service's task and every lock of a link check costs a load.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// Whether `GATHERING` holds reports.
    static PENDING: Cell<bool> = const { Cell::new(false) };
}

/// Reports taken from this thread's gathering, to be queued on their link.
struct Gathered {
    link: Outbound,
    buf: BytesMut,
    count: u64,
}

impl Gathering {
    /// What is gathered, taken out (leaving the scope open).
    fn take(&mut self) -> Option<Gathered> {
        let link = self.link.take()?;
        PENDING.set(false);
        Some(Gathered {
            link,
            buf: std::mem::take(&mut self.buf),
            count: std::mem::take(&mut self.count),
        })
    }
}

impl Gathered {
    /// What this thread gathered, if anything and if its link is one `wanted`, taken out.
    fn take_if(wanted: impl FnOnce(&Outbound) -> bool) -> Option<Gathered> {
        if !PENDING.get() {
            return None;
        }
        GATHERING
            .try_with(|g| {
                let mut g = g.borrow_mut();
                match &g.link {
                    Some(link) if wanted(link) => g.take(),
                    _ => None,
                }
            })
            .ok()
            .flatten()
    }

    /// Queues the reports on their link, and gives the buffer back for the next ones.
    fn queue(self) {
        let Gathered {
            link,
            mut buf,
            count,
        } = self;
        link.queue_reports(&buf, count);
        buf.clear();
        if buf.capacity() <= KEEP_CAPACITY {
            let _ = GATHERING.try_with(|g| {
                let mut g = g.borrow_mut();
                if g.buf.capacity() == 0 {
                    g.buf = buf;
                }
            });
        }
    }
}

/// Runs `f` with this thread gathering the reports it queues (see
/// [`Outbound::queue_report`]), and queues them when the outermost scope ends (even by a
/// panic). A service's task runs each poll so: what its handlers publish in one turn goes
/// to each link under one lock.
#[inline]
pub(crate) fn gathering<R>(f: impl FnOnce() -> R) -> R {
    /// Ends a scope when dropped.
    struct Scope;
    impl Drop for Scope {
        #[inline]
        fn drop(&mut self) {
            let depth = DEPTH.get() - 1;
            DEPTH.set(depth);
            if depth == 0 && PENDING.get() {
                queue_gathered();
            }
        }
    }
    /// Queues what the thread gathered (out of line: most turns of most services publish
    /// nothing to another process).
    #[cold]
    #[inline(never)]
    fn queue_gathered() {
        let gathered = GATHERING.try_with(|g| g.borrow_mut().take()).ok().flatten();
        if let Some(gathered) = gathered {
            gathered.queue();
        }
    }
    DEPTH.set(DEPTH.get() + 1);
    let _scope = Scope;
    f()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Limits for links made in tests.
    pub(crate) fn limits(outbound: usize, max_frame: usize) -> LinkLimits {
        LinkLimits {
            outbound,
            max_frame,
            stall: Duration::from_secs(1),
        }
    }

    fn frame(len: usize) -> Vec<u8> {
        let mut f = (len as u32).to_be_bytes().to_vec();
        f.resize(4 + len, 14);
        f
    }

    #[test]
    fn relayed_frames_are_held_to_this_links_size_cap() {
        let link = Outbound::new(limits(1 << 20, 8), Arc::default());
        assert!(link
            .send_raw(&frame(8), FrameClass::Control, "Request")
            .is_ok());
        assert_eq!(
            link.send_raw(&frame(9), FrameClass::Control, "Request"),
            Err(SendError::TooLarge { max: 8 })
        );
        assert_eq!(
            link.send_raw(&frame(9), FrameClass::Report, "Report"),
            Err(SendError::TooLarge { max: 8 })
        );
        // Only the frame that fits was queued, and the link stays open.
        let out = link.lock();
        assert_eq!((out.buf.len(), out.frames, out.closed), (12, 1, false));
    }

    fn agent(n: u8) -> AgentId {
        AgentId::from_uuid(uuid::Uuid::from_bytes([n; 16]))
    }

    /// A report of `value` on `subject` for `targets` (subscriber, pattern).
    fn report(subject: &str, value: u8, targets: &[(u8, &str)]) -> Frame {
        Frame::Report(crate::wire::ReportFrame {
            publisher: agent(1),
            subject: subject.into(),
            content: crate::wire::WirePayload {
                format: crate::payload::Format::Bincode,
                type_name: "u8".into(),
                bytes: bytes::Bytes::from(vec![value]),
            },
            targets: targets
                .iter()
                .map(|&(s, p)| crate::wire::ReportTarget {
                    subscriber: agent(s),
                    pattern: Some(p.into()),
                })
                .collect(),
        })
    }

    /// (subject, value, subscribers, conflated count) of each queued report.
    fn reports(frames: Vec<Frame>) -> Vec<(String, u8, Vec<AgentId>, u64)> {
        frames
            .into_iter()
            .map(|f| {
                let (r, n) = match f {
                    Frame::Report(r) => (r, 0),
                    Frame::ConflatedReport { report, conflated } => (report, conflated),
                    other => panic!("{} queued", other.kind()),
                };
                let to = r.targets.iter().map(|t| t.subscriber).collect();
                (r.subject, r.content.bytes[0], to, n)
            })
            .collect()
    }

    #[test]
    fn a_full_link_keeps_the_latest_report_per_subject_for_conflated_subscriptions() {
        // Room for about three reports.
        let link = Outbound::new(limits(200, 4096), Arc::default());
        link.conflate(agent(2), "s.*");
        for value in 0..20u8 {
            let subject = format!("s.{}", value % 2);
            assert!(link
                .send_frame(&report(&subject, value, &[(2, "s.*")]))
                .is_ok());
        }
        let got = reports(link.take_queued());
        let queued = got.iter().filter(|r| r.3 == 0 && r.1 < 4).count();
        assert!((2..=4).contains(&queued), "{got:?}");
        // What did not fit was kept aside: the last value of each subject, after what was
        // queued, standing for every report it replaced.
        let tail: Vec<_> = got[got.len() - 2..]
            .iter()
            .map(|r| (r.0.as_str(), r.1))
            .collect();
        assert_eq!(tail, [("s.0", 18), ("s.1", 19)]);
        let stood_for: u64 = got.iter().map(|r| 1 + r.3).sum();
        assert_eq!(
            stood_for, 20,
            "every report is delivered or counted: {got:?}"
        );
        for subject in ["s.0", "s.1"] {
            let values: Vec<u8> = got.iter().filter(|r| r.0 == subject).map(|r| r.1).collect();
            assert!(
                values.windows(2).all(|w| w[0] < w[1]),
                "order of {subject}: {values:?}"
            );
        }
        assert_eq!(link.written().reports_dropped, 0);
        assert!(link.written().reports_conflated > 0);
        // With room again, reports are queued as they come.
        link.send_frame(&report("s.0", 30, &[(2, "s.*")])).unwrap();
        assert_eq!(
            reports(link.take_queued()),
            [("s.0".into(), 30, vec![agent(2)], 0)]
        );
    }

    /// `n` reports on subjects `b<batch>.<i>`, encoded back to back as a relay gathers them.
    fn batch(batch: usize, n: usize) -> (Vec<u8>, u64) {
        let frames: Vec<Frame> = (0..n)
            .map(|i| report(&format!("b{batch}.{i}"), 0, &[(2, "b.*")]))
            .collect();
        gathered(&frames)
    }

    /// A peer reading a socket as far as it is told ([`Peer::read_to`]), from a thread.
    struct Peer {
        target: Arc<AtomicU64>,
        read: Arc<AtomicU64>,
        thread: std::thread::JoinHandle<Vec<u8>>,
    }

    impl Peer {
        fn start(mut socket: std::net::TcpStream) -> Peer {
            use std::io::Read;
            let (target, read) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
            let (t, r) = (target.clone(), read.clone());
            let thread = std::thread::spawn(move || {
                let mut all = Vec::new();
                let mut chunk = [0; 4096];
                loop {
                    let want = t.load(Ordering::Acquire).saturating_sub(all.len() as u64);
                    if want == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    let n = want.min(chunk.len() as u64) as usize;
                    match socket.read(&mut chunk[..n]).unwrap() {
                        0 => return all,
                        n => all.extend_from_slice(&chunk[..n]),
                    }
                    r.store(all.len() as u64, Ordering::Release);
                }
            });
            Peer {
                target,
                read,
                thread,
            }
        }

        /// Reads until `bytes` were read in all, and waits for it (blocking this thread: a
        /// task of the caller's runtime does not run meanwhile).
        fn read_to(&self, bytes: u64) {
            self.target.store(bytes, Ordering::Release);
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while self.read.load(Ordering::Acquire) < bytes {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the peer got too little"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Relayed batches found with nothing queued or being written before them are written to
    /// the socket by the relaying thread itself, at once. Frames queued before and after
    /// them, a batch the socket takes only part of, and a batch relayed while the writer holds
    /// bytes it has not written (which waits, although the socket has room) still reach the
    /// peer in order, each counted once.
    #[tokio::test]
    async fn relayed_batches_are_written_at_once_and_in_order() {
        // A send buffer of a fixed size, far below the largest batch.
        let listening = tokio::net::TcpSocket::new_v4().unwrap();
        listening.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = listening.listen(1).unwrap();
        let connecting = tokio::net::TcpSocket::new_v4().unwrap();
        connecting.set_send_buffer_size(64 * 1024).unwrap();
        let socket = connecting
            .connect(listener.local_addr().unwrap())
            .await
            .unwrap()
            .into_std()
            .unwrap();
        let peer = listener.accept().await.unwrap().0.into_std().unwrap();
        peer.set_nonblocking(false).unwrap();
        let peer = Peer::start(peer);
        let link = Outbound::new(limits(64 << 20, 1 << 20), Arc::default());
        link.write_directly(socket.try_clone().unwrap());
        let sink = tokio::net::TcpStream::from_std(socket).unwrap();
        let writer = tokio::spawn({
            let link = link.clone();
            async move { link.write_loop(sink).await }
        });
        let bytes = |link: &Outbound| link.written().bytes;
        let settle = || async {
            for _ in 0..20 {
                tokio::task::yield_now().await;
            }
        };
        // Behind a queued frame: queued too, for the writer.
        let (first, n1) = batch(1, 300);
        link.send_frame(&Frame::Heartbeat).unwrap();
        link.relay_reports(&first, n1);
        assert_eq!(bytes(&link), 0, "nothing written before the writer's turn");
        let mut total = first.len() as u64 + 5;
        while bytes(&link) < total {
            tokio::task::yield_now().await;
        }
        peer.read_to(total);
        // The writer has nothing left: the next batch goes to the socket at once, before
        // this task lets the writer run.
        settle().await;
        let (second, n2) = batch(2, 300);
        link.relay_reports(&second, n2);
        total += second.len() as u64;
        assert_eq!(bytes(&link), total, "written at once");
        peer.read_to(total);
        // Far larger than the socket takes while the peer does not read: written in part at
        // once; the writer takes the rest, and waits for room.
        let (third, n3) = batch(3, 20_000);
        link.relay_reports(&third, n3);
        let direct = bytes(&link) - total;
        assert!(
            0 < direct && direct < third.len() as u64,
            "{direct} of {} bytes written at once",
            third.len()
        );
        settle().await;
        assert_eq!(link.queued(), 0, "the writer took the rest");
        // The peer makes room; the writer has not run since. A batch now waits behind the
        // bytes the writer holds.
        peer.read_to(total + direct / 2);
        std::thread::sleep(Duration::from_millis(20));
        let before = bytes(&link);
        let (fourth, n4) = batch(4, 300);
        link.relay_reports(&fourth, n4);
        assert_eq!(bytes(&link), before, "not written past the writer's bytes");
        link.send_frame(&Frame::Heartbeat).unwrap();
        link.close();
        peer.target.store(u64::MAX, Ordering::Release);
        writer.await.unwrap().unwrap();
        let all = peer.thread.join().unwrap();
        let mut seen = Vec::new();
        let mut rest = &all[..];
        while let Some((_, body, more)) = split_frame(rest) {
            seen.push(match crate::wire::decode_frame(body).unwrap() {
                Frame::Report(r) => r.subject,
                other => other.kind().to_owned(),
            });
            rest = more;
        }
        assert!(rest.is_empty());
        let mut expected = vec!["Heartbeat".to_owned()];
        for (b, n) in [(1, n1), (2, n2), (3, n3), (4, n4)] {
            expected.extend((0..n).map(|i| format!("b{b}.{i}")));
        }
        expected.push("Heartbeat".to_owned());
        assert!(seen == expected, "{} frames, in another order", seen.len());
        let written = link.written();
        assert_eq!(
            (written.frames, written.bytes),
            (n1 + n2 + n3 + n4 + 2, all.len() as u64)
        );
    }

    /// The reports of `frames`, encoded back to back as a relay gathers them.
    fn gathered(frames: &[Frame]) -> (Vec<u8>, u64) {
        let mut buf = BytesMut::new();
        for f in frames {
            encode_frame(f, &mut buf, 4096).unwrap();
        }
        (buf.to_vec(), frames.len() as u64)
    }

    /// Twenty reports for subscriber 2, alternating between two subjects.
    fn twenty_reports() -> Vec<Frame> {
        (0..20u8)
            .map(|v| report(&format!("s.{}", v % 2), v, &[(2, "s.*")]))
            .collect()
    }

    /// Two links with room for about three of [`twenty_reports`], the subscription
    /// conflated on both or on neither.
    fn two_small_links(conflated: bool) -> (Outbound, Outbound) {
        let links = (
            Outbound::new(limits(200, 4096), Arc::default()),
            Outbound::new(limits(200, 4096), Arc::default()),
        );
        if conflated {
            links.0.conflate(agent(2), "s.*");
            links.1.conflate(agent(2), "s.*");
        }
        links
    }

    #[test]
    fn gathered_reports_are_queued_as_one_by_one_would_be() {
        let frames = twenty_reports();
        for conflated in [false, true] {
            // Room for about three reports: the rest are dropped, or conflated.
            let (one, all) = two_small_links(conflated);
            for f in &frames {
                let _ = one.send_frame(f);
            }
            let (bytes, n) = gathered(&frames);
            all.queue_reports(&bytes, n);
            let queued = (one.lock().frames, all.lock().frames);
            assert_eq!(queued.0, queued.1, "frames queued, conflated {conflated}");
            assert_eq!(one.written(), all.written(), "conflated {conflated}");
            let got = reports(all.take_queued());
            assert_eq!(reports(one.take_queued()), got, "conflated {conflated}");
            assert!(got.len() >= 3, "{got:?}");
            assert_eq!(got[..3].iter().map(|r| r.1).collect::<Vec<_>>(), [0, 1, 2]);
            // With room again, all go in, in order; on a closed link, none.
            let (bytes, n) = gathered(&frames[..3]);
            all.queue_reports(&bytes, n);
            let values: Vec<u8> = reports(all.take_queued()).iter().map(|r| r.1).collect();
            assert_eq!(values, [0, 1, 2]);
            all.close();
            let (bytes, n) = gathered(&frames[..5]);
            all.queue_reports(&bytes, n);
            assert!(all.lock().buf.is_empty());
        }
    }

    /// Queues `frame` (a report) as a publisher does, through [`Outbound::queue_report`].
    fn publish(link: &Outbound, frame: &Frame) -> Result<(), SendError> {
        let max = link.max_frame();
        link.queue_report(|buf| encode_frame(frame, buf, max))
    }

    #[test]
    fn reports_gathered_in_a_turn_keep_their_order_and_the_policy() {
        let frames = twenty_reports();
        // Published in one turn or one by one, the same reports are queued, dropped or
        // conflated (room for about three).
        for conflated in [false, true] {
            let (one, turn) = two_small_links(conflated);
            for f in &frames {
                let _ = publish(&one, f);
            }
            gathering(|| {
                for f in &frames {
                    assert_eq!(publish(&turn, f), Ok(()));
                }
                // Nothing is queued before the turn ends...
                assert_eq!(turn.0.out.lock().unwrap().frames, 0);
            });
            // ...and everything after.
            assert_eq!(one.written(), turn.written(), "conflated {conflated}");
            let got = reports(turn.take_queued());
            assert_eq!(reports(one.take_queued()), got, "conflated {conflated}");
            assert_eq!(got[..3].iter().map(|r| r.1).collect::<Vec<_>>(), [0, 1, 2]);
        }

        // A frame queued after gathered reports, another link's report, a full gathering, or
        // the end of the outermost turn each put the reports in first, in order.
        let (a, b) = (
            Outbound::new(limits(1 << 20, 1 << 20), Arc::default()),
            Outbound::new(limits(1 << 20, 1 << 20), Arc::default()),
        );
        gathering(|| {
            publish(&a, &frames[0]).unwrap();
            a.send_frame(&Frame::Heartbeat).unwrap();
            publish(&a, &frames[1]).unwrap();
            gathering(|| publish(&a, &frames[2]).unwrap());
            // An inner turn's end is not the end.
            assert_eq!(a.0.out.lock().unwrap().frames, 2);
            publish(&b, &frames[3]).unwrap();
            assert_eq!(a.0.out.lock().unwrap().frames, 4);
            assert_eq!(b.0.out.lock().unwrap().frames, 0);
            // Past 16 KiB, what is gathered goes in.
            let big = report("s.big", 9, &[(2, "s.*")]);
            let Frame::Report(mut big_report) = big else {
                unreachable!()
            };
            big_report.content.bytes = bytes::Bytes::from(vec![9; GATHERED_BYTES]);
            publish(&b, &Frame::Report(big_report)).unwrap();
            assert_eq!(b.0.out.lock().unwrap().frames, 2);
            publish(&b, &frames[4]).unwrap();
        });
        let kinds: Vec<&str> = a.take_queued().iter().map(|f| f.kind()).collect();
        assert_eq!(kinds, ["Report", "Heartbeat", "Report", "Report"]);
        let values: Vec<u8> = reports(b.take_queued()).iter().map(|r| r.1).collect();
        assert_eq!(values, [3, 9, 4]);

        // A report that cannot be encoded is refused at once, and leaves no trace.
        let small = Outbound::new(limits(1 << 20, 16), Arc::default());
        gathering(|| {
            assert_eq!(
                publish(&small, &frames[0]),
                Err(SendError::TooLarge { max: 16 })
            );
        });
        assert!(small.take_queued().is_empty());
    }

    #[test]
    fn other_subscribers_of_a_conflated_report_keep_the_ordinary_policy() {
        let link = Outbound::new(limits(200, 4096), Arc::default());
        link.conflate(agent(2), "s.*");
        let both = [(2, "s.*"), (3, "s.*")];
        let mut value = 0;
        while link.queued() < 200 {
            link.send_frame(&report("s.0", value, &both)).unwrap();
            value += 1;
        }
        // Full: dropped for subscriber 3, kept aside for subscriber 2.
        let dropped = link.send_frame(&report("s.0", 100, &both));
        assert_eq!(dropped, Err(SendError::BufferFull));
        assert_eq!(link.written().reports_dropped, 1);
        let got = reports(link.take_queued());
        assert_eq!(got.last().unwrap(), &("s.0".into(), 100, vec![agent(2)], 0));
        // Taken by the writer, the one aside went with it: the next report is queued for
        // both at once.
        link.send_frame(&report("s.0", 102, &both)).unwrap();
        let got = reports(link.take_queued());
        assert_eq!(got, [("s.0".into(), 102, vec![agent(2), agent(3)], 0)]);
        // Once its conflation ends, subscriber 2's reports are dropped again.
        link.unconflate(agent(2), Some("s.*"));
        while link.queued() < 200 {
            link.send_frame(&report("s.0", value, &both)).unwrap();
            value += 1;
        }
        let before = link.written().reports_dropped;
        link.send_frame(&report("s.0", 103, &both)).unwrap_err();
        assert_eq!(link.written().reports_dropped, before + 1);
        assert!(reports(link.take_queued()).iter().all(|r| r.1 != 103));
    }

    #[test]
    fn what_a_link_keeps_aside_is_bounded_by_its_limit() {
        let link = Outbound::new(limits(400, 4096), Arc::default());
        link.conflate(agent(2), "s.*");
        for i in 0..100u8 {
            let _ = link.send_frame(&report(&format!("s.{i}"), i, &[(2, "s.*")]));
        }
        let dropped = link.written().reports_dropped;
        assert!(dropped > 0);
        let mut chunk = BytesMut::new();
        link.take_for_write(&mut chunk);
        let mut rest = &chunk[..];
        let mut frames = 0;
        while let Some((_, _, next)) = crate::wire::split_frame(rest) {
            frames += 1;
            rest = next;
        }
        assert_eq!(frames + dropped, 100);
        // The buffer passes its limit by one frame at most, and what is aside stays within it.
        let bytes = chunk.len();
        assert!(bytes <= 2 * 400 + 70, "{bytes} bytes queued and aside");
    }

    #[test]
    fn a_peers_conflated_count_saturates_rather_than_overflow() {
        let link = Outbound::new(limits(100, 4096), Arc::default());
        link.conflate(agent(2), "s.*");
        let claiming = |value| match report("s.0", value, &[(2, "s.*")]) {
            Frame::Report(report) => Frame::ConflatedReport {
                report,
                conflated: u64::MAX,
            },
            _ => unreachable!(),
        };
        while link.queued() < 100 {
            link.send_frame(&claiming(0)).unwrap();
        }
        // Kept aside, then replaced: u64::MAX + 1 + u64::MAX.
        link.send_frame(&claiming(1)).unwrap();
        link.send_frame(&claiming(2)).unwrap();
        let got = reports(link.take_queued());
        assert_eq!(
            got.last().unwrap(),
            &("s.0".into(), 2, vec![agent(2)], u64::MAX)
        );
    }
}
