//! Bytes to frames: one frame body (its length prefix already taken off) decoded by hand.
//!
//! Reports, requests and responses are decoded without copying ([`Incoming`]): their names
//! and content borrow from the body, and their names are not checked for UTF-8 here (see
//! [`Text`]). Every other frame, and [`decode_frame`] for all of them, gives an owned
//! [`Frame`]. The rules hold for every frame: the whole body must be used, every length is
//! checked against the bytes left before anything is allocated for it, and integers are
//! accepted in their shortest form only (a decoded frame encodes back to the same bytes).
//! [`decode_frame_serde`] is the serde reference the hand-written decoder is pinned to, in
//! tests and fuzzing.

use super::frame::{
    frame_kind, ContentView, Frame, Hello, ReportFrame, ReportTarget, ReportView, RequestFrame,
    RequestView, ResponseView, ServiceInfo, TargetBytes, TargetList, TargetView, Text, WireFailure,
    WirePayload, CALL_VARIANTS, CONFLATED_REPORT_VARIANT, REPORT_VARIANT, REQUEST_VARIANT,
    RESPONSE_VARIANT, TARGETED_REPORT_VARIANT,
};
use super::CodecError;
use crate::ids::{AgentId, ProcessId};
use crate::payload::Format;

/// A received frame: reports, requests and responses are decoded without copying (they are
/// most of the traffic, and a relay forwards them as they are), everything else as a [`Frame`].
#[derive(Debug)]
pub(crate) enum Incoming<'a> {
    /// `Frame::Report` (`targeted: false`), `Frame::TargetedReport`, or
    /// `Frame::ConflatedReport` (`targeted: false`, [`ReportView::conflated`] set).
    Report {
        view: ReportView<'a>,
        targeted: bool,
    },
    /// `Frame::Request`.
    Request(RequestView<'a>),
    /// `Frame::Response`.
    Response(ResponseView<'a>),
    /// Any other frame, boxed: a report's view, moved with every report, stays small enough
    /// to be moved without a call to `memcpy`.
    Other(Box<Frame>),
}

impl Incoming<'_> {
    /// The frame's variant name, for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Incoming::Report { view, .. } => view.kind(),
            Incoming::Request(_) => "Request",
            Incoming::Response(_) => "Response",
            Incoming::Other(frame) => frame.kind(),
        }
    }
}

/// Decodes one frame's body (without its length prefix). The whole body must be used.
#[inline(always)]
pub(crate) fn decode_incoming(body: &[u8]) -> Result<Incoming<'_>, CodecError> {
    let mut fields = Fields { buf: body, at: 1 };
    // No kind is carried along with the result (a report's view is larger than the moves the
    // compiler makes without a call to `memcpy`): errors name it from the variant.
    let decoded = match body.first() {
        Some(&REPORT_VARIANT) => fields.report(false, false),
        Some(&TARGETED_REPORT_VARIANT) => fields.report(true, false),
        Some(&CONFLATED_REPORT_VARIANT) => fields.report(false, true),
        Some(&REQUEST_VARIANT) => fields.request().map(Incoming::Request),
        Some(&RESPONSE_VARIANT) => fields.response().map(Incoming::Response),
        Some(&variant) => fields.other(variant).map(|f| Incoming::Other(Box::new(f))),
        None => return Err(CodecError::Malformed("empty frame".to_owned())),
    };
    let malformed =
        |what: String| CodecError::Malformed(format!("{} frame: {what}", frame_kind(body[0])));
    match decoded {
        Ok(decoded) if fields.at == body.len() => Ok(decoded),
        Ok(_) => Err(malformed(format!(
            "{} trailing bytes",
            body.len() - fields.at
        ))),
        Err(what) => Err(malformed(what)),
    }
}

