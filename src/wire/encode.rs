//! Frames to bytes: each frame appended to a buffer with its length prefix.
//!
//! Reports, requests and responses are most of the traffic: they are written by hand, byte
//! for byte what bincode writes for the same [`Frame`](super::Frame) variant, from borrowed
//! parts (no owned frame is built to send one). Every other frame goes through serde and
//! bincode ([`encode_frame`]). Tests pin the hand-written encoders to the serde encoding. A
//! frame over the cap is refused, and nothing of it is left in the buffer.

use bytes::{BufMut, BytesMut};

use super::frame::{
    ContentView, ReportRef, RequestView, ResponseView, TargetItem, TargetView,
    CONFLATED_REPORT_VARIANT, REPORT_VARIANT, REQUEST_VARIANT, RESPONSE_VARIANT,
    TARGETED_REPORT_VARIANT,
};
use super::{CodecError, HEADER};
use crate::ids::AgentId;
use crate::payload::Format;

fn config() -> bincode::config::Configuration {
    crate::payload::bincode_config()
}

/// Appends one length-prefixed frame to `buf`. On error `buf` is left as it was.
pub(crate) fn encode_frame<F: serde::Serialize + ?Sized>(
    frame: &F,
    buf: &mut BytesMut,
    max: usize,
) -> Result<(), CodecError> {
    let start = buf.len();
    buf.put_u32(0);
    let result = bincode::serde::encode_into_std_write(frame, &mut buf.writer(), config());
    finish_frame(buf, start, max, result)
}

/// Writes the length prefix of the frame begun at `start`, or takes the frame back on error.
fn finish_frame(
    buf: &mut BytesMut,
    start: usize,
    max: usize,
    result: Result<usize, bincode::error::EncodeError>,
) -> Result<(), CodecError> {
    let len = buf.len() - start - HEADER;
    match result {
        Ok(_) if len <= max => {
            buf[start..start + HEADER].copy_from_slice(&(len as u32).to_be_bytes());
            Ok(())
        }
        Ok(_) => {
            buf.truncate(start);
            Err(CodecError::TooLarge { len, max })
        }
        Err(e) => {
            buf.truncate(start);
            Err(CodecError::Malformed(e.to_string()))
        }
    }
}

/// Appends a report frame. Written by hand (reports are most of the traffic), byte for byte
/// what bincode writes for `Frame::Report`/`Frame::TargetedReport`; tests pin the two together.
pub(crate) fn encode_report<T: PutTargets + ?Sized>(
    report: &ReportRef<'_, T>,
    buf: &mut BytesMut,
    max: usize,
) -> Result<(), CodecError> {
    let variant = if report.targeted {
        TARGETED_REPORT_VARIANT
    } else {
        REPORT_VARIANT
    };
    put_frame(buf, max, variant, |buf| {
        put_agent(buf, report.publisher);
        put_bytes(buf, report.subject.0);
        put_content(buf, report.content);
        report.targets.put_targets(buf);
    })
}

/// Appends a request frame, byte for byte what bincode writes for `Frame::Request`.
pub(crate) fn encode_request(
    request: &RequestView<'_>,
    buf: &mut BytesMut,
    max: usize,
) -> Result<(), CodecError> {
    put_frame(buf, max, REQUEST_VARIANT, |buf| {
        put_varint(buf, request.conversation);
        put_agent(buf, request.requester);
        put_agent(buf, request.target);
        put_bytes(buf, request.method.0);
        put_content(buf, request.args);
        put_format(buf, request.reply_format);
    })
}

/// Appends a response frame, byte for byte what bincode writes for `Frame::Response`.
pub(crate) fn encode_response(
    response: &ResponseView<'_>,
    buf: &mut BytesMut,
    max: usize,
) -> Result<(), CodecError> {
    put_frame(buf, max, RESPONSE_VARIANT, |buf| {
        put_varint(buf, response.conversation);
        put_agent(buf, response.requester);
        put_content(buf, response.content);
        put_agent(buf, response.responder);
    })
}

/// Appends one frame: its length (filled in once known), the variant index (a single byte for
/// indexes below 251), then what `fields` writes. Over `max`, nothing is left in `buf`.
fn put_frame(
    buf: &mut BytesMut,
    max: usize,
    variant: u8,
    fields: impl FnOnce(&mut BytesMut),
) -> Result<(), CodecError> {
    let start = buf.len();
    buf.put_u32(0);
    buf.put_u8(variant);
    fields(buf);
    finish_frame(buf, start, max, Ok(0))
}

