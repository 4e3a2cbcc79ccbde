//! The HTTP client of `gateway`: `--clients` keep-alive HTTP/1.1 connections over tokio
//! `TcpStream`, each with one call outstanding, on one current-thread runtime.
//!
//! Every connection writes the same fixed request and reads the answer: the head up to the
//! blank line ([`parse_head`], pure and unit-tested), then exactly `Content-Length` bytes of
//! body. An answer that is not `200` with the expected body is counted as an error (the
//! driver fails the run on any); an answer that cannot be framed (no `Content-Length`,
//! chunked, a head over [`MAX_HEAD`], the connection closed) ends the run at once. No HTTP
//! client crate: this is the least a client can do per call, so the figures are the
//! servers'.

use std::cell::{Cell, RefCell};
use std::time::Instant;

use bytes::{Buf, BytesMut};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::protocol::{CallOutcome, GatewayRoleArgs, BODY, CALL_LIMIT, EXPECTED, PATH};
use crate::procs;
use crate::roles::{self, SETUP};
use crate::stats::percentile;

/// Longest response head accepted, in bytes.
pub(crate) const MAX_HEAD: usize = 8 * 1024;
/// Longest response body accepted, in bytes.
const MAX_BODY: usize = 64 * 1024;

/// The request every connection sends to `host`, byte for byte.
pub(crate) fn request(host: &str) -> Vec<u8> {
    format!(
        "POST {PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    )
    .into_bytes()
}

/// The head of a response, as far as framing and checking need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    /// The status code.
    pub(crate) status: u16,
    /// The body's length.
    pub(crate) content_length: usize,
    /// The head's length, the blank line included: where the body starts.
    pub(crate) len: usize,
}

/// Parses the response head at the start of `buf`: `Ok(None)` while it is incomplete, an
/// error for what this client cannot frame (no `Content-Length`, a chunked body, a head over
/// [`MAX_HEAD`]) or a malformed status line.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err(format!("no end of head within {MAX_HEAD} bytes"));
        }
        return Ok(None);
    };
    if end + 4 > MAX_HEAD {
        return Err(format!("a head of {} bytes, over {MAX_HEAD}", end + 4));
    }
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| "a head that is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut content_length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("bad header line {line:?}"));
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            let length = value
                .parse::<usize>()
                .map_err(|_| format!("bad Content-Length {value:?}"))?;
            content_length = Some(length);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(format!("Transfer-Encoding {value:?} is not supported"));
        }
    }
    let content_length = content_length.ok_or("a response without Content-Length")?;
    Ok(Some(Head {
        status,
        content_length,
        len: end + 4,
    }))
}

/// One keep-alive connection.
struct Connection {
    stream: TcpStream,
    /// Bytes read and not yet consumed.
    buf: BytesMut,
}

impl Connection {
    /// Connects to `target`, with Nagle's algorithm off (the request is one write).
    async fn open(target: &str) -> Result<Connection, String> {
        let stream = TcpStream::connect(target)
            .await
            .map_err(|e| format!("cannot connect to {target}: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        Ok(Connection {
            stream,
            buf: BytesMut::with_capacity(MAX_HEAD),
        })
    }

    /// Sends `request` and reads the answer: `Ok(None)` when it is `200` with
    /// [`EXPECTED`], else `Ok(Some(what it was))`; an error when it cannot be read.
    async fn call(&mut self, request: &[u8]) -> Result<Option<String>, String> {
        self.stream
            .write_all(request)
            .await
            .map_err(|e| format!("cannot send: {e}"))?;
        let head = loop {
            if let Some(head) = parse_head(&self.buf)? {
                break head;
            }
            self.fill().await?;
        };
        if head.content_length > MAX_BODY {
            return Err(format!("a body of {} bytes", head.content_length));
        }
        let total = head.len + head.content_length;
        while self.buf.len() < total {
            self.fill().await?;
        }
        let body = &self.buf[head.len..total];
        let wrong = (head.status != 200 || body != EXPECTED.as_bytes()).then(|| {
            format!(
                "status {} with body {:?}",
                head.status,
                String::from_utf8_lossy(body)
            )
        });
        self.buf.advance(total);
        Ok(wrong)
    }

    /// Reads what the socket has into the buffer; an error at end of file.
    async fn fill(&mut self) -> Result<(), String> {
        self.buf.reserve(MAX_HEAD);
        match self.stream.read_buf(&mut self.buf).await {
            Ok(0) => Err("the server closed the connection".to_owned()),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("cannot read: {e}")),
        }
    }
}

/// What one phase (warm-up or measured) of calls gave.
struct Phase {
    latencies: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
    elapsed_ns: u64,
}

