//! Frames to bytes and back: `LengthDelimitedCodec` framing with bincode inside.

use bytes::{BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

use super::frame::{
    ContentView, Frame, Hello, ReportFrame, ReportRef, ReportTarget, ReportView, RequestFrame,
    RequestView, ResponseView, ServiceInfo, TargetItem, TargetList, TargetView, Text, WireFailure,
    WirePayload, CALL_VARIANTS, REPORT_VARIANT, REQUEST_VARIANT, RESPONSE_VARIANT,
    TARGETED_REPORT_VARIANT,
};
use crate::ids::{AgentId, ProcessId};
use crate::payload::Format;

/// Default cap on one frame's size: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// The length prefix before every frame's body: 4 bytes, big-endian.
pub(crate) const HEADER: usize = 4;

/// Why bytes could not become a frame, or a frame bytes.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The length prefix announces a frame larger than the cap (checked before allocating).
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// The announced or encoded length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The frame's bytes are not a valid `Frame` (garbage, truncated, unknown variant, ...).
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

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

/// Appends a report frame made of a received report's head ([`ReportView::head`]) and other
/// targets: the same report for other subscribers, without encoding its content again.
pub(crate) fn encode_report_spliced<'t>(
    head: &[u8],
    targets: impl ExactSizeIterator<Item = TargetView<'t>>,
    buf: &mut BytesMut,
    max: usize,
) -> Result<(), CodecError> {
    let start = buf.len();
    buf.put_u32(0);
    buf.extend_from_slice(head);
    put_targets(buf, targets);
    finish_frame(buf, start, max, Ok(0))
}

/// bincode's varint (see `Fields::varint`).
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

fn put_bytes(buf: &mut BytesMut, bytes: &[u8]) {
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

fn put_agent(buf: &mut BytesMut, agent: AgentId) {
    put_bytes(buf, agent.as_uuid().as_bytes());
}

fn put_targets<'t>(buf: &mut BytesMut, targets: impl ExactSizeIterator<Item = TargetView<'t>>) {
    put_varint(buf, targets.len() as u64);
    for target in targets {
        put_target(buf, target);
    }
}

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

/// Decodes one frame's body (without its length prefix) into an owned [`Frame`]. The whole
/// body must be used. Decoded by hand, like [`decode_incoming`]: a length is checked against
/// the bytes actually left in the body before anything is allocated for it, so a frame can
/// never make the decoder allocate more than its own size.
pub(crate) fn decode_frame(body: &[u8]) -> Result<Frame, CodecError> {
    Ok(match decode_incoming(body)? {
        Incoming::Report { view, targeted } => {
            let report = owned_report(&view).map_err(|e| malformed_in("Report", e))?;
            if targeted {
                Frame::TargetedReport(report)
            } else {
                Frame::Report(report)
            }
        }
        Incoming::Request(view) => Frame::Request(RequestFrame {
            conversation: view.conversation,
            requester: view.requester,
            target: view.target,
            method: owned_text(view.method).map_err(|e| malformed_in("Request", e))?,
            args: owned_payload(view.args).map_err(|e| malformed_in("Request", e))?,
            reply_format: view.reply_format,
        }),
        Incoming::Response(view) => Frame::Response {
            conversation: view.conversation,
            requester: view.requester,
            content: owned_payload(view.content).map_err(|e| malformed_in("Response", e))?,
        },
        Incoming::Other(frame) => frame,
    })
}

fn malformed_in(kind: &str, what: String) -> CodecError {
    CodecError::Malformed(format!("{kind} frame: {what}"))
}

fn owned_text(text: Text<'_>) -> Result<String, String> {
    text.to_str()
        .map(str::to_owned)
        .map_err(|e| text.utf8_error(e))
}

fn owned_payload(content: ContentView<'_>) -> Result<WirePayload, String> {
    Ok(WirePayload {
        format: content.format,
        type_name: owned_text(content.type_name)?,
        bytes: bytes::Bytes::copy_from_slice(content.bytes),
    })
}

fn owned_report(view: &ReportView<'_>) -> Result<ReportFrame, String> {
    Ok(ReportFrame {
        publisher: view.publisher,
        subject: owned_text(view.subject)?,
        content: owned_payload(view.content)?,
        targets: view
            .targets
            .iter()
            .map(|t| {
                Ok(ReportTarget {
                    subscriber: t.subscriber,
                    pattern: t.pattern.map(owned_text).transpose()?,
                })
            })
            .collect::<Result<_, String>>()?,
    })
}

