//! The `session` fuzz target's driver, shared by `fuzz_targets/session.rs` and the replay test
//! `tests/fuzz_replay.rs` (both include this file with `#[path]`).
//!
//! One hub per process, started on first use and kept for every execution: a background
//! thread runs an actix System with a netsvc [`Node`] and [`Exchange`] listening on
//! 127.0.0.1:0, serving `calculator` (`multiply`, `echo`), `news` (one cached report) and
//! `listener` (subscribed to whatever a service named `feed` publishes); a second node in the
//! same System stays connected to it as a healthy client.
//!
//! Each execution ([`run`]): a raw TCP connection sends a valid `Hello`, then the frames the
//! input describes, then EOF; the hub must close the connection within [`DEADLINE`] (it
//! would otherwise hang on it). Then the hub must still answer `calculator.multiply(6, 7)`
//! with 42: over a fresh raw connection every [`CHECK_EVERY`] executions (default every one),
//! and through the healthy client node every [`NODE_CHECK_EVERY`] (default 64). A panic here
//! is a finding; so is an abort, a hang or memory growth inside the hub, which libFuzzer sees
//! as this process's own.
//!
//! The input's first byte picks its form:
//! * `0` (mod 8): the rest is sent as it is after the `Hello` (whole frames with their length
//!   prefixes, or anything else). An identity written as `0x10` and 16 equal bytes `k` (the
//!   golden frames' `agent(k)`) is replaced by a live one: 1 `calculator`, 2, 3, 6, 7 agents
//!   of this connection, 4 `news`, 5 `listener`, 9 this connection's process. The corpus
//!   seeds are the golden frames in this form.
//! * `4` (mod 8): the same, but without a `Hello` first (what a peer can do before the
//!   handshake).
//! * anything else: the rest is read as a list of operations, each building one frame (every
//!   `Frame` variant, names from small dictionaries or the input, live identities), a raw
//!   body with a correct length prefix, raw bytes, byte edits of the previous frame (header
//!   included), or repeats of it.
#![allow(dead_code, unreachable_pub)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use netsvc::prelude::*;
use netsvc::wire::{
    Frame, FrameCodec, Hello, ReportFrame, ReportTarget, RequestFrame, ServiceInfo, WireFailure,
    WirePayload, DEFAULT_MAX_FRAME, PROTOCOL_VERSION,
};
use netsvc::{AgentId, ConnectionState, Exchange, Format, Payload, ProcessId};
use tokio_util::codec::{Decoder, Encoder};

/// How long the hub has to close a connection after EOF, or to answer a check.
pub const DEADLINE: Duration = Duration::from_secs(10);
/// Most bytes one execution sends (repeats can multiply a frame).
const MAX_SENT: usize = 1 << 20;
/// Most operations read from one input.
const MAX_OPS: usize = 256;

#[derive(Service)]
#[service(name = "calculator")]
pub struct Calculator;
impl Service for Calculator {}

#[netsvc::methods]
impl Calculator {
    /// Wrapping: an overflow is no defect of netsvc's, and a panic (even one netsvc catches,
    /// as it does in a method) would abort the fuzzer.
    fn multiply(&mut self, a: i64, b: i64) -> i64 {
        a.wrapping_mul(b)
    }
    fn echo(&mut self, text: String, data: Vec<u8>) -> (String, Vec<u8>) {
        (text, data)
    }
}

#[derive(Service)]
#[service(name = "news")]
pub struct News;
impl Service for News {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.publish_report("news.today", "quiet".to_owned(), Lifetime::Forever);
    }
}

#[derive(Service)]
#[service(name = "listener")]
pub struct Listener;
impl Service for Listener {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.monitor_reports("feed", "*");
    }
    fn report(&mut self, report: Report, _: &mut ServiceContext<Self>) {
        // Payload decoding of received content, into a few types.
        let _ = report.decode::<String>();
        let _ = report.decode::<(i64, i64)>();
        let _ = report.decode::<Vec<String>>();
    }
}

/// The hub every execution talks to.
pub struct Hub {
    pub addr: SocketAddr,
    pub process: ProcessId,
    pub calculator: AgentId,
    pub news: AgentId,
    pub listener: AgentId,
    /// The hub's state between sessions: its own services, the healthy client's link.
    pub baseline: HubState,
    /// Asks the hub thread for a check or its state.
    commands: tokio::sync::mpsc::UnboundedSender<Command>,
}

