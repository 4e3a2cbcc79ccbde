//! The raw side of `compare`, the physical limit the other two are set against: no messaging
//! system, only frames (a 4-byte big-endian length, then the body) over plain TCP through a
//! relay process. Every message crosses the same sockets and the same middle process as on
//! the netsvc and NATS sides, and nothing else is done to it: no headers, no subjects, no
//! serialization, no routing table.
//!
//! * `relay`: accepts two connections and forwards every frame of each to the other, frame
//!   by frame (each read whole, then written; one flush per batch of the frames that had
//!   arrived whole). The driver starts the responder or the subscriber first and waits for
//!   its `READY`, so the pairing needs no handshake.
//! * `responder`: writes every frame back as it came. `requester`: the request loop of
//!   `measure.rs`; request `i` is the body of sequence `i`, and the answers must come back
//!   in order, each exactly the body sent (a lost, duplicated or altered frame fails the run).
//! * `publisher` / `subscriber`: reports as frames, acknowledged (a frame of the count, 8
//!   bytes little endian, every `--ack-every`) and paced exactly as on the other sides, and
//!   counted and checked by the same `Tally`; one subscriber only (the relay pairs two
//!   connections). With `--body-len` (the `reports_payload_*` workloads) the bodies are that
//!   long, up to [`MAX_FRAME`].
//!
//! Every role runs on one tokio current-thread runtime, like the NATS roles, with
//! `TCP_NODELAY` and 64 KiB buffers on each socket.

use std::cell::RefCell;
use std::collections::VecDeque;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout_at, Instant};

use super::measure::{self, Tally};
use super::protocol::{PublishOutcome, RoleArgs, RoleKind, ROLE_LIMIT, SETTLE};
use crate::pace::Pace;
use crate::payload::{checked_seq, checked_seq_of, payload, payload_of};
use crate::roles::{ready, result, SETUP};

/// Largest frame body accepted, checked before allocating: 8 MiB, as the NATS side's
/// `max_payload` in the payload workloads (whose largest body is 1 MiB).
const MAX_FRAME: usize = 8 << 20;
/// Buffer size of each socket half.
const BUFFER: usize = 64 * 1024;
/// Bytes of a frame's length prefix.
const HEADER: usize = 4;

/// The reading half of a connection, buffered.
type Reader = BufReader<OwnedReadHalf>;
/// The writing half of a connection, buffered (written out by [`flush`]).
type Writer = BufWriter<OwnedWriteHalf>;

/// Runs one raw role.
pub(crate) async fn role(args: &RoleArgs) -> Result<(), String> {
    match args.kind {
        RoleKind::Relay => relay(args).await,
        RoleKind::Exchange => Err("the raw side has no exchange: it uses the relay".to_owned()),
        RoleKind::Responder => responder(args).await,
        RoleKind::Requester => requester(args).await,
        RoleKind::Publisher => publisher(args).await,
        RoleKind::Subscriber => subscriber(args).await,
        RoleKind::BurstPublisher | RoleKind::BurstSubscriber => {
            Err("the raw side does not run burst_unpaced".to_owned())
        }
    }
}

/// The two buffered halves of `stream`, with `TCP_NODELAY` set.
fn halves(stream: TcpStream) -> Result<(Reader, Writer), String> {
    stream
        .set_nodelay(true)
        .map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
    let (read, write) = stream.into_split();
    Ok((
        BufReader::with_capacity(BUFFER, read),
        BufWriter::with_capacity(BUFFER, write),
    ))
}

/// Connects to the relay at `server`, within [`SETUP`].
async fn connect(server: &str) -> Result<(Reader, Writer), String> {
    let stream = tokio::time::timeout(SETUP, TcpStream::connect(server))
        .await
        .map_err(|_| format!("cannot connect to the relay at {server} within {SETUP:?}"))?
        .map_err(|e| format!("cannot connect to the relay at {server}: {e}"))?;
    halves(stream)
}