#[inline(always)]
fn put_format(buf: &mut BytesMut, format: Format) {
    put_varint(
        buf,
        match format {
            Format::Bincode => 0,
            Format::Json => 1,
        },
    );
}

/// A [`WirePayload`](super::WirePayload).
#[inline(always)]
fn put_content(buf: &mut BytesMut, content: ContentView<'_>) {
    put_format(buf, content.format);
    put_bytes(buf, content.type_name.0);
    put_bytes(buf, content.bytes);
}

/// The targets of a report, as the encoder writes them.
pub(crate) trait PutTargets {
    /// Appends the list (its length, then each target).
    fn put_targets(&self, buf: &mut BytesMut);
}

impl<T: TargetItem> PutTargets for [T] {
    fn put_targets(&self, buf: &mut BytesMut) {
        put_targets(buf, self.iter().map(TargetItem::view));
    }
}

/// A report's target list encoded ahead of time: a publisher keeps one per link for the
/// subject it publishes on and appends it to each report, rather than encode every target of
/// every report.
#[derive(Debug, Default)]
pub(crate) struct EncodedTargets {
    count: u64,
    bytes: BytesMut,
}

impl EncodedTargets {
    /// Adds a target at the end of the list.
    pub(crate) fn push(&mut self, target: TargetView<'_>) {
        put_target(&mut self.bytes, target);
        self.count += 1;
    }
}

impl PutTargets for EncodedTargets {
    fn put_targets(&self, buf: &mut BytesMut) {
        put_varint(buf, self.count);
        buf.extend_from_slice(&self.bytes);
    }
}

/// Two target lists written as one, the first's targets first: the subscribers of both
/// formats behind one link when a report's content is the same in both (JSON already).
pub(crate) struct Joined<'a>(pub(crate) &'a EncodedTargets, pub(crate) &'a EncodedTargets);

impl PutTargets for Joined<'_> {
    fn put_targets(&self, buf: &mut BytesMut) {
        put_varint(buf, self.0.count + self.1.count);
        buf.extend_from_slice(&self.0.bytes);
        buf.extend_from_slice(&self.1.bytes);
    }
}

/// Appends a report frame made of a received report's head
/// ([`ReportView::head`](super::ReportView::head)) and other targets: the same report for
/// other subscribers, without encoding its content again. `conflated` is the count of a
/// `Frame::ConflatedReport` (whose head it is, [`ReportView::conflated`](super::ReportView::conflated)),
/// written after the targets.
pub(crate) fn encode_report_spliced<'t>(
    head: &[u8],
    targets: impl ExactSizeIterator<Item = TargetView<'t>>,
    conflated: Option<u64>,
    buf: &mut BytesMut,
    max: usize,
) -> Result<(), CodecError> {
    let start = buf.len();
    buf.put_u32(0);
    buf.extend_from_slice(head);
    put_targets(buf, targets);
    if let Some(n) = conflated {
        put_varint(buf, n);
    }
    finish_frame(buf, start, max, Ok(0))
}

/// Appends a `Frame::ConflatedReport` from the parts a link keeps aside for conflated
/// subscriptions: a report's head without its variant index, its encoded targets (count
/// first), and the count it stands for.
pub(crate) fn encode_conflated(
    head: &[u8],
    targets: &[u8],
    conflated: u64,
    buf: &mut BytesMut,
    max: usize,
) -> Result<(), CodecError> {
    put_frame(buf, max, CONFLATED_REPORT_VARIANT, |buf| {
        buf.extend_from_slice(head);
        buf.extend_from_slice(targets);
        put_varint(buf, conflated);
    })
}

/// Encodes a target list (count first) on its own, for [`encode_conflated`].
pub(crate) fn encode_targets<'t>(
    targets: impl ExactSizeIterator<Item = TargetView<'t>>,
) -> BytesMut {
    let mut buf = BytesMut::new();
    put_targets(&mut buf, targets);
    buf
}

