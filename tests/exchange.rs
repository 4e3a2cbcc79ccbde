//! The exchange between nodes over real sockets on 127.0.0.1 (several nodes in one test
//! process: each node is its own process as far as netsvc is concerned).

mod common;

use std::time::Duration;

use common::{probe, settle, wait_for, WAIT};
use netsvc::prelude::*;
use netsvc::{ConnectionState, Exchange, ExchangeConfig, SubscriptionStatus};
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
    fn divide(&mut self, a: i64, b: i64) -> Result<i64, Failure> {
        if b == 0 {
            return Err(Failure::new(ErrorCode(100), "division by zero"));
        }
        Ok(a / b)
    }
    fn divide_loudly(&mut self, len: usize) -> Result<i64, Failure> {
        Err(Failure::new(ErrorCode(101), "é".repeat(len)).with_details("d".repeat(len)))
    }
    fn repeat(&mut self, text: String, times: u32) -> String {
        text.repeat(times as usize)
    }
    fn slow(&mut self, ctx: &mut ServiceContext<Self>, millis: u64) -> Delayed<u64> {
        let (responder, delayed) = ctx.suspend_response();
        ctx.run_later(Duration::from_millis(millis), move |_, _| {
            responder.resolve(millis)
        });
        delayed
    }
}

#[derive(Service)]
#[service(name = "publisher")]
struct Publisher;
impl Service for Publisher {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.publish_report("system.ctime", "then".to_string(), Lifetime::Forever);
        ctx.start_timer("tick", Duration::from_millis(20));
    }
    fn timer(&mut self, _: &str, ctx: &mut ServiceContext<Self>) {
        ctx.publish_report("system.time", "now".to_string(), Lifetime::None);
        ctx.start_timer("tick", Duration::from_millis(20));
    }
}

#[derive(Service)]
struct Subscriber {
    log: UnboundedSender<String>,
}
impl Service for Subscriber {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.monitor_reports("publisher", "system.*");
    }
    fn report(&mut self, r: Report, _: &mut ServiceContext<Self>) {
        let _ = self.log.send(format!(
            "{} {} {:?}",
            r.subject(),
            r.decode::<String>().unwrap(),
            r.publisher().location()
        ));
    }
    fn publisher(&mut self, n: PublisherNotice, _: &mut ServiceContext<Self>) {
        let _ = self.log.send(format!("publisher {:?}", n.status));
    }
}

async fn active(rx: &mut tokio::sync::broadcast::Receiver<netsvc::ConnectionEvent>) {
    loop {
        let event = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("connection within WAIT")
            .unwrap();
        if event.state == ConnectionState::Active {
            return;
        }
    }
}

#[actix::test]
async fn services_reports_and_requests_cross_a_connection() {
    let server = Node::new("server");
    let server_x = Exchange::new(&server);
    let addr = server_x.listen("127.0.0.1:0").await.unwrap();
    server.spawn(Calculator);
    server.spawn(Publisher);

    let client = Node::new("client");
    let client_x = Exchange::new(&client);
    let mut events = client_x.connections();
    client_x
        .connect(&addr.to_string(), Some(Duration::from_millis(100)))
        .forget();
    active(&mut events).await;

    let calc = wait_for(&client, "calculator").await;
    assert_eq!(calc.location(), netsvc::Location::Remote);
    let c = CalculatorClient::new(client.endpoint(&calc));
    assert_eq!(c.multiply(6, 7).await, Ok(42));
    let f = c.divide(1, 0).await.unwrap_err();
    assert_eq!((f.code, f.origin.as_str()), (ErrorCode(100), "calculator"));
    assert_eq!(
        client
            .endpoint("calculator")
            .call_dynamic("multiply", serde_json::json!([2, 4]))
            .await,
        Ok(serde_json::json!(8))
    );
    let f = client
        .endpoint("calculator")
        .call_dynamic("multiply", serde_json::json!([2]))
        .await
        .unwrap_err();
    assert_eq!(f.code, ErrorCode::SERVER_PARAMETERS_INCORRECT);
    let f = c
        .endpoint()
        .clone()
        .with_timeout(Duration::from_millis(30))
        .call::<_, u64>("slow", (200u64,))
        .await
        .unwrap_err();
    assert_eq!(f.code, ErrorCode::CLIENT_REQUEST_TIMEOUT);

    let (tx, mut log) = probe();
    client.spawn(Subscriber { log: tx });
    assert_eq!(log.next().await, "publisher Available");
    assert_eq!(log.next().await, "system.ctime then Remote");
    log.until("system.time now Remote").await;
    settle().await;
}