/// Decodes one frame's body with serde and bincode (the reference the hand-written decoders
/// are pinned to, in tests and fuzzing), under the crate's one limited configuration.
#[doc(hidden)]
pub fn decode_frame_serde(body: &[u8]) -> Result<Frame, CodecError> {
    let (frame, used): (Frame, usize) =
        crate::payload::bincode_decode(body).map_err(|e| CodecError::Malformed(e.to_string()))?;
    if used != body.len() {
        return Err(CodecError::Malformed(format!(
            "{} trailing bytes after a {} frame",
            body.len() - used,
            frame.kind()
        )));
    }
    Ok(frame)
}

/// The length of the first frame in `buf`, header included: `None` while it is incomplete.
/// The announced length is checked against `max` from the header alone.
pub(crate) fn frame_len(buf: &[u8], max: usize) -> Result<Option<usize>, CodecError> {
    let Some(len) = announced_len(buf) else {
        return Ok(None);
    };
    if len > max {
        return Err(CodecError::TooLarge { len, max });
    }
    Ok((buf.len() >= HEADER + len).then_some(HEADER + len))
}

/// The body length the first frame's header announces, once the header is there.
pub(crate) fn announced_len(buf: &[u8]) -> Option<usize> {
    let header = buf.get(..HEADER)?;
    Some(u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize)
}

/// Splits the first complete frame off `buf`: `(frame with its header, body, rest)`.
pub(crate) fn split_frame(buf: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let len = frame_len(buf, usize::MAX).ok().flatten()?;
    let (frame, rest) = buf.split_at(len);
    Some((frame, &frame[HEADER..], rest))
}

/// Whether a frame body is a request, a response or a failure (its sender waits for it).
pub(crate) fn is_call(body: &[u8]) -> bool {
    body.first().is_some_and(|v| CALL_VARIANTS.contains(v))
}

/// A received frame: reports, requests and responses are decoded without copying (they are
/// most of the traffic, and a relay forwards them as they are), everything else as a [`Frame`].
#[derive(Debug)]
pub(crate) enum Incoming<'a> {
    /// `Frame::Report` (`targeted: false`) or `Frame::TargetedReport`.
    Report {
        view: ReportView<'a>,
        targeted: bool,
    },
    /// `Frame::Request`.
    Request(RequestView<'a>),
    /// `Frame::Response`.
    Response(ResponseView<'a>),
    /// Any other frame.
    Other(Frame),
}

impl Incoming<'_> {
    /// The frame's variant name, for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Incoming::Report {
                targeted: false, ..
            } => "Report",
            Incoming::Report { targeted: true, .. } => "TargetedReport",
            Incoming::Request(_) => "Request",
            Incoming::Response(_) => "Response",
            Incoming::Other(frame) => frame.kind(),
        }
    }
}

/// The name of the frame variant with index `variant`, for messages.
fn frame_kind(variant: u8) -> &'static str {
    const KINDS: [&str; 16] = [
        "Hello",
        "Refused",
        "ServiceAvailable",
        "ServiceWithdrawn",
        "GroupJoined",
        "GroupLeft",
        "SubscriptionRequested",
        "SubscriptionWithdrawn",
        "Report",
        "TargetedReport",
        "PublisherNotice",
        "Request",
        "Response",
        "Failure",
        "Heartbeat",
        "Goodbye",
    ];
    KINDS
        .get(usize::from(variant))
        .copied()
        .unwrap_or("unknown")
}

/// The smallest encoded target: an agent (length and 16 bytes) and the `None` tag.
const MIN_TARGET_LEN: usize = 18;

/// Decodes one frame's body (without its length prefix). The whole body must be used.
pub(crate) fn decode_incoming(body: &[u8]) -> Result<Incoming<'_>, CodecError> {
    let mut fields = Fields { buf: body, at: 1 };
    let (kind, decoded) = match body.first() {
        Some(&REPORT_VARIANT) => ("Report", fields.report(false)),
        Some(&TARGETED_REPORT_VARIANT) => ("TargetedReport", fields.report(true)),
        Some(&REQUEST_VARIANT) => ("Request", fields.request().map(Incoming::Request)),
        Some(&RESPONSE_VARIANT) => ("Response", fields.response().map(Incoming::Response)),
        Some(&variant) => (
            frame_kind(variant),
            fields.other(variant).map(Incoming::Other),
        ),
        None => return Err(CodecError::Malformed("empty frame".to_owned())),
    };
    let malformed = |what: String| CodecError::Malformed(format!("{kind} frame: {what}"));
    let decoded = decoded.map_err(malformed)?;
    if fields.at != body.len() {
        return Err(malformed(format!(
            "{} trailing bytes",
            body.len() - fields.at
        )));
    }
    Ok(decoded)
}

