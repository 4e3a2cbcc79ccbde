//! Reports in JSON for subscribers without Rust types: a subscription that asks for JSON gets
//! JSON content from another process (cached reports too, through a hub too), while a typed
//! subscriber on the same link still gets bincode; in-process, both get the value itself.
//! And the streams for tools: `Node::watch_reports` and `Node::watch_registry`, in-process
//! and across processes, ending their subscriptions when dropped.

mod common;

use std::time::Duration;

use common::{probe, settle, wait_for, Probe, WAIT};
use futures_util::StreamExt;
use netsvc::prelude::*;
use netsvc::{ConnectionState, Exchange, Format, Location, NodeConfig, SubscriptionStatus};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;

/// What the publisher publishes: a struct with a few kinds of field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reading {
    city: String,
    celsius: f64,
    tags: Vec<String>,
    station: Option<u32>,
}

fn reading(n: u32) -> Reading {
    Reading {
        city: "Zürich".into(),
        celsius: 20.5 + f64::from(n),
        tags: vec!["live".into(), format!("n{n}")],
        station: n.is_multiple_of(2).then_some(n),
    }
}

/// The JSON a tool should see for `reading(n)`.
fn json(n: u32) -> String {
    serde_json::to_value(reading(n)).unwrap().to_string()
}

/// A typed publisher: `weather.now` cached when it starts, `weather.live` on demand; it logs
/// the subscriptions it sees, with their format.
#[derive(Service)]
#[service(name = "weather")]
struct Weather {
    log: UnboundedSender<String>,
}
impl Service for Weather {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.publish_report("weather.now", reading(0), Lifetime::Forever);
    }
    fn subscription(&mut self, n: SubscriptionNotice, _: &mut ServiceContext<Self>) {
        let status = match n.status {
            SubscriptionStatus::Requested => "requested",
            SubscriptionStatus::Withdrawn => "withdrawn",
        };
        let _ = self
            .log
            .send(format!("{status} {} {:?}", n.pattern, n.format));
    }
}

#[derive(actix::Message)]
#[rtype(result = "()")]
struct Publish(u32);

impl actix::Handler<Publish> for Weather {
    type Result = ();
    fn handle(&mut self, msg: Publish, ctx: &mut ServiceContext<Self>) {
        ctx.publish_report("weather.live", reading(msg.0), Lifetime::None);
    }
}

/// Publishes `reading(n)` as a `serde_json::Value` (content that is JSON already).
#[derive(actix::Message)]
#[rtype(result = "()")]
struct PublishJson(u32);

impl actix::Handler<PublishJson> for Weather {
    type Result = ();
    fn handle(&mut self, msg: PublishJson, ctx: &mut ServiceContext<Self>) {
        let value = serde_json::to_value(reading(msg.0)).unwrap();
        ctx.publish_report("weather.live", value, Lifetime::None);
    }
}

/// How a report's content arrived: the in-process value, or bytes in a format.
fn origin(r: &Report) -> String {
    match r.content().get::<Reading>() {
        Some(_) => "value".into(),
        None => format!("{:?}", r.content().wire_format()),
    }
}

