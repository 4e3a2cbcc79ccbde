//! A peer speaks only for itself: frames in the name of agents it did not announce over its
//! link are refused (and a flood of them closes the link), an answer completes a call only
//! from its target and over a link the target is behind (a hub relays an answer only from
//! there), and a peer claiming a live process's identity cannot lock that process out. Each
//! attack comes from a raw peer over a real socket, with healthy services running beside it.

mod common;

use std::time::Duration;

use common::raw::{closed_within, RawPeer};
use common::{probe, settle, wait_for, WAIT};
use netsvc::prelude::*;
use netsvc::wire::{Frame, ReportFrame, ReportTarget, RequestFrame, WirePayload};
use netsvc::{ConnectionState, Exchange, ExchangeConfig, Format, ProcessId};
use tokio::sync::mpsc::UnboundedSender;

#[derive(Service)]
#[service(name = "calculator")]
struct Calculator;
impl Service for Calculator {}

#[netsvc::methods]
impl Calculator {
    fn multiply(&mut self, a: i64, b: i64) -> i64 {
        a * b
    }
    fn slow(&mut self, ctx: &mut ServiceContext<Self>, millis: u64) -> Delayed<u64> {
        let (responder, delayed) = ctx.suspend_response();
        ctx.run_later(Duration::from_millis(millis), move |_, _| {
            responder.resolve(millis)
        });
        delayed
    }
}

/// Publishes "real" on `tick` every 10 ms.
#[derive(Service)]
#[service(name = "publisher")]
struct Publisher;
impl Service for Publisher {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.start_timer("tick", Duration::from_millis(10));
    }
    fn timer(&mut self, _: &str, ctx: &mut ServiceContext<Self>) {
        ctx.publish_report("tick", "real".to_string(), Lifetime::None);
        ctx.start_timer("tick", Duration::from_millis(10));
    }
}

/// Subscribes to the publisher (unless told not to) and logs every report's content.
#[derive(Service)]
struct Victim {
    log: UnboundedSender<String>,
    subscribe: bool,
}
impl Service for Victim {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        if self.subscribe {
            ctx.monitor_reports("publisher", "*");
        }
    }
    fn report(&mut self, r: Report, _: &mut ServiceContext<Self>) {
        let text = r.decode::<String>().unwrap_or_else(|e| e.to_string());
        let _ = self.log.send(text);
    }
}

fn config() -> ExchangeConfig {
    ExchangeConfig {
        heartbeat: Duration::from_millis(100),
        dead_after: Duration::from_millis(800),
        ..ExchangeConfig::default()
    }
}

fn named(name: &str) -> netsvc::ServiceOptions {
    netsvc::ServiceOptions::named(netsvc::ServiceName::new(name).unwrap())
}

/// A string as a JSON payload.
fn json(text: &str) -> WirePayload {
    WirePayload {
        format: Format::Json,
        type_name: "alloc::string::String".into(),
        bytes: serde_json::to_vec(text).unwrap().into(),
    }
}

/// Whether `log` got a line equal to `line` within `limit`, skipping others.
async fn got(log: &mut common::Probe, line: &str, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while let Ok(Some(next)) = tokio::time::timeout_at(deadline, log.0.recv()).await {
        if next == line {
            return true;
        }
    }
    false
}

/// A hub with a local publisher streaming to a local victim (already receiving), and a raw
/// attacker connected to the hub and announced.
async fn hub_with_publisher_and_victim() -> (Node, Exchange, common::Probe, netsvc::AgentId, RawPeer)
{
    let (tx, mut log) = probe();
    let hub = Node::new("hub");
    let x = Exchange::with_config(&hub, config()).unwrap();
    let addr = x.listen("127.0.0.1:0").await.unwrap().to_string();
    hub.spawn(Publisher);
    let victim = hub.spawn_with(
        Victim {
            log: tx,
            subscribe: true,
        },
        named("victim"),
    );
    assert!(got(&mut log, "real", WAIT).await);
    let mut attacker = RawPeer::connect(&addr, ProcessId::random()).await;
    attacker.announce_self().await;
    (hub, x, log, victim.binding.agent(), attacker)
}