enum Command {
    /// `multiply(6, 7)` from the healthy client node.
    Multiply(mpsc::Sender<Result<i64, String>>),
    /// The hub's state.
    State(mpsc::Sender<HubState>),
}

/// What the hub holds: after a session's connection is closed, it must be what it was before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubState {
    /// Links of the hub's exchange (the healthy client's, and any not yet closed).
    pub connections: usize,
    /// Services the hub node knows (its own and those announced to it).
    pub services: usize,
}

/// The hub, started on first use.
pub fn hub() -> &'static Hub {
    static HUB: OnceLock<Hub> = OnceLock::new();
    HUB.get_or_init(start_hub)
}

fn start_hub() -> Hub {
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("fuzz-hub".into())
        .spawn(move || {
            actix::System::new().block_on(async move {
                let node = Node::new("fuzz hub");
                let exchange = Exchange::new(&node);
                let addr = exchange
                    .listen("127.0.0.1:0")
                    .await
                    .expect("the hub listens");
                node.spawn(Calculator);
                node.spawn(News);
                node.spawn(Listener);
                let agent = |name: &'static str| {
                    let node = node.clone();
                    async move {
                        loop {
                            if let Some(b) = node.lookup_name(name).await.pop() {
                                return b.agent();
                            }
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                };
                let (calculator, news, listener) = (
                    agent("calculator").await,
                    agent("news").await,
                    agent("listener").await,
                );

                // The healthy client: another node, connected for good (it reconnects if lost).
                let client = Node::new("healthy client");
                let client_exchange = Exchange::new(&client);
                let mut events = client_exchange.connections();
                client_exchange
                    .connect(&addr.to_string(), Some(Duration::from_millis(50)))
                    .forget();
                loop {
                    let event = tokio::time::timeout(DEADLINE, events.recv()).await;
                    match event
                        .expect("the healthy client connects")
                        .expect("connection events")
                    {
                        e if e.state == ConnectionState::Active => break,
                        _ => {}
                    }
                }

                let baseline = HubState {
                    connections: exchange.stats().connections,
                    services: node.services().await.len(),
                };
                let (commands, mut requests) = tokio::sync::mpsc::unbounded_channel();
                ready_tx
                    .send(Hub {
                        addr,
                        process: node.process(),
                        calculator,
                        news,
                        listener,
                        baseline,
                        commands,
                    })
                    .expect("the fuzzer waits for the hub");
                while let Some(command) = requests.recv().await {
                    match command {
                        Command::Multiply(reply) => {
                            let client = client.clone();
                            actix::spawn(async move {
                                let _ = reply.send(client_multiply(&client, calculator).await);
                            });
                        }
                        Command::State(reply) => {
                            let connections = exchange.stats().connections;
                            let services = node.services().await.len();
                            let _ = reply.send(HubState {
                                connections,
                                services,
                            });
                        }
                    }
                }
                drop((node, exchange, client_exchange));
            });
        })
        .expect("the hub thread starts");
    ready_rx.recv_timeout(2 * DEADLINE).expect("the hub starts")
}

/// `multiply(6, 7)` from the healthy client node, once it knows the calculator again.
async fn client_multiply(client: &Node, calculator: AgentId) -> Result<i64, String> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let binding = loop {
        if let Some(b) = client.lookup_agent(calculator).await {
            break b;
        }
        if tokio::time::Instant::now() > deadline {
            return Err("the healthy client no longer knows the calculator".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let call = CalculatorClient::new(client.endpoint(&binding)).multiply(6, 7);
    match tokio::time::timeout_at(deadline, call).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(failure)) => Err(format!("the call failed: {failure:?}")),
        Err(_) => Err("no answer in time".into()),
    }
}

static EXECUTIONS: AtomicU64 = AtomicU64::new(0);

fn every(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// Raw connection checks every this many executions (`NETSVC_FUZZ_CHECK_EVERY`).
pub fn check_every() -> u64 {
    static N: OnceLock<u64> = OnceLock::new();
    *N.get_or_init(|| every("NETSVC_FUZZ_CHECK_EVERY", 1))
}

/// Healthy-node checks every this many executions (`NETSVC_FUZZ_NODE_CHECK_EVERY`).
pub fn node_check_every() -> u64 {
    static N: OnceLock<u64> = OnceLock::new();
    *N.get_or_init(|| every("NETSVC_FUZZ_NODE_CHECK_EVERY", 64))
}

/// One execution: the session the input describes, then the checks that are due.
pub fn run(input: &[u8]) {
    let hub = hub();
    let n = EXECUTIONS.fetch_add(1, Ordering::Relaxed);
    session(hub, input);
    if n.is_multiple_of(check_every()) {
        check_raw(hub);
    }
    if n.is_multiple_of(node_check_every()) {
        check_node(hub);
    }
}

/// Identities one session uses.
struct Ids {
    /// calculator, news, listener, then four agents of this connection.
    agents: [AgentId; 7],
    /// This connection's process.
    process: ProcessId,
    hub: ProcessId,
}

impl Ids {
    fn new(hub: &Hub) -> Ids {
        let r = AgentId::random;
        Ids {
            agents: [hub.calculator, hub.news, hub.listener, r(), r(), r(), r()],
            process: ProcessId::random(),
            hub: hub.process,
        }
    }

    /// The live identity standing for the golden frames' `agent(k)`.
    fn placeholder(&self, k: u8) -> Option<[u8; 16]> {
        let a = &self.agents;
        let id = match k {
            1 => a[0].as_uuid(),
            2 => a[3].as_uuid(),
            3 => a[4].as_uuid(),
            4 => a[1].as_uuid(),
            5 => a[2].as_uuid(),
            6 => a[5].as_uuid(),
            7 => a[6].as_uuid(),
            9 => self.process.as_uuid(),
            _ => return None,
        };
        Some(*id.as_bytes())
    }
}

/// A connection speaking the session the input describes; returns once the hub has closed it.
fn session(hub: &Hub, input: &[u8]) {
    let ids = Ids::new(hub);
    let bytes = build(&ids, input);
    let mut stream = connect(hub);
    let mut out = BytesMut::new();
    if input.first().is_none_or(|mode| mode % 8 != 4) {
        encode(&hello(ids.process), &mut out);
    }
    out.extend_from_slice(&bytes);
    // The hub may close early (a protocol error): a failed write is no finding, a stuck one is.
    if let Err(e) = stream.write_all(&out) {
        assert!(
            !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "the hub stopped reading: {e}"
        );
    }
    let _ = stream.shutdown(Shutdown::Write);
    // Everything the hub sends, until it closes the connection.
    let deadline = Instant::now() + DEADLINE;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => return,
        }
        assert!(
            Instant::now() < deadline,
            "the hub kept the connection open {DEADLINE:?} after EOF"
        );
    }
}

