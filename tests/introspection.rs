//! Mesh introspection: every node answers `$node` with its links, counters and services,
//! through a hub too, and the answer is built only when asked.

mod common;

use std::time::Duration;

use common::{wait_for, WAIT};
use netsvc::prelude::*;
use netsvc::{ConnectionState, Exchange, LinkSide, NodeInfo, ProcessId};

#[derive(Service)]
#[service(name = "calculator", groups = ["arithmetic"])]
struct Calculator;
impl Service for Calculator {}

#[netsvc::methods]
impl Calculator {
    fn multiply(&mut self, a: i64, b: i64) -> i64 {
        a * b
    }
}

#[derive(Service)]
#[service(name = "publisher")]
struct Publisher;
impl Service for Publisher {}

/// Subscribes to the publisher's `system.*`, and to its `alarm.?` conflated.
#[derive(Service)]
#[service(name = "listener")]
struct Listener;
impl Service for Listener {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.monitor_reports("publisher", "system.*");
        ctx.monitor_reports("publisher", "alarm.?");
        ctx.conflate_reports("publisher", "alarm.?");
    }
}

/// Subscribes to the publisher's `alarm.*` from the publisher's own process, conflated
/// once the publisher has taken the subscription.
#[derive(Service)]
#[service(name = "local-listener")]
struct LocalListener;
impl Service for LocalListener {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.monitor_reports("publisher", "alarm.*");
    }
    fn publisher(&mut self, notice: PublisherNotice, ctx: &mut ServiceContext<Self>) {
        if notice.status == Status::Available {
            ctx.conflate_reports("publisher", "alarm.*");
        }
    }
}

async fn up(exchange: &Exchange) {
    let mut events = exchange.connections();
    tokio::time::timeout(WAIT, async {
        while exchange.stats().connections == 0 {
            match events.recv().await {
                Ok(e) if e.state == ConnectionState::Active => return,
                _ => {}
            }
        }
    })
    .await
    .expect("the link came up");
}

/// A hub, a node with a calculator and a tool node, each joined to the hub.
async fn mesh() -> (Node, Node, Node, Vec<Exchange>) {
    let hub = Node::new("hub");
    let hub_exchange = Exchange::new(&hub);
    let addr = hub_exchange
        .listen("127.0.0.1:0")
        .await
        .unwrap()
        .to_string();
    let server = Node::new("server");
    server.spawn(Calculator);
    let server_exchange = Exchange::new(&server);
    server_exchange.connect(&addr, None).forget();
    let tool = Node::new("tool");
    let tool_exchange = Exchange::new(&tool);
    tool_exchange.connect(&addr, None).forget();
    up(&server_exchange).await;
    up(&tool_exchange).await;
    (
        hub,
        server,
        tool,
        vec![hub_exchange, server_exchange, tool_exchange],
    )
}

#[actix::test]
async fn a_node_describes_its_own_link_and_the_hub_its_two() {
    let (hub, server, tool, _exchanges) = mesh().await;
    let calculator = wait_for(&tool, "calculator").await;
    assert_eq!(
        CalculatorClient::new(tool.endpoint(&calculator))
            .multiply(6, 7)
            .await,
        Ok(42)
    );

    let own: NodeInfo = tool.introspect(tool.process()).await.unwrap();
    assert_eq!((own.process, own.node.as_str()), (tool.process(), "tool"));
    assert_eq!(own.links.len(), 1);
    let link = &own.links[0];
    assert_eq!(
        (link.peer_process, link.peer_node.as_str(), link.peer_hub),
        (hub.process(), "hub", true)
    );
    assert_eq!(link.side, LinkSide::Connected);
    assert!(!link.tls && !link.authenticated);
    assert!(link.frames_in > 0 && link.bytes_in > 0, "{link:?}");
    assert!(link.frames_out > 0 && link.bytes_out > 0, "{link:?}");
    assert!(own.services.is_empty(), "{:?}", own.services);

    // The hub, through the link.
    let remote = tool.introspect(hub.process()).await.unwrap();
    assert_eq!(remote.node, "hub");
    let mut peers: Vec<_> = remote
        .links
        .iter()
        .map(|l| (l.peer_node.clone(), l.side, l.peer_hub))
        .collect();
    peers.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        peers,
        vec![
            ("server".to_owned(), LinkSide::Accepted, false),
            ("tool".to_owned(), LinkSide::Accepted, false)
        ]
    );
    let to_server = remote
        .links
        .iter()
        .find(|l| l.peer_node == "server")
        .unwrap();
    // The calculator's answer came from the server through the hub.
    assert!(
        to_server.frames_in >= 2 && to_server.frames_out >= 2,
        "{to_server:?}"
    );
    assert_eq!(to_server.peer_process, server.process());
    assert!(to_server.address.starts_with("127.0.0.1:"));

    // The server, beyond the hub: its calculator with its group.
    let far = tool.introspect(server.process()).await.unwrap();
    assert_eq!(far.node, "server");
    assert_eq!(far.services.len(), 1, "{:?}", far.services);
    let service = &far.services[0];
    assert_eq!(
        (
            service.name.as_str(),
            service.agent,
            service.audience.as_str()
        ),
        ("calculator", calculator.agent(), "*")
    );
    assert_eq!(service.groups, vec!["arithmetic".to_owned()]);
}

