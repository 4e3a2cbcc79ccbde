//! The reading side of one connection: complete frames in chunks.
//!
//! Each item is one chunk of the read buffer holding whole frames (header and body), split off
//! without copying. A chunk holds everything already received, up to [`BATCH`] frames, so that
//! a burst of reports costs one wake-up of the bridge and one write on each outgoing link
//! rather than one per frame. A chunk ends after a request, response or failure, whose sender
//! waits for it: passing it on at once keeps pipelined requests flowing (see BENCHMARKS.md,
//! "Measured reasons in the code"). On a thread that spins when idle
//! ([`spin_when_idle`](super::spin_when_idle)) a chunk ends after every second call instead:
//! no wake-up waits for the next one, and half the chunks cost less CPU per call.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncRead;

use crate::wire::{announced_len, frame_len, is_call, CodecError, HEADER};

/// Calls in one chunk on a thread that spins when idle (one elsewhere). The bridge handles
/// 16 chunks per turn (actix yields a stream after 16 items), so this sets how many calls a
/// turn hands on: 32, rather than the 16 of a sleeping thread (see BENCHMARKS.md, "Spinning
/// when idle", for 1 to 4).
const SPINNING_CALLS: usize = 2;

/// Most frames in one chunk.
pub(crate) const BATCH: usize = 512;
/// Read buffer growth step: one read takes up to this much.
const READ_CHUNK: usize = 256 * 1024;
/// The buffer a connection starts with; it grows to `READ_CHUNK` once traffic flows, so an
/// idle connection costs little.
const READ_FIRST: usize = 16 * 1024;
/// Below this much free space the buffer grows (or is reclaimed) before reading.
const READ_MIN: usize = 8 * 1024;

/// A stream of chunks of complete frames, with the frame-size cap checked from each length
/// prefix before any space for the frame is reserved.
pub(crate) struct FrameChunks<R> {
    reader: R,
    buf: BytesMut,
    /// The frame size cap; its owner raises it once the handshake completed (see
    /// [`FrameChunks::cap`]).
    max: Rc<Cell<usize>>,
    done: bool,
    /// Set by the reader's owner when the last chunk made deliveries to local services: the
    /// stream then yields once before the next chunk, so that those services (on the same
    /// thread) get to handle and drop them first, and the read buffer is usually free to be
    /// reused (a subscriber spends less CPU per report: see BENCHMARKS.md). A relay delivers
    /// nothing locally and goes on reading.
    pause: Rc<Cell<bool>>,
    /// When a read last took bytes from the peer: one clock read per read, however many
    /// chunks it holds (the bridge's silence count reads it; see `exchange/silence.rs`).
    heard: Rc<Cell<Instant>>,
}

impl<R> FrameChunks<R> {
    pub(crate) fn new(reader: R, max: usize) -> Self {
        FrameChunks {
            reader,
            buf: BytesMut::with_capacity(READ_FIRST),
            max: Rc::new(Cell::new(max)),
            done: false,
            pause: Rc::default(),
            heard: Rc::new(Cell::new(Instant::now())),
        }
    }

    /// The frame size cap, shared: a connection starts with a small one until its handshake
    /// is accepted.
    pub(crate) fn cap(&self) -> Rc<Cell<usize>> {
        self.max.clone()
    }

    /// The flag that makes the stream yield before its next chunk (see `pause`).
    pub(crate) fn pause_flag(&self) -> Rc<Cell<bool>> {
        self.pause.clone()
    }

    /// When a read last took bytes from the peer (the stream's creation until then), shared.
    pub(crate) fn heard(&self) -> Rc<Cell<Instant>> {
        self.heard.clone()
    }

