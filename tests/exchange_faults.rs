//! Bad input and faults on exchange connections: each closes the offending connection with a
//! logged error, never panics, keeps memory bounded, and everyone else keeps being served.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::{probe, WAIT};
use netsvc::prelude::*;
use netsvc::wire::{Frame, FrameCodec, Hello, RequestFrame, ServiceInfo, WirePayload, PROTOCOL_VERSION};
use netsvc::{AgentId, ConnectionState, Exchange, ExchangeConfig, Format, ProcessId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Decoder, Encoder};

#[derive(Service)]
#[service(name = "calculator")]
struct Calculator;
impl Service for Calculator {}

#[netsvc::methods]
impl Calculator {
    fn multiply(&mut self, a: i64, b: i64) -> i64 {
        a * b
    }
}

#[derive(Service)]
#[service(name = "chatty")]
struct Chatty;
impl Service for Chatty {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.start_timer("burst", Duration::from_millis(5));
    }
    fn timer(&mut self, _: &str, ctx: &mut ServiceContext<Self>) {
        for i in 0..500u32 {
            ctx.publish_report("noise", vec![i; 64], Lifetime::None);
        }
        ctx.start_timer("burst", Duration::from_millis(5));
    }
}

fn config() -> ExchangeConfig {
    ExchangeConfig {
        handshake_timeout: Duration::from_millis(300),
        heartbeat: Duration::from_millis(100),
        dead_after: Duration::from_millis(800),
        outbound_limit: 256 * 1024,
        ..ExchangeConfig::default()
    }
}

/// A server node with a calculator, listening on a free port.
async fn server(config: ExchangeConfig) -> (Node, Exchange, String) {
    let _ = probe();
    let node = Node::new("server");
    let x = Exchange::with_config(&node, config).unwrap();
    let addr = x.listen("127.0.0.1:0").await.unwrap().to_string();
    node.spawn(Calculator);
    (node, x, addr)
}

fn encode(frame: &Frame) -> Vec<u8> {
    let mut buf = BytesMut::new();
    FrameCodec::default().encode(frame, &mut buf).unwrap();
    buf.to_vec()
}

fn hello(version: u32) -> Frame {
    Frame::Hello(Hello { version, process: ProcessId::random(), node: "raw".into(), group: String::new(), hub: false })
}

/// Reads frames until the peer closes the connection; `None` if it is still open after
/// `limit`. Returns the frames seen.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Vec<Frame>> {
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(frames),
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                while let Ok(Some(frame)) = codec.decode(&mut buf) {
                    frames.push(frame);
                }
            }
        }
    }
}

