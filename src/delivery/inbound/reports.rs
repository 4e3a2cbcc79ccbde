//! Received reports: delivered to local subscribers (gathered per inbox, under one lock per
//! chunk, each with its stream's shared head) and relayed to the links of remote ones
//! (gathered per link, under one lock per chunk).

use std::hash::BuildHasher as _;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;

use super::{Behind, RouteCache};
use crate::delivery::interned::Names;
use crate::delivery::link::Link;
use crate::delivery::messages::{Delivery, Report, ReportHead};
use crate::delivery::{Binding, Inbox, Routes};
use crate::ids::{AgentId, RecentTable};
use crate::names::SubjectPattern;
use crate::payload::{Payload, SharedContent};
use crate::transport::FrameClass;
use crate::wire::{encode_report_spliced, ReportView, TargetList, Text};

/// What routing a received report needs: the node's routes (and the bridge's caches of
/// them), the bridge's name cache, and the chunk the report was read in.
pub(super) struct ReportRouting<'a> {
    pub(super) net: &'a Routes,
    pub(super) names: &'a mut Names,
    pub(super) routes: &'a mut RouteCache,
    pub(super) batch: &'a mut ReportBatch,
    pub(super) decisions: &'a mut Decisions,
    pub(super) chunk: &'a Bytes,
    /// Whether local deliveries slice their content from `chunk` rather than copy it.
    pub(super) share: bool,
    /// With `share`: the chunk as the buffer the last report's content was a part of.
    pub(super) shared: &'a mut Option<SharedContent>,
    /// The link the report came on, and the agents announced over it.
    pub(super) from: &'a Link,
    pub(super) behind: &'a Behind,
}

/// What became of a received report.
pub(super) enum Routed {
    /// Routed; this many bytes of content went to local services.
    Delivered(usize),
    /// Refused: its publisher is not behind the link it came on.
    Forged,
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
    ///
    /// Where a report goes depends only on its publisher and its target list: the decision
    /// is worked out once and kept for the next reports with the same publisher and the same
    /// target bytes (see [`Decisions`]), while the routes and the agents behind the link stay
    /// as they were.
    pub(super) fn route(
        &mut self,
        view: &ReportView<'_>,
        frame: &[u8],
        targeted: bool,
    ) -> Result<Routed, String> {
        let owned;
        let targets = after_head(frame, view.head);
        let found = targets.and_then(|t| {
            self.decisions
                .find(self.net, self.behind, view.publisher, t)
        });
        // The target list is read only when no decision was made for the same bytes (which
        // were read then).
        let mut list = None;
        let decision = match found {
            Some(at) => &self.decisions.kept[at],
            None => {
                let read = list.insert(read_targets(view)?);
                let Some(decision) = self.decide(view, read, targets.unwrap_or_default())? else {
                    return Ok(Routed::Forged);
                };
                if targets.is_some() && decision.targets.len() <= DECISION_TARGET_BYTES {
                    let at = self.decisions.keep(decision);
                    &self.decisions.kept[at]
                } else {
                    owned = decision;
                    &owned
                }
            }
        };
        // Announced here but visible nowhere (refused by the peer's policy): dropped.
        let Some(decided) = &decision.route else {
            return Ok(Routed::Delivered(0));
        };
        // Names are validated before anything is sent on (by the local delivery, which
        // interns them, when there is one).
        let delivered = if decided.local.is_empty() {
            self.names.subject(view.subject)?;
            self.names.type_name(view.content.type_name)?;
            0
        } else {
            let local = LocalDelivery {
                names: self.names,
                heads: &mut self.decisions.heads,
                batch: self.batch,
                chunk: self.chunk,
                share: self.share,
                shared: self.shared,
            };
            local.deliver(view, targeted, decided)?
        };
        match decided.links.as_slice() {
            // One link has every target: the frame goes on as received.
            [(link, indexes)] if indexes.len() == decided.targets => {
                self.batch.relays.raw(link, frame, self.chunk);
            }
            [] => {}
            links => {
                let list = match list {
                    Some(list) => list,
                    None => read_targets(view)?,
                };
                for (link, indexes) in links {
                    self.batch.relays.spliced(link, view, &list, indexes);
                }
            }
        }
        Ok(Routed::Delivered(delivered))
    }