/// Reads one frame's body into `body`; `false` at the end of the stream between two frames.
async fn read_frame(reader: &mut Reader, body: &mut Vec<u8>) -> Result<bool, String> {
    let mut header = [0u8; HEADER];
    let first = reader
        .read(&mut header[..1])
        .await
        .map_err(|e| format!("cannot read: {e}"))?;
    if first == 0 {
        return Ok(false);
    }
    reader
        .read_exact(&mut header[1..])
        .await
        .map_err(|e| format!("truncated frame header: {e}"))?;
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(format!(
            "a frame of {len} bytes, over the limit of {MAX_FRAME}"
        ));
    }
    body.resize(len, 0);
    reader
        .read_exact(body)
        .await
        .map_err(|e| format!("truncated frame of {len} bytes: {e}"))?;
    Ok(true)
}

/// Whether `buffered` holds at least one whole frame: if not, the next read waits for the
/// socket, so what was written so far should be flushed first.
fn holds_a_frame(buffered: &[u8]) -> bool {
    match buffered.get(..HEADER) {
        Some(header) => {
            let len = u32::from_be_bytes(header.try_into().unwrap_or_default()) as usize;
            buffered.len() >= HEADER + len
        }
        None => false,
    }
}

/// Writes one frame (into the buffer; [`flush`] sends it).
async fn write_frame(writer: &mut Writer, body: &[u8]) -> Result<(), String> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&len| len as usize <= MAX_FRAME)
        .ok_or_else(|| format!("a frame of {} bytes is over the limit", body.len()))?;
    writer
        .write_all(&len.to_be_bytes())
        .await
        .map_err(|e| format!("cannot write: {e}"))?;
    writer
        .write_all(body)
        .await
        .map_err(|e| format!("cannot write: {e}"))
}

/// Sends everything written.
async fn flush(writer: &mut Writer) -> Result<(), String> {
    writer
        .flush()
        .await
        .map_err(|e| format!("cannot flush: {e}"))
}

/// Forwards every frame of `from` to `to`, flushing whenever no whole frame is left
/// buffered; returns the frames forwarded once `from` ends.
async fn forward(mut from: Reader, mut to: Writer) -> Result<u64, String> {
    let mut body = Vec::with_capacity(BUFFER);
    let mut frames = 0;
    while read_frame(&mut from, &mut body).await? {
        write_frame(&mut to, &body).await?;
        frames += 1;
        if !holds_a_frame(from.buffer()) {
            flush(&mut to).await?;
        }
    }
    flush(&mut to).await?;
    Ok(frames)
}

/// The relay: listens, pairs its first two connections and forwards frames both ways until
/// killed (or both peers are gone).
async fn relay(args: &RoleArgs) -> Result<(), String> {
    let listener = TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("no local address: {e}"))?;
    ready(&addr.to_string());
    let deadline = Instant::now() + ROLE_LIMIT;
    let accept = || async {
        let (stream, _) = timeout_at(deadline, listener.accept())
            .await
            .map_err(|_| format!("no two peers within {ROLE_LIMIT:?}"))?
            .map_err(|e| format!("cannot accept: {e}"))?;
        halves(stream)
    };
    let (first_in, first_out) = accept().await?;
    let (second_in, second_out) = accept().await?;
    tokio::try_join!(forward(first_in, second_out), forward(second_in, first_out))?;
    Ok(())
}

/// Writes every frame back as it came, until killed.
async fn responder(args: &RoleArgs) -> Result<(), String> {
    let (reader, writer) = connect(&args.server).await?;
    ready("");
    forward(reader, writer).await?;
    Err("the relay closed the connection".to_owned())
}

