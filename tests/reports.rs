//! Reports through the public API: caching, patterns, sticky and per-agent subscriptions,
//! notices to both sides, targeted reports, expiry, type mismatches, order with calls across
//! processes.

mod common;

use std::time::Duration;

use common::{probe, settle, Probe};
use netsvc::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;

/// A publisher driven by actix messages from the test.
#[derive(Service)]
#[service(name = "publisher")]
struct Publisher {
    log: UnboundedSender<String>,
}

impl Service for Publisher {
    fn subscription(&mut self, n: SubscriptionNotice, _ctx: &mut ServiceContext<Self>) {
        let _ = self.log.send(format!(
            "sub {:?} {} {}",
            n.status,
            n.pattern,
            n.subscriber.name()
        ));
    }
}

#[derive(actix::Message)]
#[rtype(result = "()")]
enum Do {
    Publish(&'static str, u32, Lifetime),
    PublishText(&'static str, &'static str),
    Targeted(Binding, &'static str, u32),
    Expire(&'static str, Duration),
    ExpireAll,
    Purge,
    Stop,
    /// `count` reports at once, cycling over `s.0`, `s.1`, … `s.{subjects - 1}`, each
    /// carrying its sequence number.
    Burst(u32, u32),
}

impl actix::Handler<Do> for Publisher {
    type Result = ();
    fn handle(&mut self, msg: Do, ctx: &mut ServiceContext<Self>) {
        match msg {
            Do::Publish(subject, value, lifetime) => ctx.publish_report(subject, value, lifetime),
            Do::PublishText(subject, text) => {
                ctx.publish_report(subject, text.to_string(), Lifetime::Forever)
            }
            Do::Targeted(to, subject, value) => ctx.send_report(&to, subject, value),
            Do::Expire(pattern, age) => ctx.expire_reports(pattern, age),
            Do::ExpireAll => ctx.expire_all_reports(Duration::ZERO),
            Do::Purge => ctx.purge_reports(),
            Do::Stop => ctx.stop(),
            Do::Burst(count, subjects) => {
                for i in 0..count {
                    ctx.publish_report(format!("s.{}", i % subjects), i, Lifetime::None);
                }
            }
        }
        let _ = self.log.send("done".into());
    }
}

/// A subscriber whose subscriptions are set by the test.
#[derive(Service)]
#[service(name = "subscriber")]
struct Subscriber {
    log: UnboundedSender<String>,
}

impl Service for Subscriber {
    fn report(&mut self, r: Report, _ctx: &mut ServiceContext<Self>) {
        let content = match r.decode::<u32>() {
            Ok(v) => v.to_string(),
            Err(e) => format!("error: {e}"),
        };
        let pattern = r
            .pattern()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "-".into());
        let targeted = if r.is_targeted() { " targeted" } else { "" };
        let _ = self.log.send(format!(
            "report {} {} {}{}",
            r.subject(),
            pattern,
            content,
            targeted
        ));
    }
    fn publisher(&mut self, n: PublisherNotice, _ctx: &mut ServiceContext<Self>) {
        let _ = self
            .log
            .send(format!("publisher {:?} {}", n.status, n.publisher.name()));
    }
}

#[derive(actix::Message)]
#[rtype(result = "()")]
enum Sub {
    ByName(&'static str, &'static str),
    ByBinding(Binding, &'static str),
    Ignore(&'static str, &'static str),
    IgnoreAll(&'static str),
    IgnoreBinding(Binding, &'static str),
}

impl actix::Handler<Sub> for Subscriber {
    type Result = ();
    fn handle(&mut self, msg: Sub, ctx: &mut ServiceContext<Self>) {
        match msg {
            Sub::ByName(name, pattern) => ctx.monitor_reports(name, pattern),
            Sub::ByBinding(b, pattern) => ctx.monitor_reports(&b, pattern),
            Sub::Ignore(name, pattern) => ctx.ignore_reports(name, pattern),
            Sub::IgnoreAll(name) => ctx.ignore_all_reports(name),
            Sub::IgnoreBinding(b, pattern) => ctx.ignore_reports(&b, pattern),
        }
    }
}

fn publisher(node: &Node) -> (netsvc::Spawned<Publisher>, Probe) {
    let (tx, rx) = probe();
    (node.spawn(Publisher { log: tx }), rx)
}

fn subscriber(node: &Node) -> (netsvc::Spawned<Subscriber>, Probe) {
    let (tx, rx) = probe();
    (node.spawn(Subscriber { log: tx }), rx)
}

#[actix::test]
async fn late_subscribers_get_the_cached_report_and_only_the_last_per_subject() {
    let node = Node::new("test");
    let (publ, mut plog) = publisher(&node);
    publ.addr()
        .send(Do::Publish("system.ctime", 1, Lifetime::Forever))
        .await
        .unwrap();
    publ.addr()
        .send(Do::Publish("system.ctime", 2, Lifetime::Forever))
        .await
        .unwrap();
    publ.addr()
        .send(Do::Publish("system.volatile", 3, Lifetime::None))
        .await
        .unwrap();
    publ.addr()
        .send(Do::Publish(
            "system.brief",
            4,
            Lifetime::For(Duration::from_millis(100)),
        ))
        .await
        .unwrap();
    plog.take(4).await;

    let (sub, mut slog) = subscriber(&node);
    sub.addr()
        .send(Sub::ByName("publisher", "system.*"))
        .await
        .unwrap();
    assert_eq!(slog.next().await, "publisher Available publisher");
    assert_eq!(
        slog.take_sorted(2).await,
        [
            "report system.brief system.* 4",
            "report system.ctime system.* 2"
        ]
    );
    assert_eq!(plog.next().await, "sub Requested system.* subscriber");

    // After the lifetime, a new subscriber no longer gets the brief one.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (sub2, mut slog2) = subscriber(&node);
    sub2.addr()
        .send(Sub::ByName("publisher", "system.*"))
        .await
        .unwrap();
    assert_eq!(
        slog2.take(2).await,
        [
            "publisher Available publisher",
            "report system.ctime system.* 2"
        ]
    );
    slog2.silent_for(Duration::from_millis(100)).await;
}

#[actix::test]
async fn a_repeated_subscription_does_not_resend_cached_reports() {
    let node = Node::new("test");
    let (publ, mut plog) = publisher(&node);
    publ.addr()
        .send(Do::Publish("a", 1, Lifetime::Forever))
        .await
        .unwrap();
    plog.next().await;
    let (sub, mut slog) = subscriber(&node);
    sub.addr()
        .send(Sub::ByName("publisher", "*"))
        .await
        .unwrap();
    assert_eq!(
        slog.take(2).await,
        ["publisher Available publisher", "report a * 1"]
    );
    sub.addr()
        .send(Sub::ByName("publisher", "*"))
        .await
        .unwrap();
    slog.silent_for(Duration::from_millis(100)).await;
}

#[actix::test]
async fn one_delivery_per_matching_pattern_carrying_the_pattern() {
    let node = Node::new("test");
    let (publ, mut plog) = publisher(&node);
    let (sub, mut slog) = subscriber(&node);
    sub.addr()
        .send(Sub::ByName("publisher", "temp.*"))
        .await
        .unwrap();
    sub.addr()
        .send(Sub::ByName("publisher", "temp.?"))
        .await
        .unwrap();
    sub.addr()
        .send(Sub::ByName("publisher", "other"))
        .await
        .unwrap();
    plog.take(3).await;
    slog.next().await; // publisher available
    publ.addr()
        .send(Do::Publish("temp.1", 20, Lifetime::None))
        .await
        .unwrap();
    assert_eq!(
        slog.take_sorted(2).await,
        ["report temp.1 temp.* 20", "report temp.1 temp.? 20"]
    );
    publ.addr()
        .send(Do::Publish("temp.10", 21, Lifetime::None))
        .await
        .unwrap();
    assert_eq!(slog.next().await, "report temp.10 temp.* 21");
    slog.silent_for(Duration::from_millis(100)).await;
}

#[actix::test]
async fn subscriptions_by_name_are_sticky_and_cover_every_service_of_that_name() {
    let node = Node::new("test");
    let (sub, mut slog) = subscriber(&node);
    sub.addr()
        .send(Sub::ByName("publisher", "*"))
        .await
        .unwrap();
    settle().await;
    // Publishers that appear later, two of the same name, are both subscribed to.
    let (p1, mut l1) = publisher(&node);
    let (p2, mut l2) = publisher(&node);
    assert_eq!(l1.next().await, "sub Requested * subscriber");
    assert_eq!(l2.next().await, "sub Requested * subscriber");
    slog.take(2).await;
    p1.addr()
        .send(Do::Publish("x", 1, Lifetime::None))
        .await
        .unwrap();
    p2.addr()
        .send(Do::Publish("x", 2, Lifetime::None))
        .await
        .unwrap();
    assert_eq!(slog.take_sorted(2).await, ["report x * 1", "report x * 2"]);

    // A publisher that goes away is reported withdrawn; a new one is subscribed to again.
    p1.addr().send(Do::Stop).await.unwrap();
    assert_eq!(slog.next().await, "publisher Withdrawn publisher");
    let (_p3, mut l3) = publisher(&node);
    assert_eq!(l3.next().await, "sub Requested * subscriber");
}

#[actix::test]
async fn subscriptions_by_binding_follow_one_agent() {
    let node = Node::new("test");
    let (p1, mut l1) = publisher(&node);
    let (p2, _l2) = publisher(&node);
    let (sub, mut slog) = subscriber(&node);
    sub.addr()
        .send(Sub::ByBinding(p1.binding.clone(), "*"))
        .await
        .unwrap();
    assert_eq!(l1.next().await, "sub Requested * subscriber");
    slog.next().await;
    p1.addr()
        .send(Do::Publish("x", 1, Lifetime::None))
        .await
        .unwrap();
    p2.addr()
        .send(Do::Publish("x", 2, Lifetime::None))
        .await
        .unwrap();
    assert_eq!(slog.next().await, "report x * 1");
    slog.silent_for(Duration::from_millis(100)).await;

    sub.addr()
        .send(Sub::IgnoreBinding(p1.binding.clone(), "*"))
        .await
        .unwrap();
    l1.until("sub Withdrawn * subscriber").await;
    assert_eq!(slog.next().await, "publisher Withdrawn publisher");
    p1.addr()
        .send(Do::Publish("x", 3, Lifetime::None))
        .await
        .unwrap();
    slog.silent_for(Duration::from_millis(100)).await;
}

#[actix::test]
async fn ignore_one_pattern_or_all_and_the_publisher_is_told() {
    let node = Node::new("test");
    let (publ, mut plog) = publisher(&node);
    let (sub, mut slog) = subscriber(&node);
    sub.addr()
        .send(Sub::ByName("publisher", "a.*"))
        .await
        .unwrap();
    sub.addr()
        .send(Sub::ByName("publisher", "b.*"))
        .await
        .unwrap();
    sub.addr()
        .send(Sub::ByName("publisher", "c.*"))
        .await
        .unwrap();
    assert_eq!(
        plog.take_sorted(3).await,
        [
            "sub Requested a.* subscriber",
            "sub Requested b.* subscriber",
            "sub Requested c.* subscriber"
        ]
    );
    assert_eq!(slog.next().await, "publisher Available publisher");

    sub.addr()
        .send(Sub::Ignore("publisher", "a.*"))
        .await
        .unwrap();
    assert_eq!(plog.next().await, "sub Withdrawn a.* subscriber");
    publ.addr()
        .send(Do::Publish("a.1", 1, Lifetime::None))
        .await
        .unwrap();
    publ.addr()
        .send(Do::Publish("b.1", 2, Lifetime::None))
        .await
        .unwrap();
    plog.take(2).await;
    assert_eq!(slog.next().await, "report b.1 b.* 2");

    sub.addr().send(Sub::IgnoreAll("publisher")).await.unwrap();
    assert_eq!(
        plog.take_sorted(2).await,
        [
            "sub Withdrawn b.* subscriber",
            "sub Withdrawn c.* subscriber"
        ]
    );
    // The last withdrawal is acknowledged to the subscriber.
    assert_eq!(slog.next().await, "publisher Withdrawn publisher");
    publ.addr()
        .send(Do::Publish("b.2", 3, Lifetime::None))
        .await
        .unwrap();
    slog.silent_for(Duration::from_millis(100)).await;
}

#[actix::test]
async fn a_subscriber_that_goes_away_is_withdrawn_automatically() {
    let node = Node::new("test");
    let (_publ, mut plog) = publisher(&node);
    let (sub, _slog) = subscriber(&node);
    sub.addr()
        .send(Sub::ByName("publisher", "x"))
        .await
        .unwrap();
    sub.addr()
        .send(Sub::ByName("publisher", "y"))
        .await
        .unwrap();
    plog.take(2).await;
    sub.stop();
    assert_eq!(
        plog.take_sorted(2).await,
        ["sub Withdrawn x subscriber", "sub Withdrawn y subscriber"]
    );
}

#[actix::test]
async fn targeted_reports_reach_one_subscriber_and_are_never_cached() {
    let node = Node::new("test");
    let (publ, mut plog) = publisher(&node);
    let (s1, mut l1) = subscriber(&node);
    let (s2, mut l2) = subscriber(&node);
    let (s3, mut l3) = subscriber(&node);
    s1.addr()
        .send(Sub::ByName("publisher", "alarm.*"))
        .await
        .unwrap();
    s2.addr()
        .send(Sub::ByName("publisher", "alarm.*"))
        .await
        .unwrap();
    plog.take(2).await;
    l1.next().await;
    l2.next().await;
    publ.addr()
        .send(Do::Targeted(s1.binding.clone(), "alarm.high", 9))
        .await
        .unwrap();
    assert_eq!(l1.next().await, "report alarm.high alarm.* 9 targeted");
    // A subject none of its patterns match still reaches a subscriber, without a pattern.
    publ.addr()
        .send(Do::Targeted(s1.binding.clone(), "status", 1))
        .await
        .unwrap();
    assert_eq!(l1.next().await, "report status - 1 targeted");
    // Nothing for non-subscribers.
    publ.addr()
        .send(Do::Targeted(s3.binding.clone(), "alarm.high", 9))
        .await
        .unwrap();
    l2.silent_for(Duration::from_millis(100)).await;
    l3.silent_for(Duration::from_millis(10)).await;
    // Not cached: a late subscriber gets nothing.
    let (s4, mut l4) = subscriber(&node);
    s4.addr()
        .send(Sub::ByName("publisher", "alarm.*"))
        .await
        .unwrap();
    assert_eq!(l4.next().await, "publisher Available publisher");
    l4.silent_for(Duration::from_millis(100)).await;
}

#[actix::test]
async fn expire_and_purge_cached_reports() {
    let node = Node::new("test");
    let (publ, mut plog) = publisher(&node);
    for (subject, v) in [("sys.a", 1), ("sys.b", 2), ("app.a", 3)] {
        publ.addr()
            .send(Do::Publish(subject, v, Lifetime::Forever))
            .await
            .unwrap();
    }
    publ.addr()
        .send(Do::Publish(
            "brief",
            4,
            Lifetime::For(Duration::from_millis(10)),
        ))
        .await
        .unwrap();
    publ.addr()
        .send(Do::Expire("sys.*", Duration::ZERO))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    publ.addr().send(Do::Purge).await.unwrap();
    plog.take(6).await;
    let (sub, mut slog) = subscriber(&node);
    sub.addr()
        .send(Sub::ByName("publisher", "*"))
        .await
        .unwrap();
    assert_eq!(
        slog.take(2).await,
        ["publisher Available publisher", "report app.a * 3"]
    );
    publ.addr().send(Do::ExpireAll).await.unwrap();
    let (sub2, mut slog2) = subscriber(&node);
    sub2.addr()
        .send(Sub::ByName("publisher", "*"))
        .await
        .unwrap();
    assert_eq!(slog2.next().await, "publisher Available publisher");
    slog2.silent_for(Duration::from_millis(100)).await;
}

#[actix::test]
async fn a_content_type_mismatch_is_a_clear_error_naming_both_types() {
    let node = Node::new("test");
    let (publ, mut plog) = publisher(&node);
    publ.addr()
        .send(Do::PublishText("greeting", "hello"))
        .await
        .unwrap();
    plog.next().await;
    let (sub, mut slog) = subscriber(&node);
    sub.addr()
        .send(Sub::ByName("publisher", "greeting"))
        .await
        .unwrap();
    slog.next().await;
    let line = slog.next().await;
    assert!(
        line.starts_with("report greeting greeting error: report \"greeting\" from publisher/"),
        "{line}"
    );
    assert!(
        line.ends_with("type mismatch: expected u32, found alloc::string::String"),
        "{line}"
    );
}

#[actix::test]
async fn invalid_subjects_and_patterns_are_refused_without_harm() {
    let node = Node::new("test");
    let (publ, mut plog) = publisher(&node);
    let (sub, mut slog) = subscriber(&node);
    sub.addr().send(Sub::ByName("publisher", "")).await.unwrap();
    sub.addr().send(Sub::ByName("bad name", "*")).await.unwrap();
    sub.addr()
        .send(Sub::ByName("publisher", "ok"))
        .await
        .unwrap();
    assert_eq!(plog.next().await, "sub Requested ok subscriber");
    publ.addr()
        .send(Do::Publish("bad\nsubject", 1, Lifetime::Forever))
        .await
        .unwrap();
    publ.addr()
        .send(Do::Publish("ok", 2, Lifetime::None))
        .await
        .unwrap();
    plog.take(2).await;
    assert_eq!(
        slog.take(2).await,
        ["publisher Available publisher", "report ok ok 2"]
    );
    assert!(netsvc::SubjectPattern::new("").is_err());
    assert!(netsvc::Subject::new("bad\nsubject").is_err());
}

/// Reports with a user type, shared without serialization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reading {
    sensor: String,
    celsius: f64,
}

#[derive(Service)]
#[service(name = "sensor")]
struct Sensor;
impl Service for Sensor {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.publish_report(
            "reading",
            Reading {
                sensor: "t1".into(),
                celsius: 21.5,
            },
            Lifetime::Forever,
        );
    }
}

#[derive(Service)]
struct Display {
    log: UnboundedSender<String>,
}
impl Service for Display {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.monitor_reports("sensor", "*");
    }
    fn report(&mut self, r: Report, _ctx: &mut ServiceContext<Self>) {
        let shared = r.content().get::<Reading>().is_some();
        let reading: Reading = r.decode().unwrap();
        let _ = self.log.send(format!(
            "{} {} shared={shared}",
            reading.sensor, reading.celsius
        ));
    }
}

#[actix::test]
async fn user_types_travel_in_process_without_serialization_to_anonymous_subscribers() {
    let node = Node::new("test");
    node.spawn(Sensor);
    let (tx, mut log) = probe();
    node.spawn(Display { log: tx });
    assert_eq!(log.next().await, "t1 21.5 shared=true");
}

#[actix::test]
async fn publishing_again_on_one_subject_follows_every_subscription_change() {
    // A publisher works out who gets a subject once and reuses it: every change in between
    // must show up in the next report on the same subject.
    let node = Node::new("test");
    let (publ, mut plog) = publisher(&node);
    let (sub1, mut log1) = subscriber(&node);
    let (sub2, mut log2) = subscriber(&node);
    let publish = |value| Do::Publish("s.1", value, Lifetime::None);

    sub1.addr()
        .send(Sub::ByName("publisher", "s.*"))
        .await
        .unwrap();
    plog.until("sub Requested s.* subscriber").await;
    log1.until("publisher Available publisher").await;
    publ.addr().send(publish(1)).await.unwrap();
    assert_eq!(log1.next().await, "report s.1 s.* 1");

    // A second subscriber, then a second pattern of the first.
    sub2.addr()
        .send(Sub::ByName("publisher", "s.1"))
        .await
        .unwrap();
    plog.until("sub Requested s.1 subscriber").await;
    publ.addr().send(publish(2)).await.unwrap();
    assert_eq!(log1.next().await, "report s.1 s.* 2");
    log2.until("report s.1 s.1 2").await;
    sub1.addr()
        .send(Sub::ByName("publisher", "*"))
        .await
        .unwrap();
    plog.until("sub Requested * subscriber").await;
    publ.addr().send(publish(3)).await.unwrap();
    assert_eq!(
        log1.take_sorted(2).await,
        ["report s.1 * 3", "report s.1 s.* 3"]
    );
    assert_eq!(log2.next().await, "report s.1 s.1 3");

    // The first withdraws its patterns; the second goes away.
    sub1.addr().send(Sub::IgnoreAll("publisher")).await.unwrap();
    // Told once the publisher has dropped both patterns.
    assert_eq!(log1.next().await, "publisher Withdrawn publisher");
    publ.addr().send(publish(4)).await.unwrap();
    assert_eq!(log2.next().await, "report s.1 s.1 4");
    sub2.stop();
    plog.until("sub Withdrawn s.1 subscriber").await;
    publ.addr().send(publish(5)).await.unwrap();
    plog.until("done").await;
    log1.silent_for(Duration::from_millis(100)).await;
    log2.silent_for(Duration::from_millis(100)).await;
}

#[actix::test]
async fn cycling_over_subjects_follows_every_subscription_change() {
    // A publisher keeps who gets each subject it published on lately, not only the last:
    // a change of subscriptions must show up on every subject, the ones kept aside too.
    let node = Node::new("test");
    let (publ, mut plog) = publisher(&node);
    let (sub1, mut log1) = subscriber(&node);
    let (sub2, mut log2) = subscriber(&node);
    let publish = |subject, value| Do::Publish(subject, value, Lifetime::None);

    sub1.addr()
        .send(Sub::ByName("publisher", "a.*"))
        .await
        .unwrap();
    plog.until("sub Requested a.* subscriber").await;
    sub2.addr()
        .send(Sub::ByName("publisher", "b.*"))
        .await
        .unwrap();
    plog.until("sub Requested b.* subscriber").await;
    for round in 0..3 {
        publ.addr().send(publish("a.1", round)).await.unwrap();
        publ.addr().send(publish("b.1", round)).await.unwrap();
        publ.addr().send(publish("a.2", round)).await.unwrap();
        assert_eq!(
            next_report(&mut log1).await,
            format!("report a.1 a.* {round}")
        );
        assert_eq!(
            next_report(&mut log1).await,
            format!("report a.2 a.* {round}")
        );
        assert_eq!(
            next_report(&mut log2).await,
            format!("report b.1 b.* {round}")
        );
    }
    // The second also takes `a.*`: the fan-outs of a.1 and a.2, kept aside, are out of date.
    sub2.addr()
        .send(Sub::ByName("publisher", "a.*"))
        .await
        .unwrap();
    plog.until("sub Requested a.* subscriber").await;
    publ.addr().send(publish("a.1", 7)).await.unwrap();
    publ.addr().send(publish("b.1", 7)).await.unwrap();
    publ.addr().send(publish("a.2", 7)).await.unwrap();
    assert_eq!(next_report(&mut log1).await, "report a.1 a.* 7");
    assert_eq!(next_report(&mut log1).await, "report a.2 a.* 7");
    assert_eq!(next_report(&mut log2).await, "report a.1 a.* 7");
    assert_eq!(next_report(&mut log2).await, "report b.1 b.* 7");
    assert_eq!(next_report(&mut log2).await, "report a.2 a.* 7");
    // The first goes: nothing more for it on any subject.
    sub1.addr().send(Sub::IgnoreAll("publisher")).await.unwrap();
    plog.until("sub Withdrawn a.* subscriber").await;
    publ.addr().send(publish("a.2", 8)).await.unwrap();
    publ.addr().send(publish("a.1", 8)).await.unwrap();
    assert_eq!(next_report(&mut log2).await, "report a.2 a.* 8");
    assert_eq!(next_report(&mut log2).await, "report a.1 a.* 8");
    plog.until("done").await;
    assert_eq!(log1.next().await, "publisher Withdrawn publisher");
    log1.silent_for(Duration::from_millis(100)).await;
}

/// The next report line of `log`, skipping notices.
async fn next_report(log: &mut Probe) -> String {
    loop {
        let line = log.next().await;
        if line.starts_with("report ") {
            return line;
        }
    }
}

/// Subscribes to `s.*` of "publisher", conflated or not, and logs `subject value conflated`.
#[derive(Service)]
#[service(name = "tally")]
struct Tally {
    log: UnboundedSender<String>,
    conflate: bool,
}

impl Service for Tally {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.monitor_reports("publisher", "s.*");
        if self.conflate {
            ctx.conflate_reports("publisher", "s.*");
        }
    }
    fn report(&mut self, r: Report, _ctx: &mut ServiceContext<Self>) {
        let value = r.decode::<u32>().unwrap();
        let _ = self
            .log
            .send(format!("{} {value} {}", r.subject(), r.conflated()));
    }
}

/// Every line `log` gets until it has been silent for a while.
async fn drain(log: &mut Probe) -> Vec<(String, u32, u64)> {
    let mut lines = Vec::new();
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_millis(300), log.0.recv()).await
    {
        let mut parts = line.split(' ');
        let subject = parts.next().unwrap().to_owned();
        let value = parts.next().unwrap().parse().unwrap();
        let conflated = parts.next().unwrap().parse().unwrap();
        lines.push((subject, value, conflated));
    }
    lines
}