    /// Works out where a report from `view.publisher` to `view.targets` goes; `None` when
    /// its publisher is not behind the link it came on (a forgery).
    fn decide(
        &mut self,
        view: &ReportView<'_>,
        list: &TargetList<'_>,
        targets: &[u8],
    ) -> Result<Option<Decision>, String> {
        // Only a publisher behind this link may publish on it (usually its route is this very
        // link; an alternate route is found in `behind`). Names are interned only then: a
        // stream of made-up names in a made-up publisher's name costs no memory.
        let from = self.from;
        let publisher = match self.routes.lookup(self.net, view.publisher) {
            Some(p) if p.link().is_some_and(|l| l.same(from)) => p.clone(),
            Some(p) if self.behind.contains(&view.publisher) => p.clone(),
            Some(_) => return Ok(None),
            None if self.behind.contains(&view.publisher) => {
                return Ok(Some(Decision::new(view.publisher, targets, None)));
            }
            None => return Ok(None),
        };
        let mut decided = Decided {
            publisher,
            local: SmallVec::new(),
            links: SmallVec::new(),
            targets: list.len(),
        };
        for (i, target) in list.iter().enumerate() {
            let pattern = match target.pattern {
                Some(p) => Some(self.names.pattern(p)?),
                None => None,
            };
            let Some(subscriber) = self.routes.lookup(self.net, target.subscriber) else {
                continue;
            };
            let Some(link) = subscriber.link() else {
                decided.local.push((subscriber.clone(), pattern.cloned()));
                continue;
            };
            match decided.links.iter_mut().find(|(l, _)| l.same(link)) {
                Some((_, indexes)) => indexes.push(i),
                None => decided.links.push((link.clone(), smallvec::smallvec![i])),
            }
        }
        Ok(Some(Decision::new(view.publisher, targets, Some(decided))))
    }
}

/// Where reports from one publisher with one target list go, as [`ReportRouting::decide`]
/// worked it out.
pub(super) struct Decision {
    publisher: AgentId,
    /// The target list as received (what [`after_head`] finds in the frame).
    targets: Box<[u8]>,
    /// `None`: the publisher is announced over the link but visible nowhere (the peer's
    /// policy refused it), so its reports are dropped.
    route: Option<Decided>,
}

impl Decision {
    fn new(publisher: AgentId, targets: &[u8], route: Option<Decided>) -> Self {
        Decision {
            publisher,
            targets: targets.into(),
            route,
        }
    }
}

/// What follows a report's head in its frame: the target list as received (its count first;
/// for a `Frame::ConflatedReport`, the count it stands for after it). Two reports with the
/// same publisher and the same bytes here are routed alike. `None` if `head` is not a part
/// of `frame` (it always is): then no decision is kept.
fn after_head<'f>(frame: &'f [u8], head: &[u8]) -> Option<&'f [u8]> {
    let start = (head.as_ptr() as usize).wrapping_sub(frame.as_ptr() as usize);
    if start > frame.len() {
        return None;
    }
    frame.get(start.checked_add(head.len())?..)
}

/// The routes of a [`Decision`].
struct Decided {
    /// The publisher's binding, which local deliveries carry.
    publisher: Binding,
    /// Local subscribers, with the pattern each matched.
    local: SmallVec<[(Binding, Option<SubjectPattern>); 1]>,
    /// The links remote targets are behind, with the targets behind each (as indexes into
    /// the report's targets), in the order first met.
    links: SmallVec<[(Link, SmallVec<[usize; 4]>); 1]>,
    /// How many targets the report lists.
    targets: usize,
}

/// The target list of a received report, read; an error names the frame as a decoding
/// error would.
fn read_targets<'a>(view: &ReportView<'a>) -> Result<TargetList<'a>, String> {
    view.targets
        .read()
        .map_err(|e| format!("{} frame: {e}", view.kind()))
}

/// The routing decisions a bridge made lately, for the next reports alike: at most
/// [`DECISIONS`], the oldest replaced first, each for a target list of at most
/// [`DECISION_TARGET_BYTES`] (what a peer sends is never kept at any size it likes). All are
/// dropped when the node's routes change (their generation) or the agents behind the link
/// do, so a decision never outlives what it was made from; and when the bridge forgets its
/// routes (an idle connection must not keep closed links alive).
#[derive(Default)]
pub(super) struct Decisions {
    generation: u64,
    behind: u64,
    kept: Vec<Decision>,
    /// The heads of the streams delivered to local services, dropped with the decisions.
    heads: Heads,
    /// The [`Print`] of each decision's target list, at the same index.
    prints: Vec<Print>,
    /// The entry replaced next once `kept` is full.
    next: usize,
}

