//! Conflation at a link's sending side: the part of the slow-consumer policy for
//! subscriptions that asked to be conflated ([`crate::wire::Frame::SubscriptionConflated`]).
//!
//! The delivery layer marks, per link, the subscribers behind it and the patterns whose
//! reports are conflated. While the link's buffer is full, a report for such a target is not
//! dropped but kept aside: only the latest per publisher, subject and target list, counting
//! the ones it replaced. The write loop takes what is kept aside with the buffer, after it,
//! as [`crate::wire::Frame::ConflatedReport`]s. Until then the buffer stays full (only the
//! writer empties it), so a later report for the same targets replaces the one aside rather
//! than pass it: a subscriber never gets a subject's reports out of order. What is aside is
//! bounded by the link's outbound limit again; past that, reports are dropped as others are.
//!
//! Only the full case pays for this: a report is decoded again (from the frame it was to be
//! queued as) only when the buffer is full, and only on a link with conflated subscriptions.

use std::collections::HashMap;

use bytes::BytesMut;

use crate::ids::AgentId;
use crate::wire::{
    decode_incoming, encode_conflated, encode_targets, CodecError, Incoming, TargetView, HEADER,
};

/// The most (subscriber, pattern) pairs one link conflates for: a peer's subscriptions are
/// counted against its own limits before they get here, this bounds the rest.
pub(crate) const MAX_CONFLATED: usize = 65_536;

/// One link's conflated subscriptions and the reports kept aside for them.
#[derive(Default)]
pub(super) struct Conflation {
    /// Conflated patterns (as they are on the wire) by subscriber.
    subscriptions: HashMap<AgentId, Vec<Box<[u8]>>>,
    count: usize,
    /// Reports kept aside, in the order first kept.
    aside: Vec<Kept>,
    /// Where each key's report is in `aside`.
    index: HashMap<Vec<u8>, usize>,
    /// Bytes of the frames kept aside.
    aside_bytes: usize,
}

/// A report kept aside: its head without the variant index, its conflated targets encoded,
/// and how many reports it stands for besides itself.
struct Kept {
    head: Vec<u8>,
    targets: BytesMut,
    conflated: u64,
}

impl Kept {
    fn len(&self) -> usize {
        // Length prefix, variant index, and a count of at most nine bytes.
        HEADER + 1 + self.head.len() + self.targets.len() + 9
    }
}

/// What became of a report offered to [`Conflation::offer`].
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Offered {
    /// It was kept aside, replacing this many (0: it is the first kept for its key).
    pub(super) aside: Option<u64>,
    /// It was dropped for some of its targets (the buffer, or the room aside, was full).
    pub(super) dropped: bool,
}

impl Conflation {
    /// Whether any subscription behind this link is conflated.
    pub(super) fn active(&self) -> bool {
        self.count > 0
    }

    /// Whether reports are kept aside, waiting for room.
    pub(super) fn pending(&self) -> bool {
        !self.aside.is_empty()
    }

    /// Conflates `subscriber`'s reports matched by `pattern`; `false` when the link already
    /// conflates [`MAX_CONFLATED`] subscriptions (nothing is changed).
    pub(super) fn conflate(&mut self, subscriber: AgentId, pattern: &str) -> bool {
        let patterns = self.subscriptions.entry(subscriber).or_default();
        if patterns.iter().any(|p| **p == *pattern.as_bytes()) {
            return true;
        }
        if self.count >= MAX_CONFLATED {
            if patterns.is_empty() {
                self.subscriptions.remove(&subscriber);
            }
            return false;
        }
        patterns.push(pattern.as_bytes().into());
        self.count += 1;
        true
    }

    /// Ends the conflation of `subscriber`'s `pattern` (or of all its patterns: `None`).
    pub(super) fn unconflate(&mut self, subscriber: AgentId, pattern: Option<&str>) {
        let Some(patterns) = self.subscriptions.get_mut(&subscriber) else {
            return;
        };
        let before = patterns.len();
        match pattern {
            Some(pattern) => patterns.retain(|p| **p != *pattern.as_bytes()),
            None => patterns.clear(),
        }
        self.count -= before - patterns.len();
        if patterns.is_empty() {
            self.subscriptions.remove(&subscriber);
        }
    }

    fn conflates(&self, target: &TargetView<'_>) -> bool {
        let Some(pattern) = target.pattern else {
            return false;
        };
        self.subscriptions
            .get(&target.subscriber)
            .is_some_and(|patterns| patterns.iter().any(|p| **p == *pattern.0))
    }

    /// Offers a report frame (`frame`, header included) that the full buffer cannot take.
    /// Returns `None` when none of its targets is conflated (or it is a targeted report): the
    /// ordinary policy applies to it. Otherwise its conflated targets get it kept aside, and
    /// for its other targets it is dropped.
    pub(super) fn offer(
        &mut self,
        frame: &[u8],
        (max, limit): (usize, usize),
    ) -> Result<Option<Offered>, CodecError> {
        let Some(body) = frame.get(HEADER..) else {
            return Ok(None);
        };
        let view = match decode_incoming(body)? {
            Incoming::Report {
                view,
                targeted: false,
            } => view,
            _ => return Ok(None),
        };
        let all = view.targets.read().map_err(CodecError::Malformed)?;
        let conflated: Vec<TargetView<'_>> =
            all.iter().filter(|t| self.conflates(t)).copied().collect();
        if conflated.is_empty() {
            return Ok(None);
        }
        let mut offered = Offered {
            aside: None,
            dropped: conflated.len() < all.len(),
        };
        let targets = encode_targets(conflated.into_iter());
        // The head without its variant index: publisher, subject, content.
        let head = &view.head[1..];
        let mut key = Vec::with_capacity(16 + 8 + view.subject.0.len() + targets.len());
        key.extend_from_slice(view.publisher.as_uuid().as_bytes());
        key.extend_from_slice(&(view.subject.0.len() as u64).to_le_bytes());
        key.extend_from_slice(view.subject.0);
        key.extend_from_slice(&targets);
        let stands_for = view.conflated.unwrap_or(0);
        let kept = Kept {
            head: head.to_vec(),
            targets,
            conflated: stands_for,
        };
        if kept.len() > max.saturating_add(HEADER) {
            return Err(CodecError::TooLarge {
                len: kept.len() - HEADER,
                max,
            });
        }
        match self.index.get(&key) {
            Some(&at) => {
                let old = &mut self.aside[at];
                // Saturating: a received conflated report may claim any count.
                let replaced = old.conflated.saturating_add(1);
                self.aside_bytes = self.aside_bytes - old.len() + kept.len();
                *old = Kept {
                    conflated: stands_for.saturating_add(replaced),
                    ..kept
                };
                offered.aside = Some(replaced);
            }
            None if self.aside_bytes + kept.len() <= limit => {
                self.aside_bytes += kept.len();
                self.index.insert(key, self.aside.len());
                self.aside.push(kept);
                offered.aside = Some(0);
            }
            None => offered.dropped = true,
        }
        Ok(Some(offered))
    }

    /// Appends every report kept aside to `buf`, oldest first, as conflated report frames;
    /// returns how many.
    pub(super) fn flush_into(&mut self, buf: &mut BytesMut, max: usize) -> u64 {
        self.index.clear();
        self.aside_bytes = 0;
        let mut frames = 0;
        for kept in self.aside.drain(..) {
            // Its size was checked when it was kept.
            if encode_conflated(&kept.head, &kept.targets, kept.conflated, buf, max).is_ok() {
                frames += 1;
            }
        }
        frames
    }
}
