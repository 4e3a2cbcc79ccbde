//! Frames in a byte stream: where each frame begins and ends, and [`FrameCodec`] for tokio-util.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

use super::decode::decode_frame;
use super::encode::encode_frame;
use super::frame::Frame;
use super::{CodecError, DEFAULT_MAX_FRAME, HEADER};

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
    use bytes::BufMut;

    use super::*;
    use crate::names::{AgentId, ProcessId};
    use crate::payload::Format;
    use crate::wire::frame::{ReportRef, TargetItem, TargetView};
    use crate::wire::{
        decode_incoming, encode_report, encode_report_spliced, encode_request, encode_response,
        is_call, EncodedTargets, Hello, Incoming, ReportFrame, ReportTarget, RequestFrame,
        RequestView, ResponseView, ServiceInfo, Text, WireFailure, WirePayload,
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
