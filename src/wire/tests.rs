//! What the wire tests share, and the tests of the format as a whole: golden bytes, and every
//! frame through the decoder and back through the encoders, byte for byte.

use bytes::BytesMut;

use super::frame::{ReportFrame, ReportRef, ReportView, TargetView, Text};
use super::{
    decode_incoming, encode_conflated, encode_frame, encode_report, encode_report_spliced,
    encode_request, encode_response, encode_targets, is_call, split_frame, CodecError, Frame,
    Hello, Incoming, ReportTarget, RequestFrame, RequestView, ResponseView, ServiceInfo,
    WireFailure, WirePayload, DEFAULT_MAX_FRAME,
};
use crate::ids::{AgentId, ProcessId};
use crate::payload::Format;

pub(super) fn agent(n: u8) -> AgentId {
    AgentId::from_uuid(uuid::Uuid::from_bytes([n; 16]))
}

pub(super) fn encoded(frame: &Frame) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_frame(frame, &mut buf, DEFAULT_MAX_FRAME).unwrap();
    buf.to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One frame of every variant, in declaration order (the index of each is its variant index).
pub(super) fn samples() -> Vec<Frame> {
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
            content: payload.clone(),
            responder: agent(1),
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
            responder: agent(1),
        },
        Frame::Heartbeat,
        Frame::Goodbye {
            reason: "bye".into(),
        },
        Frame::Challenge { nonce: vec![7; 4] },
        Frame::Proof { mac: vec![8; 4] },
        Frame::SubscriptionRequestedAs {
            publisher: agent(1),
            subscriber: agent(2),
            pattern: "*".into(),
            format: Format::Json,
        },
        Frame::SubscriptionConflated {
            publisher: agent(1),
            subscriber: agent(2),
            pattern: "*".into(),
            format: Format::Bincode,
        },
        Frame::ConflatedReport {
            report: ReportFrame {
                publisher: agent(1),
                subject: "t".into(),
                content: payload,
                targets: vec![ReportTarget {
                    subscriber: agent(2),
                    pattern: Some("*".into()),
                }],
            },
            conflated: 300,
        },
    ]
}

/// Frames beyond the samples: fields long enough for 2- and 4-byte length markers, JSON content.
fn large_frames() -> [Frame; 3] {
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
        responder: agent(4),
    };
    [big, big_request, big_response]
}

#[test]
fn golden_bytes_pin_the_format() {
    let golden: Vec<String> = samples().iter().map(|f| hex(&encoded(f))).collect();
    // Length prefix (4 bytes, big endian), variant index (varint), then the fields in
    // order: identities as 16 length-prefixed bytes, strings and byte strings
    // length-prefixed, integers as varints (300 = fb2c01), booleans as one byte, a
    // format as its variant index (bincode 0, JSON 1). Since version 4 a response and a
    // failure end with the responder's identity; version 5 appended the last two.
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
        "0000002c0cfb2c0110020202020202020202020202020202020002753801071001010101010101010101010101010101",
        "0000002c0dfb2c011002020202020202020202020202020202390164016f001001010101010101010101010101010101",
        "000000010e",
        "000000050f03627965",
        "00000006100407070707",
        "00000006110408080808",
        "000000261210010101010101010101010101010101011002020202020202020202020202020202012a01",
        "000000261310010101010101010101010101010101011002020202020202020202020202020202012a00",
        "00000032141001010101010101010101010101010101017400027538010701100202020202020202020202020202020201012afb2c01",
    ];
    assert_eq!(golden, expected);
    // Variant indexes are the declaration order; new variants are only appended.
    for (i, g) in golden.iter().enumerate() {
        assert_eq!(g[8..10], format!("{i:02x}"), "variant {i}");
    }
}

#[test]
fn reports_decode_without_copying_and_other_frames_as_frames() {
    for frame in samples().into_iter().chain(large_frames()) {
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
                assert_eq!(view.conflated, None);
                check_report_view(&view, targeted, owned, &bytes);
            }
            (Incoming::Report { view, targeted }, Frame::ConflatedReport { report, conflated }) => {
                assert!(!targeted);
                assert_eq!(view.conflated, Some(*conflated));
                check_conflated_view(&view, report, *conflated, &bytes);
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
                check_call_view(view, expected, &bytes, encode_request);
            }
            (
                Incoming::Response(view),
                Frame::Response {
                    conversation,
                    requester,
                    content,
                    responder,
                },
            ) => {
                let expected = ResponseView {
                    conversation: *conversation,
                    requester: *requester,
                    content: content.view(),
                    responder: *responder,
                };
                check_call_view(view, expected, &bytes, encode_response);
            }
            (Incoming::Other(decoded), _) => {
                assert!(
                    !matches!(frame, Frame::Request(_) | Frame::Response { .. }),
                    "decoded by serde"
                );
                assert_eq!(&*decoded, &frame)
            }
            (_, other) => panic!("{} decoded as another frame", other.kind()),
        };
    }
}