impl<'a> Fields<'a> {
    fn report(&mut self, targeted: bool) -> Result<Incoming<'a>, String> {
        let body = self.buf;
        let publisher = self.agent()?;
        let subject = self.text()?;
        let content = self.content()?;
        let head = &body[..self.at];
        let count = self.varint()?;
        // Sized once (a target takes at least 18 bytes, so a lying count reserves nothing more).
        let mut targets = TargetList::with_capacity(self.fit(count, MIN_TARGET_LEN));
        for _ in 0..count {
            let subscriber = self.agent()?;
            let pattern = match self.byte()? {
                0 => None,
                1 => Some(self.text()?),
                other => return Err(format!("invalid option tag {other}")),
            };
            targets.push(TargetView {
                subscriber,
                pattern,
            });
        }
        Ok(Incoming::Report {
            view: ReportView {
                publisher,
                subject,
                content,
                targets,
                head,
            },
            targeted,
        })
    }

    fn request(&mut self) -> Result<RequestView<'a>, String> {
        Ok(RequestView {
            conversation: self.varint()?,
            requester: self.agent()?,
            target: self.agent()?,
            method: self.text()?,
            args: self.content()?,
            reply_format: self.format()?,
        })
    }

    /// Every frame but reports, requests and responses, as an owned [`Frame`]; the fields in
    /// declaration order, as bincode writes them.
    fn other(&mut self, variant: u8) -> Result<Frame, String> {
        // The variant index is a varint that must fit a u32 (one byte below 251).
        if variant >= 251 {
            return Err(format!("invalid variant index marker {variant}"));
        }
        Ok(match variant {
            0 => Frame::Hello(Hello {
                version: self.u32()?,
                process: ProcessId::from_uuid(self.uuid()?),
                node: self.string()?,
                group: self.string()?,
                hub: self.bool()?,
            }),
            1 => Frame::Refused {
                reason: self.string()?,
            },
            2 => Frame::ServiceAvailable(ServiceInfo {
                agent: self.agent()?,
                name: self.string()?,
                audience: self.string()?,
                process: ProcessId::from_uuid(self.uuid()?),
                groups: {
                    let count = self.varint()?;
                    // Sized by what is left (a string takes at least one byte), not by the count,
                    // and grown past a few as they come (a Vec<String> entry is 24 bytes).
                    let mut groups = Vec::with_capacity(self.fit(count, 1).min(16));
                    for _ in 0..count {
                        groups.push(self.string()?);
                    }
                    groups
                },
            }),
            3 => Frame::ServiceWithdrawn {
                agent: self.agent()?,
            },
            4 => Frame::GroupJoined {
                agent: self.agent()?,
                group: self.string()?,
            },
            5 => Frame::GroupLeft {
                agent: self.agent()?,
                group: self.string()?,
            },
            6 => Frame::SubscriptionRequested {
                publisher: self.agent()?,
                subscriber: self.agent()?,
                pattern: self.string()?,
            },
            7 => Frame::SubscriptionWithdrawn {
                publisher: self.agent()?,
                subscriber: self.agent()?,
                pattern: self.string()?,
            },
            10 => Frame::PublisherNotice {
                publisher: self.agent()?,
                subscriber: self.agent()?,
                available: self.bool()?,
            },
            13 => Frame::Failure {
                conversation: self.varint()?,
                requester: self.agent()?,
                failure: WireFailure {
                    code: self.u32()?,
                    description: self.string()?,
                    origin: self.string()?,
                    details: self.string()?,
                },
            },
            14 => Frame::Heartbeat,
            15 => Frame::Goodbye {
                reason: self.string()?,
            },
            other => return Err(format!("unknown variant index {other}")),
        })
    }

    fn response(&mut self) -> Result<ResponseView<'a>, String> {
        Ok(ResponseView {
            conversation: self.varint()?,
            requester: self.agent()?,
            content: self.content()?,
        })
    }

    /// A [`WirePayload`](super::WirePayload).
    fn content(&mut self) -> Result<ContentView<'a>, String> {
        Ok(ContentView {
            format: self.format()?,
            type_name: self.text()?,
            bytes: self.bytes()?,
        })
    }

    fn format(&mut self) -> Result<Format, String> {
        match self.variant()? {
            0 => Ok(Format::Bincode),
            1 => Ok(Format::Json),
            other => Err(format!("unknown content format {other}")),
        }
    }
}

