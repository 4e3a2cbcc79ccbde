//! Hostile peers for the fault tests, in a process of their own (so that thousands of sockets
//! count against its limit on open files, not the test's). Everything it observes is printed
//! on stdout, one summary a line.
//!
//! ```text
//! abuse silent ADDR COUNT WAIT_MS EARLY_MS
//!     opens COUNT connections that never send a byte (what the peer sends is read), then
//!     waits at most WAIT_MS for the peer to close every one of them; a close sooner than
//!     EARLY_MS after its connect counts as early
//! abuse slowloris ADDR COUNT INTERVAL_MS WAIT_MS
//!     opens COUNT connections, each sending a valid Hello frame one byte every INTERVAL_MS,
//!     then waits at most WAIT_MS for the peer to close every one of them
//! ```
//!
//! At most 64 connection attempts are under way at once (a SYN dropped by the peer's full
//! accept queue waits a second for its retransmission and must not hold up the others); each
//! connection is served from the moment it is connected, and its times count from then.
//!
//! Printed lines (times in milliseconds):
//!
//! * `connected <n> failed <m> in <ms> ms[: <first error>]` once every attempt has ended;
//! * silent: `closed <n> open <k> early <e> min=<ms> median=<ms> max=<ms> max_early=<ms>`
//!   (`-` for the time of no connection);
//! * slowloris: `hello <bytes> bytes` first, then for each connection
//!   `slowloris <i> closed after <ms> ms with <sent> of <bytes> bytes sent` or
//!   `slowloris <i> still open after <ms> ms with <sent> of <bytes> bytes sent`;
//! * `done` last.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use netsvc::wire::{Frame, FrameCodec, Hello, PROTOCOL_VERSION};
use netsvc::ProcessId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::codec::Encoder;

/// Connection attempts under way at once.
const CONCURRENT_CONNECTS: usize = 64;

