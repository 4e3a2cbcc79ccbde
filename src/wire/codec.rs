//! Frames in a byte stream: where each frame begins and ends, and [`FrameCodec`] for tokio-util.
//!
//! A frame is its body's length (`HEADER` bytes, big-endian), then the body. A length over the
//! cap is refused from the header alone, before anything is read or reserved for the body.
//! [`frame_len`] and [`split_frame`] find frames in a buffer the caller fills and leave the
//! bodies to [`decode`](super::decode); [`FrameCodec`] does both for a tokio-util stream and
//! gives owned [`Frame`]s.

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
    use crate::wire::tests::{encoded, samples};

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