#[actix::test]
async fn a_conflated_subscriber_behind_a_burst_ends_with_the_last_value_of_every_subject() {
    let node = Node::with_config(netsvc::NodeConfig {
        name: "test".into(),
        inbox_capacity: 16,
        ..netsvc::NodeConfig::default()
    });
    let (publ, mut plog) = publisher(&node);
    let (tx, mut conflated) = probe();
    node.spawn(Tally {
        log: tx,
        conflate: true,
    });
    let (tx, mut plain) = probe();
    node.spawn(Tally {
        log: tx,
        conflate: false,
    });
    plog.until("sub Requested s.* tally").await;
    plog.until("sub Requested s.* tally").await;
    // 1,000 reports over 10 subjects land at once in inboxes of 16.
    publ.addr().send(Do::Burst(1000, 10)).await.unwrap();
    plog.until("done").await;

    let got = drain(&mut conflated).await;
    // The 16 queued, then one per subject kept aside: the last of each.
    assert_eq!(got.len(), 16 + 10, "{got:?}");
    for (i, (subject, value, skipped)) in got[..16].iter().enumerate() {
        assert_eq!(
            (subject.as_str(), *value, *skipped),
            (format!("s.{}", i % 10).as_str(), i as u32, 0)
        );
    }
    for (k, (subject, value, _)) in got[16..].iter().enumerate() {
        assert_eq!(*subject, format!("s.{}", (16 + k) % 10));
        assert_eq!(
            *value,
            990 + (16 + k as u32) % 10,
            "the last value of {subject}"
        );
    }
    let told: u64 = got.iter().map(|(_, _, skipped)| skipped).sum();
    assert_eq!(
        told as usize + got.len(),
        1000,
        "every report delivered or counted"
    );
    // Per subject, in order.
    for k in 0..10 {
        let values: Vec<u32> = got
            .iter()
            .filter(|(s, _, _)| *s == format!("s.{k}"))
            .map(|(_, v, _)| *v)
            .collect();
        assert!(values.windows(2).all(|w| w[0] < w[1]), "s.{k}: {values:?}");
    }

    // Without conflation the same burst keeps the 16 queued and drops the rest.
    let got = drain(&mut plain).await;
    assert_eq!(got.len(), 16, "{got:?}");
    assert!(got.iter().all(|(_, _, skipped)| *skipped == 0));

    // Later reports, with room in the inbox, arrive one by one, replacing nothing.
    publ.addr().send(Do::Burst(3, 10)).await.unwrap();
    let got = drain(&mut conflated).await;
    let later: Vec<_> = got.iter().map(|(s, v, c)| format!("{s} {v} {c}")).collect();
    assert_eq!(later, ["s.0 0 0", "s.1 1 0", "s.2 2 0"]);
}

