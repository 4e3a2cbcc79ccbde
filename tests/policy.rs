//! A per-peer policy on an exchange server: a peer allowed only `sensor.*` cannot announce
//! `calculator` (visible nowhere, its link kept), over-limit announcements and subscriptions
//! are refused, a peer no rule admits is refused, and an impostor of a service name gets
//! nothing while the real service restarts.

mod common;

use std::time::Duration;

use common::raw::{closed_within, RawPeer};
use common::{probe, settle, WAIT};
use netsvc::prelude::*;
use netsvc::wire::{Frame, ServiceInfo};
use netsvc::{AgentId, ConnectionState, Exchange, ExchangeConfig, PolicyFile, ProcessId};
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
}

/// Logs the patterns subscribed to it.
#[derive(Service)]
#[service(name = "publisher")]
struct Publisher {
    log: UnboundedSender<String>,
}
impl Service for Publisher {
    fn subscription(&mut self, n: SubscriptionNotice, _: &mut ServiceContext<Self>) {
        let _ = self.log.send(format!("{:?} {}", n.status, n.pattern));
    }
}

#[derive(Service)]
struct Idle;
impl Service for Idle {}

fn named(name: &str) -> netsvc::ServiceOptions {
    netsvc::ServiceOptions::named(netsvc::ServiceName::new(name).unwrap())
}

/// A server whose peers are admitted by `policy` (JSON).
async fn server(policy: &str) -> (Node, Exchange, String) {
    let _ = probe();
    let node = Node::new("hub");
    let config = ExchangeConfig {
        admit: Some(PolicyFile::parse(policy).unwrap().into_admit()),
        ..ExchangeConfig::default()
    };
    let x = Exchange::with_config(&node, config).unwrap();
    let addr = x.listen("127.0.0.1:0").await.unwrap().to_string();
    (node, x, addr)
}

async fn client(name: &str, addr: &str) -> Node {
    let node = Node::new(name);
    let x = Exchange::new(&node);
    let mut events = x.connections();
    x.connect(addr, Some(Duration::from_millis(200))).forget();
    let event = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.state, ConnectionState::Active);
    node
}

async fn names(node: &Node) -> Vec<String> {
    let mut names: Vec<String> = node
        .services()
        .await
        .iter()
        .map(|b| b.name().to_string())
        .collect();
    names.sort();
    names
}

#[actix::test]
async fn a_peer_allowed_only_sensor_names_cannot_announce_calculator() {
    let policy = r#"{"peers": [{"node": "sensors", "announce": ["sensor.*"], "max_services": 2}],
                     "default": {}}"#;
    let (hub, _x, addr) = server(policy).await;
    let sensors = client("sensors", &addr).await;
    sensors.spawn_with(Idle, named("sensor.temperature"));
    sensors.spawn(Calculator);
    sensors.spawn_with(Idle, named("sensor.pressure"));
    // Over its limit of two services.
    sensors.spawn_with(Idle, named("sensor.humidity"));
    let other = client("other", &addr).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let expected = vec![
        "sensor.pressure".to_owned(),
        "sensor.temperature".to_owned(),
    ];
    assert_eq!(names(&hub).await, expected);
    assert_eq!(
        names(&other).await,
        expected,
        "visible nowhere beyond the hub either"
    );
    // The sensors' link stays: a call from it is served.
    hub.spawn(Calculator);
    let calc = loop {
        if let Some(b) = sensors
            .lookup_name("calculator")
            .await
            .into_iter()
            .find(|b| b.location() == netsvc::Location::Remote)
        {
            break b;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        CalculatorClient::new(sensors.endpoint(&calc))
            .multiply(6, 7)
            .await,
        Ok(42)
    );
}

#[actix::test]
async fn an_impostor_of_a_name_gets_nothing_while_the_real_service_restarts() {
    let policy = r#"{"peers": [{"node": "calc-node", "announce": ["calculator"]}],
                     "default": {"announce": []}}"#;
    let (hub, _x, addr) = server(policy).await;
    let real = client("calc-node", &addr).await;
    let first = real.spawn(Calculator);
    // The impostor announces "calculator" too.
    let mut impostor = RawPeer::connect(&addr, ProcessId::random()).await;
    impostor
        .send(&Frame::ServiceAvailable(ServiceInfo {
            agent: AgentId::random(),
            name: "calculator".into(),
            audience: "*".into(),
            process: ProcessId::random(),
            groups: vec![],
        }))
        .await;
    settle().await;
    // The real one restarts: a newer agent, which calls by name find.
    first.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = real.spawn(Calculator);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let found = hub.lookup_name("calculator").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].agent(), second.binding.agent());
    let by_name = hub.endpoint("calculator");
    assert_eq!(
        by_name.call::<_, i64>("multiply", (6i64, 7i64)).await,
        Ok(42)
    );
}

#[actix::test]
async fn a_peer_no_rule_admits_is_refused_and_subscriptions_over_the_limit_are_not_made() {
    let policy = r#"{"peers": [{"node": "raw", "max_subscriptions": 2}]}"#;
    let (hub, _x, addr) = server(policy).await;
    let (tx, mut log) = probe();
    hub.spawn(Publisher { log: tx });
    // "stranger" matches no rule, and there is no default: the server refuses it as its
    // handshake completes (what the stranger sees: see the next test).
    let mut hub_events = _x.connections();
    let stranger = Node::new("stranger");
    let stranger_x = Exchange::new(&stranger);
    stranger_x.connect(&addr, None).forget();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        stranger_x.stats().connections == 0,
        "the stranger's link is closed"
    );
    assert!(
        hub_events.try_recv().is_err(),
        "the server made no link for a peer no rule admits"
    );
    assert!(stranger.lookup_name("publisher").await.is_empty());
    // The raw peer (node "raw") may hold two subscriptions.
    let mut peer = RawPeer::connect(&addr, ProcessId::random()).await;
    let me = peer.announce_self().await;
    let publisher = peer.agent_named("publisher").await;
    for pattern in ["a.*", "b.*", "c.*"] {
        peer.send(&Frame::SubscriptionRequested {
            publisher,
            subscriber: me,
            pattern: pattern.into(),
        })
        .await;
    }
    let mut seen = log.take_sorted(2).await;
    seen.sort();
    assert_eq!(seen, ["Requested a.*", "Requested b.*"]);
    log.silent_for(Duration::from_millis(300)).await;
    // Refused, not closed.
    assert!(closed_within(&mut peer.stream, Duration::from_millis(200))
        .await
        .is_none());
}

#[actix::test]
async fn a_refused_peer_never_sees_its_side_of_the_link_up() {
    let policy = r#"{"peers": [{"node": "friend"}]}"#;
    let (_hub, _x, addr) = server(policy).await;
    let stranger = Node::new("stranger");
    let stranger_x = Exchange::new(&stranger);
    let mut events = stranger_x.connections();
    // Told why at once, as a tool connecting once would be.
    let refused = stranger_x.connect_once(&addr).await;
    match refused {
        Err(netsvc::ExchangeError::Closed(reason)) => {
            assert!(
                reason.contains("refused by the server's policy"),
                "{reason}"
            )
        }
        other => panic!("the stranger got in: {other:?}"),
    }
    // A client that keeps retrying is refused every time, and never sees the link active.
    stranger_x
        .connect(&addr, Some(Duration::from_millis(50)))
        .forget();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        events.try_recv().is_err(),
        "the stranger saw a connection event"
    );
    assert_eq!(stranger_x.stats().connections, 0);
    // The one the policy admits is served.
    let friend = client("friend", &addr).await;
    drop(friend);
}
