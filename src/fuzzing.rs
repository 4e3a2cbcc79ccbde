//! Checks the fuzz targets in `fuzz/` run on arbitrary input, and `tests/fuzz_replay.rs`
//! replays on their corpora and regressions: each panics on a defect (a disagreement between
//! the hand-written decoders and the serde reference, a frame that does not encode back to
//! its bytes) and returns normally on any input that is merely invalid. Not part of the API.

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use crate::wire::{
    decode_frame, decode_frame_serde, decode_incoming, encode_frame, frame_len, FrameCodec,
    Incoming, HEADER,
};

/// One frame body through every decoder: what the hand-written decoders accept, the serde
/// decoder accepts too, with the same result, and it encodes back to the same bytes. What
/// only serde accepts must be a non-shortest integer (which encodes back differently).
pub fn check_frame_body(body: &[u8]) {
    let hand = decode_frame(body);
    let serde = decode_frame_serde(body);
    let incoming = decode_incoming(body);
    let incoming_ok = incoming.is_ok();
    if let (Err(e), Ok(view)) = (&hand, &incoming) {
        // By design the borrowing decoder leaves the UTF-8 check of names (see `wire::Text`)
        // and the reading of a report's target list (see `wire::TargetBytes`) to the
        // receiver: those are the only refusals of `decode_frame` it may miss.
        assert!(
            left_to_receiver(view),
            "decode_incoming accepted what decode_frame refused ({e}), with valid UTF-8 names and targets"
        );
        re_encode_incoming(body);
    }
    match (&hand, &serde) {
        (Ok(h), Ok(s)) => {
            assert_eq!(h, s, "hand-written and serde decoders disagree");
            let mut again = BytesMut::new();
            encode_frame(h, &mut again, usize::MAX).expect("a decoded frame encodes");
            assert_eq!(
                &again[4..],
                body,
                "a decoded frame encodes back to other bytes"
            );
            assert!(incoming_ok);
            re_encode_incoming(body);
        }
        (Ok(h), Err(e)) => panic!("hand-written decoder accepted {h:?}, serde refused: {e}"),
        (Err(_), Ok(s)) => {
            let mut again = BytesMut::new();
            encode_frame(s, &mut again, usize::MAX).expect("a decoded frame encodes");
            assert_ne!(
                &again[4..],
                body,
                "serde accepted a frame in its shortest form that the hand decoder refused"
            );
        }
        (Err(_), Err(_)) => {}
    }
}

/// Whether a frame decoded without copying has a name that is not UTF-8, or is a report
/// whose target list does not read.
fn left_to_receiver(view: &Incoming<'_>) -> bool {
    use crate::wire::Text;
    let bad = |t: &Text<'_>| t.to_str().is_err();
    match view {
        Incoming::Report { view, .. } => {
            bad(&view.subject)
                || bad(&view.content.type_name)
                || view.targets.read().map_or(true, |targets| {
                    targets.iter().any(|t| t.pattern.as_ref().is_some_and(bad))
                })
        }
        Incoming::Request(view) => bad(&view.method) || bad(&view.args.type_name),
        Incoming::Response(view) => bad(&view.content.type_name),
        Incoming::Other(_) => false,
    }
}

/// A report, request or response decoded without copying encodes back to the same body with
/// the hand-written encoders.
fn re_encode_incoming(body: &[u8]) {
    use crate::wire::{
        encode_report, encode_report_spliced, encode_request, encode_response, ReportRef,
    };
    let mut buf = BytesMut::new();
    match decode_incoming(body).expect("checked by the caller") {
        Incoming::Report { view, targeted } => {
            // A target list that does not read is refused by its receiver: nothing to encode.
            let Ok(targets) = view.targets.read() else {
                return;
            };
            if view.conflated.is_some() {
                // A conflated report is only ever written from a received one's head.
                let targets = targets.iter().copied();
                encode_report_spliced(view.head, targets, view.conflated, &mut buf, usize::MAX)
                    .expect("encodes");
            } else {
                let report = ReportRef {
                    targeted,
                    publisher: view.publisher,
                    subject: view.subject,
                    content: view.content,
                    targets: &targets[..],
                };
                encode_report(&report, &mut buf, usize::MAX).expect("encodes");
            }
        }
        Incoming::Request(view) => encode_request(&view, &mut buf, usize::MAX).expect("encodes"),
        Incoming::Response(view) => encode_response(&view, &mut buf, usize::MAX).expect("encodes"),
        Incoming::Other(_) => return,
    }
    assert_eq!(
        &buf[4..],
        body,
        "a frame decoded without copying encodes back to other bytes"
    );
}