#[actix::test]
async fn reports_forged_in_a_real_publishers_name_reach_no_subscriber() {
    let (_hub, _x, mut log, victim, mut attacker) = hub_with_publisher_and_victim().await;
    let publisher = attacker.agent_named("publisher").await;
    let forged = forged_tick(publisher, victim);
    only_real_reports_arrive(&mut attacker, &forged, &mut log).await;
    // A flood of them closes the attacker's link, and only that one.
    for _ in 0..100 {
        attacker.send(&forged).await;
    }
    assert!(closed_within(&mut attacker.stream, WAIT).await.is_some());
    assert!(got(&mut log, "real", WAIT).await);
}

#[actix::test]
async fn forged_subscription_frames_neither_stop_nor_start_a_stream() {
    let (tx, mut log) = probe();
    let (idle_tx, mut idle_log) = probe();
    let hub = Node::new("hub");
    let x = Exchange::with_config(&hub, config()).unwrap();
    let addr = x.listen("127.0.0.1:0").await.unwrap().to_string();
    hub.spawn(Publisher);
    let victim = hub.spawn_with(
        Victim {
            log: tx,
            subscribe: true,
        },
        named("victim"),
    );
    // A service that never subscribed: a forged request must not point a stream at it.
    let bystander = hub.spawn_with(
        Victim {
            log: idle_tx,
            subscribe: false,
        },
        named("bystander"),
    );
    assert!(got(&mut log, "real", WAIT).await);

    let mut attacker = RawPeer::connect(&addr, ProcessId::random()).await;
    attacker.announce_self().await;
    let publisher = attacker.agent_named("publisher").await;
    attacker
        .send(&Frame::SubscriptionWithdrawn {
            publisher,
            subscriber: victim.binding.agent(),
            pattern: "*".into(),
        })
        .await;
    attacker
        .send(&Frame::SubscriptionRequested {
            publisher,
            subscriber: bystander.binding.agent(),
            pattern: "*".into(),
        })
        .await;
    attacker
        .send(&Frame::SubscriptionRequestedAs {
            publisher,
            subscriber: bystander.binding.agent(),
            pattern: "t*".into(),
            format: Format::Json,
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The victim's stream goes on; the bystander gets nothing.
    while log.0.try_recv().is_ok() {}
    assert!(got(&mut log, "real", Duration::from_millis(500)).await);
    idle_log.silent_for(Duration::from_millis(300)).await;
}

#[actix::test]
async fn an_answer_from_another_link_completes_no_call() {
    // The requester's node is an exchange server: the calculator's node is one client of it,
    // the attacker another.
    let requester = Node::new("requester");
    let x = Exchange::with_config(&requester, config()).unwrap();
    let addr = x.listen("127.0.0.1:0").await.unwrap().to_string();
    let server = Node::new("server");
    let server_x = Exchange::with_config(&server, config()).unwrap();
    let mut events = server_x.connections();
    server_x.connect(&addr, None).forget();
    let event = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.state, ConnectionState::Active);
    server.spawn(Calculator);
    let calc = wait_for(&requester, "calculator").await;
    let mut attacker = RawPeer::connect(&addr, ProcessId::random()).await;
    attacker.announce_self().await;
    settle().await;

    let call = CalculatorClient::new(requester.endpoint(&calc).with_timeout(WAIT)).slow(400);
    let conversation = call.conversation().get();
    let call = tokio::spawn(call);
    // The attacker is told the conversation (the worst case: it could not guess it) and the
    // requester's agent, and answers first.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let process = requester.process();
    let requester_agent = match attacker
        .until(|f| matches!(f, Frame::ServiceAvailable(i) if i.name.is_empty() && i.process == process))
        .await
    {
        Frame::ServiceAvailable(info) => info.agent,
        _ => unreachable!(),
    };
    let forged = bincode::serde::encode_to_vec(666u64, bincode::config::standard()).unwrap();
    attacker
        .send(&Frame::Response {
            conversation,
            requester: requester_agent,
            content: WirePayload {
                format: Format::Bincode,
                type_name: "u64".into(),
                bytes: forged.into(),
            },
            responder: calc.agent(),
        })
        .await;
    assert_eq!(
        call.await.unwrap(),
        Ok(400),
        "only the real answer completes the call"
    );
}

/// A hub with a calculator node and a requester node as clients, and a raw attacker
/// connected to it that announced an anonymous agent of its own.
struct HubOfThree {
    requester: Node,
    calc: netsvc::Binding,
    attacker: RawPeer,
    /// The attacker's own agent.
    forger: netsvc::AgentId,
    hub_addr: String,
    _keep: (Node, Exchange, Node, Exchange, Exchange),
}

async fn client_of(name: &str, addr: &str) -> (Node, Exchange) {
    let node = Node::new(name);
    let x = Exchange::with_config(&node, config()).unwrap();
    let mut events = x.connections();
    x.connect(addr, None).forget();
    let event = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.state, ConnectionState::Active);
    (node, x)
}