/// Most routing decisions a bridge keeps: the distinct (publisher, target list) pairs of a
/// report stream, such as a publisher's subscriber groups over many subjects.
const DECISIONS: usize = 16;
/// Longest target list a decision is kept for: about 150 targets.
const DECISION_TARGET_BYTES: usize = 4096;

impl Decisions {
    /// The decision kept for reports like `view`, if any; everything kept goes when the
    /// routes or the agents `behind` the link changed since it was made.
    fn find(
        &mut self,
        net: &Routes,
        behind: &Behind,
        publisher: AgentId,
        targets: &[u8],
    ) -> Option<usize> {
        let now = (net.generation(), behind.version());
        if now != (self.generation, self.behind) {
            self.kept.clear();
            self.prints.clear();
            self.heads.clear();
            self.next = 0;
            (self.generation, self.behind) = now;
            return None;
        }
        // The prints, side by side, are checked before any decision is looked at.
        let print = Print::of(targets);
        let mut from = 0;
        while let Some(i) = self.prints[from..].iter().position(|p| *p == print) {
            let at = from + i;
            let d = &self.kept[at];
            if d.publisher == publisher && *d.targets == *targets {
                return Some(at);
            }
            from = at + 1;
        }
        None
    }

    /// Keeps `decision` (whose target list is at most [`DECISION_TARGET_BYTES`]) in place of
    /// the oldest once full; its index.
    fn keep(&mut self, decision: Decision) -> usize {
        let print = Print::of(&decision.targets);
        if self.kept.len() < DECISIONS {
            self.kept.push(decision);
            self.prints.push(print);
            return self.kept.len() - 1;
        }
        let at = self.next;
        self.next = (at + 1) % DECISIONS;
        self.kept[at] = decision;
        self.prints[at] = print;
        at
    }
}

/// A few bytes of a target list, compared before the whole list: its length, and the first
/// and last eight bytes after its count (of the first subscriber's id, and of the last
/// target). Two lists of a report stream's subscriber groups differ here already.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Print {
    len: usize,
    first: u64,
    last: u64,
}

impl Print {
    fn of(targets: &[u8]) -> Self {
        fn word(bytes: &[u8]) -> u64 {
            // Eight bytes read at once (a target list has more): no call to `memcpy`.
            if let Some(word) = bytes.first_chunk::<8>() {
                return u64::from_le_bytes(*word);
            }
            let mut word = [0; 8];
            word[..bytes.len()].copy_from_slice(bytes);
            u64::from_le_bytes(word)
        }
        Print {
            len: targets.len(),
            first: word(targets.get(1..).unwrap_or_default()),
            last: word(&targets[targets.len().saturating_sub(8)..]),
        }
    }
}

/// The heads of the report streams a connection delivers to local services (see
/// [`ReportHead`]), one per (publisher, subject, pattern), made at a stream's first report
/// and shared by the next ones. At most [`MAX_HEADS`]: over that, they start over. They hold
/// the publisher's binding, so they go with the routing decisions (see [`Decisions`]), never
/// outliving the routes they were made from. Keyed SipHash, as for the names (see
/// `interned::Names`): a peer cannot choose subjects that collide.
///
/// Each entry holds a short subject's bytes, so that finding one reads the table and the one
/// head found (whose count it takes), not the others.
#[derive(Default)]
pub(super) struct Heads(RecentTable<HeadEntry>);

/// Most report-stream heads a connection keeps (24 bytes each in the table, about 100
/// behind it, besides the names).
const MAX_HEADS: usize = 4096;

/// A subject this long or shorter is compared within [`HeadEntry`].
const INLINE_SUBJECT: usize = 15;

/// A head in [`Heads`], with a short subject's bytes: most heads that are not the one looked
/// for are told apart without reading them.
struct HeadEntry {
    head: Arc<ReportHead>,
    /// The subject's length (saturated), and its bytes when at most [`INLINE_SUBJECT`].
    subject_len: u8,
    subject: [u8; INLINE_SUBJECT],
}

/// What a head is hashed by: its publisher, its pattern's identity (see
/// `SubjectPattern::id`, 0 for none) and its subject's bytes.
type HeadKey<'k> = (AgentId, usize, &'k [u8]);