/// A server node serving the calculator and a client node connected to it, both with
/// `config`: the client's calculator, and the exchanges (server's first) and nodes that keep
/// them up.
async fn calculator_link(
    config: impl Fn() -> ExchangeConfig,
) -> (CalculatorClient, [Exchange; 2], [Node; 2]) {
    let server = Node::new("server");
    let server_x = Exchange::with_config(&server, config()).unwrap();
    let addr = server_x.listen("127.0.0.1:0").await.unwrap();
    server.spawn(Calculator);
    let client = Node::new("client");
    let client_x = Exchange::with_config(&client, config()).unwrap();
    let mut events = client_x.connections();
    client_x.connect(&addr.to_string(), None).forget();
    active(&mut events).await;
    let c = CalculatorClient::new(client.endpoint(&wait_for(&client, "calculator").await));
    (c, [server_x, client_x], [server, client])
}

#[actix::test]
async fn calls_over_the_frame_size_limit_fail_clearly_and_the_link_stays_up() {
    let (c, [server_x, _client_x], _nodes) = calculator_link(|| ExchangeConfig {
        max_frame: 4096,
        ..ExchangeConfig::default()
    })
    .await;

    let f = c.repeat("x".repeat(10_000), 1).await.unwrap_err();
    assert_eq!(f.code, ErrorCode::CLIENT_REQUEST_ENCODING_ERROR);
    assert!(
        f.description
            .contains("too large: over the link's frame size limit of 4096 bytes"),
        "{f}"
    );
    let f = c.repeat("x".into(), 10_000).await.unwrap_err();
    assert_eq!(f.code, ErrorCode::SERVER_RESPONSE_ENCODING_ERROR);
    assert!(f.description.contains("response too large"), "{f}");
    // Just under the limit both ways, and the link is still up.
    assert_eq!(c.repeat("x".into(), 4000).await.map(|s| s.len()), Ok(4000));
    assert_eq!(c.multiply(6, 7).await, Ok(42));
    assert_eq!(server_x.stats().connections, 1);
}