async fn hub_of_three() -> HubOfThree {
    let _ = probe();
    let hub = Node::new("hub");
    let hub_x = Exchange::with_config(&hub, config()).unwrap();
    let hub_addr = hub_x.listen("127.0.0.1:0").await.unwrap().to_string();
    let (server, server_x) = client_of("server", &hub_addr).await;
    server.spawn(Calculator);
    let (requester, requester_x) = client_of("requester", &hub_addr).await;
    let calc = wait_for(&requester, "calculator").await;
    let mut attacker = RawPeer::connect(&hub_addr, ProcessId::random()).await;
    let forger = attacker.announce_self().await;
    settle().await;
    HubOfThree {
        requester,
        calc,
        attacker,
        forger,
        hub_addr,
        _keep: (hub, hub_x, server, server_x, requester_x),
    }
}

/// The requester's agent as the attacker sees it announced: the anonymous agent of the
/// requester's process (its node agent, the requester of `Node::endpoint`).
async fn requester_agent(attacker: &mut RawPeer, requester: &Node) -> netsvc::AgentId {
    let process = requester.process();
    if let Some(info) = attacker
        .announced
        .iter()
        .find(|i| i.name.is_empty() && i.process == process)
    {
        return info.agent;
    }
    match attacker
        .until(|f| matches!(f, Frame::ServiceAvailable(i) if i.name.is_empty() && i.process == process))
        .await
    {
        Frame::ServiceAvailable(info) => info.agent,
        _ => unreachable!(),
    }
}

/// A response carrying `value` (a u64), as `responder` answering `requester`.
fn forged_response(
    conversation: u64,
    requester: netsvc::AgentId,
    responder: netsvc::AgentId,
    value: u64,
) -> Frame {
    let bytes = bincode::serde::encode_to_vec(value, bincode::config::standard()).unwrap();
    Frame::Response {
        conversation,
        requester,
        content: WirePayload {
            format: Format::Bincode,
            type_name: "u64".into(),
            bytes: bytes.into(),
        },
        responder,
    }
}

#[actix::test]
async fn an_answer_from_another_agent_behind_the_right_link_completes_no_call() {
    // The forger is behind the hub, as the calculator is: its answer in its own name passes
    // the hub (it speaks for itself) and arrives over the link the call went out on, but the
    // call waits for the calculator.
    let HubOfThree {
        requester,
        calc,
        mut attacker,
        forger,
        ..
    } = hub_of_three().await;
    let call = CalculatorClient::new(requester.endpoint(&calc).with_timeout(WAIT)).slow(400);
    let conversation = call.conversation().get();
    let call = tokio::spawn(call);
    // The attacker is told the conversation (the worst case: it could not guess it).
    let requester_agent = requester_agent(&mut attacker, &requester).await;
    attacker
        .send(&forged_response(conversation, requester_agent, forger, 666))
        .await;
    attacker
        .send(&Frame::Failure {
            conversation,
            requester: requester_agent,
            failure: netsvc::wire::WireFailure {
                code: 46,
                description: "forged".into(),
                origin: "forger".into(),
                details: String::new(),
            },
            responder: forger,
        })
        .await;
    assert_eq!(
        call.await.unwrap(),
        Ok(400),
        "only the calculator's answer completes the call"
    );
    // Healthy traffic goes on, over the same links.
    let client = CalculatorClient::new(requester.endpoint(&calc).with_timeout(WAIT));
    assert_eq!(client.multiply(6, 7).await, Ok(42));
}