impl HeadEntry {
    fn is(&self, (publisher, pattern, subject): HeadKey<'_>) -> bool {
        let head = &self.head;
        (match subject.len() {
            n if n <= INLINE_SUBJECT => {
                usize::from(self.subject_len) == n && self.subject[..n] == *subject
            }
            _ => head.subject.as_str().as_bytes() == subject,
        }) && pattern_id(&head.pattern) == pattern
            && head.publisher.agent() == publisher
    }

    fn key(&self) -> HeadKey<'_> {
        let head = &self.head;
        (
            head.publisher.agent(),
            pattern_id(&head.pattern),
            head.subject.as_str().as_bytes(),
        )
    }
}

fn pattern_id(pattern: &Option<SubjectPattern>) -> usize {
    pattern.as_ref().map_or(0, SubjectPattern::id)
}

impl Heads {
    /// The head of reports of `publisher` on the subject spelled `subject`, for a subscriber
    /// whose `pattern` they matched. A new subject is validated (and interned) by `names`.
    fn get(
        &mut self,
        publisher: &Binding,
        subject: Text<'_>,
        pattern: &Option<SubjectPattern>,
        names: &mut Names,
    ) -> Result<Arc<ReportHead>, String> {
        let text = subject.0;
        let key = (publisher.agent(), pattern_id(pattern), text);
        let table = &mut self.0;
        if let Some(at) = table.find(&key, |e| e.is(key)) {
            return Ok(table.get(at).head.clone());
        }
        let subject = names.subject(subject)?;
        if table.len() >= MAX_HEADS {
            table.clear();
        }
        let head = ReportHead::new(publisher, subject, pattern.clone());
        let mut inline = [0; INLINE_SUBJECT];
        if text.len() <= INLINE_SUBJECT {
            inline[..text.len()].copy_from_slice(text);
        }
        let entry = HeadEntry {
            head: head.clone(),
            subject_len: u8::try_from(text.len()).unwrap_or(u8::MAX),
            subject: inline,
        };
        table.insert(table.hash(&key), entry, |h, e| h.hash_one(e.key()));
        Ok(head)
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// What delivering a received report to local services needs.
struct LocalDelivery<'r, 'a> {
    names: &'r mut Names,
    heads: &'r mut Heads,
    batch: &'r mut ReportBatch,
    chunk: &'a Bytes,
    share: bool,
    shared: &'r mut Option<SharedContent>,
}

impl LocalDelivery<'_, '_> {
    /// Delivers a received report to the local targets of `decided`, all sharing one copy of
    /// its content (the last delivery takes it over rather than cloning it), each with the
    /// head of its stream ([`Heads`]), and returns the size of the content. With `share`,
    /// the content is a slice of the chunk rather than a copy.
    fn deliver(
        self,
        view: &ReportView<'_>,
        targeted: bool,
        decided: &Decided,
    ) -> Result<usize, String> {
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
        // A conflated report stands for the ones replaced on its way.
        let stands_for = view.conflated.unwrap_or(0);
        let mut report = |subscriber: &Binding, pattern: &Option<SubjectPattern>, content| {
            let head = self
                .heads
                .get(&decided.publisher, view.subject, pattern, self.names)?;
            self.batch.push(
                subscriber,
                Report {
                    head,
                    content,
                    targeted,
                    conflated: stands_for,
                },
            );
            Ok::<_, String>(())
        };
        if let Some(((last, last_pattern), others)) = decided.local.split_last() {
            for (subscriber, pattern) in others {
                report(subscriber, pattern, content.clone())?;
            }
            report(last, last_pattern, content)?;
        }
        Ok(view.content.bytes.len().max(1))
    }
}

/// Reports gathered while a chunk is handled: for local services, pushed to each inbox under
/// one lock, and for other links ([`Relays`]), queued on each under one lock. They are pushed
/// before any frame other than a report is handled, and at the end of the chunk, so every
/// service and link still gets what one peer sent in the order sent. Up to
/// [`BATCH_INBOXES`] services are gathered for at once, so that a stream whose reports go to
/// several services by turns (their subjects interleaved) still takes one lock per service
/// per chunk, not one per report. Only reports: a refused one is dropped (as
/// `Inbox::push_all` does), which for a request would lose its answer.
#[derive(Default)]
pub(super) struct ReportBatch {
    /// The services gathered for, in the order first met, the last pushed to first checked.
    pending: Vec<(Inbox, Vec<Delivery>)>,
    /// The entry of `pending` pushed to last.
    last: usize,
    /// Emptied report lists for the next services, so that gathering allocates nothing once
    /// warm (at most [`BATCH_INBOXES`], each of at most [`SPARE_REPORTS`]).
    spare: Vec<Vec<Delivery>>,
    /// Whether an inbox pushed to since [`ReportBatch::take_conflating`] conflates a
    /// subscription.
    conflating: bool,
    /// The reports for other links.
    relays: Relays,
}

/// Most services a [`ReportBatch`] gathers reports for at once; a further one flushes them.
const BATCH_INBOXES: usize = 16;
/// Largest emptied report list a [`ReportBatch`] keeps for reuse (a chunk's worth of small
/// reports); a longer one, from a burst, is freed.
const SPARE_REPORTS: usize = 1024;

impl ReportBatch {
    fn push(&mut self, to: &Binding, report: Report) {
        let Some(inbox) = to.local_inbox() else {
            return to.send(Delivery::Report(report));
        };
        let at = match self.pending.get(self.last) {
            Some((last, _)) if last.same(inbox) => self.last,
            _ => match self.pending.iter().position(|(i, _)| i.same(inbox)) {
                Some(at) => at,
                None => {
                    if self.pending.len() >= BATCH_INBOXES {
                        self.flush();
                    }
                    let reports = self.spare.pop().unwrap_or_default();
                    self.pending.push((inbox.clone(), reports));
                    self.pending.len() - 1
                }
            },
        };
        self.last = at;
        self.pending[at].1.push(Delivery::Report(report));
    }

    pub(super) fn flush(&mut self) {
        for (inbox, mut reports) in self.pending.drain(..) {
            self.conflating |= inbox.push_all(&mut reports);
            if reports.capacity() <= SPARE_REPORTS {
                self.spare.push(reports);
            }
        }
        self.last = 0;
        self.relays.flush();
    }

    /// Whether reports went to a service that conflates a subscription since the last call.
    pub(super) fn take_conflating(&mut self) -> bool {
        std::mem::take(&mut self.conflating)
    }
}

/// Report frames for other links gathered while a chunk is handled, each link's queued under
/// one lock ([`crate::transport::Outbound::queue_reports`]) rather than one lock per report:
/// a relay that sends every report to many links takes each link's lock once per chunk, or
/// per [`STAGED_BYTES`]. At most [`BATCH_LINKS`] links at once (a further one flushes them).
///
/// Frames passed on as received are not copied until they are queued: consecutive ones for
/// a link are one run of the chunk they were read in, copied once, into the link's buffer
/// or, when nothing waits before them there, straight into its socket
/// ([`Outbound::relay_reports`](crate::transport::Outbound::relay_reports)): a server
/// relaying a stream to one link copies each chunk once. Spliced frames are
/// written into a buffer per link (the copy into it costs less than a lock), a run before
/// them copied there first when short, queued first when long, so the link gets its frames
/// in order; a spliced report whose received head is over [`STAGED_FRAME`] bytes is queued
/// at once, after what was gathered for its link, so that its content is copied only into
/// the link's buffer.
#[derive(Default)]
pub(super) struct Relays {
    /// The links gathered for, in the order first met.
    pending: Vec<Staged>,
    /// The entry of `pending` added to last (checked first).
    last: usize,
    /// Emptied buffers for the next links, at most [`BATCH_LINKS`].
    spare: Vec<BytesMut>,
}

/// The frames gathered for one link: those in `buf`, then those of `run`.
struct Staged {
    link: Link,
    buf: BytesMut,
    /// Frames in `buf`.
    frames: u64,
    run: Option<Run>,
}

/// Consecutive frames of a chunk, relayed as received: `chunk[start..end]`.
struct Run {
    chunk: Bytes,
    start: usize,
    end: usize,
    frames: u64,
}

impl Staged {
    /// Queues the frames on the link, and starts over.
    fn queue(&mut self) {
        let out = self.link.out();
        if self.frames > 0 {
            out.relay_reports(&self.buf, self.frames);
            self.buf.clear();
            self.frames = 0;
        }
        if let Some(run) = self.run.take() {
            out.relay_reports(&run.chunk[run.start..run.end], run.frames);
        }
    }

    /// Ends the run, if any, before a frame that is not a part of it: copied into `buf` if
    /// short, queued (with what is before it) if long.
    fn end_run(&mut self) {
        match &self.run {
            Some(run) if run.end - run.start > STAGED_FRAME => self.queue(),
            Some(run) => {
                self.buf.extend_from_slice(&run.chunk[run.start..run.end]);
                self.frames += run.frames;
                self.run = None;
            }
            None => {}
        }
    }

    /// Queues the frames of `buf` once they are [`STAGED_BYTES`]: buffers stay small (in
    /// cache, and reused rather than allocated per chunk).
    fn queue_if_full(&mut self) {
        if self.buf.len() >= STAGED_BYTES {
            self.queue();
        }
    }
}

/// Largest spliced report head [`Relays`] gathers, and longest run it copies to end it.
const STAGED_FRAME: usize = 4096;
/// Most links [`Relays`] gathers frames for at once.
const BATCH_LINKS: usize = 16;
/// Bytes gathered in one link's buffer before they are queued, even within a chunk.
const STAGED_BYTES: usize = 16 * 1024;
/// Largest emptied buffer [`Relays`] keeps for reuse.
const SPARE_STAGED: usize = 64 * 1024;

impl Relays {
    /// Relays a received report frame, read in `chunk`, to `link` as received.
    fn raw(&mut self, link: &Link, frame: &[u8], chunk: &Bytes) {
        if frame.len().saturating_sub(4) > link.out().max_frame() {
            // Refused, with a log line.
            let _ = link.out().send_raw(frame, FrameClass::Report, "Report");
            return;
        }
        let start = (frame.as_ptr() as usize).wrapping_sub(chunk.as_ptr() as usize);
        let end = start.wrapping_add(frame.len());
        let staged = self.staged(link);
        if let Some(run) = &mut staged.run {
            if run.chunk.as_ptr() == chunk.as_ptr() && run.end == start {
                run.end = end;
                run.frames += 1;
                return;
            }
        }
        staged.end_run();
        if start <= end && end <= chunk.len() {
            staged.run = Some(Run {
                chunk: chunk.clone(),
                start,
                end,
                frames: 1,
            });
        } else {
            // Not a part of the chunk (it always is): copied.
            staged.buf.extend_from_slice(frame);
            staged.frames += 1;
            staged.queue_if_full();
        }
    }

    /// Relays a received report to `link` as its head with the targets at `indexes` (those
    /// behind the link).
    fn spliced(
        &mut self,
        link: &Link,
        view: &ReportView<'_>,
        list: &TargetList<'_>,
        indexes: &[usize],
    ) {
        let targets = || indexes.iter().map(|&i| list[i]);
        if view.head.len() > STAGED_FRAME {
            self.flush_link(link);
            let _ = link.out().send_report_head(view, targets());
            return;
        }
        let max = link.out().max_frame();
        let staged = self.staged(link);
        staged.end_run();
        match encode_report_spliced(view.head, targets(), view.conflated, &mut staged.buf, max) {
            Ok(()) => staged.frames += 1,
            // Too large for this link (nothing was left in the buffer): refused with a log
            // line, as when sent at once.
            Err(_) => {
                let _ = link.out().send_report_head(view, targets());
            }
        }
        staged.queue_if_full();
    }

    /// The frames gathered for `link`.
    fn staged(&mut self, link: &Link) -> &mut Staged {
        let at = match self.pending.get(self.last) {
            Some(last) if last.link.same(link) => self.last,
            _ => match self.pending.iter().position(|p| p.link.same(link)) {
                Some(at) => at,
                None => {
                    if self.pending.len() >= BATCH_LINKS {
                        self.flush();
                    }
                    self.pending.push(Staged {
                        link: link.clone(),
                        buf: self.spare.pop().unwrap_or_default(),
                        frames: 0,
                        run: None,
                    });
                    self.pending.len() - 1
                }
            },
        };
        self.last = at;
        &mut self.pending[at]
    }

    /// Queues what was gathered for `link`, if anything (before a frame queued at once).
    fn flush_link(&mut self, link: &Link) {
        if let Some(staged) = self.pending.iter_mut().find(|p| p.link.same(link)) {
            staged.queue();
        }
    }

    fn flush(&mut self) {
        for mut staged in self.pending.drain(..) {
            staged.queue();
            if staged.buf.capacity() <= SPARE_STAGED {
                self.spare.push(staged.buf);
            }
        }
        self.last = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(name: &str) -> Binding {
        Binding::new(
            crate::names::ServiceName::new(name).unwrap(),
            AgentId::random(),
            crate::names::Audience::Everyone,
            crate::ids::ProcessId::random(),
            crate::delivery::binding::Address::Remote(crate::delivery::link::tests::link(
                &Routes::new(),
                "",
                false,
            )),
        )
    }

    /// A report frame (header included) of `value` on subject `s`, `size` bytes of content,
    /// to one subscriber of agent id `to`.
    fn report_frame(value: u8, size: usize, to: u128) -> Vec<u8> {
        let frame = crate::wire::Frame::Report(crate::wire::ReportFrame {
            publisher: AgentId::from_uuid(uuid::Uuid::from_u128(1)),
            subject: "s".into(),
            content: crate::wire::WirePayload {
                format: crate::payload::Format::Bincode,
                type_name: "t".into(),
                bytes: Bytes::from(vec![value; size]),
            },
            targets: vec![crate::wire::ReportTarget {
                subscriber: AgentId::from_uuid(uuid::Uuid::from_u128(to)),
                pattern: None,
            }],
        });
        let mut buf = BytesMut::new();
        crate::wire::encode_frame(&frame, &mut buf, 1 << 20).unwrap();
        buf.to_vec()
    }

    /// (first content byte, subscriber) of each frame queued on `link`.
    fn queued(link: &Link) -> Vec<(u8, u128)> {
        link.out()
            .take_queued()
            .into_iter()
            .map(|f| match f {
                crate::wire::Frame::Report(r) => (
                    r.content.bytes[0],
                    r.targets[0].subscriber.as_uuid().as_u128(),
                ),
                other => panic!("{} queued", other.kind()),
            })
            .collect()
    }

    #[test]
    fn relayed_frames_reach_each_link_once_and_in_order() {
        let net = Routes::new();
        let (a, b) = (
            crate::delivery::link::tests::link(&net, "", false),
            crate::delivery::link::tests::link(&net, "", false),
        );
        for size in [10, 3000] {
            // Frames 0..6 of one chunk; the spliced ones are sent to subscriber 9.
            let frames: Vec<Vec<u8>> = (0..6).map(|v| report_frame(v, size, 7)).collect();
            let chunk = Bytes::from(frames.concat());
            let mut at = 0;
            let parts: Vec<&[u8]> = frames
                .iter()
                .map(|f| {
                    at += f.len();
                    &chunk[at - f.len()..at]
                })
                .collect();
            fn view(frame: &[u8]) -> ReportView<'_> {
                match crate::wire::decode_incoming(&frame[4..]).unwrap() {
                    crate::wire::Incoming::Report { view, .. } => view,
                    _ => unreachable!(),
                }
            }
            let ninth = [crate::wire::TargetView {
                subscriber: AgentId::from_uuid(uuid::Uuid::from_u128(9)),
                pattern: None,
            }];
            let spliced = view(parts[3]);
            let ninth = TargetList::from_slice(&ninth);
            let mut relays = Relays::default();
            // A run of two for `a`, one for `b`, one more for `a` after it (another run), a
            // spliced report for `a`, the last frame as a copy from elsewhere, then the
            // frame after the spliced one in the chunk.
            relays.raw(&a, parts[0], &chunk);
            relays.raw(&a, parts[1], &chunk);
            relays.raw(&b, parts[2], &chunk);
            relays.raw(&a, parts[3], &chunk);
            relays.spliced(&a, &spliced, &ninth, &[0]);
            let elsewhere = parts[5].to_vec();
            relays.raw(&a, &elsewhere, &chunk);
            relays.raw(&a, parts[4], &chunk);
            // Short frames are queued at the flush only; a long run is queued when it ends.
            assert_eq!(a.out().queued() == 0, size == 10);
            relays.flush();
            assert_eq!(
                queued(&a),
                [(0, 7), (1, 7), (3, 7), (3, 9), (5, 7), (4, 7)],
                "content of {size} bytes"
            );
            assert_eq!(queued(&b), [(2, 7)]);
            assert!(relays.pending.is_empty(), "no link is kept past a flush");
        }
    }

    #[test]
    fn a_stream_shares_one_head_per_publisher_subject_and_pattern() {
        let mut heads = Heads::default();
        let mut names = Names::new(1 << 20);
        let (a, b) = (binding("a"), binding("b"));
        let p = Some(SubjectPattern::new("s.*").unwrap());
        let q = Some(SubjectPattern::new("s.*").unwrap());
        let long = format!("s.{}", "x".repeat(40));
        let mut get = |publisher: &Binding, subject: &str, pattern: &Option<SubjectPattern>| {
            heads
                .get(publisher, Text(subject.as_bytes()), pattern, &mut names)
                .unwrap()
        };
        for subject in ["s.1", long.as_str()] {
            let first = get(&a, subject, &p);
            assert_eq!(
                (first.publisher.agent(), first.subject.as_str()),
                (a.agent(), subject)
            );
            assert_eq!(first.pattern, p);
            // The same stream: the same head, after other streams too.
            assert!(Arc::ptr_eq(&first, &get(&a, subject, &p)));
            let others = [
                get(&b, subject, &p),
                get(&a, "s.2", &p),
                get(&a, subject, &None),
                // An equal pattern that is another value (another subscription's) is
                // another stream: a head is found by its pattern's identity.
                get(&a, subject, &q),
                get(&a, &format!("{subject}y"), &p),
            ];
            for other in &others {
                assert!(!Arc::ptr_eq(&first, other));
            }
            assert!(Arc::ptr_eq(&first, &get(&a, subject, &p)));
            assert_eq!(others[1].subject.as_str(), "s.2");
            assert_eq!(others[0].publisher.agent(), b.agent());
        }
        // A subject refused is refused every time; nothing is kept for it.
        let before = heads.0.len();
        for _ in 0..2 {
            assert!(heads
                .get(&a, Text(b"bad\nsubject"), &p, &mut names)
                .is_err());
        }
        assert_eq!(heads.0.len(), before);
        // Bounded: past MAX_HEADS it starts over.
        for i in 0..MAX_HEADS + 10 {
            let subject = format!("t.{i}");
            heads
                .get(&a, Text(subject.as_bytes()), &p, &mut names)
                .unwrap();
            assert!(heads.0.len() <= MAX_HEADS);
        }
    }

    #[test]
    fn decisions_are_kept_for_the_same_publisher_and_targets_bounded_and_dropped_on_change() {
        let net = Routes::new();
        let mut behind = Behind::default();
        let mut decisions = Decisions::default();
        let publisher = AgentId::random();
        let lists: Vec<[u8; 2]> = (0..DECISIONS as u8 + 4).map(|i| [1, i]).collect();
        for list in &lists {
            assert_eq!(decisions.find(&net, &behind, publisher, list), None);
            decisions.keep(Decision::new(publisher, list, None));
        }
        // The newest DECISIONS are kept, the oldest went first.
        assert_eq!(decisions.kept.len(), DECISIONS);
        for (i, list) in lists.iter().enumerate() {
            let found = decisions.find(&net, &behind, publisher, list);
            assert_eq!(found.is_some(), i >= 4, "{i}");
        }
        // Another publisher with the same targets is another decision.
        assert_eq!(
            decisions.find(&net, &behind, AgentId::random(), &lists[10]),
            None
        );
        // A change of the agents behind the link drops them all, and the heads made with
        // them; so does a change of routes.
        let mut names = Names::new(1 << 20);
        let head = decisions
            .heads
            .get(&binding("p"), Text(b"s"), &None, &mut names)
            .unwrap();
        behind.insert(AgentId::random());
        assert_eq!(decisions.find(&net, &behind, publisher, &lists[10]), None);
        assert!(decisions.kept.is_empty());
        assert!(decisions.heads.0.len() == 0);
        assert_eq!(Arc::strong_count(&head), 1, "the head is no longer kept");
        decisions.keep(Decision::new(publisher, &lists[10], None));
        assert!(decisions
            .find(&net, &behind, publisher, &lists[10])
            .is_some());
        let link = crate::delivery::link::tests::link(&net, "", false);
        assert!(net.insert(Binding::new(
            crate::names::ServiceName::new("s").unwrap(),
            AgentId::random(),
            crate::names::Audience::Everyone,
            crate::ids::ProcessId::random(),
            crate::delivery::binding::Address::Remote(link),
        )));
        assert_eq!(decisions.find(&net, &behind, publisher, &lists[10]), None);
    }
}