/// A well-behaved client still gets answers from the server.
async fn still_serving(addr: &str) {
    let node = Node::new("good client");
    let x = Exchange::new(&node);
    let mut events = x.connections();
    x.connect(addr, None).forget();
    let event = tokio::time::timeout(WAIT, events.recv()).await.unwrap().unwrap();
    assert_eq!(event.state, ConnectionState::Active);
    let deadline = tokio::time::Instant::now() + WAIT;
    let calc = loop {
        if let Some(b) = node.lookup_name("calculator").await.pop() {
            break b;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(CalculatorClient::new(node.endpoint(&calc)).multiply(6, 7).await, Ok(42));
}

async fn raw(addr: &str) -> TcpStream {
    TcpStream::connect(addr).await.unwrap()
}

#[actix::test]
async fn garbage_bytes_close_the_connection() {
    let (_node, _x, addr) = server(config()).await;
    let mut s = raw(&addr).await;
    s.write_all(&[0, 0, 0, 5, 0xde, 0xad, 0xbe, 0xef, 0x99]).await.unwrap();
    assert!(closed_within(&mut s, WAIT).await.is_some());
    still_serving(&addr).await;
}

#[actix::test]
async fn a_truncated_frame_then_eof_is_handled() {
    let (_node, _x, addr) = server(config()).await;
    let mut s = raw(&addr).await;
    let bytes = encode(&hello(PROTOCOL_VERSION));
    s.write_all(&bytes[..bytes.len() / 2]).await.unwrap();
    s.shutdown().await.unwrap();
    assert!(closed_within(&mut s, WAIT).await.is_some());
    still_serving(&addr).await;
}

#[actix::test]
async fn an_oversized_length_prefix_is_refused_before_allocating() {
    let (_node, _x, addr) = server(ExchangeConfig { max_frame: 1024, ..config() }).await;
    let mut s = raw(&addr).await;
    s.write_all(&[0x7f, 0xff, 0xff, 0xff, 1, 2, 3]).await.unwrap();
    assert!(closed_within(&mut s, WAIT).await.is_some());
    still_serving(&addr).await;
}

#[actix::test]
async fn an_unknown_frame_variant_closes_the_connection() {
    let (_node, _x, addr) = server(config()).await;
    let mut s = raw(&addr).await;
    s.write_all(&encode(&hello(PROTOCOL_VERSION))).await.unwrap();
    s.write_all(&[0, 0, 0, 2, 0xc8, 0x01]).await.unwrap();
    assert!(closed_within(&mut s, WAIT).await.is_some());
    still_serving(&addr).await;
}

#[actix::test]
async fn a_service_frame_before_the_handshake_closes_the_connection() {
    let (node, _x, addr) = server(config()).await;
    let mut s = raw(&addr).await;
    let info = ServiceInfo {
        agent: AgentId::random(),
        name: "intruder".into(),
        audience: "*".into(),
        process: ProcessId::random(),
        groups: vec![],
    };
    s.write_all(&encode(&Frame::ServiceAvailable(info))).await.unwrap();
    assert!(closed_within(&mut s, WAIT).await.is_some());
    assert!(node.lookup_name("intruder").await.is_empty());
    still_serving(&addr).await;
}

#[actix::test]
async fn a_wrong_protocol_version_is_refused_with_a_reason() {
    let (_node, _x, addr) = server(config()).await;
    let mut s = raw(&addr).await;
    s.write_all(&encode(&hello(PROTOCOL_VERSION + 1))).await.unwrap();
    let frames = closed_within(&mut s, WAIT).await.expect("closed");
    let reason = frames
        .iter()
        .find_map(|f| match f {
            Frame::Refused { reason } => Some(reason.clone()),
            _ => None,
        })
        .expect("a Refused frame");
    assert!(reason.contains("protocol version 2 is not supported"), "{reason}");
    still_serving(&addr).await;
}

#[actix::test]
async fn invalid_names_in_an_announcement_close_the_connection() {
    let (node, _x, addr) = server(config()).await;
    let mut s = raw(&addr).await;
    s.write_all(&encode(&hello(PROTOCOL_VERSION))).await.unwrap();
    let info = ServiceInfo {
        agent: AgentId::random(),
        name: "bad name".into(),
        audience: "*".into(),
        process: ProcessId::random(),
        groups: vec![],
    };
    s.write_all(&encode(&Frame::ServiceAvailable(info))).await.unwrap();
    assert!(closed_within(&mut s, WAIT).await.is_some());
    assert!(node.services().await.iter().all(|b| b.name() != "bad name"));
    still_serving(&addr).await;
}

#[actix::test]
async fn a_peer_that_never_speaks_is_closed_after_the_handshake_timeout() {
    let (_node, _x, addr) = server(config()).await;
    let mut s = raw(&addr).await;
    let started = std::time::Instant::now();
    assert!(closed_within(&mut s, WAIT).await.is_some());
    assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());
    still_serving(&addr).await;
}

#[actix::test]
async fn a_silent_peer_after_the_handshake_is_detected_as_dead() {
    let (_node, x, addr) = server(config()).await;
    let mut events = x.connections();
    let mut s = raw(&addr).await;
    s.write_all(&encode(&hello(PROTOCOL_VERSION))).await.unwrap();
    let active = tokio::time::timeout(WAIT, events.recv()).await.unwrap().unwrap();
    assert_eq!(active.state, ConnectionState::Active);
    let started = std::time::Instant::now();
    let inactive = tokio::time::timeout(WAIT, events.recv()).await.unwrap().unwrap();
    assert_eq!(inactive.state, ConnectionState::Inactive);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

#[actix::test]
async fn a_peer_that_stops_reading_is_disconnected_and_memory_stays_bounded() {
    let (node, x, addr) = server(config()).await;
    node.spawn(Chatty);
    let mut events = x.connections();
    let mut s = raw(&addr).await;
    s.write_all(&encode(&hello(PROTOCOL_VERSION))).await.unwrap();
    // Announce a subscriber and subscribe it to everything chatty says, then stop reading.
    let me = AgentId::random();
    let info = ServiceInfo {
        agent: me,
        name: String::new(),
        audience: "*".into(),
        process: ProcessId::random(),
        groups: vec![],
    };
    s.write_all(&encode(&Frame::ServiceAvailable(info))).await.unwrap();
    let chatty = loop {
        if let Some(b) = node.lookup_name("chatty").await.pop() {
            break b;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let subscribe = Frame::SubscriptionRequested { publisher: chatty.agent(), subscriber: me, pattern: "*".into() };
    s.write_all(&encode(&subscribe)).await.unwrap();
    let active = tokio::time::timeout(WAIT, events.recv()).await.unwrap().unwrap();
    assert_eq!(active.state, ConnectionState::Active);
    // Keep heartbeats coming so only the stalled writes can be blamed.
    let (mut _reader, mut writer) = s.into_split();
    let beat = tokio::spawn(async move {
        loop {
            if writer.write_all(&encode(&Frame::Heartbeat)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let inactive = tokio::time::timeout(WAIT, events.recv()).await.expect("disconnected").unwrap();
    assert_eq!(inactive.state, ConnectionState::Inactive);
    let stats = x.stats();
    assert!(stats.reports_dropped > 0, "{stats:?}");
    beat.abort();
    still_serving(&addr).await;
}

#[actix::test]
async fn the_authorise_hook_refuses_peers_by_address() {
    let refuse_all: netsvc::Authorise = std::sync::Arc::new(|peer| !peer.ip().is_loopback());
    let (_node, _x, addr) = server(ExchangeConfig { authorise: Some(refuse_all), ..config() }).await;
    let mut s = raw(&addr).await;
    s.write_all(&encode(&hello(PROTOCOL_VERSION))).await.unwrap();
    let frames = closed_within(&mut s, WAIT).await.expect("refused");
    assert!(frames.is_empty(), "{frames:?}");
}

#[actix::test]
async fn invalid_utf8_in_a_request_or_response_closes_the_connection() {
    let (node, _x, addr) = server(config()).await;
    let calculator = node.lookup_name("calculator").await.pop().unwrap();
    let args = WirePayload { format: Format::Bincode, type_name: "(i64, i64)".into(), bytes: vec![12, 14].into() };
    let request = Frame::Request(RequestFrame {
        conversation: 1,
        requester: AgentId::random(),
        target: calculator.agent(),
        method: "multiply".into(),
        args: args.clone(),
        reply_format: Format::Bincode,
    });
    let response = Frame::Response { conversation: 1, requester: calculator.agent(), content: args };
    for (frame, name) in [(request, &b"multiply"[..]), (response, &b"(i64, i64)"[..])] {
        let mut bytes = encode(&frame);
        let at = bytes.windows(name.len()).position(|w| w == name).unwrap();
        bytes[at] = 0xff;
        let mut s = raw(&addr).await;
        s.write_all(&encode(&hello(PROTOCOL_VERSION))).await.unwrap();
        s.write_all(&bytes).await.unwrap();
        // At once: well before the peer would count as silent (`dead_after`, 800 ms).
        let closed = closed_within(&mut s, Duration::from_millis(400)).await;
        assert!(closed.is_some(), "{} frame", frame.kind());
    }
    still_serving(&addr).await;
}