/// A subscriber to `weather.*`: typed (`json: false`, decoding `Reading`) or a tool asking for
/// JSON (decoding `serde_json::Value`). Logs `kind subject origin json`.
#[derive(Service)]
struct Subscriber {
    log: UnboundedSender<String>,
    json: bool,
}
impl Service for Subscriber {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        if self.json {
            ctx.monitor_reports_as("weather", "weather.*", Format::Json);
        } else {
            ctx.monitor_reports("weather", "weather.*");
        }
    }
    fn report(&mut self, r: Report, _: &mut ServiceContext<Self>) {
        let line = if self.json {
            let value: serde_json::Value = r.decode().unwrap();
            assert_eq!(r.content().to_json().unwrap(), value);
            // A typed receiver would read the JSON content as well.
            let typed: Reading = r.decode().unwrap();
            assert_eq!(serde_json::to_value(typed).unwrap(), value);
            format!("json {} {} {value}", r.subject(), origin(&r))
        } else {
            let value: Reading = r.decode().unwrap();
            let value = serde_json::to_value(value).unwrap();
            format!("typed {} {} {value}", r.subject(), origin(&r))
        };
        let _ = self.log.send(line);
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

/// A node that connects to `addr`, once its link is up.
async fn client(name: &str, addr: &str) -> (Node, Exchange) {
    let node = Node::new(name);
    let x = Exchange::new(&node);
    let mut events = x.connections();
    x.connect(addr, Some(Duration::from_millis(100))).forget();
    active(&mut events).await;
    (node, x)
}

/// A node with an exchange server, and its address.
async fn server(name: &str) -> (Node, Exchange, String) {
    let node = Node::new(name);
    let x = Exchange::new(&node);
    let addr = x.listen("127.0.0.1:0").await.unwrap().to_string();
    (node, x, addr)
}

/// Report frames sent by `x` while `f` runs and the frames settle.
async fn frames_for(x: &Exchange, f: impl std::future::Future<Output = ()>) -> u64 {
    settle().await;
    let before = x.stats().reports_sent;
    f.await;
    settle().await;
    x.stats().reports_sent - before
}

/// The subscribers' side of the tests across processes: a JSON and a typed subscriber on
/// `node`, with the cached report replayed to each in its format, then live reports, one
/// frame per format from the publisher's node (`publisher_x`) while both subscribe and one
/// when only the JSON subscriber is left.
async fn json_and_typed_subscribers_on_one_link(
    node: &Node,
    weather: &netsvc::Spawned<Weather>,
    weather_log: &mut Probe,
    publisher_x: &Exchange,
) {
    wait_for(node, "weather").await;
    let (tx, mut log) = probe();
    node.spawn(Subscriber {
        log: tx.clone(),
        json: true,
    });
    let typed = node.spawn(Subscriber {
        log: tx,
        json: false,
    });
    assert_eq!(
        weather_log.take_sorted(2).await,
        ["requested weather.* Bincode", "requested weather.* Json"]
    );
    // Cached reports come in the format each subscriber asked for.
    assert_eq!(
        log.take_sorted(2).await,
        [
            format!("json weather.now Json {}", json(0)),
            format!("typed weather.now Bincode {}", json(0)),
        ]
    );
    // Live ones too: one frame per format crosses the link.
    let frames = frames_for(publisher_x, async {
        weather.addr().send(Publish(1)).await.unwrap();
        assert_eq!(
            log.take_sorted(2).await,
            [
                format!("json weather.live Json {}", json(1)),
                format!("typed weather.live Bincode {}", json(1)),
            ]
        );
    })
    .await;
    assert_eq!(frames, 2, "one report frame per format");
    // Content that is JSON already goes to both in one frame.
    let frames = frames_for(publisher_x, async {
        weather.addr().send(PublishJson(4)).await.unwrap();
        assert_eq!(
            log.take_sorted(2).await,
            [
                format!("json weather.live Json {}", json(4)),
                format!("typed weather.live Json {}", json(4)),
            ]
        );
    })
    .await;
    assert_eq!(frames, 1, "one frame listing both");
    // With the typed subscriber gone, one frame, in JSON.
    typed.stop();
    assert_eq!(weather_log.next().await, "withdrawn weather.* Bincode");
    let frames = frames_for(publisher_x, async {
        weather.addr().send(Publish(2)).await.unwrap();
        assert_eq!(
            log.next().await,
            format!("json weather.live Json {}", json(2))
        );
    })
    .await;
    assert_eq!(frames, 1);
    log.silent_for(Duration::from_millis(100)).await;
}

#[actix::test]
async fn a_json_subscriber_in_another_process_gets_json_beside_a_typed_one() {
    let (server, server_x, addr) = server("publisher").await;
    let (tx, mut weather_log) = probe();
    let weather = server.spawn(Weather { log: tx });
    let (client, _client_x) = client("tools", &addr).await;
    json_and_typed_subscribers_on_one_link(&client, &weather, &mut weather_log, &server_x).await;
}

#[actix::test]
async fn json_reports_cross_a_hub_in_the_format_each_subscriber_asked_for() {
    // The hub has no services: it relays the subscriptions (keeping their formats) and the
    // reports (by target, without decoding them).
    let (_hub, hub_x, addr) = server("hub").await;
    let (publisher, publisher_x) = client("publisher", &addr).await;
    let (tx, mut weather_log) = probe();
    let weather = publisher.spawn(Weather { log: tx });
    let (tools, _tools_x) = client("tools", &addr).await;
    json_and_typed_subscribers_on_one_link(&tools, &weather, &mut weather_log, &publisher_x).await;
    // The hub passed on as many report frames as the publisher's node sent it.
    let relayed = frames_for(&hub_x, async {
        weather.addr().send(Publish(3)).await.unwrap();
    })
    .await;
    assert_eq!(relayed, 1);
}

#[actix::test]
async fn in_process_a_json_subscriber_gets_the_value_itself() {
    let node = Node::new("one");
    let (tx, mut weather_log) = probe();
    let weather = node.spawn(Weather { log: tx });
    let (tx, mut log) = probe();
    node.spawn(Subscriber {
        log: tx.clone(),
        json: true,
    });
    node.spawn(Subscriber {
        log: tx,
        json: false,
    });
    assert_eq!(
        weather_log.take_sorted(2).await,
        ["requested weather.* Bincode", "requested weather.* Json"]
    );
    assert_eq!(
        log.take_sorted(2).await,
        [
            format!("json weather.now value {}", json(0)),
            format!("typed weather.now value {}", json(0)),
        ]
    );
    weather.addr().send(Publish(1)).await.unwrap();
    assert_eq!(
        log.take_sorted(2).await,
        [
            format!("json weather.live value {}", json(1)),
            format!("typed weather.live value {}", json(1)),
        ]
    );
}

/// The next item of a stream, within `WAIT`.
async fn next<S: futures_core::Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("an item within WAIT")
        .expect("the stream goes on")
}

