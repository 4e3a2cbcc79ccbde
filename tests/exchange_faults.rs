//! Bad input and faults on exchange connections: each closes the offending connection with a
//! logged error, never panics, keeps memory bounded, and everyone else keeps being served.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::raw::{closed_within, encode, hello_from};
use common::{probe, WAIT};
use netsvc::prelude::*;
use netsvc::wire::{
    Frame, FrameCodec, Hello, RequestFrame, ServiceInfo, WirePayload, PROTOCOL_VERSION,
};
use netsvc::{AgentId, ConnectionState, Exchange, ExchangeConfig, Format, ProcessId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

#[derive(Service)]
#[service(name = "calculator")]
struct Calculator;
impl Service for Calculator {}

#[netsvc::methods]
impl Calculator {
    fn multiply(&mut self, a: i64, b: i64) -> i64 {
        a * b
    }

    fn echo(&mut self, text: String) -> String {
        text
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

fn hello(version: u32) -> Frame {
    hello_from(version, ProcessId::random())
}

/// A well-behaved client still gets answers from the server.
async fn still_serving(addr: &str) {
    let node = Node::new("good client");
    let x = Exchange::new(&node);
    let mut events = x.connections();
    x.connect(addr, None).forget();
    let event = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.state, ConnectionState::Active);
    let deadline = tokio::time::Instant::now() + WAIT;
    let calc = loop {
        if let Some(b) = node.lookup_name("calculator").await.pop() {
            break b;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        CalculatorClient::new(node.endpoint(&calc))
            .multiply(6, 7)
            .await,
        Ok(42)
    );
}

async fn raw(addr: &str) -> TcpStream {
    TcpStream::connect(addr).await.unwrap()
}

/// A raw connection that completed its handshake and announced a service of this name
/// (empty: anonymous); the service's agent.
async fn raw_service(addr: &str, name: &str) -> (TcpStream, AgentId) {
    let mut s = raw(addr).await;
    s.write_all(&encode(&hello(PROTOCOL_VERSION)))
        .await
        .unwrap();
    let me = AgentId::random();
    let info = ServiceInfo {
        agent: me,
        name: name.into(),
        audience: "*".into(),
        process: ProcessId::random(),
        groups: vec![],
    };
    s.write_all(&encode(&Frame::ServiceAvailable(info)))
        .await
        .unwrap();
    (s, me)
}

/// A raw connection that completed its handshake, announced an anonymous subscriber and
/// subscribed it to everything the server's `chatty` publishes.
async fn raw_subscriber_of_chatty(node: &Node, addr: &str) -> TcpStream {
    let (mut s, me) = raw_service(addr, "").await;
    let chatty = wait_for(node, "chatty").await;
    let subscribe = Frame::SubscriptionRequested {
        publisher: chatty.agent(),
        subscriber: me,
        pattern: "*".into(),
    };
    s.write_all(&encode(&subscribe)).await.unwrap();
    s
}

#[actix::test]
async fn garbage_bytes_close_the_connection() {
    let (_node, _x, addr) = server(config()).await;
    let mut s = raw(&addr).await;
    s.write_all(&[0, 0, 0, 5, 0xde, 0xad, 0xbe, 0xef, 0x99])
        .await
        .unwrap();
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
    let (_node, _x, addr) = server(ExchangeConfig {
        max_frame: 1024,
        ..config()
    })
    .await;
    let mut s = raw(&addr).await;
    s.write_all(&[0x7f, 0xff, 0xff, 0xff, 1, 2, 3])
        .await
        .unwrap();
    assert!(closed_within(&mut s, WAIT).await.is_some());
    still_serving(&addr).await;
}

#[actix::test]
async fn an_unknown_frame_variant_closes_the_connection() {
    let (_node, _x, addr) = server(config()).await;
    let mut s = raw(&addr).await;
    s.write_all(&encode(&hello(PROTOCOL_VERSION)))
        .await
        .unwrap();
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
    s.write_all(&encode(&Frame::ServiceAvailable(info)))
        .await
        .unwrap();
    assert!(closed_within(&mut s, WAIT).await.is_some());
    assert!(node.lookup_name("intruder").await.is_empty());
    still_serving(&addr).await;
}

#[actix::test]
async fn a_wrong_protocol_version_is_refused_with_a_reason() {
    let (_node, _x, addr) = server(config()).await;
    // An older peer (the version before shared secrets) and a newer one.
    for version in [PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1] {
        let mut s = raw(&addr).await;
        s.write_all(&encode(&hello(version))).await.unwrap();
        let frames = closed_within(&mut s, WAIT).await.expect("closed");
        let reason = frames
            .iter()
            .find_map(|f| match f {
                Frame::Refused { reason } => Some(reason.clone()),
                _ => None,
            })
            .expect("a Refused frame");
        assert!(
            reason.contains(&format!("protocol version {version} is not supported")),
            "{reason}"
        );
    }
    still_serving(&addr).await;
}

#[actix::test]
async fn invalid_names_in_an_announcement_close_the_connection() {
    let (node, _x, addr) = server(config()).await;
    let mut s = raw(&addr).await;
    s.write_all(&encode(&hello(PROTOCOL_VERSION)))
        .await
        .unwrap();
    let info = ServiceInfo {
        agent: AgentId::random(),
        name: "bad name".into(),
        audience: "*".into(),
        process: ProcessId::random(),
        groups: vec![],
    };
    s.write_all(&encode(&Frame::ServiceAvailable(info)))
        .await
        .unwrap();
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
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    still_serving(&addr).await;
}

#[actix::test]
async fn a_silent_peer_after_the_handshake_is_detected_as_dead() {
    let (_node, x, addr) = server(config()).await;
    let mut events = x.connections();
    let mut s = raw(&addr).await;
    s.write_all(&encode(&hello(PROTOCOL_VERSION)))
        .await
        .unwrap();
    let active = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(active.state, ConnectionState::Active);
    let started = std::time::Instant::now();
    let inactive = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inactive.state, ConnectionState::Inactive);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[actix::test]
async fn a_peer_that_stops_reading_is_disconnected_and_memory_stays_bounded() {
    let (node, x, addr) = server(config()).await;
    node.spawn(Chatty);
    let mut events = x.connections();
    // A subscriber to everything chatty says, which then stops reading.
    let s = raw_subscriber_of_chatty(&node, &addr).await;
    let active = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
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
    let inactive = tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("disconnected")
        .unwrap();
    assert_eq!(inactive.state, ConnectionState::Inactive);
    let stats = x.stats();
    assert!(stats.reports_dropped > 0, "{stats:?}");
    beat.abort();
    still_serving(&addr).await;
}

#[actix::test]
async fn the_authorise_hook_refuses_peers_by_address() {
    let refuse_all: netsvc::Authorise = std::sync::Arc::new(|peer| !peer.ip().is_loopback());
    let (_node, _x, addr) = server(ExchangeConfig {
        authorise: Some(refuse_all),
        ..config()
    })
    .await;
    let mut s = raw(&addr).await;
    s.write_all(&encode(&hello(PROTOCOL_VERSION)))
        .await
        .unwrap();
    let frames = closed_within(&mut s, WAIT).await.expect("refused");
    assert!(frames.is_empty(), "{frames:?}");
}

#[actix::test]
async fn invalid_utf8_in_a_request_or_response_closes_the_connection() {
    let (node, _x, addr) = server(config()).await;
    let calculator = node.lookup_name("calculator").await.pop().unwrap();
    let args = WirePayload {
        format: Format::Bincode,
        type_name: "(i64, i64)".into(),
        bytes: vec![12, 14].into(),
    };
    let request = Frame::Request(RequestFrame {
        conversation: 1,
        requester: AgentId::random(),
        target: calculator.agent(),
        method: "multiply".into(),
        args: args.clone(),
        reply_format: Format::Bincode,
    });
    // The response's responder is an agent the peer announced: its source is right, only
    // its type name is wrong.
    let responder = AgentId::random();
    let response = Frame::Response {
        conversation: 1,
        requester: calculator.agent(),
        content: args,
        responder,
    };
    let announce = Frame::ServiceAvailable(ServiceInfo {
        agent: responder,
        name: String::new(),
        audience: "*".into(),
        process: ProcessId::random(),
        groups: vec![],
    });
    for (frame, name) in [(request, &b"multiply"[..]), (response, &b"(i64, i64)"[..])] {
        let mut bytes = encode(&frame);
        let at = bytes.windows(name.len()).position(|w| w == name).unwrap();
        bytes[at] = 0xff;
        let mut s = raw(&addr).await;
        s.write_all(&encode(&hello(PROTOCOL_VERSION)))
            .await
            .unwrap();
        s.write_all(&encode(&announce)).await.unwrap();
        s.write_all(&bytes).await.unwrap();
        // At once: well before the peer would count as silent (`dead_after`, 800 ms).
        let closed = closed_within(&mut s, Duration::from_millis(400)).await;
        assert!(closed.is_some(), "{} frame", frame.kind());
    }
    still_serving(&addr).await;
}

// ---------------------------------------------------------------------------------------
// Hostile input (issue 8): each probe as an attacker on the network would send it, over a
// real socket, while a healthy client keeps calling through the same server.

/// A well-behaved client calling the server's calculator in a loop; counts answers.
struct Healthy {
    answers: std::sync::Arc<std::sync::atomic::AtomicU64>,
    failures: std::sync::Arc<std::sync::atomic::AtomicU64>,
    _node: Node,
    task: tokio::task::JoinHandle<()>,
}

impl Healthy {
    async fn start(addr: &str) -> Healthy {
        use std::sync::atomic::Ordering;
        let node = Node::new("healthy");
        let x = Exchange::new(&node);
        let mut events = x.connections();
        x.connect(addr, Some(Duration::from_millis(50))).forget();
        let event = tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(event.state, ConnectionState::Active);
        let calc = wait_for(&node, "calculator").await;
        let answers = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let failures = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (a, f, n) = (answers.clone(), failures.clone(), node.clone());
        let task = actix::spawn(async move {
            let client = CalculatorClient::new(n.endpoint(&calc));
            loop {
                match client.multiply(6, 7).await {
                    Ok(42) => a.fetch_add(1, Ordering::Relaxed),
                    _ => f.fetch_add(1, Ordering::Relaxed),
                };
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        Healthy {
            answers,
            failures,
            _node: node,
            task,
        }
    }

    /// Asserts that answers keep coming (more within `WAIT`) and none failed.
    async fn flowing(&self) {
        use std::sync::atomic::Ordering;
        let before = self.answers.load(Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.answers.load(Ordering::Relaxed) < before + 20 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "healthy calls stalled"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            self.failures.load(Ordering::Relaxed),
            0,
            "healthy calls failed"
        );
    }
}

impl Drop for Healthy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn wait_for(node: &Node, name: &str) -> netsvc::Binding {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(b) = node.lookup_name(name).await.pop() {
            return b;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never appeared"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The frames that aborted or panicked any netsvc process before the handshake (issue 8.1):
/// a `Goodbye` whose reason claims 2^57 bytes, a string length overflowing capacity, and a
/// `Refused` with a huge reason; and the same with the lengths raised to 2^40.
const CRASH_FRAMES: [&str; 4] = [
    "0000000a0ffd0000000000000002",
    "0000000f0ffdffffff0f0700ffb30800ffffff0f0f0fff00",
    "0000000f000000000a01fd0000000000040000",
    "0000000a0ffd0000000000010000",
];

#[actix::test]
async fn frames_announcing_huge_lengths_close_the_connection_and_crash_nothing() {
    let (_node, _x, addr) = server(config()).await;
    let healthy = Healthy::start(&addr).await;
    for frame in CRASH_FRAMES {
        // Before the handshake, and after it.
        for after_hello in [false, true] {
            let mut s = raw(&addr).await;
            if after_hello {
                s.write_all(&encode(&hello(PROTOCOL_VERSION)))
                    .await
                    .unwrap();
            }
            s.write_all(&unhex(frame)).await.unwrap();
            assert!(closed_within(&mut s, WAIT).await.is_some(), "{frame}");
        }
    }
    healthy.flowing().await;
}

#[actix::test]
async fn a_fake_hub_sending_huge_lengths_does_not_crash_a_connecting_client() {
    let _ = probe();
    for frame in CRASH_FRAMES {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = listener.local_addr().unwrap().to_string();
        let node = Node::new("client");
        let x = Exchange::with_config(&node, config()).unwrap();
        x.connect(&fake, None).forget();
        let (mut s, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .unwrap()
            .unwrap();
        s.write_all(&unhex(frame)).await.unwrap();
        // The client closes the connection: it is still alive and well to do so.
        assert!(closed_within(&mut s, WAIT).await.is_some(), "{frame}");
        let calc = node.spawn(Calculator);
        let local = CalculatorClient::new(node.endpoint(&calc.binding));
        assert_eq!(local.multiply(6, 7).await, Ok(42));
    }
}

#[actix::test]
async fn user_payloads_announcing_huge_lengths_fail_to_decode_without_allocating() {
    // A String argument whose length claims 2^40 bytes, in a request from a known peer: the
    // call fails with a decoding failure, the node keeps serving.
    let (node, _x, addr) = server(config()).await;
    let healthy = Healthy::start(&addr).await;
    let calculator = node.lookup_name("calculator").await.pop().unwrap();
    let mut s = raw(&addr).await;
    s.write_all(&encode(&hello(PROTOCOL_VERSION)))
        .await
        .unwrap();
    let me = AgentId::random();
    let info = ServiceInfo {
        agent: me,
        name: "caller".into(),
        audience: "*".into(),
        process: ProcessId::random(),
        groups: vec![],
    };
    s.write_all(&encode(&Frame::ServiceAvailable(info)))
        .await
        .unwrap();
    wait_for(&node, "caller").await;
    // `echo(String)`: a string whose length claims 2^40 bytes, then 2^63 (the abort and the
    // capacity overflow of issue 8.1, one level down, in the user's own argument types).
    let huge_2_40 = vec![253, 0, 0, 0, 0, 0, 1, 0, 0];
    let huge_2_63 = vec![253, 0, 0, 0, 0, 0, 0, 0, 0x80];
    for bytes in [huge_2_40, huge_2_63] {
        let request = Frame::Request(RequestFrame {
            conversation: 7,
            requester: me,
            target: calculator.agent(),
            method: "echo".into(),
            args: WirePayload {
                format: Format::Bincode,
                type_name: "(String,)".into(),
                bytes: bytes.into(),
            },
            reply_format: Format::Bincode,
        });
        s.write_all(&encode(&request)).await.unwrap();
    }
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::new();
    let mut failures = 0;
    while failures < 2 {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, s.read(&mut chunk))
            .await
            .expect("answered")
            .unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
        while let Some(frame) = codec.decode(&mut buf).unwrap() {
            if let Frame::Failure {
                conversation: 7,
                failure,
                ..
            } = frame
            {
                assert_eq!(failure.code, 54, "{failure:?}");
                failures += 1;
            }
        }
    }
    healthy.flowing().await;
}

#[actix::test]
async fn names_longer_than_the_limit_are_refused_in_constructors_and_on_receipt() {
    let long = "n".repeat(netsvc::MAX_NAME_LEN + 1);
    assert!(matches!(
        netsvc::ServiceName::new(&long),
        Err(netsvc::InvalidName::TooLong { len: 256, .. })
    ));
    assert!(netsvc::GroupName::new(&long).is_err());
    assert!(netsvc::Subject::new(&long).is_err());
    assert!(netsvc::SubjectPattern::new(&long).is_err());
    assert!(netsvc::ServiceName::new("n".repeat(netsvc::MAX_NAME_LEN)).is_ok());

    let (node, _x, addr) = server(config()).await;
    let healthy = Healthy::start(&addr).await;
    // A service name of 1 MiB, a group of 256 bytes: the connection is closed, nothing known.
    let huge = ServiceInfo {
        agent: AgentId::random(),
        name: "x".repeat(1 << 20),
        audience: "*".into(),
        process: ProcessId::random(),
        groups: vec![],
    };
    let grouped = ServiceInfo {
        agent: AgentId::random(),
        name: "grouped".into(),
        audience: "*".into(),
        process: ProcessId::random(),
        groups: vec![long.clone()],
    };
    for info in [huge, grouped] {
        let mut s = raw(&addr).await;
        s.write_all(&encode(&hello(PROTOCOL_VERSION)))
            .await
            .unwrap();
        s.write_all(&encode(&Frame::ServiceAvailable(info)))
            .await
            .unwrap();
        assert!(closed_within(&mut s, WAIT).await.is_some());
    }
    assert!(node
        .services()
        .await
        .iter()
        .all(|b| b.name().as_str().len() <= netsvc::MAX_NAME_LEN));
    assert!(node.lookup_name("grouped").await.is_empty());
    healthy.flowing().await;
}

#[actix::test]
async fn hello_with_a_long_node_name_is_refused_and_a_huge_one_is_cut_off_by_the_handshake_cap() {
    let (_node, _x, addr) = server(config()).await;
    let healthy = Healthy::start(&addr).await;
    let long = Frame::Hello(Hello {
        version: PROTOCOL_VERSION,
        process: ProcessId::random(),
        node: "n".repeat(300),
        group: String::new(),
        hub: false,
    });
    let mut s = raw(&addr).await;
    s.write_all(&encode(&long)).await.unwrap();
    let frames = closed_within(&mut s, WAIT).await.expect("refused");
    assert!(
        frames.iter().any(
            |f| matches!(f, Frame::Refused { reason } if reason.contains("invalid node name"))
        ),
        "{frames:?}"
    );
    // A 1 MiB node name is over the pre-handshake cap: closed from the length prefix.
    let huge = Frame::Hello(Hello {
        version: PROTOCOL_VERSION,
        process: ProcessId::random(),
        node: "n".repeat(1 << 20),
        group: String::new(),
        hub: false,
    });
    let mut s = raw(&addr).await;
    let bytes = encode(&huge);
    s.write_all(&bytes[..64]).await.unwrap();
    assert!(closed_within(&mut s, WAIT).await.is_some());
    healthy.flowing().await;
}

#[actix::test]
async fn frames_over_the_handshake_cap_before_hello_are_refused_from_their_header() {
    let (_node, _x, addr) = server(config()).await;
    let healthy = Healthy::start(&addr).await;
    // 16 MiB announced (the frame cap) but only a few bytes sent: closed at once, not held.
    let mut s = raw(&addr).await;
    s.write_all(&[0x01, 0x00, 0x00, 0x00, 0, 1, 2, 3])
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert!(closed_within(&mut s, WAIT).await.is_some());
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "closed only after {:?}",
        started.elapsed()
    );
    // One byte over the cap is refused; at the cap a frame is read (and here refused as a
    // frame before the handshake, not for its size).
    let cap = netsvc::DEFAULT_HANDSHAKE_FRAME;
    for len in [cap + 1, cap] {
        let mut frame = (len as u32).to_be_bytes().to_vec();
        frame.extend(std::iter::repeat_n(14u8, len));
        let mut s = raw(&addr).await;
        s.write_all(&frame).await.unwrap();
        assert!(closed_within(&mut s, WAIT).await.is_some(), "{len}");
    }
    healthy.flowing().await;
}

#[actix::test]
async fn connections_over_the_limits_are_refused_and_served_ones_are_not_disturbed() {
    let limits = netsvc::Limits {
        connections: 6,
        pending_handshakes: 2,
        connections_per_address: 5,
        ..Default::default()
    };
    let (_node, _x, addr) = server(ExchangeConfig {
        limits,
        handshake_timeout: Duration::from_secs(5),
        ..config()
    })
    .await;
    let healthy = Healthy::start(&addr).await;
    // Two silent connections fill the handshake slots: a third is closed at once.
    let mut silent = vec![raw(&addr).await, raw(&addr).await];
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = raw(&addr).await;
    let started = std::time::Instant::now();
    assert!(closed_within(&mut third, WAIT).await.is_some());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // Once they complete their handshakes, more may connect, up to 5 from this address
    // (the healthy client is the first).
    for s in &mut silent {
        s.write_all(&encode(&hello(PROTOCOL_VERSION)))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut more = Vec::new();
    for _ in 0..2 {
        let mut s = raw(&addr).await;
        s.write_all(&encode(&hello(PROTOCOL_VERSION)))
            .await
            .unwrap();
        more.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for s in silent.iter_mut().chain(more.iter_mut()) {
        assert!(
            closed_within(s, Duration::from_millis(100)).await.is_none(),
            "a served connection was closed"
        );
    }
    let mut sixth = raw(&addr).await;
    assert!(
        closed_within(&mut sixth, WAIT).await.is_some(),
        "over the per-address limit"
    );
    // Slots come back when connections end.
    drop(more);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = raw(&addr).await;
    again
        .write_all(&encode(&hello(PROTOCOL_VERSION)))
        .await
        .unwrap();
    assert!(
        closed_within(&mut again, Duration::from_millis(300))
            .await
            .is_none(),
        "a freed slot was not reused"
    );
    healthy.flowing().await;
}

#[actix::test]
async fn a_new_link_gets_every_known_service_however_many_there_are() {
    // 20,000 announcements (about 1.5 MB) through a server whose links buffer 256 KiB: sent
    // all at once they would close every new link as "not reading".
    let (node, _x, addr) = server(ExchangeConfig {
        outbound_limit: 256 * 1024,
        ..ExchangeConfig::default()
    })
    .await;
    let mut s = raw(&addr).await;
    s.write_all(&encode(&hello(PROTOCOL_VERSION)))
        .await
        .unwrap();
    let process = ProcessId::random();
    let mut burst = Vec::new();
    for i in 0..20_000 {
        let info = ServiceInfo {
            agent: AgentId::random(),
            name: format!("service-{i:05}-{}", "x".repeat(40)),
            audience: "*".into(),
            process,
            groups: vec!["many".into()],
        };
        burst.extend(encode(&Frame::ServiceAvailable(info)));
    }
    s.write_all(&burst).await.unwrap();
    let (_reader, mut writer) = s.into_split();
    let beat = actix::spawn(async move {
        while writer.write_all(&encode(&Frame::Heartbeat)).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let deadline = tokio::time::Instant::now() + WAIT * 4;
    while node.lookup_group("many").await.len() < 20_000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server never learned all services"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = Node::new("late client");
    let x = Exchange::new(&client);
    let mut events = x.connections();
    x.connect(&addr, None).forget();
    assert_eq!(
        tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap()
            .unwrap()
            .state,
        ConnectionState::Active
    );
    let deadline = tokio::time::Instant::now() + WAIT * 4;
    while client.lookup_group("many").await.len() < 20_000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new client never learned all services"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(events.try_recv().is_err(), "the new link was closed");
    assert_eq!(
        CalculatorClient::new(client.endpoint(&wait_for(&client, "calculator").await))
            .multiply(6, 7)
            .await,
        Ok(42)
    );
    beat.abort();
}

#[actix::test]
async fn a_subscriber_reading_slowly_is_not_taken_for_one_that_stopped() {
    let (node, x, addr) = server(ExchangeConfig {
        outbound_limit: 2 << 20,
        ..config()
    })
    .await;
    node.spawn(Chatty);
    let mut events = x.connections();
    let s = raw_subscriber_of_chatty(&node, &addr).await;
    assert_eq!(
        tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap()
            .unwrap()
            .state,
        ConnectionState::Active
    );
    let (mut reader, mut writer) = s.into_split();
    let beat = actix::spawn(async move {
        while writer.write_all(&encode(&Frame::Heartbeat)).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    // About 400 kB/s, far slower than chatty publishes: a swapped buffer of 2 MiB takes about
    // 5 s to write, six times the stall limit (800 ms), but the reader makes room all along.
    let slow = actix::spawn(async move {
        let mut total = 0usize;
        let mut chunk = vec![0u8; 20 * 1024];
        loop {
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    if let Ok(event) = tokio::time::timeout(Duration::from_secs(4), events.recv()).await {
        panic!(
            "the slow reader was disconnected: {:?}",
            event.map(|e| e.state)
        );
    }
    assert!(
        x.stats().reports_dropped > 0,
        "the test did not outrun the reader"
    );
    beat.abort();
    slow.abort();
}

#[actix::test]
async fn a_dropped_duplicate_link_does_not_announce_the_surviving_peer_inactive() {
    let (_node, _x, addr) = server(config()).await;
    let client = Node::new("twice");
    let x = Exchange::with_config(&client, config()).unwrap();
    let mut events = x.connections();
    x.connect(&addr, None).forget();
    assert_eq!(
        tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap()
            .unwrap()
            .state,
        ConnectionState::Active
    );
    x.connect(&addr, None).forget();
    // The second link is dropped as a duplicate: nothing is announced for it.
    if let Ok(event) = tokio::time::timeout(Duration::from_millis(1500), events.recv()).await {
        panic!("unexpected connection event {:?}", event.map(|e| e.state));
    }
    assert_eq!(x.stats().connections, 1);
    let calc = wait_for(&client, "calculator").await;
    assert_eq!(
        CalculatorClient::new(client.endpoint(&calc))
            .multiply(6, 7)
            .await,
        Ok(42)
    );
}

#[actix::test]
async fn a_connection_attempt_that_gets_no_answer_is_bounded_and_retried() {
    let _ = probe();
    // A listener whose accept queue is full: the kernel drops further SYNs silently, as a
    // blackhole would, and a connect waits on its own retries (1 s, 3 s, 7 s, ...).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await
        {
            fillers.push(s);
        }
    }
    let node = Node::new("patient");
    let config = ExchangeConfig {
        connect_timeout: Duration::from_millis(200),
        ..config()
    };
    let x = Exchange::with_config(&node, config).unwrap();
    x.connect(&addr.to_string(), Some(Duration::from_millis(50)))
        .forget();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Accepting again: a bounded attempt is retried at once, and its Hello arrives within a
    // few hundred milliseconds (an unbounded one would wait for the kernel's retry at 3 s).
    drop(fillers);
    let started = std::time::Instant::now();
    loop {
        let (mut s, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .expect("no connection")
            .unwrap();
        let mut head = [0u8; 5];
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(100), s.read_exact(&mut head)).await
        {
            assert_eq!(head[4], 0, "a Hello frame");
            break;
        }
    }
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "connected only after {:?}",
        started.elapsed()
    );
}

#[actix::test]
async fn a_report_with_an_over_long_type_name_closes_the_connection() {
    let (node, _x, addr) = server(config()).await;
    let healthy = Healthy::start(&addr).await;
    let chatty = node.spawn(Chatty).binding;
    let (mut s, me) = raw_service(&addr, "publisher").await;
    wait_for(&node, "publisher").await;
    let report = Frame::TargetedReport(netsvc::wire::ReportFrame {
        publisher: me,
        subject: "s".into(),
        content: WirePayload {
            format: Format::Bincode,
            type_name: "t".repeat(256),
            bytes: vec![1].into(),
        },
        targets: vec![netsvc::wire::ReportTarget {
            subscriber: chatty.agent(),
            pattern: None,
        }],
    });
    s.write_all(&encode(&report)).await.unwrap();
    assert!(closed_within(&mut s, WAIT).await.is_some());
    healthy.flowing().await;
}

/// Tells the test the content of each report it gets.
#[derive(Service)]
#[service(name = "collector")]
struct Collector(tokio::sync::mpsc::UnboundedSender<u32>);
impl Service for Collector {
    fn report(&mut self, report: Report, _: &mut ServiceContext<Self>) {
        let _ = self.0.send(report.decode::<u32>().unwrap_or(u32::MAX));
    }
}

/// A report's target list is read only when the receiver has not routed the same bytes
/// before; a list that does not read (a bad option tag, bytes after it) still closes the
/// connection, after a good report from the same publisher to the same subscriber went
/// through, and nothing of the bad one is delivered.
#[actix::test]
async fn a_report_whose_target_list_does_not_read_closes_the_connection() {
    let (node, _x, addr) = server(config()).await;
    let healthy = Healthy::start(&addr).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let collector = node.spawn(Collector(tx)).binding;
    for (i, fault) in ["option tag", "trailing byte"].into_iter().enumerate() {
        let name = format!("publisher-{i}");
        let (mut s, me) = raw_service(&addr, &name).await;
        wait_for(&node, &name).await;
        let report = Frame::TargetedReport(netsvc::wire::ReportFrame {
            publisher: me,
            subject: "s".into(),
            content: WirePayload {
                format: Format::Bincode,
                type_name: "u32".into(),
                bytes: vec![7].into(),
            },
            targets: vec![netsvc::wire::ReportTarget {
                subscriber: collector.agent(),
                pattern: None,
            }],
        });
        let good = encode(&report);
        s.write_all(&good).await.unwrap();
        let got = tokio::time::timeout(WAIT, rx.recv()).await.unwrap();
        assert_eq!(got, Some(7), "{fault}: the good report is delivered");
        // The same report with its target list spoiled: the pattern's option tag (the last
        // byte) made 9, or a byte after the list.
        let mut bad = good.clone();
        match fault {
            "option tag" => *bad.last_mut().unwrap() = 9,
            _ => {
                bad.push(0);
                let len = (bad.len() - 4) as u32;
                bad[..4].copy_from_slice(&len.to_be_bytes());
            }
        }
        s.write_all(&bad).await.unwrap();
        assert!(
            closed_within(&mut s, WAIT).await.is_some(),
            "{fault}: the connection is closed"
        );
        assert!(
            rx.try_recv().is_err(),
            "{fault}: nothing of it is delivered"
        );
    }
    healthy.flowing().await;
}

#[actix::test]
async fn announcements_of_ids_chosen_to_collide_do_not_freeze_the_server() {
    // Ids with the same first 8 bytes and the same low half of the last 8: they all collide
    // under an unkeyed multiply hash (issue 8.3: 100,000 of them froze a hub for 70 s).
    // Default liveness settings: a debug build on a busy machine needs a while for 50,000.
    let (node, _x, addr) = server(ExchangeConfig {
        outbound_limit: 256 * 1024,
        ..ExchangeConfig::default()
    })
    .await;
    let healthy = Healthy::start(&addr).await;
    let mut s = raw(&addr).await;
    s.write_all(&encode(&hello(PROTOCOL_VERSION)))
        .await
        .unwrap();
    let process = ProcessId::random();
    let mut burst = Vec::new();
    for i in 0..50_000u32 {
        let mut bytes = [7u8; 16];
        bytes[12..16].copy_from_slice(&i.to_le_bytes());
        let info = ServiceInfo {
            agent: AgentId::from_uuid(uuid::Uuid::from_bytes(bytes)),
            name: "flood".into(),
            audience: "*".into(),
            process,
            groups: vec![],
        };
        burst.extend(encode(&Frame::ServiceAvailable(info)));
    }
    let (_reader, mut writer) = s.into_split();
    writer.write_all(&burst).await.unwrap();
    let beat = actix::spawn(async move {
        while writer.write_all(&encode(&Frame::Heartbeat)).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let deadline = tokio::time::Instant::now() + WAIT * 4;
    while node.lookup_name("flood").await.len() < 50_000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server never learned all services"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    healthy.flowing().await;
    beat.abort();
}

#[actix::test]
async fn a_peer_over_its_services_or_subscriptions_per_link_is_closed() {
    let limits = netsvc::Limits {
        services_per_link: 10,
        subscriptions_per_link: 5,
        patterns_per_publisher: 3,
        ..Default::default()
    };
    let (node, _x, addr) = server(ExchangeConfig { limits, ..config() }).await;
    let healthy = Healthy::start(&addr).await;
    let info = |name: &str| ServiceInfo {
        agent: AgentId::random(),
        name: name.into(),
        audience: "*".into(),
        process: ProcessId::random(),
        groups: vec![],
    };
    // Ten services are fine; the eleventh closes the connection (and withdraws the ten).
    let mut s = raw(&addr).await;
    s.write_all(&encode(&hello(PROTOCOL_VERSION)))
        .await
        .unwrap();
    for _ in 0..10 {
        s.write_all(&encode(&Frame::ServiceAvailable(info("many"))))
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while node.lookup_name("many").await.len() < 10 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        closed_within(&mut s, Duration::from_millis(200))
            .await
            .is_none(),
        "closed at the limit"
    );
    s.write_all(&encode(&Frame::ServiceAvailable(info("many"))))
        .await
        .unwrap();
    assert!(
        closed_within(&mut s, WAIT).await.is_some(),
        "over the limit"
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while !node.lookup_name("many").await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Five subscriptions are fine (a repeated one counts once, in either format; at most
    // three patterns to one publisher); the sixth, asking for JSON, closes it.
    let chatty = node.spawn(Chatty).binding;
    let other = node.spawn(Calculator).binding;
    let mut s = raw(&addr).await;
    s.write_all(&encode(&hello(PROTOCOL_VERSION)))
        .await
        .unwrap();
    let me = info("");
    let subscriber = me.agent;
    s.write_all(&encode(&Frame::ServiceAvailable(me)))
        .await
        .unwrap();
    for i in 0..5 {
        let pattern = format!("noise.{i}");
        let publisher = if i < 3 { chatty.agent() } else { other.agent() };
        let subscribe = Frame::SubscriptionRequested {
            publisher,
            subscriber,
            pattern: pattern.clone(),
        };
        s.write_all(&encode(&subscribe)).await.unwrap();
        s.write_all(&encode(&subscribe)).await.unwrap();
        let as_json = Frame::SubscriptionRequestedAs {
            publisher,
            subscriber,
            pattern,
            format: Format::Json,
        };
        s.write_all(&encode(&as_json)).await.unwrap();
    }
    assert!(
        closed_within(&mut s, Duration::from_millis(300))
            .await
            .is_none(),
        "closed at the limit"
    );
    let sixth = Frame::SubscriptionRequestedAs {
        publisher: other.agent(),
        subscriber,
        pattern: "noise.5".into(),
        format: Format::Json,
    };
    s.write_all(&encode(&sixth)).await.unwrap();
    assert!(
        closed_within(&mut s, WAIT).await.is_some(),
        "over the limit"
    );
    // A fourth pattern to one publisher closes it too.
    let mut s = raw(&addr).await;
    s.write_all(&encode(&hello(PROTOCOL_VERSION)))
        .await
        .unwrap();
    let me = info("");
    let subscriber = me.agent;
    s.write_all(&encode(&Frame::ServiceAvailable(me)))
        .await
        .unwrap();
    for i in 0..3 {
        let subscribe = Frame::SubscriptionRequested {
            publisher: chatty.agent(),
            subscriber,
            pattern: format!("p{i}"),
        };
        s.write_all(&encode(&subscribe)).await.unwrap();
    }
    assert!(
        closed_within(&mut s, Duration::from_millis(300))
            .await
            .is_none(),
        "closed at the limit"
    );
    let fourth = Frame::SubscriptionRequested {
        publisher: chatty.agent(),
        subscriber,
        pattern: "p3".into(),
    };
    s.write_all(&encode(&fourth)).await.unwrap();
    assert!(
        closed_within(&mut s, WAIT).await.is_some(),
        "over the limit per publisher"
    );
    healthy.flowing().await;
}

#[actix::test]
async fn a_service_over_its_groups_or_a_group_change_of_an_anonymous_one_closes_the_connection() {
    let limits = netsvc::Limits {
        groups_per_service: 3,
        pending_per_address: 2,
        ..Default::default()
    };
    let (node, _x, addr) = server(ExchangeConfig { limits, ..config() }).await;
    let healthy = Healthy::start(&addr).await;
    let info = |name: &str, groups: &[&str]| ServiceInfo {
        agent: AgentId::random(),
        name: name.into(),
        audience: "*".into(),
        process: ProcessId::random(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    };
    // Announced in four groups: over the limit.
    let mut s = raw(&addr).await;
    s.write_all(&encode(&hello(PROTOCOL_VERSION)))
        .await
        .unwrap();
    s.write_all(&encode(&Frame::ServiceAvailable(info(
        "wide",
        &["a", "b", "c", "d"],
    ))))
    .await
    .unwrap();
    assert!(closed_within(&mut s, WAIT).await.is_some());
    assert!(node.lookup_name("wide").await.is_empty());
    // In three, then joining a fourth: over the limit; joining one it is in is no change.
    let mut s = raw(&addr).await;
    s.write_all(&encode(&hello(PROTOCOL_VERSION)))
        .await
        .unwrap();
    let joiner = info("joiner", &["a", "b", "c"]);
    let agent = joiner.agent;
    s.write_all(&encode(&Frame::ServiceAvailable(joiner)))
        .await
        .unwrap();
    wait_for(&node, "joiner").await;
    s.write_all(&encode(&Frame::GroupJoined {
        agent,
        group: "c".into(),
    }))
    .await
    .unwrap();
    assert!(
        closed_within(&mut s, Duration::from_millis(300))
            .await
            .is_none(),
        "closed at the limit"
    );
    s.write_all(&encode(&Frame::GroupJoined {
        agent,
        group: "d".into(),
    }))
    .await
    .unwrap();
    assert!(
        closed_within(&mut s, WAIT).await.is_some(),
        "over the limit"
    );
    // A group change for an anonymous service is a protocol error.
    let mut s = raw(&addr).await;
    s.write_all(&encode(&hello(PROTOCOL_VERSION)))
        .await
        .unwrap();
    let anonymous = info("", &[]);
    let agent = anonymous.agent;
    s.write_all(&encode(&Frame::ServiceAvailable(anonymous)))
        .await
        .unwrap();
    s.write_all(&encode(&Frame::GroupJoined {
        agent,
        group: "a".into(),
    }))
    .await
    .unwrap();
    assert!(closed_within(&mut s, WAIT).await.is_some());
    // Two silent connections from this address hold its handshake slots: a third is refused.
    let _silent = [raw(&addr).await, raw(&addr).await];
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = raw(&addr).await;
    let started = std::time::Instant::now();
    assert!(closed_within(&mut third, WAIT).await.is_some());
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    healthy.flowing().await;
}

#[actix::test]
async fn a_request_from_an_agent_never_announced_is_answered_45_back_where_it_came_from() {
    // The hop before should have refused it (its requester cannot be seen here), or the
    // requester was withdrawn on the way: either way the request is answered, not dropped.
    let (node, _x, addr) = server(config()).await;
    let calculator = node.lookup_name("calculator").await.pop().unwrap();
    let mut s = raw(&addr).await;
    s.write_all(&encode(&hello(PROTOCOL_VERSION)))
        .await
        .unwrap();
    let stranger = AgentId::random();
    let args = WirePayload {
        format: Format::Bincode,
        type_name: "(i64, i64)".into(),
        bytes: vec![12, 14].into(),
    };
    let request = Frame::Request(RequestFrame {
        conversation: 9,
        requester: stranger,
        target: calculator.agent(),
        method: "multiply".into(),
        args,
        reply_format: Format::Bincode,
    });
    s.write_all(&encode(&request)).await.unwrap();
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::new();
    let failure = 'answered: loop {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, s.read(&mut chunk))
            .await
            .expect("answered")
            .unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
        while let Some(frame) = codec.decode(&mut buf).unwrap() {
            if let Frame::Failure {
                conversation: 9,
                requester,
                failure,
                responder,
            } = frame
            {
                assert_eq!(requester, stranger);
                assert_eq!(responder, calculator.agent(), "answered as the target");
                break 'answered failure;
            }
        }
    };
    assert_eq!(failure.code, 45, "{failure:?}");
    // Not a protocol error: the connection stays up.
    assert!(closed_within(&mut s, Duration::from_millis(200))
        .await
        .is_none());
}