/// Decodes one frame's body (without its length prefix) into an owned [`Frame`]: read by
/// [`decode_incoming`], then the borrowed parts copied and every name checked to be UTF-8.
pub(crate) fn decode_frame(body: &[u8]) -> Result<Frame, CodecError> {
    Ok(match decode_incoming(body)? {
        Incoming::Report { view, targeted } => {
            let report = owned_report(&view).map_err(|e| malformed_in(frame_kind(body[0]), e))?;
            match (targeted, view.conflated) {
                (true, _) => Frame::TargetedReport(report),
                (false, None) => Frame::Report(report),
                (false, Some(conflated)) => Frame::ConflatedReport { report, conflated },
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
            responder: view.responder,
        },
        Incoming::Other(frame) => *frame,
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
            .read()?
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

/// Whether a frame body is a request, a response or a failure (its sender waits for it).
pub(crate) fn is_call(body: &[u8]) -> bool {
    body.first().is_some_and(|v| CALL_VARIANTS.contains(v))
}

/// Reads the fields of a frame body as bincode (`standard()`: varint integers) writes them,
/// each checked against the bytes left. Names and content are borrowed ([`Text`], not yet
/// checked to be UTF-8) and copied only into the fields of an owned [`Frame`].
struct Fields<'a> {
    buf: &'a [u8],
    at: usize,
}

// The readers of a report's fields are inlined into it, their errors made out of line: a
// field returned through memory (a `Result` with a `String` error) costs a store-forwarding
// stall per field where one kept in registers costs nothing.
impl<'a> Fields<'a> {
    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        match self.at.checked_add(n) {
            Some(end) if end <= self.buf.len() => {
                let bytes = &self.buf[self.at..end];
                self.at = end;
                Ok(bytes)
            }
            _ => Err(self.too_short(n)),
        }
    }

    #[cold]
    #[inline(never)]
    fn too_short(&self, n: usize) -> String {
        format!(
            "ends after {} bytes, inside a field of {n} bytes",
            self.buf.len()
        )
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    /// bincode's varint: one byte below 251, else a marker for a 2, 4 or 8 byte little-endian
    /// integer. Only the shortest form is accepted (the one every encoder writes), so that a
    /// decoded frame encodes again to the same bytes.
    #[inline]
    fn varint(&mut self) -> Result<u64, String> {
        // Nearly every varint of a frame (lengths, tags, counts) is one byte: read it here,
        // and leave the longer forms and the errors out of line.
        match self.buf.get(self.at) {
            Some(&n) if n <= 250 => {
                self.at += 1;
                Ok(u64::from(n))
            }
            _ => self.long_varint(),
        }
    }

    /// [`Fields::varint`] past its one-byte form.
    #[inline(never)]
    fn long_varint(&mut self) -> Result<u64, String> {
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

    #[inline]
    fn uuid(&mut self) -> Result<uuid::Uuid, String> {
        let bytes = self.bytes()?;
        match <[u8; 16]>::try_from(bytes) {
            Ok(bytes) => Ok(uuid::Uuid::from_bytes(bytes)),
            Err(_) => Err(out_of_line(format_args!(
                "an identity of {} bytes",
                bytes.len()
            ))),
        }
    }

    /// How many of `count` announced items of at least `min_len` bytes each can be in what is
    /// left of the frame: the capacity to reserve for them.
    fn fit(&self, count: u64, min_len: usize) -> usize {
        usize::try_from(count)
            .unwrap_or(usize::MAX)
            .min((self.buf.len() - self.at) / min_len)
    }

    /// An enum variant index: a varint that must fit a `u32`, as bincode requires.
    #[inline]
    fn variant(&mut self) -> Result<u64, String> {
        match self.buf.get(self.at) {
            Some(&marker) if marker >= 253 => Err(out_of_line(format_args!(
                "invalid variant index marker {marker}"
            ))),
            _ => self.varint(),
        }
    }

    #[inline]
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = self.varint()?;
        match usize::try_from(len) {
            Ok(len) => self.take(len),
            Err(_) => Err(out_of_line(format_args!("length {len} too large"))),
        }
    }

    #[inline]
    fn text(&mut self) -> Result<Text<'a>, String> {
        self.bytes().map(Text)
    }

    #[inline]
    fn agent(&mut self) -> Result<AgentId, String> {
        self.uuid().map(AgentId::from_uuid)
    }
}

/// An error message, made out of line (see [`Fields`]).
#[cold]
#[inline(never)]
fn out_of_line(message: std::fmt::Arguments<'_>) -> String {
    message.to_string()
}

/// The smallest encoded target: an agent (length and 16 bytes) and the `None` tag.
const MIN_TARGET_LEN: usize = 18;

impl<'a> TargetBytes<'a> {
    /// The targets, read and checked as the rest of a frame is (the list must end where the
    /// bytes do); the error says what is wrong with them.
    pub(crate) fn read(&self) -> Result<TargetList<'a>, String> {
        let mut fields = Fields { buf: self.0, at: 0 };
        let targets = fields.targets()?;
        match self.0.len() - fields.at {
            0 => Ok(targets),
            extra => Err(format!("{extra} trailing bytes")),
        }
    }
}

impl<'a> Fields<'a> {
    /// A report, or with `conflated` a `Frame::ConflatedReport` (a report's fields, then the
    /// count it stands for). The target list is left unread ([`TargetBytes`]): it is the
    /// rest of the body, except that a conflated report's is read here, to find the count
    /// after it.
    #[inline]
    fn report(&mut self, targeted: bool, conflated: bool) -> Result<Incoming<'a>, String> {
        let body = self.buf;
        let publisher = self.agent()?;
        let subject = self.text()?;
        let content = self.content()?;
        let head = &body[..self.at];
        let start = self.at;
        let (targets, conflated) = if conflated {
            self.targets()?;
            let targets = TargetBytes(&body[start..self.at]);
            (targets, Some(self.varint()?))
        } else {
            self.at = body.len();
            (TargetBytes(&body[start..]), None)
        };
        Ok(Incoming::Report {
            view: ReportView {
                publisher,
                subject,
                content,
                targets,
                head,
                conflated,
            },
            targeted,
        })
    }

    /// A target list: its count, then each target.
    fn targets(&mut self) -> Result<TargetList<'a>, String> {
        let count = self.varint()?;
        // Sized once (a target takes at least 18 bytes, so a lying count reserves nothing more).
        let mut targets = TargetList::with_capacity(self.fit(count, MIN_TARGET_LEN));
        for _ in 0..count {
            let subscriber = self.agent()?;
            let pattern = match self.byte()? {
                0 => None,
                1 => Some(self.text()?),
                other => return Err(out_of_line(format_args!("invalid option tag {other}"))),
            };
            targets.push(TargetView {
                subscriber,
                pattern,
            });
        }
        Ok(targets)
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
                responder: self.agent()?,
            },
            14 => Frame::Heartbeat,
            15 => Frame::Goodbye {
                reason: self.string()?,
            },
            16 => Frame::Challenge {
                nonce: self.bytes()?.to_vec(),
            },
            17 => Frame::Proof {
                mac: self.bytes()?.to_vec(),
            },
            18 => Frame::SubscriptionRequestedAs {
                publisher: self.agent()?,
                subscriber: self.agent()?,
                pattern: self.string()?,
                format: self.format()?,
            },
            19 => Frame::SubscriptionConflated {
                publisher: self.agent()?,
                subscriber: self.agent()?,
                pattern: self.string()?,
                format: self.format()?,
            },
            other => return Err(format!("unknown variant index {other}")),
        })
    }

    fn response(&mut self) -> Result<ResponseView<'a>, String> {
        Ok(ResponseView {
            conversation: self.varint()?,
            requester: self.agent()?,
            content: self.content()?,
            responder: self.agent()?,
        })
    }

    /// A [`WirePayload`].
    #[inline]
    fn content(&mut self) -> Result<ContentView<'a>, String> {
        Ok(ContentView {
            format: self.format()?,
            type_name: self.text()?,
            bytes: self.bytes()?,
        })
    }

    #[inline]
    fn format(&mut self) -> Result<Format, String> {
        match self.variant()? {
            0 => Ok(Format::Bincode),
            1 => Ok(Format::Json),
            other => Err(out_of_line(format_args!("unknown content format {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tests::{encoded, samples};
    use crate::wire::HEADER;

    #[test]
    fn cut_long_and_corrupted_bodies_are_malformed() {
        // Requests, responses and failures: every prefix (an answer of version 3, without its
        // responder, among them), or an extra byte, is malformed; so is an unknown reply format.
        for sample in [&samples()[11], &samples()[12], &samples()[13]] {
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
        // A report body cut short, or followed by extra bytes, is malformed: refused by
        // `decode_incoming` when the fault is before the target list, by reading the list
        // (as its receiver does) when it is in it, and by `decode_frame` either way.
        fn report_error(body: &[u8]) -> Option<String> {
            match decode_incoming(body) {
                Err(CodecError::Malformed(e)) => Some(e),
                Ok(Incoming::Report { view, .. }) => view.targets.read().err(),
                _ => None,
            }
        }
        let bytes = encoded(&samples()[8]);
        let body = &bytes[HEADER..];
        assert!(report_error(&body[..body.len() - 2]).is_some());
        let mut long = body.to_vec();
        long.push(0);
        let err = report_error(&long).unwrap();
        assert!(err.contains("1 trailing bytes"), "{err}");
        assert!(decode_frame(&long).is_err());
        // An empty body is no frame at all.
        assert!(matches!(
            decode_incoming(&[]),
            Err(CodecError::Malformed(_))
        ));
        // Every prefix of a report body is malformed, never a panic; so is a bad format, option
        // tag, identity length or integer marker.
        for cut in 1..body.len() {
            assert!(report_error(&body[..cut]).is_some(), "cut at {cut}");
            assert!(
                matches!(decode_frame(&body[..cut]), Err(CodecError::Malformed(_))),
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
            let err = report_error(&bad).unwrap();
            assert!(err.contains(message), "{err}");
            let err = decode_frame(&bad).unwrap_err().to_string();
            assert!(err.contains(message), "{err}");
        }
    }

    #[test]
    fn a_subscription_in_an_unknown_format_is_malformed() {
        let sample = &samples()[18];
        let bytes = encoded(sample);
        let body = &bytes[HEADER..];
        assert_eq!(&decode_frame(body).unwrap(), sample);
        let mut bad = body.to_vec();
        *bad.last_mut().unwrap() = 2;
        let err = decode_incoming(&bad).unwrap_err().to_string();
        assert!(
            err.contains("SubscriptionRequestedAs frame: unknown content format 2"),
            "{err}"
        );
        for cut in 1..body.len() {
            assert!(
                matches!(decode_incoming(&body[..cut]), Err(CodecError::Malformed(_))),
                "cut at {cut}"
            );
        }
    }
}