fn connect(hub: &Hub) -> TcpStream {
    let stream = TcpStream::connect(hub.addr).expect("the hub accepts connections");
    stream.set_nodelay(true).expect("nodelay");
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(DEADLINE))
        .expect("write timeout");
    stream
}

fn hello(process: ProcessId) -> Frame {
    Frame::Hello(Hello {
        version: PROTOCOL_VERSION,
        process,
        node: "fuzz".into(),
        group: String::new(),
        hub: false,
    })
}

fn encode(frame: &Frame, out: &mut BytesMut) {
    FrameCodec::new(usize::MAX)
        .encode(frame, out)
        .expect("a frame encodes");
}

/// `multiply(6, 7)` over a fresh raw connection: announce an anonymous requester, call the
/// calculator, expect 42.
pub fn check_raw(hub: &Hub) {
    let mut stream = connect(hub);
    let me = AgentId::random();
    let process = ProcessId::random();
    let conversation = u64::from(me.as_uuid().as_bytes()[0]) << 32 | 7;
    let args = Payload::new((6i64, 7i64))
        .to_bytes(Format::Bincode)
        .expect("encodes");
    let mut out = BytesMut::new();
    encode(&hello(process), &mut out);
    let info = ServiceInfo {
        agent: me,
        name: String::new(),
        audience: "*".into(),
        process,
        groups: vec![],
    };
    encode(&Frame::ServiceAvailable(info), &mut out);
    let request = RequestFrame {
        conversation,
        requester: me,
        target: hub.calculator,
        method: "multiply".into(),
        args: WirePayload {
            format: Format::Bincode,
            type_name: "(i64, i64)".into(),
            bytes: args,
        },
        reply_format: Format::Bincode,
    };
    encode(&Frame::Request(request), &mut out);
    stream
        .write_all(&out)
        .expect("the hub reads a healthy client");
    let deadline = Instant::now() + DEADLINE;
    let mut codec = FrameCodec::new(DEFAULT_MAX_FRAME);
    let mut buf = BytesMut::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        while let Some(frame) = codec.decode(&mut buf).expect("the hub sends valid frames") {
            match frame {
                Frame::Response {
                    conversation: c,
                    requester,
                    content,
                    responder,
                } if c == conversation && requester == me => {
                    assert_eq!(
                        responder, hub.calculator,
                        "the hub answered multiply(6, 7) in another agent's name"
                    );
                    let answer = Payload::encoded(content.format, content.bytes, content.type_name)
                        .decode::<i64>();
                    assert_eq!(answer, Ok(42), "the hub answered multiply(6, 7) wrongly");
                    return;
                }
                Frame::Failure {
                    conversation: c,
                    failure,
                    ..
                } if c == conversation => {
                    panic!("the hub failed multiply(6, 7) for a healthy client: {failure:?}")
                }
                Frame::Refused { reason } | Frame::Goodbye { reason } => {
                    panic!("the hub closed a healthy client's connection: {reason}")
                }
                _ => {}
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => panic!("the hub closed a healthy client's connection before answering"),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => panic!("a healthy client's connection failed: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "the hub did not answer multiply(6, 7) within {DEADLINE:?}"
        );
    }
}

/// `multiply(6, 7)` through the healthy client node (a link that has lived through every
/// execution so far); then the hub must be back to its [`Hub::baseline`] once the
/// connections already closed on this side are closed on its side too: nothing that a closed
/// connection brought is kept.
pub fn check_node(hub: &Hub) {
    let (tx, rx) = mpsc::channel();
    hub.commands
        .send(Command::Multiply(tx))
        .expect("the hub thread runs");
    match rx.recv_timeout(2 * DEADLINE) {
        Ok(answer) => assert_eq!(answer, Ok(42), "the healthy client node's call"),
        Err(_) => panic!(
            "the healthy client node got no answer within {:?}",
            2 * DEADLINE
        ),
    }
    let deadline = Instant::now() + DEADLINE;
    loop {
        let state = hub_state(hub);
        if state == hub.baseline {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the hub keeps {state:?} after its sessions closed, not {:?}",
            hub.baseline
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The hub's state now.
pub fn hub_state(hub: &Hub) -> HubState {
    let (tx, rx) = mpsc::channel();
    hub.commands
        .send(Command::State(tx))
        .expect("the hub thread runs");
    rx.recv_timeout(DEADLINE).expect("the hub thread answers")
}

/// The bytes sent after the `Hello`.
fn build(ids: &Ids, input: &[u8]) -> Vec<u8> {
    let Some((&mode, rest)) = input.split_first() else {
        return Vec::new();
    };
    if mode % 4 == 0 {
        // 0 and 4 (mod 8): with and without a `Hello` first.
        substitute(ids, rest)
    } else {
        Ops {
            input: Input(rest),
            ids,
            out: BytesMut::new(),
            last: 0..0,
        }
        .all()
    }
}

/// The raw form: identities `0x10, k × 16` replaced by live ones.
fn substitute(ids: &Ids, raw: &[u8]) -> Vec<u8> {
    let mut out = raw.to_vec();
    let mut at = 0;
    while at + 17 <= out.len() {
        let k = out[at + 1];
        if out[at] == 0x10 && out[at + 1..at + 17].iter().all(|&b| b == k) {
            if let Some(id) = ids.placeholder(k) {
                out[at + 1..at + 17].copy_from_slice(&id);
                at += 17;
                continue;
            }
        }
        at += 1;
    }
    out
}

/// The input, read a piece at a time; zeros once it is used up.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (now, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        now
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    /// Small numbers mostly, any u64 sometimes.
    fn u64(&mut self) -> u64 {
        match self.u8() {
            n @ 0..=239 => u64::from(n),
            240..=247 => u64::from(self.u16()),
            248..=251 => u64::from(self.u32()),
            _ => u64::from_le_bytes(std::array::from_fn(|_| self.u8())),
        }
    }
    fn i64(&mut self) -> i64 {
        self.u64() as i64 ^ if self.u8() & 1 == 1 { -1 } else { 0 }
    }
    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }
    /// A length: mostly short, sometimes long (a frame larger than the input).
    fn len(&mut self) -> usize {
        match self.u8() {
            n @ 0..=223 => usize::from(n % 64),
            224..=247 => usize::from(self.u16() % 4096),
            _ => usize::from(self.u16()) * 8,
        }
    }
    fn bytes(&mut self) -> Vec<u8> {
        let n = self.len();
        let taken = self.take(n).to_vec();
        // A long length with little input left: pad by repeating.
        if taken.len() < n && n > 64 {
            let fill = taken.first().copied().unwrap_or(b'x');
            let mut v = taken;
            v.resize(n, fill);
            return v;
        }
        taken
    }
    /// A string from `words`, or from the input (possibly long).
    fn text(&mut self, words: &[&str]) -> String {
        let pick = usize::from(self.u8());
        match words.get(pick % (words.len() + 2)) {
            Some(w) => (*w).to_owned(),
            None if pick % 2 == 0 => String::from_utf8_lossy(&self.bytes()).into_owned(),
            None => "n".repeat(self.len() * 8),
        }
    }
}

const SERVICE_NAMES: &[&str] = &[
    "calculator",
    "news",
    "listener",
    "feed",
    "",
    "bad name",
    "x.y",
    "feed",
];
const AUDIENCES: &[&str] = &["*", "", "other", "*"];
const GROUPS: &[&str] = &["g", "workers", "", "bad group", "g.h"];
const SUBJECTS: &[&str] = &[
    "news.today",
    "a.b",
    "feed.x",
    "",
    "bad subject",
    "a..b",
    "x",
];
const PATTERNS: &[&str] = &[
    "*",
    "news.*",
    "news.today",
    "a.*",
    "",
    "bad pattern",
    "**",
    "*.x",
];
const METHODS: &[&str] = &["multiply", "echo", "", "divide", "multiply "];
const TYPE_NAMES: &[&str] = &["(i64, i64)", "alloc::string::String", "i64", ""];
const REASONS: &[&str] = &["bye", ""];

/// The operations form.
struct Ops<'a, 'i> {
    input: Input<'a>,
    ids: &'i Ids,
    out: BytesMut,
    /// Where the last frame is in `out`.
    last: std::ops::Range<usize>,
}

impl Ops<'_, '_> {
    fn all(mut self) -> Vec<u8> {
        let mut ops = 0;
        while !self.input.is_empty() && ops < MAX_OPS && self.out.len() < MAX_SENT {
            self.op();
            ops += 1;
        }
        self.out.truncate(MAX_SENT);
        self.out.to_vec()
    }

    fn agent(&mut self) -> AgentId {
        let pick = usize::from(self.input.u8());
        match self.ids.agents.get(pick % 8) {
            Some(&agent) => agent,
            None => AgentId::from_uuid(uuid_from(self.input.take(16))),
        }
    }

    fn process(&mut self) -> ProcessId {
        match self.input.u8() % 3 {
            0 => self.ids.process,
            1 => self.ids.hub,
            _ => ProcessId::from_uuid(uuid_from(self.input.take(16))),
        }
    }

    fn format(&mut self) -> Format {
        if self.input.bool() {
            Format::Json
        } else {
            Format::Bincode
        }
    }

    fn payload(&mut self) -> WirePayload {
        let format = self.format();
        let type_name = self.input.text(TYPE_NAMES);
        let bytes = match self.input.u8() % 4 {
            0 => Payload::new((self.input.i64(), self.input.i64())).to_bytes(format),
            1 => Payload::new(self.input.text(SUBJECTS)).to_bytes(format),
            2 => Payload::new((self.input.text(SUBJECTS), self.input.bytes())).to_bytes(format),
            _ => Ok(self.input.bytes().into()),
        };
        WirePayload {
            format,
            type_name,
            bytes: bytes.unwrap_or_default(),
        }
    }

    fn report(&mut self) -> ReportFrame {
        let publisher = self.agent();
        let subject = self.input.text(SUBJECTS);
        let content = self.payload();
        let targets = (0..self.input.u8() % 4)
            .map(|_| ReportTarget {
                subscriber: self.agent(),
                pattern: self.input.bool().then(|| self.input.text(PATTERNS)),
            })
            .collect();
        ReportFrame {
            publisher,
            subject,
            content,
            targets,
        }
    }

    fn frame(&mut self, frame: &Frame) {
        let start = self.out.len();
        encode(frame, &mut self.out);
        self.last = start..self.out.len();
    }

    fn op(&mut self) {
        let op = self.input.u8() % 20;
        let frame = match op {
            0 => Frame::ServiceAvailable(ServiceInfo {
                agent: self.agent(),
                name: self.input.text(SERVICE_NAMES),
                audience: self.input.text(AUDIENCES),
                process: self.process(),
                groups: (0..self.input.u8() % 4)
                    .map(|_| self.input.text(GROUPS))
                    .collect(),
            }),
            1 => Frame::ServiceWithdrawn {
                agent: self.agent(),
            },
            2 => Frame::GroupJoined {
                agent: self.agent(),
                group: self.input.text(GROUPS),
            },
            3 => Frame::GroupLeft {
                agent: self.agent(),
                group: self.input.text(GROUPS),
            },
            4 => {
                let (publisher, subscriber) = (self.agent(), self.agent());
                let pattern = self.input.text(PATTERNS);
                match self.input.u8() % 3 {
                    0 => Frame::SubscriptionRequested {
                        publisher,
                        subscriber,
                        pattern,
                    },
                    _ => Frame::SubscriptionRequestedAs {
                        publisher,
                        subscriber,
                        pattern,
                        format: self.format(),
                    },
                }
            }
            5 => Frame::SubscriptionWithdrawn {
                publisher: self.agent(),
                subscriber: self.agent(),
                pattern: self.input.text(PATTERNS),
            },
            6 => Frame::Report(self.report()),
            7 => Frame::TargetedReport(self.report()),
            8 => Frame::PublisherNotice {
                publisher: self.agent(),
                subscriber: self.agent(),
                available: self.input.bool(),
            },
            9 => Frame::Request(RequestFrame {
                conversation: self.input.u64(),
                requester: self.agent(),
                target: self.agent(),
                method: self.input.text(METHODS),
                args: self.payload(),
                reply_format: self.format(),
            }),
            10 => Frame::Response {
                conversation: self.input.u64(),
                requester: self.agent(),
                content: self.payload(),
                responder: self.agent(),
            },
            11 => Frame::Failure {
                conversation: self.input.u64(),
                requester: self.agent(),
                failure: WireFailure {
                    code: self.input.u32(),
                    description: self.input.text(REASONS),
                    origin: self.input.text(REASONS),
                    details: self.input.text(REASONS),
                },
                responder: self.agent(),
            },
            12 => Frame::Heartbeat,
            13 => Frame::Goodbye {
                reason: self.input.text(REASONS),
            },
            14 => Frame::Refused {
                reason: self.input.text(REASONS),
            },
            15 => Frame::Hello(Hello {
                version: self.input.u32() % (PROTOCOL_VERSION + 1),
                process: self.process(),
                node: self.input.text(SERVICE_NAMES),
                group: self.input.text(GROUPS),
                hub: self.input.bool(),
            }),
            // A body of arbitrary bytes with a correct length prefix.
            16 => {
                let body = self.input.bytes();
                let start = self.out.len();
                self.out
                    .extend_from_slice(&(body.len() as u32).to_be_bytes());
                self.out.extend_from_slice(&body);
                self.last = start..self.out.len();
                return;
            }
            // Bytes as they are (a torn or lying header, garbage).
            17 => {
                let raw = self.input.bytes();
                self.out.extend_from_slice(&raw);
                return;
            }
            // Edits of the last frame, its header included.
            18 => {
                let frame = self.last.clone();
                for _ in 0..1 + self.input.u8() % 8 {
                    let (at, value) = (usize::from(self.input.u16()), self.input.u8());
                    if !frame.is_empty() {
                        self.out[frame.start + at % frame.len()] = value;
                    }
                }
                return;
            }
            // The last frame again, a few or many times.
            _ => {
                let frame = self.last.clone();
                let times = match self.input.u8() {
                    n @ 0..=239 => usize::from(n % 8),
                    _ => usize::from(self.input.u16()),
                };
                let copy = self.out[frame].to_vec();
                for _ in 0..times {
                    if self.out.len() + copy.len() > MAX_SENT {
                        break;
                    }
                    self.out.extend_from_slice(&copy);
                }
                return;
            }
        };
        self.frame(&frame);
    }
}

fn uuid_from(bytes: &[u8]) -> uuid::Uuid {
    let mut id = [0u8; 16];
    id[..bytes.len()].copy_from_slice(bytes);
    uuid::Uuid::from_bytes(id)
}