#[actix::test]
async fn the_hub_is_known_by_its_process_and_an_unknown_process_fails_at_once() {
    let (hub, _server, tool, _exchanges) = mesh().await;
    let hub_agent = tool
        .introspect(hub.process())
        .await
        .map(|info| info.process)
        .unwrap();
    assert_eq!(hub_agent, hub.process());

    let started = std::time::Instant::now();
    let failure = tool.introspect(ProcessId::random()).await.unwrap_err();
    assert_eq!(failure.code, ErrorCode::CLIENT_SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[actix::test]
async fn a_node_tells_who_subscribes_to_its_services() {
    let (_hub, server, tool, _exchanges) = mesh().await;
    let publisher = server.spawn(Publisher);
    let listener = tool.spawn(Listener);
    let local = server.spawn(LocalListener);
    let deadline = tokio::time::Instant::now() + WAIT;
    let info = loop {
        // The server's node agent is known once its announcement came through the hub; the
        // local listener's conflation is asked for after its subscription was taken.
        let info = tool.introspect(server.process()).await;
        let complete = |i: &&NodeInfo| {
            i.subscriptions.len() >= 3
                && i.subscriptions.iter().filter(|s| s.conflated).count() >= 2
        };
        if let Some(info) = info.as_ref().ok().filter(complete) {
            break info.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{info:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let seen: Vec<_> = info
        .subscriptions
        .iter()
        .map(|s| {
            (
                s.publisher,
                s.publisher_name.as_str(),
                s.subscriber,
                s.subscriber_name.as_str(),
                s.subscriber_process,
                s.pattern.as_str(),
                s.conflated,
            )
        })
        .collect();
    let (p, l, o) = (
        publisher.binding.agent(),
        listener.binding.agent(),
        local.binding.agent(),
    );
    let (far, near) = (tool.process(), server.process());
    let mut expected = vec![
        (p, "publisher", l, "listener", far, "alarm.?", true),
        (p, "publisher", l, "listener", far, "system.*", false),
        (p, "publisher", o, "local-listener", near, "alarm.*", true),
    ];
    // Sorted by subscriber agent, then pattern, as the node lists them.
    expected.sort_by(|a, b| (a.2, a.5).cmp(&(b.2, b.5)));
    assert_eq!(seen, expected);
    // The subscriber's own node has none (nobody subscribes to the listener).
    assert!(tool
        .introspect(tool.process())
        .await
        .unwrap()
        .subscriptions
        .is_empty());
}

/// A service this process keeps to itself (audience `""`).
#[derive(Service)]
#[service(name = "secret", audience = "")]
struct Secret;
impl Service for Secret {}

#[netsvc::methods]
impl Secret {
    fn multiply(&mut self, a: i64, b: i64) -> i64 {
        a * b
    }
}

#[actix::test]
async fn a_process_private_service_is_neither_shown_nor_reachable_from_outside() {
    use common::raw::RawPeer;
    use netsvc::wire::{Frame, RequestFrame, WirePayload};

    let server = Node::new("server");
    let secret = server.spawn(Secret);
    let calculator = server.spawn(Calculator);
    let exchange = Exchange::new(&server);
    let addr = exchange.listen("127.0.0.1:0").await.unwrap().to_string();

    // This process sees it; a tool in another process does not.
    let here = server.introspect(server.process()).await.unwrap();
    assert!(here.services.iter().any(|s| s.name == "secret"));
    let tool = Node::new("tool");
    let tool_exchange = Exchange::new(&tool);
    tool_exchange.connect(&addr, None).forget();
    up(&tool_exchange).await;
    let there = tool.introspect(server.process()).await.unwrap();
    let names: Vec<&str> = there.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["calculator"]);

    // A peer that learned its agent id anyway gets "no such service", as for none at all.
    let mut peer = RawPeer::connect(&addr, ProcessId::random()).await;
    let me = peer.announce_self().await;
    let args = bincode::serde::encode_to_vec((6i64, 7i64), bincode::config::standard()).unwrap();
    for (conversation, target) in [(1, secret.binding.agent()), (2, calculator.binding.agent())] {
        peer.send(&Frame::Request(RequestFrame {
            conversation,
            requester: me,
            target,
            method: "multiply".into(),
            args: WirePayload {
                format: netsvc::Format::Bincode,
                type_name: "(i64, i64)".into(),
                bytes: args.clone().into(),
            },
            reply_format: netsvc::Format::Bincode,
        }))
        .await;
    }
    let refused = peer
        .until(|f| {
            matches!(
                f,
                Frame::Failure {
                    conversation: 1,
                    ..
                }
            )
        })
        .await;
    let Frame::Failure { failure, .. } = refused else {
        unreachable!()
    };
    assert_eq!(failure.code, ErrorCode::CLIENT_SERVICE_UNAVAILABLE.0);
    peer.until(|f| {
        matches!(
            f,
            Frame::Response {
                conversation: 2,
                ..
            }
        )
    })
    .await;
}

#[actix::test]
async fn a_node_agent_id_is_refused_for_any_other_process() {
    use common::raw::RawPeer;
    use netsvc::wire::{Frame, ServiceInfo};

    let hub = Node::new("hub");
    let exchange = Exchange::new(&hub);
    let addr = exchange.listen("127.0.0.1:0").await.unwrap().to_string();
    let victim = ProcessId::random();
    let mut squatter = RawPeer::connect(&addr, ProcessId::random()).await;
    squatter
        .send(&Frame::ServiceAvailable(ServiceInfo {
            agent: netsvc::node_agent_of(victim),
            name: String::new(),
            audience: "*".into(),
            process: ProcessId::random(),
            groups: vec![],
        }))
        .await;
    let _ = squatter.announce_self().await;
    common::settle().await;
    // The hub does not route to it: asking the victim's node fails at once.
    let failure = hub.introspect(victim).await.unwrap_err();
    assert_eq!(failure.code, ErrorCode::CLIENT_SERVICE_UNAVAILABLE);
}