#[actix::test]
async fn an_answer_in_the_targets_name_from_the_wrong_link_is_refused_by_the_hub() {
    // The forger names the calculator as the responder: at the requester's node the answer
    // would look right (the target, over the link it is behind), so it is the hub that must
    // refuse it, as it comes from a link the calculator is not behind.
    let HubOfThree {
        requester,
        calc,
        mut attacker,
        ..
    } = hub_of_three().await;
    let call = CalculatorClient::new(requester.endpoint(&calc).with_timeout(WAIT)).slow(400);
    let conversation = call.conversation().get();
    let call = tokio::spawn(call);
    let requester_agent = requester_agent(&mut attacker, &requester).await;
    let forged_failure = Frame::Failure {
        conversation,
        requester: requester_agent,
        failure: netsvc::wire::WireFailure {
            code: 46,
            description: "forged".into(),
            origin: "forger".into(),
            details: String::new(),
        },
        responder: calc.agent(),
    };
    attacker.send(&forged_failure).await;
    attacker
        .send(&forged_response(
            conversation,
            requester_agent,
            calc.agent(),
            666,
        ))
        .await;
    assert_eq!(
        call.await.unwrap(),
        Ok(400),
        "only the calculator's answer completes the call"
    );
    // A flood of them closes the forger's link at the hub, and only that one.
    let next = CalculatorClient::new(requester.endpoint(&calc).with_timeout(WAIT)).slow(300);
    let conversation = next.conversation().get();
    let next = tokio::spawn(next);
    for _ in 0..100 {
        attacker
            .send(&forged_response(
                conversation,
                requester_agent,
                calc.agent(),
                666,
            ))
            .await;
    }
    assert!(closed_within(&mut attacker.stream, WAIT).await.is_some());
    assert_eq!(next.await.unwrap(), Ok(300));
    let client = CalculatorClient::new(requester.endpoint(&calc).with_timeout(WAIT));
    assert_eq!(client.multiply(6, 7).await, Ok(42));
}

#[actix::test]
async fn answers_in_another_agents_name_are_counted_and_a_flood_closes_the_link() {
    // The requester's node is the server; a raw peer serves "echo" by hand and answers a call
    // to it in the name of another agent it announced.
    let requester = Node::new("requester");
    let x = Exchange::with_config(&requester, config()).unwrap();
    let addr = x.listen("127.0.0.1:0").await.unwrap().to_string();
    let (_server, _server_x) = client_of("server", &addr).await;
    _server.spawn(Calculator);
    let calc = wait_for(&requester, "calculator").await;
    let mut peer = RawPeer::connect(&addr, ProcessId::random()).await;
    let other = peer.announce_self().await;
    let echo = netsvc::AgentId::random();
    peer.send(&Frame::ServiceAvailable(netsvc::wire::ServiceInfo {
        agent: echo,
        name: "echo".into(),
        audience: "*".into(),
        process: ProcessId::random(),
        groups: vec![],
    }))
    .await;
    let echo = wait_for(&requester, "echo").await;
    let call = requester
        .endpoint(&echo)
        .with_timeout(WAIT)
        .call::<_, u64>("ping", ());
    let call = tokio::spawn(call);
    let (conversation, requester_agent) = match peer.until(|f| matches!(f, Frame::Request(_))).await
    {
        Frame::Request(r) => (r.conversation, r.requester),
        _ => unreachable!(),
    };
    for _ in 0..100 {
        peer.send(&forged_response(conversation, requester_agent, other, 666))
            .await;
    }
    assert!(
        closed_within(&mut peer.stream, WAIT).await.is_some(),
        "a flood of answers in another agent's name closes the link"
    );
    let outcome = call.await.unwrap();
    assert!(
        outcome.is_err(),
        "no forged answer completed the call: {outcome:?}"
    );
    // The healthy pair is unaffected.
    let client = CalculatorClient::new(requester.endpoint(&calc).with_timeout(WAIT));
    assert_eq!(client.multiply(6, 7).await, Ok(42));
}