/// Makes `count` calls over `connections`, one outstanding on each: a looping future per
/// connection, all polled by one `FuturesUnordered` on the calling task.
async fn phase(
    connections: &mut [Connection],
    request: &[u8],
    count: u64,
) -> Result<Phase, String> {
    let next = Cell::new(0u64);
    let errors = Cell::new(0u64);
    let first_error = RefCell::new(None);
    let latencies = RefCell::new(Vec::with_capacity(count as usize));
    let start = Instant::now();
    {
        let (next, errors, first_error, latencies) = (&next, &errors, &first_error, &latencies);
        let mut workers: FuturesUnordered<_> = connections
            .iter_mut()
            .map(|connection| async move {
                while next.get() < count {
                    next.set(next.get() + 1);
                    let sent = Instant::now();
                    let wrong = connection.call(request).await?;
                    latencies
                        .borrow_mut()
                        .push(sent.elapsed().as_nanos() as u64);
                    if let Some(wrong) = wrong {
                        errors.set(errors.get() + 1);
                        first_error.borrow_mut().get_or_insert(wrong);
                    }
                }
                Ok::<(), String>(())
            })
            .collect();
        while let Some(done) = workers.next().await {
            done?;
        }
    }
    Ok(Phase {
        latencies: latencies.into_inner(),
        errors: errors.get(),
        first_error: first_error.into_inner(),
        elapsed_ns: start.elapsed().as_nanos() as u64,
    })
}

/// The client role: opens `--clients` connections to `--target`, makes `--warmup` calls
/// (within [`SETUP`]), then `--calls` measured ones (within [`CALL_LIMIT`]), and prints the
/// outcome as its `RESULT`.
pub(crate) async fn client(args: &GatewayRoleArgs) -> Result<(), String> {
    let request = request(&args.target);
    let mut connections = Vec::with_capacity(args.clients);
    for _ in 0..args.clients.max(1) {
        connections.push(Connection::open(&args.target).await?);
    }
    let warmup = tokio::time::timeout(SETUP, phase(&mut connections, &request, args.warmup))
        .await
        .map_err(|_| format!("warm-up not done within {SETUP:?}"))??;
    let measured = tokio::time::timeout(CALL_LIMIT, phase(&mut connections, &request, args.calls))
        .await
        .map_err(|_| format!("calls not done within {CALL_LIMIT:?}"))??;
    let mut latencies = measured.latencies;
    latencies.sort_unstable();
    roles::result(&CallOutcome {
        calls: latencies.len() as u64,
        errors: warmup.errors + measured.errors,
        first_error: warmup.first_error.or(measured.first_error),
        elapsed_ns: measured.elapsed_ns,
        p50_ns: percentile(&latencies, 0.50),
        p99_ns: percentile(&latencies, 0.99),
        max_ns: latencies.last().copied().unwrap_or(0),
        client_cpu_us: procs::own_cpu_us()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-length: 13\r\ncontent-type: application/json\r\n\
          date: Wed, 02 Dec 2026 13:00:00 GMT\r\n\r\n{\"result\":42}";

    #[test]
    fn a_whole_head_is_parsed() {
        let head = parse_head(ANSWER).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.content_length, 13);
        assert_eq!(&ANSWER[head.len..], EXPECTED.as_bytes());
    }

    #[test]
    fn a_partial_head_asks_for_more() {
        let end = ANSWER.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        for cut in [0, 1, 15, end, end + 3] {
            assert_eq!(parse_head(&ANSWER[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(parse_head(&ANSWER[..end + 4]).unwrap().is_some());
    }

    #[test]
    fn header_names_are_case_insensitive() {
        let head = parse_head(b"HTTP/1.1 503 Service Unavailable\r\nCONTENT-LENGTH:  7 \r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((head.status, head.content_length), (503, 7));
    }

    #[test]
    fn what_cannot_be_framed_is_an_error() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
            b"HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n",
            b"HTTP/1.1 OK\r\ncontent-length: 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        ] {
            assert!(parse_head(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(parse_head(&vec![b'a'; MAX_HEAD + 1]).is_err());
        let mut long = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx: ".to_vec();
        long.extend(vec![b'a'; MAX_HEAD]);
        long.extend(b"\r\n\r\n");
        assert!(parse_head(&long).is_err());
    }

    #[test]
    fn the_request_is_fixed() {
        let request = String::from_utf8(request("127.0.0.1:8080")).unwrap();
        assert_eq!(
            request,
            "POST /call/calculator/multiply HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\
             Content-Type: application/json\r\nContent-Length: 5\r\n\r\n[6,7]"
        );
    }
}