/// Reads the fields of a frame as bincode (`standard()`: varint integers) writes them.
/// Hand-written for reports, requests and responses, which are most of the traffic: it
/// borrows everything and leaves the UTF-8 check of names to the receiver (its name cache).
/// Tests pin it to the serde encoding.
struct Fields<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.buf.len());
        let end = end.ok_or_else(|| {
            format!(
                "ends after {} bytes, inside a field of {n} bytes",
                self.buf.len()
            )
        })?;
        let bytes = &self.buf[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    /// bincode's varint: one byte below 251, else a marker for a 2, 4 or 8 byte little-endian
    /// integer. Only the shortest form is accepted (the one every encoder writes), so that a
    /// decoded frame encodes again to the same bytes.
    fn varint(&mut self) -> Result<u64, String> {
        fn le<const N: usize>(bytes: &[u8]) -> [u8; N] {
            let mut out = [0; N];
            out.copy_from_slice(bytes);
            out
        }
        let (n, min) = match self.byte()? {
            n @ 0..=250 => return Ok(u64::from(n)),
            251 => (u64::from(u16::from_le_bytes(le(self.take(2)?))), 251),
            252 => (u64::from(u32::from_le_bytes(le(self.take(4)?))), 1 << 16),
            253 => (u64::from_le_bytes(le(self.take(8)?)), 1 << 32),
            marker => return Err(format!("invalid integer marker {marker}")),
        };
        if n < min {
            return Err(format!("integer {n} not in its shortest form"));
        }
        Ok(n)
    }

    /// A `u32` field (a varint that must fit).
    fn u32(&mut self) -> Result<u32, String> {
        let n = self.varint()?;
        u32::try_from(n).map_err(|_| format!("integer {n} too large for a u32 field"))
    }

    fn bool(&mut self) -> Result<bool, String> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("invalid boolean {other}")),
        }
    }

    /// An owned string: its length is checked against the bytes left before it is copied.
    fn string(&mut self) -> Result<String, String> {
        owned_text(self.text()?)
    }

    fn uuid(&mut self) -> Result<uuid::Uuid, String> {
        let bytes = self.bytes()?;
        uuid::Uuid::from_slice(bytes).map_err(|_| format!("an identity of {} bytes", bytes.len()))
    }

    /// How many of `count` announced items of at least `min_len` bytes each can be in what is
    /// left of the frame: the capacity to reserve for them.
    fn fit(&self, count: u64, min_len: usize) -> usize {
        usize::try_from(count)
            .unwrap_or(usize::MAX)
            .min((self.buf.len() - self.at) / min_len)
    }

    /// An enum variant index: a varint that must fit a `u32`, as bincode requires.
    fn variant(&mut self) -> Result<u64, String> {
        match self.buf.get(self.at) {
            Some(&marker) if marker >= 253 => Err(format!("invalid variant index marker {marker}")),
            _ => self.varint(),
        }
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| format!("length {len} too large"))?;
        self.take(len)
    }

    fn text(&mut self) -> Result<Text<'a>, String> {
        self.bytes().map(Text)
    }

    fn agent(&mut self) -> Result<AgentId, String> {
        self.uuid().map(AgentId::from_uuid)
    }
}

/// A tokio-util codec for [`Frame`]s with a size cap.
#[derive(Debug)]
pub struct FrameCodec {
    inner: LengthDelimitedCodec,
    max: usize,
    /// The inner codec has consumed a header and waits for the body.
    in_body: bool,
}

impl FrameCodec {
    /// A codec refusing frames larger than `max` bytes.
    pub fn new(max: usize) -> Self {
        let inner = LengthDelimitedCodec::builder()
            .length_field_length(HEADER)
            .max_frame_length(max)
            .new_codec();
        FrameCodec {
            inner,
            max,
            in_body: false,
        }
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(DEFAULT_MAX_FRAME)
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        // Check the announced length ourselves for a precise error (the inner codec checks it
        // too, before reserving any space).
        if let Some(len) = announced_len(src).filter(|&len| !self.in_body && len > self.max) {
            return Err(CodecError::TooLarge { len, max: self.max });
        }
        let before = src.len();
        match self.inner.decode(src) {
            Ok(Some(body)) => {
                self.in_body = false;
                decode_frame(&body).map(Some)
            }
            Ok(None) => {
                if src.len() < before {
                    self.in_body = true;
                }
                Ok(None)
            }
            Err(e) => Err(CodecError::Io(e)),
        }
    }
}