fn line(r: &Report) -> String {
    format!(
        "{} {} {}",
        r.subject(),
        origin(r),
        r.content().to_json().unwrap()
    )
}

#[actix::test]
async fn watch_reports_replays_the_cache_then_streams_and_ends_its_subscription_when_dropped() {
    let node = Node::new("one");
    let (tx, mut weather_log) = probe();
    let weather = node.spawn(Weather { log: tx });
    let mut stream = node
        .watch_reports("weather", "weather.*", Format::Json)
        .unwrap();
    assert_eq!(weather_log.next().await, "requested weather.* Json");
    let cached = next(&mut stream).await;
    assert_eq!(line(&cached), format!("weather.now value {}", json(0)));
    assert_eq!(cached.publisher().name().as_str(), "weather");
    assert_eq!(cached.pattern().unwrap().as_str(), "weather.*");
    weather.addr().send(Publish(1)).await.unwrap();
    assert_eq!(
        line(&next(&mut stream).await),
        format!("weather.live value {}", json(1))
    );
    assert_eq!(stream.dropped(), 0);
    drop(stream);
    assert_eq!(weather_log.next().await, "withdrawn weather.* Json");

    // Invalid names are errors, and nothing is watched.
    assert!(node.watch_reports("weather", "", Format::Json).is_err());
    assert!(node.watch_reports("not a name", "*", Format::Json).is_err());
    weather_log.silent_for(Duration::from_millis(100)).await;
}

#[actix::test]
async fn watch_reports_across_processes_in_json_and_dropped_ends_the_remote_subscription() {
    let (server, _server_x, addr) = server("publisher").await;
    let (tx, mut weather_log) = probe();
    let weather = server.spawn(Weather { log: tx });
    let (client, _client_x) = client("tools", &addr).await;
    wait_for(&client, "weather").await;

    let mut stream = client
        .watch_reports("weather", "weather.*", Format::Json)
        .unwrap();
    assert_eq!(weather_log.next().await, "requested weather.* Json");
    let cached = next(&mut stream).await;
    assert_eq!(line(&cached), format!("weather.now Json {}", json(0)));
    assert_eq!(cached.publisher().location(), Location::Remote);
    weather.addr().send(Publish(1)).await.unwrap();
    assert_eq!(
        line(&next(&mut stream).await),
        format!("weather.live Json {}", json(1))
    );
    // In bincode, for a typed tool.
    let mut typed = client
        .watch_reports("weather", "weather.now", Format::Bincode)
        .unwrap();
    assert_eq!(weather_log.next().await, "requested weather.now Bincode");
    let cached = next(&mut typed).await;
    assert_eq!(origin(&cached), "Bincode");
    assert_eq!(cached.decode::<Reading>().unwrap(), reading(0));
    drop(typed);
    assert_eq!(weather_log.next().await, "withdrawn weather.now Bincode");

    // Dropped: the publisher in the other process sees the subscriber go.
    drop(stream);
    assert_eq!(weather_log.next().await, "withdrawn weather.* Json");
    weather.addr().send(Publish(2)).await.unwrap();
    weather_log.silent_for(Duration::from_millis(100)).await;
}