#[actix::test]
async fn a_hops_failures_for_a_target_it_just_lost_are_no_forgery() {
    // A hop that lost its route to a target fails the requests still on their way to it, in
    // the target's name, after it withdrew the target: the hub passes them on, the requester's
    // node drops them (its call already failed), and neither counts them against a link.
    let HubOfThree {
        requester,
        calc,
        hub_addr,
        ..
    } = hub_of_three().await;
    let mut hop = RawPeer::connect(&hub_addr, ProcessId::random()).await;
    let lost = netsvc::AgentId::random();
    hop.send(&Frame::ServiceAvailable(netsvc::wire::ServiceInfo {
        agent: lost,
        name: "lost".into(),
        audience: "*".into(),
        process: ProcessId::random(),
        groups: vec![],
    }))
    .await;
    let target = wait_for(&requester, "lost").await;
    let call = requester
        .endpoint(&target)
        .with_timeout(WAIT)
        .call::<_, u64>("ping", ());
    let call = tokio::spawn(call);
    let (conversation, requester_agent) = match hop.until(|f| matches!(f, Frame::Request(_))).await
    {
        Frame::Request(r) => (r.conversation, r.requester),
        _ => unreachable!(),
    };
    hop.send(&Frame::ServiceWithdrawn { agent: lost }).await;
    let failure = Frame::Failure {
        conversation,
        requester: requester_agent,
        failure: netsvc::wire::WireFailure {
            code: 46,
            description: "service lost is not available".into(),
            origin: "netsvc".into(),
            details: String::new(),
        },
        responder: lost,
    };
    for _ in 0..100 {
        hop.send(&failure).await;
    }
    let outcome = call.await.unwrap();
    assert!(outcome.is_err(), "{outcome:?}");
    assert!(
        closed_within(&mut hop.stream, Duration::from_millis(500))
            .await
            .is_none(),
        "the hop's link stays up"
    );
    let client = CalculatorClient::new(requester.endpoint(&calc).with_timeout(WAIT));
    assert_eq!(client.multiply(6, 7).await, Ok(42));
}

#[actix::test]
async fn a_request_in_another_agents_name_is_refused_back_to_its_sender() {
    let hub = Node::new("hub");
    let x = Exchange::with_config(&hub, config()).unwrap();
    let addr = x.listen("127.0.0.1:0").await.unwrap().to_string();
    hub.spawn(Calculator);
    let (tx, _log) = probe();
    let victim = hub.spawn_with(
        Victim {
            log: tx,
            subscribe: false,
        },
        named("victim"),
    );
    let mut attacker = RawPeer::connect(&addr, ProcessId::random()).await;
    attacker.announce_self().await;
    let calculator = attacker.agent_named("calculator").await;
    let args = bincode::serde::encode_to_vec((6i64, 7i64), bincode::config::standard()).unwrap();
    attacker
        .send(&Frame::Request(RequestFrame {
            conversation: 7,
            requester: victim.binding.agent(),
            target: calculator,
            method: "multiply".into(),
            args: WirePayload {
                format: Format::Bincode,
                type_name: "(i64, i64)".into(),
                bytes: args.into(),
            },
            reply_format: Format::Bincode,
        }))
        .await;
    let answer = attacker
        .until(|f| matches!(f, Frame::Failure { .. } | Frame::Response { .. }))
        .await;
    match answer {
        Frame::Failure {
            conversation,
            failure,
            ..
        } => assert_eq!((conversation, failure.code), (7, 45), "{failure:?}"),
        other => panic!("the call in another's name was served: {other:?}"),
    }
}

#[actix::test]
async fn a_peer_claiming_a_live_process_identity_does_not_lock_it_out() {
    let hub = Node::new("hub");
    let x = Exchange::with_config(&hub, config()).unwrap();
    let addr = x.listen("127.0.0.1:0").await.unwrap().to_string();
    let real = Node::new("real");
    // The squatter claims the real process's identity before it connects (as after a hub
    // restart, when whoever reconnects first would win).
    let mut squatter = RawPeer::connect(&addr, real.process()).await;
    squatter.announce_self().await;
    settle().await;
    let real_x = Exchange::with_config(&real, config()).unwrap();
    let mut events = real_x.connections();
    real_x
        .connect(&addr, Some(Duration::from_millis(200)))
        .forget();
    let event = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.state, ConnectionState::Active);
    real.spawn(Calculator);
    let calc = wait_for(&hub, "calculator").await;
    assert_eq!(
        CalculatorClient::new(hub.endpoint(&calc))
            .multiply(6, 7)
            .await,
        Ok(42)
    );
    // And the squatter is still connected: nothing was decided by the claimed identity.
    assert!(
        closed_within(&mut squatter.stream, Duration::from_millis(300))
            .await
            .is_none()
    );
}