#[actix::test]
async fn conflation_works_on_reports_from_another_process_too() {
    // The subscriber's node behind an exchange from the publisher's: its reports reach the
    // inbox through the link, in chunks; however they fall, every report is delivered or
    // counted as conflated, and each subject ends with its last value.
    let hub = Node::new("hub");
    let x = netsvc::Exchange::new(&hub);
    let addr = x.listen("127.0.0.1:0").await.unwrap().to_string();
    let (publ, mut plog) = publisher(&hub);
    let node = Node::with_config(netsvc::NodeConfig {
        name: "subscriber".into(),
        inbox_capacity: 16,
        ..netsvc::NodeConfig::default()
    });
    let client = netsvc::Exchange::new(&node);
    client.connect(&addr, None).forget();
    let (tx, mut conflated) = probe();
    node.spawn(Tally {
        log: tx,
        conflate: true,
    });
    plog.until("sub Requested s.* tally").await;
    publ.addr().send(Do::Burst(1000, 10)).await.unwrap();
    let got = drain(&mut conflated).await;
    let told: u64 = got.iter().map(|(_, _, skipped)| skipped).sum();
    assert_eq!(told as usize + got.len(), 1000, "{got:?}");
    assert!(told > 0, "the burst overran an inbox of 16: {got:?}");
    for k in 0..10u32 {
        let values: Vec<u32> = got
            .iter()
            .filter(|(s, _, _)| *s == format!("s.{k}"))
            .map(|(_, v, _)| *v)
            .collect();
        assert!(values.windows(2).all(|w| w[0] < w[1]), "s.{k}: {values:?}");
        assert_eq!(values.last(), Some(&(990 + k)), "s.{k}: {values:?}");
    }
    drop((x, client));
}