    /// Splits off the complete frames at the front of the buffer, if any.
    fn complete(&mut self) -> Option<Result<Bytes, CodecError>> {
        let mut end = 0;
        let mut count = 0;
        let max = self.max.get();
        let mut calls_left = if super::idle::spinning() {
            SPINNING_CALLS
        } else {
            1
        };
        while count < BATCH {
            match frame_len(&self.buf[end..], max) {
                Ok(Some(len)) => {
                    let call = is_call(&self.buf[end + HEADER..end + len]);
                    end += len;
                    count += 1;
                    if call {
                        calls_left -= 1;
                        if calls_left == 0 {
                            break;
                        }
                    }
                }
                Ok(None) => break,
                // Hand over the good frames first; the error comes with the next poll.
                Err(_) if count > 0 => break,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        (count > 0).then(|| Ok(self.buf.split_to(end).freeze()))
    }
}

impl<R: AsyncRead + Unpin> futures_core::Stream for FrameChunks<R> {
    type Item = Result<Bytes, CodecError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.pause.take() {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(chunk) = this.complete() {
                return Poll::Ready(Some(chunk));
            }
            // Room for the rest of the frame at the front (its size is already checked).
            let wanted = (HEADER + announced_len(&this.buf).unwrap_or(0))
                .saturating_sub(this.buf.len())
                .max(READ_MIN);
            if this.buf.capacity() - this.buf.len() < wanted {
                // The chunks handed out are dropped by now: take the space back rather than
                // allocate (a fresh large buffer per read would also fragment the heap).
                let goal = wanted.max(READ_CHUNK.saturating_sub(this.buf.len()));
                if !this.buf.try_reclaim(goal) {
                    this.buf.reserve(goal);
                }
            }
            match tokio_util::io::poll_read_buf(Pin::new(&mut this.reader), cx, &mut this.buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    this.done = true;
                    if this.buf.is_empty() {
                        return Poll::Ready(None);
                    }
                    let partial = this.buf.len();
                    return Poll::Ready(Some(Err(CodecError::Malformed(format!(
                        "connection closed in the middle of a frame ({partial} bytes of it received)"
                    )))));
                }
                Poll::Ready(Ok(_)) => {
                    this.heard.set(Instant::now());
                    super::idle::io_done();
                }
                Poll::Ready(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(CodecError::Io(e))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[tokio::test]
    async fn chunks_hold_whole_frames_and_end_after_a_call() {
        // Heartbeat (14), Heartbeat, Request-variant byte (11), Heartbeat.
        let bytes = [frame(&[14]), frame(&[14]), frame(&[11, 0]), frame(&[14])].concat();
        let mut chunks = FrameChunks::new(&bytes[..], 1024);
        let first = chunks.next().await.unwrap().unwrap();
        assert_eq!(&first[..], &bytes[..5 + 5 + 6]);
        let second = chunks.next().await.unwrap().unwrap();
        assert_eq!(&second[..], &bytes[16..]);
        assert!(chunks.next().await.is_none());
    }

    #[tokio::test]
    async fn a_read_stamps_when_the_peer_was_heard_once_for_all_its_chunks() {
        let bytes = [frame(&[11, 0]), frame(&[11, 1])].concat();
        let (mut tx, rx) = tokio::io::duplex(4096);
        let mut chunks = FrameChunks::new(rx, 1024);
        let heard = chunks.heard();
        let created = heard.get();
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        use tokio::io::AsyncWriteExt;
        tx.write_all(&bytes).await.unwrap();
        let sent = std::time::Instant::now();
        assert_eq!(&chunks.next().await.unwrap().unwrap()[..], &bytes[..6]);
        let read = heard.get();
        assert!(read >= sent && read > created, "the read is stamped");
        // The second chunk was in the same read: no new stamp.
        assert_eq!(&chunks.next().await.unwrap().unwrap()[..], &bytes[6..]);
        assert_eq!(heard.get(), read);
    }

    #[actix_rt::test]
    async fn on_a_spinning_thread_chunks_end_after_every_second_call() {
        // Request (11), Heartbeat (14), Response (12), Request, Heartbeat.
        let bytes = [
            frame(&[11, 0]),
            frame(&[14]),
            frame(&[12, 0]),
            frame(&[11, 1]),
            frame(&[14]),
        ]
        .concat();
        super::super::spin_when_idle(std::time::Duration::from_millis(1)).unwrap();
        let mut chunks = FrameChunks::new(&bytes[..], 1024);
        let first = chunks.next().await.unwrap().unwrap();
        assert_eq!(&first[..], &bytes[..6 + 5 + 6]);
        let second = chunks.next().await.unwrap().unwrap();
        assert_eq!(&second[..], &bytes[17..]);
        assert!(chunks.next().await.is_none());
        // Not spinning: one call per chunk again.
        super::super::spin_when_idle(std::time::Duration::ZERO).unwrap();
        let mut chunks = FrameChunks::new(&bytes[..], 1024);
        assert_eq!(&chunks.next().await.unwrap().unwrap()[..], &bytes[..6]);
    }

    #[tokio::test]
    async fn a_frame_split_across_reads_is_whole_in_one_chunk() {
        let big = vec![7u8; 200_000];
        let bytes = frame(&big);
        let (mut tx, rx) = tokio::io::duplex(4096);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            tx.write_all(&bytes).await.unwrap();
        });
        let mut chunks = FrameChunks::new(rx, 1 << 20);
        let chunk = chunks.next().await.unwrap().unwrap();
        assert_eq!(chunk.len(), 200_004);
        assert!(chunk[4..].iter().all(|&b| b == 7));
        writer.await.unwrap();
        assert!(chunks.next().await.is_none());
    }

    #[tokio::test]
    async fn oversized_prefix_fails_after_the_good_frames_and_eof_mid_frame_is_an_error() {
        let bytes = [frame(&[14]), vec![0, 1, 0, 0, 1]].concat();
        let mut chunks = FrameChunks::new(&bytes[..], 1024);
        assert_eq!(&chunks.next().await.unwrap().unwrap()[..], &bytes[..5]);
        let err = chunks.next().await.unwrap().unwrap_err();
        assert_eq!(
            err.to_string(),
            "frame of 65536 bytes exceeds the maximum of 1024 bytes"
        );
        assert!(chunks.next().await.is_none());

        let cut = &frame(&[1, 2, 3])[..5];
        let mut chunks = FrameChunks::new(cut, 1024);
        let err = chunks.next().await.unwrap().unwrap_err();
        assert!(
            err.to_string().contains("in the middle of a frame"),
            "{err}"
        );
        assert!(chunks.next().await.is_none());
    }
}