#[actix::test]
async fn a_slow_watcher_drops_and_counts_what_does_not_fit() {
    let node = Node::with_config(NodeConfig {
        name: "one".into(),
        watch_capacity: 4,
        ..NodeConfig::default()
    });
    let (tx, mut weather_log) = probe();
    let weather = node.spawn(Weather { log: tx });
    let mut stream = node
        .watch_reports("weather", "weather.live", Format::Json)
        .unwrap();
    assert_eq!(weather_log.next().await, "requested weather.live Json");
    for n in 0..10 {
        weather.addr().send(Publish(n)).await.unwrap();
    }
    settle().await;
    assert_eq!(stream.dropped(), 6);
    // The first four are kept, in order; then the stream goes on with what comes next.
    for n in 0..4 {
        assert_eq!(
            line(&next(&mut stream).await),
            format!("weather.live value {}", json(n))
        );
    }
    weather.addr().send(Publish(10)).await.unwrap();
    assert_eq!(
        line(&next(&mut stream).await),
        format!("weather.live value {}", json(10))
    );
}

/// A named service in a group; it stops on `Stop`.
#[derive(Service)]
struct Member;
impl Service for Member {}

fn member(name: &str, groups: &[&str]) -> netsvc::ServiceOptions {
    netsvc::ServiceOptions {
        groups: groups
            .iter()
            .map(|g| netsvc::GroupName::new(*g).unwrap())
            .collect(),
        ..netsvc::ServiceOptions::named(netsvc::ServiceName::new(name).unwrap())
    }
}

/// An event as `name [group] status location`.
fn event(e: &RegistryEvent) -> String {
    let group = e.group.as_ref().map_or(String::new(), |g| format!(" {g}"));
    format!(
        "{}{group} {:?} {:?}",
        e.binding.name(),
        e.status,
        e.binding.location()
    )
}

/// The next `count` events of `stream` about the services named in `names` (events about
/// others are skipped).
async fn events(stream: &mut netsvc::RegistryStream, names: &[&str], count: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < count {
        let e = next(stream).await;
        if names.contains(&e.binding.name().as_str()) {
            out.push(event(&e));
        }
    }
    out
}

#[actix::test]
async fn watch_registry_replays_the_state_then_streams_changes_in_process() {
    let node = Node::new("one");
    node.spawn_with(Member, member("alpha", &["g1", "g2"]));
    settle().await;
    let mut stream = node.watch_registry();
    // The current state first: the service, then its groups.
    assert_eq!(
        events(&mut stream, &["alpha", "beta"], 3).await,
        [
            "alpha Available Local",
            "alpha g1 Available Local",
            "alpha g2 Available Local"
        ]
    );
    let beta = node.spawn_with(Member, member("beta", &["g1"]));
    assert_eq!(
        events(&mut stream, &["alpha", "beta"], 2).await,
        ["beta Available Local", "beta g1 Available Local"]
    );
    beta.stop();
    assert_eq!(
        events(&mut stream, &["alpha", "beta"], 2).await,
        ["beta g1 Withdrawn Local", "beta Withdrawn Local"]
    );
    // Dropped, its helper service stops: a call to it finds no one.
    let helper = stream.subscriber().clone();
    assert!(node
        .endpoint(&helper)
        .call_dynamic("anything", serde_json::json!([]))
        .await
        .is_err_and(|f| f.code == ErrorCode::SERVER_METHOD_UNAVAILABLE));
    drop(stream);
    settle().await;
    let f = node
        .endpoint(&helper)
        .call_dynamic("anything", serde_json::json!([]))
        .await
        .unwrap_err();
    assert_ne!(f.code, ErrorCode::SERVER_METHOD_UNAVAILABLE, "{f:?}");
}

#[actix::test]
async fn watch_registry_across_processes() {
    let (server, _server_x, addr) = server("services").await;
    server.spawn_with(Member, member("alpha", &["g1"]));
    let (client, _client_x) = client("tools", &addr).await;
    wait_for(&client, "alpha").await;
    settle().await;
    let mut stream = client.watch_registry();
    assert_eq!(
        events(&mut stream, &["alpha", "beta"], 2).await,
        ["alpha Available Remote", "alpha g1 Available Remote"]
    );
    let beta = server.spawn_with(Member, member("beta", &[]));
    assert_eq!(
        events(&mut stream, &["alpha", "beta"], 1).await,
        ["beta Available Remote"]
    );
    beta.stop();
    assert_eq!(
        events(&mut stream, &["alpha", "beta"], 1).await,
        ["beta Withdrawn Remote"]
    );
    drop(stream);
}