/// A byte stream through the public [`FrameCodec`] with a small cap, fed in pieces of the
/// sizes the input's first byte picks: never a panic; a frame over the cap is refused from
/// its header; every frame decoded is one the body checks accept.
pub fn check_stream(input: &[u8]) {
    const CAP: usize = 4096;
    let Some((&step, stream)) = input.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    let mut codec = FrameCodec::new(CAP);
    let mut buf = BytesMut::new();
    // Where in the stream the next frame starts, and how much of it was fed: the codec may
    // have taken a frame's header from `buf` in an earlier call, while its body was incomplete.
    let (mut frame_start, mut fed) = (0, 0);
    for piece in stream.chunks(step) {
        buf.extend_from_slice(piece);
        fed += piece.len();
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    let end = fed - buf.len();
                    let whole = &stream[frame_start..end];
                    let len = frame_len(whole, usize::MAX).ok().flatten();
                    assert_eq!(
                        len,
                        Some(whole.len()),
                        "a decoded frame is one whole frame of the stream"
                    );
                    assert!(whole.len() - HEADER <= CAP);
                    assert_eq!(decode_frame(&whole[HEADER..]).ok(), Some(frame));
                    frame_start = end;
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(
            buf.capacity() <= 2 * CAP + 2 * step + 64,
            "the codec reserved more than the cap"
        );
    }
}

/// A byte stream through the connection reader (the chunks a bridge handles), fed in
/// pieces of the sizes the input's first byte picks, with a small cap: never a panic; each
/// chunk is whole frames within the cap; a bad header ends the stream with an error after the
/// good frames (the reader's buffer itself grows to its fixed read size, whatever the cap).
pub fn check_chunks(input: &[u8]) {
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use futures_core::Stream;

    const CAP: usize = 4096;
    let Some((&step, stream)) = input.split_first() else {
        return;
    };
    let reader = Pieces {
        rest: stream,
        step: usize::from(step).max(1),
    };
    let mut chunks = crate::transport::FrameChunks::new(reader, CAP);
    let mut cx = Context::from_waker(Waker::noop());
    let mut taken = 0;
    loop {
        match Pin::new(&mut chunks).poll_next(&mut cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let mut rest = &chunk[..];
                while !rest.is_empty() {
                    let len = frame_len(rest, CAP)
                        .expect("within the cap")
                        .expect("a whole frame");
                    rest = &rest[len..];
                }
                taken += chunk.len();
                assert_eq!(
                    &chunk[..],
                    &stream[taken - chunk.len()..taken],
                    "chunks are the stream in order"
                );
            }
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) => return,
            // The pause flag is never set here; Pending means the reader waits for more.
            Poll::Pending => return,
        }
    }
}

/// An in-memory reader handing out at most `step` bytes per read.
struct Pieces<'a> {
    rest: &'a [u8],
    step: usize,
}

impl tokio::io::AsyncRead for Pieces<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = self.step.min(self.rest.len()).min(buf.remaining());
        let (now, later) = self.rest.split_at(n);
        buf.put_slice(now);
        self.rest = later;
        std::task::Poll::Ready(Ok(()))
    }
}

/// Arbitrary bytes decoded as bincode payloads of typical argument and report types: a
/// clear error or a value, never a panic or an allocation beyond the decode limit; a value
/// decoded encodes back to a prefix-free encoding that decodes to the same value.
pub fn check_payload(input: &[u8]) {
    use std::collections::BTreeMap;

    use crate::payload::{Format, Payload};

    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    enum Shape {
        Point { x: f64, y: f64 },
        Label(String),
        Empty,
    }
    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    struct Record {
        id: u64,
        name: String,
        tags: Vec<String>,
        shape: Option<Shape>,
        values: BTreeMap<String, Vec<u8>>,
        wide: u128,
    }
    fn one<T: serde::de::DeserializeOwned + serde::Serialize + Clone + Send + Sync + 'static>(
        input: &[u8],
    ) {
        let payload = Payload::encoded(
            Format::Bincode,
            bytes::Bytes::copy_from_slice(input),
            "fuzz",
        );
        if let Ok(value) = payload.decode::<T>() {
            let encode = |v: T| {
                Payload::new(v)
                    .to_bytes(Format::Bincode)
                    .expect("a decoded value encodes")
            };
            let once = encode(value);
            let back = Payload::encoded(Format::Bincode, once.clone(), "fuzz")
                .decode::<T>()
                .expect("decodes back");
            assert_eq!(
                encode(back),
                once,
                "a value decoded from its own encoding encodes differently"
            );
        }
        let _ =
            Payload::encoded(Format::Json, bytes::Bytes::copy_from_slice(input), "fuzz").to_json();
    }
    one::<(i64, i64)>(input);
    one::<String>(input);
    one::<Vec<String>>(input);
    one::<Vec<u64>>(input);
    one::<(String, Vec<u8>, bool)>(input);
    one::<Record>(input);
    one::<Vec<Record>>(input);
}