/// bincode's varint (see `decode::Fields::varint`).
// The field writers are always inlined into the frame encoders: a writer called out of line
// keeps the buffer in memory, and reads its length back after every byte it writes (see
// BENCHMARKS.md, "Measured reasons in the code").
#[inline(always)]
fn put_varint(buf: &mut BytesMut, n: u64) {
    if n < 251 {
        buf.put_u8(n as u8);
    } else if let Ok(n) = u16::try_from(n) {
        buf.put_u8(251);
        buf.put_u16_le(n);
    } else if let Ok(n) = u32::try_from(n) {
        buf.put_u8(252);
        buf.put_u32_le(n);
    } else {
        buf.put_u8(253);
        buf.put_u64_le(n);
    }
}

#[inline(always)]
fn put_bytes(buf: &mut BytesMut, bytes: &[u8]) {
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

#[inline(always)]
fn put_agent(buf: &mut BytesMut, agent: AgentId) {
    put_bytes(buf, agent.as_uuid().as_bytes());
}

#[inline(always)]
fn put_targets<'t>(buf: &mut BytesMut, targets: impl ExactSizeIterator<Item = TargetView<'t>>) {
    put_varint(buf, targets.len() as u64);
    for target in targets {
        put_target(buf, target);
    }
}

#[inline(always)]
fn put_target(buf: &mut BytesMut, target: TargetView<'_>) {
    put_agent(buf, target.subscriber);
    match target.pattern {
        None => buf.put_u8(0),
        Some(pattern) => {
            buf.put_u8(1);
            put_bytes(buf, pattern.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::SubjectPattern;
    use crate::wire::frame::ReportRef;
    use crate::wire::tests::{agent, encoded};
    use crate::wire::{Frame, ReportFrame, ReportTarget, WirePayload, DEFAULT_MAX_FRAME};

    #[test]
    fn borrowed_report_frames_encode_exactly_as_owned_ones() {
        let content = WirePayload {
            format: Format::Json,
            type_name: "t".into(),
            bytes: bytes::Bytes::from_static(b"[1]"),
        };
        let targets = [
            (agent(2), Some(SubjectPattern::new("a.*").unwrap())),
            (agent(3), None),
        ];
        for targeted in [false, true] {
            let owned = ReportFrame {
                publisher: agent(1),
                subject: "a.b".into(),
                content: content.clone(),
                targets: vec![
                    ReportTarget {
                        subscriber: agent(2),
                        pattern: Some("a.*".into()),
                    },
                    ReportTarget {
                        subscriber: agent(3),
                        pattern: None,
                    },
                ],
            };
            let owned = if targeted {
                Frame::TargetedReport(owned)
            } else {
                Frame::Report(owned)
            };
            let borrowed = ReportRef {
                targeted,
                publisher: agent(1),
                subject: "a.b".into(),
                content: content.view(),
                targets: &targets[..],
            };
            let mut buf = BytesMut::new();
            encode_frame(&borrowed, &mut buf, DEFAULT_MAX_FRAME).unwrap();
            assert_eq!(buf.to_vec(), encoded(&owned));
            let mut by_hand = BytesMut::new();
            encode_report(&borrowed, &mut by_hand, DEFAULT_MAX_FRAME).unwrap();
            assert_eq!(by_hand.to_vec(), encoded(&owned));
            // The same targets encoded ahead of time.
            let mut ahead = EncodedTargets::default();
            targets.iter().for_each(|t| ahead.push(t.view()));
            let mut with_ahead = BytesMut::new();
            let report = ReportRef {
                targeted,
                publisher: agent(1),
                subject: "a.b".into(),
                content: content.view(),
                targets: &ahead,
            };
            encode_report(&report, &mut with_ahead, DEFAULT_MAX_FRAME).unwrap();
            assert_eq!(with_ahead.to_vec(), encoded(&owned));
            // And in two lists joined.
            let (mut first, mut second) = (EncodedTargets::default(), EncodedTargets::default());
            first.push(targets[0].view());
            second.push(targets[1].view());
            let joined = Joined(&first, &second);
            let report = ReportRef {
                targeted,
                publisher: agent(1),
                subject: "a.b".into(),
                content: content.view(),
                targets: &joined,
            };
            let mut with_joined = BytesMut::new();
            encode_report(&report, &mut with_joined, DEFAULT_MAX_FRAME).unwrap();
            assert_eq!(with_joined.to_vec(), encoded(&owned));
            // Over the cap, nothing is left behind.
            let mut small = BytesMut::from(&b"x"[..]);
            assert!(matches!(
                encode_report(&borrowed, &mut small, 10),
                Err(CodecError::TooLarge { .. })
            ));
            assert_eq!(&small[..], b"x");
        }
    }
}