#[actix::test]
async fn a_relay_answers_at_once_for_calls_too_large_for_its_next_link() {
    // front: a client of the default hub (16 MiB frames) and the server of a "backend" group
    // whose links take frames of up to 4096 bytes. A call front cannot pass on fails at once.
    let hub = Node::new("hub");
    let hub_x = Exchange::new(&hub);
    let hub_addr = hub_x.listen("127.0.0.1:0").await.unwrap();
    hub.spawn(Calculator);
    let front = Node::new("front");
    let front_default = Exchange::new(&front);
    let mut front_events = front_default.connections();
    front_default.connect(&hub_addr.to_string(), None).forget();
    active(&mut front_events).await;
    let small = ExchangeConfig {
        group: "backend".into(),
        max_frame: 4096,
        ..ExchangeConfig::default()
    };
    let front_backend = Exchange::with_config(&front, small.clone()).unwrap();
    let backend_addr = front_backend.listen("127.0.0.1:0").await.unwrap();
    let back = Node::new("back");
    let back_x = Exchange::with_config(&back, small).unwrap();
    let mut back_events = back_x.connections();
    back_x.connect(&backend_addr.to_string(), None).forget();
    active(&mut back_events).await;
    let options = netsvc::ServiceOptions {
        name: netsvc::ServiceName::new("backcalc").unwrap(),
        audience: netsvc::Audience::parse("*").unwrap(),
        groups: vec![],
    };
    back.spawn_with(Calculator, options);

    // back → hub: the 10 kB response does not fit front's link to back.
    let to_hub = CalculatorClient::new(
        back.endpoint(&wait_for(&back, "calculator").await)
            .with_timeout(WAIT),
    );
    let f = to_hub.repeat("x".into(), 10_000).await.unwrap_err();
    assert_eq!(f.code, ErrorCode::SERVER_RESPONSE_ENCODING_ERROR, "{f}");
    assert!(f.description.contains("response too large to relay"), "{f}");
    // A failure too large for that link arrives with its own code, its texts cut short.
    let f = to_hub.divide_loudly(10_000).await.unwrap_err();
    assert_eq!(f.code, ErrorCode(101), "{f}");
    assert_eq!((f.description.len(), f.details.len()), (1024, 1024));
    // hub → back: the 10 kB request does not fit front's link to back.
    let to_back = CalculatorClient::new(
        hub.endpoint(&wait_for(&hub, "backcalc").await)
            .with_timeout(WAIT),
    );
    let f = to_back.repeat("x".repeat(10_000), 1).await.unwrap_err();
    assert_eq!(f.code, ErrorCode::SERVER_RESOURCE_UNAVAILABLE, "{f}");
    assert!(f.description.contains("request too large to relay"), "{f}");
    // What fits goes through, both ways.
    assert_eq!(
        to_hub.repeat("x".into(), 3000).await.map(|s| s.len()),
        Ok(3000)
    );
    assert_eq!(
        to_back.repeat("x".repeat(3000), 1).await.map(|s| s.len()),
        Ok(3000)
    );
}

/// Watches everything a node's registry says about one service name, and reports.
#[derive(Service)]
struct Observer {
    log: UnboundedSender<String>,
    name: &'static str,
}
impl Service for Observer {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.subscribe_name(self.name);
    }
    fn availability(&mut self, e: RegistryEvent, _: &mut ServiceContext<Self>) {
        let _ = self.log.send(format!(
            "{} {:?} {}",
            e.binding.name(),
            e.status,
            e.binding.agent()
        ));
    }
}

#[actix::test]
async fn a_dropped_link_withdraws_fails_pending_requests_and_everything_forms_again_on_reconnect() {
    let server = Node::new("server");
    let server_x = Exchange::new(&server);
    let addr = server_x.listen("127.0.0.1:0").await.unwrap();
    let calc = server.spawn(Calculator);
    let (stx, mut sublog) = probe();
    server.spawn(SubscriptionWatcher { log: stx });

    let client = Node::new("client");
    let client_x = Exchange::new(&client);
    let mut events = client_x.connections();
    client_x
        .connect(&addr.to_string(), Some(Duration::from_millis(50)))
        .forget();
    active(&mut events).await;

    let (otx, mut observed) = probe();
    client.spawn(Observer {
        log: otx,
        name: "calculator",
    });
    assert_eq!(
        observed.next().await,
        format!("calculator Available {}", calc.binding.agent())
    );
    let (tx, mut log) = probe();
    client.spawn(Subscriber { log: tx });
    assert_eq!(log.next().await, "publisher Available");
    assert_eq!(log.next().await, "system.ctime then Remote");
    sublog.until("requested system.*").await;

    let remote_calc = wait_for(&client, "calculator").await;
    let pending = CalculatorClient::new(client.endpoint(&remote_calc)).slow(10_000);
    let pending = actix::spawn(pending);
    settle().await;

    let started = std::time::Instant::now();
    server_x.disconnect_all();
    // The pending request fails at once, not after its 10 s.
    let failure = tokio::time::timeout(WAIT, pending)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(failure.code, ErrorCode::SERVER_APPLICATION_ERROR);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        observed.next().await,
        format!("calculator Withdrawn {}", calc.binding.agent())
    );
    log.until("publisher Withdrawn").await;
    sublog.until("withdrawn system.*").await;

    // The client reconnects: same agent identities, subscriptions and cached reports again.
    assert_eq!(
        observed.next().await,
        format!("calculator Available {}", calc.binding.agent())
    );
    log.until("publisher Available").await;
    log.until("system.ctime then Remote").await;
    sublog.until("requested system.*").await;
    let again = wait_for(&client, "calculator").await;
    assert_eq!(again.agent(), remote_calc.agent());
    assert_eq!(
        CalculatorClient::new(client.endpoint(&again))
            .multiply(3, 3)
            .await,
        Ok(9)
    );
}

