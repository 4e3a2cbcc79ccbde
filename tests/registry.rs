//! The registry and service lifecycle through the public API: announcements, groups,
//! subscriptions of every kind with replay, lookups, anonymous and duplicate services.

mod common;

use std::time::Duration;

use common::{probe, settle, Probe};
use netsvc::prelude::*;
use netsvc::{Audience, ServiceName, ServiceOptions, Watch};
use tokio::sync::mpsc::UnboundedSender;

/// A service that can be told to join/leave groups and to subscribe to the registry.
#[derive(Service)]
#[service(name = "worker", groups = ["workers"])]
struct Worker;
impl Service for Worker {}

#[derive(actix::Message)]
#[rtype(result = "()")]
enum Groups {
    Join(&'static str),
    Leave(&'static str),
}

impl actix::Handler<Groups> for Worker {
    type Result = ();
    fn handle(&mut self, msg: Groups, ctx: &mut ServiceContext<Self>) {
        match msg {
            Groups::Join(g) => ctx.join_group(g),
            Groups::Leave(g) => ctx.leave_group(g),
        }
    }
}

/// Logs every availability event it receives.
#[derive(Service)]
struct Watcher {
    log: UnboundedSender<String>,
}

impl Service for Watcher {
    fn availability(&mut self, e: RegistryEvent, _ctx: &mut ServiceContext<Self>) {
        let group = e.group.map(|g| g.to_string()).unwrap_or_else(|| "-".into());
        let _ = self
            .log
            .send(format!("{} {group} {:?}", e.binding.name(), e.status));
    }
}

#[derive(actix::Message)]
#[rtype(result = "()")]
enum W {
    Registry,
    Name(&'static str),
    Agent(Binding),
    Group(&'static str),
    UnRegistry,
    UnName(&'static str),
    UnGroup(&'static str),
}

impl actix::Handler<W> for Watcher {
    type Result = ();
    fn handle(&mut self, msg: W, ctx: &mut ServiceContext<Self>) {
        match msg {
            W::Registry => ctx.subscribe_registry(),
            W::Name(n) => ctx.subscribe_name(n),
            W::Agent(b) => ctx.subscribe_agent(&b),
            W::Group(g) => ctx.subscribe_group(g),
            W::UnRegistry => ctx.unsubscribe_registry(),
            W::UnName(n) => ctx.unsubscribe_name(n),
            W::UnGroup(g) => ctx.unsubscribe_group(g),
        }
    }
}

fn watcher(node: &Node) -> (actix::Addr<Watcher>, Probe) {
    let (tx, rx) = probe();
    (node.spawn(Watcher { log: tx }).addr(), rx)
}

#[actix::test]
async fn registry_subscription_replays_then_streams_and_withdrawal_leaves_groups_first() {
    let node = Node::new("test");
    let w1 = node.spawn(Worker);
    settle().await;
    let (watch, mut log) = watcher(&node);
    watch.send(W::Registry).await.unwrap();
    assert_eq!(
        log.take(2).await,
        ["worker - Available", "worker workers Available"]
    );

    let w2 = node.spawn(Worker);
    assert_eq!(
        log.take(2).await,
        ["worker - Available", "worker workers Available"]
    );
    w2.addr().send(Groups::Join("extra")).await.unwrap();
    assert_eq!(log.next().await, "worker extra Available");
    w2.addr().send(Groups::Leave("workers")).await.unwrap();
    assert_eq!(log.next().await, "worker workers Withdrawn");

    w2.stop();
    assert_eq!(
        log.take(2).await,
        ["worker extra Withdrawn", "worker - Withdrawn"]
    );

    watch.send(W::UnRegistry).await.unwrap();
    settle().await;
    w1.stop();
    log.silent_for(Duration::from_millis(100)).await;
}

#[actix::test]
async fn subscriptions_by_name_see_services_but_no_group_events() {
    let node = Node::new("test");
    let w = node.spawn(Worker);
    let (watch, mut log) = watcher(&node);
    watch.send(W::Name("worker")).await.unwrap();
    assert_eq!(log.next().await, "worker - Available");
    w.addr().send(Groups::Join("g")).await.unwrap();
    let w2 = node.spawn(Worker);
    assert_eq!(log.next().await, "worker - Available");
    w.stop();
    assert_eq!(log.next().await, "worker - Withdrawn");
    watch.send(W::UnName("worker")).await.unwrap();
    settle().await;
    w2.stop();
    log.silent_for(Duration::from_millis(100)).await;
}

#[actix::test]
async fn subscriptions_by_agent_see_its_service_and_group_events_or_an_immediate_withdrawal() {
    let node = Node::new("test");
    let w = node.spawn(Worker);
    let other = node.spawn(Worker);
    let (watch, mut log) = watcher(&node);
    watch.send(W::Agent(w.binding.clone())).await.unwrap();
    assert_eq!(
        log.take(2).await,
        ["worker - Available", "worker workers Available"]
    );
    other.addr().send(Groups::Join("g")).await.unwrap();
    w.addr().send(Groups::Join("g")).await.unwrap();
    assert_eq!(log.next().await, "worker g Available");
    w.stop();
    assert_eq!(
        log.take(3).await,
        [
            "worker g Withdrawn",
            "worker workers Withdrawn",
            "worker - Withdrawn"
        ]
    );
    settle().await;
    // Subscribing to an agent that is gone says so at once.
    watch.send(W::Agent(w.binding.clone())).await.unwrap();
    assert_eq!(log.next().await, "worker - Withdrawn");
}

#[actix::test]
async fn subscriptions_by_group_replay_members_and_imply_leaving_on_withdrawal() {
    let node = Node::new("test");
    let w1 = node.spawn(Worker);
    let (watch, mut log) = watcher(&node);
    watch.send(W::Group("workers")).await.unwrap();
    assert_eq!(log.next().await, "worker workers Available");
    let w2 = node.spawn(Worker);
    assert_eq!(log.next().await, "worker workers Available");
    w2.addr().send(Groups::Join("other")).await.unwrap();
    w1.stop();
    assert_eq!(log.next().await, "worker workers Withdrawn");
    watch.send(W::UnGroup("workers")).await.unwrap();
    settle().await;
    w2.stop();
    log.silent_for(Duration::from_millis(100)).await;
}

#[actix::test]
async fn lookups_by_name_group_agent_and_all() {
    let node = Node::new("test");
    let w1 = node.spawn(Worker);
    let w2 = node.spawn(Worker);
    node.spawn_with(
        Worker,
        ServiceOptions::named(ServiceName::new("lonely").unwrap()),
    );
    w2.addr().send(Groups::Join("night")).await.unwrap();

    let by_name = node.lookup_name("worker").await;
    // Oldest first, and duplicate names have distinct identities.
    assert_eq!(by_name, vec![w1.binding.clone(), w2.binding.clone()]);
    assert_ne!(by_name[0].agent(), by_name[1].agent());
    assert_eq!(node.lookup_group("night").await, vec![w2.binding.clone()]);
    assert_eq!(node.lookup_group("workers").await.len(), 2);
    assert_eq!(
        node.lookup_agent(w1.binding.agent()).await,
        Some(w1.binding.clone())
    );
    let all: Vec<String> = node
        .services()
        .await
        .iter()
        .map(|b| b.name().to_string())
        .collect();
    assert_eq!(all, ["worker", "worker", "lonely"]);
    let groups: Vec<String> = node.groups().await.iter().map(|g| g.to_string()).collect();
    assert_eq!(groups, ["night", "workers"]);
    let of_w2: Vec<String> = node
        .groups_of(w2.binding.agent())
        .await
        .iter()
        .map(|g| g.to_string())
        .collect();
    assert_eq!(of_w2, ["night", "workers"]);
    assert!(node.lookup_name("nobody").await.is_empty());
    assert!(node.lookup_name("bad name").await.is_empty());

    w1.stop();
    settle().await;
    assert_eq!(node.lookup_agent(w1.binding.agent()).await, None);
    assert_eq!(node.lookup_name("worker").await, vec![w2.binding.clone()]);
}

#[actix::test]
async fn lookups_by_name_among_thousands_of_services_answer_what_a_filter_of_every_service_does() {
    let node = Node::new("test");
    let name = |i: usize| {
        if i.is_multiple_of(10) {
            format!("shared-{}", i % 7)
        } else {
            format!("unique-{i}")
        }
    };
    let spawn = |i: usize| {
        node.spawn_with(
            Worker,
            ServiceOptions::named(ServiceName::new(name(i)).unwrap()),
        )
    };
    let spawned: Vec<_> = (0..5_000).map(spawn).collect();
    // Withdraw a third, then announce a few more (the newest come last among their name).
    for s in spawned.iter().step_by(3) {
        s.stop();
    }
    let late: Vec<_> = (5_000..5_100).map(spawn).collect();
    let expected = 5_000 - spawned.iter().step_by(3).count() + late.len();
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while node.services().await.len() != expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the withdrawals did not all arrive"
        );
        settle().await;
    }
    let all = node.services().await;
    let mut names: Vec<String> = (0..7).map(|g| format!("shared-{g}")).collect();
    names.extend((0..5_100).step_by(17).map(name));
    names.push("nobody".into());
    let mut found = 0;
    for n in &names {
        let filtered: Vec<Binding> = all
            .iter()
            .filter(|b| b.name() == n.as_str())
            .cloned()
            .collect();
        let by_name = node.lookup_name(n.as_str()).await;
        assert_eq!(by_name, filtered, "lookup of {n}");
        found += by_name.len();
    }
    assert!(found > 400, "shared names are found many times ({found})");
    let newest = late
        .iter()
        .rev()
        .find(|s| s.binding.name() == "shared-0")
        .expect("a late shared-0");
    assert_eq!(
        node.lookup_name("shared-0").await.last(),
        Some(&newest.binding)
    );
    assert!(node
        .lookup_name(name(0))
        .await
        .iter()
        .all(|b| *b != spawned[0].binding));
}

#[actix::test]
async fn bindings_describe_the_service() {
    let node = Node::new("test");
    let w = node.spawn(Worker);
    let b = &w.binding;
    assert_eq!(b.name(), "worker");
    assert_eq!(b.audience(), &Audience::Everyone);
    assert_eq!(b.location(), netsvc::Location::Local);
    assert_eq!(b.process(), node.process());
    assert_eq!(b.to_string(), format!("worker/{}", b.agent()));
}

#[actix::test]
async fn anonymous_services_are_never_announced_or_listed() {
    let node = Node::new("test");
    let (watch, mut log) = watcher(&node);
    watch.send(W::Registry).await.unwrap();
    settle().await;
    let anon = node.spawn_with(Worker, ServiceOptions::anonymous());
    settle().await;
    assert!(node.services().await.is_empty());
    assert!(node.lookup_group("workers").await.is_empty());
    anon.addr().send(Groups::Join("g")).await.unwrap();
    anon.stop();
    log.silent_for(Duration::from_millis(100)).await;
    assert_eq!(
        anon.binding.to_string(),
        format!("(anonymous)/{}", anon.binding.agent())
    );
}

#[actix::test]
async fn invalid_group_names_are_refused_and_the_service_keeps_working() {
    let node = Node::new("test");
    let w = node.spawn(Worker);
    w.addr().send(Groups::Join("")).await.unwrap();
    w.addr().send(Groups::Join("two words")).await.unwrap();
    w.addr().send(Groups::Join("fine")).await.unwrap();
    settle().await;
    let groups: Vec<String> = node
        .groups_of(w.binding.agent())
        .await
        .iter()
        .map(|g| g.to_string())
        .collect();
    assert_eq!(groups, ["fine", "workers"]);
}

#[actix::test]
async fn two_nodes_in_one_process_are_separate() {
    let a = Node::new("a");
    let b = Node::new("b");
    a.spawn(Worker);
    settle().await;
    assert_eq!(a.lookup_name("worker").await.len(), 1);
    assert!(b.lookup_name("worker").await.is_empty());
    assert_ne!(a.process(), b.process());
}

#[test]
fn watch_kinds_compare_by_value() {
    assert_eq!(
        Watch::Name(ServiceName::new("x").unwrap()),
        Watch::Name(ServiceName::new("x").unwrap())
    );
    assert_ne!(
        Watch::Registry,
        Watch::Group(netsvc::GroupName::new("x").unwrap())
    );
}