/// Makes `count` connections and runs `serve` on each as soon as it is connected (with its
/// index and when it connected); prints the `connected` line once every attempt has ended and
/// returns the outcomes of `serve`, gathered for at most `wait` after that.
async fn connections<T, F, Fut>(addr: SocketAddr, count: usize, wait: Duration, serve: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize, TcpStream, Instant) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    let start = Instant::now();
    let permits = Arc::new(Semaphore::new(CONCURRENT_CONNECTS));
    let (connected_tx, mut connected_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let (served_tx, mut served_rx) = mpsc::unbounded_channel::<T>();
    let serve = Arc::new(serve);
    for i in 0..count {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (connected_tx, served_tx, serve) =
            (connected_tx.clone(), served_tx.clone(), serve.clone());
        let attempt = TcpStream::connect(addr);
        tokio::spawn(async move {
            let outcome = attempt.await;
            drop(permit);
            match outcome {
                Ok(stream) => {
                    let _ = connected_tx.send(Ok(()));
                    // The `connected` line waits for every sender to go.
                    drop(connected_tx);
                    let served = serve(i, stream, Instant::now());
                    let _ = served_tx.send(served.await);
                }
                Err(e) => {
                    let _ = connected_tx.send(Err(e.to_string()));
                }
            }
        });
    }
    drop((connected_tx, served_tx));
    let (mut connected, mut failed, mut first_error) = (0, 0, None);
    while let Some(outcome) = connected_rx.recv().await {
        match outcome {
            Ok(()) => connected += 1,
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let error = first_error.map(|e| format!(": {e}")).unwrap_or_default();
    println!(
        "connected {connected} failed {failed} in {} ms{error}",
        start.elapsed().as_millis()
    );
    let deadline = tokio::time::Instant::now() + wait;
    let mut served = Vec::with_capacity(connected);
    while served.len() < connected {
        match tokio::time::timeout_at(deadline, served_rx.recv()).await {
            Ok(Some(outcome)) => served.push(outcome),
            Ok(None) | Err(_) => break,
        }
    }
    served
}

/// Reads until the peer closes the connection (end of stream or an error).
async fn until_closed(mut reader: impl AsyncReadExt + Unpin) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = reader.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

async fn silent(addr: SocketAddr, count: usize, wait: Duration, early: Duration) {
    let mut closed: Vec<u128> = connections(addr, count, wait, |_, stream, at| async move {
        until_closed(stream).await;
        at.elapsed().as_millis()
    })
    .await;
    let open = count - closed.len();
    closed.sort_unstable();
    let show = |ms: Option<&u128>| {
        ms.map(|ms| ms.to_string())
            .unwrap_or_else(|| "-".to_owned())
    };
    let early: Vec<u128> = closed
        .iter()
        .copied()
        .filter(|ms| *ms < early.as_millis())
        .collect();
    println!(
        "closed {} open {open} early {} min={} median={} max={} max_early={}",
        closed.len(),
        early.len(),
        show(closed.first()),
        show(closed.get(closed.len() / 2)),
        show(closed.last()),
        show(early.last())
    );
}

/// A valid `Hello` frame, length prefix included.
fn hello() -> Vec<u8> {
    let frame = Frame::Hello(Hello {
        version: PROTOCOL_VERSION,
        process: ProcessId::random(),
        node: "slowloris".to_owned(),
        group: String::new(),
        hub: false,
    });
    let mut buf = BytesMut::new();
    FrameCodec::default()
        .encode(frame, &mut buf)
        .expect("a Hello encodes");
    buf.to_vec()
}

/// Dribbles `hello` one byte every `interval` until the peer closes the connection (or all of
/// it is sent), then waits for the close until `wait` after `at`; prints the outcome.
async fn dribble(
    i: usize,
    stream: TcpStream,
    at: Instant,
    hello: Arc<Vec<u8>>,
    interval: Duration,
    wait: Duration,
) {
    let total = hello.len();
    let (reader, mut writer) = stream.into_split();
    let (closed_tx, mut closed) = oneshot::channel::<Duration>();
    tokio::spawn(async move {
        until_closed(reader).await;
        let _ = closed_tx.send(at.elapsed());
    });
    let mut sent = 0;
    let mut closed_after = None;
    for byte in hello.iter() {
        if writer.write_all(std::slice::from_ref(byte)).await.is_err() {
            break;
        }
        sent += 1;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            after = &mut closed => {
                closed_after = Some(after.unwrap_or_else(|_| at.elapsed()));
                break;
            }
        }
    }
    if closed_after.is_none() {
        let left = wait.saturating_sub(at.elapsed());
        if let Ok(after) = tokio::time::timeout(left, &mut closed).await {
            closed_after = Some(after.unwrap_or_else(|_| at.elapsed()));
        }
    }
    match closed_after {
        Some(after) => {
            println!(
                "slowloris {i} closed after {} ms with {sent} of {total} bytes sent",
                after.as_millis()
            )
        }
        None => {
            println!(
                "slowloris {i} still open after {} ms with {sent} of {total} bytes sent",
                at.elapsed().as_millis()
            )
        }
    }
}

async fn slowloris(addr: SocketAddr, count: usize, interval: Duration, wait: Duration) {
    let hello = Arc::new(hello());
    println!("hello {} bytes", hello.len());
    // Each connection prints its own line; `wait` more bounds the last of them.
    connections(addr, count, wait + interval, move |i, stream, at| {
        dribble(i, stream, at, hello.clone(), interval, wait)
    })
    .await;
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize| -> u64 {
        let arg = args
            .get(i)
            .unwrap_or_else(|| panic!("argument {} missing; see the module docs", i + 1));
        arg.parse()
            .unwrap_or_else(|e| panic!("argument {arg:?}: {e}"))
    };
    let addr: SocketAddr = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .expect("a socket address as the second argument");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match args.first().map(String::as_str) {
        Some("silent") => {
            let (count, wait, early) = (number(2) as usize, number(3), number(4));
            runtime.block_on(silent(
                addr,
                count,
                Duration::from_millis(wait),
                Duration::from_millis(early),
            ));
        }
        Some("slowloris") => {
            let (count, interval, wait) = (number(2) as usize, number(3), number(4));
            runtime.block_on(slowloris(
                addr,
                count,
                Duration::from_millis(interval),
                Duration::from_millis(wait),
            ));
        }
        other => panic!("unknown mode {other:?}; see the module docs"),
    }
    println!("done");
}