/// Logs subscription notices of the publisher's node.
#[derive(Service)]
#[service(name = "publisher")]
struct SubscriptionWatcher {
    log: UnboundedSender<String>,
}
impl Service for SubscriptionWatcher {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.publish_report("system.ctime", "then".to_string(), Lifetime::Forever);
    }
    fn subscription(&mut self, n: SubscriptionNotice, _: &mut ServiceContext<Self>) {
        let what = match n.status {
            SubscriptionStatus::Requested => "requested",
            SubscriptionStatus::Withdrawn => "withdrawn",
        };
        let _ = self.log.send(format!("{what} {}", n.pattern));
    }
}

#[derive(Service)]
#[service(name = "chatty")]
struct Chatty;
impl Service for Chatty {}

#[derive(actix::Message)]
#[rtype(result = "()")]
struct Burst(u32);

/// How many subscribers the publisher has.
#[derive(actix::Message)]
#[rtype(result = "usize")]
struct CountSubscribers;

impl actix::Handler<CountSubscribers> for Chatty {
    type Result = usize;
    fn handle(&mut self, _: CountSubscribers, ctx: &mut ServiceContext<Self>) -> usize {
        ctx.subscribers().len()
    }
}

impl actix::Handler<Burst> for Chatty {
    type Result = ();
    fn handle(&mut self, msg: Burst, ctx: &mut ServiceContext<Self>) {
        for i in 0..msg.0 {
            ctx.publish_report("chatter", i, Lifetime::None);
        }
    }
}

#[derive(Service)]
struct Listener {
    log: UnboundedSender<String>,
    pattern: &'static str,
}
impl Service for Listener {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.monitor_reports("chatty", self.pattern);
    }
    fn report(&mut self, r: Report, _: &mut ServiceContext<Self>) {
        let _ = self.log.send(format!(
            "{} {}",
            r.pattern().unwrap(),
            r.decode::<u32>().unwrap()
        ));
    }
    fn publisher(&mut self, _: PublisherNotice, _: &mut ServiceContext<Self>) {
        let _ = self.log.send("accepted".into());
    }
}

#[actix::test]
async fn reports_cross_a_link_only_for_subscribers_behind_it_once_per_link() {
    let server = Node::new("server");
    let server_x = Exchange::new(&server);
    let addr = server_x.listen("127.0.0.1:0").await.unwrap();
    let chatty = server.spawn(Chatty);

    let client = Node::new("client");
    let client_x = Exchange::new(&client);
    let mut events = client_x.connections();
    client_x.connect(&addr.to_string(), None).forget();
    active(&mut events).await;
    wait_for(&client, "chatty").await;

    // No subscriber behind the link: nothing crosses.
    chatty.addr().send(Burst(100)).await.unwrap();
    settle().await;
    assert_eq!(server_x.stats().reports_sent, 0);

    // Three subscriptions behind the link (two services, one with two matching patterns):
    // each report crosses once, and is delivered once per matching pattern.
    let (tx, mut log) = probe();
    client.spawn(Listener {
        log: tx.clone(),
        pattern: "chat*",
    });
    let second = client.spawn(Listener {
        log: tx.clone(),
        pattern: "chatter",
    });
    client.spawn(Listener {
        log: tx.clone(),
        pattern: "*",
    });
    assert_eq!(log.take(3).await, ["accepted", "accepted", "accepted"]);
    chatty.addr().send(Burst(10)).await.unwrap();
    let lines = log.take_sorted(30).await;
    assert_eq!(lines.iter().filter(|l| l.starts_with("chat* ")).count(), 10);
    assert_eq!(lines.iter().filter(|l| l.starts_with("* ")).count(), 10);
    settle().await;
    assert_eq!(server_x.stats().reports_sent, 10);

    // Subscribers come and go between reports on the same subject: the next report follows.
    client.spawn(Listener {
        log: tx,
        pattern: "c*",
    });
    assert_eq!(log.next().await, "accepted");
    chatty.addr().send(Burst(1)).await.unwrap();
    assert_eq!(
        log.take_sorted(4).await,
        ["* 0", "c* 0", "chat* 0", "chatter 0"]
    );
    second.stop();
    tokio::time::timeout(Duration::from_secs(5), async {
        while chatty.addr().send(CountSubscribers).await.unwrap() != 3 {
            settle().await;
        }
    })
    .await
    .expect("the publisher saw the subscriber go");
    chatty.addr().send(Burst(1)).await.unwrap();
    assert_eq!(log.take_sorted(3).await, ["* 0", "c* 0", "chat* 0"]);
    log.silent_for(Duration::from_millis(100)).await;
    assert_eq!(server_x.stats().reports_sent, 12);
}