#[actix::test]
async fn a_peer_claiming_a_servers_identity_does_not_displace_the_link_to_it() {
    // Server b is connected to server a (a opened the link). A squatter claims b's identity
    // on a, with identities in the order where a link it opened would win a duplicate
    // resolution: a keeps its link to the real b all the same.
    let (a, b) = loop {
        let (a, b) = (Node::new("a"), Node::new("b"));
        if a.process() > b.process() {
            break (a, b);
        }
    };
    let a_x = Exchange::with_config(&a, config()).unwrap();
    let b_x = Exchange::with_config(&b, config()).unwrap();
    let a_addr = a_x.listen("127.0.0.1:0").await.unwrap().to_string();
    let b_addr = b_x.listen("127.0.0.1:0").await.unwrap().to_string();
    let mut events = a_x.connections();
    a_x.connect(&b_addr, Some(Duration::from_millis(200)))
        .forget();
    let event = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.state, ConnectionState::Active);
    b.spawn(Calculator);
    let calc = wait_for(&a, "calculator").await;
    let mut squatter = RawPeer::connect(&a_addr, b.process()).await;
    squatter.announce_self().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a_x.stats().connections, 2, "both links served");
    assert_eq!(
        CalculatorClient::new(a.endpoint(&calc))
            .multiply(6, 7)
            .await,
        Ok(42)
    );
    assert!(
        closed_within(&mut squatter.stream, Duration::from_millis(200))
            .await
            .is_none()
    );
}

/// Sends `forged` (reports in `publisher`'s name to `victim`) ten times, then checks that the
/// victim gets only real reports while they keep coming.
async fn only_real_reports_arrive(attacker: &mut RawPeer, forged: &Frame, log: &mut common::Probe) {
    for _ in 0..10 {
        attacker.send(forged).await;
    }
    settle().await;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    let mut real = 0;
    while let Ok(Some(line)) = tokio::time::timeout_at(deadline, log.0.recv()).await {
        assert_eq!(line, "real", "a forged report was delivered");
        real += 1;
    }
    assert!(real > 5, "the real stream goes on ({real})");
}

fn forged_tick(publisher: netsvc::AgentId, victim: netsvc::AgentId) -> Frame {
    Frame::Report(ReportFrame {
        publisher,
        subject: "tick".into(),
        content: json("forged"),
        targets: vec![ReportTarget {
            subscriber: victim,
            pattern: Some("*".into()),
        }],
    })
}

fn claim(agent: netsvc::AgentId, process: ProcessId) -> Frame {
    Frame::ServiceAvailable(netsvc::wire::ServiceInfo {
        agent,
        name: "publisher".into(),
        audience: "*".into(),
        process,
        groups: vec![],
    })
}

#[actix::test]
async fn announcing_a_local_agent_as_a_second_route_does_not_let_a_peer_speak_for_it() {
    let (hub, _x, mut log, victim, mut attacker) = hub_with_publisher_and_victim().await;
    let publisher = attacker.agent_named("publisher").await;
    // In the hub's own process's name, and in a made-up process's.
    attacker.send(&claim(publisher, hub.process())).await;
    attacker.send(&claim(publisher, ProcessId::random())).await;
    let forged = forged_tick(publisher, victim);
    only_real_reports_arrive(&mut attacker, &forged, &mut log).await;
}

/// A hub (with `config`) whose local victim receives the reports of a publisher on a client
/// process, and a raw attacker connected to the hub and announced; returns the publisher's
/// agent and process as the attacker learned them.
async fn hub_with_remote_publisher(
    config: ExchangeConfig,
) -> (
    (Node, Exchange, Node, Exchange),
    common::Probe,
    netsvc::AgentId,
    (netsvc::AgentId, ProcessId),
    RawPeer,
) {
    let (tx, mut log) = probe();
    let hub = Node::new("hub");
    let x = Exchange::with_config(&hub, config).unwrap();
    let addr = x.listen("127.0.0.1:0").await.unwrap().to_string();
    let (client, cx) = client_of("client", &addr).await;
    client.spawn(Publisher);
    let victim = hub.spawn_with(
        Victim {
            log: tx,
            subscribe: true,
        },
        named("victim"),
    );
    assert!(got(&mut log, "real", WAIT).await);
    let mut attacker = RawPeer::connect(&addr, ProcessId::random()).await;
    attacker.announce_self().await;
    let publisher = attacker.agent_named("publisher").await;
    let process = client.process();
    (
        (hub, x, client, cx),
        log,
        victim.binding.agent(),
        (publisher, process),
        attacker,
    )
}