/// Warms up, then measures requests: one task, with the request loop, the writer (which
/// drains every frame queued, then flushes once) and the reader (which hands each answer to
/// the oldest request outstanding) polled side by side.
async fn requester(args: &RoleArgs) -> Result<(), String> {
    let (mut reader, mut writer) = connect(&args.server).await?;
    // At most `--in-flight` requests are outstanding, so neither queue ever holds more: a
    // request that finds the outgoing queue full is a bug, and fails.
    let (outgoing, mut to_write) = mpsc::channel::<Vec<u8>>(args.in_flight.max(1));
    let waiting = RefCell::new(VecDeque::<oneshot::Sender<Vec<u8>>>::new());
    let (outgoing, waiting) = (&outgoing, &waiting);
    let call = |i: u64| async move {
        let (answer, answered) = oneshot::channel();
        // Queued in the same step as the frame, so the answers' order is the requests'.
        waiting.borrow_mut().push_back(answer);
        outgoing
            .try_send(payload(i))
            .map_err(|e| format!("request {i} not queued: {e}"))?;
        let body = answered
            .await
            .map_err(|_| format!("request {i}: the connection was lost"))?;
        checked_seq(&body)
            .ok_or_else(|| format!("request {i}: a wrong answer of {} bytes", body.len()))
    };
    let write = async {
        while let Some(body) = to_write.recv().await {
            write_frame(&mut writer, &body).await?;
            while let Ok(body) = to_write.try_recv() {
                write_frame(&mut writer, &body).await?;
            }
            flush(&mut writer).await?;
        }
        Ok::<(), String>(())
    };
    let read = async {
        let mut body = Vec::with_capacity(BUFFER);
        while read_frame(&mut reader, &mut body).await? {
            let answer = waiting
                .borrow_mut()
                .pop_front()
                .ok_or("an answer to no request")?;
            let _ = answer.send(std::mem::take(&mut body));
        }
        Err::<(), String>("the relay closed the connection".to_owned())
    };
    tokio::select! {
        done = measure::requests(args, call) => done,
        Err(e) = write => Err(format!("writing requests: {e}")),
        Err(e) = read => Err(format!("reading answers: {e}")),
    }
}

/// Publishes `--count` reports, paced by the subscriber's acknowledgements. The driver
/// starts it once the subscriber is connected.
async fn publisher(args: &RoleArgs) -> Result<(), String> {
    if args.subscribers != 1 {
        return Err("the raw side has one subscriber only".to_owned());
    }
    let (mut reader, mut writer) = connect(&args.server).await?;
    ready("");
    let mut pace = Pace::new(args.count, args.window, 1);
    let mut ack = Vec::with_capacity(8);
    let start = std::time::Instant::now();
    let deadline = Instant::now() + ROLE_LIMIT;
    loop {
        for seq in pace.sendable() {
            write_frame(&mut writer, &payload_of(seq, args.body_len)).await?;
        }
        flush(&mut writer).await?;
        if pace.all_acked() {
            break;
        }
        match timeout_at(deadline, read_frame(&mut reader, &mut ack)).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return Err("the relay closed the connection".to_owned()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(format!("not every report acknowledged: {:?}", pace.acked())),
        }
        let count = <[u8; 8]>::try_from(ack.as_slice())
            .ok()
            .map(u64::from_le_bytes);
        match count {
            Some(count) if pace.ack(0, count) => {}
            _ => return Err(format!("bad acknowledgement of {} bytes", ack.len())),
        }
    }
    result(&PublishOutcome::of(args, start.elapsed()))
}

/// Counts reports, acknowledging every `--ack-every` (and the last), then keeps counting for
/// [`SETTLE`] to catch extras.
async fn subscriber(args: &RoleArgs) -> Result<(), String> {
    let (mut reader, mut writer) = connect(&args.server).await?;
    ready("");
    let mut tally = Tally::new(args.count, args.ack_every);
    let mut body = Vec::with_capacity(BUFFER);
    let deadline = Instant::now() + ROLE_LIMIT;
    while !tally.complete() {
        match timeout_at(deadline, read_frame(&mut reader, &mut body)).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return Err("the relay closed the connection".to_owned()),
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(format!(
                    "only {} of {} reports received",
                    tally.received, args.count
                ))
            }
        }
        if let Some(count) = tally.record(checked_seq_of(&body, args.body_len)) {
            write_frame(&mut writer, &count.to_le_bytes()).await?;
            flush(&mut writer).await?;
        }
    }
    let settled = Instant::now() + SETTLE;
    while let Ok(Ok(true)) = timeout_at(settled, read_frame(&mut reader, &mut body)).await {
        tally.record(checked_seq_of(&body, args.body_len));
    }
    result(&tally.outcome())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_frame_is_seen_in_the_buffer() {
        assert!(!holds_a_frame(&[]));
        assert!(!holds_a_frame(&[0, 0, 0]));
        assert!(holds_a_frame(&[0, 0, 0, 0]));
        assert!(!holds_a_frame(&[0, 0, 0, 2, 7]));
        assert!(holds_a_frame(&[0, 0, 0, 2, 7, 7]));
        assert!(holds_a_frame(&[0, 0, 0, 1, 7, 0, 0]));
    }
}