#[actix::test]
async fn reports_follow_a_subscriber_rerouted_through_another_server() {
    // Servers a and b form a mesh; the publisher's node is a client of both (first a), the
    // subscriber's node a client of b only. When a goes away, the publisher's route to the
    // subscriber moves to its link with b without the subscriber being withdrawn.
    let (a, b) = (Node::new("a"), Node::new("b"));
    let (a_x, b_x) = (Exchange::new(&a), Exchange::new(&b));
    let a_addr = a_x.listen("127.0.0.1:0").await.unwrap().to_string();
    let b_addr = b_x.listen("127.0.0.1:0").await.unwrap().to_string();
    let mut b_events = b_x.connections();
    a_x.connect(&b_addr, None).forget();
    active(&mut b_events).await;

    let subscriber = Node::new("subscriber");
    let subscriber_x = Exchange::new(&subscriber);
    let mut events = subscriber_x.connections();
    subscriber_x.connect(&b_addr, None).forget();
    active(&mut events).await;
    let publisher = Node::new("publisher");
    let publisher_x = Exchange::new(&publisher);
    let mut events = publisher_x.connections();
    publisher_x.connect(&a_addr, None).forget();
    active(&mut events).await;
    let chatty = publisher.spawn(Chatty);
    let (tx, mut log) = probe();
    subscriber.spawn(Listener {
        log: tx,
        pattern: "chatter",
    });
    assert_eq!(log.next().await, "accepted");
    chatty.addr().send(Burst(1)).await.unwrap();
    assert_eq!(log.next().await, "chatter 0");
    // A second route to the subscriber, through b.
    publisher_x.connect(&b_addr, None).forget();
    active(&mut events).await;
    settle().await;

    a_x.disconnect_all();
    // Reports keep arriving (once the routes have moved), and nothing was withdrawn.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        chatty.addr().send(Burst(1)).await.unwrap();
        if let Ok(line) = tokio::time::timeout(Duration::from_millis(50), log.0.recv()).await {
            assert_eq!(line.as_deref(), Some("chatter 0"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no report after the reroute"
        );
    }
    assert_eq!(chatty.addr().send(CountSubscribers).await.unwrap(), 1);
}

#[actix::test]
async fn exchange_groups_decide_what_crosses() {
    // front: a client of the default exchange and the server of the "backend" group.
    let hub = Node::new("hub");
    let hub_x = Exchange::new(&hub);
    let hub_addr = hub_x.listen("127.0.0.1:0").await.unwrap();

    let front = Node::new("front");
    let front_default = Exchange::new(&front);
    let mut front_events = front_default.connections();
    front_default.connect(&hub_addr.to_string(), None).forget();
    let backend_cfg = netsvc::ExchangeConfig {
        group: "backend".into(),
        ..Default::default()
    };
    let front_backend = Exchange::with_config(&front, backend_cfg.clone()).unwrap();
    let backend_addr = front_backend.listen("127.0.0.1:0").await.unwrap();
    active(&mut front_events).await;

    let back = Node::new("back");
    let back_x = Exchange::with_config(&back, backend_cfg).unwrap();
    let mut back_events = back_x.connections();
    back_x.connect(&backend_addr.to_string(), None).forget();
    active(&mut back_events).await;
    let options = netsvc::ServiceOptions {
        name: netsvc::ServiceName::new("calculator").unwrap(),
        audience: netsvc::Audience::parse("backend").unwrap(),
        groups: vec![],
    };
    back.spawn_with(Calculator, options);
    hub.spawn(Publisher);

    // The front end sees the back-end service; the back end sees the default group's `*`.
    let calc = wait_for(&front, "calculator").await;
    assert_eq!(calc.audience().as_str(), "backend");
    assert_eq!(
        CalculatorClient::new(front.endpoint(&calc))
            .multiply(2, 21)
            .await,
        Ok(42)
    );
    wait_for(&back, "publisher").await;
    // The default-group hub never hears of it.
    settle().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(hub.lookup_name("calculator").await.is_empty());

    // A peer of another group is refused at the handshake.
    let stranger = Node::new("stranger");
    let stranger_x = Exchange::new(&stranger);
    let mut stranger_events = stranger_x.connections();
    stranger_x.connect(&backend_addr.to_string(), None).forget();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), stranger_events.recv())
            .await
            .is_err()
    );
}