/// A report decoded without copying has the owned frame's fields, and encodes back to the same
/// bytes: by serde and by hand from the view, and spliced from its head.
fn check_report_view(view: &ReportView<'_>, targeted: bool, owned: &ReportFrame, bytes: &[u8]) {
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
    let read = view.targets.read().unwrap();
    assert_eq!(&read[..], &targets[..]);
    // Re-encoded from the view, it is the same frame.
    let again = ReportRef {
        targeted,
        publisher: view.publisher,
        subject: view.subject,
        content: view.content,
        targets: &read[..],
    };
    let mut buf = BytesMut::new();
    encode_frame(&again, &mut buf, DEFAULT_MAX_FRAME).unwrap();
    assert_eq!(buf.to_vec(), bytes);
    let mut by_hand = BytesMut::new();
    encode_report(&again, &mut by_hand, DEFAULT_MAX_FRAME).unwrap();
    assert_eq!(by_hand.to_vec(), bytes);
    // So is its head spliced with the same targets; with fewer targets it is the owned frame
    // listing only those.
    let mut spliced = BytesMut::new();
    encode_report_spliced(
        view.head,
        read.iter().copied(),
        None,
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
        None,
        &mut spliced,
        DEFAULT_MAX_FRAME,
    )
    .unwrap();
    assert_eq!(spliced.to_vec(), encoded(&fewer));
    // Kept aside by a link for conflated subscribers, it becomes the serde encoding of a
    // conflated report.
    let targets = encode_targets(read.iter().copied());
    let mut kept = BytesMut::new();
    encode_conflated(&view.head[1..], &targets, 7, &mut kept, DEFAULT_MAX_FRAME).unwrap();
    if !targeted {
        let conflated = Frame::ConflatedReport {
            report: owned.clone(),
            conflated: 7,
        };
        assert_eq!(kept.to_vec(), encoded(&conflated));
    }
}

/// A conflated report decoded without copying has the owned frame's fields and count, and
/// its head spliced with its targets and count is the same frame again.
fn check_conflated_view(view: &ReportView<'_>, owned: &ReportFrame, conflated: u64, bytes: &[u8]) {
    assert_eq!(
        (view.publisher, view.subject, view.content),
        (
            owned.publisher,
            owned.subject.as_str().into(),
            owned.content.view()
        )
    );
    let read = view.targets.read().unwrap();
    assert_eq!(read.len(), owned.targets.len());
    let mut spliced = BytesMut::new();
    let targets = read.iter().copied();
    encode_report_spliced(
        view.head,
        targets,
        Some(conflated),
        &mut spliced,
        DEFAULT_MAX_FRAME,
    )
    .unwrap();
    assert_eq!(spliced.to_vec(), bytes);
    assert_eq!(
        super::decode_frame(&bytes[4..]).unwrap(),
        Frame::ConflatedReport {
            report: owned.clone(),
            conflated
        }
    );
}

/// A request or response decoded without copying is the owned frame's view, and encodes back
/// to the same bytes by hand; over the cap, it leaves nothing behind.
fn check_call_view<V: PartialEq + std::fmt::Debug>(
    view: V,
    expected: V,
    bytes: &[u8],
    encode: impl Fn(&V, &mut BytesMut, usize) -> Result<(), CodecError>,
) {
    assert_eq!(view, expected);
    // Encoded by hand from the view, it is the same frame.
    let mut by_hand = BytesMut::new();
    encode(&view, &mut by_hand, DEFAULT_MAX_FRAME).unwrap();
    assert_eq!(by_hand.to_vec(), bytes);
    assert!(matches!(
        encode(&view, &mut by_hand, 10),
        Err(CodecError::TooLarge { .. })
    ));
    assert_eq!(by_hand.to_vec(), bytes, "nothing left behind");
}