/// Publishes on `o.x` and, between its reports, calls the subscriber that subscribed.
#[derive(Service)]
#[service(name = "orderly")]
struct Orderly {
    subscriber: Option<Binding>,
    log: UnboundedSender<String>,
}

impl Service for Orderly {
    fn subscription(&mut self, n: SubscriptionNotice, _ctx: &mut ServiceContext<Self>) {
        if n.status == SubscriptionStatus::Requested {
            self.subscriber = Some(n.subscriber);
            let _ = self.log.send("subscribed".into());
        }
    }
}

/// Publish 40 reports, call `mark(1)`, 40 more, `mark(2)`, 40 more: all in one handler.
#[derive(actix::Message)]
#[rtype(result = "()")]
struct Interleave;

impl actix::Handler<Interleave> for Orderly {
    type Result = ();
    fn handle(&mut self, _: Interleave, ctx: &mut ServiceContext<Self>) {
        let Some(to) = self.subscriber.clone() else {
            return;
        };
        for i in 0..120u32 {
            if i > 0 && i % 40 == 0 {
                let call = ctx.endpoint(&to).call::<_, ()>("mark", (i / 40,));
                actix::spawn(async move {
                    let _ = call.await;
                });
            }
            ctx.publish_report("o.x", i, Lifetime::None);
        }
    }
}