#[actix::test]
async fn a_triangle_of_exchange_servers_has_no_loops_and_no_duplicate_announcements() {
    // Authenticated by a shared secret: only then is a duplicate link between two servers
    // resolved to one (see `trust.rs` for the unauthenticated case).
    let config = || ExchangeConfig {
        secret: Some(netsvc::Secret::new(b"the secret of the triangle").unwrap()),
        ..ExchangeConfig::default()
    };
    let mut servers = Vec::new();
    let mut addrs = Vec::new();
    for name in ["a", "b", "c"] {
        let node = Node::new(name);
        let x = Exchange::with_config(&node, config()).unwrap();
        addrs.push(x.listen("127.0.0.1:0").await.unwrap().to_string());
        servers.push((node, x));
    }
    let retry = Some(Duration::from_millis(100));
    let _ = probe();
    let mut mesh_events = servers[2].1.connections();
    servers[0].1.connect(&addrs[1], retry).forget();
    servers[0].1.connect(&addrs[2], retry).forget();
    servers[1].1.connect(&addrs[2], retry).forget();
    // Also a duplicate link, c -> a, that must be detected and dropped.
    servers[2].1.connect(&addrs[0], None).forget();
    for _ in 0..2 {
        active(&mut mesh_events).await;
    }

    let mut clients = Vec::new();
    for (i, name) in ["client-a", "client-b", "client-c"].into_iter().enumerate() {
        let node = Node::new(name);
        let x = Exchange::with_config(&node, config()).unwrap();
        let mut events = x.connections();
        x.connect(&addrs[i], retry).forget();
        active(&mut events).await;
        clients.push((node, x));
    }
    let (otx_b, mut seen_b) = probe();
    clients[1].0.spawn(Observer {
        log: otx_b,
        name: "calculator",
    });
    let (otx_c, mut seen_c) = probe();
    clients[2].0.spawn(Observer {
        log: otx_c,
        name: "calculator",
    });
    let calc = clients[0].0.spawn(Calculator);
    clients[0].0.spawn(Publisher);

    let expected = format!("calculator Available {}", calc.binding.agent());
    assert_eq!(seen_b.next().await, expected);
    assert_eq!(seen_c.next().await, expected);
    // Requests from c's client reach a's client through two servers.
    let remote = wait_for(&clients[2].0, "calculator").await;
    assert_eq!(
        CalculatorClient::new(clients[2].0.endpoint(&remote))
            .multiply(7, 6)
            .await,
        Ok(42)
    );
    // Reports arrive exactly once per subscription.
    let (tx, mut log) = probe();
    clients[1].0.spawn(Subscriber { log: tx });
    assert_eq!(log.next().await, "publisher Available");
    assert_eq!(log.next().await, "system.ctime then Remote");
    let mut ticks = 0;
    while ticks < 5 {
        let line = log.next().await;
        assert_eq!(line, "system.time now Remote");
        ticks += 1;
    }
    // No duplicate announcements anywhere, even after things settle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    seen_b.silent_for(Duration::from_millis(100)).await;
    seen_c.silent_for(Duration::from_millis(100)).await;
    for (node, _) in servers.iter().chain(clients.iter()) {
        assert_eq!(node.lookup_name("calculator").await.len(), 1, "{node:?}");
    }
    // One link per pair of servers, the duplicate dropped.
    assert_eq!(
        servers[0].1.stats().connections,
        3,
        "a: b, c and its client"
    );
    assert_eq!(
        servers[2].1.stats().connections,
        3,
        "c: a, b and its client"
    );
}