#[actix::test]
async fn announcing_a_remote_agent_for_another_process_does_not_let_a_peer_speak_for_it() {
    let (_keep, mut log, victim, (publisher, _), mut attacker) =
        hub_with_remote_publisher(config()).await;
    attacker.send(&claim(publisher, ProcessId::random())).await;
    let forged = forged_tick(publisher, victim);
    only_real_reports_arrive(&mut attacker, &forged, &mut log).await;
}

/// A hub whose policy admits the raw peer (node name "raw") with `rule` and everyone else
/// with everything.
fn config_with_rule_for_raw(rule: &str) -> ExchangeConfig {
    let policy = format!(r#"{{"peers": [{{"node": "raw", {rule}}}], "default": {{}}}}"#);
    ExchangeConfig {
        admit: Some(netsvc::PolicyFile::parse(&policy).unwrap().into_admit()),
        ..config()
    }
}

#[actix::test]
async fn a_peer_the_policy_does_not_let_relay_cannot_claim_another_process_agent() {
    // With the publisher's real process id the claim is a plausible second route; a plain
    // client the policy does not let relay is refused it, and so cannot speak for it.
    let (_keep, mut log, victim, (publisher, process), mut attacker) =
        hub_with_remote_publisher(config_with_rule_for_raw(r#""relay": false"#)).await;
    attacker.send(&claim(publisher, process)).await;
    let forged = forged_tick(publisher, victim);
    only_real_reports_arrive(&mut attacker, &forged, &mut log).await;
}

#[actix::test]
async fn a_second_route_the_policy_refuses_by_name_does_not_let_a_peer_speak_for_it() {
    let (_keep, mut log, victim, (publisher, process), mut attacker) =
        hub_with_remote_publisher(config_with_rule_for_raw(r#""announce": ["sensor.*"]"#)).await;
    attacker.send(&claim(publisher, process)).await;
    let forged = forged_tick(publisher, victim);
    only_real_reports_arrive(&mut attacker, &forged, &mut log).await;
}

/// A report in `publisher`'s name to `victim`, saying `text`.
fn report_from(publisher: netsvc::AgentId, victim: netsvc::AgentId, text: &str) -> Frame {
    Frame::Report(ReportFrame {
        publisher,
        subject: "tick".into(),
        content: json(text),
        targets: vec![ReportTarget {
            subscriber: victim,
            pattern: Some("*".into()),
        }],
    })
}

#[actix::test]
async fn a_publisher_withdrawn_over_a_link_cannot_publish_over_it_even_in_a_stream_routed_alike() {
    // One agent announced over two links: its route is the first, the second is an
    // alternate. Withdrawn over the second only, its route stays as it was, yet the second
    // link no longer speaks for it, however many identical reports it routed before.
    let (_hub, x, mut log, victim, mut first) = hub_with_publisher_and_victim().await;
    let (shared, process) = (netsvc::AgentId::random(), ProcessId::random());
    let info = |agent| {
        Frame::ServiceAvailable(netsvc::wire::ServiceInfo {
            agent,
            name: String::new(),
            audience: "*".into(),
            process,
            groups: vec![],
        })
    };
    first.send(&info(shared)).await;
    let addr = x.listen("127.0.0.1:0").await.unwrap().to_string();
    let mut second = RawPeer::connect(&addr, ProcessId::random()).await;
    second.send(&info(shared)).await;
    settle().await;
    for _ in 0..20 {
        second.send(&report_from(shared, victim, "second")).await;
    }
    assert!(
        got(&mut log, "second", WAIT).await,
        "an alternate route speaks for it"
    );
    second
        .send(&Frame::ServiceWithdrawn { agent: shared })
        .await;
    for _ in 0..10 {
        second.send(&report_from(shared, victim, "withdrawn")).await;
    }
    settle().await;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok(Some(line)) = tokio::time::timeout_at(deadline, log.0.recv()).await {
        assert_ne!(line, "withdrawn", "a report over a link its publisher left");
    }
    // Over the first link, its route, it still publishes.
    first.send(&report_from(shared, victim, "first")).await;
    assert!(got(&mut log, "first", WAIT).await);
}