/// Logs the reports it gets and the calls of its `mark` method, as they arrive.
#[derive(Service)]
#[service(name = "marked")]
struct Marked {
    log: UnboundedSender<String>,
}

impl Service for Marked {
    fn started(&mut self, ctx: &mut ServiceContext<Self>) {
        ctx.monitor_reports("orderly", "o.*");
    }
    fn report(&mut self, r: Report, _ctx: &mut ServiceContext<Self>) {
        let _ = self
            .log
            .send(format!("report {}", r.decode::<u32>().unwrap()));
    }
}

#[netsvc::methods]
impl Marked {
    /// Logs `mark {n}`.
    fn mark(&mut self, n: u32) {
        let _ = self.log.send(format!("mark {n}"));
    }
}

#[actix::test]
async fn reports_and_calls_from_one_handler_reach_another_process_in_the_order_sent() {
    // A publisher's reports go to a link gathered per turn of its task; a call made between
    // them must still arrive after the reports before it and before the ones after it.
    let hub = Node::new("hub");
    let x = netsvc::Exchange::new(&hub);
    let addr = x.listen("127.0.0.1:0").await.unwrap().to_string();
    let (ptx, mut plog) = probe();
    let orderly = hub.spawn(Orderly {
        subscriber: None,
        log: ptx,
    });
    let node = Node::new("marking");
    let client = netsvc::Exchange::new(&node);
    client.connect(&addr, None).forget();
    let (tx, mut log) = probe();
    node.spawn(Marked { log: tx });
    plog.until("subscribed").await;
    orderly.addr().send(Interleave).await.unwrap();
    let mut expected: Vec<String> = Vec::new();
    for i in 0..120u32 {
        if i > 0 && i % 40 == 0 {
            expected.push(format!("mark {}", i / 40));
        }
        expected.push(format!("report {i}"));
    }
    assert_eq!(log.take(expected.len()).await, expected);
    drop((x, client));
}