#[derive(Service)]
#[service(name = "hermit", audience = "")]
struct Hermit {
    target: Binding,
    log: UnboundedSender<String>,
}
impl Service for Hermit {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        let call = CalculatorClient::new(ctx.endpoint(&self.target)).multiply(1, 2);
        ctx.on_response(call, |me, r, _| {
            let _ = me.log.send(format!("{:?}", r.map_err(|f| f.code)));
        });
    }
}

#[actix::test]
async fn a_process_local_service_cannot_call_across_and_is_told_at_once() {
    let server = Node::new("server");
    let addr = Exchange::new(&server).listen("127.0.0.1:0").await.unwrap();
    server.spawn(Calculator);
    let client = Node::new("client");
    let x = Exchange::new(&client);
    let mut events = x.connections();
    x.connect(&addr.to_string(), None).forget();
    active(&mut events).await;
    let calc = wait_for(&client, "calculator").await;
    let (tx, mut log) = probe();
    client.spawn(Hermit {
        target: calc,
        log: tx,
    });
    assert_eq!(log.next().await, "Err(CLIENT_SERVICE_ADDRESS_INVALID(45))");
}

/// The requester's node and the serving node, both clients of two hubs: h1 in the default
/// exchange group and h2 in group "g". The calculator has audience "g", so it is seen (and
/// called) through h2 only, while the serving node learned the requester through h1 first:
/// requests go one way and the requester's route back the other. Returns the requester,
/// the calculator as it sees it, and the serving node's default-group exchange (its h1 link).
async fn two_way_topology() -> (Node, Binding, Exchange, Vec<Node>) {
    let g = ExchangeConfig {
        group: "g".into(),
        ..Default::default()
    };
    let (h1, h2) = (Node::new("h1"), Node::new("h2"));
    let h1_x = Exchange::new(&h1);
    let h2_x = Exchange::with_config(&h2, g.clone()).unwrap();
    let h1_addr = h1_x.listen("127.0.0.1:0").await.unwrap().to_string();
    let h2_addr = h2_x.listen("127.0.0.1:0").await.unwrap().to_string();

    let (requester, server) = (Node::new("requester"), Node::new("server"));
    let (requester_default, server_default) = (Exchange::new(&requester), Exchange::new(&server));
    let requester_g = Exchange::with_config(&requester, g.clone()).unwrap();
    let server_g = Exchange::with_config(&server, g).unwrap();
    // Through h1 first: each learns the other's node agent (the requester of `endpoint`).
    for (x, addr) in [(&requester_default, &h1_addr), (&server_default, &h1_addr)] {
        let mut events = x.connections();
        x.connect(addr, None).forget();
        active(&mut events).await;
    }
    settle().await;
    // Then through h2: a second route, an alternate.
    for (x, addr) in [(&requester_g, &h2_addr), (&server_g, &h2_addr)] {
        let mut events = x.connections();
        x.connect(addr, None).forget();
        active(&mut events).await;
    }
    settle().await;
    let options = netsvc::ServiceOptions {
        name: netsvc::ServiceName::new("calculator").unwrap(),
        audience: netsvc::Audience::parse("g").unwrap(),
        groups: vec![],
    };
    server.spawn_with(Calculator, options);
    let calc = wait_for(&requester, "calculator").await;
    (requester, calc, server_default, vec![h1, h2, server])
}