impl Encoder<&Frame> for FrameCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        encode_frame(frame, dst, self.max)
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        encode_frame(&frame, dst, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AgentId, ProcessId};
    use crate::payload::Format;
    use crate::wire::frame::{ReportRef, TargetView};
    use crate::wire::{
        Hello, ReportFrame, ReportTarget, RequestFrame, ServiceInfo, WireFailure, WirePayload,
    };

    fn agent(n: u8) -> AgentId {
        AgentId::from_uuid(uuid::Uuid::from_bytes([n; 16]))
    }

    fn encoded(frame: &Frame) -> Vec<u8> {
        let mut buf = BytesMut::new();
        encode_frame(frame, &mut buf, DEFAULT_MAX_FRAME).unwrap();
        buf.to_vec()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn samples() -> Vec<Frame> {
        let payload = WirePayload {
            format: Format::Bincode,
            type_name: "u8".into(),
            bytes: bytes::Bytes::from_static(&[7]),
        };
        vec![
            Frame::Hello(Hello {
                version: 1,
                process: ProcessId::from_uuid(uuid::Uuid::from_bytes([9; 16])),
                node: "n".into(),
                group: "".into(),
                hub: true,
            }),
            Frame::Refused { reason: "x".into() },
            Frame::ServiceAvailable(ServiceInfo {
                agent: agent(1),
                name: "s".into(),
                audience: "*".into(),
                process: ProcessId::from_uuid(uuid::Uuid::from_bytes([9; 16])),
                groups: vec!["g".into()],
            }),
            Frame::ServiceWithdrawn { agent: agent(1) },
            Frame::GroupJoined {
                agent: agent(1),
                group: "g".into(),
            },
            Frame::GroupLeft {
                agent: agent(1),
                group: "g".into(),
            },
            Frame::SubscriptionRequested {
                publisher: agent(1),
                subscriber: agent(2),
                pattern: "*".into(),
            },
            Frame::SubscriptionWithdrawn {
                publisher: agent(1),
                subscriber: agent(2),
                pattern: "*".into(),
            },
            Frame::Report(ReportFrame {
                publisher: agent(1),
                subject: "t".into(),
                content: payload.clone(),
                targets: vec![ReportTarget {
                    subscriber: agent(2),
                    pattern: Some("*".into()),
                }],
            }),
            Frame::TargetedReport(ReportFrame {
                publisher: agent(1),
                subject: "t".into(),
                content: payload.clone(),
                targets: vec![ReportTarget {
                    subscriber: agent(2),
                    pattern: None,
                }],
            }),
            Frame::PublisherNotice {
                publisher: agent(1),
                subscriber: agent(2),
                available: true,
            },
            Frame::Request(RequestFrame {
                conversation: 300,
                requester: agent(2),
                target: agent(1),
                method: "m".into(),
                args: payload.clone(),
                reply_format: Format::Json,
            }),
            Frame::Response {
                conversation: 300,
                requester: agent(2),
                content: payload,
            },
            Frame::Failure {
                conversation: 300,
                requester: agent(2),
                failure: WireFailure {
                    code: 57,
                    description: "d".into(),
                    origin: "o".into(),
                    details: "".into(),
                },
            },
            Frame::Heartbeat,
            Frame::Goodbye {
                reason: "bye".into(),
            },
        ]
    }

    #[test]
    fn borrowed_report_frames_encode_exactly_as_owned_ones() {
        use crate::names::SubjectPattern;
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
            // Over the cap, nothing is left behind.
            let mut small = BytesMut::from(&b"x"[..]);
            assert!(matches!(
                encode_report(&borrowed, &mut small, 10),
                Err(CodecError::TooLarge { .. })
            ));
            assert_eq!(&small[..], b"x");
        }
    }

    #[test]
    fn reports_decode_without_copying_and_other_frames_as_frames() {
        // Beyond the samples: fields long enough for 2- and 4-byte length markers, JSON content.
        let big = Frame::Report(ReportFrame {
            publisher: agent(1),
            subject: "s".repeat(300),
            content: WirePayload {
                format: Format::Json,
                type_name: "t".repeat(251),
                bytes: bytes::Bytes::from(vec![5u8; 70_000]),
            },
            targets: (0..300u16)
                .map(|i| ReportTarget {
                    subscriber: agent(i as u8),
                    pattern: (i % 2 == 0).then(|| "p".repeat(i.into())),
                })
                .collect(),
        });
        let big_payload = WirePayload {
            format: Format::Json,
            type_name: "t".repeat(300),
            bytes: bytes::Bytes::from(vec![7u8; 70_000]),
        };
        let big_request = Frame::Request(RequestFrame {
            conversation: u64::MAX - 1,
            requester: agent(2),
            target: agent(1),
            method: "m".repeat(70_000),
            args: big_payload.clone(),
            reply_format: Format::Json,
        });
        let big_response = Frame::Response {
            conversation: 1 << 40,
            requester: agent(3),
            content: big_payload,
        };
        for frame in samples()
            .into_iter()
            .chain([big, big_request, big_response])
        {
            let bytes = encoded(&frame);
            let (whole, body, rest) = split_frame(&bytes).unwrap();
            assert_eq!((whole.len(), rest.len()), (bytes.len(), 0));
            assert_eq!(
                is_call(body),
                matches!(
                    frame,
                    Frame::Request(_) | Frame::Response { .. } | Frame::Failure { .. }
                )
            );
            match (decode_incoming(body).unwrap(), &frame) {
                (
                    Incoming::Report { view, targeted },
                    Frame::Report(owned) | Frame::TargetedReport(owned),
                ) => {
                    assert_eq!(targeted, matches!(frame, Frame::TargetedReport(_)));
                    assert_eq!(
                        (view.publisher, view.subject),
                        (owned.publisher, owned.subject.as_str().into())
                    );
                    assert_eq!(view.content, owned.content.view());
                    let targets: Vec<_> = owned
                        .targets
                        .iter()
                        .map(|t| TargetView {
                            subscriber: t.subscriber,
                            pattern: t.pattern.as_deref().map(Text::from),
                        })
                        .collect();
                    assert_eq!(&view.targets[..], &targets[..]);
                    // Re-encoded from the view, it is the same frame.
                    let again = ReportRef {
                        targeted,
                        publisher: view.publisher,
                        subject: view.subject,
                        content: view.content,
                        targets: &view.targets[..],
                    };
                    let mut buf = BytesMut::new();
                    encode_frame(&again, &mut buf, DEFAULT_MAX_FRAME).unwrap();
                    assert_eq!(buf.to_vec(), bytes);
                    let mut by_hand = BytesMut::new();
                    encode_report(&again, &mut by_hand, DEFAULT_MAX_FRAME).unwrap();
                    assert_eq!(by_hand.to_vec(), bytes);
                    // So is its head spliced with the same targets; with fewer targets it is
                    // the owned frame listing only those.
                    let mut spliced = BytesMut::new();
                    encode_report_spliced(
                        view.head,
                        view.targets.iter().copied(),
                        &mut spliced,
                        DEFAULT_MAX_FRAME,
                    )
                    .unwrap();
                    assert_eq!(spliced.to_vec(), bytes);
                    let mut fewer = owned.clone();
                    fewer.targets.clear();
                    let fewer = if targeted {
                        Frame::TargetedReport(fewer)
                    } else {
                        Frame::Report(fewer)
                    };
                    let mut spliced = BytesMut::new();
                    encode_report_spliced(
                        view.head,
                        std::iter::empty(),
                        &mut spliced,
                        DEFAULT_MAX_FRAME,
                    )
                    .unwrap();
                    assert_eq!(spliced.to_vec(), encoded(&fewer));
                }
                (Incoming::Request(view), Frame::Request(owned)) => {
                    let expected = RequestView {
                        conversation: owned.conversation,
                        requester: owned.requester,
                        target: owned.target,
                        method: owned.method.as_str().into(),
                        args: owned.args.view(),
                        reply_format: owned.reply_format,
                    };
                    assert_eq!(view, expected);
                    // Encoded by hand from the view, it is the same frame.
                    let mut by_hand = BytesMut::new();
                    encode_request(&view, &mut by_hand, DEFAULT_MAX_FRAME).unwrap();
                    assert_eq!(by_hand.to_vec(), bytes);
                    assert!(matches!(
                        encode_request(&view, &mut by_hand, 10),
                        Err(CodecError::TooLarge { .. })
                    ));
                    assert_eq!(by_hand.to_vec(), bytes, "nothing left behind");
                }
                (
                    Incoming::Response(view),
                    Frame::Response {
                        conversation,
                        requester,
                        content,
                    },
                ) => {
                    let expected = ResponseView {
                        conversation: *conversation,
                        requester: *requester,
                        content: content.view(),
                    };
                    assert_eq!(view, expected);
                    let mut by_hand = BytesMut::new();
                    encode_response(&view, &mut by_hand, DEFAULT_MAX_FRAME).unwrap();
                    assert_eq!(by_hand.to_vec(), bytes);
                    assert!(matches!(
                        encode_response(&view, &mut by_hand, 10),
                        Err(CodecError::TooLarge { .. })
                    ));
                    assert_eq!(by_hand.to_vec(), bytes, "nothing left behind");
                }
                (Incoming::Other(decoded), _) => {
                    assert!(
                        !matches!(frame, Frame::Request(_) | Frame::Response { .. }),
                        "decoded by serde"
                    );
                    assert_eq!(&decoded, &frame)
                }
                (_, other) => panic!("{} decoded as another frame", other.kind()),
            };
        }
        // Requests and responses: every prefix, or an extra byte, is malformed; so is an
        // unknown reply format.
        for sample in [&samples()[11], &samples()[12]] {
            let bytes = encoded(sample);
            let body = &bytes[HEADER..];
            for cut in 1..body.len() {
                let err = decode_incoming(&body[..cut]).unwrap_err().to_string();
                assert!(
                    err.contains(&format!("{} frame", sample.kind())),
                    "cut at {cut}: {err}"
                );
            }
            let mut long = body.to_vec();
            long.push(0);
            assert!(decode_incoming(&long)
                .unwrap_err()
                .to_string()
                .contains("1 trailing bytes"));
        }
        let bytes = encoded(&samples()[11]);
        let mut bad = bytes[HEADER..].to_vec();
        *bad.last_mut().unwrap() = 2;
        assert!(decode_incoming(&bad)
            .unwrap_err()
            .to_string()
            .contains("unknown content format 2"));
        // A report body cut short, or followed by extra bytes, is malformed.
        let bytes = encoded(&samples()[8]);
        let body = &bytes[HEADER..];
        assert!(matches!(
            decode_incoming(&body[..body.len() - 2]),
            Err(CodecError::Malformed(_))
        ));
        let mut long = body.to_vec();
        long.push(0);
        let err = decode_incoming(&long).unwrap_err();
        assert!(err.to_string().contains("trailing"), "{err}");
        // An empty body is no frame at all.
        assert!(matches!(
            decode_incoming(&[]),
            Err(CodecError::Malformed(_))
        ));
        // Every prefix of a report body is malformed, never a panic; so is a bad format, option
        // tag, identity length or integer marker.
        for cut in 1..body.len() {
            assert!(
                matches!(decode_incoming(&body[..cut]), Err(CodecError::Malformed(_))),
                "cut at {cut}"
            );
        }
        let at_format = 1 + 17 + 2;
        for (at, value, message) in [
            (at_format, 7, "unknown content format 7"),
            (body.len() - 3, 9, "invalid option tag 9"),
            (1, 15, "an identity of 15 bytes"),
            (at_format, 255, "invalid variant index marker 255"),
            (at_format, 253, "invalid variant index marker 253"),
            (1 + 17, 255, "invalid integer marker 255"),
        ] {
            let mut bad = body.to_vec();
            bad[at] = value;
            let err = decode_incoming(&bad).unwrap_err().to_string();
            assert!(err.contains(message), "{err}");
        }
    }

    #[test]
    fn frame_len_finds_complete_frames_and_checks_the_cap_from_the_header() {
        let bytes = encoded(&samples()[1]);
        for cut in 0..bytes.len() {
            assert_eq!(
                frame_len(&bytes[..cut], DEFAULT_MAX_FRAME).unwrap(),
                None,
                "cut at {cut}"
            );
        }
        assert_eq!(
            frame_len(&bytes, DEFAULT_MAX_FRAME).unwrap(),
            Some(bytes.len())
        );
        let err = frame_len(&[0, 0, 1, 0], 255).unwrap_err();
        assert_eq!(
            err.to_string(),
            "frame of 256 bytes exceeds the maximum of 255 bytes"
        );
        assert!(split_frame(&bytes[..bytes.len() - 1]).is_none());
    }

    #[test]
    fn every_variant_round_trips() {
        for frame in samples() {
            let mut codec = FrameCodec::default();
            let mut buf = BytesMut::from(&encoded(&frame)[..]);
            assert_eq!(codec.decode(&mut buf).unwrap(), Some(frame));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn golden_bytes_pin_the_format() {
        let golden: Vec<String> = samples().iter().map(|f| hex(&encoded(f))).collect();
        // Length prefix (4 bytes, big endian), variant index (varint), then the fields in
        // order: identities as 16 length-prefixed bytes, strings and byte strings
        // length-prefixed, integers as varints (300 = fb2c01), booleans as one byte.
        let expected = [
            "0000001700011009090909090909090909090909090909016e0001",
            "00000003010178",
            "0000002a0210010101010101010101010101010101010173012a1009090909090909090909090909090909010167",
            "00000012031001010101010101010101010101010101",
            "000000140410010101010101010101010101010101010167",
            "000000140510010101010101010101010101010101010167",
            "000000250610010101010101010101010101010101011002020202020202020202020202020202012a",
            "000000250710010101010101010101010101010101011002020202020202020202020202020202012a",
            "0000002f081001010101010101010101010101010101017400027538010701100202020202020202020202020202020201012a",
            "0000002d091001010101010101010101010101010101017400027538010701100202020202020202020202020202020200",
            "000000240a1001010101010101010101010101010101100202020202020202020202020202020201",
            "0000002f0bfb2c0110020202020202020202020202020202021001010101010101010101010101010101016d00027538010701",
            "0000001b0cfb2c011002020202020202020202020202020202000275380107",
            "0000001b0dfb2c011002020202020202020202020202020202390164016f00",
            "000000010e",
            "000000050f03627965",
        ];
        assert_eq!(golden, expected);
        // Variant indexes are the declaration order; new variants are only appended.
        for (i, g) in golden.iter().enumerate() {
            assert_eq!(g[8..10], format!("{i:02x}"), "variant {i}");
        }
    }

    #[test]
    fn frames_at_the_limit_pass_and_one_byte_over_fails_before_allocating() {
        let frame = Frame::Goodbye {
            reason: "x".repeat(100),
        };
        let len = encoded(&frame).len() - HEADER;
        let mut at_limit = FrameCodec::new(len);
        let mut buf = BytesMut::from(&encoded(&frame)[..]);
        assert_eq!(at_limit.decode(&mut buf).unwrap(), Some(frame.clone()));

        let mut below = FrameCodec::new(len - 1);
        let mut buf = BytesMut::from(&encoded(&frame)[..]);
        assert!(matches!(
            below.decode(&mut buf),
            Err(CodecError::TooLarge { .. })
        ));
        let mut out = BytesMut::new();
        assert!(matches!(
            below.encode(&frame, &mut out),
            Err(CodecError::TooLarge { .. })
        ));
        assert!(out.is_empty());

        // A huge announced length is refused from the header alone.
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 0][..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert_eq!(
            err.to_string(),
            "frame of 4294967295 bytes exceeds the maximum of 16777216 bytes"
        );
        assert!(buf.capacity() < 1024);
    }

    #[test]
    fn partial_frames_wait_for_more_bytes_split_anywhere() {
        let frame = samples()[8].clone();
        let bytes = encoded(&frame);
        for split in 0..bytes.len() {
            let mut codec = FrameCodec::default();
            let mut buf = BytesMut::from(&bytes[..split]);
            assert_eq!(codec.decode(&mut buf).unwrap(), None, "split at {split}");
            buf.extend_from_slice(&bytes[split..]);
            assert_eq!(codec.decode(&mut buf).unwrap(), Some(frame.clone()));
        }
    }

    #[test]
    fn garbage_truncated_bodies_and_unknown_variants_are_malformed() {
        let mut codec = FrameCodec::default();
        let mut garbage = BytesMut::from(&[0, 0, 0, 3, 0xde, 0xad, 0xbe][..]);
        assert!(matches!(
            codec.decode(&mut garbage),
            Err(CodecError::Malformed(_))
        ));

        // A body cut short but with a consistent length prefix.
        let full = encoded(&samples()[2]);
        let body = &full[HEADER..full.len() - 3];
        let mut truncated = BytesMut::new();
        truncated.put_u32(body.len() as u32);
        truncated.extend_from_slice(body);
        assert!(matches!(
            codec.decode(&mut truncated),
            Err(CodecError::Malformed(_))
        ));

        // Variant 200 does not exist.
        let mut unknown = BytesMut::from(&[0, 0, 0, 2, 0xc8, 0][..]);
        let err = codec.decode(&mut unknown).unwrap_err();
        assert!(matches!(err, CodecError::Malformed(_)), "{err}");

        // Trailing bytes after a valid frame body.
        let mut trailing = BytesMut::from(&[0, 0, 0, 2, 14, 0][..]);
        let err = codec.decode(&mut trailing).unwrap_err();
        assert!(err.to_string().contains("trailing"), "{err}");
    }
}