#[actix::test]
async fn an_answer_to_a_requester_whose_route_back_differs_comes_the_way_the_call_went() {
    let (requester, calc, _server_default, _keep) = two_way_topology().await;
    let client = CalculatorClient::new(requester.endpoint(&calc).with_timeout(WAIT));
    assert_eq!(client.multiply(6, 7).await, Ok(42));
    assert_eq!(client.slow(100).await, Ok(100));
}

#[actix::test]
async fn an_answer_follows_its_requester_to_another_route_while_the_call_is_served() {
    // Hubs a and b form a mesh; the requester is a client of a; the serving node a client of
    // a and of b (two exchanges, so that one link can drop alone). The call goes in by a;
    // while it is served the serving node's link to a drops: the answer cannot go back the
    // way the call came, and takes the serving node's other route to the requester (via b,
    // then a). Nothing is withdrawn from the requester meanwhile: a reaches the calculator
    // through b.
    let (a, b) = (Node::new("a"), Node::new("b"));
    let (a_x, b_x) = (Exchange::new(&a), Exchange::new(&b));
    let a_addr = a_x.listen("127.0.0.1:0").await.unwrap().to_string();
    let b_addr = b_x.listen("127.0.0.1:0").await.unwrap().to_string();
    let mut b_events = b_x.connections();
    a_x.connect(&b_addr, None).forget();
    active(&mut b_events).await;
    let requester = Node::new("requester");
    let requester_x = Exchange::new(&requester);
    let mut events = requester_x.connections();
    requester_x.connect(&a_addr, None).forget();
    active(&mut events).await;
    let server = Node::new("server");
    let (server_a, server_b) = (Exchange::new(&server), Exchange::new(&server));
    for (x, addr) in [(&server_a, &a_addr), (&server_b, &b_addr)] {
        let mut events = x.connections();
        x.connect(addr, None).forget();
        active(&mut events).await;
        settle().await;
    }
    server.spawn(Calculator);
    let calc = wait_for(&requester, "calculator").await;
    settle().await;

    let client = CalculatorClient::new(requester.endpoint(&calc).with_timeout(WAIT));
    let call = tokio::spawn(async move { client.slow(600).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    server_a.disconnect_all();
    let answered = tokio::time::timeout(WAIT * 2, call)
        .await
        .expect("the call ends")
        .unwrap();
    assert_eq!(answered, Ok(600), "the answer took the route left");
}

/// CPU time this thread has used, in clock ticks (user and system; 1/100 s on Linux).
fn thread_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // The fields after the command name (in parentheses): utime and stime are the 12th and
    // 13th of them.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[actix::test]
async fn a_thread_spinning_when_idle_answers_calls_and_sleeps_once_the_window_passed() {
    // Both nodes run on this thread: every read and write spins it for the window. No
    // heartbeats while the test looks (each would open the window again).
    netsvc::spin_when_idle(Duration::from_millis(400)).unwrap();
    let (c, _exchanges, _nodes) = calculator_link(|| ExchangeConfig {
        heartbeat: Duration::from_secs(20),
        dead_after: Duration::from_secs(60),
        ..ExchangeConfig::default()
    })
    .await;
    for i in 0..200 {
        assert_eq!(c.multiply(i, 3).await, Ok(i * 3));
    }
    // Within the window after the last call the thread spins: it spends CPU while this test
    // sleeps (a tick is 10 ms; about 30 of the 300 ms when it has a CPU to itself).
    let before = thread_cpu_ticks();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let spent = thread_cpu_ticks() - before;
    assert!(
        spent >= 10,
        "{spent} ticks of CPU within the window: it did not spin"
    );
    // Past the window it sleeps, and spends nothing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = thread_cpu_ticks();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let spent = thread_cpu_ticks() - before;
    assert!(
        spent <= 5,
        "{spent} ticks of CPU past the window: it did not stop spinning"
    );
    // Turned off, calls go on as ever.
    netsvc::spin_when_idle(Duration::ZERO).unwrap();
    assert_eq!(c.multiply(7, 6).await, Ok(42));
}
